//! `--disk` and `--disk-fail`: every bad value gives one `mobius: error:`
//! line and status 66 (`BAD_DISK`), checked before KVM is opened (so these
//! need no /dev/kvm); good disks boot under the seccomp filter (the disk
//! workers start, are confined and end) with no warning but the injected
//! failures of the guest's boot-time read of sector 0. The requests
//! themselves are tested against guest memory in
//! `host/src/devices/virtio/block_tests.rs`; the guest's driver and file
//! system in `disk_fs_vm.rs`.

mod common;

use common::{assert_error, kvm_or_skip, run, stderr, stdout, Scratch};
use mobius_shared::exit::host;

fn disks() -> (Scratch, String, String) {
    let s = Scratch::new();
    let a = s.write("a.img", &[0u8; 8192]);
    let b = s.write("b.img", &[7u8; 512]);
    let a = a.to_str().unwrap().to_string();
    let b = b.to_str().unwrap().to_string();
    (s, a, b)
}

#[test]
fn bad_disk_values_give_one_line_and_their_status() {
    let (s, good, _) = disks();
    let missing = s.path().join("missing.img");
    let missing = missing.to_str().unwrap();
    let odd = s.write("odd.img", &[0u8; 1000]);
    let odd = odd.to_str().unwrap();
    let dir = s.path().to_str().unwrap();
    let unknown = format!("{good},rx");
    let cases: [(&[&str], &str); 8] = [
        (&["--disk", missing], "No such file"),
        (&["--disk", dir], "not a regular file"),
        (&["--disk", odd], "1000 bytes, is not a multiple of 512"),
        (&["--disk", &unknown], "unknown disk option 'rx'"),
        (&["--disk", ""], "non-empty PATH"),
        (
            &[
                "--disk", &good, "--disk", &good, "--disk", &good, "--disk", &good,
            ],
            "4 disks given; at most 3",
        ),
        (
            &["--disk", &good, "--disk-fail", "5-2"],
            "range 5-2 is empty",
        ),
        (
            &["--disk", &good, "--disk-fail", "x"],
            "not a sector number",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        assert_error(&run(&all), host::BAD_DISK, needle);
        // `mobius stat` takes the same options, with the same answers.
        let mut all = vec!["stat"];
        all.extend_from_slice(args);
        all.extend(["--", "hello"]);
        assert_error(&run(&all), host::BAD_DISK, needle);
    }
}

#[test]
fn rw_on_a_file_that_cannot_be_written() {
    let (s, _, _) = disks();
    let ro = s.write("ro.img", &[0u8; 512]);
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&ro).is_ok() {
        // root writes read-only files.
        eprintln!("SKIP: a read-only file is writable here (root)");
        return;
    }
    let spec = format!("{},rw", ro.to_str().unwrap());
    assert_error(
        &run(&["run", "--disk", &spec]),
        host::BAD_DISK,
        "cannot be opened for writing",
    );
    // Read-only, it is fine (the run itself then needs KVM).
    let o = run(&[
        "run",
        "--disk",
        ro.to_str().unwrap(),
        "--kvm-device",
        "/nonexistent",
    ]);
    assert_error(&o, host::KVM_UNAVAILABLE, "does not exist");
}

#[test]
fn usage_errors_stay_usage_errors() {
    let (_s, good, _) = disks();
    assert_error(&run(&["run", "--disk-fail", "3"]), host::USAGE, "--disk");
    assert_error(
        &run(&["stat", "-r", "2", "--disk", &good, "--", "hello"]),
        host::USAGE,
        "-r N > 1",
    );
}

#[test]
fn disks_are_checked_before_kvm_is_opened() {
    let (s, _, _) = disks();
    let missing = s.path().join("missing.img");
    let o = run(&[
        "run",
        "--disk",
        missing.to_str().unwrap(),
        "--kvm-device",
        "/nonexistent",
    ]);
    assert_error(&o, host::BAD_DISK, "missing.img");
}

#[test]
fn a_run_with_disks_under_the_filter_ends_cleanly() {
    if !kvm_or_skip("a_run_with_disks_under_the_filter_ends_cleanly") {
        return;
    }
    let (_s, a, b) = disks();
    let rw = format!("{b},rw");
    for args in [
        vec!["run", "--disk", &a, "--disk", &rw, "--disk-fail", "0-3"],
        vec!["run", "--disk", &a, "--boot", "pvh"],
        vec![
            "run",
            "--disk",
            &a,
            "--disk",
            &a,
            "--disk",
            &rw,
            "--cmdline",
            "workload=exit code=3",
        ],
    ] {
        let o = run(&args);
        let err = stderr(&o);
        let want = if args.contains(&"workload=exit code=3") {
            3
        } else {
            0
        };
        assert_eq!(o.status.code(), Some(want), "{args:?}: {err}");
        // The guest reads sector 0 of each disk at boot: with `--disk-fail
        // 0-3` that read fails, one warning per disk.
        let injected = err
            .lines()
            .filter(|l| l.ends_with("1 read failure injected"));
        let want_injected = if args.contains(&"--disk-fail") { 2 } else { 0 };
        assert_eq!(injected.count(), want_injected, "{args:?}: {err}");
        let mut others = err
            .lines()
            .filter(|l| !l.ends_with("read failure injected"));
        assert!(
            !err.contains("error") && !others.any(|l| l.contains("disk")),
            "{args:?}: {err}"
        );
    }
    let o = run(&["stat", "--disk", &a, "--", "hello"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Hello"), "{}", stdout(&o));
    // The files are as they were.
    assert_eq!(std::fs::read(&b).unwrap(), vec![7u8; 512]);
}
