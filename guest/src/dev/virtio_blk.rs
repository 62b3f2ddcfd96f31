//! A virtio-blk driver (virtio 1.x over MMIO, device ID 2), reads only:
//! one request queue of [`QSIZE`] entries, up to [`SLOTS`] requests in
//! flight, each at most `size_max` bytes (64 KiB from `mobius`).
//!
//! # Finding the disks
//!
//! The host announces each disk like the console, as
//! `virtio_mmio.device=4K@<base>:<n>` ([`mobius_shared::virtio_mmio`]);
//! [`init`] probes every announced window for a block device, in order:
//! the first found is disk 0 (the one `/mnt` mounts).
//!
//! # Completions: interrupt or polling
//!
//! A request is three descriptors (header, data, status byte) of its slot
//! `s` (descriptors `3s..3s+3`); the head's id names the slot in the used
//! ring. Whoever takes the queue's lock collects the used entries
//! ([`Disk::collect`]), so a waiter finds its slot done whoever saw the
//! completion first.
//!
//! On `mobius`'s own devices (vendor "MOBI" at the disk window
//! `disk_window(i)`) the host's worker thread signals each completion by
//! setting bit 0 of InterruptStatus and sending an MSI with vector
//! `0x40 + i` to the local APIC. The IDT has gates for those vectors
//! (`arch::x86_64::trap`); the kernel runs with interrupts off, so the MSI
//! is taken only in ring 3 (a trap into `proc::entry`) or in the idle
//! loop's `sti; hlt` (`trap_dispatch`'s device hook). Both call
//! [`on_interrupt`]: it sends the local APIC its EOI (as the timer path
//! does), reads InterruptStatus and acknowledges it, collects the used
//! ring and wakes every thread blocked on [`Wait::Disk`]. A reading thread
//! sleeps there (`task::block` with a deadline) between its checks, so the
//! CPU runs other threads, or halts, while the host reads the file.
//!
//! Where there is no thread to put to sleep (boot, before the first
//! process; a page fault taken in ring 0, which may not switch stacks) or
//! the device does not interrupt (QEMU's virtio-mmio devices raise an
//! IOAPIC line, which the guest does not program), the waiter polls the
//! used ring instead. A device that has not answered after
//! [`TIMEOUT_NS`] is given up on ([`DiskError::Timeout`]); its slot stays
//! taken, the buffer alive, until the device hands it back.
//!
//! Errors (status IOERR or UNSUPP, a used entry naming no request in
//! flight, a used index beyond the queue, a timeout) are values and are
//! counted ([`Disk::stats`]), never panics.
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::{addr_of, read_volatile, write_volatile};
use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once};

use super::mmio::Regs;
use super::virtqueue::{Desc, Queue, QSIZE};
use crate::arch::x86_64::{apic, cpu, direct, trap, tsc};
use crate::proc::task::{self, Wait};
use mobius_shared::virtio_mmio::blk::{
    CONFIG_CAPACITY, CONFIG_SIZE_MAX, F_RO, F_SIZE_MAX, SECTOR_SIZE, S_IOERR, S_OK, S_UNSUPP, T_IN,
};
use mobius_shared::virtio_mmio::{
    disk_vector, disk_window, CONFIG, DESC_F_NEXT, DESC_F_WRITE, DEVICE_ID_BLOCK, F_VERSION_1,
    INTERRUPT_ACK, INTERRUPT_STATUS, MAX_DISKS, STATUS, STATUS_ACKNOWLEDGE, STATUS_DRIVER,
    STATUS_DRIVER_OK, STATUS_FEATURES_OK, VENDOR, VENDOR_ID,
};

/// Requests in flight at most (three descriptors each).
pub const SLOTS: usize = QSIZE as usize / 3;
/// How long a request may take before it is given up on: 10 s.
pub const TIMEOUT_NS: u64 = 10_000_000_000;
/// Largest request (the host's `size_max`; also used when a device offers none).
const MAX_CHUNK: usize = 64 * 1024;
const SECTOR: usize = SECTOR_SIZE as usize;
const REQUEST_QUEUE: u32 = 0;

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// Sectors past the end of the disk, or a length not a whole sector.
    OutOfRange,
    /// The device answered `VIRTIO_BLK_S_IOERR`.
    Io,
    /// The device answered `VIRTIO_BLK_S_UNSUPP`.
    Unsupported,
    /// The device wrote a status byte virtio does not define.
    BadStatus(u8),
    /// No answer within [`TIMEOUT_NS`].
    Timeout,
    /// A buffer the device cannot reach (not in the direct map).
    BadBuffer,
}

/// Header (`type`, `reserved`, `sector`) and status byte of one slot,
/// where the device reads and writes them.
#[repr(C)]
struct SlotDma {
    header: [u8; 16],
    status: u8,
}

enum Slot {
    Free,
    /// In flight; `abandoned` when its reader gave up (timeout): freed
    /// when the device hands it back.
    Busy {
        data: Vec<u8>,
        abandoned: bool,
    },
    Done {
        data: Vec<u8>,
        status: u8,
    },
}

struct Inner {
    queue: Queue,
    dma: Box<[SlotDma; SLOTS]>,
    slots: Vec<Slot>,
}

/// Counters of one disk (shown in `/proc/disks`).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub failed: AtomicU64,
    pub bad_used: AtomicU64,
    pub interrupts: AtomicU64,
}

/// A disk the driver set up.
pub struct Disk {
    /// Its position among the disks found (0 is `/mnt`).
    pub index: usize,
    /// Physical base of its window.
    pub base: u64,
    /// The local-APIC vector of its completions, or `None`: polled.
    pub vector: Option<u8>,
    /// Size in sectors.
    pub capacity: u64,
    pub read_only: bool,
    /// FNV-1a of sector 0 as read at boot (`None`: that read failed).
    pub sector0: Option<u64>,
    pub stats: Stats,
    regs: Regs,
    chunk: usize,
    inner: Mutex<Inner>,
}

static DISKS: Once<Vec<Disk>> = Once::new();

/// Set up every block device among the announced `windows` (but `skip`,
/// the console's), and read sector 0 of each (polled: no thread runs yet).
pub fn init(windows: &[u64], skip: Option<u64>) {
    DISKS.call_once(|| {
        let mut disks = Vec::new();
        for &base in windows {
            if disks.len() < MAX_DISKS && Some(base) != skip {
                if let Some(mut d) = Disk::probe(base, disks.len()) {
                    d.sector0 = d.first_sector_hash();
                    disks.push(d);
                }
            }
        }
        disks
    });
}

/// The disks found, in order.
pub fn disks() -> &'static [Disk] {
    DISKS.get().map_or(&[], |d| d.as_slice())
}

/// Disk `index`, if there is one.
pub fn disk(index: usize) -> Option<&'static Disk> {
    disks().get(index)
}

/// The vector `mobius` signals disk window `base`'s completions on, when
/// the device is `mobius`'s own.
fn mobius_vector(regs: Regs, base: u64) -> Option<u8> {
    if regs.rd(VENDOR_ID) != VENDOR {
        return None;
    }
    (0..MAX_DISKS)
        .find(|&i| disk_window(i) == base)
        .map(disk_vector)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Disk {
    fn probe(base: u64, index: usize) -> Option<Disk> {
        let regs = Regs::probe(base, DEVICE_ID_BLOCK)?;
        let taken = regs.negotiate(F_VERSION_1 | F_RO | F_SIZE_MAX)?;
        let queue = Queue::setup(regs, REQUEST_QUEUE)?;
        let capacity = u64::from(regs.rd(CONFIG + CONFIG_CAPACITY))
            | u64::from(regs.rd(CONFIG + CONFIG_CAPACITY + 4)) << 32;
        let size_max = match taken & F_SIZE_MAX {
            0 => MAX_CHUNK,
            _ => usize::try_from(regs.rd(CONFIG + CONFIG_SIZE_MAX)).unwrap_or(MAX_CHUNK),
        };
        let chunk = (size_max.min(MAX_CHUNK) / SECTOR * SECTOR).max(SECTOR);
        let dma = Box::new(core::array::from_fn(|_| SlotDma {
            header: [0; 16],
            status: 0,
        }));
        let slots = (0..SLOTS).map(|_| Slot::Free).collect();
        regs.wr(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
        Some(Disk {
            index,
            base,
            vector: mobius_vector(regs, base),
            capacity,
            read_only: taken & F_RO != 0,
            sector0: None,
            stats: Stats::default(),
            regs,
            chunk,
            inner: Mutex::new(Inner { queue, dma, slots }),
        })
    }

    fn first_sector_hash(&self) -> Option<u64> {
        let mut sector = [0u8; SECTOR];
        self.read(0, &mut sector).ok().map(|()| fnv1a(&sector))
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.capacity.saturating_mul(SECTOR_SIZE)
    }

    /// Read `buf.len()` bytes at byte `offset` (any alignment).
    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let len = u64::try_from(buf.len()).map_err(|_| DiskError::OutOfRange)?;
        let end = offset.checked_add(len).ok_or(DiskError::OutOfRange)?;
        let first = offset / SECTOR_SIZE;
        let skip = usize::try_from(offset % SECTOR_SIZE).map_err(|_| DiskError::OutOfRange)?;
        if skip == 0 && buf.len().is_multiple_of(SECTOR) {
            return self.read(first, buf);
        }
        let sectors = end.div_ceil(SECTOR_SIZE) - first;
        let bytes = usize::try_from(sectors * SECTOR_SIZE).map_err(|_| DiskError::OutOfRange)?;
        let mut tmp = vec![0u8; bytes];
        self.read(first, &mut tmp)?;
        let part = tmp
            .get(skip..skip + buf.len())
            .ok_or(DiskError::OutOfRange)?;
        buf.copy_from_slice(part);
        Ok(())
    }

    /// Read whole sectors from `sector` into `buf` (a multiple of 512
    /// bytes): up to [`SLOTS`] requests in flight at once.
    pub fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        if !buf.len().is_multiple_of(SECTOR) {
            return Err(DiskError::OutOfRange);
        }
        let sectors = (buf.len() / SECTOR) as u64;
        match sector.checked_add(sectors) {
            Some(end) if end <= self.capacity => {}
            _ => return Err(DiskError::OutOfRange),
        }
        let wave = self.chunk * SLOTS;
        let mut at = sector;
        for part in buf.chunks_mut(wave) {
            let r = self.read_wave(at, part);
            if r.is_err() {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            r?;
            at += (part.len() / SECTOR) as u64;
        }
        Ok(())
    }

    /// One request per chunk of `buf`, all in flight, then each waited for.
    fn read_wave(&self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let deadline = cpu::rdtsc().saturating_add(tsc::ns_to_cycles(TIMEOUT_NS));
        let mut taken: Vec<usize> = Vec::new();
        let mut at = sector;
        let mut result = Ok(());
        for part in buf.chunks(self.chunk) {
            match self.submit(at, part.len(), deadline) {
                Ok(s) => taken.push(s),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            at += (part.len() / SECTOR) as u64;
        }
        for (i, &slot) in taken.iter().enumerate() {
            if result.is_err() {
                break;
            }
            let start = i * self.chunk;
            result = self.finish(slot, deadline).and_then(|data| {
                let dst = buf.get_mut(start..start + data.len());
                dst.ok_or(DiskError::BadBuffer)?.copy_from_slice(&data);
                Ok(())
            });
        }
        if result.is_err() {
            self.release(&taken);
        }
        result
    }

    /// Post one read of `len` bytes at `sector` in a free slot (waiting for
    /// one if every slot is in flight) and notify the device.
    fn submit(&self, sector: u64, len: usize, deadline: u64) -> Result<usize, DiskError> {
        loop {
            {
                let mut inner = self.inner.lock();
                self.collect(&mut inner);
                if let Some(s) = inner.slots.iter().position(|s| matches!(s, Slot::Free)) {
                    self.post(&mut inner, s, sector, len)?;
                    self.stats.requests.fetch_add(1, Ordering::Relaxed);
                    inner.queue.notify(self.regs, REQUEST_QUEUE);
                    return Ok(s);
                }
            }
            self.wait_event(deadline)?;
        }
    }

    /// Fill slot `s`'s descriptors and put its chain on the available ring.
    fn post(&self, inner: &mut Inner, s: usize, sector: u64, len: usize) -> Result<(), DiskError> {
        let data = vec![0u8; len];
        let d = &mut inner.dma[s];
        d.header[..4].copy_from_slice(&T_IN.to_le_bytes());
        d.header[4..8].copy_from_slice(&[0; 4]);
        d.header[8..].copy_from_slice(&sector.to_le_bytes());
        // SAFETY: our own slot's status byte; volatile because the device
        // writes it.
        unsafe { write_volatile(&raw mut d.status, 0xff) };
        let phys = |p: u64| direct::virt_to_phys(p).ok_or(DiskError::BadBuffer);
        let header = phys(addr_of!(d.header) as u64)?;
        let status = phys(addr_of!(d.status) as u64)?;
        let buffer = phys(data.as_ptr() as u64)?;
        let head = (s * 3) as u16;
        let chain = [
            (header, 16, DESC_F_NEXT),
            (buffer, len as u32, DESC_F_WRITE | DESC_F_NEXT),
            (status, 1, DESC_F_WRITE),
        ];
        for (i, (addr, len, flags)) in chain.into_iter().enumerate() {
            let next = head + i as u16 + 1;
            inner.queue.set_desc(
                head + i as u16,
                Desc {
                    addr,
                    len,
                    flags,
                    next,
                },
            );
        }
        inner.slots[s] = Slot::Busy {
            data,
            abandoned: false,
        };
        inner.queue.push(head);
        Ok(())
    }

    /// Wait until slot `s` is done; free it and return its data.
    fn finish(&self, s: usize, deadline: u64) -> Result<Vec<u8>, DiskError> {
        loop {
            {
                let mut inner = self.inner.lock();
                self.collect(&mut inner);
                if matches!(inner.slots[s], Slot::Done { .. }) {
                    let Slot::Done { data, status } =
                        core::mem::replace(&mut inner.slots[s], Slot::Free)
                    else {
                        return Err(DiskError::BadBuffer);
                    };
                    return match status {
                        S_OK => Ok(data),
                        S_IOERR => Err(DiskError::Io),
                        S_UNSUPP => Err(DiskError::Unsupported),
                        other => Err(DiskError::BadStatus(other)),
                    };
                }
            }
            self.wait_event(deadline)?;
        }
    }

    /// Give up on `slots` after an error: done ones are freed, those still
    /// in flight are freed when the device returns them.
    fn release(&self, slots: &[usize]) {
        let mut inner = self.inner.lock();
        for &s in slots {
            let slot = &mut inner.slots[s];
            match slot {
                Slot::Done { .. } => *slot = Slot::Free,
                Slot::Busy { abandoned, .. } => *abandoned = true,
                Slot::Free => {}
            }
        }
    }

    /// Take every used entry the device has handed back.
    fn collect(&self, inner: &mut Inner) {
        if inner.queue.pending_used() > QSIZE {
            self.stats.bad_used.fetch_add(1, Ordering::Relaxed);
            inner.queue.skip_used();
            return;
        }
        while let Some((id, _len)) = inner.queue.pop_used() {
            let s = usize::try_from(id).unwrap_or(usize::MAX);
            if !s.is_multiple_of(3) || s / 3 >= SLOTS {
                self.stats.bad_used.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let s = s / 3;
            // SAFETY: our own slot's status byte, written by the device.
            let status = unsafe { read_volatile(addr_of!(inner.dma[s].status)) };
            let slot = core::mem::replace(&mut inner.slots[s], Slot::Free);
            inner.slots[s] = match slot {
                Slot::Busy {
                    abandoned: true, ..
                } => Slot::Free,
                Slot::Busy { data, .. } => Slot::Done { data, status },
                other => {
                    self.stats.bad_used.fetch_add(1, Ordering::Relaxed);
                    other
                }
            };
        }
    }

    /// Wait for something to happen on the queue: sleep until the
    /// completion interrupt where a thread can sleep, else poll a while.
    fn wait_event(&self, deadline: u64) -> Result<(), DiskError> {
        let now = cpu::rdtsc();
        if now >= deadline {
            return Err(DiskError::Timeout);
        }
        if self.vector.is_some() && can_sleep() {
            let index = u8::try_from(self.index).unwrap_or(u8::MAX);
            if task::block(Wait::Disk(index), Some(deadline)) != task::Wake::Interrupted {
                return Ok(());
            }
        }
        for _ in 0..64 {
            core::hint::spin_loop();
        }
        Ok(())
    }
}

/// Whether the running code may sleep: it is a thread, not inside a page
/// fault taken in ring 0.
pub fn can_sleep() -> bool {
    !trap::in_kernel_page_fault() && task::table().current_tid().is_some()
}

/// A completion interrupt (vector `0x40 + i`), from ring 3 or the idle
/// loop: EOI, acknowledge, collect, wake the waiters.
pub fn on_interrupt(vector: u8) {
    apic::eoi();
    for d in disks().iter().filter(|d| d.vector == Some(vector)) {
        d.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        let status = d.regs.rd(INTERRUPT_STATUS);
        d.regs.wr(INTERRUPT_ACK, status);
        if let Some(mut inner) = d.inner.try_lock() {
            d.collect(&mut inner);
        }
        let index = u8::try_from(d.index).unwrap_or(u8::MAX);
        task::table().wake(|w| *w == Wait::Disk(index), usize::MAX);
    }
}

/// Wake every thread waiting on disk `index` (its file system's lock was
/// freed).
pub fn wake_waiters(index: usize) {
    let index = u8::try_from(index).unwrap_or(u8::MAX);
    task::table().wake(|w| *w == Wait::Disk(index), usize::MAX);
}

/// Collect disk `index`'s completions and wake its waiters (for a waiter
/// that may not sleep, or where no interrupt comes).
pub fn poll(index: usize) {
    if let Some(d) = disk(index) {
        if let Some(mut inner) = d.inner.try_lock() {
            d.collect(&mut inner);
        }
        wake_waiters(index);
    }
}
