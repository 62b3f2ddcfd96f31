//! Fault statistics kept by the kernel: a count, a cycle sum and a log2 cycle
//! histogram per [`FaultKind`], plus lookup counters. Frame and node counts
//! are read from their owners when a snapshot is taken.
use mobius_shared::stats::{histogram_bucket, FaultCounter, FaultKind, NodeStats, Snapshot};

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

/// Counters for every fault kind and for node lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultStats {
    faults: [FaultCounter; FaultKind::COUNT],
    lookups: u64,
    max_lookup_depth: u64,
}

impl Default for FaultStats {
    fn default() -> Self {
        FaultStats {
            faults: [FaultCounter::default(); FaultKind::COUNT],
            lookups: 0,
            max_lookup_depth: 0,
        }
    }
}

impl FaultStats {
    /// Count one fault of `kind` that took `cycles`.
    pub fn record(&mut self, kind: FaultKind, cycles: u64) {
        let c = &mut self.faults[kind.index()];
        c.count += 1;
        c.cycles = c.cycles.wrapping_add(cycles);
        c.histogram[histogram_bucket(cycles)] += 1;
    }

    /// Count one node lookup that visited `depth` tree levels.
    pub fn record_lookup(&mut self, depth: u64) {
        self.lookups += 1;
        self.max_lookup_depth = self.max_lookup_depth.max(depth);
    }

    /// The counter of one kind.
    pub fn get(&self, kind: FaultKind) -> &FaultCounter {
        &self.faults[kind.index()]
    }

    /// Fill the fault counters and the lookup part of `nodes` in `snap`.
    pub fn fill(&self, snap: &mut Snapshot) {
        snap.faults = self.faults;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fills_histogram() {
        let mut s = FaultStats::default();
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
}
