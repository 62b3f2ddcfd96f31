//! One 4 KiB block of a `/tmp` file: a whole, page-aligned page of the
//! kernel heap.
//!
//! Being a whole page is what lets a `MAP_SHARED` mapping of the file map
//! the block itself: `read`, `write` and every shared mapping of the file
//! then see the same bytes, with nothing to copy or write back. A mapping
//! holds its own reference to each block it maps ([`Block`] is kept in an
//! `Arc`), so a block outlives a `truncate` or `unlink` for as long as a
//! mapping still shows it; until it is freed it stays counted in its file
//! system's budget, wherever it is held.
use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes of a block.
pub const BLOCK: usize = 4096;

/// What a block is counted against: its file system's blocks in use.
pub struct Budget {
    pub used: AtomicU64,
    pub limit: u64,
}

/// A zero-filled or written block of file data.
pub struct Block {
    page: NonNull<u8>,
    budget: Arc<Budget>,
}

// SAFETY: a block is a plain heap page; the bytes behind it are only
// reached through `read`/`write` (copies under the file's lock) and
// through user mappings, which the kernel never dereferences as Rust data.
unsafe impl Send for Block {}
// SAFETY: as above; no method hands out a reference into the page.
unsafe impl Sync for Block {}

fn layout() -> Layout {
    // BLOCK is a non-zero power of two.
    Layout::from_size_align(BLOCK, BLOCK).unwrap_or(Layout::new::<u8>())
}

impl Block {
    /// A zeroed block, taken from `budget` and the heap; `None` when either
    /// is exhausted.
    pub fn new(budget: &Arc<Budget>) -> Option<Arc<Block>> {
        if budget.used.fetch_add(1, Ordering::Relaxed) >= budget.limit {
            budget.used.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let page = NonNull::new(unsafe { alloc_zeroed(layout()) });
        let block = page.map(|page| Block {
            page,
            budget: budget.clone(),
        });
        let Some(block) = block else {
            budget.used.fetch_sub(1, Ordering::Relaxed);
            return None;
        };
        // The page is the allocation that can fail for want of room; the
        // `Arc` around it is a few words, like every other kernel object.
        Some(Arc::new(block))
    }

    /// The block's kernel address (page aligned). Host builds map nothing.
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub fn addr(&self) -> u64 {
        self.page.as_ptr() as u64
    }

    /// Copy `out.len()` bytes from `within` (clamped to the block).
    pub fn read(&self, within: usize, out: &mut [u8]) {
        let n = out.len().min(BLOCK.saturating_sub(within));
        // SAFETY: `within + n <= BLOCK`: inside the page, which lives as
        // long as `self`; a user mapping writing at the same time only
        // changes which bytes are read.
        unsafe {
            core::ptr::copy_nonoverlapping(self.page.as_ptr().add(within), out.as_mut_ptr(), n)
        }
    }

    /// Copy `data` into the block at `within` (clamped to the block).
    pub fn write(&self, within: usize, data: &[u8]) {
        let n = data.len().min(BLOCK.saturating_sub(within));
        // SAFETY: as in `read`; the page is only ever reached by copies.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.page.as_ptr().add(within), n) }
    }

    /// Zero the block from `within` to its end.
    pub fn zero_from(&self, within: usize) {
        let n = BLOCK.saturating_sub(within);
        // SAFETY: `within + n == BLOCK` (or nothing): inside the page.
        unsafe { core::ptr::write_bytes(self.page.as_ptr().add(within.min(BLOCK)), 0, n) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.page.as_ptr(), layout()) }
        self.budget.used.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicU64::new(0),
            limit,
        })
    }

    #[test]
    fn blocks_are_zeroed_aligned_and_counted_until_dropped() {
        let b = budget(2);
        let one = Block::new(&b).expect("room");
        let two = Block::new(&b).expect("room");
        assert!(Block::new(&b).is_none(), "the budget holds");
        assert_eq!(one.addr() % BLOCK as u64, 0);
        let mut out = [1u8; 16];
        one.read(BLOCK - 8, &mut out);
        assert_eq!(out[..8], [0; 8]);
        assert_eq!(out[8..], [1; 8], "clamped to the block");
        one.write(10, b"abc");
        one.read(9, &mut out[..5]);
        assert_eq!(&out[..5], b"\0abc\0");
        one.zero_from(11);
        one.read(10, &mut out[..3]);
        assert_eq!(&out[..3], b"a\0\0");
        let held = one.clone();
        drop(one);
        assert_eq!(b.used.load(Ordering::Relaxed), 2, "a holder keeps it");
        drop(held);
        drop(two);
        assert_eq!(b.used.load(Ordering::Relaxed), 0);
        assert!(Block::new(&b).is_some());
    }
}
