//! Fault resolution (`VmmPageFault`'s body, called by `mm::fault`): the
//! one-entry node hint, the short path for demand-zero and upgrades, and
//! every area kind's resolution but FILE and IMAGE pages ([`super::file_fault`]).
use alloc::sync::Arc;

use mobius_shared::stats::FaultKind;

use super::*;
use crate::mm::record;

/// The kind of access that faulted (from the #PF error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    /// Error code W/R: the access was a write.
    pub write: bool,
    /// Error code U/S: the access came from user mode.
    pub user: bool,
    /// Error code I/D: an instruction fetch.
    pub instruction: bool,
    /// Error code P: the page was present (a protection fault). When false
    /// the fault path skips looking at the page tables; if the page turns
    /// out to be mapped after all the fault is [`FaultOutcome::Spurious`]
    /// and the retried access faults again with `present` set.
    pub present: bool,
}

impl Access {
    pub const READ: Access = Access {
        write: false,
        user: false,
        instruction: false,
        present: false,
    };
    pub const WRITE: Access = Access {
        write: true,
        user: false,
        instruction: false,
        present: false,
    };
    pub const USER_READ: Access = Access {
        write: false,
        user: true,
        instruction: false,
        present: false,
    };
    pub const USER_WRITE: Access = Access {
        write: true,
        user: true,
        instruction: false,
        present: false,
    };
}

/// What became of a page fault ([`crate::mm::fault::handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Resolved; retry the instruction. The kind is what was counted.
    Resolved(FaultKind),
    /// The page was already mapped as needed (stale TLB entry); retry.
    Spurious,
    /// Another fault is reading the page in; wait and retry.
    Retry,
    /// The access is not allowed by the area: counted, nothing allocated.
    Protection,
    /// No area covers the address (or no section of an image does).
    Unresolved,
    /// No frame for the page (or a page table): counted, never a hang.
    OutOfFrames,
    /// Reading the page failed; terminal for this page (`PAGE_READFAILED`).
    ReadFailed,
}

impl core::fmt::Display for FaultOutcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FaultOutcome::Resolved(k) => write!(f, "resolved ({})", k.name()),
            FaultOutcome::Spurious => f.write_str("spurious"),
            FaultOutcome::Retry => f.write_str("retry (read in progress)"),
            FaultOutcome::Protection => f.write_str("protection violation"),
            FaultOutcome::Unresolved => f.write_str("no area covers the address"),
            FaultOutcome::OutOfFrames => f.write_str("out of physical frames"),
            FaultOutcome::ReadFailed => f.write_str("page read failed"),
        }
    }
}

impl FaultOutcome {
    /// Whether the faulting instruction can be restarted.
    pub fn is_resolved(self) -> bool {
        matches!(
            self,
            FaultOutcome::Resolved(_) | FaultOutcome::Spurious | FaultOutcome::Retry
        )
    }

    /// The kind this outcome is counted under, if any.
    pub fn kind(self) -> Option<FaultKind> {
        match self {
            FaultOutcome::Resolved(k) => Some(k),
            FaultOutcome::Protection => Some(FaultKind::Protection),
            FaultOutcome::Unresolved | FaultOutcome::OutOfFrames | FaultOutcome::ReadFailed => {
                Some(FaultKind::Unresolved)
            }
            FaultOutcome::Spurious | FaultOutcome::Retry => None,
        }
    }
}

/// What the fault path must do next (see `fault::handle`).
pub(crate) enum Step {
    Done(FaultOutcome, Option<FaultKind>),
    Read(ReadPlan),
    Callback(CallbackPlan),
}

/// A FILE/IMAGE read to do without the lock.
pub(crate) struct ReadPlan {
    pub space: SpaceId,
    pub desc: DescId,
    pub page: VirtAddr,
    pub index: u64,
    pub file: Arc<dyn FileBacking>,
    pub offset: u64,
    pub bytes: usize,
    pub kind: FaultKind,
    pub access: Access,
    /// Where the page goes in the image page cache once read.
    pub cache_key: Option<super::cache::PageKey>,
}

/// A CALLBACK handler to call without the lock.
pub(crate) struct CallbackPlan {
    pub handler: Arc<CallbackFn>,
    pub fault: CallbackFault,
    pub desc: DescId,
}

/// A mapped node as the fault path needs it: a one-entry cache in front of
/// the node trees (faults come in runs on the same area), filled by
/// [`Vmm::find`] from a `VmmLookupNode`-style tree lookup.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hint {
    /// The space the lookup was for (kernel-half nodes too: the space must
    /// be the one that faulted, as for a tree lookup).
    space: SpaceId,
    base: VirtAddr,
    end: VirtAddr,
    /// Page-table root for pages of this node.
    root: PhysAddr,
    desc: DescId,
    flags: MemFlags,
    area: AreaType,
    /// Whether the area and the node allow writing and forbid executing
    /// (per section for IMAGE areas: computed per page there).
    may_write: bool,
    no_exec: bool,
    /// Page attributes a read / a write fault maps with (non-IMAGE areas).
    read_attrs: PageAttrs,
    write_attrs: PageAttrs,
    /// Some page of the area may be copy-on-write (no short-cut upgrade).
    cow: bool,
}

impl Hint {
    fn covers(&self, space: SpaceId, page: VirtAddr) -> bool {
        page >= self.base && page < self.end && self.space == space
    }

    /// The area as a fault record names it.
    fn area_tag(&self) -> record::AreaTag {
        use mobius_shared::record::area_flags as f;
        let bit = |on: bool, bit: u8| if on { bit } else { 0 };
        let flags = bit(self.flags.is_user(), f::USER)
            | bit(self.may_write, f::WRITE)
            | bit(!self.no_exec, f::EXEC);
        record::AreaTag {
            base: self.base,
            area_type: self.area as u8,
            flags,
        }
    }
}

impl<M: Mmu> Vmm<M> {
    /// The mapped node containing `page` in `space` (`VmmLookupNode` on the
    /// fault path), and the tree levels the lookup visited: the hint when it
    /// covers `page` (no level), else a tree lookup that refills the hint.
    fn find(&mut self, space: SpaceId, page: VirtAddr) -> (Option<Hint>, u64) {
        if let Some(h) = self.hint {
            if h.covers(space, page) {
                return (Some(h), 0);
            }
        }
        let Some(half) = half_of(page) else {
            return (None, 0);
        };
        let Ok(tree) = self.tree(space, half) else {
            return (None, 0);
        };
        let depth = tree.depth();
        let Some((base, node)) = tree.lookup(page) else {
            return (None, depth);
        };
        let NodeKind::Mapped { desc, flags } = node.kind else {
            return (None, depth);
        };
        let d = self
            .descs
            .get(desc)
            .expect("mapped node has a live descriptor");
        let (area_write, no_exec) = d.page_rights(0);
        let may_write = area_write && flags.contains(MemFlags::WRITE);
        let h = Hint {
            space,
            base,
            end: base + node.pages * PAGE_SIZE,
            root: self.root_for(space, half),
            desc,
            flags,
            area: d.kind.area_type(),
            may_write,
            no_exec,
            read_attrs: flags.page_attrs(false, no_exec),
            write_attrs: flags.page_attrs(may_write, no_exec),
            cow: d.cow,
        };
        self.hint = Some(h);
        (Some(h), depth)
    }

    /// The short path of `VmmPageFault` for the common faults: a demand-zero
    /// fault on a page of a NORMAL area that has no record yet, and a clean
    /// → dirty upgrade. One hint check (a tree lookup when it misses, which
    /// refills the hint), at most one page-record read and write, a frame
    /// from the zero pool, one page-table walk. Counts the node lookup in
    /// every case. `None`, with nothing else changed, for anything else
    /// (other kinds, protection faults, a record present, a pool short of
    /// frames, a failed map): [`Vmm::fault_resolve`] then does the whole job.
    #[inline(always)]
    pub(crate) fn fault_fast(
        &mut self,
        space: SpaceId,
        addr: VirtAddr,
        access: Access,
        t0: u64,
    ) -> Option<FaultOutcome> {
        let page = page_align_down(addr);
        // The node lookup is counted here, once, whatever happens next.
        if self.hint.as_ref().is_some_and(|h| h.covers(space, page)) {
            self.stats.record_hint_lookup();
        } else {
            let (found, depth) = self.find(space, page);
            self.stats.record_lookup(depth);
            found?;
        }
        let h = self.hint.as_ref()?;
        if h.area != AreaType::Normal {
            return None;
        }
        if (access.user && !h.flags.is_user()) || (access.write && !h.may_write) {
            return None;
        }
        let (root, desc, index) = (h.root, h.desc, (page - h.base) / PAGE_SIZE);
        let attrs = if access.write {
            h.write_attrs
        } else {
            h.read_attrs
        };
        let kind = if access.present {
            if !access.write || h.cow || self.mmu.set_writable(root, page) != Ok(true) {
                return None;
            }
            FaultKind::Upgrade
        } else {
            self.demand_zero_fast(root, page, desc, index, attrs)?;
            FaultKind::DemandZero
        };
        let cycles = self.clock.now().saturating_sub(t0);
        if kind == FaultKind::DemandZero {
            self.stats.record_zero_pool_demand_zero(cycles);
        } else {
            self.stats.record(kind, cycles);
        }
        Some(FaultOutcome::Resolved(kind))
    }

    /// Hand a fault [`record::sampled`] chose to the recorder (`mobius
    /// record`), with what the hint knows of its area.
    /// Inlined into its two cold callers in `mm::fault`, so that a record
    /// costs one call.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_fault_event(
        &self,
        space: SpaceId,
        addr: VirtAddr,
        access: Access,
        kind: FaultKind,
        pool: Option<FaultKind>,
        t0: u64,
        cycles: u64,
    ) {
        let page = page_align_down(addr);
        let area = self
            .hint
            .as_ref()
            .filter(|h| h.covers(space, page))
            .map_or_else(record::AreaTag::default, Hint::area_tag);
        record::record(&record::Fault {
            t0,
            addr,
            access,
            kind,
            pool,
            cycles,
            area,
        });
    }

    /// Map a known-zero frame at `page` (page `index` of area `desc`) and
    /// record it; `None`, with nothing changed, if that cannot be done
    /// simply (a record present, the pool short of frames, the map failing).
    #[inline(always)]
    fn demand_zero_fast(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        desc: DescId,
        index: u64,
        attrs: PageAttrs,
    ) -> Option<()> {
        let d = self.descs.get_mut(desc)?;
        let pages = d.pages;
        let record = d.records.slot_mut(index);
        if record.as_deref().is_some_and(|r| *r != 0)
            || !self.frames.has_known_zero(1 + TABLES_PER_MAP)
        {
            return None;
        }
        let frame = self.frames.alloc_known_zero()?;
        let mut tables = PoolTables(&mut self.frames);
        if self.mmu.map(root, page, frame, attrs, &mut tables).is_err() {
            // Untouched, so still zero.
            let freed = self.frames.free_zeroed(frame);
            debug_assert!(freed.is_ok(), "fresh frame not in use: {freed:?}");
            return None;
        }
        let value = frame | rec::FRAME | rec::OWNED;
        match record {
            Some(r) => *r = value,
            // First touch of this chunk of records: create it.
            None => d.records.set(index, pages, value),
        }
        Some(())
    }

    /// The whole first part of `VmmPageFault`, under the lock, counting the
    /// node lookup: find the node, check the access, and resolve everything
    /// that needs no I/O and no handler. The kernel's fault path tries
    /// [`Vmm::fault_fast`] first and falls back to [`Vmm::fault_resolve`];
    /// this entry serves the retry after a FILE/IMAGE read.
    pub(crate) fn fault_begin(&mut self, space: SpaceId, addr: VirtAddr, access: Access) -> Step {
        let (_, depth) = self.find(space, page_align_down(addr));
        self.stats.record_lookup(depth);
        self.fault_resolve(space, addr, access)
    }

    /// [`Vmm::fault_begin`] after the node lookup was counted (by
    /// [`Vmm::fault_fast`]): the hint normally covers the page by now.
    pub(crate) fn fault_resolve(&mut self, space: SpaceId, addr: VirtAddr, access: Access) -> Step {
        let page = page_align_down(addr);
        let Some(h) = self.find(space, page).0 else {
            return done(FaultOutcome::Unresolved);
        };
        let index = (page - h.base) / PAGE_SIZE;
        let (may_write, no_exec) = match h.area {
            AreaType::Image => {
                let d = self.descs.get(h.desc).expect("live");
                let (area_write, no_exec) = d.page_rights(index);
                (area_write && h.flags.contains(MemFlags::WRITE), no_exec)
            }
            _ => (h.may_write, h.no_exec),
        };
        if (access.user && !h.flags.is_user())
            || (access.write && !may_write)
            || (access.instruction && no_exec)
        {
            return done(FaultOutcome::Protection);
        }
        if h.cow {
            let r = self.descs.get(h.desc).expect("live").records.get(index);
            if r & rec::COW != 0 {
                let t = Target {
                    root: h.root,
                    page,
                    index,
                    desc: h.desc,
                    attrs: h.flags.page_attrs(may_write, no_exec),
                };
                return done(self.cow_fault(&t, r, access));
            }
        }
        if access.present {
            if let Some(outcome) = self.upgrade(h.root, page, access) {
                return done(outcome);
            }
        }
        let target = Target {
            root: h.root,
            page,
            index,
            desc: h.desc,
            attrs: h.flags.page_attrs(access.write && may_write, no_exec),
        };
        if h.area == AreaType::Normal {
            let (root, desc, attrs) = (target.root, target.desc, target.attrs);
            if self
                .demand_zero_fast(root, page, desc, index, attrs)
                .is_some()
            {
                let outcome = FaultOutcome::Resolved(FaultKind::DemandZero);
                return Step::Done(outcome, Some(FaultKind::ZeroPoolHit));
            }
            return self.demand_zero(target);
        }
        let d = self.descs.get(h.desc).expect("live");
        match &d.kind {
            AreaKind::Normal => self.demand_zero(target),
            AreaKind::Map { phys } => {
                let frame = phys + index * PAGE_SIZE;
                done(self.map_recorded(target, frame, rec::FRAME, FaultKind::Map))
            }
            AreaKind::File { .. } | AreaKind::Image { .. } => {
                self.file_fault(space, target, access)
            }
            AreaKind::Callback(handler) => Step::Callback(CallbackPlan {
                handler: handler.clone(),
                fault: CallbackFault {
                    space,
                    node_base: h.base,
                    page,
                    write: access.write,
                    user: access.user,
                },
                desc: h.desc,
            }),
        }
    }

    /// A fault on a present page: clean → dirty upgrade (one page-table
    /// walk), or spurious. `None` if the page is not mapped after all.
    fn upgrade(&mut self, root: PhysAddr, page: VirtAddr, access: Access) -> Option<FaultOutcome> {
        if !access.write {
            return self
                .mmu
                .translate(root, page)
                .map(|_| FaultOutcome::Spurious);
        }
        match self.mmu.set_writable(root, page) {
            Ok(true) => Some(FaultOutcome::Resolved(FaultKind::Upgrade)),
            Ok(false) => Some(FaultOutcome::Spurious),
            Err(MapError::NotMapped) => None,
            Err(_) => Some(FaultOutcome::Unresolved),
        }
    }

    fn demand_zero(&mut self, t: Target) -> Step {
        let existing = self.descs.get(t.desc).expect("live").records.get(t.index);
        if existing & rec::FRAME != 0 {
            // Another mapping of a shared area materialised it already: a
            // frame that exists is mapped, nothing is zeroed.
            return done(self.map_page(&t, existing & rec::ADDR, FaultKind::Shared));
        }
        let mut zeroed = self.frames.alloc_zeroed(&mut self.mmu);
        if zeroed.is_none() && self.cache_trim(0) > 0 {
            zeroed = self.frames.alloc_zeroed(&mut self.mmu);
        }
        let Some((frame, hit)) = zeroed else {
            return done(FaultOutcome::OutOfFrames);
        };
        let outcome = self.map_recorded(t, frame, rec::FRAME | rec::OWNED, FaultKind::DemandZero);
        let pool = if hit {
            FaultKind::ZeroPoolHit
        } else {
            FaultKind::ZeroPoolMiss
        };
        Step::Done(
            outcome,
            matches!(outcome, FaultOutcome::Resolved(_)).then_some(pool),
        )
    }

    /// Map `frame` and record it in the area; on failure free an owned frame
    /// again and leave the record as it was.
    pub(super) fn map_recorded(
        &mut self,
        t: Target,
        frame: PhysAddr,
        bits: u64,
        kind: FaultKind,
    ) -> FaultOutcome {
        let outcome = self.map_page(&t, frame, kind);
        if matches!(outcome, FaultOutcome::Resolved(_)) {
            let d = self.descs.get_mut(t.desc).expect("live");
            d.records.set(t.index, d.pages, frame | bits);
        } else if bits & rec::OWNED != 0 {
            let _ = self.frames.free(frame, &mut self.mmu);
        }
        outcome
    }

    pub(super) fn map_page(
        &mut self,
        t: &Target,
        frame: PhysAddr,
        kind: FaultKind,
    ) -> FaultOutcome {
        self.frames.ensure_known_zero(TABLES_PER_MAP, &mut self.mmu);
        match self.mmu.map(
            t.root,
            t.page,
            frame,
            t.attrs,
            &mut PoolTables(&mut self.frames),
        ) {
            Ok(()) => FaultOutcome::Resolved(kind),
            Err(MapError::OutOfFrames) => FaultOutcome::OutOfFrames,
            // Mapped after all (the fault said "not present"): retry.
            Err(MapError::AlreadyMapped) => FaultOutcome::Spurious,
            Err(_) => FaultOutcome::Unresolved,
        }
    }

    /// Map a page for a CALLBACK handler (see [`CallbackMapper`]).
    pub(crate) fn callback_map(
        &mut self,
        plan: &CallbackPlan,
        phys: Option<PhysAddr>,
        writable: bool,
    ) -> Result<PhysAddr, VmError> {
        let f = &plan.fault;
        half_of(f.page).ok_or(VmError::NotAllocated)?;
        self.space(f.space)?;
        let h = self.find(f.space, f.page).0.ok_or(VmError::NotAllocated)?;
        let (desc, flags, root) = (h.desc, h.flags, h.root);
        if desc != plan.desc {
            return Err(VmError::NotAllocated);
        }
        if writable && !flags.contains(MemFlags::WRITE) {
            return Err(VmError::PermissionDenied);
        }
        let index = (f.page - h.base) / PAGE_SIZE;
        if self.mmu.translate(root, f.page).is_some() {
            return Err(VmError::Overlap);
        }
        let existing = self.descs.get(desc).expect("live").records.get(index);
        let attrs = flags.page_attrs(writable, false);
        let t = Target {
            root,
            page: f.page,
            index,
            desc,
            attrs,
        };
        let (frame, bits) = match (phys, existing & rec::FRAME != 0) {
            (Some(p), true) if p != existing & rec::ADDR => return Err(VmError::Overlap),
            (_, true) => {
                // Another mapping of the area has the page already: share it.
                let frame = existing & rec::ADDR;
                return match self.map_page(&t, frame, FaultKind::Callback) {
                    FaultOutcome::Resolved(_) => Ok(frame),
                    FaultOutcome::OutOfFrames => Err(VmError::OutOfFrames),
                    _ => Err(VmError::Overlap),
                };
            }
            (Some(p), false) => (p, rec::FRAME),
            (None, false) => {
                let (frame, _) = self
                    .frames
                    .alloc_zeroed(&mut self.mmu)
                    .ok_or(VmError::OutOfFrames)?;
                (frame, rec::FRAME | rec::OWNED)
            }
        };
        match self.map_recorded(t, frame, bits, FaultKind::Callback) {
            FaultOutcome::Resolved(_) => Ok(frame),
            FaultOutcome::OutOfFrames => Err(VmError::OutOfFrames),
            _ => Err(VmError::Overlap),
        }
    }
}

/// Where a fault maps its page.
#[derive(Clone, Copy)]
pub(super) struct Target {
    pub(super) root: PhysAddr,
    pub(super) page: VirtAddr,
    pub(super) index: u64,
    pub(super) desc: DescId,
    pub(super) attrs: PageAttrs,
}

pub(super) fn done(outcome: FaultOutcome) -> Step {
    Step::Done(outcome, None)
}
