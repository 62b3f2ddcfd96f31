//! A real shell in the guest (issue 13): Debian's static busybox runs
//! `sh -c` scripts as Möbius processes (fork with copy-on-write, pipes,
//! `execve` of applets through `/proc/self/exe`, `#!` scripts, signals),
//! writing into the guest's in-memory `/tmp`. Each script prints the same
//! bytes natively (busybox with its applets first on `PATH`, in a scratch
//! directory) and in the guest (in `/tmp`); the scratch directory is the
//! script's `$1`.
//!
//! busybox is not part of the project: `.ci/run` installs `busybox-static`.
//! Without `/bin/busybox` these tests skip, or fail when
//! `MOBIUS_REQUIRE_KVM=1` (CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{explain, kvm_or_skip, mobius, stderr, stdout, Scratch};

const BUSYBOX: &str = "/bin/busybox";

/// busybox, or `None` (skip) where it is missing and CI does not insist.
fn busybox(test: &str) -> Option<PathBuf> {
    if !kvm_or_skip(test) {
        return None;
    }
    let p = PathBuf::from(BUSYBOX);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("MOBIUS_REQUIRE_KVM").as_deref() == Ok("1") {
        panic!("{test}: {BUSYBOX} missing (install busybox-static)");
    }
    eprintln!("{test}: skipped: no {BUSYBOX}");
    None
}

/// `script` natively: busybox sh with only busybox applets on `PATH`.
fn native(bb: &Path, script: &str) -> (Output, Scratch) {
    let scratch = Scratch::new();
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let ok = Command::new(bb)
        .args(["--install", "-s"])
        .arg(&bin)
        .status()
        .expect("busybox --install");
    assert!(ok.success(), "busybox --install -s failed");
    let work = scratch.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    let out = Command::new(bb)
        .env_clear()
        .env("PATH", &bin)
        .args(["sh", "-c", script, "sh"])
        .arg(&work)
        .output()
        .expect("run busybox natively");
    (out, scratch)
}

/// `script` in the guest, with `/tmp` as its scratch directory.
fn guest(bb: &Path, script: &str) -> Output {
    mobius()
        .args(["run", "--timeout", "120s", "--"])
        .arg(bb)
        .args(["sh", "-c", script, "sh", "/tmp"])
        .output()
        .expect("run mobius")
}

/// `script` prints `want` with status 0, natively and in the guest.
fn same_as_native(test: &str, script: &str, want: &str) {
    let Some(bb) = busybox(test) else { return };
    let (n, _scratch) = native(&bb, script);
    assert_eq!(stdout(&n), want, "natively: {}", explain(&n));
    assert_eq!(n.status.code(), Some(0), "natively: {}", explain(&n));
    let g = guest(&bb, script);
    assert_eq!(stdout(&g), want, "in the guest: {}", explain(&g));
    assert_eq!(g.status.code(), Some(0), "in the guest: {}", explain(&g));
}

#[test]
fn a_pipeline_of_three_commands() {
    same_as_native(
        "a_pipeline_of_three_commands",
        "seq 1 300 | sort -rn | head -n 3",
        "300\n299\n298\n",
    );
}

#[test]
fn a_for_loop_and_arithmetic() {
    same_as_native(
        "a_for_loop_and_arithmetic",
        "t=0; for i in 1 2 3 4; do echo \"item $i\"; t=$((t + i)); done; echo \"sum $t\"",
        "item 1\nitem 2\nitem 3\nitem 4\nsum 10\n",
    );
}

#[test]
fn command_substitution() {
    same_as_native(
        "command_substitution",
        "n=$(seq 1 50 | wc -l); echo \"lines=$n\"; echo \"nested=$(echo $(echo deep | tr a-z A-Z))\"",
        "lines=50\nnested=DEEP\n",
    );
}

#[test]
fn redirection_into_the_scratch_directory() {
    same_as_native(
        "redirection_into_the_scratch_directory",
        "cd \"$1\" && echo one > f && echo two >> f && cat < f && wc -c < f && \
         seq 1 5 > g 2>&1 && sort -rn g | head -n 1 && ls",
        "one\ntwo\n8\n5\nf\ng\n",
    );
}

#[test]
fn files_directories_and_links() {
    same_as_native(
        "files_directories_and_links",
        "cd \"$1\" && mkdir -p d/e && echo x > d/e/f && mv d/e/f g && rm -r d && \
         ln -s g h && ln g i && cat h i && readlink h && ls && \
         truncate -s 3 g && wc -c < g && rm g h i && ls | wc -l",
        "x\nx\ng\ng\nh\ni\n3\n0\n",
    );
}

#[test]
fn a_script_with_an_interpreter_line() {
    same_as_native(
        "a_script_with_an_interpreter_line",
        "printf '#!/bin/busybox sh\\necho \"script $1\"\\n' > \"$1/s\" && chmod +x \"$1/s\" && \
         \"$1/s\" ran && echo \"status $?\"",
        "script ran\nstatus 0\n",
    );
}

#[test]
fn exit_statuses_subshells_and_traps() {
    same_as_native(
        "exit_statuses_subshells_and_traps",
        "(exit 3); echo \"status=$?\"; false || echo or; true && echo and; \
         (echo sub; exit 0) | cat; trap 'echo trapped' EXIT; echo body",
        "status=3\nor\nand\nsub\nbody\ntrapped\n",
    );
}

#[test]
fn a_background_job_killed_and_waited_for() {
    same_as_native(
        "a_background_job_killed_and_waited_for",
        "sleep 10 & kill $!; wait $!; echo \"killed=$?\"; (echo bg) & wait; echo done",
        "killed=143\nbg\ndone\n",
    );
}

/// What only the guest shows: its mounts, `/proc`, a read-only root.
#[test]
fn the_guest_namespace() {
    let test = "the_guest_namespace";
    let Some(bb) = busybox(test) else { return };
    let script = "stat -f -c %T /tmp; cat /proc/sys/kernel/pid_max; \
                  grep -c MemAvailable /proc/meminfo; readlink /proc/self/exe; \
                  cat /proc/mounts; ls /dev; echo x > /x || echo refused";
    let g = guest(&bb, script);
    assert_eq!(g.status.code(), Some(0), "{}", explain(&g));
    assert_eq!(
        stdout(&g),
        "tmpfs\n4194304\n1\n/bin/busybox\n\
         rootfs / rootfs ro 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n\
         devtmpfs /dev devtmpfs rw 0 0\nnull\nzero\nrefused\n",
        "{}",
        explain(&g)
    );
    assert!(
        stderr(&g).contains("Read-only file system"),
        "{}",
        explain(&g)
    );
}

/// `/proc/PID/cmdline` holds the arguments a program runs with: a `#!`
/// script's interpreter line comes first, as on Linux.
#[test]
fn proc_cmdline_of_a_script() {
    same_as_native(
        "proc_cmdline_of_a_script",
        "cd \"$1\" && printf '#!/bin/busybox sh\\ntr \"\\\\0\" \" \" < /proc/$$/cmdline\\n' > s && \
         chmod +x s && ./s a b && echo",
        "/bin/busybox sh ./s a b \n",
    );
}
