//! `-I MS`: the guest sends a snapshot every MS ms of its time; each one
//! becomes one time-stamped line per counter, like `perf stat -I`. Counts
//! are per interval (the difference from the previous snapshot), levels
//! (`frames.free`, `nodes.areas`, ...) are as they stand; the time stamp is
//! the guest's time since its kernel started. The final snapshot closes the
//! last, partial interval, so the lines of a run add up to its totals.
use std::time::Instant;

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
/// TSC frequency).
pub fn guest_ns(s: &Snapshot) -> Option<u64> {
    if s.tsc_khz == 0 {
        return None;
    }
    let cycles = u128::from(s.tsc.saturating_sub(s.tsc_boot));
    u64::try_from(cycles * 1_000_000 / u128::from(s.tsc_khz)).ok()
}

/// Prints the `-I` lines of every run of one `mobius stat`.
#[derive(Debug)]
pub struct IntervalPrinter {
    style: Style,
    /// The events asked for that a snapshot carries.
    names: Vec<String>,
    out: Output,
    prev: Option<(Snapshot, u64)>,
    start: Instant,
    /// Intervals printed (the table header comes back every 26th).
    printed: u64,
}

impl IntervalPrinter {
    /// A printer for the `sampled` events among `names`.
    pub fn new(style: Style, names: &[String], out: Output) -> IntervalPrinter {
        let names = names
            .iter()
            .filter(|n| catalogue::find(n).is_some_and(|e| e.sampled))
            .cloned()
            .collect();
        IntervalPrinter {
            style,
            names,
            out,
            prev: None,
            start: Instant::now(),
            printed: 0,
        }
    }

    /// Whether none of the events asked for can be printed mid-run.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A new run starts: its first interval counts from zero.
    pub fn new_run(&mut self) {
        self.prev = None;
        self.start = Instant::now();
    }

    /// The lines for snapshot `s`.
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
        self.printed += 1;
        for e in &evs {
            let row = Row::of(e, now.saturating_sub(since));
            text.push_str(&self.style.line(&row, Prefix::Interval(now)));
            text.push('\n');
        }
        text
    }

    /// Print the lines for snapshot `s`.
    pub fn print(&mut self, s: &Snapshot) {
        if !self.is_empty() {
            let text = self.lines(s);
            self.out.write(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::stats::FaultKind;

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
        let mut p = IntervalPrinter::new(Style::Csv(",".into()), &names, Output::stderr());
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
        let mut p = IntervalPrinter::new(Style::Table, &names, Output::stderr());
        let headers = (0..27)
            .filter(|i| p.lines(&snap(*i, 0, 0)).starts_with('#'))
            .count();
        assert_eq!(headers, 2);
        assert!(IntervalPrinter::new(Style::Json, &["exits".into()], Output::stderr()).is_empty());
    }
}
