//! Boot a built-in workload with the `mobius` library and check the page
//! faults the guest's VMM counted, the way a Rust test would:
//!
//! ```sh
//! cargo run -p mobius --example count_faults            # seq-touch, 100 pages
//! cargo run -p mobius --example count_faults -- 2500    # 2500 pages
//! ```
//!
//! `seq-touch pages=N` writes each page of a fresh area once: exactly N
//! demand-zero faults and no other kind (`mobius_shared::workloads` has the
//! exact counts of every workload). Needs `/dev/kvm`.

use std::process::ExitCode;

use mobius::{run_vm, FaultKind, RunConfig, StatsHooks, Stop};

fn main() -> ExitCode {
    let pages: u64 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("count_faults: PAGES must be a number: {e}");
            return ExitCode::from(2);
        }
    };
    let config = RunConfig {
        cmdline: format!("workload=seq-touch pages={pages}"),
        ..RunConfig::default()
    };
    let mut hooks = StatsHooks::new();
    let outcome = match run_vm(&config, &mut hooks) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("count_faults: {e}");
            return ExitCode::from(e.exit_status() as u8);
        }
    };
    assert_eq!(outcome.stop, Stop::Guest(0), "the workload failed");
    let snap = hooks
        .final_snapshot()
        .expect("the guest sent a final statistics snapshot");

    let count = |kind: FaultKind| snap.faults[kind.index()].count;
    assert_eq!(count(FaultKind::DemandZero), pages);
    assert_eq!(snap.total_faults(), pages, "only demand-zero faults");
    // Each demand-zero fault took its frame from the zero pool or zeroed one.
    assert_eq!(
        count(FaultKind::ZeroPoolHit) + count(FaultKind::ZeroPoolMiss),
        pages
    );

    println!(
        "seq-touch pages={pages}: {} faults ({} from the zero pool), {} VM exits, {:.2} ms",
        snap.total_faults(),
        count(FaultKind::ZeroPoolHit),
        outcome.exits.total(),
        outcome.timings.total.as_secs_f64() * 1e3
    );
    ExitCode::SUCCESS
}
