//! Seed corpora for the fuzz targets, made from real inputs with the
//! project's own encoders: the guest kernel ELF bundled in `mobius` (cut
//! down to its headers), real statistics frames (`Snapshot::encode`, with
//! and without histograms and the process block), real command lines and
//! boot parameters blocks, and real initramfs archives (`ArchiveSpec`, the
//! code of `mobius pack`). Nothing here is committed: `make fuzz` runs
//! `cargo run --example seeds -- fuzz/corpus` first.
//!
//! Usage: `seeds CORPUS_DIR` writes `CORPUS_DIR/<target>/seed-<name>`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use mobius::boot::initramfs::{ArchiveSpec, FileSpec, Initramfs};
use mobius_shared::boot_params::{BootParams, LEN};
use mobius_shared::cmdline::BootOptions;
use mobius_shared::procstats::{EnosysCount, ProcessBlock, ProcessRecord};
use mobius_shared::stats::{FaultKind, Snapshot, SnapshotReason, MAX_FRAME_LEN};

struct Corpus(PathBuf);

impl Corpus {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A real ELF cut down to its headers and notes: the ELF header and the
/// program headers, then each `PT_NOTE`'s bytes; each `PT_LOAD` keeps its
/// addresses and sizes in memory but reads at most what the small file
/// holds, from an offset congruent to its address modulo 4096.
fn shrink_elf(elf: &[u8]) -> Vec<u8> {
    let phoff = u64_at(elf, 32) as usize;
    let phnum = usize::from(u16_at(elf, 56));
    let table_end = phoff + 56 * phnum;
    let mut out = elf[..table_end].to_vec();
    for i in 0..phnum {
        let ph = phoff + 56 * i;
        if u32_at(elf, ph) == 4 {
            let (off, size) = (u64_at(elf, ph + 8) as usize, u64_at(elf, ph + 32) as usize);
            let at = out.len();
            out.extend_from_slice(&elf[off..off + size]);
            put64(&mut out, ph + 8, at as u64);
        }
    }
    let len = out.len() as u64;
    for i in 0..phnum {
        let ph = phoff + 56 * i;
        if u32_at(&out, ph) == 1 {
            let off = u64_at(&out, ph + 8) % 4096 % len;
            let filesz = u64_at(&out, ph + 32).min(len - off);
            put64(&mut out, ph + 8, off);
            put64(&mut out, ph + 32, filesz);
        }
    }
    out
}

/// The smallest executable: one `PT_LOAD` holding the headers and the entry.
fn tiny_elf(e_type: u16, vaddr: u64) -> Vec<u8> {
    let mut f = vec![0u8; 64 + 56 + 16];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4..7].copy_from_slice(&[2, 1, 1]);
    f[16..18].copy_from_slice(&e_type.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    put64(&mut f, 24, vaddr + 120);
    put64(&mut f, 32, 64);
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&1u16.to_le_bytes());
    let ph = 64;
    f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
    f[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R X
    put64(&mut f, ph + 16, vaddr);
    put64(&mut f, ph + 24, vaddr);
    put64(&mut f, ph + 32, 136);
    put64(&mut f, ph + 40, 0x2000);
    put64(&mut f, ph + 48, 0x1000);
    f[120..122].copy_from_slice(&[0xeb, 0xfe]); // jmp .
    f
}

fn elf_seeds(c: &Corpus) -> Vec<u8> {
    let kernel = shrink_elf(mobius::BUNDLED_KERNEL);
    c.put("kernel_elf", "guest-kernel", &kernel);
    c.put("kernel_elf", "tiny", &tiny_elf(2, 0x10_0000));
    c.put("guest_elf", "guest-kernel", &kernel);
    c.put("guest_elf", "tiny-exec", &tiny_elf(2, 0x40_0000));
    c.put("guest_elf", "tiny-pie", &tiny_elf(3, 0));
    let mut pie = kernel.clone();
    pie[16] = 3; // ET_DYN: the static-pie path
    c.put("guest_elf", "guest-kernel-pie", &pie);
    kernel
}

fn cmdline_seeds(c: &Corpus) {
    let lines = [
        "workload=hello",
        "workload=seq-touch pages=100 run_id=7 stats_interval_ms=10 summary=1",
        "test=vmm tsc_khz=2596000 discard=1 virtio_mmio.device=4K@0xd0000000:5",
        "console=ttyS0 quiet workload=exit code=3 workload=hello é=ü ==",
    ];
    for (i, user) in lines.iter().enumerate() {
        let mut plain = vec![0u8];
        plain.extend_from_slice(user.as_bytes());
        c.put("cmdline", &format!("line-{i}"), &plain);
        // As `mobius` hands it over: its block, then the whole line.
        let block = BootParams {
            tsc_khz: 2_596_000,
            discard: true,
            console: true,
            xstate: true,
            stdin: true,
            user_cmdline_len: user.len() as u32,
            virtio: [0xd000_0000, 0, 0, 0],
            virtio_len: 1,
            options: BootOptions::parse(user).to_parsed(user),
        }
        .encode();
        assert_eq!(block.len(), LEN);
        let mut with = vec![1u8];
        with.extend_from_slice(&block);
        with.extend_from_slice(
            format!("{user} tsc_khz=2596000 discard=1 virtio_mmio.device=4K@0xd0000000:5")
                .as_bytes(),
        );
        c.put("cmdline", &format!("block-{i}"), &with);
    }
}

fn snapshot(histograms: bool, processes: bool) -> Snapshot {
    let mut s = Snapshot::new(7, 2_596_000);
    s.seq = 2;
    s.reason = SnapshotReason::Exit;
    s.tsc = 9_000_000;
    s.tsc_boot = 1_000;
    s.tsc_ready = 2_000;
    s.faults[FaultKind::DemandZero.index()].count = 100;
    s.faults[FaultKind::DemandZero.index()].cycles = 250_000;
    s.faults[FaultKind::Cow.index()].count = 3;
    if histograms {
        s.faults[FaultKind::DemandZero.index()].histogram[11] = 100;
        s.faults[FaultKind::Cow.index()].histogram[13] = 3;
    }
    s.frames.total = 32_000;
    s.frames.free = 31_000;
    s.nodes.nodes = 12;
    if processes {
        let mut b = ProcessBlock {
            syscalls: 40,
            enosys: 2,
            n_enosys: 1,
            ..ProcessBlock::default()
        };
        b.enosys_numbers[0] = EnosysCount { nr: 435, count: 2 };
        for pid in 1..=2 {
            let mut r = ProcessRecord {
                pid,
                parent: pid - 1,
                status: if pid == 1 { 0 } else { u32::MAX },
                syscalls: 20,
                enosys: 1,
                faults: 50,
                cpu_cycles: 1 << 20,
                ..ProcessRecord::default()
            };
            r.set_name("/bin/hello");
            b.push(r);
        }
        s.processes = Some(b);
    }
    s
}

fn stats_seeds(c: &Corpus) {
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let mut serial = vec![7u8]; // piece-size seed of stats_serial
    serial.extend_from_slice(b"hello from the guest\n");
    for (name, h, p) in [
        ("plain", false, false),
        ("histograms", true, false),
        ("processes", false, true),
        ("full", true, true),
    ] {
        let frame = snapshot(h, p).encode(&mut buf).expect("fits").to_vec();
        c.put("stats_frame", name, &frame);
        if p {
            let block_at = frame.len() - snapshot(h, p).processes.expect("block").wire_len();
            c.put("stats_frame", &format!("{name}-block"), &frame[block_at..]);
        }
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let line = format!("{}{hex}\n", mobius::stats::SERIAL_PREFIX);
        let mut one = vec![0u8];
        one.extend_from_slice(line.as_bytes());
        c.put("stats_serial", name, &one);
        if !h {
            serial.extend_from_slice(line.as_bytes());
            serial.extend_from_slice(b"mobius-st\n");
        }
    }
    // A version-3 frame: ten kinds, no process block.
    let mut v3 = snapshot(false, false);
    v3.faults[FaultKind::Cow.index()] = Default::default();
    let frame = v3.encode(&mut buf).expect("fits");
    let mut f3 = frame[..128 + 16 * FaultKind::COUNT_V3].to_vec();
    f3[4] = 3;
    c.put("stats_frame", "v3", &f3);
    c.put("stats_serial", "console", &serial);
}

/// A newc archive with the members given, in order: (name, mode, nlink,
/// data), written as `cpio -H newc` (or `-H crc` with `crc`) would.
fn newc(members: &[(&str, u32, u32, &[u8])], crc: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer: (&str, u32, u32, &[u8]) = ("TRAILER!!!", 0, 1, b"");
    for (ino, &(name, mode, nlink, data)) in members.iter().chain([&trailer]).enumerate() {
        let check = if crc && mode & 0o170_000 == 0o100_000 {
            data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)))
        } else {
            0
        };
        out.extend_from_slice(if crc { b"070702" } else { b"070701" });
        let fields = [
            ino as u32 + 1,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            check,
        ];
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    out
}

fn cpio_seeds(c: &Corpus, program: &[u8]) {
    // `mobius pack -o out.cpio --file notes.txt:/etc/ --env HOME=/ -- ./hello a b`
    let dir = std::env::temp_dir().join(format!("mobius-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let prog = dir.join("hello");
    let notes = dir.join("notes.txt");
    std::fs::write(&prog, program).expect("write program");
    std::fs::write(&notes, b"a file the program reads\n").expect("write file");
    let spec = ArchiveSpec {
        program: vec![
            prog.clone().into(),
            OsString::from("a"),
            OsString::from("b"),
        ],
        files: vec![FileSpec {
            host: notes.clone(),
            guest: "/etc/notes.txt".into(),
        }],
        env: vec!["HOME=/".into(), "TERM=dumb".into()],
        initrd: None,
        program_on_disk: false,
        misplaced_root: None,
    };
    let packed = spec.build_archive().expect("mobius pack");
    std::fs::remove_dir_all(&dir).expect("clean up");

    let by_hand = newc(
        &[
            (".", 0o040_755, 2, b""),
            ("./bin", 0o040_755, 2, b""),
            ("./bin/sh", 0o100_755, 2, b"#!shell"),
            ("./bin/link", 0o100_755, 2, b""),
            ("lib//x/", 0o120_777, 1, b"../bin/sh"),
            ("/etc/motd", 0o100_644, 1, b"hello\n"),
        ],
        false,
    );
    let crc = newc(
        &[
            ("etc", 0o040_755, 2, b""),
            ("etc/passwd", 0o100_644, 1, b"root:x:0:0::/:/bin/sh\n"),
        ],
        true,
    );
    // Two archives one after the other, the first padded to 512 bytes.
    let mut two = by_hand.clone();
    two.resize(two.len().next_multiple_of(512), 0);
    two.extend_from_slice(&crc);
    // An --initrd archive with the host's entries after it.
    let mut with_base = Initramfs::from_archive(&crc).expect("a valid base");
    with_base
        .add_file("/bin/hello", b"\x7fELF", 0o755)
        .expect("add");
    let with_base = with_base.finish();

    for (name, bytes) in [
        ("pack", &packed),
        ("by-hand", &by_hand),
        ("crc", &crc),
        ("two-archives", &two),
        ("initrd-and-host", &with_base),
    ] {
        c.put("guest_cpio", name, bytes);
        c.put("initramfs", name, bytes);
    }
}

/// Record frames as the guest sends them: empty and final, one record,
/// and a full frame of every kind, access and area.
fn record_seeds(c: &Corpus) {
    use mobius_shared::record::{FaultRecord, FrameHeader, MAX_RECORDS_PER_FRAME};
    for (name, n, last) in [("empty-final", 0u32, true), ("one", 1, false), ("full", MAX_RECORDS_PER_FRAME as u32, false)] {
        let h = FrameHeader {
            last,
            seq: 0,
            count: n,
            dropped: 3,
            seen: 1000,
            tsc_khz: 2_596_000,
            sample: 1,
            ring: 4096,
        };
        let mut frame = h.to_bytes().to_vec();
        for i in 0..n {
            let r = FaultRecord {
                tsc: 1_000_000 + u64::from(i) * 977,
                addr: 0x5555_5555_4000 + u64::from(i) * 4096 + 8,
                rip: if i % 3 == 0 { 0 } else { 0x5555_5555_e9cb },
                area_base: 0x5555_5555_4000,
                cycles: 1_500_000,
                pid: 1 + i % 4,
                kind: (i % FaultKind::COUNT as u32) as u8,
                access: (i % 128) as u8,
                area_type: (i % 6) as u8,
                area_flags: (i % 8) as u8,
            };
            frame.extend_from_slice(&r.to_bytes());
        }
        c.put("record_frame", name, &frame);
    }
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("fuzz/corpus").to_path_buf());
    let c = Corpus(dir);
    let kernel = elf_seeds(&c);
    cmdline_seeds(&c);
    stats_seeds(&c);
    record_seeds(&c);
    cpio_seeds(&c, &kernel);
    println!("seeds written to {}", c.0.display());
}
