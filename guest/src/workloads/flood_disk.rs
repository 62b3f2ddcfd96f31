//! `flood-disk`: a hostile guest driving the first disk's virtio-mmio
//! window (issue 10 item 8, issue 12): for `ms=` it takes the device from
//! the kernel's driver and sends it, round after round, requests no
//! driver would: buffers outside RAM, lengths that lie, sectors past the
//! end, writes and flushes of a read-only disk, unknown types, loops in
//! descriptor chains, chains longer than the queue, status descriptors
//! that are not writable, buffers over the rings, descriptors rewritten
//! while the host reads them, wrong head indices and available indices,
//! notifications of queues that are not there, and queues of wrong sizes
//! at wrong addresses. The host must answer or drop each, count it, and
//! go on (`host/tests/floods.rs`).
//!
//! What it sent is counted per case and printed at the end with what came
//! back: `flood-disk: N requests, N set-ups; statuses: ok N, ioerr N,
//! unsupp N, unanswered N`.
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::read_volatile;
use core::sync::atomic::{fence, Ordering};

use crate::arch::x86_64::{cpu, direct, tsc};
use crate::dev::mmio::Regs;
use crate::dev::virtio_blk;
use crate::println;
use mobius_shared::virtio_mmio::blk::{S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_GET_ID, T_IN, T_OUT};
use mobius_shared::virtio_mmio::{
    DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, DEVICE_ID_BLOCK, DRIVER_FEATURES,
    DRIVER_FEATURES_SEL, F_VERSION_1, QUEUE_DESC_LOW, QUEUE_DEVICE_LOW, QUEUE_DRIVER_LOW,
    QUEUE_NOTIFY, QUEUE_NUM, QUEUE_READY, QUEUE_SEL, STATUS, STATUS_ACKNOWLEDGE, STATUS_DRIVER,
    STATUS_DRIVER_OK, STATUS_FEATURES_OK,
};

/// The queue this flood sets up (the device's largest).
const QSIZE: u16 = 128;
const PAGE: usize = 4096;
/// The area's layout (offsets from its page-aligned start).
const DESC: usize = 0;
/// An indirect table (128 entries) right after the descriptor table.
const INDIRECT: usize = 2048;
const AVAIL: usize = PAGE;
const USED: usize = 2 * PAGE;
const HDR: usize = 3 * PAGE;
const STATUS_AT: usize = 3 * PAGE + 512;
const DATA: usize = 4 * PAGE;
const DATA_LEN: usize = 2 * PAGE;
const AREA: usize = DATA + DATA_LEN;
/// Far outside any guest RAM `mobius` gives, and a page before the top.
const FAR: u64 = 0xffff_ffff_f000;
/// How long one request is waited for before the next is sent.
const WAIT_NS: u64 = 1_000_000;
/// The hostile cases, in the order they are sent.
const CASES: u64 = 20;

/// A page-aligned, physically contiguous piece of the kernel heap the
/// device reads and writes.
struct Area {
    buf: Vec<u8>,
    /// Offset of the page-aligned start in `buf`.
    off: usize,
    /// Its physical address.
    phys: u64,
}

impl Area {
    fn new() -> Option<Area> {
        let buf = vec![0u8; AREA + PAGE];
        let start = buf.as_ptr() as u64;
        let off = usize::try_from(start.next_multiple_of(PAGE as u64) - start).ok()?;
        let first = direct::virt_to_phys(start.checked_add(off as u64)?)?;
        let last = direct::virt_to_phys(start.checked_add((off + AREA - 1) as u64)?)?;
        // The device sees physical memory: the area must be contiguous.
        (last.checked_sub(first)? == (AREA - 1) as u64).then_some(Area {
            buf,
            off,
            phys: first,
        })
    }

    fn at(&self, offset: usize) -> u64 {
        self.phys.wrapping_add(offset as u64)
    }

    fn put(&mut self, offset: usize, bytes: &[u8]) {
        let start = self.off + offset;
        if let Some(dst) = self.buf.get_mut(start..start + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    fn zero(&mut self) {
        let off = self.off;
        if let Some(all) = self.buf.get_mut(off..off + AREA) {
            all.fill(0);
        }
    }

    /// Descriptor `i` of the table at `table`.
    fn desc(&mut self, table: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        self.put(table + 16 * usize::from(i), &d);
    }

    fn header(&mut self, kind: u32, sector: u64) {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&kind.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        self.put(HDR, &h);
    }

    /// A byte or 16-bit word the device writes.
    fn read_u8(&self, offset: usize) -> u8 {
        match self.buf.get(self.off + offset) {
            // SAFETY: an element of `buf`, in bounds (just checked); read
            // volatile because the host's disk worker writes it.
            Some(b) => unsafe { read_volatile(b) },
            None => 0,
        }
    }

    fn read_u16(&self, offset: usize) -> u16 {
        let lo = self.read_u8(offset);
        let hi = self.read_u8(offset + 1);
        u16::from_le_bytes([lo, hi])
    }
}

/// What was sent and what came back.
#[derive(Default)]
struct Counts {
    requests: u64,
    setups: u64,
    ok: u64,
    ioerr: u64,
    unsupp: u64,
    unanswered: u64,
}

struct Flood {
    regs: Regs,
    area: Area,
    /// The driver's available index and the device's used index last seen.
    avail: u16,
    used: u16,
    capacity: u64,
    counts: Counts,
}

impl Flood {
    /// Reset the device and set the queue up with these (possibly wrong)
    /// size and ring addresses; the area is cleared and the indices start
    /// again from 0.
    fn setup(&mut self, size: u32, desc: u64, avail: u64, used: u64) {
        self.counts.setups += 1;
        self.area.zero();
        self.avail = 0;
        self.used = 0;
        let r = self.regs;
        r.wr(STATUS, 0);
        r.wr(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        r.wr(DRIVER_FEATURES_SEL, 0);
        r.wr(DRIVER_FEATURES, 0);
        r.wr(DRIVER_FEATURES_SEL, 1);
        r.wr(DRIVER_FEATURES, (F_VERSION_1 >> 32) as u32);
        r.wr(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        r.wr(QUEUE_SEL, 0);
        r.wr(QUEUE_NUM, size);
        r.wr64(QUEUE_DESC_LOW, desc);
        r.wr64(QUEUE_DRIVER_LOW, avail);
        r.wr64(QUEUE_DEVICE_LOW, used);
        r.wr(QUEUE_READY, 1);
        r.wr(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
    }

    /// The queue as a driver sets it up, in the area.
    fn good_setup(&mut self) {
        let (d, a, u) = (self.area.at(DESC), self.area.at(AVAIL), self.area.at(USED));
        self.setup(u32::from(QSIZE), d, a, u);
    }

    /// Offer the chain at `head`, notify queue 0, and wait (bounded) for
    /// the device to hand it back; count the status byte it wrote.
    fn offer(&mut self, head: u16) {
        self.area.put(STATUS_AT, &[0xee]);
        let slot = AVAIL + 4 + 2 * usize::from(self.avail % QSIZE);
        self.area.put(slot, &head.to_le_bytes());
        self.avail = self.avail.wrapping_add(1);
        fence(Ordering::SeqCst);
        self.area.put(AVAIL + 2, &self.avail.to_le_bytes());
        fence(Ordering::SeqCst);
        self.counts.requests += 1;
        self.regs.wr(QUEUE_NOTIFY, 0);
        self.wait();
    }

    /// Wait for the used index to move; then count the status byte.
    fn wait(&mut self) {
        let deadline = cpu::rdtsc().saturating_add(tsc::ns_to_cycles(WAIT_NS));
        while self.area.read_u16(USED + 2) == self.used && cpu::rdtsc() < deadline {
            core::hint::spin_loop();
        }
        let used = self.area.read_u16(USED + 2);
        if used == self.used {
            self.counts.unanswered += 1;
            return;
        }
        self.used = used;
        fence(Ordering::SeqCst);
        match self.area.read_u8(STATUS_AT) {
            S_OK => self.counts.ok += 1,
            S_IOERR => self.counts.ioerr += 1,
            S_UNSUPP => self.counts.unsupp += 1,
            _ => self.counts.unanswered += 1,
        }
    }

    /// A request of `kind` at `sector`: the header, one data descriptor
    /// (`data` bytes at `addr`, `flags`), the status byte; at descriptors 0..3.
    fn request(&mut self, kind: u32, sector: u64, addr: u64, data: u32, flags: u16) {
        self.area.header(kind, sector);
        let (hdr, status) = (self.area.at(HDR), self.area.at(STATUS_AT));
        self.area.desc(DESC, 0, hdr, 16, DESC_F_NEXT, 1);
        self.area.desc(DESC, 1, addr, data, flags | DESC_F_NEXT, 2);
        self.area.desc(DESC, 2, status, 1, DESC_F_WRITE, 0);
        self.offer(0);
    }

    /// Hostile case `case` (of [`CASES`]).
    fn send(&mut self, case: u64) {
        let data = self.area.at(DATA);
        let w = DESC_F_WRITE;
        let end = self.capacity;
        match case {
            // A good read first: the device still works between the others.
            0 => self.request(T_IN, 0, data, 512, w),
            // Buffers outside RAM: data, then the header itself.
            1 => self.request(T_IN, 0, FAR, 512, w),
            2 => {
                self.area.desc(DESC, 0, FAR, 16, DESC_F_NEXT, 1);
                self.area.desc(DESC, 1, self.area.at(STATUS_AT), 1, w, 0);
                self.offer(0);
            }
            // Lengths that lie: beyond RAM from a good address, not whole
            // sectors, a header of 3 bytes.
            3 => self.request(T_IN, 0, data, u32::MAX, w),
            4 => self.request(T_IN, 0, data, 513, w),
            5 => {
                self.area.header(T_IN, 0);
                self.area
                    .desc(DESC, 0, self.area.at(HDR), 3, DESC_F_NEXT, 1);
                self.area.desc(DESC, 1, self.area.at(STATUS_AT), 1, w, 0);
                self.offer(0);
            }
            // Sectors past the end, and overflowing `sector * 512`.
            6 => self.request(T_IN, end, data, 512, w),
            7 => self.request(T_IN, u64::MAX / 256, data, 1024, w),
            // A write and a flush of a read-only disk.
            8 => self.request(T_OUT, 0, data, 512, 0),
            9 => {
                self.area.header(T_FLUSH, 0);
                self.area
                    .desc(DESC, 0, self.area.at(HDR), 16, DESC_F_NEXT, 1);
                self.area.desc(DESC, 1, self.area.at(STATUS_AT), 1, w, 0);
                self.offer(0);
            }
            // Unknown types, and GET_ID into a buffer of the wrong size.
            10 => self.request(0xdead_beef, 0, data, 512, w),
            11 => self.request(T_GET_ID, 0, data, 7, w),
            // A loop: 0 -> 1 -> 2 -> 0.
            12 => {
                self.request_descs_only();
                self.area
                    .desc(DESC, 2, self.area.at(STATUS_AT), 1, w | DESC_F_NEXT, 0);
                self.offer(0);
            }
            // A chain of every descriptor of the queue, and an indirect
            // table of 128 entries, most of them empty.
            13 => {
                for i in 0..QSIZE {
                    let next = (i + 1) % QSIZE;
                    self.area.desc(DESC, i, data, 512, w | DESC_F_NEXT, next);
                }
                self.area
                    .desc(DESC, QSIZE - 1, self.area.at(STATUS_AT), 1, w, 0);
                self.offer(0);
            }
            14 => {
                for i in 0..QSIZE {
                    self.area.desc(INDIRECT, i, data, 0, w | DESC_F_NEXT, i + 1);
                }
                let table = self.area.at(INDIRECT);
                self.area
                    .desc(DESC, 0, table, 16 * u32::from(QSIZE), DESC_F_INDIRECT, 0);
                self.offer(0);
            }
            // The status byte not writable, and a status of length 0.
            15 => {
                self.request_descs_only();
                self.area.desc(DESC, 2, self.area.at(STATUS_AT), 1, 0, 0);
                self.offer(0);
            }
            16 => {
                self.request_descs_only();
                self.area.desc(DESC, 2, self.area.at(STATUS_AT), 0, w, 0);
                self.offer(0);
            }
            // Data read over the descriptor table and the used ring
            // themselves, then rewritten while the host may read it.
            17 => {
                self.request(T_IN, 0, self.area.at(DESC), 4096, w);
                self.area.desc(DESC, 1, FAR, u32::MAX, w | DESC_F_NEXT, 2);
                self.request(T_IN, 0, self.area.at(USED), 512, w);
                self.good_setup();
            }
            // A head past the queue, and an available index far ahead.
            18 => {
                self.offer(QSIZE + 300);
                self.area
                    .put(AVAIL + 2, &self.avail.wrapping_add(1000).to_le_bytes());
                self.counts.requests += 1;
                self.regs.wr(QUEUE_NOTIFY, 0);
                self.wait();
                self.good_setup();
            }
            // Queues that are not there, and queues set up wrong: sizes
            // 0, 3 and 65535; rings outside RAM, unaligned, in the device's
            // own window; a notify before DRIVER_OK.
            _ => {
                self.regs.wr(QUEUE_NOTIFY, 7);
                let (d, a, u) = (self.area.at(DESC), self.area.at(AVAIL), self.area.at(USED));
                let bad = [
                    (0, d, a, u),
                    (3, d, a, u),
                    (65535, d, a, u),
                    (u32::from(QSIZE), FAR, a, u),
                    (
                        u32::from(QSIZE),
                        d.wrapping_add(1),
                        a.wrapping_add(1),
                        u.wrapping_add(2),
                    ),
                    (u32::from(QSIZE), d, a, self.regs_phys()),
                ];
                for (size, d, a, u) in bad {
                    self.setup(size, d, a, u);
                    self.request(T_IN, 0, data, 512, w);
                }
                self.regs.wr(STATUS, 0);
                self.regs.wr(QUEUE_NOTIFY, 0);
                self.good_setup();
            }
        }
    }

    /// Descriptors 0 and 1 of a good read of sector 0 (the caller writes 2).
    fn request_descs_only(&mut self) {
        self.area.header(T_IN, 0);
        let hdr = self.area.at(HDR);
        let data = self.area.at(DATA);
        self.area.desc(DESC, 0, hdr, 16, DESC_F_NEXT, 1);
        self.area
            .desc(DESC, 1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
    }

    /// The physical address of the disk's own register window.
    fn regs_phys(&self) -> u64 {
        virtio_blk::disk(0).map_or(FAR, |d| d.base)
    }
}

/// Flood the first disk until `deadline` (TSC); how many rounds of
/// [`CASES`] cases were sent, or `None` without a disk.
pub fn run(deadline: u64) -> Option<u64> {
    let Some(disk) = virtio_blk::disk(0) else {
        println!("flood-disk: no disk (give mobius a --disk)");
        return None;
    };
    let Some(regs) = Regs::probe(disk.base, DEVICE_ID_BLOCK) else {
        println!(
            "flood-disk: disk 0's window at {:#x} did not answer",
            disk.base
        );
        return None;
    };
    let Some(area) = Area::new() else {
        println!("flood-disk: no physically contiguous buffer");
        return None;
    };
    let mut f = Flood {
        regs,
        area,
        avail: 0,
        used: 0,
        capacity: disk.capacity,
        counts: Counts::default(),
    };
    f.good_setup();
    let mut n = 0u64;
    while cpu::rdtsc() < deadline {
        f.send(n % CASES);
        n += 1;
    }
    // Leave the device reset: the kernel's driver no longer owns it.
    regs.wr(STATUS, 0);
    let c = &f.counts;
    println!(
        "flood-disk: {} requests, {} set-ups; statuses: ok {}, ioerr {}, unsupp {}, unanswered {}",
        c.requests, c.setups, c.ok, c.ioerr, c.unsupp, c.unanswered
    );
    Some(n)
}
