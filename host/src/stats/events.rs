//! The events `mobius stat` reports: the guest's counters from its final
//! snapshot, and the host's VM-exit counts and times of the same run.
use mobius_shared::stats::{FaultKind, Snapshot};

use crate::RunOutcome;

/// One counted event of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub value: f64,
    /// Unit of the value (`""` for counts, `msec` for times).
    pub unit: &'static str,
    /// A derived metric: (value, unit), e.g. (85.2, "us/fault").
    pub metric: Option<(f64, &'static str)>,
}

impl Event {
    pub fn count(name: impl Into<String>, value: u64) -> Event {
        Event {
            name: name.into(),
            value: value as f64,
            unit: "",
            metric: None,
        }
    }

    fn msec(name: &str, value: f64) -> Event {
        Event {
            name: name.into(),
            value,
            unit: "msec",
            metric: None,
        }
    }
}

/// Every event name `mobius stat -e` accepts, in report order.
pub fn all_names() -> Vec<String> {
    let mut names = vec!["faults".to_string()];
    names.extend(FaultKind::ALL.iter().map(|k| k.name().to_string()));
    names.extend(
        [
            "frames.total",
            "frames.free",
            "frames.used",
            "frames.zeroed",
            "frames.exhausted",
            "nodes.count",
            "nodes.areas",
            "nodes.lookups",
            "nodes.max-depth",
            "exits",
        ]
        .map(String::from),
    );
    names.extend(
        crate::ExitCounts::default()
            .iter()
            .map(|(n, _)| format!("exits.{n}")),
    );
    names.extend(["time.boot-to-ready", "time.ready-to-done", "time.total"].map(String::from));
    names.extend(["stats.snapshots", "stats.notifications"].map(String::from));
    names
}

/// Guest TSC cycles to milliseconds (0 when the frequency is unknown).
fn cycles_ms(cycles: u64, tsc_khz: u64) -> f64 {
    if tsc_khz == 0 {
        0.0
    } else {
        cycles as f64 / tsc_khz as f64
    }
}

/// The events of one run.
pub fn collect(snap: Option<&Snapshot>, outcome: &RunOutcome) -> Vec<Event> {
    let mut events = Vec::new();
    if let Some(s) = snap {
        events.push(Event::count("faults", s.total_faults()));
        for kind in FaultKind::ALL {
            let c = &s.faults[kind.index()];
            let mut e = Event::count(kind.name(), c.count);
            if c.count > 0 && s.tsc_khz > 0 {
                e.metric = Some((
                    cycles_ms(c.cycles, s.tsc_khz) * 1000.0 / c.count as f64,
                    "us/fault",
                ));
            }
            events.push(e);
        }
        let f = &s.frames;
        for (n, v) in [
            ("frames.total", f.total),
            ("frames.free", f.free),
            ("frames.used", f.used),
            ("frames.zeroed", f.zeroed),
            ("frames.exhausted", f.exhausted),
            ("nodes.count", s.nodes.nodes),
            ("nodes.areas", s.nodes.areas),
            ("nodes.lookups", s.nodes.lookups),
            ("nodes.max-depth", s.nodes.max_lookup_depth),
        ] {
            events.push(Event::count(n, v));
        }
    }
    events.push(Event::count("exits", outcome.exits.total()));
    for (name, v) in outcome.exits.iter() {
        events.push(Event::count(format!("exits.{name}"), v));
    }
    if let Some(s) = snap {
        events.push(Event::msec(
            "time.boot-to-ready",
            cycles_ms(s.tsc_ready.saturating_sub(s.tsc_boot), s.tsc_khz),
        ));
        events.push(Event::msec(
            "time.ready-to-done",
            cycles_ms(s.tsc.saturating_sub(s.tsc_ready), s.tsc_khz),
        ));
    }
    events.push(Event::msec(
        "time.total",
        outcome.timings.total.as_secs_f64() * 1e3,
    ));
    for (name, v) in &outcome.kvm_stats {
        events.push(Event::count(format!("kvm.{name}"), *v));
    }
    events
}

/// Whether `name` can be asked for with `-e`: a fixed event, or one of KVM's
/// per-vCPU statistics (`kvm.<name>`, whatever the running kernel offers).
pub fn is_known(name: &str) -> bool {
    name.strip_prefix("kvm.").is_some_and(|n| !n.is_empty())
        || all_names().iter().any(|n| n == name)
}

/// Whether `name` is in the default report (`-e` picks any of [`all_names`]).
fn default_event(name: &str) -> bool {
    name == "faults"
        || name.starts_with("faults.")
        || name.starts_with("time.")
        || matches!(
            name,
            "frames.used" | "frames.free" | "frames.zeroed" | "nodes.areas" | "exits"
        )
}

/// Keep the events named in `wanted` (the default set when empty), in
/// `wanted` order.
pub fn select(events: Vec<Event>, wanted: &[String]) -> Vec<Event> {
    if wanted.is_empty() {
        return events
            .into_iter()
            .filter(|e| default_event(&e.name))
            .collect();
    }
    wanted
        .iter()
        .filter_map(|w| events.iter().find(|e| &e.name == w).cloned())
        .collect()
}
