//! The kernel heap's allocator: power-of-two size classes with intrusive free
//! lists, carved from one range of RAM.
//!
//! Our own rather than `linked_list_allocator` (first fit over a list of
//! holes) or another crate, because of where the kernel runs: kvm_pvm
//! emulates every guest ring-0 instruction (~0.7 µs each), so an allocation
//! must cost a handful of instructions, not a list walk. Measured at boot,
//! the linked-list heap spent ~1,750 instructions on the VMM's first dozen
//! allocations. Here:
//!
//! * `alloc` pops the class's free list, or takes the next block of the
//!   class's current 4 KiB slab, or (4 KiB and up) the next pages of the
//!   range: O(1), about twenty instructions.
//! * `dealloc` pushes the block on its class's free list: O(1).
//! * `alloc_zeroed` zeroes only blocks that were used before. Memory never
//!   handed out is zero already: the range is RAM the loader handed over
//!   zeroed, as the boot protocol of both loaders promises (the same promise
//!   that lets the kernel skip zeroing `.bss` and the frame allocator count
//!   fresh frames as zero).
//! * `realloc` within the same class keeps the block.
//!
//! The price is memory: a block is its request rounded up to a power of two
//! (at most twice the request), and freed blocks stay in their class.
//!
//! The allocator works on addresses; [`ClassHeap`] is portable and tested on
//! the host over an ordinary buffer. The kernel wraps it in a lock as its
//! `#[global_allocator]` (`crate::heap`).
use core::alloc::Layout;

/// Smallest block: two words, room for the free-list link.
const MIN_SHIFT: u32 = 4;
/// Classes up to this size are carved from 4 KiB slabs; larger ones are
/// whole pages from the range.
const SLAB_SHIFT: u32 = 12;
const SLAB: usize = 1 << SLAB_SHIFT;
/// Number of classes: 16 B up to 2^47 B (beyond any heap).
const CLASSES: usize = 44;

/// One size class: free blocks, and the rest of its current slab.
#[derive(Debug, Clone, Copy)]
struct Class {
    /// Address of the first free block (0: none); each free block holds the
    /// address of the next in its first word.
    free: usize,
    /// Next unused block of the current slab, and the slab's end.
    bump: usize,
    bump_end: usize,
}

impl Class {
    const EMPTY: Class = Class {
        free: 0,
        bump: 0,
        bump_end: 0,
    };
}

/// The allocator over `[start, end)`. See the module documentation.
#[derive(Debug)]
pub struct ClassHeap {
    classes: [Class; CLASSES],
    /// First never-used byte of the range (page aligned) and its end.
    next: usize,
    end: usize,
    size: usize,
    /// Bytes in blocks handed out (class sizes).
    used: usize,
}

/// The class of a layout, or `None` if no class holds it.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    let class = (shift - MIN_SHIFT) as usize;
    (class < CLASSES).then_some(class)
}

const fn class_size(class: usize) -> usize {
    1 << (class as u32 + MIN_SHIFT)
}

impl ClassHeap {
    /// An allocator with no memory; every allocation fails until [`init`].
    ///
    /// [`init`]: ClassHeap::init
    pub const fn empty() -> Self {
        ClassHeap {
            classes: [Class::EMPTY; CLASSES],
            next: 0,
            end: 0,
            size: 0,
            used: 0,
        }
    }

    /// Take `[start, start + size)` as the heap (trimmed to whole pages).
    ///
    /// # Safety
    /// The range must be writable memory used by nothing else for as long as
    /// this allocator hands out blocks, and read as zero wherever it was not
    /// written through a block of this allocator.
    pub unsafe fn init(&mut self, start: usize, size: usize) {
        let first = start.next_multiple_of(SLAB);
        let end = start.saturating_add(size) & !(SLAB - 1);
        *self = ClassHeap::empty();
        self.next = first;
        self.end = end.max(first);
        self.size = self.end - first;
    }

    /// Allocate; returns the address and whether the block is known zero
    /// (never used before), or `None` when the heap is full.
    pub fn alloc(&mut self, layout: Layout) -> Option<(usize, bool)> {
        let class = class_of(layout)?;
        let c = &mut self.classes[class];
        let size = class_size(class);
        if c.free != 0 {
            let block = c.free;
            // SAFETY: `block` is a free block of this class, inside the
            // range, aligned to its size; its first word is the link.
            c.free = unsafe { (block as *const usize).read() };
            self.used += size;
            return Some((block, false));
        }
        let block = if size < SLAB {
            if c.bump == c.bump_end {
                let slab = self.take_pages(SLAB, SLAB)?;
                let c = &mut self.classes[class];
                c.bump = slab;
                c.bump_end = slab + SLAB;
            }
            let c = &mut self.classes[class];
            let block = c.bump;
            c.bump += size;
            block
        } else {
            self.take_pages(size, layout.align().max(SLAB))?
        };
        self.used += size;
        Some((block, true))
    }

    /// Never-used pages for `size` bytes aligned to `align` (a power of two
    /// of at least a page). Skipped pages for a large alignment stay unused.
    fn take_pages(&mut self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(start)
    }

    /// Give back a block.
    ///
    /// # Safety
    /// `addr` must have come from [`alloc`](ClassHeap::alloc) (or
    /// [`realloc`](ClassHeap::realloc)) with this `layout`, and not been freed since.
    pub unsafe fn dealloc(&mut self, addr: usize, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        let c = &mut self.classes[class];
        // SAFETY: the caller gives back a block of this class, which is at
        // least two words and ours again.
        unsafe { (addr as *mut usize).write(c.free) };
        c.free = addr;
        self.used -= class_size(class);
    }

    /// Resize: the same block when the new size is in the same class, else
    /// `None` (the caller moves the contents to a new block).
    pub fn realloc_in_place(&self, layout: Layout, new_size: usize) -> bool {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return false;
        };
        class_of(layout).is_some() && class_of(layout) == class_of(new)
    }

    /// Bytes in blocks handed out, and bytes not handed out.
    pub fn usage(&self) -> (usize, usize) {
        (self.used, self.size - self.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A heap over a fresh zeroed buffer of `pages` pages (kept alive by the
    /// returned Vec).
    fn heap(pages: usize) -> (ClassHeap, Vec<u8>) {
        let buf = vec![0u8; (pages + 1) * SLAB];
        let mut h = ClassHeap::empty();
        // SAFETY: the buffer is ours, zeroed, and outlives the heap in tests.
        unsafe { h.init(buf.as_ptr() as usize, buf.len()) };
        (h, buf)
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("valid")
    }

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(layout(1, 1)), Some(0));
        assert_eq!(class_of(layout(16, 8)), Some(0));
        assert_eq!(class_of(layout(17, 8)), Some(1));
        assert_eq!(class_of(layout(8, 64)), Some(2), "alignment counts");
        assert_eq!(class_size(class_of(layout(4097, 8)).expect("class")), 8192);
        assert_eq!(class_of(layout(usize::MAX / 2, 1)), None);
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused_lifo() {
        let (mut h, _buf) = heap(8);
        let l = layout(24, 8);
        let (a, a_zero) = h.alloc(l).expect("room");
        let (b, _) = h.alloc(l).expect("room");
        assert!(a_zero);
        assert_eq!(b - a, 32);
        assert_eq!(a % 32, 0);
        // SAFETY: `a` came from this heap with `l`.
        unsafe { h.dealloc(a, l) };
        assert_eq!(h.alloc(l), Some((a, false)), "reused, not known zero");
        let (big, zero) = h.alloc(layout(5000, 16)).expect("room");
        assert!(zero);
        assert_eq!(big % SLAB, 0);
        let (aligned, _) = h.alloc(layout(64, 8192)).expect("room");
        assert_eq!(aligned % 8192, 0);
    }

    #[test]
    fn full_heap_fails_and_recovers_after_free() {
        let (mut h, _buf) = heap(3);
        let l = layout(SLAB, SLAB);
        let got: Vec<usize> = (0..3).map(|_| h.alloc(l).expect("room").0).collect();
        assert_eq!(h.alloc(l), None);
        assert_eq!(h.alloc(layout(8, 8)), None, "no page left for a slab");
        assert_eq!(h.usage(), (3 * SLAB, 0));
        // SAFETY: `got[1]` came from this heap with `l`.
        unsafe { h.dealloc(got[1], l) };
        assert_eq!(h.alloc(l), Some((got[1], false)));
    }

    #[test]
    fn realloc_in_place_only_within_a_class() {
        let h = ClassHeap::empty();
        assert!(h.realloc_in_place(layout(20, 8), 32));
        assert!(!h.realloc_in_place(layout(20, 8), 33));
        assert!(!h.realloc_in_place(layout(20, 8), usize::MAX));
    }

    #[test]
    fn random_churn_never_overlaps() {
        // A deterministic mix of sizes allocated and freed; live blocks must
        // never overlap and must stay inside the buffer.
        let (mut h, buf) = heap(256);
        let (lo, hi) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        let mut live: Vec<(usize, Layout)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(3) && !live.is_empty() {
                let (a, l) = live.swap_remove((seed as usize / 3) % live.len());
                // SAFETY: `a` is live and came from this heap with `l`.
                unsafe { h.dealloc(a, l) };
            } else {
                let l = layout(1 + (seed as usize >> 20) % 9000, 8);
                if let Some((a, _)) = h.alloc(l) {
                    assert!(a >= lo && a + l.size() <= hi);
                    live.push((a, l));
                }
            }
        }
        live.sort_unstable_by_key(|&(a, _)| a);
        for w in live.windows(2) {
            assert!(w[0].0 + w[0].1.size() <= w[1].0, "overlap");
        }
    }
}
