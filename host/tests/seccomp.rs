//! The seccomp filter: a call outside the vCPU thread's list ends the process
//! with one line and status 159; `--no-seccomp` lifts the filter. The
//! forbidden call is made by the self-test hook (`MOBIUS_SECCOMP_SELFTEST`,
//! see `host/src/seccomp/mod.rs`) right after the filter is installed. Every
//! other integration test runs under the filter, which is the default.

mod common;

use std::process::Output;

use common::{kvm_or_skip, mobius, stderr, stdout};
use mobius_shared::exit::host::SECCOMP_VIOLATION;

const HELLO: &str = "Hello from the Möbius guest\n";

fn selftest(call: &str, args: &[&str]) -> Output {
    mobius()
        .env("MOBIUS_SECCOMP_SELFTEST", call)
        .args(args)
        .output()
        .expect("run mobius")
}

fn assert_caught(o: &Output, line: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(SECCOMP_VIOLATION), "stderr: {err}");
    assert_eq!(err, format!("{line}\n"));
    assert!(!stdout(o).contains("Hello"), "the guest must not run");
}

#[test]
fn a_forbidden_call_ends_the_run() {
    if !kvm_or_skip("a_forbidden_call_ends_the_run") {
        return;
    }
    let o = selftest("getppid", &["run", "--timeout", "60s"]);
    assert_caught(
        &o,
        "mobius: error: seccomp: forbidden system call 110 (getppid) in thread vcpu",
    );
}

#[test]
fn an_ioctl_outside_the_list_is_forbidden() {
    if !kvm_or_skip("an_ioctl_outside_the_list_is_forbidden") {
        return;
    }
    // ioctl itself is allowed, but only with the listed KVM request numbers.
    let o = selftest("ioctl", &["run", "--timeout", "60s"]);
    assert_caught(
        &o,
        "mobius: error: seccomp: forbidden system call 16 (ioctl) in thread vcpu",
    );
}

#[test]
fn a_panic_still_aborts_with_its_message() {
    use std::os::unix::process::ExitStatusExt;
    if !kvm_or_skip("a_panic_still_aborts_with_its_message") {
        return;
    }
    // A backtrace reads the binary's symbols: files, which the list does
    // not open (RUST_BACKTRACE wants `--no-seccomp`).
    let o = mobius()
        .env("MOBIUS_SECCOMP_SELFTEST", "panic")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .args(["run", "--timeout", "60s"])
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{}", stderr(&o));
    assert!(stderr(&o).contains("MOBIUS_SECCOMP_SELFTEST=panic"));
    assert!(!stderr(&o).contains("seccomp:"), "{}", stderr(&o));
}

#[test]
fn stat_runs_are_confined_too() {
    if !kvm_or_skip("stat_runs_are_confined_too") {
        return;
    }
    // The first of three runs, whose list also allows building a VM.
    let o = selftest("getppid", &["stat", "-r", "3", "--", "hello"]);
    assert_eq!(o.status.code(), Some(SECCOMP_VIOLATION), "{}", stderr(&o));
    assert!(stderr(&o).contains("forbidden system call 110 (getppid)"));
    // Without it, the three runs build three VMs under the filter.
    let o = mobius()
        .args(["stat", "-r", "3", "--", "hello"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), HELLO.repeat(3));
}

#[test]
fn stat_reads_a_kernel_file_again_under_the_filter() {
    if !kvm_or_skip("stat_reads_a_kernel_file_again_under_the_filter") {
        return;
    }
    // Runs 2 and 3 open `--kernel PATH` and read its headers and segments
    // (pread64) on the confined thread.
    let dir = common::Scratch::new();
    let kernel = dir.write("guest.elf", mobius::BUNDLED_KERNEL);
    let kernel = kernel.to_str().expect("UTF-8 path");
    let o = mobius()
        .args(["stat", "-r", "3", "--kernel", kernel, "--", "hello"])
        .output()
        .expect("run mobius");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), HELLO.repeat(3));
}

#[test]
fn no_seccomp_lifts_the_filter() {
    if !kvm_or_skip("no_seccomp_lifts_the_filter") {
        return;
    }
    for args in [
        &["run", "--no-seccomp", "--timeout", "60s"][..],
        &["stat", "--no-seccomp", "-r", "2", "--", "hello"],
    ] {
        let o = selftest("getppid", args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).starts_with(HELLO), "{args:?}");
        assert!(!stderr(&o).contains("seccomp"), "{args:?}");
    }
}
