//! Möbius calls from programs (`shared/src/vmcall.rs`) under KVM: areas,
//! reservations, named sharing between two processes of one run, file
//! mapping, argument checks, and 1,000 spawn/exit cycles that leave the
//! kernel's frame and heap counts exactly where they were.

mod common;

use std::process::Output;

use common::programs::program;
use common::{kvm_or_skip, mobius, stderr, stdout};

/// `mobius run --file exit0 --file hello -- vmcalls ARGS`.
fn vmcalls(args: &[&str]) -> Output {
    let exit0 = format!("{}:/bin/exit0", program("c-exit0").display());
    let hello = format!("{}:/bin/hello", program("hello").display());
    mobius()
        .arg("run")
        .args(["--timeout", "300s", "--file", &exit0, "--file", &hello])
        .arg("--")
        .arg(program("vmcalls"))
        .args(args)
        .output()
        .expect("run mobius")
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[test]
fn alloc_and_free_with_every_bad_argument_refused() {
    if !kvm_or_skip("alloc_and_free_with_every_bad_argument_refused") {
        return;
    }
    let out = ok(&vmcalls(&["alloc"]));
    assert_eq!(
        out,
        "vmcalls: alloc 4 pages, wrote, freed ok\n\
         vmcalls: kernel-only flags: errno 1 ok\n\
         vmcalls: unknown flags: errno 22 ok\n\
         vmcalls: zero pages: errno 22 ok\n\
         vmcalls: unaligned base: errno 22 ok\n\
         vmcalls: kernel-half base: errno 22 ok\n\
         vmcalls: interior free: errno 22 ok\n\
         vmcalls: double free: errno 22 ok\n"
    );
}

#[test]
fn reserve_then_commit_inside() {
    if !kvm_or_skip("reserve_then_commit_inside") {
        return;
    }
    let out = ok(&vmcalls(&["reserve"]));
    assert!(out.contains("committed 4 inside ok"), "{out}");
}

#[test]
fn a_named_area_is_shared_both_ways_between_two_processes() {
    if !kvm_or_skip("a_named_area_is_shared_both_ways_between_two_processes") {
        return;
    }
    let out = ok(&vmcalls(&["share", "mailbox"]));
    assert_eq!(
        out,
        "vmcalls: child read the parent's text ok\nvmcalls: shared both ways ok\n"
    );
}

#[test]
fn a_file_mapped_with_vmm_map_file_reads_as_the_file() {
    if !kvm_or_skip("a_file_mapped_with_vmm_map_file_reads_as_the_file") {
        return;
    }
    let size = std::fs::metadata(program("hello")).expect("hello").len();
    let out = ok(&vmcalls(&["file", "/bin/hello"]));
    assert_eq!(
        out,
        format!("vmcalls: mapped {size} bytes of /bin/hello ok\n")
    );
}

/// Issue 9 item 1: spawning and reaping 1,000 processes leaves the frame
/// and heap counts exactly where they started (after one warm-up cycle,
/// which sizes the kernel's tables once).
#[test]
fn a_thousand_spawn_exit_cycles_leave_frames_and_heap_unchanged() {
    if !kvm_or_skip("a_thousand_spawn_exit_cycles_leave_frames_and_heap_unchanged") {
        return;
    }
    let out = ok(&vmcalls(&["cycles", "1000", "/bin/exit0"]));
    assert!(
        out.starts_with("vmcalls: 1000 spawns, free frames "),
        "{out}"
    );
    assert!(out.contains("processes 1 -> 1"), "{out}");
}

#[test]
fn natively_the_calls_are_not_there() {
    let o = std::process::Command::new(program("vmcalls"))
        .arg("probe")
        .output()
        .expect("run vmcalls");
    assert_eq!(stdout(&o), "vmcalls: not a Möbius kernel\n");
}

/// Issue 12 item 8: a program exhausts descriptors (EMFILE), mappings and
/// address space (ENOMEM), share handles (EMFILE), and frames (killed with
/// a report): each limit stops only that program, the kernel goes on, and
/// every frame comes back.
#[test]
fn exhausting_the_kernel_stops_only_the_program() {
    if !kvm_or_skip("exhausting_the_kernel_stops_only_the_program") {
        return;
    }
    let o = mobius()
        .args(["run", "--timeout", "300s", "--memory", "48M", "--"])
        .arg(program("hog"))
        .arg("all")
        .output()
        .expect("run mobius");
    let out = ok(&o);
    let round = "hog: fds 1021 then errno 24\n\
                 hog: maps 2041 then errno 12\n\
                 hog: space 126 TiB then errno 12\n\
                 hog: handles 256 then errno 24\n\
                 hog: killed by signal 11\n";
    assert_eq!(
        out,
        format!("{round}{round}{round}hog: frames back where they were\n")
    );
    assert!(
        stderr(&o).contains("killed: out of memory at"),
        "{}",
        stderr(&o)
    );
}
