//! Per-process FPU/SSE/AVX state under KVM: two processes doing vector
//! arithmetic at once, preempted by the 10 ms time slice many times, must
//! each get their own results (`vecpair`, see
//! tests/programs/src/bin/vecpair.rs), with whatever vector unit the
//! program finds: SSE2, or AVX/AVX-512 where ring 3 can use them (kvm_pvm,
//! which runs ring 3 with the host's XCR0), whose state the kernel keeps
//! per thread through the host's extended-state port
//! (`mobius_shared::ports::XSTATE`). Where ring-3 CPUID is the VMM's
//! table, the host hides AVX and XSAVE, and programs see none.

mod common;

use std::io::Write;
use std::process::Output;

use common::programs::program;
use common::{kvm_or_skip, mobius, stderr, stdout};

/// Iterations per `vecpair` child: about 0.5 s of SSE2 arithmetic natively
/// here, some fifty 10 ms slices, and as much again for the parent's own
/// computation of the expected results.
const N: &str = "25000000";

/// `mobius run -- vecpair args` (the program is /bin/vecpair in the guest,
/// which is what its `current_exe` starts again).
fn vecpair(args: &[&str]) -> Output {
    let mut cmd = mobius();
    cmd.arg("run")
        .args(["--timeout", "120s", "--"])
        .arg(program("vecpair"))
        .args(args);
    cmd.output().expect("run mobius")
}

fn explain(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// Whether programs in the guest's ring 3 see the CPUID table the host
/// gives KVM. Not on kvm_pvm (the guest runs in the host's own hardware
/// context) when the CPU cannot fault ring-3 CPUID: there `cpuid` goes
/// past KVM to whatever runs the host, the guest's programs see AVX and
/// XSAVE whatever the host sets, and nothing keeps their ymm registers
/// apart. When it does not, print a visible SKIP line naming `test`.
fn ring3_cpuid_is_the_vmms(test: &str) -> bool {
    let module = |m: &str| std::path::Path::new("/sys/module").join(m).exists();
    let pvm_only = module("kvm_pvm") && !module("kvm_intel") && !module("kvm_amd");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpuid_fault = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "cpuid_fault"));
    if pvm_only && !cpuid_fault {
        // Past the harness's capture, as `kvm_or_skip` does.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: {test}: kvm_pvm on a CPU without CPUID faulting: guest programs see the \
             host's CPUID (AVX, XSAVE); their state is kept apart through the host's \
             extended-state port instead"
        );
        return false;
    }
    true
}

#[test]
fn sse_state_stays_apart_between_preempted_processes() {
    if !kvm_or_skip("sse_state_stays_apart_between_preempted_processes") {
        return;
    }
    let o = vecpair(&["run", N, "sse"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", explain(&o));
    assert!(lines[0].starts_with("vecpair: avx="), "{}", explain(&o));
    assert_eq!(lines[1], "vecpair: both results correct", "{}", explain(&o));
}

#[test]
fn guest_programs_see_no_avx_or_xsave() {
    let test = "guest_programs_see_no_avx_or_xsave";
    if !kvm_or_skip(test) || !ring3_cpuid_is_the_vmms(test) {
        return;
    }
    let o = vecpair(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "vecpair: avx=false avx2=false xsave=false\n");
}

/// With whatever the program detects (AVX here on kvm_pvm, SSE2 where
/// CPUID hides AVX), both preempted processes keep their own registers.
#[test]
fn vector_state_stays_apart_with_runtime_feature_detection() {
    if !kvm_or_skip("vector_state_stays_apart_with_runtime_feature_detection") {
        return;
    }
    let o = vecpair(&["run", N]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", explain(&o));
    assert!(lines[0].starts_with("vecpair: avx="), "{}", explain(&o));
    assert_eq!(lines[1], "vecpair: both results correct", "{}", explain(&o));
}
