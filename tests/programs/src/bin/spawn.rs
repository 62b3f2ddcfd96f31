//! `spawn MODE ...`: starting other programs the way real programs do
//! (`std::process::Command`, which is `posix_spawn`: a `clone(CLONE_VM |
//! CLONE_VFORK)` child that `execve`s; `wait4`; pipes).
//!
//! * `spawn run N PROG [ARGS...]`: run PROG N times one after another,
//!   each must exit 0; prints `spawn: N runs of PROG ok`.
//! * `spawn capture PROG [ARGS...]`: run PROG with its stdout on a pipe,
//!   read it to end of file and print it prefixed with `child: `, then
//!   `spawn: child exited with N`.
//! * `spawn status CODE`: run itself as `spawn exit CODE` and print
//!   `spawn: child exited with CODE` (the status `wait4` reported).
//! * `spawn exit CODE`: exit with CODE.
//! * `spawn missing`: spawning a program that does not exist fails with
//!   ENOENT; prints `spawn: missing program: ENOENT ok`.
//! * `spawn killed`: run itself as `spawn segv`, which writes to a
//!   read-only page; prints `spawn: child killed by signal 11`.
//! * `spawn waitid CODE`: start itself as `spawn exit CODE` and collect it
//!   with the raw `waitid(P_PID, pid, WEXITED)`; prints `spawn: waitid
//!   signo 17 code 1 status CODE pid-ok`.
//! * `spawn orphan PROG [ARGS...]`: start PROG and exit 0 at once without
//!   waiting for it (under Möbius the run ends with this process).
//! * `spawn deadlock`: read from a pipe whose only writer is itself: blocks
//!   for ever (natively; the Möbius kernel reports the deadlock and ends
//!   it with SIGKILL).

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "spawn";

fn main() {
    let a = args(PROG);
    let words: Vec<&str> = a.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["run", n, prog, rest @ ..] => run(parse_num(PROG, "N", n), prog, rest),
        ["capture", prog, rest @ ..] => capture(prog, rest),
        ["status", code] => status(parse_num(PROG, "CODE", code)),
        ["exit", code] => std::process::exit(parse_num(PROG, "CODE", code) as i32),
        ["missing"] => missing(),
        ["killed"] => killed(),
        ["segv"] => segv(),
        ["orphan", prog, rest @ ..] => orphan(prog, rest),
        ["waitid", code] => waitid(parse_num(PROG, "CODE", code)),
        ["deadlock"] => deadlock(),
        _ => die(PROG, "usage: spawn run N PROG [ARGS] | capture PROG [ARGS] | status CODE | exit CODE | missing | killed"),
    }
}

fn me() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|e| die(PROG, &format!("current_exe: {e}")))
}

fn run(n: u64, prog: &str, rest: &[&str]) {
    for i in 0..n {
        let s = Command::new(prog)
            .args(rest)
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| die(PROG, &format!("run {i} of {prog}: {e}")));
        if !s.success() {
            die(PROG, &format!("run {i} of {prog}: {s}"));
        }
    }
    println!("spawn: {n} runs of {prog} ok");
}

fn capture(prog: &str, rest: &[&str]) {
    let mut child = Command::new(prog)
        .args(rest)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| die(PROG, &format!("spawn {prog}: {e}")));
    let mut text = String::new();
    let Some(mut out) = child.stdout.take() else {
        die(PROG, "no stdout pipe")
    };
    out.read_to_string(&mut text)
        .unwrap_or_else(|e| die(PROG, &format!("read the pipe: {e}")));
    let s = child
        .wait()
        .unwrap_or_else(|e| die(PROG, &format!("wait: {e}")));
    let mut o = std::io::stdout().lock();
    for line in text.lines() {
        let _ = writeln!(o, "child: {line}");
    }
    let _ = writeln!(o, "spawn: child exited with {}", s.code().unwrap_or(-1));
}

fn status(code: u64) {
    let s = Command::new(me())
        .args(["exit", &code.to_string()])
        .status()
        .unwrap_or_else(|e| die(PROG, &format!("spawn: {e}")));
    println!("spawn: child exited with {}", s.code().unwrap_or(-1));
}

fn missing() {
    match Command::new("/bin/no-such-program").status() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("spawn: missing program: ENOENT ok")
        }
        other => die(PROG, &format!("missing program gave {other:?}")),
    }
}

fn killed() {
    let s = Command::new(me())
        .arg("segv")
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| die(PROG, &format!("spawn: {e}")));
    match s.signal() {
        Some(sig) => println!("spawn: child killed by signal {sig}"),
        None => die(PROG, &format!("child was not killed: {s}")),
    }
}

/// Write to a read-only page of this program (its own code).
fn segv() {
    let p = segv as *const () as usize as *mut u8;
    // SAFETY: deliberately not: this write must fault.
    unsafe { p.write_volatile(0) };
    die(PROG, "the write to a read-only page did not fault")
}

fn orphan(prog: &str, rest: &[&str]) {
    let child = Command::new(prog)
        .args(rest)
        .spawn()
        .unwrap_or_else(|e| die(PROG, &format!("spawn {prog}: {e}")));
    println!("spawn: started {}, not waiting", child.id());
}

fn deadlock() {
    let (mut r, _w) = std::io::pipe().unwrap_or_else(|e| die(PROG, &format!("pipe: {e}")));
    let mut b = [0u8; 1];
    let _ = r.read(&mut b);
    die(PROG, "read returned from a pipe nobody else can write")
}

fn waitid(code: u64) {
    let child = Command::new(me())
        .args(["exit", &code.to_string()])
        .spawn()
        .unwrap_or_else(|e| die(PROG, &format!("spawn: {e}")));
    let pid = child.id();
    let mut info = [0u8; 128];
    // SAFETY: waitid(P_PID, pid, &info, WEXITED, NULL) writes at most the
    // 128 bytes of `info`.
    let r = unsafe {
        mobius_test_programs::sys::syscall5(247, 1, pid as usize, info.as_mut_ptr() as usize, 4, 0)
    };
    if r != 0 {
        die(PROG, &format!("waitid: {r}"));
    }
    let word = |at: usize| i32::from_le_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    let pid_ok = if word(16) as u32 == pid { "pid-ok" } else { "pid-wrong" };
    println!(
        "spawn: waitid signo {} code {} status {} {pid_ok}",
        word(0),
        word(8),
        word(24)
    );
    drop(child);
}
