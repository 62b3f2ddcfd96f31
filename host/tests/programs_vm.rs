//! The test programs of `tests/programs/` run as Möbius processes in ring 3
//! under KVM (`mobius run -- PROGRAM ARGS`): output, exit status, and the
//! kernel's report when it ends a program.

mod common;

use std::process::Output;

use common::expected;
use common::programs::program;
use common::{kvm_or_skip, mobius, stderr, stdout, Scratch};

/// `mobius run [extra] -- PROGRAM args`, with a 60 s guest timeout.
fn run_program(extra: &[&str], name: &str, args: &[&str]) -> Output {
    let prog = program(name);
    let mut cmd = mobius();
    cmd.arg("run")
        .args(["--timeout", "60s"])
        .args(extra)
        .arg("--");
    cmd.arg(&prog).args(args);
    cmd.output().expect("run mobius")
}

fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "status; stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

#[test]
fn rust_hello_runs_with_args_and_env() {
    if !kvm_or_skip("rust_hello_runs_with_args_and_env") {
        return;
    }
    let o = run_program(&["--env", "HELLO_ENV=x=y"], "hello", &["one", "two words"]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "hello, world\nargv[1]=one\nargv[2]=two words\nHELLO_ENV=x=y\n"
    );
}

#[test]
fn glibc_static_hello_runs() {
    if !kvm_or_skip("glibc_static_hello_runs") {
        return;
    }
    let o = run_program(&[], "c-hello", &[]);
    ok(&o);
    assert_eq!(stdout(&o), "hello, world\n");
}

#[test]
fn mmap_and_brk_pages_are_demand_zero() {
    if !kvm_or_skip("mmap_and_brk_pages_are_demand_zero") {
        return;
    }
    for how in ["mmap", "brk"] {
        let o = run_program(&[], "touch", &[how, "100"]);
        ok(&o);
        assert_eq!(stdout(&o), "touched 100 pages\n", "{how}");
    }
}

#[test]
fn stack_grows_through_its_area() {
    if !kvm_or_skip("stack_grows_through_its_area") {
        return;
    }
    let o = run_program(&[], "stack", &["1024"]);
    ok(&o);
    assert_eq!(stdout(&o), "stack ok\n");
}

#[test]
fn files_of_the_initramfs_are_read() {
    if !kvm_or_skip("files_of_the_initramfs_are_read") {
        return;
    }
    let dir = Scratch::new();
    let a = dir.write("a.txt", b"hi\n");
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let sum: u32 = big.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    let b = dir.write("big.bin", &big);
    let fa = format!("{}:/data/a.txt", a.display());
    let fb = format!("{}:/data/big.bin", b.display());
    let o = run_program(
        &["--file", &fa, "--file", &fb],
        "readfile",
        &["/data/a.txt", "/data/big.bin"],
    );
    ok(&o);
    assert_eq!(
        stdout(&o),
        format!("/data/a.txt: 3 bytes, sum 219\n/data/big.bin: 20000 bytes, sum {sum}\n")
    );
    let o = run_program(
        &["--file", &fa, "--file", &fb],
        "readfile",
        &["--list", "/data"],
    );
    ok(&o);
    assert_eq!(stdout(&o), "a.txt\nbig.bin\n");
    let o = run_program(&[], "readfile", &["/nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = run_program(&["--file", &fa], "c-cat", &["/data/a.txt"]);
    ok(&o);
    assert_eq!(stdout(&o), "hi\n");
}

#[test]
fn faulting_programs_are_killed_and_the_kernel_goes_on() {
    if !kvm_or_skip("faulting_programs_are_killed_and_the_kernel_goes_on") {
        return;
    }
    for (how, what) in [
        ("mprotect", "write to read-only page"),
        ("kernel", "kernel address"),
        ("null", "read of unmapped address 0x0"),
    ] {
        let o = run_program(&[], "segv", &[how]);
        assert_eq!(o.status.code(), Some(139), "{how}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("mobius: process 1 (/bin/segv) killed: ") && err.contains("(SIGSEGV)"),
            "{how}: {err}"
        );
        if how != "kernel" {
            assert!(err.contains(what), "{how}: {err}");
        }
        assert!(stdout(&o).starts_with("segv: "), "{how}");
    }
}

#[test]
fn bad_pointers_get_efault() {
    if !kvm_or_skip("bad_pointers_get_efault") {
        return;
    }
    // The guest's standard input is always at its end, so `read` returns 0
    // before it looks at the buffer (as Linux does on an empty file): only
    // `write` and `openat` are checked for EFAULT here.
    let o = run_program(&[], "efault", &[]);
    let out = stdout(&o);
    let checked = out
        .lines()
        .filter(|l| l.starts_with("write(") || l.starts_with("openat("));
    assert_eq!(
        checked.filter(|l| l.ends_with("= -14 ok")).count(),
        6,
        "{out}"
    );
}

#[test]
fn random_system_calls_never_crash_the_kernel() {
    if !kvm_or_skip("random_system_calls_never_crash_the_kernel") {
        return;
    }
    for seed in ["1", "2", "3"] {
        let o = run_program(&[], "fuzz", &["2000", seed]);
        ok(&o);
        let out = stdout(&o).replace('\0', "");
        let last = out.lines().last().unwrap_or_default().to_string();
        assert!(
            last.starts_with("fuzz: 2000 calls, "),
            "seed {seed}: {last}"
        );
    }
}

#[test]
fn compute_and_vector_results_match_native() {
    if !kvm_or_skip("compute_and_vector_results_match_native") {
        return;
    }
    let o = run_program(&[], "vecmath", &["200000"]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "vecmath: 200000 iterations, checksum 4a76a29d122b1fa7\n"
    );
    let o = run_program(&[], "checksum", &["4"]);
    ok(&o);
    assert_eq!(stdout(&o), "checksum 18f507b5fd8b060a\n");
}

#[test]
fn exit_status_and_missing_program() {
    if !kvm_or_skip("exit_status_and_missing_program") {
        return;
    }
    let o = run_program(&[], "readfile", &["/missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("readfile: /missing: openat = -2"),
        "{}",
        stderr(&o)
    );
}

/// The program's standard input is `mobius`'s (issue 9 item 7): 100 KiB in,
/// the same bytes out in upper case; an empty input reads as its end.
#[test]
fn standard_input_is_the_hosts() {
    if !kvm_or_skip("standard_input_is_the_hosts") {
        return;
    }
    use std::io::Write;
    let text: String = (0..4000)
        .map(|i| format!("line {i} of the input\n"))
        .collect();
    let mut child = mobius()
        .args(["run", "--timeout", "60s", "--"])
        .arg(program("upper"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mobius");
    let mut stdin = child.stdin.take().expect("stdin");
    let feed = text.clone();
    let writer = std::thread::spawn(move || stdin.write_all(feed.as_bytes()));
    let o = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write stdin");
    ok(&o);
    assert_eq!(stdout(&o), text.to_uppercase());
    assert!(
        stderr(&o).contains(&format!("upper: {} bytes", text.len())),
        "{}",
        stderr(&o)
    );
    let o = run_program(&[], "upper", &[]);
    ok(&o);
    assert!(stderr(&o).contains("upper: 0 bytes"), "{}", stderr(&o));
}

/// Issue 13 item 4: the file calls test harnesses make (create, append,
/// truncate, directories, rename, unlinkat, links, statfs, a private file
/// mapping, /proc) in the guest's writable /tmp, with the output the same
/// program prints natively (programs_native's `file_calls_natively`).
#[test]
fn file_calls_in_tmp() {
    if !kvm_or_skip("file_calls_in_tmp") {
        return;
    }
    let o = run_program(&[], "c-files", &["/tmp"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), expected::FILES);
}
