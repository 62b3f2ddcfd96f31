//! Frames, statistics, snapshots, the debug state and invariant checks, and
//! the fault benchmark's floor handler (kept off the fault path).
use alloc::collections::BTreeMap;

use mobius_shared::stats::{FaultKind, NodeStats, Snapshot};

use super::*;

impl<M: Mmu> Vmm<M> {
    /// Zero up to `n` freed frames into the zero pool (idle work).
    pub fn zero_some(&mut self, n: usize) -> usize {
        self.frames.zero_some(n, &mut self.mmu)
    }

    /// Pin a frame (`MemLockPages`), e.g. for I/O into it.
    pub fn pin_frame(&mut self, frame: PhysAddr) -> Result<u32, crate::mm::frame::FrameError> {
        self.frames.pin(frame)
    }

    /// Drop a pin taken with [`Vmm::pin_frame`].
    pub fn unpin_frame(&mut self, frame: PhysAddr) -> Result<u32, crate::mm::frame::FrameError> {
        self.frames.unpin(frame)
    }

    pub fn frames(&self) -> &FrameAllocator {
        &self.frames
    }

    /// The frame allocator, for in-guest checks of its pools.
    pub fn frames_mut(&mut self) -> &mut FrameAllocator {
        &mut self.frames
    }

    pub fn mmu(&self) -> &M {
        &self.mmu
    }

    pub fn mmu_mut(&mut self) -> &mut M {
        &mut self.mmu
    }

    pub fn fault_stats(&self) -> &FaultStats {
        &self.stats
    }

    /// Current cycle count from the configured source.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Count a fault of `kind` (and its zero-pool sub-kind) that started at
    /// `t0`; returns the cycles it took.
    pub(crate) fn record_fault(
        &mut self,
        outcome: FaultOutcome,
        pool: Option<FaultKind>,
        t0: u64,
    ) -> u64 {
        let cycles = self.clock.now().saturating_sub(t0);
        if let Some(kind) = outcome.kind() {
            self.stats.record(kind, cycles);
        }
        if let Some(sub) = pool {
            self.stats.record(sub, cycles);
        }
        if outcome == FaultOutcome::OutOfFrames {
            self.frames.note_exhausted();
        }
        cycles
    }

    /// Node statistics over all address spaces.
    pub fn node_stats(&self) -> NodeStats {
        let user: usize = self.spaces.iter().flatten().map(|s| s.user.len()).sum();
        NodeStats {
            nodes: (user + self.kernel.len()) as u64,
            areas: self.descs.len() as u64,
            ..self.stats.lookup_stats()
        }
    }

    /// Fill the fault, frame and node fields of `snap`.
    pub fn fill_snapshot(&self, snap: &mut Snapshot) {
        self.stats.fill(snap);
        snap.frames = self.frames.stats();
        snap.nodes = self.node_stats();
    }

    /// A human-readable statistics summary (for the serial console at exit).
    pub fn write_summary(&self, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
        writeln!(w, "vmm: fault kind            count   avg cycles")?;
        for kind in FaultKind::ALL {
            let c = self.stats.get(kind);
            let avg = c.cycles.checked_div(c.count).unwrap_or(0);
            writeln!(w, "vmm: {:<22} {:>8} {:>12}", kind.name(), c.count, avg)?;
        }
        let f = self.frames.stats();
        writeln!(
            w,
            "vmm: frames total {} free {} used {} zeroed {} exhausted {}",
            f.total, f.free, f.used, f.zeroed, f.exhausted
        )?;
        let n = self.node_stats();
        writeln!(
            w,
            "vmm: nodes {} areas {} lookups {} max depth {}",
            n.nodes, n.areas, n.lookups, n.max_lookup_depth
        )
    }

    /// The benchmark floor: map one pre-zeroed frame at `addr` in `space`
    /// writable, with no node lookup, no records and no statistics (what
    /// the issue calls "map one pre-zeroed frame"). Returns false when no
    /// known-zero frame is left or the page is mapped already. Frames mapped
    /// this way are not tracked: use a scratch range outside every area and
    /// release it with [`Vmm::floor_unmap`].
    pub fn floor_map(&mut self, space: SpaceId, addr: VirtAddr) -> bool {
        let Ok(root) = self.root(space) else {
            return false;
        };
        let Some(frame) = self.frames.alloc_known_zero() else {
            return false;
        };
        let attrs = PageAttrs::WRITABLE;
        let page = page_align_down(addr);
        self.frames.ensure_known_zero(TABLES_PER_MAP, &mut self.mmu);
        let mut tables = PoolTables(&mut self.frames);
        if self.mmu.map(root, page, frame, attrs, &mut tables).is_ok() {
            return true;
        }
        let _ = self.frames.free(frame, &mut self.mmu);
        false
    }

    /// Undo [`Vmm::floor_map`] for `addr`, freeing its frame.
    pub fn floor_unmap(&mut self, space: SpaceId, addr: VirtAddr) {
        let Ok(root) = self.root(space) else { return };
        let mut tables = PoolTables(&mut self.frames);
        if let Some(frame) = self.mmu.unmap(root, page_align_down(addr), &mut tables) {
            let _ = self.frames.free(frame, &mut self.mmu);
        }
    }

    /// A snapshot with the VMM's fields filled (run id, TSC fields 0).
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new(0, 0);
        self.fill_snapshot(&mut s);
        s
    }

    /// Everything observable (see [`VmmState`]).
    pub fn state(&self) -> VmmState {
        let f = self.frames.stats();
        VmmState {
            kernel: self.kernel.iter().collect(),
            spaces: self
                .spaces()
                .map(|id| {
                    let s = self.space(id).expect("live");
                    (id, s.root, s.user.iter().collect())
                })
                .collect(),
            descs: self
                .descs
                .iter()
                .map(|(id, d)| DescState {
                    id,
                    refs: d.refs,
                    pages: d.pages,
                    records: d.records.iter().collect(),
                })
                .collect(),
            exports: self.exports.iter().map(|(n, d)| (n.clone(), *d)).collect(),
            frames: (f.free, f.used, f.zeroed),
        }
    }

    /// Structural invariants: full coverage of every half, descriptor
    /// reference counts equal to mapping nodes + exports + `handles`
    /// (outstanding share handles per descriptor, supplied by the caller),
    /// frame conservation.
    pub fn check_invariants(&self, handles: &BTreeMap<DescId, u32>) -> Result<(), &'static str> {
        self.kernel.check_invariants()?;
        let mut refs: BTreeMap<DescId, u32> = BTreeMap::new();
        let trees = self
            .spaces
            .iter()
            .flatten()
            .map(|s| &s.user)
            .chain(core::iter::once(&self.kernel));
        for tree in trees {
            tree.check_invariants()?;
            for (_, n) in tree.iter() {
                if let NodeKind::Mapped { desc, .. } = n.kind {
                    *refs.entry(desc).or_default() += 1;
                }
            }
        }
        for d in self.exports.values() {
            *refs.entry(*d).or_default() += 1;
        }
        for (d, h) in handles {
            *refs.entry(*d).or_default() += h;
        }
        if refs.len() != self.descs.len() {
            return Err("descriptor alive without references, or reference to a dead one");
        }
        for (id, want) in refs {
            if self.descs.get(id).map(|d| d.refs) != Some(want) {
                return Err("reference count mismatch");
            }
        }
        // Every owned frame has exactly as many owners as areas record it
        // (copy-on-write sharing after a fork), and only shared ones are
        // marked copy-on-write.
        let mut owners: BTreeMap<PhysAddr, u32> = BTreeMap::new();
        for (_, d) in self.descs.iter() {
            for (_, r) in d.records.iter() {
                if r & rec::OWNED != 0 && r & rec::FRAME != 0 {
                    *owners.entry(r & rec::ADDR).or_default() += 1;
                }
                if r & rec::COW != 0 && !d.cow {
                    return Err("copy-on-write page in an area not marked cow");
                }
            }
        }
        for frame in self.cache_frames() {
            *owners.entry(frame).or_default() += 1;
        }
        for (frame, n) in owners {
            if self.frames.shares(frame) + 1 != n {
                return Err("frame owners do not match its share count");
            }
        }
        self.frames.check_invariants()
    }
}
