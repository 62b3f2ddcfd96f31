//! Processes under KVM: programs that start programs (`posix_spawn` in musl
//! and glibc: a `clone(CLONE_VM | CLONE_VFORK)` child that `execve`s),
//! wait for them (`wait4`), talk through pipes, run threads (`clone`
//! with `CLONE_THREAD`, futexes), sleep, and end in every way a process
//! can: its exit status, killed by a fault, left running when the first
//! process exits, or stuck in a deadlock the kernel reports.

mod common;

use std::process::Output;

use common::expected;
use common::programs::program;
use common::{kvm_or_skip, mobius, stderr, stdout};

/// `mobius run --file hello:/bin/hello [extra] -- PROGRAM args`.
fn run(extra: &[&str], name: &str, args: &[&str]) -> Output {
    let hello = format!("{}:/bin/hello", program("hello").display());
    let mut cmd = mobius();
    cmd.arg("run")
        .args(["--timeout", "120s", "--file", &hello])
        .args(extra)
        .arg("--")
        .arg(program(name))
        .args(args);
    cmd.output().expect("run mobius")
}

fn status(o: &Output) -> Option<i32> {
    o.status.code()
}

fn explain(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o))
}

#[test]
fn a_child_exit_status_reaches_the_parent() {
    if !kvm_or_skip("a_child_exit_status_reaches_the_parent") {
        return;
    }
    let o = run(&[], "spawn", &["status", "7"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "spawn: child exited with 7\n");
}

#[test]
fn a_child_output_comes_through_a_pipe_to_end_of_file() {
    if !kvm_or_skip("a_child_output_comes_through_a_pipe_to_end_of_file") {
        return;
    }
    let o = run(&[], "spawn", &["capture", "/bin/hello", "a", "b"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "child: hello, world\nchild: argv[1]=a\nchild: argv[2]=b\nspawn: child exited with 0\n"
    );
}

#[test]
fn waitid_reports_a_child_as_siginfo() {
    if !kvm_or_skip("waitid_reports_a_child_as_siginfo") {
        return;
    }
    let o = run(&[], "spawn", &["waitid", "5"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "spawn: waitid signo 17 code 1 status 5 pid-ok\n"
    );
}

#[test]
fn many_children_run_one_after_another() {
    if !kvm_or_skip("many_children_run_one_after_another") {
        return;
    }
    let o = run(&[], "spawn", &["run", "20", "/bin/hello"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "spawn: 20 runs of /bin/hello ok\n");
}

#[test]
fn spawning_a_missing_program_is_enoent() {
    if !kvm_or_skip("spawning_a_missing_program_is_enoent") {
        return;
    }
    let o = run(&[], "spawn", &["missing"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "spawn: missing program: ENOENT ok\n");
}

#[test]
fn a_child_killed_by_a_fault_is_reported_to_its_parent() {
    if !kvm_or_skip("a_child_killed_by_a_fault_is_reported_to_its_parent") {
        return;
    }
    let o = run(&[], "spawn", &["killed"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "spawn: child killed by signal 11\n");
    assert!(
        stderr(&o).contains("mobius: process 2 (/bin/spawn) killed: write to read-only page"),
        "{}",
        explain(&o)
    );
}

#[test]
fn threads_share_memory_and_are_joined() {
    if !kvm_or_skip("threads_share_memory_and_are_joined") {
        return;
    }
    let o = run(&[], "threads", &["4", "2000"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    // Each thread t adds i * (t + 1) for i < 2000: 1999000 * (1+2+3+4).
    assert_eq!(
        stdout(&o),
        "threads: 4 threads, counter 8000, sum 19990000\n"
    );
}

#[test]
fn a_thread_sleeps_and_wakes() {
    if !kvm_or_skip("a_thread_sleeps_and_wakes") {
        return;
    }
    let o = run(&[], "threads", &["sleep", "30"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "threads: slept\n");
}

#[test]
fn glibc_posix_spawn_pipes_and_pthreads() {
    if !kvm_or_skip("glibc_posix_spawn_pipes_and_pthreads") {
        return;
    }
    let o = run(&[], "c-spawn", &["/bin/hello", "x"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "read 23 bytes\nchild: hello, world\nchild: argv[1]=x\nexit 0\nthreads 2 counter 20000\n"
    );
}

#[test]
fn the_run_ends_with_the_first_process() {
    if !kvm_or_skip("the_run_ends_with_the_first_process") {
        return;
    }
    let threads = format!("{}:/bin/threads", program("threads").display());
    // The child would sleep for 100 s; the run must not wait for it.
    let o = run(
        &["--file", &threads],
        "spawn",
        &["orphan", "/bin/threads", "sleep", "100000"],
    );
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "spawn: started 2, not waiting\n");
}

#[test]
fn a_deadlock_is_reported_and_ended() {
    if !kvm_or_skip("a_deadlock_is_reported_and_ended") {
        return;
    }
    let o = run(&[], "spawn", &["deadlock"]);
    assert_eq!(status(&o), Some(137), "{}", explain(&o));
    assert!(
        stderr(&o).contains("mobius: deadlock: every thread of processes [1] is blocked"),
        "{}",
        explain(&o)
    );
}

/// The value of `event` in `mobius stat -x ,` output.
fn csv_count(err: &str, event: &str) -> u64 {
    err.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == event)
        .and_then(|f| f[0].parse().ok())
        .unwrap_or_else(|| panic!("no {event} in:\n{err}"))
}

/// Issue 13: 100 forked children each write their own copy of a 1 MiB
/// buffer (every byte checked by the child, the parent's copy checked at
/// the end), and `mobius stat` counts the copy-on-write faults: at least
/// one per page each child wrote.
#[test]
fn a_hundred_forked_children_write_their_own_copies() {
    if !kvm_or_skip("a_hundred_forked_children_write_their_own_copies") {
        return;
    }
    let o = mobius()
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "faults.cow,faults.cow-reuse,faults.shared",
        ])
        .args(["--", program("forks").to_str().expect("utf-8")])
        .args(["100", "1024"])
        .output()
        .expect("run mobius");
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "forks: 100 children, 1024 KiB each, all bytes right\n"
    );
    let err = stderr(&o);
    let cow = csv_count(&err, "faults.cow");
    let reuse = csv_count(&err, "faults.cow-reuse");
    assert!(cow + reuse >= 100 * 256, "cow {cow} + reuse {reuse}\n{err}");
    assert!(csv_count(&err, "faults.shared") >= 100 * 256, "{err}");
}

/// Issue 13 item 2 (`chdir`, `getcwd`, `umask`): the working directory is
/// the process's, relative paths start there, and its errors are Linux's.
#[test]
fn the_working_directory_is_the_processes() {
    if !kvm_or_skip("the_working_directory_is_the_processes") {
        return;
    }
    let o = run(&[], "cwd", &["/bin", "hello"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "cwd: now /bin\n\
         cwd: hello relative: some bytes\n\
         cwd: after .. /\n\
         cwd: missing directory Err(Some(2))\n\
         cwd: a file Err(Some(20))\n\
         cwd: umask 22 then 77\n"
    );
}

/// Issue 13 item 2: signal handlers run (glibc's `sigaction`, `raise`,
/// `rt_sigreturn`): a handler for the caller's own signal, a blocked one
/// delivered when unblocked, SIGCHLD from a forked child, SIGPIPE with
/// EPIPE; the interrupted code's registers and FP state survive.
#[test]
fn signal_handlers_run_and_return() {
    if !kvm_or_skip("signal_handlers_run_and_return") {
        return;
    }
    let o = run(&[], "c-signals", &[]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "usr1 1, double 3.00\nblocked: usr1 still 1\nunblocked: usr1 2\n\
         restart: read 1 'y', usr2 1\n\
         chld 1, exit 3\npipe: write -1 EPIPE, handler 1\nsignals: all ok\n"
    );
}

/// Issue 13 item 4: `c-harness` prints under KVM what it prints natively
/// (`programs_native.rs`): mremap (moves keep contents), msync, mlock,
/// a glibc thread (clone3 refused, clone used), ITIMER_REAL and alarm,
/// pause, SIGSEGV/SIGFPE/SIGILL handlers with si_code and si_addr, a fault
/// in its own handler killing, a stack overflow caught on the alternate
/// stack, nested handlers, wait4 made again after SIGCHLD (SA_RESTART),
/// SysV shared memory with a fork child and an exec'd process (frames back
/// after IPC_RMID and the last detach), MAP_SHARED across fork.
#[test]
fn harness_calls_behave_as_on_linux() {
    if !kvm_or_skip("harness_calls_behave_as_on_linux") {
        return;
    }
    let o = run(&[], "c-harness", &[]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), expected::HARNESS, "{}", explain(&o));
}

/// 150 live processes at once, each blocked reading a pipe: the scheduler
/// must not walk every thread on each switch and timer tick. Before it
/// kept its sleepers apart, ~100 such children left no time for ring 3
/// (each tick's walk outlasted the slice) and the run never ended.
#[test]
fn many_blocked_children_leave_the_parent_its_time() {
    if !kvm_or_skip("many_blocked_children_leave_the_parent_its_time") {
        return;
    }
    let o = run(&[], "c-forkwait", &["150"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "forkwait: 150 children, 150 reaped, 150 cleanly\n",
        "{}",
        explain(&o)
    );
}

/// A fork bomb in a small guest (16 MiB: a 4 MiB kernel heap) fills the
/// kernel heap with processes: past the heap's reserve `fork` fails with
/// ENOMEM instead of the kernel panicking, and every child still exits
/// and is reaped.
#[test]
fn a_fork_bomb_gets_enomem_and_the_kernel_goes_on() {
    if !kvm_or_skip("a_fork_bomb_gets_enomem_and_the_kernel_goes_on") {
        return;
    }
    let o = run(&["--memory", "16M"], "c-forkwait", &["max"]);
    assert_eq!(status(&o), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "forkwait: fork failed with ENOMEM after 100+ children; all reaped cleanly\n",
        "{}",
        explain(&o)
    );
}
