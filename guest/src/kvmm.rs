//! Shortcuts to the kernel's VMM for in-guest tests and workloads: the lock,
//! allocation and freeing in the kernel address space, counters, and a check
//! helper. Errors are short static strings, as test and workload reports use.
use crate::arch::x86_64::paging::X86Mmu;
use crate::mm::vmm::{MemFlags, VmmLock, KERNEL_SPACE};
use mobius_shared::stats::FaultKind;

/// Outcome of a check: `Err` carries what went wrong.
pub type Outcome = Result<(), &'static str>;

/// The kernel's VMM (started on first use).
pub fn vmm() -> &'static VmmLock<X86Mmu> {
    crate::mm::kernel::vmm()
}

/// Faults of `kind` counted so far.
pub fn count(kind: FaultKind) -> u64 {
    vmm().lock().fault_stats().count(kind)
}

/// Every fault kind's count, indexed by `FaultKind::index`.
pub fn counts() -> [u64; FaultKind::COUNT] {
    let v = vmm().lock();
    FaultKind::ALL.map(|k| v.fault_stats().count(k))
}

/// Free physical frames.
pub fn free_frames() -> u64 {
    vmm().lock().frames().stats().free
}

/// `Ok` when `cond` holds, else `Err(why)`.
pub fn ensure(cond: bool, why: &'static str) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(why)
    }
}

/// `VmmAlloc` in the kernel address space at a chosen address.
pub fn alloc(pages: u64, flags: MemFlags) -> Result<u64, &'static str> {
    vmm()
        .lock()
        .alloc(KERNEL_SPACE, pages, 0, flags)
        .map_err(|_| "alloc failed")
}

/// `VmmFree` in the kernel address space.
pub fn free(base: u64) -> Outcome {
    vmm()
        .lock()
        .free(KERNEL_SPACE, base)
        .map_err(|_| "free failed")
}
