//! `--histogram`: each fault kind's log2 histogram of cycles per fault.
use std::fmt::Write as _;

use mobius_shared::stats::{FaultKind, Snapshot, HISTOGRAM_BUCKETS};

/// Text histograms of cycles per fault, one per kind with faults.
pub fn histograms(s: &Snapshot) -> String {
    let mut out = String::new();
    for kind in FaultKind::ALL {
        let c = &s.faults[kind.index()];
        if c.count == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "\n {} ({} faults), cycles per fault:",
            kind.name(),
            c.count
        );
        let max = c.histogram.iter().copied().max().unwrap_or(1).max(1);
        for (i, &n) in c.histogram.iter().enumerate().take(HISTOGRAM_BUCKETS) {
            if n == 0 {
                continue;
            }
            let lo = 1u64 << i;
            let range = if s.tsc_khz > 0 {
                format!(
                    " ({:.1}-{:.1} us)",
                    lo as f64 * 1e3 / s.tsc_khz as f64,
                    (lo * 2) as f64 * 1e3 / s.tsc_khz as f64
                )
            } else {
                String::new()
            };
            let bar = "#".repeat(((n * 40).div_ceil(max)) as usize);
            let _ = writeln!(out, "  [2^{i:<2}, 2^{:<2}){range:<22} {n:>8} {bar}", i + 1);
        }
    }
    out
}
