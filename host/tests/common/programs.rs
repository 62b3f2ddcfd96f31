//! The real Linux test programs of `tests/programs/` (static x86-64: Rust for
//! musl, C for glibc), built by `tests/programs/build.sh` into
//! `<target dir>/programs`, once per test process. build.sh takes a lock on
//! its output directory, so test binaries running at once build it once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of the built program `name`: a Rust program by its `src/bin` name
/// (`hello`, `touch`, ...), a C one as `c-<name>` (`c-hello`, `c-cat`).
/// Builds them all on first use; panics with the build's output if that
/// failed or if there is no program of that name.
pub fn program(name: &str) -> PathBuf {
    let dir = match built() {
        Ok(dir) => dir,
        Err(e) => panic!("building tests/programs failed:\n{e}"),
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "no test program {name:?} in {}",
        dir.display()
    );
    path
}

/// The output directory, after build.sh ran there (or why it failed).
fn built() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ lives in the workspace");
        let script = workspace.join("tests/programs/build.sh");
        let out = target_dir(workspace).join("programs");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(&out).current_dir(workspace);
        // What this test's own cargo exported must not steer the nested
        // build (build.sh also pins the flags and target directory).
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
        ] {
            cmd.env_remove(var);
        }
        match cmd.output() {
            Ok(o) if o.status.success() => Ok(out),
            Ok(o) => Err(format!(
                "{} {} exited with {}\n--- stdout\n{}--- stderr\n{}",
                script.display(),
                out.display(),
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run bash {}: {e}", script.display())),
        }
    })
}

/// The workspace's target directory: the `mobius` binary under test is in
/// `<target>[/<triple>]/<profile>/`; the triple level, when there, is a
/// directory whose parent holds cargo's CACHEDIR.TAG.
fn target_dir(workspace: &Path) -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_mobius"));
    let Some(up) = exe.parent().and_then(Path::parent) else {
        return workspace.join("target");
    };
    match up.parent() {
        Some(top) if top.join("CACHEDIR.TAG").is_file() => top.to_path_buf(),
        _ => up.to_path_buf(),
    }
}
