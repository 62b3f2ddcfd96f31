//! Where the kernel reaches physical memory.
//!
//! Two windows, both set up at boot from the boot page tables:
//!
//! * the **low identity map**, `[0, LOW_IDENTITY_END)` at physical ==
//!   virtual: the kernel image (linked at 1 MiB), its statics and stacks, and
//!   the boot structures below 1 MiB. Every address space keeps it,
//!   kernel-only; a user address space gets everything above it.
//! * the **direct map**, all of the first 4 GiB at [`DIRECT_BASE`] + physical
//!   (PML4 slot 257, the boot PDPT linked a second time): page tables,
//!   frames, the kernel heap and device windows are reached through it, so
//!   they stay reachable whichever address space is in CR3.
//!
//! The kernel's own address space ([`crate::mm::vmm::KERNEL_SPACE`]) also
//! keeps the boot identity map of all 4 GiB in slot 0, which the in-guest
//! tests and workloads use; process address spaces do not.
use core::sync::atomic::{AtomicU64, Ordering};

/// Virtual address of physical 0 in the direct map (PML4 slot 257, right
/// after the VMM's kernel half).
pub const DIRECT_BASE: u64 = 0xFFFF_8080_0000_0000;
/// PML4 slot of the direct map.
pub const DIRECT_SLOT: usize = 257;
/// Bytes the direct map covers (the boot PDPT's four 1 GiB directories).
pub const DIRECT_SIZE: u64 = 4 << 30;
/// End of the low identity map kept in every address space: two 2 MiB pages.
/// `linker.ld` checks that the kernel image ends below it.
pub const LOW_IDENTITY_END: u64 = 4 << 20;

/// The PML4 the kernel booted with (its slots 0 and 257 are the ones every
/// address space copies).
static BOOT_PML4: AtomicU64 = AtomicU64::new(0);

/// The kernel-virtual address of physical address `phys` (below 4 GiB).
#[inline]
pub const fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_BASE + phys
}

/// The physical address of kernel-virtual `virt`, for addresses in the low
/// identity map or the direct map; `None` for anything else.
#[inline]
pub fn virt_to_phys(virt: u64) -> Option<u64> {
    if virt < LOW_IDENTITY_END {
        Some(virt)
    } else if (DIRECT_BASE..DIRECT_BASE + DIRECT_SIZE).contains(&virt) {
        Some(virt - DIRECT_BASE)
    } else {
        None
    }
}

/// The boot PML4's physical address (recorded by [`init`]).
pub fn boot_pml4() -> u64 {
    BOOT_PML4.load(Ordering::Relaxed)
}

/// Link the boot identity map's PDPT into slot 257 as well: from here on
/// physical memory is reachable at [`DIRECT_BASE`]. One entry written (each
/// ring-0 instruction is emulated on kvm_pvm); no TLB flush is needed to
/// add a mapping that was not present.
pub fn init() {
    let pml4 = super::cpu::cr3();
    BOOT_PML4.store(pml4, Ordering::Relaxed);
    // SAFETY: CR3 holds the boot tables, reached through the identity map
    // they set up; slot 257 is unused until now.
    unsafe {
        let table = pml4 as *mut u64;
        let slot0 = table.read_volatile();
        table.add(DIRECT_SLOT).write_volatile(slot0);
    }
}
