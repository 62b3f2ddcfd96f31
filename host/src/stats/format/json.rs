//! `-j`: perf stat's JSON Lines, one object per counter line, keys in
//! perf's order and with perf's types:
//!
//! | key | type | when |
//! |---|---|---|
//! | `interval` | number, seconds since the start (`%lu.%09lu`) | with `-I` |
//! | `counter-value` | string: `%f`, or `<not supported>` | always |
//! | `unit` | string (`""` for counts, `msec`) | always |
//! | `event` | string | always |
//! | `variance` | number, relative stddev of the mean in % (`%.2f`) | with `-r N`, N > 1 |
//! | `event-runtime` | integer, ns the counter ran | always |
//! | `pcnt-running` | number (`%.2f`), always 100.00 here | always |
//! | `metric-value` | string: `%f` | when the event has a metric |
//! | `metric-unit` | string | when the event has a metric |
//!
//! Written by hand rather than through serde so that key order, spacing
//! (`"key" : value`) and number formats are perf's.
use std::fmt::Write as _;

use super::{seconds, Prefix, Row, NOT_SUPPORTED};

/// `s` as a JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One JSON object (no newline).
pub fn line(row: &Row, prefix: Prefix) -> String {
    let mut fields: Vec<String> = Vec::with_capacity(9);
    if let Prefix::Interval(ns) = prefix {
        fields.push(format!("\"interval\" : {}", seconds(ns)));
    }
    let value = match row.value {
        Some(v) => format!("{v:.6}"),
        None => NOT_SUPPORTED.to_string(),
    };
    fields.push(format!("\"counter-value\" : {}", string(&value)));
    fields.push(format!("\"unit\" : {}", string(row.unit)));
    fields.push(format!("\"event\" : {}", string(row.event)));
    if let Some(pct) = row.variance {
        fields.push(format!("\"variance\" : {pct:.2}"));
    }
    fields.push(format!("\"event-runtime\" : {}", row.runtime_ns));
    fields.push("\"pcnt-running\" : 100.00".to_string());
    if let (Some((v, unit)), Some(_)) = (row.metric, row.value) {
        fields.push(format!("\"metric-value\" : {}", string(&format!("{v:.6}"))));
        fields.push(format!("\"metric-unit\" : {}", string(unit)));
    }
    format!("{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfs_keys_order_and_types() {
        let r = Row {
            event: "faults.upgrade",
            unit: "",
            value: Some(40.0),
            variance: Some(0.5),
            runtime_ns: 123,
            metric: Some((74.06, "us/fault")),
        };
        assert_eq!(
            line(&r, Prefix::Interval(2_000_000_001)),
            "{\"interval\" : 2.000000001, \"counter-value\" : \"40.000000\", \"unit\" : \"\", \
             \"event\" : \"faults.upgrade\", \"variance\" : 0.50, \"event-runtime\" : 123, \
             \"pcnt-running\" : 100.00, \"metric-value\" : \"74.060000\", \"metric-unit\" : \"us/fault\"}"
        );
        let v: serde_json::Value = serde_json::from_str(&line(&r, Prefix::None)).expect("JSON");
        assert!(v["counter-value"].is_string());
        assert!(v["event-runtime"].is_u64());
        assert!(v.get("interval").is_none());
    }

    #[test]
    fn not_supported_and_odd_names_stay_valid_json() {
        let r = Row {
            event: "kvm.a\"b\\c\u{1}",
            unit: "",
            value: None,
            variance: None,
            runtime_ns: 0,
            metric: None,
        };
        let text = line(&r, Prefix::None);
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["counter-value"], "<not supported>");
        assert_eq!(v["event"], "kvm.a\"b\\c\u{1}");
        assert!(v.get("metric-value").is_none());
    }
}
