//! `mobius stat` under KVM: for every workload, the fault counts the host
//! decodes from the guest's statistics equal the counts the workload must
//! produce (`mobius_shared::workloads`), and the table, CSV and JSON forms
//! carry the same numbers. (How the CSV and JSON lines read against perf's
//! documented formats: `stat_format.rs`.)

mod common;

use std::collections::HashMap;

use common::perf_stat::{parse_json_output, Shape};
use common::{kvm_or_skip, run, stat_to_file, stderr, stdout};
use mobius_shared::exit::host;
use mobius_shared::stats::FaultKind;
use mobius_shared::workloads;

/// Small parameters per workload, so the suite stays quick on kvm_pvm.
const CASES: &[(&str, &str, &[&str])] = &[
    ("hello", "", &[]),
    ("seq-touch", "pages=300", &[]),
    ("random-touch", "pages=200 span=700 seed=9", &[]),
    ("read-then-write", "pages=150", &[]),
    ("callback", "pages=100", &[]),
    ("map", "pages=16", &[]),
    ("reserve-commit", "reserve=512 commit=100", &[]),
    ("share-map", "pages=64", &[]),
    ("churn", "rounds=5 pages=20", &[]),
    ("file", "", &[]),
    ("protection", "count=7", &[]),
    ("exhaustion", "", &["--memory", "12M"]),
];

/// What each case must count, stated here from its parameters (not read
/// from the guest's own table, `shared::workloads::expected`, which the
/// test below checks against this): kinds not named are exactly zero,
/// `None` is machine-dependent. The zero-pool split is never fixed.
fn expected_here(name: &str) -> Vec<(FaultKind, Option<u64>)> {
    use FaultKind::*;
    match name {
        "seq-touch" => vec![(DemandZero, Some(300))],
        "random-touch" => vec![(DemandZero, Some(200))],
        "read-then-write" => vec![(DemandZero, Some(150)), (Upgrade, Some(150))],
        "callback" => vec![(Callback, Some(100))],
        "map" => vec![(Map, Some(16))],
        "reserve-commit" => vec![(DemandZero, Some(100))],
        // Written in one space, read through a second mapping.
        "share-map" => vec![(DemandZero, Some(64)), (Shared, Some(64))],
        "churn" => vec![(DemandZero, Some(5 * 20))],
        // 4096 bytes and a 904-byte tail.
        "file" => vec![(FileReadIn, Some(2))],
        "protection" => vec![(DemandZero, Some(1)), (Protection, Some(7))],
        "exhaustion" => vec![(DemandZero, None), (Unresolved, Some(1))],
        _ => vec![],
    }
}

/// The counter values of one `stat -j` run, by event name (`None`: not
/// supported).
struct Counts(HashMap<String, Option<f64>>);

impl Counts {
    /// The value of `event`, -1 when it is missing or not supported.
    fn get(&self, event: &str) -> f64 {
        self.0.get(event).copied().flatten().unwrap_or(-1.0)
    }
}

fn stat_json(name: &str, params: &str, extra: &[&str]) -> (Counts, std::process::Output) {
    let mut args = vec!["-j"];
    args.extend_from_slice(extra);
    args.push("--");
    args.push(name);
    args.extend(params.split_whitespace());
    let (o, text) = stat_to_file(&args);
    let shape = Shape {
        repeat: extra.windows(2).any(|w| w[0] == "-r" && w[1] != "1"),
        ..Shape::default()
    };
    let counters = parse_json_output(&text, shape)
        .unwrap_or_else(|e| panic!("{name}: not perf's JSON ({e}):\n{text}{}", stderr(&o)));
    let counts = counters
        .into_iter()
        .map(|c| (c.event, c.value.number()))
        .collect();
    (Counts(counts), o)
}

#[test]
fn every_workload_produces_exactly_its_expected_counts() {
    if !kvm_or_skip("every_workload_produces_exactly_its_expected_counts") {
        return;
    }
    let mut events: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
    events.push("stats.malformed");
    let events = events.join(",");
    for (name, params, extra) in CASES {
        let mut extra = extra.to_vec();
        extra.extend(["-e", &events]);
        let (json, o) = stat_json(name, params, &extra);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let mine = expected_here(name);
        let table = workloads::find(name)
            .expect("listed")
            .expected(params)
            .expect("valid parameters");
        for kind in FaultKind::ALL {
            let pool = matches!(kind, FaultKind::ZeroPoolHit | FaultKind::ZeroPoolMiss);
            let want = match mine.iter().find(|(k, _)| *k == kind) {
                Some((_, w)) => *w,
                None if pool => None,
                None => Some(0),
            };
            // The guest's table says the same.
            assert_eq!(
                table[kind.index()],
                want,
                "{name}: table for {}",
                kind.name()
            );
            if let Some(want) = want {
                let got = json.get(kind.name());
                assert_eq!(got, want as f64, "{name} {params}: {}", kind.name());
            }
        }
        // Issue 11: the zero pool splits every demand-zero fault, and only
        // those, in every workload.
        let v = |k: FaultKind| json.get(k.name());
        assert_eq!(
            v(FaultKind::ZeroPoolHit) + v(FaultKind::ZeroPoolMiss),
            v(FaultKind::DemandZero),
            "{name} {params}: zero-pool hits + misses"
        );
        assert_eq!(json.get("stats.malformed"), 0.0, "{name}");
    }
}

#[test]
fn zero_pool_split_adds_up_to_demand_zero() {
    if !kvm_or_skip("zero_pool_split_adds_up_to_demand_zero") {
        return;
    }
    let (json, _) = stat_json("seq-touch", "pages=100", &[]);
    let v = |k: FaultKind| json.get(k.name());
    assert_eq!(
        v(FaultKind::ZeroPoolHit) + v(FaultKind::ZeroPoolMiss),
        v(FaultKind::DemandZero)
    );
}

#[test]
fn csv_and_table_carry_the_json_numbers() {
    if !kvm_or_skip("csv_and_table_carry_the_json_numbers") {
        return;
    }
    let o = run(&[
        "stat",
        "-x",
        ";",
        "-e",
        "faults,faults.upgrade",
        "--",
        "read-then-write",
        "pages=40",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows: Vec<Vec<String>> = stderr(&o)
        .lines()
        .filter(|l| l.contains(";faults"))
        .map(|l| l.split(';').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{}", stderr(&o));
    for r in &rows {
        assert_eq!(r.len(), 7, "perf's CSV has 7 fields: {r:?}");
    }
    assert_eq!((rows[0][2].as_str(), rows[0][0].as_str()), ("faults", "80"));
    assert_eq!(
        (rows[1][2].as_str(), rows[1][0].as_str()),
        ("faults.upgrade", "40")
    );
    let o = run(&[
        "stat",
        "-e",
        "faults.upgrade",
        "--",
        "read-then-write",
        "pages=40",
    ]);
    assert!(
        stderr(&o)
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["40", "faults.upgrade"])),
        "{}",
        stderr(&o)
    );
}

#[test]
fn repeat_reports_a_mean_and_interval_prints_lines() {
    if !kvm_or_skip("repeat_reports_a_mean_and_interval_prints_lines") {
        return;
    }
    let (json, o) = stat_json("seq-touch", "pages=30", &["-r", "2", "-e", "faults"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json.get("faults"), 30.0);
    let o = run(&[
        "stat",
        "-I",
        "1",
        "-e",
        "faults",
        "--",
        "seq-touch",
        "pages=200",
    ]);
    assert_eq!(o.status.code(), Some(0));
    // perf's -I lines: a time stamp, then the count and the event.
    let err = stderr(&o);
    let lines: Vec<Vec<&str>> = err
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 3 && w[2] == "faults")
        .collect();
    assert!(lines.len() >= 2, "no interval lines:\n{}", stderr(&o));
    let total: f64 = lines
        .iter()
        .map(|w| w[1].parse::<f64>().unwrap_or(-1e9))
        .sum();
    assert_eq!(total, 200.0, "the intervals add up:\n{}", stderr(&o));
    assert!(
        lines
            .iter()
            .all(|w| w[0].split_once('.').is_some_and(|(_, ns)| ns.len() == 9)),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_frames_are_counted_and_the_run_goes_on() {
    if !kvm_or_skip("malformed_frames_are_counted_and_the_run_goes_on") {
        return;
    }
    let ev = "faults,stats.malformed,stats.oversized,stats.unknown-version,stats.bad-magic,stats.transport";
    let (json, o) = stat_json("bad-frames", "", &["-e", ev]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = |name: &str| json.get(&format!("stats.{name}"));
    // Three malformed lines, a header without its counters, plus whatever
    // the bogus descriptors' bytes made.
    assert!(e("malformed") >= 4.0);
    // The over-long serial line and the descriptor of absurd length.
    assert_eq!(e("oversized"), 2.0);
    assert!(
        stderr(&o).contains("descriptor outside guest memory"),
        "{}",
        stderr(&o)
    );
    // The descriptor outside guest memory, counted by the transport.
    assert!(e("transport") >= 1.0);
    assert_eq!(e("unknown-version"), 1.0);
    // The bad-magic frame, and the self-looping descriptor's bytes (a piece
    // of the descriptor table) whose first word is no magic either.
    assert!(e("bad-magic") >= 1.0);
    assert_eq!(json.get("faults"), 0.0, "the good final snapshot decoded");
    assert!(stderr(&o).contains("unusable"), "{}", stderr(&o));
}

#[test]
fn run_prints_a_fault_summary() {
    if !kvm_or_skip("run_prints_a_fault_summary") {
        return;
    }
    let o = run(&["run", "--cmdline", "workload=seq-touch pages=25"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("guest page faults: 25 (demand-zero 25)"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stdout(&o).contains("mobius-stats:"),
        "stats lines must not reach the console"
    );
}

#[test]
fn bad_workloads_and_events_are_usage_errors() {
    for args in [
        &["stat", "--", "no-such-workload"][..],
        &["stat", "--", "seq-touch", "pages=0"],
        &["stat", "--", "seq-touch", "bogus=1"],
        &["stat", "-e", "no.such.event", "--", "hello"],
        &["stat"],
    ] {
        let o = run(args);
        assert_eq!(
            o.status.code(),
            Some(host::USAGE),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).starts_with("mobius: error: "),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_eq!(
            stderr(&o).lines().count(),
            1,
            "{args:?}: one line: {}",
            stderr(&o)
        );
    }
}

#[test]
fn list_names_every_workload() {
    let o = run(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    for w in workloads::CATALOGUE {
        assert!(stdout(&o).contains(w.name), "{}", w.name);
    }
}

#[test]
fn virtio_and_serial_transports_give_the_same_counts() {
    if !kvm_or_skip("virtio_and_serial_transports_give_the_same_counts") {
        return;
    }
    let ev = "faults,faults.upgrade,stats.snapshots,stats.notifications,exits.mmio_write";
    let (v, o) = stat_json("read-then-write", "pages=30", &["-e", ev]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (s, o) = stat_json("read-then-write", "pages=30", &["-e", ev, "--serial-stats"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let get = |j: &Counts, e: &str| j.get(e);
    assert_eq!(get(&v, "faults"), 60.0);
    assert_eq!(get(&v, "faults"), get(&s, "faults"));
    assert_eq!(get(&v, "faults.upgrade"), get(&s, "faults.upgrade"));
    // Virtio: one notification per snapshot; serial: none at all.
    assert_eq!(get(&v, "stats.snapshots"), 1.0);
    assert_eq!(get(&v, "stats.notifications"), get(&v, "stats.snapshots"));
    assert!(get(&v, "exits.mmio_write") > 0.0);
    assert_eq!(get(&s, "stats.notifications"), 0.0);
    assert_eq!(get(&s, "exits.mmio_write"), 0.0);
}

#[test]
fn the_vmm_starts_on_first_use_and_counts_the_same_frames() {
    if !kvm_or_skip("the_vmm_starts_on_first_use_and_counts_the_same_frames") {
        return;
    }
    let ev = "faults,frames.total,frames.free,frames.used,nodes.count,stats.snapshots";
    let get = |j: &Counts, e: &str| j.get(e);
    // hello never asks for virtual memory: its VMM never starts, and the
    // final snapshot says so (every usable frame free, no node).
    let (idle, o) = stat_json("hello", "", &["-e", ev]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(get(&idle, "stats.snapshots"), 1.0);
    assert_eq!(get(&idle, "frames.used"), 0.0);
    assert_eq!(get(&idle, "nodes.count"), 0.0);
    assert_eq!(get(&idle, "frames.free"), get(&idle, "frames.total"));
    assert!(get(&idle, "frames.total") > 1000.0);
    // A workload that uses it starts it; the total is the allocator's own.
    let (busy, o) = stat_json("seq-touch", "pages=3", &["-e", ev]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(get(&busy, "faults"), 3.0);
    assert!(get(&busy, "nodes.count") >= 2.0, "kernel and user halves");
    assert_eq!(get(&busy, "frames.total"), get(&idle, "frames.total"));
}

#[test]
fn pvh_boot_maps_the_virtio_window_and_sends_over_it() {
    // The PVH entry maps only RAM; the driver maps its device window.
    if !kvm_or_skip("pvh_boot_maps_the_virtio_window_and_sends_over_it") {
        return;
    }
    let ev = "faults,stats.snapshots,stats.notifications";
    for memory in ["16M", "3G"] {
        let (v, o) = stat_json(
            "seq-touch",
            "pages=10",
            &["-e", ev, "--boot", "pvh", "--memory", memory],
        );
        assert_eq!(o.status.code(), Some(0), "{memory}: {}", stderr(&o));
        let get = |e: &str| v.get(e);
        assert_eq!(get("faults"), 10.0, "{memory}");
        assert_eq!(get("stats.notifications"), 1.0, "{memory}: over virtio");
    }
}

#[test]
fn kvm_binary_statistics_are_reported_or_said_unsupported() {
    if !kvm_or_skip("kvm_binary_statistics_are_reported_or_said_unsupported") {
        return;
    }
    let (json, o) = stat_json("seq-touch", "pages=20", &["-e", "kvm.exits,faults"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    match json.0.get("kvm.exits").copied().flatten() {
        // At least the port and MMIO exits of the run itself (guest page
        // faults are exits under shadow paging, not with EPT/NPT).
        Some(exits) => assert!(exits > 0.0, "{exits}"),
        None => assert!(stderr(&o).contains("not supported"), "{}", stderr(&o)),
    }
    let o = run(&["stat", "-e", "kvm.", "--", "hello"]);
    assert_eq!(o.status.code(), Some(host::USAGE));
}
