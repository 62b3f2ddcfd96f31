//! `-I MS`: the guest sends a snapshot every MS ms of its time; each one
//! becomes one time-stamped line per counter, like `perf stat -I`. Counts
//! are per interval (the difference from the last snapshot shown), levels
//! (`frames.free`, `nodes.areas`, ...) are as they stand; the time stamp is
//! the guest's time since its kernel started.
//!
//! However many snapshots the guest sends, at most one line set is printed
//! per interval ([`IntervalGate`]): host time (the guest's clock is its own
//! to fake) is cut into slots of MS, the first one centred on the first
//! snapshot, so a guest sending on time is shown in full even when delivery
//! jitters by up to half an interval. A snapshot arriving in a slot that has
//! had its line set is held back, not lost: the next line set counts from the
//! last one shown, so it carries the held-back counts too. When the run ends,
//! the newest held-back snapshot (normally the final one) closes the last,
//! partial interval, so the lines of a run add up to its totals. How many
//! snapshots were folded into later lines is said once per run, at its end.
use std::time::{Duration, Instant};

use mobius_shared::stats::Snapshot;

use super::catalogue;
use super::events::{self, Event};
use super::format::{table, Prefix, Row, Style};
use super::output::Output;

/// `cur` with its counts made relative to `prev` (levels stay as in `cur`).
pub fn delta(cur: &Snapshot, prev: &Snapshot) -> Snapshot {
    let mut d = cur.clone();
    for (c, p) in d.faults.iter_mut().zip(prev.faults.iter()) {
        c.count = c.count.saturating_sub(p.count);
        c.cycles = c.cycles.saturating_sub(p.cycles);
        for (b, pb) in c.histogram.iter_mut().zip(p.histogram.iter()) {
            *b = b.saturating_sub(*pb);
        }
    }
    d.frames.exhausted = d.frames.exhausted.saturating_sub(prev.frames.exhausted);
    d.nodes.lookups = d.nodes.lookups.saturating_sub(prev.nodes.lookups);
    d
}

/// Guest time of `s` since its kernel started, in ns (`None` without a
/// TSC frequency); saturates at `u64::MAX`.
pub fn guest_ns(s: &Snapshot) -> Option<u64> {
    if s.tsc_khz == 0 {
        return None;
    }
    let cycles = u128::from(s.tsc.saturating_sub(s.tsc_boot));
    Some(u64::try_from(cycles * 1_000_000 / u128::from(s.tsc_khz)).unwrap_or(u64::MAX))
}

/// Decides which snapshots get a line set: at most one per slot of host time.
#[derive(Debug, Clone)]
pub struct IntervalGate {
    period: Duration,
    anchor: Option<Instant>,
    last_slot: Option<u128>,
    suppressed: u64,
}

impl IntervalGate {
    /// One line set per `period` (at least a nanosecond).
    pub fn new(period: Duration) -> Self {
        IntervalGate {
            period: period.max(Duration::from_nanos(1)),
            anchor: None,
            last_slot: None,
            suppressed: 0,
        }
    }

    /// Whether a snapshot arriving at `now` gets its line set.
    pub fn admit(&mut self, now: Instant) -> bool {
        let anchor = *self
            .anchor
            .get_or_insert_with(|| now.checked_sub(self.period / 2).unwrap_or(now));
        let slot = now.saturating_duration_since(anchor).as_nanos() / self.period.as_nanos();
        if self.last_slot.is_some_and(|last| slot <= last) {
            self.suppressed = self.suppressed.saturating_add(1);
            return false;
        }
        self.last_slot = Some(slot);
        true
    }

    /// Snapshots that arrived in a slot already shown.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// The note printed at the end of a run when some snapshots were held back.
    pub fn summary(&self) -> Option<String> {
        (self.suppressed > 0).then(|| {
            format!(
                "mobius: note: {} interval snapshots from the guest came less than -I {} ms after the last lines shown; their counts are in the next lines printed",
                self.suppressed,
                self.period.as_millis()
            )
        })
    }
}

/// Prints the `-I` lines of every run of one `mobius stat`.
#[derive(Debug)]
pub struct IntervalPrinter {
    style: Style,
    /// The events asked for that a snapshot carries.
    names: Vec<String>,
    out: Output,
    period: Duration,
    gate: IntervalGate,
    /// The last snapshot shown and its time stamp: the next line set
    /// counts from it.
    prev: Option<(Snapshot, u64)>,
    /// The newest snapshot held back by the gate, shown at the end of the run
    /// unless a later one is shown first.
    pending: Option<Snapshot>,
    start: Instant,
    /// Line sets printed (the table header comes back every 26th).
    printed: u64,
}

impl IntervalPrinter {
    /// A printer for the `sampled` events among `names`, at most one line set
    /// per `period` of host time.
    pub fn new(style: Style, names: &[String], out: Output, period: Duration) -> IntervalPrinter {
        let names = names
            .iter()
            .filter(|n| catalogue::find(n).is_some_and(|e| e.sampled))
            .cloned()
            .collect();
        IntervalPrinter {
            style,
            names,
            out,
            period,
            gate: IntervalGate::new(period),
            prev: None,
            pending: None,
            start: Instant::now(),
            printed: 0,
        }
    }

    /// Whether none of the events asked for can be printed mid-run.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A new run starts: its first interval counts from zero, its slots
    /// start with its first snapshot.
    pub fn new_run(&mut self) {
        self.prev = None;
        self.pending = None;
        self.gate = IntervalGate::new(self.period);
        self.start = Instant::now();
    }

    /// The line set for snapshot `s`, counting from the last one shown.
    pub fn lines(&mut self, s: &Snapshot) -> String {
        let now = guest_ns(s)
            .unwrap_or_else(|| u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let (d, since) = match &self.prev {
            Some((p, t)) => (delta(s, p), *t),
            None => (s.clone(), 0),
        };
        self.prev = Some((s.clone(), now));
        let evs: Vec<Event> = events::select(&events::from_snapshot(&d), &self.names);
        let mut text = String::new();
        if self.style == Style::Table && self.printed.is_multiple_of(26) {
            text.push_str(&table::interval_header());
            text.push('\n');
        }
        self.printed = self.printed.saturating_add(1);
        for e in &evs {
            let row = Row::of(e, now.saturating_sub(since));
            text.push_str(&self.style.line(&row, Prefix::Interval(now)));
            text.push('\n');
        }
        text
    }

    /// Snapshot `s` arrived at `now`: its line set if the gate lets it
    /// through, else `None` and it is held back for the next one.
    pub fn offer(&mut self, s: &Snapshot, now: Instant) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        if self.gate.admit(now) {
            self.pending = None;
            return Some(self.lines(s));
        }
        match &mut self.pending {
            Some(p) => p.clone_from(s),
            None => self.pending = Some(s.clone()),
        }
        None
    }

    /// Print the line set for snapshot `s`, if it gets one.
    pub fn print(&mut self, s: &Snapshot) {
        if let Some(text) = self.offer(s, Instant::now()) {
            self.out.write(&text);
        }
    }

    /// The run ended: the line set closing its last interval, if snapshots
    /// were held back since the last one shown.
    pub fn closing_lines(&mut self) -> Option<String> {
        let s = self.pending.take()?;
        Some(self.lines(&s))
    }

    /// The run ended: print its closing line set; the note to give about
    /// held-back snapshots, if any were.
    pub fn end_run(&mut self) -> Option<String> {
        if let Some(text) = self.closing_lines() {
            self.out.write(&text);
        }
        self.gate.summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::stats::FaultKind;

    const MS: Duration = Duration::from_millis(1);

    fn snap(tsc: u64, faults: u64, free: u64) -> Snapshot {
        let mut s = Snapshot::new(1, 1_000_000); // 1 GHz: 1 cycle = 1 ns
        s.tsc_boot = 1000;
        s.tsc = 1000 + tsc;
        s.faults[FaultKind::DemandZero.index()].count = faults;
        s.frames.free = free;
        s
    }

    #[test]
    fn counts_per_interval_levels_as_they_stand() {
        let names = ["faults", "frames.free", "exits"].map(String::from);
        let mut p = IntervalPrinter::new(Style::Csv(",".into()), &names, Output::stderr(), MS);
        let first = p.lines(&snap(1_000_000_000, 10, 90));
        assert_eq!(
            first,
            "1.000000000,10,,faults,1000000000,100.00,,\n\
             1.000000000,90,,frames.free,1000000000,100.00,,\n"
        );
        let second = p.lines(&snap(1_500_000_000, 25, 75));
        assert_eq!(
            second,
            "1.500000000,15,,faults,500000000,100.00,,\n\
             1.500000000,75,,frames.free,500000000,100.00,,\n"
        );
    }

    #[test]
    fn the_table_header_comes_first_and_every_26th() {
        let names = ["faults".to_string()];
        let mut p = IntervalPrinter::new(Style::Table, &names, Output::stderr(), MS);
        let headers = (0..27)
            .filter(|i| p.lines(&snap(*i, 0, 0)).starts_with('#'))
            .count();
        assert_eq!(headers, 2);
        let p = IntervalPrinter::new(Style::Json, &["exits".into()], Output::stderr(), MS);
        assert!(p.is_empty());
    }

    /// The `faults` counts of CSV line sets, summed.
    fn faults_in(text: &str) -> u64 {
        text.lines()
            .filter(|l| l.contains(",faults,"))
            .map(|l| l.split(',').nth(1).and_then(|v| v.parse::<u64>().ok()))
            .map(|v| v.expect("a count"))
            .sum()
    }

    #[test]
    fn a_flood_prints_one_line_set_per_interval_and_still_adds_up() {
        let names = ["faults".to_string()];
        let mut p = IntervalPrinter::new(Style::Csv(",".into()), &names, Output::stderr(), MS);
        let start = Instant::now();
        // A million snapshots in one second of host time, one fault each.
        let mut text = String::new();
        let mut sets = 0;
        for i in 1..=1_000_000u64 {
            if let Some(t) = p.offer(&snap(i, i, 0), start + Duration::from_micros(i)) {
                sets += 1;
                text.push_str(&t);
            }
        }
        assert!((999..=1001).contains(&sets), "{sets}");
        let closing = p.closing_lines().expect("held-back counts");
        text.push_str(&closing);
        assert_eq!(faults_in(&text), 1_000_000);
        assert!(p
            .end_run()
            .is_some_and(|n| n.contains("next lines printed")));
        // A new run starts from zero with fresh slots.
        p.new_run();
        assert!(p.offer(&snap(5, 7, 0), start).is_some());
        assert_eq!(p.closing_lines(), None);
    }

    #[test]
    fn the_final_snapshot_in_a_shown_slot_closes_the_run() {
        let names = ["faults".to_string()];
        let mut p =
            IntervalPrinter::new(Style::Csv(",".into()), &names, Output::stderr(), 100 * MS);
        let t = Instant::now();
        let first = p.offer(&snap(100, 10, 0), t).expect("first is shown");
        // The final snapshot comes 5 ms later, in the same slot.
        assert_eq!(p.offer(&snap(105, 12, 0), t + 5 * MS), None);
        let last = p.closing_lines().expect("closing lines");
        assert_eq!(faults_in(&first), 10);
        assert_eq!(faults_in(&last), 2);
        assert_eq!(p.closing_lines(), None, "only once");
    }

    #[test]
    fn gate_a_flood_prints_at_most_one_line_per_interval() {
        let mut gate = IntervalGate::new(MS);
        let start = Instant::now();
        // A million snapshots in one second of host time.
        let printed = (0..1_000_000u64)
            .filter(|&i| gate.admit(start + Duration::from_micros(i)))
            .count();
        assert!(printed <= 1000 + 1, "{printed}");
        assert!(printed >= 999, "{printed}");
        assert_eq!(gate.suppressed(), 1_000_000 - printed as u64);
        assert!(gate.summary().is_some());
    }

    #[test]
    fn gate_a_guest_on_time_is_shown_in_full_despite_jitter() {
        let mut gate = IntervalGate::new(10 * MS);
        let start = Instant::now();
        for i in 0..1000u64 {
            // Up to 2 ms early or late.
            let jitter = Duration::from_micros((i * 7919) % 4000);
            let t = start + 10 * MS * (i as u32 + 1) + jitter;
            assert!(gate.admit(t - 2 * MS), "snapshot {i}");
        }
        assert_eq!(gate.summary(), None);
    }

    #[test]
    fn gate_time_going_backwards_or_standing_still_prints_nothing_new() {
        let mut gate = IntervalGate::new(MS);
        let t = Instant::now() + Duration::from_secs(1);
        assert!(gate.admit(t));
        assert!(!gate.admit(t));
        assert!(!gate.admit(t - Duration::from_secs(1)));
        assert!(gate.admit(t + MS));
        let mut zero = IntervalGate::new(Duration::ZERO);
        assert!(zero.admit(t));
    }
}
