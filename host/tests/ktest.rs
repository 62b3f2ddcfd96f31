//! The in-guest test suites (`test=<suite>` on the guest command line) under
//! KVM: the Möbius VMM self-test (spec §9 rows through the real page tables)
//! and real CPU accesses through the page-fault trap. The host asserts the
//! guest's own pass/fail line and status.

mod common;

use common::{kvm_or_skip, run, stderr, stdout};
use mobius_shared::exit::GuestStatus;

/// Parse the guest's closing line `ktest: N passed, M failed`.
fn counts(out: &str) -> Option<(u32, u32)> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("ktest: ") && l.contains(" passed, "))?;
    let rest = line.strip_prefix("ktest: ")?;
    let (p, f) = rest.split_once(" passed, ")?;
    Some((
        p.trim().parse().ok()?,
        f.trim_end_matches(" failed").trim().parse().ok()?,
    ))
}

/// Run suite `name`, which must pass exactly `tests` tests (a test that
/// silently stops running is a failure too).
fn suite(name: &str, tests: u32) {
    let o = run(&[
        "run",
        "--cmdline",
        &format!("test={name}"),
        "--timeout",
        "300s",
    ]);
    let out = stdout(&o);
    let (passed, failed) =
        counts(&out).unwrap_or_else(|| panic!("no ktest summary line:\n{out}{}", stderr(&o)));
    assert_eq!(failed, 0, "in-guest failures:\n{out}");
    assert_eq!(passed, tests, "{passed} tests passed, not {tests}:\n{out}");
    assert_eq!(
        o.status.code(),
        Some(GuestStatus::Success.code() as i32),
        "{out}{}",
        stderr(&o)
    );
}

#[test]
fn vmm_suite_passes_in_the_guest() {
    if !kvm_or_skip("vmm_suite_passes_in_the_guest") {
        return;
    }
    // 22 portable self-test rows + 11 real-access checks.
    suite("vmm", 33);
}

#[test]
fn real_access_suite_passes_in_both_boot_modes() {
    if !kvm_or_skip("real_access_suite_passes_in_both_boot_modes") {
        return;
    }
    let o = run(&["run", "--boot", "pvh", "--cmdline", "test=real"]);
    assert_eq!(counts(&stdout(&o)).map(|c| c.1), Some(0), "{}", stdout(&o));
    suite("real", 11);
}

#[test]
fn unknown_suite_is_a_bad_command_line() {
    if !kvm_or_skip("unknown_suite_is_a_bad_command_line") {
        return;
    }
    let o = run(&["run", "--cmdline", "test=no-such-suite"]);
    assert_eq!(
        o.status.code(),
        Some(GuestStatus::BadCommandLine.code() as i32)
    );
    assert!(stdout(&o).contains("unknown test suite"), "{}", stdout(&o));
}

#[test]
fn summary_line_parser() {
    assert_eq!(counts("x\nktest: 31 passed, 0 failed\n"), Some((31, 0)));
    assert_eq!(counts("ktest: 2 passed, 3 failed"), Some((2, 3)));
    assert_eq!(counts("ktest: real-x ... ok"), None);
}
