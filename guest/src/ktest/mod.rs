//! The in-guest test runner: `test=<suite>` on the command line runs a suite,
//! prints one line per test and closes with `ktest: N passed, M failed`,
//! which the host's integration tests read. The status is Success only when
//! nothing failed.
//!
//! Suites:
//! * `vmm` — the portable VMM self-test (`mm::selftest`, spec §9 rows run
//!   through the real page tables) and then real CPU accesses through the
//!   trap path (`real`).
//! * `real` — only the real-CPU checks.
use crate::println;
use mobius_shared::exit::GuestStatus;

mod real;

/// Counts of one run.
#[derive(Default)]
pub struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    /// Record and print one test result.
    pub fn record(&mut self, name: &str, result: Result<(), &str>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("ktest: {name} ... ok");
            }
            Err(why) => {
                self.failed += 1;
                println!("ktest: {name} ... FAILED: {why}");
            }
        }
    }
}

/// Run the suite named `suite`.
pub fn run_suite(suite: &str) -> GuestStatus {
    let mut tally = Tally::default();
    match suite {
        "vmm" => {
            selftest(&mut tally);
            real::run(&mut tally);
        }
        "real" => real::run(&mut tally),
        other => {
            println!("mobius-guest: unknown test suite '{other}' (suites: vmm, real)");
            return GuestStatus::BadCommandLine;
        }
    }
    println!("ktest: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        GuestStatus::Success
    } else {
        GuestStatus::Failure
    }
}

fn selftest(tally: &mut Tally) {
    let vmm = crate::mm::kernel::vmm();
    crate::mm::selftest::run(vmm, &mut |name, result| tally.record(name, result));
}
