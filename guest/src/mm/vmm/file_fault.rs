//! FILE and IMAGE faults: a page already in memory (another mapping's, the
//! image cache's, a `MAP_SHARED` file's own page, a read-only initramfs
//! page mapped in place with its neighbours), a page past the data
//! (demand-zero), or a read planned for outside the VMM lock and installed
//! by [`Vmm::read_done`].
use mobius_shared::stats::FaultKind;

use super::resolve::{done, Target};
use super::*;

/// Pages of the aligned block that [`Vmm::fault_around`] maps at once (64
/// KiB, Linux's default `fault_around_bytes`).
pub const FAULT_AROUND: u64 = 16;

impl<M: Mmu> Vmm<M> {
    pub(super) fn file_fault(&mut self, space: SpaceId, t: Target, access: Access) -> Step {
        let d = self.descs.get(t.desc).expect("live");
        let r = d.records.get(t.index);
        let shared = d.shared;
        let (file, offset, bytes, kind, section) = match &d.kind {
            AreaKind::File { file, offset } => {
                let off = offset + t.index * PAGE_SIZE;
                let bytes = file.len().saturating_sub(off).min(PAGE_SIZE);
                (file.clone(), off, bytes, FaultKind::FileReadIn, None)
            }
            AreaKind::Image { file, .. } => {
                let Some(s) = d.section(t.index) else {
                    return done(FaultOutcome::Unresolved);
                };
                let rel = t.index * PAGE_SIZE - s.offset;
                let bytes = s.file_size.saturating_sub(rel).min(PAGE_SIZE);
                (
                    file.clone(),
                    s.file_offset + rel,
                    bytes,
                    FaultKind::Image,
                    Some(s),
                )
            }
            _ => unreachable!("file_fault on a non-file area"),
        };
        // A read-only section of a program image: never written through
        // any mapping (its pages stay read-only whatever `mprotect` says).
        let read_only = section.is_some_and(|s| !s.flags.contains(MemFlags::WRITE));
        if r & rec::FAILED != 0 {
            return done(FaultOutcome::ReadFailed);
        }
        if r & rec::READING != 0 {
            return done(FaultOutcome::Retry);
        }
        if r & rec::FRAME != 0 {
            // Read in already (another mapping, or mapped again after a
            // protection change): no read.
            return done(self.map_page(&t, r & rec::ADDR, FaultKind::Shared));
        }
        if shared {
            if let Some(page) = file.shared_page(offset) {
                // MAP_SHARED: the file's own page, not owned by the area.
                return done(match page {
                    Ok(phys) => self.map_recorded(t, phys, rec::FRAME, FaultKind::Shared),
                    Err(_) => FaultOutcome::ReadFailed,
                });
            }
        }
        if read_only && bytes == PAGE_SIZE {
            if let Some(frame) = file.frame_in_place(offset) {
                // The whole page lies in place in memory that never
                // changes: map that frame, and the pages around it.
                let outcome = self.map_in_place(&t, frame);
                if let (FaultOutcome::Resolved(_), Some(s)) = (outcome, section) {
                    self.fault_around(&t, &*file, &s);
                }
                return done(outcome);
            }
        }
        if bytes == 0 {
            // Past the data: a zero-filled page, no read (a demand-zero
            // fault, split by the zero pool like any other).
            let Some((frame, hit)) = self.frames.alloc_zeroed(&mut self.mmu) else {
                return done(FaultOutcome::OutOfFrames);
            };
            let bits = rec::FRAME | rec::OWNED;
            let outcome = self.map_recorded(t, frame, bits, FaultKind::DemandZero);
            let pool = if hit {
                FaultKind::ZeroPoolHit
            } else {
                FaultKind::ZeroPoolMiss
            };
            return Step::Done(
                outcome,
                matches!(outcome, FaultOutcome::Resolved(_)).then_some(pool),
            );
        }
        // A read-only page of a program image another process has read.
        let cache_key = match file.id() {
            Some(id) if read_only => Some((id, offset, bytes as usize)),
            _ => None,
        };
        if let Some(key) = cache_key {
            if let Some(outcome) = self.cached_image_page(&t, key) {
                return done(outcome);
            }
        }
        if let Some(all) = file.as_bytes() {
            // In memory: nothing to wait for, so no reason to drop the
            // lock; copy straight into a frame and map it, in one go.
            let page = usize::try_from(offset)
                .ok()
                .and_then(|start| all.get(start..start.checked_add(bytes as usize)?));
            return done(self.copy_in(t, page, kind, cache_key));
        }
        let d = self.descs.get_mut(t.desc).expect("live");
        d.records.set(t.index, d.pages, rec::READING);
        Step::Read(ReadPlan {
            space,
            desc: t.desc,
            page: t.page,
            index: t.index,
            file,
            offset,
            bytes: bytes as usize,
            kind,
            access,
            cache_key,
        })
    }

    /// A FILE/IMAGE page whose bytes lie in memory (`data`, `None` if the
    /// file is shorter than its area says): copied into a fresh frame
    /// (zero-filled past the data), recorded as the area's own, mapped
    /// and, for a read-only image page, cached.
    fn copy_in(
        &mut self,
        t: Target,
        data: Option<&[u8]>,
        kind: FaultKind,
        cache_key: Option<super::cache::PageKey>,
    ) -> FaultOutcome {
        let pages = self.descs.get(t.desc).expect("live").pages;
        let Some(data) = data else {
            let d = self.descs.get_mut(t.desc).expect("live");
            d.records.set(t.index, pages, rec::FAILED);
            return FaultOutcome::ReadFailed;
        };
        let frame = match self.frames.alloc_any() {
            Some(f) => f,
            None if self.cache_trim(0) > 0 => match self.frames.alloc_any() {
                Some(f) => f,
                None => return FaultOutcome::OutOfFrames,
            },
            None => return FaultOutcome::OutOfFrames,
        };
        if data.len() < PAGE_SIZE as usize {
            // The part past the file's bytes reads as zeroes.
            self.mmu.zero_frame(frame);
        }
        self.mmu.write_frame(frame, 0, data);
        let outcome = self.map_recorded(t, frame, rec::FRAME | rec::OWNED, kind);
        if let (FaultOutcome::Resolved(_), Some(key)) = (outcome, cache_key) {
            self.cache_put(key, frame);
        }
        outcome
    }

    /// Map `frame`, which holds page `t` of a read-only image section in
    /// place, read-only, and record it (not owned: the area never frees
    /// it). A [`FaultKind::Shared`] fault: the frame exists already,
    /// nothing is read and no frame allocated.
    fn map_in_place(&mut self, t: &Target, frame: PhysAddr) -> FaultOutcome {
        let ro = Target {
            attrs: t.attrs - PageAttrs::WRITABLE,
            ..*t
        };
        let outcome = self.map_page(&ro, frame, FaultKind::Shared);
        if matches!(outcome, FaultOutcome::Resolved(_)) {
            let d = self.descs.get_mut(t.desc).expect("live");
            d.records.set(t.index, d.pages, frame | rec::FRAME);
        }
        outcome
    }

    /// Fault-around (Linux's `fault_around_bytes`): after page `t` of
    /// read-only section `s` was mapped in place, map the other pages of
    /// its aligned block of [`FAULT_AROUND`] pages that also lie whole in
    /// place in `file`, are in the same section and have no record yet, so
    /// that a program running through its text takes one fault per block
    /// instead of one per page. Nothing is read or allocated for them (bar
    /// page tables, which the faulting page's map made already) and they
    /// are not faults: only the page that faulted is counted.
    fn fault_around(&mut self, t: &Target, file: &dyn FileBacking, s: &Section) {
        let d = self.descs.get_mut(t.desc).expect("live");
        let first_page = s.offset / PAGE_SIZE;
        // Pages of the section whose bytes fill a whole page of the file.
        let full_end = first_page + s.file_size / PAGE_SIZE;
        let start = (t.index & !(FAULT_AROUND - 1)).max(first_page);
        let end = ((t.index | (FAULT_AROUND - 1)) + 1)
            .min(full_end)
            .min(d.pages);
        if end <= start + 1 {
            return;
        }
        let n = (end - start) as usize;
        // The block lies in one chunk of records, which the faulting
        // page's record has just made.
        let Some(records) = d.records.run_mut(start, n) else {
            return;
        };
        let mut frames = [None; FAULT_AROUND as usize];
        let mut any = false;
        let offset = |k: usize| s.file_offset + (start + k as u64 - first_page) * PAGE_SIZE;
        // Usually the whole block lies in place, in consecutive frames.
        let run = file.frames_in_place(offset(0), n);
        for (k, r) in records.iter().enumerate() {
            if *r == 0 {
                frames[k] = match run {
                    Some(first) => Some(first + k as u64 * PAGE_SIZE),
                    None => file.frame_in_place(offset(k)),
                };
                any |= frames[k].is_some();
            }
        }
        if !any {
            return;
        }
        let base = t.page - t.index * PAGE_SIZE;
        let mapped = self.mmu.map_block(
            t.root,
            base + start * PAGE_SIZE,
            &frames[..n],
            t.attrs - PageAttrs::WRITABLE,
            &mut PoolTables(&mut self.frames),
        );
        let d = self.descs.get_mut(t.desc).expect("live");
        let records = d.records.run_mut(start, n).expect("checked above");
        for (k, f) in frames[..n].iter().enumerate() {
            if let Some(frame) = f.filter(|_| mapped & (1 << k) != 0) {
                records[k] = frame | rec::FRAME;
            }
        }
    }

    /// Second part of a FILE/IMAGE fault, under the lock again: install the
    /// data read without the lock (`None` = the read failed).
    pub(crate) fn read_done(&mut self, plan: ReadPlan, data: Option<&[u8]>) -> FaultOutcome {
        let Some(d) = self.descs.get_mut(plan.desc) else {
            return FaultOutcome::Unresolved; // the area went away meanwhile
        };
        let pages = d.pages;
        let Some(data) = data else {
            d.records.set(plan.index, pages, rec::FAILED);
            return FaultOutcome::ReadFailed;
        };
        let frame = match self.frames.alloc_any() {
            Some(f) => Some(f),
            None if self.cache_trim(0) > 0 => self.frames.alloc_any(),
            None => None,
        };
        let Some(frame) = frame else {
            self.descs
                .get_mut(plan.desc)
                .expect("live")
                .records
                .set(plan.index, pages, 0);
            return FaultOutcome::OutOfFrames;
        };
        if data.len() < PAGE_SIZE as usize {
            // The part past the file's bytes reads as zeroes.
            self.mmu.zero_frame(frame);
        }
        self.mmu.write_frame(frame, 0, data);
        self.descs.get_mut(plan.desc).expect("live").records.set(
            plan.index,
            pages,
            frame | rec::FRAME | rec::OWNED,
        );
        if let Some(key) = plan.cache_key {
            self.cache_put(key, frame);
        }
        // Map it if the faulting node still maps this area there.
        match self.fault_begin(plan.space, plan.page, plan.access) {
            Step::Done(outcome, _) if outcome.is_resolved() => FaultOutcome::Resolved(plan.kind),
            Step::Done(outcome, _) => outcome,
            _ => FaultOutcome::Unresolved,
        }
    }
}
