//! The kernel heap: a [`ClassHeap`] (power-of-two size classes, O(1)) over a
//! range of RAM right after the kernel image. The range is reserved from the
//! frame allocator and never managed by the VMM, so the heap never faults.
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

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

/// How short the heap is: [`Pressure`] as a number, updated by every
/// allocation and free (a few instructions) so the hot paths read one byte.
static PRESSURE: AtomicU8 = AtomicU8::new(0);

/// How short of memory the kernel heap is. Programs can fill the heap only
/// through the kernel objects they make (processes, threads, mappings,
/// descriptors, pipes, page records); past these levels the kernel stops
/// making them for programs, so that the heap never runs out under the
/// kernel itself (an allocation that fails in the kernel is a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pressure {
    /// More than an eighth of the heap is free.
    None = 0,
    /// Less than an eighth free: new processes, threads, mappings, pipes
    /// and descriptors are refused (`ENOMEM`, `EMFILE`...).
    Refuse = 1,
    /// Less than a sixteenth free: a program that needs kernel memory to
    /// go on (a page fault that needs a page record) is killed instead.
    Critical = 2,
}

/// The heap's pressure now.
pub fn pressure() -> Pressure {
    match PRESSURE.load(Ordering::Relaxed) {
        0 => Pressure::None,
        1 => Pressure::Refuse,
        _ => Pressure::Critical,
    }
}

/// Set [`PRESSURE`] from the heap's free bytes.
fn note_usage(heap: &ClassHeap) {
    let (used, free) = heap.usage();
    let total = used + free;
    let level = if free < total / 16 {
        2
    } else if free < total / 8 {
        1
    } else {
        0
    };
    PRESSURE.store(level, Ordering::Relaxed);
}

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
        let mut heap = self.lock();
        let got = heap.alloc(layout);
        note_usage(&heap);
        got.map_or(core::ptr::null_mut(), |(a, _)| a as *mut u8)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let got = {
            let mut heap = self.lock();
            let got = heap.alloc(layout);
            note_usage(&heap);
            got
        };
        let Some((addr, known_zero)) = got else {
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
        let mut heap = self.lock();
        // SAFETY: the caller returns a block it got from us with `layout`.
        unsafe { heap.dealloc(ptr as usize, layout) }
        note_usage(&heap);
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
