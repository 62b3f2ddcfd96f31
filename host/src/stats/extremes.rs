//! Statistics at the limits: every counter the guest sends at `u64::MAX`
//! (or 0 where it divides) must decode, combine and print without an
//! arithmetic overflow, which would panic a debug build and wrap a release
//! one. These run in debug, where overflow checks are on.
use std::time::{Duration, Instant};

use mobius_shared::procstats::{EnosysCount, ProcessBlock, ProcessRecord, MAX_ENOSYS, MAX_RECORDS};
use mobius_shared::stats::{FaultKind, Snapshot, SnapshotReason, HISTOGRAM_BUCKETS, MAX_FRAME_LEN};

use super::catalogue;
use super::command::summary_line;
use super::events::{self, RunFacts};
use super::format::{self, histogram, Prefix, Style};
use super::interval::IntervalPrinter;
use super::output::Output;
use super::{DecodeErrors, StatsCollector};
use crate::{ExitCounts, RunOutcome, Stop, Timings};

fn extreme(tsc_khz: u64) -> Snapshot {
    let mut s = Snapshot::new(u64::MAX, tsc_khz);
    s.seq = u32::MAX;
    s.tsc = u64::MAX;
    s.tsc_ready = u64::MAX;
    for c in s.faults.iter_mut() {
        c.count = u64::MAX;
        c.cycles = u64::MAX;
        c.histogram = [u64::MAX; HISTOGRAM_BUCKETS];
    }
    c_frames(&mut s);
    s.processes = Some(processes());
    s
}

/// A full process block, every count at `u64::MAX`: 31 processes and
/// `(others)`, 16 unimplemented numbers.
fn processes() -> ProcessBlock {
    let max = u64::MAX;
    let mut b = ProcessBlock {
        syscalls: max,
        enosys: max,
        n_enosys: MAX_ENOSYS as u32,
        enosys_numbers: [EnosysCount {
            nr: u32::MAX,
            count: max,
        }; MAX_ENOSYS],
        ..ProcessBlock::default()
    };
    for pid in (1..=40).rev() {
        let mut r = ProcessRecord {
            pid: u32::MAX - pid,
            parent: u32::MAX,
            status: u32::MAX - 1,
            syscalls: max,
            enosys: max,
            faults: max,
            cpu_cycles: max,
            ..ProcessRecord::default()
        };
        r.set_name("/bin/a-very-long-program-name");
        b.push(r);
    }
    assert_eq!(b.records().len(), MAX_RECORDS);
    b
}

fn c_frames(s: &mut Snapshot) {
    let f = &mut s.frames;
    (f.total, f.free, f.used, f.zeroed, f.exhausted) = (u64::MAX, u64::MAX, u64::MAX, 0, u64::MAX);
    let n = &mut s.nodes;
    (n.nodes, n.areas, n.lookups, n.max_lookup_depth) = (u64::MAX, u64::MAX, u64::MAX, u64::MAX);
}

fn outcome() -> RunOutcome {
    let max = u64::MAX;
    RunOutcome {
        stop: Stop::Guest(0),
        exits: ExitCounts {
            io_in: max,
            io_out: max,
            hlt: max,
            other: max,
            ..ExitCounts::default()
        },
        timings: Timings::default(),
        tsc_khz: None,
        kvm_stats: vec![("exits".into(), max)],
        disks: Vec::new(),
    }
}

#[test]
fn extreme_snapshots_go_through_decoder_collector_and_every_format() {
    for khz in [0, 1, u64::MAX] {
        let snap = extreme(khz);
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let frame = snap.encode(&mut buf).expect("fits").to_vec();
        let mut c = StatsCollector::new();
        c.push_frame(&frame);
        let mut interval = snap.clone();
        interval.reason = SnapshotReason::Interval;
        interval.tsc_boot = u64::MAX;
        interval.tsc = 0;
        let mut buf2 = vec![0u8; MAX_FRAME_LEN];
        c.push_frame(interval.encode(&mut buf2).expect("fits"));
        let last = c.exit_snapshot().expect("decoded").clone();
        assert_eq!(last, snap);

        let line = summary_line(Some(&last)).expect("a line");
        assert!(
            line.contains(&format!("guest page faults: {}", u64::MAX)),
            "{line}"
        );
        let hist = histogram::histograms(&last);
        let bars = hist.lines().filter(|l| l.contains("[2^")).count();
        assert_eq!(bars, (FaultKind::COUNT) * HISTOGRAM_BUCKETS);
        assert!(
            hist.lines()
                .all(|l| l.matches('#').count() <= histogram::BAR_WIDTH),
            "{hist}"
        );

        let styles = [Style::Table, Style::Csv(",".into()), Style::Json];
        let names: Vec<String> = catalogue::all().into_iter().map(|e| e.name).collect();
        for style in &styles {
            let mut p = IntervalPrinter::new(
                style.clone(),
                &names,
                Output::stderr(),
                Duration::from_millis(1),
            );
            let t = Instant::now();
            // From nothing to everything, and back (counts going down).
            p.offer(&interval, t);
            p.offer(&last, t + Duration::from_secs(1));
            p.offer(&Snapshot::new(u64::MAX, khz), t + Duration::from_secs(2));
            p.offer(&last, t + Duration::from_secs(2));
            p.closing_lines().expect("held back");
        }

        let errors = DecodeErrors {
            malformed: u64::MAX,
            transport: u64::MAX,
            ..DecodeErrors::default()
        };
        let outcome = outcome();
        let facts = RunFacts {
            last: Some(&last),
            outcome: &outcome,
            snapshots: u64::MAX,
            notifications: u64::MAX,
            errors,
        };
        let evs = events::select(&events::collect(&facts), &names);
        let value = |n: &str| evs.iter().find(|e| e.name == n).and_then(|e| e.value);
        assert_eq!(value("faults"), Some(u64::MAX as f64));
        assert_eq!(value("major-faults"), Some(u64::MAX as f64), "saturates");
        assert_eq!(
            value("exits"),
            Some(u64::MAX as f64),
            "exit total saturates"
        );
        assert_eq!(value("stats.transport"), Some(u64::MAX as f64));
        assert_eq!(value("syscalls.enosys"), Some(u64::MAX as f64));
        let agg = format::aggregate(&[evs.clone(), evs], &[u64::MAX, u64::MAX]);
        let rows: Vec<_> = agg.iter().map(|a| a.row(2)).collect();
        let notes = format::notes(last.processes.as_ref());
        assert_eq!(notes[0].1.len(), MAX_ENOSYS, "{notes:?}");
        for style in &styles {
            for prefix in [Prefix::None, Prefix::Summary, Prefix::Interval(u64::MAX)] {
                style.report("extreme", &rows, 2, 0.0, prefix, &notes);
            }
        }
        let table = Style::Table.report("extreme", &rows, 2, 0.0, Prefix::None, &notes);
        assert_eq!(
            table
                .matches(&format!("{} x{}", u32::MAX, u64::MAX))
                .count(),
            MAX_ENOSYS
        );
        let json = Style::Json.report("extreme", &rows, 2, 0.0, Prefix::None, &notes);
        let block = last.processes.as_ref().expect("a block");
        let json = json + &Style::Json.processes("extreme", block, khz, 2);
        for line in json.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON");
        }
        let per_process = Style::Table.processes("extreme", block, khz, 2);
        assert_eq!(
            per_process.lines().count(),
            3 + MAX_RECORDS + 1,
            "{per_process}"
        );
        let csv = Style::Csv(",".into()).processes("extreme", block, khz, 2);
        assert_eq!(csv.lines().count(), MAX_RECORDS + MAX_ENOSYS);
    }
}

#[test]
fn a_single_huge_bucket_among_small_ones_draws_sane_bars() {
    let mut s = Snapshot::new(0, 1000);
    let c = &mut s.faults[FaultKind::DemandZero.index()];
    c.count = 3;
    c.histogram[0] = 1;
    c.histogram[5] = u64::MAX;
    c.histogram[HISTOGRAM_BUCKETS - 1] = u64::MAX / 2;
    let hist = histogram::histograms(&s);
    let widths: Vec<usize> = hist
        .lines()
        .filter(|l| l.contains("[2^"))
        .map(|l| l.matches('#').count())
        .collect();
    assert_eq!(widths, [1, 40, 20]);
}
