//! The events `mobius stat` reports: the guest's counters from its final
//! snapshot (with the system calls of its process block, when the run ran
//! programs), and the host's VM-exit counts and times of the same run (the
//! names and meanings are in [`super::catalogue`]).
use mobius_shared::stats::{FaultKind, Snapshot};

use super::catalogue;
use super::errors::DecodeErrors;
use crate::RunOutcome;

/// One counted event of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    /// `None`: not supported in this run (perf's `<not supported>`).
    pub value: Option<f64>,
    /// Unit of the value (`""` for counts, `msec` for times).
    pub unit: &'static str,
    /// A derived metric: (value, unit), e.g. (85.2, "us/fault").
    pub metric: Option<(f64, &'static str)>,
}

impl Event {
    pub fn count(name: impl Into<String>, value: u64) -> Event {
        Event {
            name: name.into(),
            value: Some(value as f64),
            unit: "",
            metric: None,
        }
    }

    fn msec(name: &str, value: f64) -> Event {
        Event {
            name: name.into(),
            value: Some(value),
            unit: "msec",
            metric: None,
        }
    }

    /// An event this run could not count.
    pub fn unsupported(name: &str) -> Event {
        Event {
            name: name.into(),
            value: None,
            unit: catalogue::find(name).map_or("", |e| e.unit),
            metric: None,
        }
    }
}

/// What one run left to count from.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    /// The guest's final snapshot, if it sent one.
    pub last: Option<&'a Snapshot>,
    pub outcome: &'a RunOutcome,
    pub snapshots: u64,
    pub notifications: u64,
    pub errors: DecodeErrors,
}

/// Guest TSC cycles to milliseconds (0 when the frequency is unknown).
fn cycles_ms(cycles: u64, tsc_khz: u64) -> f64 {
    if tsc_khz == 0 {
        0.0
    } else {
        cycles as f64 / tsc_khz as f64
    }
}

/// Faults that read a page in (perf's major faults): FILE and IMAGE read-ins.
/// The counts come from the guest: the sum saturates at `u64::MAX`.
pub fn major_faults(s: &Snapshot) -> u64 {
    [FaultKind::FileReadIn, FaultKind::Image]
        .iter()
        .fold(0u64, |sum, k| sum.saturating_add(s.faults[k.index()].count))
}

/// The guest's counters in one snapshot (the `sampled` events of the
/// catalogue): what `-I` prints each interval.
pub fn from_snapshot(s: &Snapshot) -> Vec<Event> {
    let total = s.total_faults();
    let mut events = vec![Event::count("faults", total)];
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
    let major = major_faults(s);
    events.push(Event::count("page-faults", total));
    events.push(Event::count("major-faults", major));
    events.push(Event::count("minor-faults", total.saturating_sub(major)));
    let f = &s.frames;
    for (n, v) in [
        ("frames.total", f.total),
        ("frames.free", f.free),
        ("frames.used", f.used),
        ("frames.zeroed", f.zeroed),
        ("frames.exhausted", f.exhausted),
        ("frames.free-errors", f.free_errors),
        ("nodes.count", s.nodes.nodes),
        ("nodes.areas", s.nodes.areas),
        ("nodes.lookups", s.nodes.lookups),
    ] {
        events.push(Event::count(n, v));
    }
    events
}

/// The events of one run.
pub fn collect(facts: &RunFacts) -> Vec<Event> {
    let mut events = facts.last.map(from_snapshot).unwrap_or_default();
    if let Some(p) = facts.last.and_then(|s| s.processes.as_ref()) {
        events.push(Event::count("syscalls", p.syscalls));
        events.push(Event::count("syscalls.enosys", p.enosys));
    }
    let outcome = facts.outcome;
    events.push(Event::count("exits", outcome.exits.total()));
    for (name, v) in outcome.exits.iter() {
        events.push(Event::count(format!("exits.{name}"), v));
    }
    if let Some(s) = facts.last {
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
    let e = facts.errors;
    for (n, v) in [
        ("stats.snapshots", facts.snapshots),
        ("stats.notifications", facts.notifications),
        ("stats.malformed", e.malformed),
        ("stats.oversized", e.oversized),
        ("stats.unknown-version", e.unknown_version),
        ("stats.bad-magic", e.bad_magic),
        ("stats.transport", e.transport),
    ] {
        events.push(Event::count(n, v));
    }
    for (name, v) in &outcome.kvm_stats {
        events.push(Event::count(format!("kvm.{name}"), *v));
    }
    events
}

/// Whether `name` can be asked for with `-e`: a fixed event, or one of KVM's
/// per-vCPU statistics (`kvm.<name>`, whatever the running kernel offers).
pub fn is_known(name: &str) -> bool {
    catalogue::find(name).is_some()
}

/// The events asked for: `wanted`, or the default set when it is empty.
pub fn wanted_names(wanted: &[String]) -> Vec<String> {
    if wanted.is_empty() {
        catalogue::default_names()
    } else {
        wanted.to_vec()
    }
}

/// One event per name of `names`, in that order, under that name; a name
/// this run did not count is [`Event::unsupported`].
pub fn select(events: &[Event], names: &[String]) -> Vec<Event> {
    names
        .iter()
        .map(|n| {
            events
                .iter()
                .find(|e| &e.name == n)
                .cloned()
                .unwrap_or_else(|| Event::unsupported(n))
        })
        .collect()
}

/// The default report of one run: `selected` without the
/// [`catalogue::EventInfo::skippable`] events it could not count (perf
/// leaves such default events out rather than print `<not supported>`).
pub fn skip_uncounted(selected: Vec<Event>) -> Vec<Event> {
    selected
        .into_iter()
        .filter(|e| e.value.is_some() || !catalogue::find(&e.name).is_some_and(|c| c.skippable))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_fault_events_split_faults_into_major_and_minor() {
        let mut s = Snapshot::new(1, 1000);
        for (k, n) in [
            (FaultKind::DemandZero, 10),
            (FaultKind::ZeroPoolHit, 10),
            (FaultKind::Upgrade, 3),
            (FaultKind::FileReadIn, 4),
            (FaultKind::Image, 5),
            (FaultKind::Protection, 1),
        ] {
            s.faults[k.index()].count = n;
        }
        let ev = from_snapshot(&s);
        let names = ["faults", "page-faults", "major-faults", "minor-faults"].map(String::from);
        let got: Vec<Option<f64>> = select(&ev, &names).iter().map(|e| e.value).collect();
        assert_eq!(got, [Some(23.0), Some(23.0), Some(9.0), Some(14.0)]);
        // Shown under the name asked for.
        assert_eq!(select(&ev, &names)[1].name, "page-faults");
    }

    #[test]
    fn every_snapshot_event_is_a_sampled_catalogue_event_and_back() {
        let ev = from_snapshot(&Snapshot::new(1, 1000));
        let sampled: Vec<String> = catalogue::all()
            .into_iter()
            .filter(|e| e.sampled)
            .map(|e| e.name)
            .collect();
        let mut names: Vec<String> = ev.iter().map(|e| e.name.clone()).collect();
        names.sort();
        let mut want = sampled.clone();
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn a_run_with_a_final_snapshot_counts_every_catalogue_event() {
        let outcome = RunOutcome {
            stop: crate::Stop::Guest(0),
            exits: crate::ExitCounts::default(),
            timings: crate::Timings::default(),
            tsc_khz: None,
            kvm_stats: vec![("exits".into(), 3)],
            disks: Vec::new(),
        };
        let mut snap = Snapshot::new(1, 1000);
        snap.processes = Some(Default::default());
        let facts = RunFacts {
            last: Some(&snap),
            outcome: &outcome,
            snapshots: 1,
            notifications: 1,
            errors: DecodeErrors::default(),
        };
        let mut names: Vec<String> = catalogue::all().into_iter().map(|e| e.name).collect();
        names.push("kvm.exits".into());
        let got = select(&collect(&facts), &names);
        for (e, n) in got.iter().zip(&names) {
            assert!(e.value.is_some(), "{n}");
            assert_eq!(Some(e.unit), catalogue::find(n).map(|c| c.unit), "{n}");
        }
    }

    /// The default report's event names for a run ending with `snap`,
    /// and the values of the system-call events asked for by name.
    fn default_report(snap: &Snapshot) -> (Vec<String>, Vec<Option<f64>>) {
        let outcome = RunOutcome {
            stop: crate::Stop::Guest(0),
            exits: crate::ExitCounts::default(),
            timings: crate::Timings::default(),
            tsc_khz: None,
            kvm_stats: Vec::new(),
            disks: Vec::new(),
        };
        let facts = RunFacts {
            last: Some(snap),
            outcome: &outcome,
            snapshots: 1,
            notifications: 1,
            errors: DecodeErrors::default(),
        };
        let ev = collect(&facts);
        let shown = skip_uncounted(select(&ev, &catalogue::default_names()));
        let asked = select(&ev, &["syscalls".into(), "syscalls.enosys".into()]);
        (
            shown.into_iter().map(|e| e.name).collect(),
            asked.iter().map(|e| e.value).collect(),
        )
    }

    #[test]
    fn syscalls_come_from_the_process_block_or_are_skipped_by_default() {
        let names = catalogue::default_names();
        // A built-in workload: no process block, no system-call lines, and
        // <not supported> when asked for by name.
        let mut snap = Snapshot::new(1, 1000);
        let (shown, asked) = default_report(&snap);
        assert!(!shown.iter().any(|n| n.starts_with("syscalls")));
        assert_eq!(shown.len() + 2, names.len());
        assert_eq!(asked, [None, None]);
        // A run of programs: both, in catalogue order.
        snap.processes = Some(mobius_shared::procstats::ProcessBlock {
            syscalls: u64::MAX,
            enosys: 3,
            ..Default::default()
        });
        let (shown, asked) = default_report(&snap);
        assert_eq!(shown, names);
        assert_eq!(asked, [Some(u64::MAX as f64), Some(3.0)]);
    }

    #[test]
    fn missing_events_are_not_supported_with_their_unit() {
        let sel = select(&[], &["kvm.nope".into(), "time.total".into()]);
        assert_eq!(sel[0].value, None);
        assert_eq!(sel[1].unit, "msec");
    }
}
