//! perf stat's human-readable output: the table after the run, and the
//! time-stamped lines of `-I` with their `# time counts unit events` header.
use std::fmt::Write as _;

use super::{Prefix, Row, NOT_SUPPORTED};

/// Width of perf's metric column (`METRIC_LEN`), padded when a `+-` follows.
const METRIC_LEN: usize = 38;

/// `n` with thousands grouped by commas (perf's `%'`), `decimals` after the point.
pub fn grouped(n: f64, decimals: usize) -> String {
    let text = format!("{n:.decimals$}");
    let (int, frac) = text.split_at(text.find('.').unwrap_or(text.len()));
    let (sign, digits) = int.split_at(usize::from(int.starts_with('-')));
    let mut out = sign.to_string();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out + frac
}

/// The header perf prints before the first `-I` lines (and every 26th time).
pub fn interval_header() -> String {
    format!("#{:>15} {:>18} {:>4} events", "time", "counts", "unit")
}

/// One counter line (no newline): `-I` time stamp, value, unit, event,
/// metric, and `( +- x.xx% )` for a non-zero variance.
pub fn line(row: &Row, prefix: Prefix) -> String {
    let mut out = String::new();
    if let Prefix::Interval(ns) = prefix {
        let _ = write!(out, "{:>6}.{:09} ", ns / 1_000_000_000, ns % 1_000_000_000);
    }
    let value = match row.value {
        None => NOT_SUPPORTED.to_string(),
        Some(v) if row.unit.is_empty() => grouped(v, 0),
        Some(v) => grouped(v, 2),
    };
    let _ = write!(out, "{value:>18} {:<4} {:<32}", row.unit, row.event);
    let metric = match (row.metric, row.value) {
        (Some((m, unit)), Some(_)) => format!(" #  {m:>9.2} {unit}"),
        _ => String::new(),
    };
    match row.variance {
        Some(pct) if pct != 0.0 => {
            let _ = write!(out, "{metric:<METRIC_LEN$}  ( +-{pct:6.2}% )");
        }
        _ => out.push_str(&metric),
    }
    out.trim_end().to_string()
}

/// The table after the run.
pub fn report(title: &str, rows: &[Row], runs: usize, elapsed_s: f64) -> String {
    let mut out = String::new();
    let runs_text = if runs > 1 {
        format!(" ({runs} runs)")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\n Performance counter stats for '{title}'{runs_text}:\n"
    );
    for r in rows {
        let _ = writeln!(out, "{}", line(r, Prefix::None));
    }
    let _ = writeln!(out, "\n {elapsed_s:>17.9} seconds time elapsed\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(event: &'a str, unit: &'a str, value: Option<f64>) -> Row<'a> {
        Row {
            event,
            unit,
            value,
            variance: None,
            runtime_ns: 1,
            metric: None,
        }
    }

    #[test]
    fn thousands() {
        assert_eq!(grouped(0.0, 0), "0");
        assert_eq!(grouped(1234567.0, 0), "1,234,567");
        assert_eq!(grouped(1234.567, 2), "1,234.57");
        assert_eq!(grouped(999.0, 0), "999");
    }

    #[test]
    fn lines_like_perf() {
        let mut r = row("faults.demand-zero", "", Some(1234.0));
        r.metric = Some((617.0, "us/fault"));
        let l = line(&r, Prefix::None);
        assert!(
            l.starts_with("             1,234      faults.demand-zero"),
            "{l}"
        );
        assert!(l.ends_with("#     617.00 us/fault"), "{l}");
        let t = line(&row("time.total", "msec", Some(21.07)), Prefix::None);
        assert_eq!(t, "             21.07 msec time.total");
        let n = line(&row("kvm.nope", "", None), Prefix::None);
        assert_eq!(n, "   <not supported>      kvm.nope");
        let i = line(
            &row("faults", "", Some(3.0)),
            Prefix::Interval(1_000_123_456),
        );
        assert_eq!(i, "     1.000123456                  3      faults");
        let mut v = row("faults", "", Some(3.0));
        v.variance = Some(0.46);
        assert!(line(&v, Prefix::None).ends_with("  ( +-  0.46% )"));
        v.variance = Some(0.0);
        assert!(!line(&v, Prefix::None).contains("+-"));
    }

    #[test]
    fn header_lines_up_with_the_columns() {
        let h = interval_header();
        let l = line(&row("faults", "", Some(3.0)), Prefix::Interval(1));
        assert_eq!(
            h.find("time").map(|i| i + 4),
            l.find(".000000001").map(|i| i + 10)
        );
        assert_eq!(h.find("counts").map(|i| i + 6), l.find("3 ").map(|i| i + 1));
    }
}
