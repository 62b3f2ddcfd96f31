//! The kernel heap: a `linked_list_allocator` over a range of RAM right after
//! the kernel image. The range is reserved from the frame allocator and never
//! managed by the VMM, so the heap never faults.
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hand `[base, base + size)` to the allocator. Memory is not touched beyond
/// the allocator's first hole header, so nothing is zeroed at boot.
///
/// # Safety
/// The range must be identity-mapped RAM used by nothing else, and `init`
/// must be called once.
pub unsafe fn init(base: u64, size: u64) {
    // SAFETY: the caller guarantees the range is ours.
    unsafe { HEAP.lock().init(base as *mut u8, size as usize) }
}

/// Bytes in use and free in the heap.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
