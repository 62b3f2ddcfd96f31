//! Statistics at the limits: every counter the guest sends at `u64::MAX`
//! (or 0 where it divides) must decode, combine and print without an
//! arithmetic overflow, which would panic a debug build and wrap a release
//! one. These run in debug, where overflow checks are on.
use mobius_shared::stats::{FaultKind, Snapshot, SnapshotReason, HISTOGRAM_BUCKETS, MAX_FRAME_LEN};

use super::command::summary_line;
use super::{events, format, DecodeErrors, StatsCollector};
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
    s
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
        let hist = format::histograms(&last);
        let bars = hist.lines().filter(|l| l.contains("[2^")).count();
        assert_eq!(bars, (FaultKind::COUNT) * HISTOGRAM_BUCKETS);
        assert!(hist.lines().all(|l| l.matches('#').count() <= 40), "{hist}");
        format::interval_line(&interval, None);
        format::interval_line(&interval, Some(","));

        let evs = events::collect(Some(&last), &outcome());
        let faults = evs.iter().find(|e| e.name == "faults").expect("faults");
        assert_eq!(faults.value, u64::MAX as f64);
        assert_eq!(
            evs.iter().find(|e| e.name == "exits").map(|e| e.value),
            Some(u64::MAX as f64),
            "exit total saturates"
        );
        let agg = format::aggregate(&[evs.clone(), evs]);
        format::table("extreme", &agg, 2, 0.0);
        format::csv(&agg, ",", u64::MAX);
        let errors = DecodeErrors {
            malformed: u64::MAX,
            transport: u64::MAX,
            ..DecodeErrors::default()
        };
        let json = format::json("extreme", 0, &agg, 2, Some(&last), errors);
        assert_eq!(json["decode_errors"]["malformed"], u64::MAX);
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
    let hist = format::histograms(&s);
    let widths: Vec<usize> = hist
        .lines()
        .filter(|l| l.contains("[2^"))
        .map(|l| l.matches('#').count())
        .collect();
    assert_eq!(widths, [1, 40, 20]);
}
