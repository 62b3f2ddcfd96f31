//! Issue 12 items 1 and 2 under KVM: a guest that floods the host with
//! statistics frames, unknown port and MMIO writes, console lines, bad
//! virtio descriptors or hostile virtio-blk requests (issue 10 item 8) for
//! 2 s of its time leaves the host's peak RSS under a small fixed bound
//! (these floods touch no guest RAM, or a few pages), and the host's
//! diagnostics about it to a few lines.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{kvm_or_skip, mobius};

/// The host's own memory, whatever the guest sends: a few MiB of code,
/// guest-RAM bookkeeping and the bounded state of the stats and device
/// paths (README, "Bounds on what a guest can make the host do").
const HOST_BOUND_KIB: u64 = 16 * 1024;

/// Peak RSS (VmHWM) of a running process, in KiB.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn floods_leave_host_memory_and_output_bounded() {
    if !kvm_or_skip("floods_leave_host_memory_and_output_bounded") {
        return;
    }
    // flood-disk's read-only disk: 64 sectors, every one different.
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = dir.path().join("disk.img");
    let bytes: Vec<u8> = (0..64 * 512u32)
        .map(|i| (i / 512 + i % 251) as u8)
        .collect();
    std::fs::write(&disk, &bytes).expect("write disk");
    for kind in ["stats", "ports", "mmio", "console", "descriptors", "disk"] {
        let mut cmd = mobius();
        cmd.args(["run", "--timeout", "60s"]);
        if kind == "disk" {
            cmd.arg("--disk").arg(&disk);
        }
        let mut child = cmd
            .arg("--cmdline")
            .arg(format!("workload=flood-{kind} ms=2000"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mobius");
        let pid = child.id();
        let mut peak = 0;
        while child.try_wait().expect("wait").is_none() {
            if let Some(p) = peak_rss(pid) {
                peak = peak.max(p);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = child.wait_with_output().expect("output");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "flood-{kind}: {err}");
        assert!(peak > 0, "flood-{kind}: no RSS sample");
        assert!(
            peak <= HOST_BOUND_KIB,
            "flood-{kind}: peak RSS {peak} KiB over {HOST_BOUND_KIB} KiB"
        );
        assert!(
            err.lines().count() <= 4,
            "flood-{kind}: unbounded diagnostics:\n{err}"
        );
        if kind == "disk" {
            // One line at the end, counts only.
            let warnings: Vec<&str> = err
                .lines()
                .filter(|l| l.starts_with("mobius: warning: disk 0 "))
                .collect();
            assert_eq!(warnings.len(), 1, "flood-disk: {err}");
            assert!(warnings[0].contains(" bad requests (first: "), "{err}");
            let after = std::fs::read(&disk).expect("read disk");
            assert!(after == bytes, "flood-disk: the read-only disk changed");
        }
    }
}
