//! The page cache of program images: the read-only pages of one file are
//! read once and shared by every process that runs it (issue 9 item 6).
//!
//! A read-only section page of an IMAGE area whose file says who it is
//! ([`FileBacking::id`]) is kept here after its first read-in, keyed by file,
//! offset and byte count; the cache holds one owner of the frame
//! ([`crate::mm::frame::FrameAllocator::share`]). A later fault on the same
//! page, in any process, maps that frame read-only as a
//! [`FaultKind::Shared`] fault: no frame allocated, nothing read. The cache
//! keeps at most an eighth of RAM; past that, and whenever frames run out,
//! it gives back the frames no process maps any more.
use mobius_shared::stats::FaultKind;

use super::resolve::Target;
use super::*;

/// What identifies a cached page: file, byte offset in it, bytes of data.
pub(super) type PageKey = (usize, u64, usize);

/// The cache.
#[derive(Default)]
pub(super) struct ImageCache {
    pages: BTreeMap<PageKey, PhysAddr>,
}

impl<M: Mmu> Vmm<M> {
    fn cache_limit(&self) -> usize {
        (self.frames.stats().total / 8).max(16) as usize
    }

    /// A cached frame for `key`, with one more owner (the caller's record).
    pub(super) fn cache_take(&mut self, key: PageKey) -> Option<PhysAddr> {
        let frame = *self.cache.pages.get(&key)?;
        self.frames.share(frame).ok()?;
        Some(frame)
    }

    /// Keep `frame` (just read for `key`, owned by an area) in the cache.
    pub(super) fn cache_put(&mut self, key: PageKey, frame: PhysAddr) {
        if self.cache.pages.len() >= self.cache_limit() {
            self.cache_trim(self.cache_limit() / 2);
        }
        if self.cache.pages.len() >= self.cache_limit() || self.cache.pages.contains_key(&key) {
            return;
        }
        if self.frames.share(frame).is_ok() {
            self.cache.pages.insert(key, frame);
        }
    }

    /// Give back cached frames no area owns any more until at most `keep`
    /// pages stay cached (or none is unused). Returns how many went.
    pub(super) fn cache_trim(&mut self, keep: usize) -> usize {
        let unused: Vec<PageKey> = self
            .cache
            .pages
            .iter()
            .filter(|(_, f)| self.frames.shares(**f) == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut freed = 0;
        for k in unused {
            if self.cache.pages.len() <= keep {
                break;
            }
            if let Some(frame) = self.cache.pages.remove(&k) {
                let _ = self.frames.free(frame, &mut self.mmu);
                freed += 1;
            }
        }
        freed
    }

    /// Frames the cache holds (for the invariants).
    pub(super) fn cache_frames(&self) -> impl Iterator<Item = PhysAddr> + '_ {
        self.cache.pages.values().copied()
    }

    /// Drop every unused cached page (frames are short, or a test wants
    /// every frame back). Returns how many went.
    pub fn drop_unused_cache(&mut self) -> usize {
        self.cache_trim(0)
    }

    /// Map the cached frame for `key` at `t` read-only, if there is one.
    pub(super) fn cached_image_page(&mut self, t: &Target, key: PageKey) -> Option<FaultOutcome> {
        let frame = self.cache_take(key)?;
        let d = self.descs.get_mut(t.desc).expect("live");
        d.records
            .set(t.index, d.pages, frame | rec::FRAME | rec::OWNED);
        let attrs = t.attrs - PageAttrs::WRITABLE;
        self.frames.ensure_known_zero(TABLES_PER_MAP, &mut self.mmu);
        let mapped = self.mmu.map(
            t.root,
            t.page,
            frame,
            attrs,
            &mut PoolTables(&mut self.frames),
        );
        Some(match mapped {
            Ok(()) => FaultOutcome::Resolved(FaultKind::Shared),
            Err(MapError::OutOfFrames) => FaultOutcome::OutOfFrames,
            Err(MapError::AlreadyMapped) => FaultOutcome::Spurious,
            Err(_) => FaultOutcome::Unresolved,
        })
    }
}
