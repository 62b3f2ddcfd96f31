//! The boot identity map: PML4 slot 0, the first 4 GiB with 2 MiB pages.
//!
//! The `mobius` host's long-mode entry hands over all 4 GiB mapped. The PVH
//! entry (`boot.rs`) maps only RAM, because every entry it writes costs
//! emulated ring-0 instructions; a driver maps its device window here before
//! touching it. Every address space shares slot 0 with the boot tables, so a
//! window mapped once is mapped everywhere.
use x86_64::instructions::tlb;
use x86_64::registers::control::Cr3;
use x86_64::VirtAddr;

use super::paging::{ADDR_MASK, HUGE, PCD, PRESENT, PWT, WRITABLE};

const LARGE_PAGE: u64 = 2 << 20;
const IDENTITY_END: u64 = 4 << 30;

fn entry(table: u64, index: u64) -> *mut u64 {
    (table + 8 * index) as *mut u64
}

/// Make sure the 2 MiB page holding `phys` (below 4 GiB) is in the identity
/// map; a page it adds is uncached (device memory). Returns `false` if the
/// address is not one the identity map can cover.
pub fn map_device(phys: u64) -> bool {
    if phys >= IDENTITY_END {
        return false;
    }
    let pml4 = Cr3::read().0.start_address().as_u64();
    // SAFETY: the page tables are reached through the identity map, which
    // maps the RAM they live in; indices are below 512.
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
        }
    }
    true
}
