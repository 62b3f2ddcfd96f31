//! Duplicating an address space (`fork`) with copy-on-write, and breaking
//! a copy-on-write page on its first write.
//!
//! Möbius had no fork, but its descriptors were built for it. The rule per
//! node of the parent's user half:
//!
//! * a private NORMAL, FILE or IMAGE area (one reference, not exported):
//!   the child gets a descriptor of its own whose page records point at the
//!   parent's frames; every such frame gains an owner and is marked
//!   [`rec::COW`] on both sides, and the parent's mappings of it become
//!   read-only. The first write by either side copies the page
//!   ([`FaultKind::Cow`]), or takes the frame over when it has no other
//!   owner left ([`FaultKind::CowReuse`]); a read maps the shared frame
//!   read-only ([`FaultKind::Shared`]).
//! * a shared area (exported by `VmmShare`, mapped from a handle, or
//!   otherwise referenced more than once), a MAP area (a physical range) and
//!   a CALLBACK area: the child maps the same descriptor, so both see the
//!   same pages (a CALLBACK handler is called for whichever side faults
//!   first, once per page, as for any shared area).
//! * a reservation: the child has the same reservation.
//!
//! Frames are conserved: a frame is freed when its last owner frees it
//! ([`crate::mm::frame::FrameAllocator::free`] drops one owner).
use mobius_shared::stats::FaultKind;

use super::resolve::Target;
use super::*;

impl<M: Mmu> Vmm<M> {
    /// A new process space holding a copy-on-write duplicate of `parent`'s
    /// user half (`fork`). Call with `parent` live in CR3 (its mappings
    /// become read-only, which flushes them from the TLB).
    pub fn fork_space(&mut self, parent: SpaceId) -> Result<SpaceId, VmError> {
        let start = self.tree(parent, Half::User)?.start();
        let child = self.create_space_from(start)?;
        let nodes: Vec<(VirtAddr, Node)> = self.tree(parent, Half::User)?.iter().collect();
        for (base, node) in nodes {
            let kind = match node.kind {
                NodeKind::Empty => continue,
                NodeKind::Reserved => NodeKind::Reserved,
                NodeKind::Mapped { desc, flags } => NodeKind::Mapped {
                    desc: self.fork_area(parent, base, desc),
                    flags,
                },
            };
            self.insert_node(child, Half::User, base, node.pages, kind);
        }
        self.hint = None;
        Ok(child)
    }

    /// The child's descriptor for the parent's area `desc` mapped at `base`.
    fn fork_area(&mut self, parent: SpaceId, base: VirtAddr, desc: DescId) -> DescId {
        let exported = self.exports.values().any(|d| *d == desc);
        let d = self
            .descs
            .get_mut(desc)
            .expect("mapped node has a live desc");
        let private = matches!(
            d.kind,
            AreaKind::Normal | AreaKind::File { .. } | AreaKind::Image { .. }
        );
        if !private || d.refs != 1 || exported || d.shared {
            d.refs += 1;
            return desc;
        }
        let mut records = PageRecords::default();
        let pages = d.pages;
        let shared: Vec<(u64, u64)> = d.records.iter().collect();
        for &(i, r) in &shared {
            // A page being read (never, with synchronous reads) starts
            // over in the child.
            let r = if r & rec::READING != 0 { 0 } else { r };
            if r & rec::FRAME != 0 && r & rec::OWNED != 0 {
                let marked = r | rec::COW;
                d.records.set(i, pages, marked);
                records.set(i, pages, marked);
            } else {
                records.set(i, pages, r);
            }
        }
        d.cow = true;
        let copy = AreaDesc {
            pages,
            flags: d.flags,
            kind: d.kind.clone(),
            records,
            refs: 1,
            cow: true,
            shared: false,
        };
        let root = self.root_for(parent, Half::User);
        for (i, r) in shared {
            if r & rec::FRAME == 0 || r & rec::OWNED == 0 || r & rec::READING != 0 {
                continue;
            }
            let frame = r & rec::ADDR;
            let shared_ok = self.frames.share(frame);
            debug_assert!(shared_ok.is_ok(), "area frame not in use: {shared_ok:?}");
            let page = base + i * PAGE_SIZE;
            if let Some((_, attrs)) = self.mmu.translate(root, page) {
                if attrs.contains(PageAttrs::WRITABLE) {
                    let _ = self.mmu.protect(root, page, attrs - PageAttrs::WRITABLE);
                }
            }
        }
        self.descs.insert(copy)
    }

    /// A fault on a copy-on-write page `t` (its record `r`; `t.attrs` are
    /// the attributes of a writable mapping): a write copies or takes over
    /// the frame, a read maps it read-only.
    pub(super) fn cow_fault(&mut self, t: &Target, r: u64, access: Access) -> FaultOutcome {
        let (root, page, desc, index, write_attrs) = (t.root, t.page, t.desc, t.index, t.attrs);
        let frame = r & rec::ADDR;
        let mapped = self.mmu.translate(root, page).is_some();
        if !access.write {
            if mapped {
                return FaultOutcome::Spurious;
            }
            let attrs = write_attrs - PageAttrs::WRITABLE;
            return self.map_frame(root, page, frame, attrs, FaultKind::Shared);
        }
        let pages = self.descs.get(desc).expect("live").pages;
        if self.frames.shares(frame) == 0 {
            // The last owner: keep the frame, no copy.
            let d = self.descs.get_mut(desc).expect("live");
            d.records.set(index, pages, r & !rec::COW);
            if mapped {
                return match self.mmu.protect(root, page, write_attrs) {
                    Ok(()) => FaultOutcome::Resolved(FaultKind::CowReuse),
                    Err(_) => FaultOutcome::Unresolved,
                };
            }
            return self.map_frame(root, page, frame, write_attrs, FaultKind::CowReuse);
        }
        let Some(copy) = self.frames.alloc_any() else {
            return FaultOutcome::OutOfFrames;
        };
        self.mmu.copy_frame(copy, frame);
        if mapped {
            let mut tables = PoolTables(&mut self.frames);
            self.mmu.unmap(root, page, &mut tables);
        }
        let outcome = self.map_frame(root, page, copy, write_attrs, FaultKind::Cow);
        if matches!(outcome, FaultOutcome::Resolved(_)) {
            let d = self.descs.get_mut(desc).expect("live");
            d.records.set(index, pages, copy | rec::FRAME | rec::OWNED);
            // One owner less for the shared frame.
            let _ = self.frames.free(frame, &mut self.mmu);
        } else {
            let _ = self.frames.free(copy, &mut self.mmu);
        }
        outcome
    }

    fn map_frame(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frame: PhysAddr,
        attrs: PageAttrs,
        kind: FaultKind,
    ) -> FaultOutcome {
        self.frames.ensure_known_zero(TABLES_PER_MAP, &mut self.mmu);
        match self
            .mmu
            .map(root, page, frame, attrs, &mut PoolTables(&mut self.frames))
        {
            Ok(()) => FaultOutcome::Resolved(kind),
            Err(MapError::OutOfFrames) => FaultOutcome::OutOfFrames,
            Err(MapError::AlreadyMapped) => FaultOutcome::Spurious,
            Err(_) => FaultOutcome::Unresolved,
        }
    }
}
