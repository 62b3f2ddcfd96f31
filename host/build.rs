//! Builds the guest kernel (`mobius-guest`, target `x86_64-unknown-none`) and
//! hands its path to the host crate, which embeds it with `include_bytes!`.
//!
//! The guest is built by a nested `cargo build` with an environment cleaned of
//! everything the outer build would leak into it (RUSTFLAGS, target dir, build
//! target, profile overrides...), in its own target directory next to the outer
//! one (`<target>/guest`), so that it is built once per checkout rather than once
//! per host profile.
//!
//! `MOBIUS_GUEST_ELF=<path>` skips the nested build and embeds that file
//! instead (for packaging a prebuilt kernel).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "x86_64-unknown-none";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-env-changed=MOBIUS_GUEST_ELF");
    let elf = match env::var_os("MOBIUS_GUEST_ELF") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            path
        }
        None => build_guest(&workspace, &out_dir),
    };

    let embedded = out_dir.join("mobius-guest.elf");
    if let Err(e) = std::fs::copy(&elf, &embedded) {
        fail(&format!(
            "cannot copy guest kernel {} to {}: {e}",
            elf.display(),
            embedded.display()
        ));
    }
    println!(
        "cargo:rustc-env=MOBIUS_GUEST_ELF_PATH={}",
        embedded.display()
    );
}

fn build_guest(workspace: &Path, out_dir: &Path) -> PathBuf {
    for p in [
        "guest",
        "shared",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }

    // OUT_DIR is <target>[/<triple>]/<profile>/build/mobius-<hash>/out. Keep
    // the guest build in <target>/guest, whether or not the host build names
    // its target (.cargo/config.toml does).
    let guest_target_dir = guest_target_dir(out_dir);

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "-p",
            "mobius-guest",
            "--release",
            "--target",
            GUEST_TARGET,
        ])
        .arg("--target-dir")
        .arg(&guest_target_dir);
    // Drop everything the outer cargo exports to build scripts or reads from the
    // environment that must not reach the guest build. CARGO_HOME stays (registry).
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let leaks = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTC_LINKER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
                    | "LLVM_PROFILE_FILE"
            );
        if leaks {
            cmd.env_remove(key);
        }
    }

    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => fail(&format!("cannot run cargo to build the guest kernel: {e}")),
    };
    if !status.success() {
        // The nested cargo has already printed the guest's errors on stderr,
        // which cargo shows for a failed build script.
        fail(&format!(
            "building the guest kernel failed ({status}); see the errors above \
             (`cargo build -p mobius-guest --release --target {GUEST_TARGET}` reproduces them; \
             MOBIUS_GUEST_ELF=<path> embeds a prebuilt kernel instead)"
        ));
    }
    guest_target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join("mobius-guest")
}

/// `<target>/guest` for an OUT_DIR of `<target>[/<triple>]/<profile>/build/<pkg>/out`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    let Some(profile_parent) = out_dir.ancestors().nth(4) else {
        return out_dir.join("guest");
    };
    let triple = env::var("TARGET").unwrap_or_default();
    let target_dir = match profile_parent.parent() {
        Some(up) if !triple.is_empty() && profile_parent.ends_with(&triple) => up,
        _ => profile_parent,
    };
    target_dir.join("guest")
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
