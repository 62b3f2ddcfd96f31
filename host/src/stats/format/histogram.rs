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
                    lo as f64 * 2e3 / s.tsc_khz as f64
                )
            } else {
                String::new()
            };
            let bar = "#".repeat(bar_width(n, max));
            let _ = writeln!(out, "  [2^{i:<2}, 2^{:<2}){range:<22} {n:>8} {bar}", i + 1);
        }
    }
    out
}

/// Width of a histogram bar: `n` of `max` over [`BAR_WIDTH`] columns,
/// rounded up. The counts come from the guest: computed in 128 bits, so any
/// pair of u64 values gives a width in `0..=BAR_WIDTH`.
fn bar_width(n: u64, max: u64) -> usize {
    let max = u128::from(max.max(n).max(1));
    let width = (u128::from(n) * BAR_WIDTH as u128).div_ceil(max);
    width.min(BAR_WIDTH as u128) as usize
}

/// Columns of the longest histogram bar.
pub const BAR_WIDTH: usize = 40;
