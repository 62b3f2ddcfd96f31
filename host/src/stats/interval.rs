//! `mobius stat -I MS`: at most one line per interval, however many
//! interval snapshots the guest sends.
//!
//! Host time (the guest's clock is its own to fake) is cut into slots of
//! MS, the first one centred on the first interval snapshot, so a guest
//! sending on time is shown in full even when delivery jitters by up to half
//! an interval. A snapshot arriving in a slot that has had its line is only
//! counted ([`IntervalGate::suppressed`]); `mobius stat` sums those up in
//! one line at exit. The guest's final numbers are in the report anyway.
use std::time::{Duration, Instant};

/// Decides which interval snapshots get a line.
#[derive(Debug, Clone)]
pub struct IntervalGate {
    period: Duration,
    anchor: Option<Instant>,
    last_slot: Option<u128>,
    suppressed: u64,
}

impl IntervalGate {
    /// One line per `period` (at least a nanosecond).
    pub fn new(period: Duration) -> Self {
        IntervalGate {
            period: period.max(Duration::from_nanos(1)),
            anchor: None,
            last_slot: None,
            suppressed: 0,
        }
    }

    /// Whether a snapshot arriving at `now` gets its line.
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

    /// Interval snapshots that arrived in a slot already shown.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// The line printed at exit when some snapshots were not shown.
    pub fn summary(&self) -> Option<String> {
        (self.suppressed > 0).then(|| {
            format!(
                "mobius: note: {} interval snapshots from the guest came less than -I {} ms after the last one shown and were not printed",
                self.suppressed,
                self.period.as_millis()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_flood_prints_at_most_one_line_per_interval() {
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
    fn a_guest_on_time_is_shown_in_full_despite_jitter() {
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
    fn time_going_backwards_or_standing_still_prints_nothing_new() {
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
