//! `mobius stat` when the guest sends no final snapshot: it says why the
//! guest stopped (a crash with its registers, a halt nothing can wake, a
//! timeout) the way `mobius run` does, and exits with the same status.

mod common;

use common::elf::{self, ElfSpec};
use common::{kvm_or_skip, run, stderr, Scratch};
use mobius_shared::exit::host;

/// The `mobius: error:` report of a run, up to the first line that is not
/// part of it (crash reports continue on indented lines).
fn report(err: &str) -> Vec<&str> {
    let mut lines = err
        .lines()
        .skip_while(|l| !l.starts_with("mobius: error: "));
    let first = lines.next().into_iter();
    first
        .chain(lines.take_while(|l| l.starts_with("  ")))
        .collect()
}

#[test]
fn stat_says_why_a_crashed_guest_sent_no_final_snapshot() {
    if !kvm_or_skip("stat_says_why_a_crashed_guest_sent_no_final_snapshot") {
        return;
    }
    let s = Scratch::new();
    let cases = [
        (
            "triple",
            elf::triple_fault(),
            "guest shut down (triple fault)",
        ),
        (
            "halt",
            elf::halt(),
            "guest halted (HLT) without reporting a status",
        ),
    ];
    for (name, code, what) in cases {
        let k = s.kernel(name, &ElfSpec::new(code));
        let k = k.to_str().expect("utf-8 path");
        let o = run(&["stat", "--kernel", k, "--timeout", "20s", "--", "hello"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(host::GUEST_CRASH), "{name}: {err}");
        assert!(
            err.contains(&format!("mobius: error: guest crashed: {what}")),
            "{name}: {err}"
        );
        assert!(err.contains("rip=0x"), "{name}: registers: {err}");
        assert!(err.contains("cr0="), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "the guest sent no final statistics snapshot: it crashed: {what}"
            )),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        // The same report, register for register, as `mobius run` gives.
        let o = run(&["run", "--kernel", k, "--timeout", "20s"]);
        assert_eq!(o.status.code(), Some(host::GUEST_CRASH), "{name}");
        let run_err = stderr(&o);
        assert_eq!(report(&err), report(&run_err), "{name}");
    }
}

#[test]
fn stat_says_a_timed_out_guest_was_stopped() {
    if !kvm_or_skip("stat_says_a_timed_out_guest_was_stopped") {
        return;
    }
    let s = Scratch::new();
    let k = s.kernel("spin", &ElfSpec::new(elf::spin()));
    let k = k.to_str().expect("utf-8 path");
    let o = run(&["stat", "--kernel", k, "--timeout", "300ms", "--", "hello"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(host::TIMEOUT), "{err}");
    assert!(
        err.contains("mobius: error: guest still running after --timeout 300ms; stopped"),
        "{err}"
    );
    assert!(
        err.contains("no final statistics snapshot: it was stopped after --timeout 300ms"),
        "{err}"
    );
}
