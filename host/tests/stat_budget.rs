//! `mobius stat --fail-if 'EVENT OP NUMBER'` under KVM: `seq-touch pages=100`
//! makes exactly 100 demand-zero faults and no others
//! (`mobius_shared::workloads`), so every budget's outcome is known.

mod common;

use common::{kvm_or_skip, run, stderr};
use mobius_shared::exit::host;

fn stat(budgets: &[&str], workload: &[&str]) -> std::process::Output {
    let mut args = vec!["stat", "-e", "page-faults"];
    for b in budgets {
        args.extend(["--fail-if", b]);
    }
    args.push("--");
    args.extend_from_slice(workload);
    run(&args)
}

fn budget_lines(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("mobius: stat: budget"))
        .map(String::from)
        .collect()
}

#[test]
fn budgets_that_hold_pass() {
    if !kvm_or_skip("budgets_that_hold_pass") {
        return;
    }
    let o = stat(
        &[
            "page-faults > 100",
            "minor-faults != 100",
            "major-faults > 0",
            "faults.demand-zero < 100",
            "faults.upgrade>=1",
        ],
        &["seq-touch", "pages=100"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(budget_lines(&o), Vec::<String>::new());
}

#[test]
fn broken_budgets_are_each_reported_and_fail_the_run() {
    if !kvm_or_skip("broken_budgets_are_each_reported_and_fail_the_run") {
        return;
    }
    let o = stat(
        &[
            "page-faults > 99",
            "page-faults > 100",
            "minor-faults == 100",
            "faults.demand-zero <= 100",
        ],
        &["seq-touch", "pages=100"],
    );
    assert_eq!(
        o.status.code(),
        Some(host::BUDGET_EXCEEDED),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        budget_lines(&o),
        [
            "mobius: stat: budget exceeded: page-faults 100 > 99",
            "mobius: stat: budget exceeded: minor-faults 100 == 100",
            "mobius: stat: budget exceeded: faults.demand-zero 100 <= 100",
        ]
    );
    // The report is printed all the same.
    assert!(stderr(&o).contains("page-faults"), "{}", stderr(&o));
}

#[test]
fn a_budget_on_an_event_not_reported_is_checked_too() {
    if !kvm_or_skip("a_budget_on_an_event_not_reported_is_checked_too") {
        return;
    }
    // -e page-faults only; the budget is on exits, with -r: the mean.
    let o = run(&[
        "stat",
        "-r",
        "2",
        "-j",
        "-e",
        "page-faults",
        "--fail-if",
        "exits < 1",
        "--fail-if",
        "faults > 0",
        "--",
        "hello",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(budget_lines(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn bad_expressions_are_usage_errors() {
    for bad in [
        "page-faults",
        "page-faults > lots",
        "pagefaults > 1",
        "> 1",
        "page-faults = 1",
    ] {
        let o = run(&["stat", "--fail-if", bad, "--", "hello"]);
        assert_eq!(o.status.code(), Some(host::USAGE), "{bad}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("mobius: error: invalid value"),
            "{bad}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
    }
}
