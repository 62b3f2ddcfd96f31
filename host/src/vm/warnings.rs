//! Warnings about what the guest does (unknown ports and MMIO addresses,
//! refused console writes and discards, unexpected exits), within a fixed
//! budget: the first [`WARNINGS_PER_KIND`] of each kind are printed, the
//! rest only counted, and one line at the end of the run sums them up. A
//! guest touching a million distinct addresses costs a few counters and a
//! few lines, not a set of addresses or a line each.

/// Lines printed per kind of guest behaviour in one run; beyond them the
/// host counts and sums up at exit ([`GuestWarnings::summary`]).
pub const WARNINGS_PER_KIND: u64 = 1;

/// What the guest did that deserves a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestWarning {
    UnknownPortWrite,
    UnknownPortRead,
    UnknownMmioRead,
    UnknownMmioWrite,
    ConsoleOutsideRam,
    ConsoleTooLong,
    DiscardOutsideRam,
    DiscardFailed,
    UnexpectedExit,
    BadXstate,
}

impl GuestWarning {
    const COUNT: usize = 10;
    const ALL: [GuestWarning; Self::COUNT] = [
        GuestWarning::UnknownPortWrite,
        GuestWarning::UnknownPortRead,
        GuestWarning::UnknownMmioRead,
        GuestWarning::UnknownMmioWrite,
        GuestWarning::ConsoleOutsideRam,
        GuestWarning::ConsoleTooLong,
        GuestWarning::DiscardOutsideRam,
        GuestWarning::DiscardFailed,
        GuestWarning::UnexpectedExit,
        GuestWarning::BadXstate,
    ];

    /// Name in the summary line.
    fn name(self) -> &'static str {
        match self {
            GuestWarning::UnknownPortWrite => "unknown port writes",
            GuestWarning::UnknownPortRead => "unknown port reads",
            GuestWarning::UnknownMmioRead => "unknown MMIO reads",
            GuestWarning::UnknownMmioWrite => "unknown MMIO writes",
            GuestWarning::ConsoleOutsideRam => "console writes outside RAM",
            GuestWarning::ConsoleTooLong => "console writes too long",
            GuestWarning::DiscardOutsideRam => "discards outside RAM",
            GuestWarning::DiscardFailed => "failed discards",
            GuestWarning::UnexpectedExit => "unexpected VM exits",
            GuestWarning::BadXstate => "refused extended-state requests",
        }
    }
}

/// Per-kind counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestWarnings {
    seen: [u64; GuestWarning::COUNT],
}

impl GuestWarnings {
    /// Count one; whether it is within the budget (to be printed).
    pub fn note(&mut self, kind: GuestWarning) -> bool {
        let n = &mut self.seen[kind as usize];
        *n = n.saturating_add(1);
        *n <= WARNINGS_PER_KIND
    }

    /// Count one and print `what()` if within the budget (`what` is only
    /// called then).
    pub fn warn(&mut self, kind: GuestWarning, what: impl FnOnce() -> String) {
        if self.note(kind) {
            eprintln!(
                "mobius: warning: {} (further ones counted, summed up at exit)",
                what()
            );
        }
    }

    /// How many of `kind` there were.
    pub fn count(&self, kind: GuestWarning) -> u64 {
        self.seen[kind as usize]
    }

    /// The line for the end of the run, if some warnings were not printed.
    pub fn summary(&self) -> Option<String> {
        let over: Vec<(GuestWarning, u64)> = GuestWarning::ALL
            .iter()
            .map(|&k| (k, self.count(k).saturating_sub(WARNINGS_PER_KIND)))
            .filter(|&(_, n)| n > 0)
            .collect();
        if over.is_empty() {
            return None;
        }
        let total = over.iter().fold(0u64, |sum, &(_, n)| sum.saturating_add(n));
        let parts: Vec<String> = over
            .iter()
            .map(|&(k, n)| format!("{} {n}", k.name()))
            .collect();
        Some(format!(
            "mobius: warning: {total} more guest accesses like those above were not reported ({})",
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_warns_once_and_the_rest_are_summed_up() {
        let mut w = GuestWarnings::default();
        assert_eq!(w.summary(), None);
        assert!(w.note(GuestWarning::UnknownMmioRead));
        assert!(w.note(GuestWarning::UnknownPortWrite));
        assert_eq!(w.summary(), None);
        assert!(!w.note(GuestWarning::UnknownMmioRead));
        assert!(!w.note(GuestWarning::UnknownMmioRead));
        assert_eq!(
            w.summary().as_deref(),
            Some("mobius: warning: 2 more guest accesses like those above were not reported (unknown MMIO reads 2)")
        );
    }

    /// A guest touching 100,000 distinct unknown addresses and ports: the
    /// host holds nine counters and prints one line per kind.
    #[test]
    fn a_flood_of_distinct_addresses_costs_counters_not_memory() {
        let mut w = GuestWarnings::default();
        let mut printed = 0;
        for addr in 0..100_000u64 {
            for kind in GuestWarning::ALL {
                w.warn(kind, || {
                    printed += 1;
                    format!("test warning {kind:?} at {addr:#x}")
                });
            }
        }
        assert_eq!(printed, GuestWarning::COUNT);
        assert_eq!(std::mem::size_of_val(&w), GuestWarning::COUNT * 8);
        for kind in GuestWarning::ALL {
            assert_eq!(w.count(kind), 100_000);
        }
        let line = w.summary().expect("summary");
        let unreported = (100_000 - 1) * GuestWarning::COUNT;
        assert!(line.contains(&format!("{unreported} more")), "{line}");
    }

    #[test]
    fn counts_saturate() {
        let mut w = GuestWarnings {
            seen: [u64::MAX; GuestWarning::COUNT],
        };
        assert!(!w.note(GuestWarning::UnexpectedExit));
        assert_eq!(w.count(GuestWarning::UnexpectedExit), u64::MAX);
        assert!(w
            .summary()
            .is_some_and(|s| s.contains(&u64::MAX.to_string())));
    }
}
