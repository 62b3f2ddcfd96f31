//! The test programs of `tests/programs/`, run natively on this host (not in
//! the VM): proof that each is right, with the output and status the guest
//! kernel must reproduce when it runs them.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::expected;
use common::programs::program;
use common::{stderr, stdout, Scratch};

/// Run a built program with `args`, stdin from `stdin` (else /dev/null), in
/// a scratch working directory, killed after 60 s.
fn run_in(name: &str, args: &[&str], stdin: Option<&Path>, env: &[(&str, &str)]) -> Output {
    let cwd = Scratch::new();
    let mut cmd = Command::new(program(name));
    cmd.args(args)
        .current_dir(cwd.path())
        .env_remove("HELLO_ENV")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("open stdin file")),
            None => Stdio::null(),
        });
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait for the program"),
        Err(_) => {
            // SAFETY: killing the child we spawned (not yet reaped: its
            // waiter is still blocked).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{name} {args:?} did not finish within 60 s");
        }
    }
}

fn run(name: &str, args: &[&str]) -> Output {
    run_in(name, args, None, &[])
}

/// Exit status 0, exactly `expected` on stdout, nothing on stderr.
fn assert_ok(o: &Output, expected: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "status {}; stderr: {}",
        o.status,
        stderr(o)
    );
    assert_eq!(stdout(o), expected, "stderr: {}", stderr(o));
    assert_eq!(stderr(o), "");
}

/// Exit status 1 and an error on stderr containing `needle`.
fn assert_fails(o: &Output, needle: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "status {}; stdout: {}",
        o.status,
        stdout(o)
    );
    assert!(
        stderr(o).contains(needle),
        "stderr lacks {needle:?}: {}",
        stderr(o)
    );
}

#[test]
fn hello() {
    assert_ok(&run("hello", &[]), "hello, world\n");
    assert_ok(
        &run_in(
            "hello",
            &["one", "two words"],
            None,
            &[("HELLO_ENV", "x=y")],
        ),
        "hello, world\nargv[1]=one\nargv[2]=two words\nHELLO_ENV=x=y\n",
    );
}

#[test]
fn touch() {
    assert_ok(&run("touch", &["mmap", "100"]), "touched 100 pages\n");
    assert_ok(&run("touch", &["brk", "100"]), "touched 100 pages\n");
    assert_fails(&run("touch", &["heap", "1"]), "unknown mode");
}

#[test]
fn stack() {
    assert_ok(&run("stack", &["256"]), "stack ok\n");
    assert_ok(&run("stack", &["4096"]), "stack ok\n");
}

#[test]
fn readfile() {
    let dir = Scratch::new();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let sum = data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    let big = dir.write("big", &data);
    let empty = dir.write("empty", b"");
    let small = dir.write("small", b"hi\n");
    let (big, empty, small) = (
        big.to_str().unwrap(),
        empty.to_str().unwrap(),
        small.to_str().unwrap(),
    );
    assert_ok(
        &run("readfile", &[big, empty, small]),
        &format!(
            "{big}: 10000 bytes, sum {sum}\n{empty}: 0 bytes, sum 0\n{small}: 3 bytes, sum 219\n"
        ),
    );
    dir.write("c", b"");
    std::fs::create_dir(dir.path().join("a")).unwrap();
    assert_ok(
        &run("readfile", &["--list", dir.path().to_str().unwrap()]),
        "a\nbig\nc\nempty\nsmall\n",
    );
    let missing = dir.path().join("missing");
    assert_fails(
        &run("readfile", &[missing.to_str().unwrap()]),
        "openat = -2",
    );
}

#[test]
fn segv() {
    for (mode, said) in [
        ("mprotect", "segv: writing to read-only page 0x"),
        (
            "kernel",
            "segv: writing to kernel address 0xffff800000001000\n",
        ),
        ("null", "segv: reading address 0\n"),
    ] {
        let o = run("segv", &[mode]);
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGSEGV),
            "{mode}: status {}; stderr: {}",
            o.status,
            stderr(&o)
        );
        assert!(
            stdout(&o).starts_with(said),
            "{mode}: stdout: {}",
            stdout(&o)
        );
        assert_eq!(
            stdout(&o).lines().count(),
            1,
            "{mode}: stdout: {}",
            stdout(&o)
        );
    }
}

#[test]
fn efault() {
    // read(0, bad, 10) must see data to copy: stdin from a non-empty file.
    let dir = Scratch::new();
    let input = dir.write("input", b"0123456789abcdef");
    let o = run_in("efault", &[], Some(&input), &[]);
    let mut expected = String::new();
    for call in ["write", "read", "openat"] {
        for bad in ["0x1", "0xffff800000000000", "0x7ffffffff000"] {
            expected += &format!("{call}(bad={bad}) = -14 ok\n");
        }
    }
    assert_ok(&o, &expected);
}

#[test]
fn fuzz() {
    let o = run("fuzz", &["2000", "1"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "status {}; stderr: {}",
        o.status,
        stderr(&o)
    );
    // Random writes to fds 1 and 2 may put NULs before the summary line.
    let out = stdout(&o).replace('\0', "");
    let last = out.lines().last().unwrap_or("");
    assert!(last.starts_with("fuzz: 2000 calls, "), "stdout: {out:?}");
    assert!(last.ends_with(" returned errors"), "stdout: {out:?}");
}

#[test]
fn enosys() {
    assert_ok(&run("enosys", &[]), "enosys: 400 returned -38 2 times\n");
    assert_ok(
        &run("enosys", &["387", "3"]),
        "enosys: 387 returned -38 3 times\n",
    );
    assert_fails(&run("enosys", &["39", "1"]), "39 returned [");
}

#[test]
fn vecmath_alone_and_two_at_once() {
    let expected = "vecmath: 200000 iterations, checksum 4a76a29d122b1fa7\n";
    assert_ok(&run("vecmath", &["200000"]), expected);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run("vecmath", &["200000"]));
        let b = s.spawn(|| run("vecmath", &["200000"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ok(&a, expected);
    assert_ok(&b, expected);
}

#[test]
fn checksum() {
    // The FNV-1a 64 of 4 MiB of xorshift64 words (checked independently).
    assert_ok(&run("checksum", &["4"]), "checksum 18f507b5fd8b060a\n");
}

#[test]
fn c_hello() {
    assert_ok(&run("c-hello", &[]), "hello, world\n");
}

#[test]
fn c_cat() {
    let dir = Scratch::new();
    let a = dir.write("a", b"first\n");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let b = dir.write("b", &data);
    let o = run("c-cat", &[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let mut expected = b"first\n".to_vec();
    expected.extend_from_slice(&data);
    assert!(
        o.stdout == expected,
        "c-cat output differs ({} bytes)",
        o.stdout.len()
    );
    let missing = dir.path().join("missing");
    let o = run("c-cat", &[a.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(stdout(&o), "first\n");
    assert_fails(&o, "cat: ");
    assert!(
        stderr(&o).contains("No such file or directory"),
        "stderr: {}",
        stderr(&o)
    );
}

/// The process programs natively: what the guest must print too.
#[test]
fn spawn_and_threads_natively() {
    let hello = program("hello");
    let hello = hello.to_str().expect("utf-8 path");
    let o = run("spawn", &["status", "7"]);
    assert_eq!(stdout(&o), "spawn: child exited with 7\n");
    let o = run("spawn", &["capture", hello, "a", "b"]);
    assert_eq!(
        stdout(&o),
        "child: hello, world\nchild: argv[1]=a\nchild: argv[2]=b\nspawn: child exited with 0\n"
    );
    let o = run("spawn", &["run", "5", hello]);
    assert_eq!(stdout(&o), format!("spawn: 5 runs of {hello} ok\n"));
    let o = run("spawn", &["missing"]);
    assert_eq!(stdout(&o), "spawn: missing program: ENOENT ok\n");
    let o = run("spawn", &["killed"]);
    assert_eq!(stdout(&o), "spawn: child killed by signal 11\n");
    let o = run("spawn", &["waitid", "5"]);
    assert_eq!(
        stdout(&o),
        "spawn: waitid signo 17 code 1 status 5 pid-ok\n"
    );
    let o = run("threads", &["4", "2000"]);
    assert_eq!(
        stdout(&o),
        "threads: 4 threads, counter 8000, sum 19990000\n"
    );
    let o = run("c-spawn", &[hello, "x"]);
    assert_eq!(
        stdout(&o),
        "read 23 bytes\nchild: hello, world\nchild: argv[1]=x\nexit 0\nthreads 2 counter 20000\n"
    );
}

#[test]
fn forks_natively() {
    let o = run("forks", &["20", "256"]);
    assert_eq!(
        stdout(&o),
        "forks: 20 children, 256 KiB each, all bytes right\n"
    );
}

/// `vecpair` natively: the feature line says what this machine has, the
/// AVX and SSE2 code give the same bits, and two children at once (the
/// AVX code where there is AVX, then SSE2 everywhere) both come out right.
#[test]
fn vecpair_natively() {
    let features = format!(
        "vecpair: avx={} avx2={} xsave={}\n",
        is_x86_feature_detected!("avx"),
        is_x86_feature_detected!("avx2"),
        is_x86_feature_detected!("xsave")
    );
    assert_ok(&run("vecpair", &[]), &features);
    // `work` ends with the TSC window it ran in: compare what comes before.
    let checksum = |o: &Output| {
        assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
        let out = stdout(o);
        out.split_once(", TSC ")
            .unwrap_or_else(|| panic!("no TSC window: {out:?}"))
            .0
            .to_string()
    };
    let default = checksum(&run("vecpair", &["work", "7", "100000"]));
    let sse = checksum(&run("vecpair", &["work", "7", "100000", "sse"]));
    assert!(
        default.starts_with("vecpair: seed 7, 100000 iterations, checksum "),
        "{default}"
    );
    assert_eq!(default, sse);
    let other = checksum(&run("vecpair", &["work", "8", "100000"]));
    let hex = |line: &str| line.rsplit(' ').next().unwrap_or_default().to_string();
    assert_ne!(hex(&default), hex(&other), "seeds 7 and 8 agree");
    for args in [&["run", "25000000"][..], &["run", "25000000", "sse"]] {
        assert_ok(
            &run("vecpair", args),
            &format!("{features}vecpair: both results correct\n"),
        );
    }
}

#[test]
fn signals_natively() {
    let o = run("c-signals", &[]);
    assert_eq!(stdout(&o), SIGNALS_OUT);
}

/// Issue 13 item 4: what C test harnesses need (`c-harness`): mremap,
/// msync, mlock, a thread, ITIMER_REAL and alarm, faults to handlers,
/// sigaltstack, nested handlers, wait4 restarted, SysV shared memory,
/// MAP_SHARED across fork.
#[test]
fn harness_natively() {
    let o = run("c-harness", &[]);
    assert_eq!(stdout(&o), expected::HARNESS, "{}", stderr(&o));
}

/// What `c-signals` prints when every handler ran as it should.
const SIGNALS_OUT: &str = "usr1 1, double 3.00\nblocked: usr1 still 1\nunblocked: usr1 2\n\
restart: read 1 'y', usr2 1\n\
chld 1, exit 3\npipe: write -1 EPIPE, handler 1\nsignals: all ok\n";

#[test]
fn file_calls_natively() {
    let scratch = Scratch::new();
    let dir = scratch.path().to_str().expect("utf-8 path");
    assert_ok(&run("c-files", &[dir]), expected::FILES);
}
