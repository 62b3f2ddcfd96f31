//! The boot identity map: the first 4 GiB with 2 MiB pages, linked at PML4
//! slot 0 of the kernel's root and at slot 257 of every root (the direct
//! map, `super::direct`).
//!
//! The `mobius` host's long-mode entry hands over all 4 GiB mapped. The PVH
//! entry (`boot.rs`) maps only RAM, because every entry it writes costs
//! emulated ring-0 instructions; a driver maps its device window here before
//! touching it, then reaches it through the direct map, which every address
//! space shares: a window mapped once is mapped everywhere.
use x86_64::instructions::tlb;
use x86_64::VirtAddr;

use super::paging::{ADDR_MASK, HUGE, PCD, PRESENT, PWT, WRITABLE};

const LARGE_PAGE: u64 = 2 << 20;
const IDENTITY_END: u64 = 4 << 30;

fn entry(table: u64, index: u64) -> *mut u64 {
    super::direct::phys_to_virt(table + 8 * index) as *mut u64
}

/// Make sure the 2 MiB page holding `phys` (below 4 GiB) is in the identity
/// map; a page it adds is uncached (device memory). Returns `false` if the
/// address is not one the identity map can cover.
pub fn map_device(phys: u64) -> bool {
    if phys >= IDENTITY_END {
        return false;
    }
    let pml4 = super::direct::boot_pml4();
    // SAFETY: the boot page tables are reached through the direct map,
    // which maps the RAM they live in; indices are below 512.
    unsafe {
        let slot0 = entry(pml4, 0).read_volatile();
        if slot0 & PRESENT == 0 {
            return false;
        }
        let pdpte = entry(slot0 & ADDR_MASK, phys >> 30).read_volatile();
        if pdpte & PRESENT == 0 || pdpte & HUGE != 0 {
            return pdpte & PRESENT != 0;
        }
        let pde = entry(pdpte & ADDR_MASK, (phys >> 21) & 511);
        if pde.read_volatile() & PRESENT == 0 {
            let page = phys & !(LARGE_PAGE - 1);
            pde.write_volatile(page | PRESENT | WRITABLE | HUGE | PWT | PCD);
            tlb::flush(VirtAddr::new(page));
            tlb::flush(VirtAddr::new(super::direct::phys_to_virt(page)));
        }
    }
    true
}
