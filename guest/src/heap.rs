//! The kernel heap: a [`ClassHeap`] (power-of-two size classes, O(1)) over a
//! range of RAM right after the kernel image. The range is reserved from the
//! frame allocator and never managed by the VMM, so the heap never faults.
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, MutexGuard};

use crate::mm::heap::ClassHeap;

struct KernelHeap(Mutex<ClassHeap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(ClassHeap::empty()));

/// The heap's range (base, size), recorded at boot and taken by the
/// allocator on its first use: a run that never allocates (`hello`) never
/// touches the allocator's state (each page first touched costs a shadow
/// page fault on kvm_pvm).
static RANGE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

impl KernelHeap {
    fn lock(&self) -> MutexGuard<'_, ClassHeap> {
        let mut heap = self.0.lock();
        if !heap.has_range() {
            let (base, size) = (
                RANGE[0].load(Ordering::Relaxed),
                RANGE[1].load(Ordering::Relaxed),
            );
            // SAFETY: `init` (below) recorded a range that its caller
            // vouched for; it is taken once, before the first block.
            unsafe { heap.init(base as usize, size as usize) };
        }
        heap
    }
}

// SAFETY: every block comes from `ClassHeap`, which hands out disjoint,
// aligned blocks of at least the requested size inside its range, and takes
// back only what it handed out (the `GlobalAlloc` contract on the caller).
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.lock()
            .alloc(layout)
            .map_or(core::ptr::null_mut(), |(a, _)| a as *mut u8)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some((addr, known_zero)) = self.lock().alloc(layout) else {
            return core::ptr::null_mut();
        };
        let p = addr as *mut u8;
        if !known_zero {
            // SAFETY: the block is ours and at least `layout.size()` bytes.
            unsafe { p.write_bytes(0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller returns a block it got from us with `layout`.
        unsafe { self.lock().dealloc(ptr as usize, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.lock().realloc_in_place(layout, new_size) {
            return ptr;
        }
        // SAFETY: `new_size` is non-zero and, rounded up to the alignment,
        // does not overflow (the `GlobalAlloc::realloc` contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and distinct.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Hand `[base, base + size)` to the allocator (which takes it on first
/// use). Nothing is written: memory is touched only as blocks are handed out.
///
/// # Safety
/// The range must be identity-mapped RAM used by nothing else, zero where
/// the loader did not write (it writes nothing there), and `init` must be
/// called once, before the first allocation.
pub unsafe fn init(base: u64, size: u64) {
    RANGE[0].store(base, Ordering::Relaxed);
    RANGE[1].store(size, Ordering::Relaxed);
}

/// Bytes the heap was given.
pub fn size() -> u64 {
    RANGE[1].load(Ordering::Relaxed)
}

/// Bytes in use and free in the heap.
pub fn usage() -> (usize, usize) {
    HEAP.lock().usage()
}
