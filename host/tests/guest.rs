//! The real guest kernel (bundled in the `mobius` binary) under KVM: the
//! workloads the guest offers for testing the launcher, in both boot modes,
//! and the same ELF under QEMU microvm when QEMU is installed.

mod common;

use std::io::Write;
use std::process::Command;

use common::{kvm_or_skip, run, stderr, stdout, Scratch};
use mobius_shared::exit::{host, GuestStatus};

fn guest(cmdline: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--cmdline", cmdline];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn bundled_kernel_is_an_x86_64_elf_with_a_pvh_note() {
    use mobius::boot::image::KernelImage;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    let k = mobius::BUNDLED_KERNEL;
    assert_eq!(&k[..4], b"\x7fELF");
    let mut image = KernelImage::bytes(k);
    let info = mobius::boot::elf::check("bundled", &image, 128 << 20)
        .expect("bundled kernel passes the checks");
    assert!(info.entry >= mobius_shared::layout::KERNEL_MIN_ADDR);
    let memory = || {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 128 << 20)]).expect("guest memory")
    };
    let mem = memory();
    let loaded =
        mobius::boot::elf::load("bundled", &mut image, &info, &mem, 128 << 20).expect("loads");
    assert!(
        loaded.pvh_entry.is_some(),
        "no PVH entry note (Xen note type 18)"
    );

    // The same kernel from a file (read by offset, not whole) loads the same bytes.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("guest.elf");
    std::fs::write(&path, k).expect("write the kernel");
    let mut file = KernelImage::open(&path).expect("open the kernel");
    let from_file = mobius::boot::elf::check("file", &file, 128 << 20).expect("checks");
    assert_eq!(from_file, info);
    let mem2 = memory();
    let loaded2 =
        mobius::boot::elf::load("file", &mut file, &from_file, &mem2, 128 << 20).expect("loads");
    assert_eq!(loaded2, loaded);
    let start = mobius_shared::layout::KERNEL_MIN_ADDR;
    let len = usize::try_from(info.end - start).expect("kernel size");
    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
    mem.read_slice(&mut a, GuestAddress(start)).expect("read");
    mem2.read_slice(&mut b, GuestAddress(start)).expect("read");
    assert!(a == b, "the file and the bundled image load differently");
}

#[test]
fn hello_in_both_boot_modes() {
    if !kvm_or_skip("hello_in_both_boot_modes") {
        return;
    }
    for mode in ["long", "pvh"] {
        let o = guest("workload=hello", &["--boot", mode]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{mode}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).to_lowercase().contains("hello"),
            "{mode}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn default_run_is_hello() {
    if !kvm_or_skip("default_run_is_hello") {
        return;
    }
    let o = run(&["run"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).to_lowercase().contains("hello"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn hello_with_small_and_large_memory() {
    if !kvm_or_skip("hello_with_small_and_large_memory") {
        return;
    }
    for mem in ["16M", "1G", "3G"] {
        let o = guest("workload=hello", &["--memory", mem]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{mem}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn exit_status_propagates() {
    if !kvm_or_skip("exit_status_propagates") {
        return;
    }
    for code in [0, 1, 42, 63] {
        let o = guest(&format!("workload=exit code={code}"), &[]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "code={code}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn guest_exception_gives_diagnostic_and_status() {
    if !kvm_or_skip("guest_exception_gives_diagnostic_and_status") {
        return;
    }
    for mode in ["long", "pvh"] {
        let o = guest("workload=fault", &["--boot", mode]);
        let out = stdout(&o).to_lowercase();
        assert_eq!(
            o.status.code(),
            Some(GuestStatus::Exception.code() as i32),
            "{mode}: {out}{}",
            stderr(&o)
        );
        assert!(
            out.contains("rip"),
            "{mode}: no RIP in the diagnostic: {out}"
        );
    }
}

#[test]
fn triple_fault_is_a_crash() {
    if !kvm_or_skip("triple_fault_is_a_crash") {
        return;
    }
    let o = guest("workload=triple-fault", &[]);
    assert_eq!(
        o.status.code(),
        Some(host::GUEST_CRASH),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stderr(&o).contains("rip="), "{}", stderr(&o));
}

#[test]
fn spinning_guest_times_out() {
    if !kvm_or_skip("spinning_guest_times_out") {
        return;
    }
    let o = guest("workload=spin", &["--timeout", "500ms"]);
    assert_eq!(
        o.status.code(),
        Some(host::TIMEOUT),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stderr(&o).contains("--timeout 500ms"), "{}", stderr(&o));
}

/// QEMU's isa-debug-exit turns status v into (v << 1) | 1.
#[test]
fn same_elf_boots_under_qemu_microvm() {
    let qemu = "qemu-system-x86_64";
    let present = Command::new(qemu)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        if std::env::var("MOBIUS_REQUIRE_QEMU").as_deref() == Ok("1") {
            panic!("{qemu} not found but MOBIUS_REQUIRE_QEMU=1");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: {qemu} not installed (same_elf_boots_under_qemu_microvm)"
        );
        return;
    }
    let s = Scratch::new();
    let elf = s.write("mobius-guest.elf", mobius::BUNDLED_KERNEL);
    let accel = if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
    {
        "kvm"
    } else {
        "tcg"
    };
    let o = Command::new("timeout")
        .args([
            "120", qemu, "-M", "microvm", "-accel", accel, "-m", "128M", "-kernel",
        ])
        .arg(&elf)
        .args([
            "-append",
            "workload=exit code=5",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
        ])
        .output()
        .expect("run qemu");
    assert_eq!(
        o.status.code(),
        Some((5 << 1) | 1),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}
