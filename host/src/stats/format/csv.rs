//! `-x SEP`: perf stat's CSV lines.
//!
//! Fields, in this order, joined by SEP (nothing is quoted):
//!
//! 1. with `-I`: the time stamp, seconds since the start (`%lu.%09lu`);
//!    with `-I --summary`, the totals' lines start with `summary` instead
//! 2. counter value: `%.0f` for counts, `%.2f` for `msec`; `<not supported>`
//!    when the counter could not be counted
//! 3. unit of the value, or empty
//! 4. event name
//! 5. with `-r N` (N > 1): the variance, the relative standard deviation of
//!    the mean, `%.2f%%`
//! 6. run time of the counter in ns
//! 7. percentage of the measurement time the counter was running (`%.2f`;
//!    always 100.00 here: nothing is multiplexed)
//! 8. metric value (`%.2f`), or empty
//! 9. metric unit, or empty
//!
//! perf's man page (CSV FORMAT) lists the variance after the percentage, but
//! perf itself prints it right after the event name (`printout()` in
//! `tools/perf/util/stat-display.c` prints the noise before the running
//! time); tools read what perf prints, so this follows perf.
use super::{seconds, Prefix, Row, NOT_SUPPORTED};

/// One CSV line (no newline).
pub fn line(row: &Row, prefix: Prefix, sep: &str) -> String {
    let mut f: Vec<String> = Vec::with_capacity(9);
    match prefix {
        Prefix::None => {}
        Prefix::Interval(ns) => f.push(seconds(ns)),
        Prefix::Summary => f.push("summary".into()),
    }
    f.push(match row.value {
        None => NOT_SUPPORTED.into(),
        Some(v) if row.unit.is_empty() => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    });
    f.push(row.unit.into());
    f.push(row.event.into());
    if let Some(pct) = row.variance {
        f.push(format!("{pct:.2}%"));
    }
    f.push(row.runtime_ns.to_string());
    f.push("100.00".into());
    match row.metric {
        Some((v, unit)) if row.value.is_some() => {
            f.push(format!("{v:.2}"));
            f.push(unit.into());
        }
        _ => f.extend([String::new(), String::new()]),
    }
    f.join(sep)
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
            runtime_ns: 5000,
            metric: None,
        }
    }

    #[test]
    fn fields_in_perfs_order() {
        let mut r = row("faults.demand-zero", "", Some(1234.0));
        r.metric = Some((617.0, "us/fault"));
        assert_eq!(
            line(&r, Prefix::None, ","),
            "1234,,faults.demand-zero,5000,100.00,617.00,us/fault"
        );
        let t = row("time.total", "msec", Some(21.0741));
        assert_eq!(
            line(&t, Prefix::None, ";"),
            "21.07;msec;time.total;5000;100.00;;"
        );
    }

    #[test]
    fn variance_follows_the_name_and_interval_leads() {
        let mut r = row("faults", "", Some(30.0));
        r.variance = Some(1.234);
        assert_eq!(
            line(&r, Prefix::Interval(1_000_123_456), ","),
            "1.000123456,30,,faults,1.23%,5000,100.00,,"
        );
        assert_eq!(
            line(&r, Prefix::Summary, ","),
            "summary,30,,faults,1.23%,5000,100.00,,"
        );
    }

    #[test]
    fn not_supported() {
        let mut r = row("kvm.nope", "", None);
        r.runtime_ns = 0;
        assert_eq!(
            line(&r, Prefix::None, ","),
            "<not supported>,,kvm.nope,0,100.00,,"
        );
    }
}
