//! The virtio-blk device (`mobius::devices::virtio::block`) driven by a
//! hostile guest: any sequence of register accesses, notifications and
//! writes to guest memory (descriptor table, available ring, headers,
//! buffers), as the tests in host/src/devices/virtio/block_tests.rs set a
//! queue up, against a small disk file that is read-only or read-write,
//! with or without `--disk-fail` ranges. The device is the real one with
//! its worker's work done on the notifying thread (`BlockDevice::inline`),
//! so that each input replays the same way.
//!
//! Checked: nothing panics; nothing is read or written outside guest RAM
//! (ASan, and guard pages: guest RAM is three regions, two of them
//! contiguous in the guest but not in the host, each between `PROT_NONE`
//! pages); the disk file keeps its size; a read-only disk keeps its bytes;
//! the file never fails a request (every request the device lets through
//! to `pread64`/`pwrite64` lies inside the file).
#![no_main]

use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mobius::devices::virtio::block::{BlockDevice, Irq, VirtioBlock};
use mobius::devices::virtio::disk::{DiskConfig, DiskImage, FailRange};
use mobius::devices::virtio::mmio::*;
use mobius::devices::MmioDevice;
use vm_memory::mmap::MmapRegion;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, GuestRegionMmap};

/// Guest RAM: `[0, 64 KiB)` (two host mappings of 32 KiB, apart in the
/// host) and `[96 KiB, 128 KiB)`; small, so that random addresses often
/// land in it, and with a hole.
const REGIONS: [(u64, usize); 3] = [(0, 0x8000), (0x8000, 0x8000), (0x18000, 0x8000)];
/// Addresses the inputs name: `Near` ones fall in `[0, 2 * 64 KiB)`.
const NEAR: u64 = 0x20000;
const PAGE: usize = 4096;
/// Largest disk: 16 sectors.
const MAX_SECTORS: u64 = 16;

/// Guest memory, made once: each region in its own host mapping with a
/// `PROT_NONE` page on either side.
fn memory() -> &'static GuestMemoryMmap {
    static MEM: OnceLock<GuestMemoryMmap> = OnceLock::new();
    MEM.get_or_init(|| {
        let regions = REGIONS
            .iter()
            .map(|&(guest, size)| {
                let total = size + 2 * PAGE;
                // SAFETY: a fresh private anonymous mapping, never unmapped
                // (it lives as long as the process); only its middle is
                // made accessible.
                let base = unsafe {
                    let p = libc::mmap(
                        std::ptr::null_mut(),
                        total,
                        libc::PROT_NONE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    );
                    assert_ne!(p, libc::MAP_FAILED, "mmap");
                    let inner = p.cast::<u8>().add(PAGE);
                    let rc = libc::mprotect(inner.cast(), size, libc::PROT_READ | libc::PROT_WRITE);
                    assert_eq!(rc, 0, "mprotect");
                    inner
                };
                // SAFETY: `base..base + size` is mapped read-write for the
                // life of the process and used by nothing else.
                let region = unsafe {
                    MmapRegion::build_raw(
                        base,
                        size,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    )
                }
                .expect("region");
                GuestRegionMmap::new(region, GuestAddress(guest)).expect("guest region")
            })
            .collect();
        GuestMemoryMmap::from_regions(regions).expect("guest memory")
    })
}

/// A guest address: mostly near RAM, sometimes anywhere.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    /// Page-aligned, in `[0, 128 KiB)`: where rings may go.
    Page(u8),
    Near(u16),
    Far(u64),
}

impl Addr {
    fn get(self) -> u64 {
        match self {
            Addr::Page(p) => u64::from(p) % 32 * 0x1000,
            Addr::Near(a) => u64::from(a) * 2 % NEAR,
            Addr::Far(a) => a,
        }
    }
}

/// A queue size: a valid one (a power of two up to 128) or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Pow2(u8),
    Any(u16),
}

impl Size {
    fn get(self) -> u16 {
        match self {
            Size::Pow2(k) => 1 << (k % 8),
            Size::Any(n) => n,
        }
    }
}

/// The features the driver accepts: those offered, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Features {
    Offered,
    Any(u32, u32),
}

#[derive(Arbitrary, Debug)]
enum Kind {
    In,
    Out,
    Flush,
    GetId,
    Other(u32),
}

impl Kind {
    fn get(&self) -> u32 {
        match self {
            Kind::In => blk::T_IN,
            Kind::Out => blk::T_OUT,
            Kind::Flush => blk::T_FLUSH,
            Kind::GetId => blk::T_GET_ID,
            Kind::Other(k) => *k,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The driver's initialisation up to DRIVER_OK, with the request queue
    /// of `size` entries at these guest addresses.
    Setup {
        size: Size,
        desc: Addr,
        avail: Addr,
        used: Addr,
        features: Features,
    },
    /// The same, as a driver does it: offered features, a queue of
    /// `2^(size % 8)` entries at fixed addresses in RAM.
    GoodSetup { size: u8 },
    /// Any register write (offset in words).
    Write { reg: u8, value: u32 },
    /// Any access of any size at any offset of the window.
    Raw { offset: u16, len: u8, write: bool },
    /// A register read.
    Read { reg: u8 },
    /// `QUEUE_NOTIFY` with any queue index.
    Notify { queue: u32 },
    /// Guest memory at `addr` overwritten (where it is RAM).
    Poke { addr: Addr, bytes: Vec<u8> },
    /// Descriptor `index` of the table set up last.
    Desc {
        index: u8,
        addr: Addr,
        len: u32,
        flags: u16,
        next: u16,
    },
    /// A request header at `addr`.
    Header { addr: Addr, kind: Kind, sector: u64 },
    /// A request as a driver builds one, in descriptors `first..`: the
    /// header, `segments` data descriptors of `sectors` sectors each
    /// (device-writable for a read, `segments % 36` of `sectors % 20`
    /// sectors), the status byte; the header at 0x7000, the status at
    /// 0x7100 unless the fuzzer says otherwise. Offered and notified.
    Request {
        first: u8,
        kind: Kind,
        sector: u8,
        segments: u8,
        sectors: u8,
        data: Addr,
        /// Where the status byte goes; `None`: in RAM.
        status: Option<Addr>,
        writable_data: bool,
    },
    /// Put `head` on the available ring set up last and notify queue 0.
    Offer { head: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    writable: bool,
    sectors: u8,
    /// `--disk-fail` ranges (first, last) in sectors.
    fail: Vec<(u8, u8)>,
    ops: Vec<Op>,
}

/// Where the driver put its queue.
#[derive(Default)]
struct Driver {
    desc: u64,
    avail: u64,
    size: u16,
    avail_idx: u16,
}

struct CountingIrq(Arc<AtomicUsize>);

impl Irq for CountingIrq {
    fn trigger(&self) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed);
        true
    }
}

fn reg(dev: &mut VirtioBlock, offset: u64, v: u32) {
    dev.write(offset, &v.to_le_bytes());
}

fn read_reg(dev: &mut VirtioBlock, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.read(offset, &mut b);
    u32::from_le_bytes(b)
}

/// The driver's initialisation up to DRIVER_OK, with the request queue of
/// `size` entries at `(desc, avail, used)`; where the driver put it.
fn setup(dev: &mut VirtioBlock, size: u16, rings: (u64, u64, u64), features: Features) -> Driver {
    let (desc, avail, used) = rings;
    reg(dev, STATUS, 0);
    reg(dev, STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    let (features_lo, features_hi) = match features {
        Features::Offered => {
            reg(dev, DEVICE_FEATURES_SEL, 0);
            let lo = read_reg(dev, DEVICE_FEATURES);
            reg(dev, DEVICE_FEATURES_SEL, 1);
            (lo, read_reg(dev, DEVICE_FEATURES))
        }
        Features::Any(lo, hi) => (lo, hi),
    };
    reg(dev, DRIVER_FEATURES_SEL, 0);
    reg(dev, DRIVER_FEATURES, features_lo);
    reg(dev, DRIVER_FEATURES_SEL, 1);
    reg(dev, DRIVER_FEATURES, features_hi);
    reg(
        dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    reg(dev, QUEUE_SEL, 0);
    reg(dev, QUEUE_NUM, u32::from(size));
    reg(dev, QUEUE_DESC_LOW, desc as u32);
    reg(dev, QUEUE_DESC_HIGH, (desc >> 32) as u32);
    reg(dev, QUEUE_DRIVER_LOW, avail as u32);
    reg(dev, QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
    reg(dev, QUEUE_DEVICE_LOW, used as u32);
    reg(dev, QUEUE_DEVICE_HIGH, (used >> 32) as u32);
    reg(dev, QUEUE_READY, 1);
    reg(
        dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    Driver {
        desc,
        avail,
        size,
        avail_idx: 0,
    }
}

fn write_desc(
    mem: &GuestMemoryMmap,
    d: &Driver,
    index: u16,
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..16].copy_from_slice(&next.to_le_bytes());
    let at = d
        .desc
        .wrapping_add(16 * (u64::from(index) % u64::from(d.size.max(1))));
    let _ = mem.write_slice(&b, GuestAddress(at));
}

fn offer(mem: &GuestMemoryMmap, dev: &mut VirtioBlock, d: &mut Driver, head: u16) {
    let slot = d
        .avail
        .wrapping_add(4 + 2 * u64::from(d.avail_idx % d.size.max(1)));
    let _ = mem.write_obj(head, GuestAddress(slot));
    d.avail_idx = d.avail_idx.wrapping_add(1);
    let _ = mem.write_obj(d.avail_idx, GuestAddress(d.avail.wrapping_add(2)));
    reg(dev, QUEUE_NOTIFY, 0);
}

/// The disk's bytes: every sector differs.
fn pattern(sectors: u64) -> Vec<u8> {
    (0..sectors * 512)
        .map(|i| (i / 512 + i % 251) as u8)
        .collect()
}

fn disk_file(bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("mobius-fuzz-blk-{}.img", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("disk file");
    f.write_all(bytes).expect("write disk file");
    path
}

fuzz_target!(|input: Input| {
    let mem = memory();
    for &(guest, size) in &REGIONS {
        mem.write_slice(&vec![0u8; size], GuestAddress(guest))
            .expect("inside RAM");
    }
    let sectors = u64::from(input.sectors) % (MAX_SECTORS + 1);
    let before = pattern(sectors);
    let path = disk_file(&before);
    let fail = input
        .fail
        .iter()
        .take(3)
        .map(|&(a, b)| FailRange {
            first: u64::from(a.min(b)),
            last: if b == u8::MAX {
                u64::MAX
            } else {
                u64::from(a.max(b))
            },
        })
        .collect();
    let config = DiskConfig {
        path: path.clone(),
        writable: input.writable,
        root: false,
        fail,
    };
    let image = Arc::new(DiskImage::open(&config).expect("open the disk"));
    // Our own handle, to look at the file afterwards.
    let check = std::fs::File::open(&path).expect("reopen the disk");
    let _ = std::fs::remove_file(&path);

    let irqs = Arc::new(AtomicUsize::new(0));
    let device = BlockDevice::inline(
        0,
        image,
        mem.clone(),
        Box::new(CountingIrq(Arc::clone(&irqs))),
    )
    .expect("device");
    let counters = device.counters();
    let mut dev = VirtioBlock::with_device(device, mem.clone());
    let mut driver = Driver::default();
    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Setup {
                size,
                desc,
                avail,
                used,
                features,
            } => {
                driver = setup(
                    &mut dev,
                    size.get(),
                    (desc.get(), avail.get(), used.get()),
                    features,
                )
            }
            Op::GoodSetup { size } => {
                let size = Size::Pow2(size).get();
                driver = setup(&mut dev, size, (0x1000, 0x2000, 0x3000), Features::Offered)
            }
            Op::Write { reg: r, value } => reg(&mut dev, u64::from(r) * 4, value),
            Op::Raw { offset, len, write } => {
                let mut buf = vec![0xa5u8; usize::from(len % 9)];
                if write {
                    dev.write(u64::from(offset), &buf);
                } else {
                    dev.read(u64::from(offset), &mut buf);
                }
            }
            Op::Read { reg: r } => {
                read_reg(&mut dev, u64::from(r) * 4);
            }
            Op::Notify { queue } => reg(&mut dev, QUEUE_NOTIFY, queue),
            Op::Poke { addr, bytes } => {
                let _ = mem.write_slice(&bytes, GuestAddress(addr.get()));
            }
            Op::Desc {
                index,
                addr,
                len,
                flags,
                next,
            } => write_desc(mem, &driver, u16::from(index), addr.get(), len, flags, next),
            Op::Header { addr, kind, sector } => {
                let mut h = [0u8; 16];
                h[..4].copy_from_slice(&kind.get().to_le_bytes());
                h[8..].copy_from_slice(&sector.to_le_bytes());
                let _ = mem.write_slice(&h, GuestAddress(addr.get()));
            }
            Op::Request {
                first,
                kind,
                sector,
                segments,
                sectors,
                data,
                status,
                writable_data,
            } => {
                let first = u16::from(first);
                let hdr = 0x7000u64;
                let mut h = [0u8; 16];
                h[..4].copy_from_slice(&kind.get().to_le_bytes());
                h[8..].copy_from_slice(&u64::from(sector).to_le_bytes());
                let _ = mem.write_slice(&h, GuestAddress(hdr));
                let n = u16::from(segments % 36);
                let len = u32::from(sectors % 20) * 512;
                let data_flags = if writable_data { DESC_F_WRITE } else { 0 };
                write_desc(
                    mem,
                    &driver,
                    first,
                    hdr,
                    16,
                    DESC_F_NEXT,
                    first.wrapping_add(1),
                );
                for i in 0..n {
                    let at = data.get().wrapping_add(u64::from(i) * u64::from(len));
                    let d = first.wrapping_add(1 + i);
                    write_desc(
                        mem,
                        &driver,
                        d,
                        at,
                        len,
                        DESC_F_NEXT | data_flags,
                        d.wrapping_add(1),
                    );
                }
                write_desc(
                    mem,
                    &driver,
                    first.wrapping_add(1 + n),
                    status.map_or(0x7100, Addr::get),
                    1,
                    DESC_F_WRITE,
                    0,
                );
                offer(mem, &mut dev, &mut driver, first);
            }
            Op::Offer { head } => offer(mem, &mut dev, &mut driver, head),
        }
    }
    drop(dev);

    let c = counters.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        c.io_errors, 0,
        "a request reached the file and failed: {c:?}"
    );
    let len = check.metadata().expect("metadata").len();
    assert_eq!(len, sectors * 512, "the disk file changed size");
    if !input.writable {
        let mut after = vec![0u8; before.len()];
        check.read_exact_at(&mut after, 0).expect("read back");
        assert!(after == before, "a read-only disk changed");
    }
});
