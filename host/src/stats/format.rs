//! `mobius stat` output: a perf-stat-like table, perf's CSV field order
//! (`-x SEP`), or one JSON object (`--json`); repeated runs (`-r N`) are
//! reported as mean and relative standard deviation, like perf.
use std::fmt::Write as _;

use mobius_shared::stats::{FaultKind, Snapshot, HISTOGRAM_BUCKETS};
use serde_json::{json, Map, Value};

use super::errors::DecodeErrors;
use super::events::Event;

/// One event over all runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub name: String,
    pub unit: &'static str,
    pub mean: f64,
    /// Relative standard deviation of the mean in percent (perf's `+-`).
    pub stddev_pct: f64,
    pub metric: Option<(f64, &'static str)>,
}

/// Mean and relative stddev of the mean per event, in first-run order.
pub fn aggregate(runs: &[Vec<Event>]) -> Vec<Aggregate> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|e| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.iter().find(|x| x.name == e.name).map(|x| x.value))
                .collect();
            let metrics: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.iter().find(|x| x.name == e.name)?.metric.map(|m| m.0))
                .collect();
            let (mean, sd) = mean_stddev(&values);
            Aggregate {
                name: e.name.clone(),
                unit: e.unit,
                mean,
                stddev_pct: if mean != 0.0 { 100.0 * sd / mean } else { 0.0 },
                metric: e.metric.map(|(_, unit)| (mean_stddev(&metrics).0, unit)),
            }
        })
        .collect()
}

/// Mean and standard deviation of the mean (perf's definition).
pub fn mean_stddev(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn count_text(value: f64, unit: &str) -> String {
    if unit.is_empty() {
        group_thousands(value.round() as u64)
    } else {
        format!("{value:.2}")
    }
}

fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The perf-stat-like table.
pub fn table(title: &str, events: &[Aggregate], runs: usize, elapsed_s: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n Performance counter stats for '{title}'{}:\n",
        runs_text(runs)
    );
    for e in events {
        let name = if e.unit.is_empty() {
            e.name.clone()
        } else {
            format!("{} {}", e.unit, e.name)
        };
        let mut line = format!("{:>18}      {:<28}", count_text(e.mean, e.unit), name);
        if let Some((m, unit)) = e.metric {
            let _ = write!(line, " #  {m:>9.2} {unit}");
        }
        if runs > 1 {
            let _ = write!(line, "  ( +- {:5.2}% )", e.stddev_pct);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "\n{elapsed_s:>18.9} seconds time elapsed\n");
    out
}

fn runs_text(runs: usize) -> String {
    if runs > 1 {
        format!(" ({runs} runs)")
    } else {
        String::new()
    }
}

/// CSV in perf stat's field order: value, unit, event, run time (ns),
/// percentage of run time, metric value, metric unit.
pub fn csv(events: &[Aggregate], sep: &str, run_ns: u64) -> String {
    let mut out = String::new();
    for e in events {
        let value = if e.unit.is_empty() {
            format!("{}", e.mean.round() as u64)
        } else {
            format!("{:.3}", e.mean)
        };
        let (mv, mu) = e
            .metric
            .map(|(v, u)| (format!("{v:.2}"), u))
            .unwrap_or_default();
        let fields = [
            value,
            e.unit.to_string(),
            e.name.clone(),
            run_ns.to_string(),
            "100.00".to_string(),
            mv,
            mu.to_string(),
        ];
        let _ = writeln!(out, "{}", fields.join(sep));
    }
    out
}

/// Everything in one JSON object (for CI).
pub fn json(
    title: &str,
    status: i32,
    events: &[Aggregate],
    runs: usize,
    last: Option<&Snapshot>,
    errors: DecodeErrors,
) -> Value {
    let mut ev = Map::new();
    for e in events {
        let mut o = json!({ "value": e.mean, "unit": e.unit });
        if runs > 1 {
            o["stddev_pct"] = json!(e.stddev_pct);
        }
        if let Some((v, u)) = e.metric {
            o["metric"] = json!({ "value": v, "unit": u });
        }
        ev.insert(e.name.clone(), o);
    }
    let histograms: Map<String, Value> = last
        .map(|s| {
            FaultKind::ALL
                .iter()
                .filter(|k| s.faults[k.index()].count > 0)
                .map(|k| {
                    (
                        k.name().to_string(),
                        json!(s.faults[k.index()].histogram.to_vec()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "workload": title,
        "status": status,
        "runs": runs,
        "events": ev,
        "histograms_log2_cycles": histograms,
        "tsc_khz": last.map(|s| s.tsc_khz),
        "run_id": last.map(|s| s.run_id),
        "decode_errors": {
            "malformed": errors.malformed,
            "oversized": errors.oversized,
            "unknown_version": errors.unknown_version,
            "bad_magic": errors.bad_magic,
            "transport": errors.transport,
        },
    })
}

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
const BAR_WIDTH: usize = 40;

/// One `-I` line for a periodic snapshot: time since boot, then counts.
pub fn interval_line(s: &Snapshot, sep: Option<&str>) -> String {
    let t = if s.tsc_khz > 0 {
        s.tsc.saturating_sub(s.tsc_boot) as f64 / s.tsc_khz as f64 / 1e3
    } else {
        0.0
    };
    let fields: Vec<String> = FaultKind::ALL
        .iter()
        .filter(|k| !matches!(k, FaultKind::ZeroPoolHit | FaultKind::ZeroPoolMiss))
        .map(|k| match sep {
            Some(_) => format!("{}={}", k.name(), s.faults[k.index()].count),
            None => format!("{} {}", s.faults[k.index()].count, k.name()),
        })
        .collect();
    match sep {
        Some(sep) => format!("{t:.6}{sep}{}", fields.join(sep)),
        None => format!("{t:>14.6}  {}", fields.join("  ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, v: f64) -> Event {
        Event {
            name: name.into(),
            value: v,
            unit: "",
            metric: Some((v / 2.0, "us/fault")),
        }
    }

    #[test]
    fn aggregate_mean_and_relative_stddev() {
        let runs = vec![
            vec![ev("a", 10.0)],
            vec![ev("a", 12.0)],
            vec![ev("a", 14.0)],
        ];
        let a = &aggregate(&runs)[0];
        assert_eq!(a.mean, 12.0);
        // sd = 2, sd of mean = 2/sqrt(3) = 1.1547 -> 9.62 %
        assert!((a.stddev_pct - 9.6225).abs() < 1e-3, "{}", a.stddev_pct);
        assert_eq!(a.metric, Some((6.0, "us/fault")));
    }

    #[test]
    fn csv_has_perf_field_order_and_table_agrees() {
        let agg = aggregate(&[vec![ev("faults.demand-zero", 1234.0)]]);
        let text = csv(&agg, ",", 5000);
        let fields: Vec<&str> = text.trim().split(',').collect();
        assert_eq!(
            fields,
            [
                "1234",
                "",
                "faults.demand-zero",
                "5000",
                "100.00",
                "617.00",
                "us/fault"
            ]
        );
        let t = table("seq-touch", &agg, 1, 0.5);
        assert!(t.contains("1,234      faults.demand-zero"), "{t}");
        assert!(t.contains("617.00 us/fault"), "{t}");
    }

    #[test]
    fn json_carries_the_same_numbers() {
        let agg = aggregate(&[vec![ev("faults", 7.0)]]);
        let v = json("w", 0, &agg, 1, None, DecodeErrors::default());
        let text = v.to_string();
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back["events"]["faults"]["value"], json!(7.0));
        assert_eq!(back["status"], json!(0));
    }

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }
}
