//! The guest reads a real disk (issue 10 items 2-3): its virtio-blk driver
//! (sector 0 read at boot, completions by interrupt) and the first disk's
//! ext4 file system at `/mnt`, read-only. Each test builds an image at test
//! time without root (`mkfs.ext4 -d DIR`) and runs busybox `sh -c` scripts
//! on it in the guest: files, directories, links, a 1 MiB file's checksum,
//! programs stored on the disk, `statfs`; a corrupt superblock or inode and
//! `--disk-fail` sectors give `EIO` (or SIGBUS on a mapped page) and the
//! run still ends normally.
//!
//! busybox and e2fsprogs are not part of the project: `.ci/run` installs
//! them. Without `/bin/busybox`, `mkfs.ext4` or `debugfs` these tests skip,
//! or fail when `MOBIUS_REQUIRE_KVM=1` (CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::programs::program;
use common::{kvm_or_skip, mobius, stderr, stdout, Scratch};

const BUSYBOX: &str = "/bin/busybox";
const BIG: usize = 1 << 20;

/// Whether everything the tests need is here; else skip (or fail in CI).
fn ready(test: &str) -> bool {
    if !kvm_or_skip(test) {
        return false;
    }
    let missing: Vec<&str> = [BUSYBOX, "mkfs.ext4", "debugfs"]
        .into_iter()
        .filter(|t| !found(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("MOBIUS_REQUIRE_KVM").as_deref() == Ok("1") {
        panic!("{test}: missing {missing:?} (install busybox-static and e2fsprogs)");
    }
    eprintln!("{test}: skipped: no {missing:?}");
    false
}

fn found(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    ["/sbin", "/usr/sbin", "/bin", "/usr/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// The 1 MiB file's bytes: a pattern no block repeats.
fn big_pattern() -> Vec<u8> {
    (0..BIG).map(|i| (i * 7 + i / 4096) as u8).collect()
}

/// An 8 MiB ext4 image of a directory holding `hello.txt`, `sub/a.txt`,
/// `link -> hello.txt`, `big.bin` (1 MiB), `bin/busybox` and
/// `bin/readfile` (a test program).
fn image(scratch: &Scratch) -> PathBuf {
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::write(root.join("hello.txt"), "hello from ext4\n").expect("write");
    std::fs::write(root.join("sub/a.txt"), "inner\n").expect("write");
    std::fs::write(root.join("big.bin"), big_pattern()).expect("write");
    std::os::unix::fs::symlink("hello.txt", root.join("link")).expect("symlink");
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    std::fs::copy(program("readfile"), root.join("bin/readfile")).expect("copy readfile");
    let img = scratch.path().join("disk.ext4");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-d"])
        .arg(&root)
        .args(["-b", "4096"])
        .arg(&img)
        .arg("8M")
        .output()
        .expect("run mkfs.ext4");
    assert!(out.status.success(), "mkfs.ext4: {}", stderr(&out));
    img
}

/// `script` under busybox sh in the guest with `img` as its disk and
/// `extra` options (before `--`).
fn guest(img: &Path, extra: &[&str], script: &str) -> Output {
    mobius()
        .args(["run", "--timeout", "120s", "--disk"])
        .arg(img)
        .args(extra)
        .arg("--")
        .arg(BUSYBOX)
        .args(["sh", "-c", script])
        .output()
        .expect("run mobius")
}

fn explain(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The driver finds the disk at its window and reads sector 0 at boot
/// (polled).
#[test]
fn driver_reads_sector_zero() {
    if !ready("driver_reads_sector_zero") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let bytes = std::fs::read(&img).expect("read image");
    let o = guest(&img, &[], "cat /proc/disks");
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let out = stdout(&o);
    let want = format!(
        "disk0 base 0xd0001000 vector 64 sectors 16384 ro sector0 {:016x} ",
        fnv1a(&bytes[..512])
    );
    assert!(out.starts_with(&want), "want {want:?}\n{}", explain(&o));
    assert!(out.contains("failed 0 bad-used 0 "), "{}", explain(&o));
}

