//! Bad input: every case gets one clear `mobius: error:` line and a distinct
//! exit status, never a panic. The kernel is checked before KVM is opened, so
//! these tests need no /dev/kvm (except the KVM-device ones, which need none
//! by construction).

mod common;

use common::elf::{print_and_exit, ElfSpec};
use common::{assert_error, kvm_or_skip, run, stderr, Scratch};
use mobius_shared::exit::host;

fn hello() -> ElfSpec {
    ElfSpec::new(print_and_exit("hi\n", 0))
}

#[test]
fn missing_kernel() {
    let s = Scratch::new();
    let p = s.path().join("nope.elf");
    let o = run(&["run", "--kernel", p.to_str().unwrap()]);
    assert_error(&o, host::BAD_KERNEL, "No such file");
}

#[test]
fn unreadable_kernel() {
    // A directory cannot be read as a file, even by root.
    let s = Scratch::new();
    let o = run(&["run", "--kernel", s.path().to_str().unwrap()]);
    assert_error(&o, host::BAD_KERNEL, "kernel ");
}

#[test]
fn not_an_elf() {
    let s = Scratch::new();
    let p = s.write("text.elf", b"#!/bin/sh\necho this is not a kernel\n");
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "not an ELF",
    );
    let p = s.write("empty.elf", b"");
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "not an ELF",
    );
}

#[test]
fn truncated_elf() {
    let s = Scratch::new();
    let bytes = hello().build();
    let p = s.write("short.elf", &bytes[..40]);
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "malformed",
    );
    let p = s.write("cut.elf", &bytes[..100]);
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "malformed",
    );
}

#[test]
fn wrong_class() {
    let s = Scratch::new();
    let p = s.kernel(
        "k32.elf",
        &ElfSpec {
            class64: false,
            ..hello()
        },
    );
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "32-bit ELF",
    );
}

#[test]
fn wrong_machine() {
    let s = Scratch::new();
    let p = s.kernel(
        "arm.elf",
        &ElfSpec {
            machine: 183,
            ..hello()
        },
    );
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "machine 183",
    );
}

#[test]
fn segment_over_boot_structures() {
    let s = Scratch::new();
    let p = s.kernel(
        "low.elf",
        &ElfSpec {
            load_addr: 0x8000,
            ..hello()
        },
    );
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "overlaps the boot structures",
    );
}

#[test]
fn segment_outside_guest_memory() {
    let s = Scratch::new();
    let p = s.kernel(
        "high.elf",
        &ElfSpec {
            load_addr: 0xd000_0000,
            ..hello()
        },
    );
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap()]),
        host::BAD_KERNEL,
        "outside guest RAM",
    );
}

#[test]
fn memory_too_small_for_kernel() {
    let s = Scratch::new();
    // 64 MiB of bss does not fit in 16 MiB of RAM.
    let p = s.kernel(
        "big.elf",
        &ElfSpec {
            bss: 64 << 20,
            ..hello()
        },
    );
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap(), "--memory", "16M"]),
        host::USAGE,
        "too small for kernel",
    );
}

#[test]
fn memory_unparseable() {
    assert_error(
        &run(&["run", "--memory", "lots"]),
        host::USAGE,
        "not a size",
    );
    assert_error(
        &run(&["run", "--memory", "12X"]),
        host::USAGE,
        "unknown unit",
    );
}

#[test]
fn memory_below_minimum() {
    assert_error(
        &run(&["run", "--memory", "1M"]),
        host::USAGE,
        "minimum is 4 MiB",
    );
}

#[test]
fn memory_above_maximum_names_the_limit() {
    assert_error(
        &run(&["run", "--memory", "64G"]),
        host::USAGE,
        "limited to 3 GiB",
    );
}

#[test]
fn bad_timeout_and_boot_mode() {
    assert_error(
        &run(&["run", "--timeout", "soon"]),
        host::USAGE,
        "not a duration",
    );
    assert_error(&run(&["run", "--boot", "real"]), host::USAGE, "real");
}

#[test]
fn no_pvh_note_with_boot_pvh() {
    if !common::kvm_or_skip("no_pvh_note_with_boot_pvh") {
        return;
    }
    let s = Scratch::new();
    let p = s.kernel(
        "nonote.elf",
        &ElfSpec {
            pvh_note: false,
            ..hello()
        },
    );
    assert_error(
        &run(&["run", "--kernel", p.to_str().unwrap(), "--boot", "pvh"]),
        host::BAD_KERNEL,
        "no PVH entry note",
    );
}

#[test]
fn cmdline_too_long() {
    if !common::kvm_or_skip("cmdline_too_long") {
        return;
    }
    let long = format!("x={}", "y".repeat(5000));
    assert_error(
        &run(&["run", "--cmdline", &long]),
        host::USAGE,
        "command line is",
    );
}

#[test]
fn kvm_device_missing_says_how_to_fix() {
    let o = run(&["run", "--kvm-device", "/nonexistent/kvm"]);
    assert_error(&o, host::KVM_UNAVAILABLE, "modprobe");
}

#[test]
fn kvm_device_not_kvm() {
    let o = run(&["run", "--kvm-device", "/dev/null"]);
    assert_error(&o, host::KVM_UNAVAILABLE, "/dev/null");
}

#[test]
fn kvm_permission_denied_says_how_to_fix() {
    // Root bypasses file permissions, so this case can only be shown as a user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIP: kvm_permission_denied_says_how_to_fix runs as root\n",
        );
        return;
    }
    let s = Scratch::new();
    let p = s.write("kvm", b"");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let o = run(&["run", "--kvm-device", p.to_str().unwrap()]);
    assert_error(&o, host::KVM_UNAVAILABLE, "kvm group");
}

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(common::stdout(&o).contains("run"));
    let o = run(&["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    for flag in [
        "--kernel",
        "--memory",
        "--cmdline",
        "--timeout",
        "--boot",
        "--timings",
    ] {
        assert!(
            common::stdout(&o).contains(flag),
            "{flag} missing from help"
        );
    }
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(common::stdout(&o).starts_with("mobius "));
}

#[test]
fn unknown_flag_is_usage_error() {
    assert_error(&run(&["run", "--frobnicate"]), host::USAGE, "--frobnicate");
    assert_eq!(run(&[]).status.code(), Some(host::USAGE));
}

/// Issue 11 item 2: workload parameters that do not go together are a bad
/// command line: status 5 from the guest (`run --cmdline`), a usage error
/// before any boot (`stat`), never a failed workload.
#[test]
fn conflicting_workload_parameters_are_a_bad_command_line() {
    if !kvm_or_skip("conflicting_workload_parameters_are_a_bad_command_line") {
        return;
    }
    let o = run(&[
        "run",
        "--cmdline",
        "workload=random-touch pages=100 span=10",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = run(&["stat", "--", "reserve-commit", "reserve=10", "commit=20"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("commit= must be smaller than reserve="),
        "{}",
        stderr(&o)
    );
}
