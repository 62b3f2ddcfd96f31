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
use common::{explain, kvm_or_skip, mobius, stderr, stdout, Scratch};

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

/// A 16 MiB ext4 image of a directory holding `hello.txt`, `sub/a.txt`,
/// `link -> hello.txt`, `big.bin` (1 MiB), `bin/busybox` and
/// `bin/readfile` and `bin/mapthreads` (test programs).
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
    std::fs::copy(program("c-mapthreads"), root.join("bin/mapthreads")).expect("copy mapthreads");
    let img = scratch.path().join("disk.ext4");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-d"])
        .arg(&root)
        .args(["-b", "4096"])
        .arg(&img)
        .arg("16M")
        .output()
        .expect("run mkfs.ext4");
    assert!(out.status.success(), "mkfs.ext4: {}", stderr(&out));
    img
}

/// What `debugfs -R REQUEST` prints about the image.
fn debugfs(img: &Path, request: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", request])
        .arg(img)
        .output()
        .expect("run debugfs");
    stdout(&out)
}

/// The 512-byte sectors of file `path`'s data blocks (4 KiB each).
fn data_sectors(img: &Path, path: &str) -> Vec<u64> {
    debugfs(img, &format!("blocks {path}"))
        .split_whitespace()
        .map(|b| b.parse::<u64>().expect("a block number") * 8)
        .collect()
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

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)))
}

/// The host's md5sum of `path` (busybox's applet).
fn md5(path: &Path) -> String {
    let out = Command::new(BUSYBOX)
        .arg("md5sum")
        .arg(path)
        .output()
        .expect("md5sum");
    stdout(&out)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// The driver finds the disk at its window, reads sector 0 at boot
/// (polled) and later requests complete by interrupt on vector 64.
#[test]
fn driver_reads_sector_zero_and_takes_interrupts() {
    if !ready("driver_reads_sector_zero_and_takes_interrupts") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let bytes = std::fs::read(&img).expect("read image");
    let o = guest(&img, &[], "cat /mnt/hello.txt >/dev/null; cat /proc/disks");
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let out = stdout(&o);
    let want = format!(
        "disk0 base 0xd0001000 vector 64 sectors {} ro sector0 {:016x} ",
        bytes.len() / 512,
        fnv1a(&bytes[..512])
    );
    assert!(out.starts_with(&want), "want {want:?}\n{}", explain(&o));
    let interrupts: u64 = out
        .split("interrupts ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("an interrupt count");
    assert!(interrupts > 0, "{}", explain(&o));
    assert!(out.contains("failed 0 bad-used 0 "), "{}", explain(&o));
    assert!(out.contains("ext4 errors 0\n"), "{}", explain(&o));
}

/// Files, directories, links and `statfs` of `/mnt`.
#[test]
fn reads_files_directories_and_links() {
    if !ready("reads_files_directories_and_links") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let script = "cat /mnt/hello.txt; ls /mnt/sub; readlink /mnt/link; cat /mnt/link; \
                  ls /mnt; stat -f -c %T /mnt; stat -c '%s %F' /mnt/big.bin /mnt/sub; \
                  grep /mnt /proc/mounts";
    let o = guest(&img, &[], script);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let want = "hello from ext4\na.txt\nhello.txt\nhello from ext4\n\
                big.bin\nbin\nhello.txt\nlink\nlost+found\nsub\next2/ext3\n\
                1048576 regular file\n4096 directory\next4 /mnt ext4 ro 0 0\n";
    assert_eq!(stdout(&o), want, "{}", explain(&o));
}

/// The 1 MiB file reads whole and equal to the host's, by `md5sum`, by a
/// test program stored on the disk (openat, fstat, read, lseek, pread64;
/// getdents64), and through a mapping (page faults reading the disk).
#[test]
fn big_file_and_programs_on_the_disk() {
    if !ready("big_file_and_programs_on_the_disk") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let host_md5 = md5(&scratch.path().join("root/big.bin"));
    let s = sum(&big_pattern());
    let script = "md5sum /mnt/big.bin; /mnt/bin/busybox echo ran-from-disk; \
                  /mnt/bin/readfile /mnt/big.bin /mnt/hello.txt; \
                  /mnt/bin/readfile --list /mnt/bin; /mnt/bin/readfile --mmap /mnt/big.bin";
    let o = guest(&img, &[], script);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let hello = sum(b"hello from ext4\n");
    let want = format!(
        "{host_md5}  /mnt/big.bin\nran-from-disk\n/mnt/big.bin: 1048576 bytes, sum {s}\n\
         /mnt/hello.txt: 16 bytes, sum {hello}\nbusybox\nmapthreads\nreadfile\n\
         /mnt/big.bin: 1048576 bytes mapped, sum {s}\n"
    );
    assert_eq!(stdout(&o), want, "{}", explain(&o));
}

/// `mobius run --disk IMG -- /bin/prog` (issue 10 item 5): a guest path
/// that is not a host file runs from the disk, mounted at `/`, its pages
/// read from the disk; `,root` does the same for a path the host also has;
/// the initramfs (with `--file`s) is at `/initrd`; a missing program is
/// status 127 with a clear line.
#[test]
fn programs_run_from_the_root_disk() {
    if !ready("programs_run_from_the_root_disk") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let run = |disk: &str, extra: &[&str], words: &[&str]| {
        mobius()
            .args(["run", "--timeout", "120s", "--disk", disk])
            .args(extra)
            .arg("--")
            .args(words)
            .output()
            .expect("run mobius")
    };
    let disk = img.to_str().expect("UTF-8 path");
    let o = run(disk, &[], &["/bin/readfile", "/hello.txt", "/big.bin"]);
    let hello = sum(b"hello from ext4\n");
    let s = sum(&big_pattern());
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        format!("/hello.txt: 16 bytes, sum {hello}\n/big.bin: 1048576 bytes, sum {s}\n"),
        "{}",
        explain(&o)
    );
    // /bin/busybox exists on this host too: ',root' says it is the disk's.
    let note = scratch.path().join("note.txt");
    std::fs::write(&note, "from the host\n").expect("write");
    let file = format!("{}:/note.txt", note.display());
    let script = "cat /hello.txt /initrd/note.txt; ls /; grep -c ' / ' /proc/mounts";
    let o = run(
        &format!("{disk},root"),
        &["--file", &file],
        &["/bin/busybox", "sh", "-c", script],
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("hello from ext4\nfrom the host\n"),
        "{}",
        explain(&o)
    );
    for name in [
        "big.bin",
        "bin",
        "dev",
        "hello.txt",
        "initrd",
        "proc",
        "sub",
        "tmp",
    ] {
        assert!(
            out.lines().any(|l| l.split_whitespace().any(|w| w == name)),
            "{name}: {out}"
        );
    }
    assert!(out.ends_with("\n1\n"), "one file system at /: {out}");
    // A program the disk does not have: 127, and the guest path named.
    let o = run(disk, &[], &["/bin/not-there"]);
    assert_eq!(o.status.code(), Some(127), "{}", explain(&o));
    assert!(stderr(&o).contains("/bin/not-there"), "{}", explain(&o));
    // ',root' on a disk that is not the first: a clear error, no boot.
    let o = run(
        disk,
        &["--disk", &format!("{disk},root")],
        &["/bin/busybox"],
    );
    assert_ne!(o.status.code(), Some(0), "{}", explain(&o));
    assert!(
        stderr(&o).contains("only the first --disk"),
        "{}",
        explain(&o)
    );
}

/// A superblock without its magic: the disk does not load, `/mnt` is a
/// directory whose lookups fail with EIO, the run ends normally.
#[test]
fn corrupt_superblock_gives_eio() {
    if !ready("corrupt_superblock_gives_eio") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let mut bytes = std::fs::read(&img).expect("read image");
    bytes[1024 + 0x38..1024 + 0x3a].copy_from_slice(&[0, 0]);
    std::fs::write(&img, bytes).expect("write image");
    let o = guest(&img, &[], "cat /mnt/hello.txt; echo status $?");
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "status 1\n", "{}", explain(&o));
    let err = stderr(&o);
    assert!(err.contains("Input/output error"), "{}", explain(&o));
    assert!(
        err.contains("not a readable ext4 file system"),
        "{}",
        explain(&o)
    );
    assert!(!err.contains("panic"), "{}", explain(&o));
}

/// One inode overwritten (its checksum no longer matches): opening that
/// file fails with EIO, the others still read, and the guest counts it.
#[test]
fn corrupt_inode_gives_eio_for_that_file() {
    if !ready("corrupt_inode_gives_eio_for_that_file") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    // "Inode 15 is part of block group 0\n\tlocated at block 34, offset 0x0e00"
    let imap = debugfs(&img, "imap /hello.txt");
    let block: u64 = imap
        .split("block ")
        .nth(2)
        .and_then(|s| s.split(',').next())
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or_else(|| panic!("debugfs imap: {imap}"));
    let offset = imap
        .rsplit("0x")
        .next()
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or_else(|| panic!("debugfs imap: {imap}"));
    let at = usize::try_from(block * 4096 + offset).expect("offset") + 0x28;
    let mut bytes = std::fs::read(&img).expect("read image");
    bytes[at..at + 32].fill(0xff); // i_block: the extent header and tree
    std::fs::write(&img, bytes).expect("write image");
    let script = "cat /mnt/hello.txt; echo status $?; cat /mnt/sub/a.txt; grep ext4 /proc/disks";
    let o = guest(&img, &[], script);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "status 1\ninner\next4 errors 1\n",
        "{}",
        explain(&o)
    );
    let err = stderr(&o);
    assert!(err.contains("Input/output error"), "{}", explain(&o));
    assert!(
        err.contains("/mnt: 1 reads failed with EIO"),
        "{}",
        explain(&o)
    );
}

/// `--disk-fail` on one file's sectors: reading it fails with EIO, other
/// files still read.
#[test]
fn failed_sectors_give_eio_for_that_file_only() {
    if !ready("failed_sectors_give_eio_for_that_file_only") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let sectors = data_sectors(&img, "/hello.txt");
    let first = *sectors.first().expect("hello.txt has a block");
    let range = format!("{first}-{}", first + 7);
    let script = "cat /mnt/hello.txt; echo status $?; cat /mnt/sub/a.txt; \
                  md5sum /mnt/big.bin >/dev/null && echo big ok";
    let o = guest(&img, &["--disk-fail", &range], script);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(stdout(&o), "status 1\ninner\nbig ok\n", "{}", explain(&o));
    let err = stderr(&o);
    assert!(err.contains("Input/output error"), "{}", explain(&o));
    assert!(err.contains("read failure"), "{}", explain(&o));
}

/// A mapped page whose sectors fail: the reading program is killed with
/// SIGBUS (status 135 in the shell), the shell goes on.
#[test]
fn failed_sectors_under_a_mapping_give_sigbus() {
    if !ready("failed_sectors_under_a_mapping_give_sigbus") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let sectors = data_sectors(&img, "/big.bin");
    let (first, last) = (sectors[1], *sectors.last().expect("blocks"));
    let range = format!("{first}-{}", last + 7);
    let script = "/mnt/bin/readfile --mmap /mnt/big.bin; echo status $?; cat /mnt/hello.txt";
    let o = guest(&img, &["--disk-fail", &range], script);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "status 135\nhello from ext4\n",
        "{}",
        explain(&o)
    );
    assert!(stderr(&o).contains("(SIGBUS)"), "{}", explain(&o));
}

/// The same guest drives QEMU's virtio-blk on `-M microvm` (modern
/// transport: `force-legacy=false`), polled: QEMU's completions go to an
/// IOAPIC line the guest does not program. Skips without QEMU unless
/// `MOBIUS_REQUIRE_QEMU=1`.
#[test]
fn qemu_microvm_disk_is_read_polled() {
    if !ready("qemu_microvm_disk_is_read_polled") {
        return;
    }
    let qemu = "qemu-system-x86_64";
    if !Command::new(qemu)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        if std::env::var("MOBIUS_REQUIRE_QEMU").as_deref() == Ok("1") {
            panic!("{qemu} not found but MOBIUS_REQUIRE_QEMU=1");
        }
        eprintln!("SKIP: {qemu} not installed (qemu_microvm_disk_is_read_polled)");
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let elf = scratch.write("mobius-guest.elf", mobius::BUNDLED_KERNEL);
    let cpio = scratch.path().join("init.cpio");
    let script = "grep -o 'vector polled' /proc/disks; cat /mnt/hello.txt; ls /mnt/sub";
    let packed = mobius()
        .args(["pack", "-o"])
        .arg(&cpio)
        .args(["--", BUSYBOX, "sh", "-c", script])
        .output()
        .expect("mobius pack");
    assert!(packed.status.success(), "{}", explain(&packed));
    let drive = format!(
        "id=d0,file={},format=raw,if=none,readonly=on",
        img.display()
    );
    let o = Command::new("timeout")
        .args(["120", qemu, "-M", "microvm", "-accel", "kvm", "-m", "128M"])
        .arg("-kernel")
        .arg(&elf)
        .arg("-initrd")
        .arg(&cpio)
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .args(["-global", "virtio-mmio.force-legacy=false"])
        .args(["-drive", &drive, "-device", "virtio-blk-device,drive=d0"])
        .output()
        .expect("run qemu");
    let out = stdout(&o);
    assert!(
        out.contains("vector polled\nhello from ext4\na.txt\n"),
        "{}",
        explain(&o)
    );
    // A program's status 0 is written as 0x100: QEMU exits with 1.
    assert_eq!(o.status.code(), Some(1), "{}", explain(&o));
}

/// Spec rows 18–19 with real I/O: four threads fault on the same pages of
/// a disk file at once, two by loads and two through the kernel's copy
/// from user memory (`write` to a pipe); a fault that finds its page being
/// read sleeps until a read completes and looks again, and every thread
/// reads the right bytes. (Whether two faults meet one read depends on the
/// scheduling; the test checks the bytes and that no copy fails.)
#[test]
fn threads_faulting_on_a_page_being_read_wait_for_it() {
    if !ready("threads_faulting_on_a_page_being_read_wait_for_it") {
        return;
    }
    let scratch = Scratch::new();
    let img = image(&scratch);
    let o = guest(&img, &[], "/mnt/bin/mapthreads /mnt/big.bin 4");
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert_eq!(
        stdout(&o),
        "mapthreads: 4 threads, 256 pages, sums agree\n",
        "{}",
        explain(&o)
    );
}
