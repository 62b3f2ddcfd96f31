//! A reader of `perf stat -x SEP` and `perf stat -j` output, written from
//! perf's own documentation (perf-stat(1), sections CSV FORMAT and JSON
//! FORMAT) and nothing of `mobius`, to check that `mobius stat` can stand in
//! for perf in tools that parse its output.
//!
//! CSV FORMAT: "not-quite-CSV" (nothing quoted), fields in this order:
//! optional time stamp in fractions of a second (with -I), [per-CPU
//! aggregation fields, which mobius never prints], counter value, unit of
//! the counter value or empty, event name, run time of counter, percentage
//! of measurement time the counter was running, optional variance (with
//! -r), optional metric value, optional unit of metric. One deviation from
//! the page: perf prints the variance right after the event name, before
//! the run time (stat-display.c prints the noise before the running time),
//! and the reader follows what perf prints.
//!
//! JSON FORMAT: one object per line; `interval` (with -I), `counter-value`,
//! `unit`, `event`, `variance` (with -r), `event-runtime`, `pcnt-running`,
//! `metric-value`, `metric-unit`. perf writes `counter-value` and
//! `metric-value` as strings (`"%f"`), `event-runtime` as an integer.
#![allow(dead_code)]

use serde_json::{Map, Value};

/// A counter value: a number, or perf's marker for one it could not count.
#[derive(Debug, Clone, PartialEq)]
pub enum CounterValue {
    Number(f64),
    NotSupported,
    NotCounted,
}

impl CounterValue {
    fn parse(s: &str) -> Result<CounterValue, String> {
        match s {
            "<not supported>" => Ok(CounterValue::NotSupported),
            "<not counted>" => Ok(CounterValue::NotCounted),
            _ => number(s, "counter value").map(CounterValue::Number),
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            CounterValue::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// One counter line.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// Seconds since the start (with -I).
    pub interval: Option<f64>,
    /// The line is one of the totals after -I lines (CSV `summary` field).
    pub summary: bool,
    pub value: CounterValue,
    pub unit: String,
    pub event: String,
    /// Percent (with -r).
    pub variance: Option<f64>,
    pub runtime: u64,
    pub pcnt_running: f64,
    pub metric: Option<(f64, String)>,
}

/// What the options make the lines carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// -I: a time stamp first.
    pub interval: bool,
    /// -r N, N > 1: a variance.
    pub repeat: bool,
}

fn number(s: &str, what: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{what} {s:?} is not a number"))
}

/// One `-x SEP` line.
pub fn parse_csv(line: &str, sep: &str, shape: Shape) -> Result<Counter, String> {
    let mut f: Vec<&str> = line.split(sep).collect();
    let mut interval = None;
    let mut summary = false;
    if shape.interval {
        if f.first() == Some(&"summary") {
            summary = true;
        } else {
            interval = Some(number(f.first().copied().unwrap_or(""), "time stamp")?);
        }
        f.remove(0);
    }
    let want = 7 + usize::from(shape.repeat);
    if f.len() != want {
        return Err(format!("{} fields, want {want}: {line:?}", f.len()));
    }
    let value = CounterValue::parse(f[0])?;
    let (unit, event) = (f[1].to_string(), f[2].to_string());
    if event.is_empty() {
        return Err(format!("no event name: {line:?}"));
    }
    let mut rest = &f[3..];
    let mut variance = None;
    if shape.repeat {
        let v = rest[0]
            .strip_suffix('%')
            .ok_or_else(|| format!("variance {:?} lacks its %", rest[0]))?;
        variance = Some(number(v, "variance")?);
        rest = &rest[1..];
    }
    let runtime = rest[0]
        .parse::<u64>()
        .map_err(|_| format!("run time {:?} is not an integer", rest[0]))?;
    let pcnt_running = number(rest[1], "percentage")?;
    let metric = match (rest[2], rest[3]) {
        ("", "") => None,
        (v, u) if !u.is_empty() => Some((number(v, "metric value")?, u.to_string())),
        _ => return Err(format!("metric value without unit: {line:?}")),
    };
    Ok(Counter {
        interval,
        summary,
        value,
        unit,
        event,
        variance,
        runtime,
        pcnt_running,
        metric,
    })
}

fn string<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{key:?} is not a string in {o:?}"))
}

fn float(o: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{key:?} is not a number in {o:?}")),
    }
}

/// One `-j` line.
pub fn parse_json(line: &str, shape: Shape) -> Result<Counter, String> {
    const KEYS: [&str; 9] = [
        "interval",
        "counter-value",
        "unit",
        "event",
        "variance",
        "event-runtime",
        "pcnt-running",
        "metric-value",
        "metric-unit",
    ];
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line:?}"))?;
    let o = v
        .as_object()
        .ok_or_else(|| format!("not an object: {line:?}"))?;
    if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("key {k:?} is not perf's: {line:?}"));
    }
    let interval = float(o, "interval")?;
    if interval.is_some() != shape.interval {
        return Err(format!(
            "interval present: {}: {line:?}",
            interval.is_some()
        ));
    }
    let variance = float(o, "variance")?;
    if variance.is_some() != shape.repeat {
        return Err(format!(
            "variance present: {}: {line:?}",
            variance.is_some()
        ));
    }
    let runtime = o
        .get("event-runtime")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("event-runtime is not an integer: {line:?}"))?;
    let pcnt_running =
        float(o, "pcnt-running")?.ok_or_else(|| format!("no pcnt-running: {line:?}"))?;
    let metric = match (o.get("metric-value"), o.get("metric-unit")) {
        (None, None) => None,
        (Some(Value::String(v)), Some(Value::String(u))) => {
            Some((number(v, "metric value")?, u.clone()))
        }
        _ => return Err(format!("metric-value/metric-unit: {line:?}")),
    };
    Ok(Counter {
        interval,
        summary: false,
        value: CounterValue::parse(string(o, "counter-value")?)?,
        unit: string(o, "unit")?.to_string(),
        event: string(o, "event")?.to_string(),
        variance,
        runtime,
        pcnt_running,
        metric,
    })
}

/// Every counter line of `-x SEP` output (perf's `#` comment lines, as in
/// an `-o` file, and empty lines skipped).
pub fn parse_csv_output(text: &str, sep: &str, shape: Shape) -> Result<Vec<Counter>, String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_csv(l, sep, shape))
        .collect()
}

/// Every line of `-j` output.
pub fn parse_json_output(text: &str, shape: Shape) -> Result<Vec<Counter>, String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| parse_json(l, shape))
        .collect()
}
