//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod elf;
pub mod expected;
pub mod perf_stat;
pub mod programs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A run's status, standard output and standard error, for assertion
/// messages.
pub fn explain(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// The `mobius` binary under test.
pub fn mobius() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mobius"))
}

/// Whether /dev/kvm can be used. When it cannot: print a visible SKIP line
/// (written to the real stderr, past the test harness's capture) and return
/// false, or fail the test when MOBIUS_REQUIRE_KVM=1.
pub fn kvm_or_skip(test: &str) -> bool {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if usable {
        return true;
    }
    if std::env::var("MOBIUS_REQUIRE_KVM").as_deref() == Ok("1") {
        panic!("{test}: /dev/kvm not available but MOBIUS_REQUIRE_KVM=1");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: /dev/kvm not available ({test})");
    false
}

/// Run `mobius` with `args`, with a safety timeout so a broken test cannot hang.
pub fn run(args: &[&str]) -> Output {
    let mut cmd = mobius();
    cmd.args(args);
    if args.first() == Some(&"run") && !args.contains(&"--timeout") {
        cmd.args(["--timeout", "60s"]);
    }
    cmd.output().expect("spawn mobius")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert a setup error: the given status and exactly one `mobius: error:`
/// line on stderr containing `needle`, and no panic.
pub fn assert_error(o: &Output, status: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(status), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    assert!(lines[0].starts_with("mobius: error: "), "stderr: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

/// A temporary directory holding generated kernels.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    pub fn kernel(&self, name: &str, spec: &elf::ElfSpec) -> PathBuf {
        self.write(name, &spec.build())
    }
}

/// Run `mobius stat ARGS` (ARGS without the `stat`) with `-o FILE`: the
/// process output and what FILE then holds.
pub fn stat_to_file(args: &[&str]) -> (Output, String) {
    let scratch = Scratch::new();
    let path = scratch.path().join("stat.out");
    let path_text = path.to_str().expect("UTF-8 temp path");
    let mut all = vec!["stat", "-o", path_text];
    all.extend_from_slice(args);
    let o = run(&all);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (o, text)
}
