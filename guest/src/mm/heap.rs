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
//! * Small blocks (up to 2 KiB): `alloc` pops the class's free list, or takes
//!   the next block of the class's current 4 KiB slab: O(1), about twenty
//!   instructions. `dealloc` pushes the block on its class's free list.
//! * Large blocks (more than 2 KiB) are runs of whole pages: first fit in an
//!   address-ordered list of free runs, which `dealloc` merges with their
//!   neighbours, else never-used pages. A growing `Vec` (the descriptor table
//!   of 100,000 areas) then costs about its final size, not twice it, as
//!   power-of-two classes for large blocks did. Large blocks are rare (table
//!   growth), so the list walk is not on any hot path.
//! * Slabs are one-page runs, taken the same way.
//! * `alloc_zeroed` zeroes only blocks that were used before. Memory never
//!   handed out is zero already: the range is RAM the loader handed over
//!   zeroed, as the boot protocol of both loaders promises (the same promise
//!   that lets the kernel skip zeroing `.bss` and the frame allocator count
//!   fresh frames as zero).
//! * `realloc` within the same class, or the same number of pages, keeps the block.
//!
//! The price is memory: a small block is its request rounded up to a power of
//! two, and freed small blocks stay in their class.
//!
//! The allocator works on addresses; [`ClassHeap`] is portable and tested on
//! the host over an ordinary buffer. The kernel wraps it in a lock as its
//! `#[global_allocator]` (`crate::heap`).
use core::alloc::Layout;

/// Smallest block: two words, room for the free-list link.
const MIN_SHIFT: u32 = 4;
/// Small classes are carved from slabs of one page; larger blocks are runs
/// of whole pages.
const SLAB_SHIFT: u32 = 12;
const SLAB: usize = 1 << SLAB_SHIFT;
/// Small classes: 16 B up to 2 KiB.
const CLASSES: usize = (SLAB_SHIFT - MIN_SHIFT) as usize;

/// One size class: free blocks, and the rest of its current slab.
#[derive(Debug, Clone, Copy)]
struct Class {
    /// Address of the first free block (0: none); each free block holds the
    /// address of the next in its first word.
    free: usize,
    /// Next unused block of the current slab, and the slab's end.
    bump: usize,
    bump_end: usize,
    /// Whether the current slab was never used before (its blocks read zero).
    bump_zero: bool,
}

impl Class {
    const EMPTY: Class = Class {
        free: 0,
        bump: 0,
        bump_end: 0,
        bump_zero: false,
    };
}

/// The allocator over `[start, end)`. See the module documentation.
#[derive(Debug)]
pub struct ClassHeap {
    classes: [Class; CLASSES],
    /// Address of the first free page run (0: none), runs in address order;
    /// each holds a [`Run`] header.
    runs: usize,
    /// First never-used byte of the range (page aligned) and its end.
    next: usize,
    end: usize,
    size: usize,
    /// Bytes in blocks handed out (class sizes).
    used: usize,
}

/// The header at the start of a free page run.
#[repr(C)]
struct Run {
    pages: usize,
    /// Address of the next free run (0: none); always above this one.
    next: usize,
}

/// The small class of a layout, or `None` for a large block.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    let class = (shift - MIN_SHIFT) as usize;
    (class < CLASSES).then_some(class)
}

/// Pages of a large block.
fn pages_of(layout: Layout) -> usize {
    layout.size().div_ceil(SLAB).max(1)
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
            runs: 0,
            next: 0,
            end: 0,
            size: 0,
            used: 0,
        }
    }

    /// Whether [`Self::init`] gave this heap a range.
    pub fn has_range(&self) -> bool {
        self.end != 0
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
        let Some(class) = class_of(layout) else {
            let pages = pages_of(layout);
            let got = self.alloc_pages(pages, layout.align().max(SLAB))?;
            self.used += pages * SLAB;
            return Some(got);
        };
        let size = class_size(class);
        let c = &mut self.classes[class];
        let got = if c.free != 0 {
            let block = c.free;
            // SAFETY: `block` is a free block of this class, inside the
            // range, aligned to its size; its first word is the link.
            c.free = unsafe { (block as *const usize).read() };
            (block, false)
        } else {
            if c.bump == c.bump_end {
                let (slab, zero) = self.alloc_pages(1, SLAB)?;
                let c = &mut self.classes[class];
                (c.bump, c.bump_end, c.bump_zero) = (slab, slab + SLAB, zero);
            }
            let c = &mut self.classes[class];
            let block = c.bump;
            c.bump += size;
            (block, c.bump_zero)
        };
        self.used += size;
        Some(got)
    }

    /// `pages` pages aligned to `align` (a power of two, at least a page):
    /// the first free run that holds them, else never-used pages (known
    /// zero). Returns the address and whether it is known zero.
    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<(usize, bool)> {
        let size = pages.checked_mul(SLAB)?;
        let mut prev = 0;
        let mut at = self.runs;
        while at != 0 {
            // SAFETY: `at` is a free run of this heap, with its header.
            let run = unsafe { &*(at as *const Run) };
            let next = run.next;
            if at.is_multiple_of(align) && run.pages >= pages {
                let rest = run.pages - pages;
                let after = if rest == 0 {
                    next
                } else {
                    let tail = at + size;
                    // SAFETY: the tail is the unused part of this free run.
                    unsafe { (tail as *mut Run).write(Run { pages: rest, next }) };
                    tail
                };
                self.link(prev, after);
                return Some((at, false));
            }
            prev = at;
            at = next;
        }
        let start = self.next.checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some((start, true))
    }

    /// Make the run after `prev` (or the first run, if `prev` is 0) `next`.
    fn link(&mut self, prev: usize, next: usize) {
        if prev == 0 {
            self.runs = next;
        } else {
            // SAFETY: `prev` is a free run of this heap.
            unsafe { (*(prev as *mut Run)).next = next };
        }
    }

    /// Give back `pages` pages at `addr`, merged with free neighbours.
    fn free_pages(&mut self, addr: usize, pages: usize) {
        let mut prev = 0;
        let mut at = self.runs;
        while at != 0 && at < addr {
            prev = at;
            // SAFETY: `at` is a free run of this heap.
            at = unsafe { (*(at as *const Run)).next };
        }
        let mut run = Run { pages, next: at };
        if at != 0 && addr + pages * SLAB == at {
            // SAFETY: `at` is the free run right after the block.
            let following = unsafe { &*(at as *const Run) };
            run = Run {
                pages: pages + following.pages,
                next: following.next,
            };
        }
        if prev != 0 {
            // SAFETY: `prev` is the free run right before the block's place.
            let before = unsafe { &mut *(prev as *mut Run) };
            if prev + before.pages * SLAB == addr {
                *before = Run {
                    pages: before.pages + run.pages,
                    next: run.next,
                };
                return;
            }
        }
        // SAFETY: the block is ours again, at least a page, page aligned.
        unsafe { (addr as *mut Run).write(run) };
        self.link(prev, addr);
    }

    /// Give back a block.
    ///
    /// # Safety
    /// `addr` must have come from [`alloc`](ClassHeap::alloc) with this
    /// `layout` (or a layout [`realloc_in_place`](ClassHeap::realloc_in_place)
    /// accepted for it), and not been freed since.
    pub unsafe fn dealloc(&mut self, addr: usize, layout: Layout) {
        let Some(class) = class_of(layout) else {
            let pages = pages_of(layout);
            self.free_pages(addr, pages);
            self.used -= pages * SLAB;
            return;
        };
        let c = &mut self.classes[class];
        // SAFETY: the caller gives back a block of this class, which is at
        // least two words and ours again.
        unsafe { (addr as *mut usize).write(c.free) };
        c.free = addr;
        self.used -= class_size(class);
    }

    /// Whether a block of `layout` can serve `new_size` bytes where it is:
    /// the same small class, or the same number of pages.
    pub fn realloc_in_place(&self, layout: Layout, new_size: usize) -> bool {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return false;
        };
        match (class_of(layout), class_of(new)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => pages_of(layout) == pages_of(new),
            _ => false,
        }
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
        assert_eq!(class_of(layout(2048, 8)), Some(CLASSES - 1));
        assert_eq!(class_of(layout(2049, 8)), None, "a page run");
        assert_eq!(pages_of(layout(4097, 8)), 2);
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
    fn a_growing_vec_fits_in_little_more_than_its_final_size() {
        // A Vec doubling to 3/8 of the heap, with small allocations between
        // the steps (as 100,000 areas grow the descriptor table while the
        // node maps allocate). Power-of-two classes for large blocks needed
        // ~2x the final size and ran a kernel heap out; page runs that are
        // coalesced when freed and reused must not.
        let pages = 4096;
        let (mut h, _buf) = heap(pages);
        let mut block = None;
        let mut size = 3 * SLAB;
        let mut smalls = Vec::new();
        while size <= pages * SLAB * 3 / 8 {
            let l = layout(size, 8);
            let (new, _) = h.alloc(l).expect("room for the next size");
            if let Some((old, old_l)) = block.replace((new, l)) {
                // SAFETY: `old` came from this heap with `old_l`.
                unsafe { h.dealloc(old, old_l) };
            }
            for _ in 0..64 {
                smalls.push(h.alloc(layout(200, 8)).expect("room").0);
            }
            size = size * 2 - SLAB / 2;
        }
        assert!(!smalls.is_empty());
    }

    #[test]
    fn freed_runs_coalesce_and_are_reused() {
        let (mut h, _buf) = heap(64);
        let l = layout(3 * SLAB, 8);
        let a = h.alloc(l).expect("room").0;
        let b = h.alloc(l).expect("room").0;
        let c = h.alloc(l).expect("room").0;
        // SAFETY: each came from this heap with `l`.
        unsafe {
            h.dealloc(a, l);
            h.dealloc(c, l);
            h.dealloc(b, l);
        }
        // a, b, c are one run of 9 pages again: a 9-page block fits there.
        let big = layout(9 * SLAB, 8);
        assert_eq!(h.alloc(big), Some((a, false)));
        // A large alignment is honoured too.
        let (al, _) = h.alloc(layout(2 * SLAB, 4 * SLAB)).expect("room");
        assert_eq!(al % (4 * SLAB), 0);
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
