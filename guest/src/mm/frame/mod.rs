//! Physical frame allocator (the Möbius `MemAlloc`/`MemFree` layer, fixed).
//!
//! Frames come from the RAM regions of the PVH memory map minus reserved
//! ranges (kernel image, boot structures, ...). Every frame has a record with
//! a state and a 32-bit pin count (Möbius used 8 bits, defect B51).
//!
//! Three sources of free frames, cheapest first for zero-fill requests:
//!
//! * **fresh** frames above the high-water mark: never handed out since boot.
//!   The host gives the guest its RAM zeroed, so they count as zero. Records
//!   for them are created only when the mark moves past them, so the record
//!   table grows with the memory actually used, not with the size of RAM.
//! * the **zero pool**: freed frames made zero again, either by a zeroing pass
//!   outside the fault path ([`FrameAllocator::zero_some`]) or at once when the
//!   [`FrameZeroing`] hook is cheap (the host discard port), and empty page
//!   tables (an empty table is a zero frame).
//! * the **dirty list**: freed frames with old contents.
//!
//! A zero-fill request served from fresh or pool frames is a zero-pool *hit*;
//! one that has to zero a dirty frame on the spot is a *miss*.
use alloc::vec::Vec;

use mobius_shared::stats::FrameStats;

use super::paging::{Mmu, PhysAddr, TableFrames, PAGE_SIZE};

/// A range of guest-physical memory, `[base, base + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemRegion {
    pub base: PhysAddr,
    pub len: u64,
}

impl MemRegion {
    pub const fn new(base: PhysAddr, len: u64) -> Self {
        MemRegion { base, len }
    }

    fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// Makes freed frames read as zero again. The guest plugs in either CPU
/// zeroing ([`CpuZeroing`]) or the host's discard port (`DISCARD_FRAME`).
pub trait FrameZeroing: Send {
    /// Make `frame` read as zeroes. `mmu` gives access to physical memory.
    fn zero(&mut self, frame: PhysAddr, mmu: &mut dyn Mmu);
    /// Whether zeroing is cheap enough to do as soon as a frame is freed
    /// (discarding is: one port write). Otherwise frames wait on the dirty
    /// list for [`FrameAllocator::zero_some`].
    fn eager(&self) -> bool {
        false
    }
    /// Make `frame` read as zeroes without the CPU writing it (the host
    /// discards it), if this hook can; `false` if it cannot.
    fn zero_without_cpu(&mut self, frame: PhysAddr) -> bool {
        let _ = frame;
        false
    }
}

/// Zeroing with the CPU through [`Mmu::zero_frame`]; batched, never eager.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuZeroing;

impl FrameZeroing for CpuZeroing {
    fn zero(&mut self, frame: PhysAddr, mmu: &mut dyn Mmu) {
        mmu.zero_frame(frame);
    }
}

/// Zeroing by asking the host to discard the frame (the `DISCARD_FRAME`
/// port): `discard` gets the page frame number and performs the port write.
/// Cheap, so it runs as soon as a frame is freed and the frame goes straight
/// back to the zero pool. Use only when the host offers it (`discard=1`).
pub struct DiscardZeroing<F: FnMut(u64) + Send> {
    pub discard: F,
}

impl<F: FnMut(u64) + Send> FrameZeroing for DiscardZeroing<F> {
    fn zero(&mut self, frame: PhysAddr, _mmu: &mut dyn Mmu) {
        (self.discard)(frame / PAGE_SIZE);
    }

    fn eager(&self) -> bool {
        true
    }

    fn zero_without_cpu(&mut self, frame: PhysAddr) -> bool {
        (self.discard)(frame / PAGE_SIZE);
        true
    }
}

/// State of one physical frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameState {
    /// Not RAM we may hand out (kernel image, boot structures, firmware).
    Reserved,
    /// Free, contents unknown.
    FreeDirty,
    /// Free and known to read as zero.
    FreeZero,
    /// Handed out (area frame or page table).
    Used,
}

/// Why a frame operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not a frame this allocator manages.
    NotManaged,
    /// The frame is not in use (double free, or pin of a free frame).
    NotUsed,
    /// The frame is still pinned.
    Pinned,
    /// Unpin of an unpinned frame, or pin count overflow.
    PinCount,
    /// Too many owners of one frame.
    ShareCount,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct FrameRecord {
    state: FrameState,
    pins: u32,
    /// Owners beyond the first (copy-on-write sharing after a fork): a
    /// free drops one owner; the last one frees the frame.
    shares: u32,
    /// Next frame index on the free list this frame is on.
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct Region {
    base_pfn: u64,
    frames: u64,
    first_index: u64,
}

/// An intrusive LIFO list of frame indices.
#[derive(Debug, Clone, Copy)]
struct FreeList {
    head: u32,
    len: u64,
}

impl FreeList {
    const EMPTY: FreeList = FreeList { head: NIL, len: 0 };
}

/// The physical frame allocator. See the module documentation.
pub struct FrameAllocator {
    regions: Vec<Region>,
    reserved: Vec<MemRegion>,
    /// Records of the frames from index `first_record` on; every frame below
    /// it is reserved and has none (the low MiB, kernel image and heap form
    /// one run at the bottom: skipping it costs nothing at boot).
    records: Vec<FrameRecord>,
    first_record: u64,
    total_indices: u64,
    dirty: FreeList,
    zero: FreeList,
    /// Usable frames at or above the high-water mark.
    fresh_left: u64,
    total: u64,
    exhausted: u64,
    /// Frees and shares of frames not in use (a kernel bug, counted in
    /// every build, reported as `frames.free-errors`).
    free_errors: u64,
    zeroing: alloc::boxed::Box<dyn FrameZeroing>,
}

impl core::fmt::Debug for FrameAllocator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Sorted, page-aligned RAM ranges (rounded inwards).
fn aligned_regions(ram: &[MemRegion]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = ram
        .iter()
        .filter_map(|r| {
            let start = r.base.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
            let end = r.end() & !(PAGE_SIZE - 1);
            (end > start).then(|| (start / PAGE_SIZE, (end - start) / PAGE_SIZE))
        })
        .collect();
    out.sort_unstable();
    out
}

impl FrameAllocator {
    /// Build over `ram` (memory-map RAM entries), never handing out anything
    /// in `reserved` or page 0.
    pub fn new(
        ram: &[MemRegion],
        reserved: &[MemRegion],
        zeroing: alloc::boxed::Box<dyn FrameZeroing>,
    ) -> Self {
        let mut regions = Vec::new();
        let mut next = 0u64;
        for (base_pfn, frames) in aligned_regions(ram) {
            regions.push(Region {
                base_pfn,
                frames,
                first_index: next,
            });
            next += frames;
        }
        let mut reserved: Vec<MemRegion> = reserved.to_vec();
        reserved.push(MemRegion::new(0, PAGE_SIZE));
        reserved.sort_unstable_by_key(|r| r.base);
        let mut fa = FrameAllocator {
            regions,
            reserved,
            // Room for the frames a small program's run hands out, so the
            // records are not copied to a bigger vector again and again.
            records: Vec::with_capacity(128),
            first_record: 0,
            total_indices: next.min(NIL as u64),
            dirty: FreeList::EMPTY,
            zero: FreeList::EMPTY,
            fresh_left: 0,
            total: 0,
            exhausted: 0,
            free_errors: 0,
            zeroing,
        };
        fa.total = fa.total_indices - fa.reserved_frames();
        fa.fresh_left = fa.total;
        fa.first_record = fa.leading_reserved();
        fa
    }

    /// Number of frame indices, from 0, that are all reserved: found by
    /// jumping over whole reserved ranges, never frame by frame.
    fn leading_reserved(&self) -> u64 {
        let mut index = 0;
        while index < self.total_indices {
            match self.reserved_end(self.phys_of(index)) {
                Some(end) => match self.index_of(end) {
                    Some(next) if next > index => index = next,
                    Some(_) => break,
                    // The range ends in a hole or past RAM: skip to the next region.
                    None => match self.regions.iter().find(|r| r.base_pfn * PAGE_SIZE >= end) {
                        Some(r) => index = r.first_index,
                        None => return self.total_indices,
                    },
                },
                None => break,
            }
        }
        index
    }

    /// End of the reserved range containing `phys`, if it is reserved.
    fn reserved_end(&self, phys: PhysAddr) -> Option<PhysAddr> {
        let i = self.reserved.partition_point(|r| r.base <= phys);
        self.reserved[..i]
            .iter()
            .filter(|r| phys < r.end())
            .map(|r| r.end())
            .max()
    }

    fn slot(&self, index: u64) -> usize {
        (index - self.first_record) as usize
    }

    /// Managed frames that fall in a reserved range, counted by interval
    /// arithmetic (no per-frame loop: boot runs in slow, emulated ring 0).
    fn reserved_frames(&self) -> u64 {
        // Merge the reserved ranges into disjoint frame ranges first.
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for r in &self.reserved {
            let (start, end) = (r.base / PAGE_SIZE, r.end().div_ceil(PAGE_SIZE));
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut n = 0;
        for reg in &self.regions {
            let frames = reg
                .frames
                .min(self.total_indices.saturating_sub(reg.first_index));
            let (rs, re) = (reg.base_pfn, reg.base_pfn + frames);
            for &(s, e) in &merged {
                n += e.min(re).saturating_sub(s.max(rs));
            }
        }
        n
    }

    fn is_reserved(&self, phys: PhysAddr) -> bool {
        let i = self.reserved.partition_point(|r| r.base <= phys);
        self.reserved[..i].iter().rev().any(|r| phys < r.end())
    }

    fn phys_of(&self, index: u64) -> PhysAddr {
        let r = self.regions.partition_point(|r| r.first_index <= index) - 1;
        let reg = &self.regions[r];
        (reg.base_pfn + index - reg.first_index) * PAGE_SIZE
    }

    fn index_of(&self, phys: PhysAddr) -> Option<u64> {
        if phys & (PAGE_SIZE - 1) != 0 {
            return None;
        }
        let pfn = phys / PAGE_SIZE;
        let r = self
            .regions
            .partition_point(|r| r.base_pfn <= pfn)
            .checked_sub(1)?;
        let reg = &self.regions[r];
        let index = reg.first_index + (pfn - reg.base_pfn);
        (pfn < reg.base_pfn + reg.frames && index < self.total_indices).then_some(index)
    }

    fn record(&self, phys: PhysAddr) -> Option<&FrameRecord> {
        let i = self.index_of(phys)?.checked_sub(self.first_record)?;
        self.records.get(i as usize)
    }

    fn record_mut(&mut self, phys: PhysAddr) -> Option<&mut FrameRecord> {
        let i = self.index_of(phys)?.checked_sub(self.first_record)?;
        self.records.get_mut(i as usize)
    }

    /// State of a frame (`None` if not managed or never handed out yet).
    pub fn state(&self, phys: PhysAddr) -> Option<FrameState> {
        self.record(phys).map(|r| r.state)
    }

    /// Pin count of a frame (0 if not managed).
    pub fn pins(&self, phys: PhysAddr) -> u32 {
        self.record(phys).map_or(0, |r| r.pins)
    }

    fn pop(&mut self, which: ListKind) -> Option<PhysAddr> {
        let list = self.list(which);
        if list.head == NIL {
            return None;
        }
        let index = list.head;
        let slot = self.slot(index as u64);
        let rec = &mut self.records[slot];
        let next = rec.next;
        rec.state = FrameState::Used;
        rec.next = NIL;
        let list = self.list_mut(which);
        list.head = next;
        list.len -= 1;
        Some(self.phys_of(index as u64))
    }

    fn push(&mut self, which: ListKind, phys: PhysAddr) {
        let index = self.index_of(phys).expect("managed frame");
        self.push_index(which, index);
    }

    /// [`FrameAllocator::push`] for a frame whose index is known.
    fn push_index(&mut self, which: ListKind, index: u64) {
        let index = index as u32;
        let head = self.list(which).head;
        let slot = self.slot(index as u64);
        let rec = &mut self.records[slot];
        rec.state = match which {
            ListKind::Dirty => FrameState::FreeDirty,
            ListKind::Zero => FrameState::FreeZero,
        };
        rec.next = head;
        let list = self.list_mut(which);
        list.head = index;
        list.len += 1;
    }

    fn list(&self, which: ListKind) -> FreeList {
        match which {
            ListKind::Dirty => self.dirty,
            ListKind::Zero => self.zero,
        }
    }

    fn list_mut(&mut self, which: ListKind) -> &mut FreeList {
        match which {
            ListKind::Dirty => &mut self.dirty,
            ListKind::Zero => &mut self.zero,
        }
    }

    /// Take the next never-used frame above the high-water mark.
    fn take_fresh(&mut self) -> Option<PhysAddr> {
        if self.fresh_left == 0 {
            return None;
        }
        loop {
            let index = self.first_record + self.records.len() as u64;
            let phys = self.phys_of(index);
            let state = if self.is_reserved(phys) {
                FrameState::Reserved
            } else {
                FrameState::Used
            };
            self.records.push(FrameRecord {
                state,
                pins: 0,
                shares: 0,
                next: NIL,
            });
            if state == FrameState::Used {
                self.fresh_left -= 1;
                return Some(phys);
            }
        }
    }

    /// A frame known to read as zero, without zeroing anything: the zero
    /// pool or a fresh frame. `None` when both are empty.
    pub fn alloc_known_zero(&mut self) -> Option<PhysAddr> {
        self.pop(ListKind::Zero).or_else(|| self.take_fresh())
    }

    /// A zeroed frame for demand-zero faults. Returns the frame and whether
    /// it came from the zero pool (`true`, a hit) or had to be zeroed now.
    pub fn alloc_zeroed(&mut self, mmu: &mut dyn Mmu) -> Option<(PhysAddr, bool)> {
        if let Some(f) = self.alloc_known_zero() {
            return Some((f, true));
        }
        match self.pop(ListKind::Dirty) {
            Some(f) => {
                mmu.zero_frame(f);
                Some((f, false))
            }
            None => {
                self.exhausted += 1;
                None
            }
        }
    }

    /// A frame whose contents the caller overwrites completely (file read-in):
    /// dirty frames first, to keep the zero pool for zero-fill requests.
    pub fn alloc_any(&mut self) -> Option<PhysAddr> {
        let f = self
            .pop(ListKind::Dirty)
            .or_else(|| self.alloc_known_zero());
        if f.is_none() {
            self.exhausted += 1;
        }
        f
    }

    /// Return a frame (drop one owner of a shared frame: only the last one
    /// frees it). It goes to the zero pool at once when the zeroing hook is
    /// eager, else to the dirty list.
    pub fn free(&mut self, phys: PhysAddr, mmu: &mut dyn Mmu) -> Result<(), FrameError> {
        let index = self
            .check_freeable(phys)
            .inspect_err(|_| self.free_errors += 1)?;
        let slot = self.slot(index);
        let rec = &mut self.records[slot];
        if rec.shares > 0 {
            rec.shares -= 1;
            return Ok(());
        }
        if self.zeroing.eager() {
            self.zeroing.zero(phys, mmu);
            self.push_index(ListKind::Zero, index);
        } else {
            self.push_index(ListKind::Dirty, index);
        }
        Ok(())
    }

    /// Return a frame whose contents are unknown (a page table freed with
    /// its address space, entries and all): to the zero pool at once when
    /// the zeroing hook needs no CPU work for it (the host's discard: one
    /// port write), else to the dirty list (the idle loop zeroes it, off
    /// the caller's path). Either way the next table comes from the pool,
    /// not from frames never used before, when the hook allows.
    pub fn free_dirty(&mut self, phys: PhysAddr) -> Result<(), FrameError> {
        let index = self
            .check_freeable(phys)
            .inspect_err(|_| self.free_errors += 1)?;
        if self.zeroing.zero_without_cpu(phys) {
            self.push_index(ListKind::Zero, index);
        } else {
            self.push_index(ListKind::Dirty, index);
        }
        Ok(())
    }

    /// Return a frame the caller knows reads as zero (an empty page table).
    pub fn free_zeroed(&mut self, phys: PhysAddr) -> Result<(), FrameError> {
        let index = self
            .check_freeable(phys)
            .inspect_err(|_| self.free_errors += 1)?;
        self.push_index(ListKind::Zero, index);
        Ok(())
    }

    /// The frame's index if it may be freed: managed, in use, not pinned
    /// (found once, for the caller to use again).
    fn check_freeable(&self, phys: PhysAddr) -> Result<u64, FrameError> {
        let index = self.index_of(phys).ok_or(FrameError::NotManaged)?;
        let rec = index
            .checked_sub(self.first_record)
            .and_then(|i| self.records.get(i as usize))
            .ok_or(FrameError::NotManaged)?;
        match (rec.state, rec.pins) {
            (FrameState::Used, 0) => Ok(index),
            (FrameState::Used, _) => Err(FrameError::Pinned),
            _ => Err(FrameError::NotUsed),
        }
    }

    /// Pin a used frame once more (`MemLockPages`); 32-bit count.
    pub fn pin(&mut self, phys: PhysAddr) -> Result<u32, FrameError> {
        let rec = self.record_mut(phys).ok_or(FrameError::NotManaged)?;
        if rec.state != FrameState::Used {
            return Err(FrameError::NotUsed);
        }
        rec.pins = rec.pins.checked_add(1).ok_or(FrameError::PinCount)?;
        Ok(rec.pins)
    }

    /// One more owner of a used frame (copy-on-write after a fork).
    /// Returns the owners beyond the first.
    pub fn share(&mut self, phys: PhysAddr) -> Result<u32, FrameError> {
        let Some(rec) = self
            .record_mut(phys)
            .filter(|r| r.state == FrameState::Used)
        else {
            self.free_errors += 1;
            return Err(FrameError::NotUsed);
        };
        rec.shares = rec.shares.checked_add(1).ok_or(FrameError::ShareCount)?;
        Ok(rec.shares)
    }

    /// Owners of a frame beyond the first (0 if not managed or not shared).
    pub fn shares(&self, phys: PhysAddr) -> u32 {
        self.record(phys).map_or(0, |r| r.shares)
    }

    /// Drop one pin.
    pub fn unpin(&mut self, phys: PhysAddr) -> Result<u32, FrameError> {
        let rec = self.record_mut(phys).ok_or(FrameError::NotManaged)?;
        if rec.state != FrameState::Used {
            return Err(FrameError::NotUsed);
        }
        rec.pins = rec.pins.checked_sub(1).ok_or(FrameError::PinCount)?;
        Ok(rec.pins)
    }

    /// Zero up to `n` dirty frames and move them to the zero pool. Call from
    /// idle or after freeing, never from the fault path. Returns how many.
    pub fn zero_some(&mut self, n: usize, mmu: &mut dyn Mmu) -> usize {
        let mut done = 0;
        while done < n {
            let Some(f) = self.pop(ListKind::Dirty) else {
                break;
            };
            self.zeroing.zero(f, mmu);
            self.push(ListKind::Zero, f);
            done += 1;
        }
        done
    }

    /// Whether at least `n` frames can be had without zeroing anything.
    pub fn has_known_zero(&self, n: u64) -> bool {
        self.zero.len + self.fresh_left >= n
    }

    /// Make sure at least `n` frames can be had without zeroing, zeroing dirty
    /// frames if needed. Used before page-table updates, whose new tables
    /// must come from [`TableFrames`] without access to the MMU.
    pub fn ensure_known_zero(&mut self, n: u64, mmu: &mut dyn Mmu) {
        let have = self.zero.len + self.fresh_left;
        if have < n {
            self.zero_some((n - have) as usize, mmu);
        }
    }

    /// Frames free (fresh, zero pool and dirty).
    pub fn free_count(&self) -> u64 {
        self.fresh_left + self.zero.len + self.dirty.len
    }

    /// Accounting, as carried to the host.
    pub fn stats(&self) -> FrameStats {
        let free = self.free_count();
        FrameStats {
            total: self.total,
            free,
            used: self.total - free,
            zeroed: self.fresh_left + self.zero.len,
            exhausted: self.exhausted,
            free_errors: self.free_errors,
        }
    }

    /// Count an allocation failure noticed outside this module.
    pub fn note_exhausted(&mut self) {
        self.exhausted += 1;
    }

    /// Check the lists against the records (tests and debugging).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let count = |head: u32, want: FrameState| -> Result<u64, &'static str> {
            let (mut n, mut i) = (0u64, head);
            while i != NIL {
                let rec = &self.records[self.slot(i as u64)];
                if rec.state != want {
                    return Err("frame on a free list in the wrong state");
                }
                n += 1;
                i = rec.next;
            }
            Ok(n)
        };
        if count(self.dirty.head, FrameState::FreeDirty)? != self.dirty.len
            || count(self.zero.head, FrameState::FreeZero)? != self.zero.len
        {
            return Err("free list length mismatch");
        }
        let used = self
            .records
            .iter()
            .filter(|r| r.state == FrameState::Used)
            .count() as u64;
        if used + self.free_count() != self.total {
            return Err("frames not conserved");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum ListKind {
    Dirty,
    Zero,
}

/// [`TableFrames`] over the allocator: page tables come from the general pool
/// (zero pool or fresh frames; call [`FrameAllocator::ensure_known_zero`]
/// first) and go back to the zero pool when freed, since a table is freed
/// only once it is empty, i.e. all zero.
pub struct PoolTables<'a>(pub &'a mut FrameAllocator);

/// Most new tables one `map` can need (PDPT, PD, PT below a root).
pub const TABLES_PER_MAP: u64 = 3;

impl TableFrames for PoolTables<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let f = self.0.alloc_known_zero();
        if f.is_none() {
            self.0.exhausted += 1;
        }
        f
    }

    fn free_table(&mut self, frame: PhysAddr) {
        // An empty table is a zero frame.
        let freed = self.0.free_zeroed(frame);
        debug_assert!(freed.is_ok(), "free_table of a frame not in use: {freed:?}");
    }

    fn free_dirty_table(&mut self, frame: PhysAddr) {
        let freed = self.0.free_dirty(frame);
        debug_assert!(
            freed.is_ok(),
            "free_dirty_table of a frame not in use: {freed:?}"
        );
    }
}

/// The frames a [`FrameAllocator`] built over `ram` and `reserved` would
/// manage (its `stats().total`), counted without building it: no heap, a
/// few instructions per range. The kernel reports this while its VMM has not
/// started (it starts on first use).
pub fn usable_frames(ram: impl IntoIterator<Item = MemRegion>, reserved: &[MemRegion]) -> u64 {
    match reserved {
        [low] if low.base == 0 && low.len > 0 => frames_above(ram, low.end().div_ceil(PAGE_SIZE)),
        _ => usable_frames_scan(ram, reserved),
    }
}

/// [`usable_frames`] when one range `[0, first)` (in frames, page 0 within
/// it) is reserved, as the kernel reserves the low MiB, its image and its
/// heap: a subtraction per RAM region instead of a walk past the range
/// (~200 emulated instructions fewer at a snapshot before the VMM starts).
fn frames_above(ram: impl IntoIterator<Item = MemRegion>, first: u64) -> u64 {
    let mut total = 0;
    for r in ram {
        let Some(start) = r.base.checked_add(PAGE_SIZE - 1) else {
            continue;
        };
        let (start, end) = ((start / PAGE_SIZE).max(first), r.end() / PAGE_SIZE);
        if start < end {
            total += end - start;
        }
    }
    total
}

/// [`usable_frames`] for any reserved ranges: walk each RAM region past them.
fn usable_frames_scan(ram: impl IntoIterator<Item = MemRegion>, reserved: &[MemRegion]) -> u64 {
    let mut total = 0;
    for r in ram {
        let Some(start) = r.base.checked_add(PAGE_SIZE - 1) else {
            continue;
        };
        let (mut pos, end) = (start / PAGE_SIZE, r.end() / PAGE_SIZE);
        while pos < end {
            // Skip what the reserved ranges cover from `pos` on, else count
            // up to where the next one starts. Plain loops: this runs at
            // boot in emulated ring 0, where iterator chains cost triple.
            let (covered_to, next) = reserved_around(pos, end, reserved);
            if covered_to > pos {
                pos = covered_to;
            } else {
                total += next - pos;
                pos = next;
            }
        }
    }
    total
}

/// For frame `pos`: the end of the reserved ranges (page 0 included) that
/// cover it (`pos` if none), and the first reserved frame after it (`end`
/// if none before).
fn reserved_around(pos: u64, end: u64, reserved: &[MemRegion]) -> (u64, u64) {
    let (mut covered_to, mut next) = (pos, end);
    if pos == 0 {
        covered_to = 1;
    }
    for r in reserved {
        let (s, e) = (r.base / PAGE_SIZE, r.end().div_ceil(PAGE_SIZE));
        if s <= pos && pos < e {
            covered_to = covered_to.max(e);
        } else if s > pos && s < next {
            next = s;
        }
    }
    (covered_to, next)
}

#[cfg(test)]
mod tests;
