//! perf stat's human-readable output: the table after the run, and the
//! time-stamped lines of `-I` with their `# time counts unit events` header.
use std::fmt::Write as _;

use super::{Notes, Prefix, Row, NOT_SUPPORTED};

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

/// Columns before a metric's ` #`: value, unit and event.
const COUNTER_LEN: usize = 18 + 1 + 4 + 1 + 32;

/// One counter line (no newline): `-I` time stamp, value, unit, event,
/// metric, and `( +- x.xx% )` for a non-zero variance.
pub fn line(row: &Row, prefix: Prefix) -> String {
    line_noted(row, prefix, None)
}

/// [`line`], with `note` after the `#` when the row has no metric.
fn line_noted(row: &Row, prefix: Prefix, note: Option<&str>) -> String {
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
    let metric = match (row.metric, row.value, note) {
        (Some((m, unit)), Some(_), _) => format!(" #  {m:>9.2} {unit}"),
        (None, Some(_), Some(note)) => format!(" #  {note}"),
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

/// The table after the run; `notes` go under their events' lines (perf's
/// further metric lines: blank up to the `#`).
pub fn report(title: &str, rows: &[Row], runs: usize, elapsed_s: f64, notes: &Notes) -> String {
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
        let mine: &[String] = match notes.iter().find(|(e, _)| e == r.event) {
            Some((_, n)) if r.value.is_some() => n,
            _ => &[],
        };
        let (first, rest) = match (r.metric, mine.split_first()) {
            (None, Some((first, rest))) => (Some(first.as_str()), rest),
            _ => (None, mine),
        };
        let _ = writeln!(out, "{}", line_noted(r, Prefix::None, first));
        for note in rest {
            let _ = writeln!(out, "{:COUNTER_LEN$} #  {note}", "");
        }
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
    fn notes_follow_their_event_like_perfs_further_metrics() {
        let rows = [
            row("syscalls", "", Some(200.0)),
            row("syscalls.enosys", "", Some(3.0)),
            row("exits", "", Some(9.0)),
        ];
        let notes: Notes = vec![(
            "syscalls.enosys".into(),
            vec!["435 (clone3) x2".into(), "335 x1".into()],
        )];
        let text = report("p", &rows, 1, 0.5, &notes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[4],
            "                 3      syscalls.enosys                  #  435 (clone3) x2"
        );
        assert_eq!(
            lines[5],
            "                                                         #  335 x1"
        );
        assert_eq!(lines[4].find('#'), lines[5].find('#'));
        assert!(lines[6].ends_with("exits"), "{text}");
        // Not counted: no notes.
        let text = report("p", &[row("syscalls.enosys", "", None)], 1, 0.5, &notes);
        assert!(!text.contains('#'), "{text}");
        // Without notes the table is as before.
        assert_eq!(
            report("p", &rows, 1, 0.5, &Vec::new()),
            report(
                "p",
                &rows,
                1,
                0.5,
                &vec![("other".into(), vec!["x".into()])]
            )
        );
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
