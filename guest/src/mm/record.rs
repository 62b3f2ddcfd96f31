//! The fault recorder behind `mobius record`: a bounded ring of fixed-size
//! fault records ([`mobius_shared::record`]) that the fault path appends
//! to and the kernel drains to the host (`crate::recorder`, in the kernel).
//!
//! With recording off (the default) the fault path pays one load and one
//! predictable branch ([`on`]), and the trap hooks one store of the
//! instruction pointer ([`set_trap_rip`]). With it on, every fault pays
//! the sampling countdown ([`sampled`]); a recorded one also the six
//! stores of a record and the ring's indices: the record is built in
//! registers, nothing is encoded. The fault path
//! never sends anything: it only asks for a drain ([`drain_wanted`]) once
//! the ring is half full, and the kernel drains at its next safe point. A
//! record that finds the ring full is dropped and counted.
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use mobius_shared::record::{self as wire, access, FaultRecord, FrameHeader, RECORD_LEN};
use mobius_shared::stats::FaultKind;
use spin::{Mutex, MutexGuard};

use super::vmm::Access;

/// One record as it lies in the ring (the wire's six words).
pub type Slot = [u64; RECORD_LEN / 8];

static ON: AtomicBool = AtomicBool::new(false);
static DRAIN_WANTED: AtomicBool = AtomicBool::new(false);
/// The running process, 0 for the kernel (set by the scheduler).
static PID: AtomicU32 = AtomicU32::new(0);
/// The instruction pointer of the CPU trap that raised the fault being
/// handled; 0 for a fault the kernel raises itself (a user copy).
static TRAP_RIP: AtomicU64 = AtomicU64::new(0);
/// Records lost because the ring was busy (a fault while it drained).
static BUSY_DROPS: AtomicU64 = AtomicU64::new(0);
/// Faults seen while recording, sampled or not.
static SEEN: AtomicU64 = AtomicU64::new(0);
/// Faults to skip before the next recorded one, and the sample period.
static COUNTDOWN: AtomicU32 = AtomicU32::new(0);
static SAMPLE: AtomicU32 = AtomicU32::new(1);
static RING: Mutex<Option<Ring>> = Mutex::new(None);

/// Whether faults are being recorded: the one check on the fault path.
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether the ring is half full (or more) and should be drained.
#[inline(always)]
pub fn drain_wanted() -> bool {
    DRAIN_WANTED.load(Ordering::Relaxed)
}

/// Start recording one fault in `sample` into a ring of `capacity`
/// records. `false` (and recording stays off) if the ring cannot be
/// allocated or the numbers are out of range.
pub fn start(sample: u32, capacity: u32, tsc_khz: u64) -> bool {
    if sample == 0 || capacity == 0 || capacity > wire::MAX_RING {
        return false;
    }
    let Some(ring) = Ring::new(capacity as usize, sample, tsc_khz) else {
        return false;
    };
    *RING.lock() = Some(ring);
    SAMPLE.store(sample, Ordering::Relaxed);
    COUNTDOWN.store(0, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    true
}

/// Set the running process (0: none, the kernel's own work).
#[inline]
pub fn set_pid(pid: u32) {
    PID.store(pid, Ordering::Relaxed);
}

/// Set the instruction pointer of the fault about to be handled: the
/// trap's, or 0 for a fault the kernel raises itself. One store, whether
/// recording or not (cheaper than asking).
#[inline(always)]
pub fn set_trap_rip(rip: u64) {
    TRAP_RIP.store(rip, Ordering::Relaxed);
}

/// The instruction pointer [`set_trap_rip`] stored last.
#[inline]
pub fn trap_rip() -> u64 {
    TRAP_RIP.load(Ordering::Relaxed)
}

/// The ring, locked, if recording was started and nobody else holds it.
pub fn try_ring() -> Option<MutexGuard<'static, Option<Ring>>> {
    RING.try_lock()
}

/// What the VMM knows of the area a fault hit: its node's base, its
/// [`wire::AreaType`] and [`wire::area_flags`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AreaTag {
    pub base: u64,
    pub area_type: u8,
    pub flags: u8,
}

/// One fault as the VMM saw it.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub t0: u64,
    pub addr: u64,
    pub access: Access,
    pub kind: FaultKind,
    /// The zero-pool sub-kind of a demand-zero fault.
    pub pool: Option<FaultKind>,
    pub cycles: u64,
    pub area: AreaTag,
}

/// Count a fault (call only when [`on`]); whether it is the one in N to
/// record (the first is). A few instructions: the fault path asks this
/// before it builds anything.
#[inline]
pub fn sampled() -> bool {
    SEEN.fetch_add(1, Ordering::Relaxed);
    let (take, next) = sample_step(
        COUNTDOWN.load(Ordering::Relaxed),
        SAMPLE.load(Ordering::Relaxed),
    );
    COUNTDOWN.store(next, Ordering::Relaxed);
    take
}

/// One step of the sampling countdown: whether to take this fault, and
/// the next countdown.
#[inline(always)]
pub const fn sample_step(countdown: u32, sample: u32) -> (bool, u32) {
    if countdown > 0 {
        (false, countdown - 1)
    } else {
        (true, sample.saturating_sub(1))
    }
}

/// Append `f` (a fault [`sampled`] chose) to the ring, or drop it and
/// count it when the ring is full or busy. Inlined into the fault path's
/// one out-of-line recording call.
#[inline(always)]
pub fn record(f: &Fault) {
    let Some(mut guard) = RING.try_lock() else {
        BUSY_DROPS.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Some(ring) = guard.as_mut() else { return };
    let rip = TRAP_RIP.load(Ordering::Relaxed);
    let r = to_record(f, PID.load(Ordering::Relaxed), rip);
    if ring.push(r.to_words()) && ring.half_full() {
        DRAIN_WANTED.store(true, Ordering::Relaxed);
    }
}

/// The wire record of `f` for process `pid`, raised at `rip` (0: not by a
/// CPU trap).
#[inline(always)]
pub fn to_record(f: &Fault, pid: u32, rip: u64) -> FaultRecord {
    let a = f.access;
    let bit = |on: bool, bit: u8| if on { bit } else { 0 };
    let bits = bit(a.write, access::WRITE)
        | bit(a.user, access::USER)
        | bit(a.instruction, access::EXEC)
        | bit(a.present, access::PRESENT)
        | bit(rip != 0, access::TRAP)
        | bit(f.pool == Some(FaultKind::ZeroPoolHit), access::POOL_HIT)
        | bit(f.pool == Some(FaultKind::ZeroPoolMiss), access::POOL_MISS);
    FaultRecord {
        tsc: f.t0,
        addr: f.addr,
        rip,
        area_base: f.area.base,
        cycles: f.cycles,
        pid,
        kind: f.kind.index() as u8,
        access: bits,
        area_type: f.area.area_type,
        area_flags: f.area.flags,
    }
}

/// The ring and its counts.
pub struct Ring {
    slots: Box<[Slot]>,
    /// Where the next record goes.
    next: usize,
    /// Records waiting to be sent.
    len: usize,
    sample: u32,
    dropped: u64,
    seq: u32,
    tsc_khz: u64,
}

impl Ring {
    /// An empty ring of `capacity` records, recording one fault in
    /// `sample` (the first fault is recorded); `None` without memory.
    pub fn new(capacity: usize, sample: u32, tsc_khz: u64) -> Option<Ring> {
        Some(Ring {
            slots: zeroed_slots(capacity)?,
            next: 0,
            len: 0,
            sample: sample.max(1),
            dropped: 0,
            seq: 0,
            tsc_khz,
        })
    }

    /// Append a record; `false` (dropped, counted) when the ring is full.
    #[inline]
    pub fn push(&mut self, words: Slot) -> bool {
        if self.len == self.slots.len() {
            self.dropped = self.dropped.wrapping_add(1);
            return false;
        }
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = words;
        }
        self.next += 1;
        if self.next == self.slots.len() {
            self.next = 0;
        }
        self.len += 1;
        true
    }

    pub fn half_full(&self) -> bool {
        self.len >= self.slots.len().div_ceil(2)
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The oldest waiting records that lie in one piece (up to the end of
    /// the ring), at most `max`.
    pub fn oldest(&self, max: usize) -> &[Slot] {
        let cap = self.slots.len();
        let start = (self.next + cap - self.len) % cap.max(1);
        let n = self.len.min(cap - start).min(max);
        self.slots.get(start..start + n).unwrap_or(&[])
    }

    /// The header of the next frame, of `count` records; counts the frame.
    pub fn next_header(&mut self, count: usize, last: bool) -> FrameHeader {
        let h = FrameHeader {
            last,
            seq: self.seq,
            count: count as u32,
            dropped: self
                .dropped
                .wrapping_add(BUSY_DROPS.load(Ordering::Relaxed)),
            seen: SEEN.load(Ordering::Relaxed),
            tsc_khz: self.tsc_khz,
            sample: self.sample,
            ring: self.slots.len() as u32,
        };
        self.seq = self.seq.wrapping_add(1);
        h
    }

    /// The oldest `n` records were sent.
    pub fn consume(&mut self, n: usize) {
        self.len -= n.min(self.len);
        if !self.half_full() {
            DRAIN_WANTED.store(false, Ordering::Relaxed);
        }
    }

    /// The oldest `n` records could not be sent: drop them, counted.
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.len);
        self.dropped = self.dropped.wrapping_add(n as u64);
        self.consume(n);
    }
}

/// `n` zeroed slots from the heap (fresh heap memory is known to be zero:
/// nothing is written), or `None` if the heap is full.
fn zeroed_slots(n: usize) -> Option<Box<[Slot]>> {
    if n == 0 {
        return None;
    }
    let layout = core::alloc::Layout::array::<Slot>(n).ok()?;
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) }.cast::<Slot>();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a zeroed allocation of `n` slots from the global
    // allocator with the layout `Box<[Slot]>` uses, and all-zero bytes are
    // valid `u64`s.
    Some(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, n)) })
}

/// The slots as the bytes they are on the wire (little-endian words).
pub fn slot_bytes(slots: &[Slot]) -> &[u8] {
    const _: () = assert!(cfg!(target_endian = "little"));
    // SAFETY: arrays of u64 without padding: `RECORD_LEN` initialised bytes
    // each, any of which may be read as u8; the view borrows `slots`.
    unsafe { core::slice::from_raw_parts(slots.as_ptr().cast::<u8>(), slots.len() * RECORD_LEN) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::record::{decode_frame, FRAME_HEADER_LEN};

    fn fault(i: u64) -> Fault {
        Fault {
            t0: i,
            addr: 0x1000 * i,
            access: Access {
                write: true,
                ..Access::default()
            },
            kind: FaultKind::DemandZero,
            pool: Some(FaultKind::ZeroPoolHit),
            cycles: 10,
            area: AreaTag {
                base: 0x1000,
                area_type: 1,
                flags: 2,
            },
        }
    }

    #[test]
    fn samples_one_in_n_from_the_first() {
        let mut countdown = 0;
        let taken: alloc::vec::Vec<bool> = (0..9)
            .map(|_| {
                let (take, next) = sample_step(countdown, 4);
                countdown = next;
                take
            })
            .collect();
        let expect = [true, false, false, false, true, false, false, false, true];
        assert_eq!(taken, expect);
        assert!(
            (0..5).all(|_| sample_step(0, 1) == (true, 0)),
            "every fault"
        );
    }

    #[test]
    fn a_full_ring_drops_and_counts_and_wraps_in_order() {
        let mut r = Ring::new(4, 1, 0).expect("heap");
        for i in 0..6u64 {
            let ok = r.push(to_record(&fault(i), 1, 0).to_words());
            assert_eq!(ok, i < 4);
        }
        assert_eq!((r.len(), r.dropped), (4, 2));
        assert!(r.half_full());
        assert_eq!(r.oldest(3).len(), 3);
        r.consume(3);
        // Two more wrap around; the oldest piece ends at the ring's end.
        assert!(r.push(to_record(&fault(10), 1, 0).to_words()));
        assert!(r.push(to_record(&fault(11), 1, 0).to_words()));
        let first = r.oldest(99);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0][0], 3);
        r.consume(1);
        let second = r.oldest(99);
        assert_eq!(
            second.iter().map(|s| s[0]).collect::<alloc::vec::Vec<_>>(),
            [10, 11]
        );
        r.discard(5);
        assert!(r.is_empty());
        assert_eq!(r.dropped, 4);
    }

    #[test]
    fn a_drained_frame_decodes() {
        let mut r = Ring::new(4, 1, 2_000_000).expect("heap");
        let mut f = fault(3);
        f.access.user = true;
        r.push(to_record(&f, 7, 0x5555_0000).to_words());
        let slots = r.oldest(10);
        let header = r.next_header(slots.len(), true).to_bytes();
        let mut frame = header.to_vec();
        frame.extend_from_slice(slot_bytes(r.oldest(10)));
        assert_eq!(frame.len(), FRAME_HEADER_LEN + RECORD_LEN);
        let d = decode_frame(&frame).expect("valid");
        assert!(d.header.last);
        let rec = d.records().next().expect("one");
        assert_eq!((rec.pid, rec.rip, rec.addr), (7, 0x5555_0000, 0x3000));
        let bits = access::WRITE | access::USER | access::TRAP | access::POOL_HIT;
        assert_eq!(rec.access, bits);
        assert_eq!(rec.fault_kind(), FaultKind::DemandZero);
    }
}
