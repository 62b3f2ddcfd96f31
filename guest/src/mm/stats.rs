//! Fault statistics kept by the kernel: a count, a cycle sum and a log2 cycle
//! histogram per [`FaultKind`], plus lookup counters. Frame and node counts
//! are read from their owners when a snapshot is taken.
//!
//! The counters and histograms are kept in the byte layout of the statistics
//! wire format (`mobius_shared::stats`, v3), so a snapshot sends them as they
//! lie ([`FaultStats::wire_counters`], [`FaultStats::wire_histograms`]):
//! nothing is encoded or copied in ring 0, which kvm_pvm emulates.
use alloc::boxed::Box;

use mobius_shared::stats::{
    histogram_bucket, wire, FaultCounter, FaultKind, NodeStats, Snapshot, HISTOGRAM_BUCKETS,
};

// The wire format is little-endian and so is every target this runs on.
const _: () = assert!(cfg!(target_endian = "little"));

/// Where fault timings come from: `rdtsc` in the guest, a counter on the host.
pub trait CycleSource: Send {
    fn now(&self) -> u64;
}

/// A cycle source that advances by one on every read (host tests).
#[derive(Debug, Default)]
pub struct TickCounter(core::sync::atomic::AtomicU64);

impl CycleSource for TickCounter {
    fn now(&self) -> u64 {
        self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
    }
}

/// Count and cycle sum of one kind, in wire order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KindCounter {
    count: u64,
    cycles: u64,
}

/// Every kind's histogram, in wire order.
type Histograms = [[u64; HISTOGRAM_BUCKETS]; FaultKind::COUNT];

const _: () =
    assert!(core::mem::size_of::<[KindCounter; FaultKind::COUNT]>() == wire::COUNTERS_LEN);
const _: () = assert!(core::mem::size_of::<Histograms>() == wire::HISTOGRAMS_LEN);

/// Counters for every fault kind and for node lookups.
///
/// The histograms (2.5 KiB) are allocated at the first fault, so that a VMM
/// that never faults (and every VMM at boot) neither zeroes nor moves them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultStats {
    counters: [KindCounter; FaultKind::COUNT],
    histograms: Option<Box<Histograms>>,
    lookups: u64,
    max_lookup_depth: u64,
}

impl FaultStats {
    /// Count one fault of `kind` that took `cycles`. Inline, a dozen
    /// instructions once the histograms exist (it runs on every fault).
    #[inline]
    pub fn record(&mut self, kind: FaultKind, cycles: u64) {
        let c = &mut self.counters[kind.index()];
        c.count += 1;
        c.cycles = c.cycles.wrapping_add(cycles);
        match self.histograms.as_mut() {
            Some(h) => h[kind.index()][histogram_bucket(cycles)] += 1,
            None => self.record_first(kind, cycles),
        }
    }

    /// Count a demand-zero fault served from the zero pool: the demand-zero
    /// and zero-pool-hit counters at once, one histogram bucket computed for
    /// both (the short fault path; same counts as two [`FaultStats::record`]s).
    #[inline]
    pub fn record_zero_pool_demand_zero(&mut self, cycles: u64) {
        let Some(h) = self.histograms.as_mut() else {
            // The first fault: the general path allocates the histograms.
            self.record(FaultKind::DemandZero, cycles);
            self.record(FaultKind::ZeroPoolHit, cycles);
            return;
        };
        let b = histogram_bucket(cycles);
        for kind in [FaultKind::DemandZero, FaultKind::ZeroPoolHit] {
            let i = kind.index();
            h[i][b] += 1;
            let c = &mut self.counters[i];
            c.count += 1;
            c.cycles = c.cycles.wrapping_add(cycles);
        }
    }

    /// Count a node lookup answered by the hint, without a tree walk.
    #[inline]
    pub fn record_hint_lookup(&mut self) {
        self.lookups += 1;
    }

    /// The histogram part of the first [`FaultStats::record`]: allocate them.
    #[cold]
    #[inline(never)]
    fn record_first(&mut self, kind: FaultKind, cycles: u64) {
        self.histograms = zeroed_histograms();
        // Without memory for the histograms the counts still hold.
        if let Some(h) = self.histograms.as_mut() {
            h[kind.index()][histogram_bucket(cycles)] += 1;
        }
    }

    /// Count one node lookup that visited `depth` tree levels.
    pub fn record_lookup(&mut self, depth: u64) {
        self.lookups += 1;
        self.max_lookup_depth = self.max_lookup_depth.max(depth);
    }

    /// How many faults of `kind` were counted.
    pub fn count(&self, kind: FaultKind) -> u64 {
        self.counters[kind.index()].count
    }

    /// The counter of one kind, with its histogram.
    pub fn get(&self, kind: FaultKind) -> FaultCounter {
        let c = self.counters[kind.index()];
        FaultCounter {
            count: c.count,
            cycles: c.cycles,
            histogram: self
                .histograms
                .as_ref()
                .map_or([0; HISTOGRAM_BUCKETS], |h| h[kind.index()]),
        }
    }

    /// Fill the fault counters and the lookup part of `nodes` in `snap`.
    pub fn fill(&self, snap: &mut Snapshot) {
        for kind in FaultKind::ALL {
            snap.faults[kind.index()] = self.get(kind);
        }
        snap.nodes.lookups = self.lookups;
        snap.nodes.max_lookup_depth = self.max_lookup_depth;
    }

    /// Lookup counters as [`NodeStats`] (node and area counts left 0).
    pub fn lookup_stats(&self) -> NodeStats {
        NodeStats {
            lookups: self.lookups,
            max_lookup_depth: self.max_lookup_depth,
            ..NodeStats::default()
        }
    }

    /// The counter block of a wire frame, as it lies in memory.
    pub fn wire_counters(&self) -> &[u8] {
        // SAFETY: `KindCounter` is `repr(C)` of two `u64`s, so the array is
        // `COUNTERS_LEN` initialised bytes without padding (asserted above).
        unsafe {
            core::slice::from_raw_parts(self.counters.as_ptr().cast::<u8>(), wire::COUNTERS_LEN)
        }
    }

    /// The histogram block of a wire frame, if any fault was recorded.
    pub fn wire_histograms(&self) -> Option<&[u8]> {
        let h: &Histograms = self.histograms.as_deref()?;
        // SAFETY: an array of `u64` arrays: `HISTOGRAMS_LEN` initialised bytes
        // without padding (asserted above).
        Some(unsafe { core::slice::from_raw_parts(h.as_ptr().cast::<u8>(), wire::HISTOGRAMS_LEN) })
    }
}

/// A zeroed histogram block on the heap, or `None` if the heap is full.
fn zeroed_histograms() -> Option<Box<Histograms>> {
    let layout = core::alloc::Layout::new::<Histograms>();
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) }.cast::<Histograms>();
    // SAFETY: `p` is null or a zeroed allocation of `Histograms`' layout from
    // the global allocator, and all-zero bytes are a valid `Histograms`.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fills_histogram() {
        let mut s = FaultStats::default();
        assert!(s.wire_histograms().is_none());
        s.record(FaultKind::DemandZero, 1000);
        s.record(FaultKind::DemandZero, 1500);
        let c = s.get(FaultKind::DemandZero);
        assert_eq!((c.count, c.cycles), (2, 2500));
        assert_eq!(c.histogram[9] + c.histogram[10], 2);
        let mut snap = Snapshot::new(0, 0);
        s.record_lookup(3);
        s.fill(&mut snap);
        assert_eq!(snap.faults[0].count, 2);
        assert_eq!(snap.nodes.max_lookup_depth, 3);
    }

    #[test]
    fn the_short_path_counts_like_two_records() {
        for first in [true, false] {
            let (mut a, mut b) = (FaultStats::default(), FaultStats::default());
            if !first {
                a.record(FaultKind::Map, 5);
                b.record(FaultKind::Map, 5);
            }
            a.record(FaultKind::DemandZero, 3000);
            a.record(FaultKind::ZeroPoolHit, 3000);
            b.record_zero_pool_demand_zero(3000);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn wire_blocks_match_the_shared_encoder() {
        let mut s = FaultStats::default();
        s.record(FaultKind::Upgrade, 77);
        s.record(FaultKind::Unresolved, u64::MAX);
        let mut snap = Snapshot::new(0, 0);
        s.fill(&mut snap);
        let mut buf = [0u8; mobius_shared::stats::MAX_FRAME_LEN];
        let frame = snap.encode(&mut buf).expect("fits");
        let counters = &frame[wire::HEADER_LEN..wire::SHORT_LEN];
        assert_eq!(s.wire_counters(), counters);
        assert_eq!(s.wire_histograms(), Some(&frame[wire::SHORT_LEN..]));
    }
}
