//! Fault records: what `mobius record` streams from the guest, one record
//! per page fault the VMM handled (or one in N), in frames of their own.
//!
//! The guest appends each record to a bounded ring in its memory (a handful
//! of stores on the fault path) and sends the ring's contents over the
//! virtio console in frames when it is half full (at the next point where
//! the kernel may do I/O: a return to ring 3, a workload step), when a
//! process ends and at the end of the run. A record that finds the ring
//! full is dropped and counted; the count travels in every frame.
//!
//! # Frame (version 1)
//!
//! One frame is one virtio descriptor chain, like a statistics frame
//! ([`crate::stats`]), and is told apart from one by its magic. Every
//! integer is unsigned and little-endian.
//!
//! | bytes | type | what |
//! |---|---|---|
//! | 0..4 | u32 | [`FRAME_MAGIC`] `0x6352624d`: the bytes `4d 62 52 63`, ASCII `MbRc` |
//! | 4..6 | u16 | [`FRAME_VERSION`], 1: `01 00` |
//! | 6 | u8 | flags: bit 0 [`FLAG_FINAL`] (the last frame of the run: its counts are final); any other bit: malformed |
//! | 7 | u8 | bytes per record, [`RECORD_LEN`] (48); anything else: malformed |
//! | 8..12 | u32 | sequence number of the frame within the run, from 0 (a gap means frames were lost) |
//! | 12..16 | u32 | `C`, records in this frame, at most [`MAX_RECORDS_PER_FRAME`] (169) |
//! | 16..24 | u64 | records dropped in the guest so far (ring full, or no console to drain it to) |
//! | 24..32 | u64 | faults seen so far while recording, sampled or not, recorded or dropped |
//! | 32..40 | u64 | TSC frequency in kHz (0: unknown) |
//! | 40..44 | u32 | sample period `N` (one fault in `N` recorded), at least 1 |
//! | 44..48 | u32 | ring capacity in records |
//! | 48..48+48C | | `C` records |
//!
//! A frame is exactly `48 + 48 C` bytes, at most [`MAX_FRAME_LEN`] (8192);
//! any other length is malformed.
//!
//! # Record (48 bytes)
//!
//! | bytes | type | what |
//! |---|---|---|
//! | 0..8 | u64 | guest TSC when the fault began |
//! | 8..16 | u64 | faulting address (CR2, not rounded to the page) |
//! | 16..24 | u64 | instruction pointer of the faulting instruction when a CPU trap raised the fault (access bit [`access::TRAP`]), else 0: a fault the kernel raised itself while copying from or to user memory for a system call |
//! | 24..32 | u64 | base of the area's node (0: no area covers the address) |
//! | 32..40 | u64 | TSC cycles the fault took (the same measure as the statistics' histograms) |
//! | 40..44 | u32 | process id of the running process (0: the kernel, e.g. a built-in workload) |
//! | 44 | u8 | fault kind: the [`FaultKind`] index, 0..=12, as counted by the statistics (never 1 or 2: those are sub-kinds, in the access byte) |
//! | 45 | u8 | access: [`access::WRITE`] 1, [`access::USER`] 2 (a user-mode access), [`access::EXEC`] 4 (an instruction fetch), [`access::PRESENT`] 8 (the page was mapped), [`access::TRAP`] 16 (a CPU trap: the instruction pointer is valid), [`access::POOL_HIT`] 32 / [`access::POOL_MISS`] 64 (a demand-zero fault's frame came from the zero pool / was zeroed on the fault path); bit 7 is 0 |
//! | 46 | u8 | area type: 0 none, 1 NORMAL, 2 MAP, 3 FILE, 4 IMAGE, 5 CALLBACK ([`AreaType`]) |
//! | 47 | u8 | area flags: bit 0 user, bit 1 writable, bit 2 executable; bits 3..8 are 0 |
//!
//! Records are fixed-size and need no encoding: the guest builds the six
//! words in registers and stores them into the ring.

use crate::stats::FaultKind;

/// First field of every record frame: "MbRc".
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"MbRc");
/// Version of the frame and record layout. Bump on any change.
pub const FRAME_VERSION: u16 = 1;
/// Bytes of the frame header.
pub const FRAME_HEADER_LEN: usize = 48;
/// Bytes of one record.
pub const RECORD_LEN: usize = 48;
/// Upper bound of a frame in bytes (the console device's cap on a chain).
pub const MAX_FRAME_LEN: usize = crate::stats::MAX_FRAME_LEN;
/// Most records one frame carries.
pub const MAX_RECORDS_PER_FRAME: usize = (MAX_FRAME_LEN - FRAME_HEADER_LEN) / RECORD_LEN;
/// Flag: the last frame of the run.
pub const FLAG_FINAL: u8 = 1;
/// The ring's capacity in records when `record_ring=` does not say.
pub const DEFAULT_RING: u32 = 4096;
/// The largest ring `record_ring=` may ask for (3 MiB of guest heap).
pub const MAX_RING: u32 = 65536;
/// Where the guest loads a position-independent program (`ET_DYN`); an
/// `ET_EXEC` program runs where it is linked. The host adds it to a
/// PIE's symbol addresses to resolve instruction pointers.
pub const PIE_LOAD_BIAS: u64 = 0x5555_5555_4000;

/// Bits of a record's access byte.
pub mod access {
    /// A write.
    pub const WRITE: u8 = 1;
    /// A user-mode access (ring 3, or the kernel copying user memory).
    pub const USER: u8 = 2;
    /// An instruction fetch.
    pub const EXEC: u8 = 4;
    /// The page was mapped (an upgrade, a protection fault).
    pub const PRESENT: u8 = 8;
    /// Raised by a CPU trap: the record's instruction pointer is valid.
    pub const TRAP: u8 = 16;
    /// Demand-zero: the frame came from the pool of zeroed frames.
    pub const POOL_HIT: u8 = 32;
    /// Demand-zero: the frame was zeroed on the fault path.
    pub const POOL_MISS: u8 = 64;
    /// Every defined bit.
    pub const ALL: u8 = 127;
}

/// Bits of a record's area-flags byte.
pub mod area_flags {
    pub const USER: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;
    pub const ALL: u8 = 7;
}

/// The area types a record names (byte 46).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AreaType {
    /// No area covers the address.
    None = 0,
    Normal = 1,
    Map = 2,
    File = 3,
    Image = 4,
    Callback = 5,
}

impl AreaType {
    pub const fn from_u8(v: u8) -> Option<AreaType> {
        Some(match v {
            0 => AreaType::None,
            1 => AreaType::Normal,
            2 => AreaType::Map,
            3 => AreaType::File,
            4 => AreaType::Image,
            5 => AreaType::Callback,
            _ => return None,
        })
    }

    /// Lower-case name, as `mobius report` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            AreaType::None => "none",
            AreaType::Normal => "normal",
            AreaType::Map => "map",
            AreaType::File => "file",
            AreaType::Image => "image",
            AreaType::Callback => "callback",
        }
    }
}

/// One fault, as the guest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultRecord {
    pub tsc: u64,
    pub addr: u64,
    pub rip: u64,
    pub area_base: u64,
    pub cycles: u64,
    pub pid: u32,
    /// [`FaultKind`] index.
    pub kind: u8,
    /// [`access`] bits.
    pub access: u8,
    /// [`AreaType`] value.
    pub area_type: u8,
    /// [`area_flags`] bits.
    pub area_flags: u8,
}

impl FaultRecord {
    /// The record as six little-endian words (word `i` is bytes `8i..8i+8`).
    #[inline(always)]
    pub const fn to_words(&self) -> [u64; RECORD_LEN / 8] {
        [
            self.tsc,
            self.addr,
            self.rip,
            self.area_base,
            self.cycles,
            self.pid as u64
                | (self.kind as u64) << 32
                | (self.access as u64) << 40
                | (self.area_type as u64) << 48
                | (self.area_flags as u64) << 56,
        ]
    }

    /// The record's bytes.
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        for (w, o) in self.to_words().iter().zip(out.chunks_exact_mut(8)) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Read and check one record; `bytes` must be [`RECORD_LEN`] long.
    pub fn read(bytes: &[u8]) -> Result<FaultRecord, RecordError> {
        if bytes.len() != RECORD_LEN {
            return Err(RecordError::Malformed);
        }
        let w = |i: usize| u64_at(bytes, 8 * i).unwrap_or(0);
        let last = w(5);
        let r = FaultRecord {
            tsc: w(0),
            addr: w(1),
            rip: w(2),
            area_base: w(3),
            cycles: w(4),
            pid: last as u32,
            kind: (last >> 32) as u8,
            access: (last >> 40) as u8,
            area_type: (last >> 48) as u8,
            area_flags: (last >> 56) as u8,
        };
        let bad_kind = usize::from(r.kind) >= FaultKind::COUNT;
        if bad_kind
            || r.access & !access::ALL != 0
            || AreaType::from_u8(r.area_type).is_none()
            || r.area_flags & !area_flags::ALL != 0
        {
            return Err(RecordError::BadRecord);
        }
        Ok(r)
    }

    /// The fault kind (checked by [`FaultRecord::read`]).
    pub fn fault_kind(&self) -> FaultKind {
        FaultKind::ALL
            .get(usize::from(self.kind))
            .copied()
            .unwrap_or(FaultKind::Unresolved)
    }

    /// The area type (checked by [`FaultRecord::read`]).
    pub fn area(&self) -> AreaType {
        AreaType::from_u8(self.area_type).unwrap_or(AreaType::None)
    }
}

/// The header of a record frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// The last frame of the run.
    pub last: bool,
    pub seq: u32,
    /// Records that follow.
    pub count: u32,
    pub dropped: u64,
    pub seen: u64,
    pub tsc_khz: u64,
    pub sample: u32,
    pub ring: u32,
}

impl FrameHeader {
    /// Length of the whole frame this header starts.
    pub const fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + RECORD_LEN * self.count as usize
    }

    /// The header as six little-endian words, built in registers.
    pub const fn to_words(&self) -> [u64; FRAME_HEADER_LEN / 8] {
        let flags = if self.last { FLAG_FINAL as u64 } else { 0 };
        [
            FRAME_MAGIC as u64
                | (FRAME_VERSION as u64) << 32
                | flags << 48
                | (RECORD_LEN as u64) << 56,
            self.seq as u64 | (self.count as u64) << 32,
            self.dropped,
            self.seen,
            self.tsc_khz,
            self.sample as u64 | (self.ring as u64) << 32,
        ]
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        for (w, o) in self.to_words().iter().zip(out.chunks_exact_mut(8)) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// A checked frame: its header and its records' bytes (every record
/// checked too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    records: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The records' bytes, [`RECORD_LEN`] each, as the frame carried them.
    pub fn record_bytes(&self) -> &'a [u8] {
        self.records
    }

    /// The records.
    pub fn records(&self) -> impl Iterator<Item = FaultRecord> + 'a {
        self.records
            .chunks_exact(RECORD_LEN)
            .filter_map(|r| FaultRecord::read(r).ok())
    }
}

/// Whether `frame` starts with the record-frame magic (so it is one, well
/// formed or not, rather than a statistics frame).
pub fn is_record_frame(frame: &[u8]) -> bool {
    frame.get(..4) == Some(&FRAME_MAGIC.to_le_bytes()[..])
}

/// Check and split one record frame. Never panics, whatever the bytes.
pub fn decode_frame(frame: &[u8]) -> Result<Frame<'_>, RecordError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(RecordError::Oversized(frame.len()));
    }
    let head = frame
        .get(..FRAME_HEADER_LEN)
        .ok_or(RecordError::Malformed)?;
    let w = |i: usize| u64_at(head, 8 * i).unwrap_or(0);
    let first = w(0);
    if first as u32 != FRAME_MAGIC {
        return Err(RecordError::BadMagic(first as u32));
    }
    let version = (first >> 32) as u16;
    if version != FRAME_VERSION {
        return Err(RecordError::UnknownVersion(version));
    }
    let flags = (first >> 48) as u8;
    if flags & !FLAG_FINAL != 0 || (first >> 56) as usize != RECORD_LEN {
        return Err(RecordError::Malformed);
    }
    let header = FrameHeader {
        last: flags & FLAG_FINAL != 0,
        seq: w(1) as u32,
        count: (w(1) >> 32) as u32,
        dropped: w(2),
        seen: w(3),
        tsc_khz: w(4),
        sample: w(5) as u32,
        ring: (w(5) >> 32) as u32,
    };
    if header.count as usize > MAX_RECORDS_PER_FRAME
        || header.frame_len() != frame.len()
        || header.sample == 0
    {
        return Err(RecordError::Malformed);
    }
    let records = frame
        .get(FRAME_HEADER_LEN..)
        .ok_or(RecordError::Malformed)?;
    for r in records.chunks_exact(RECORD_LEN) {
        FaultRecord::read(r)?;
    }
    Ok(Frame { header, records })
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(8)?)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    Some(u64::from_le_bytes(w))
}

/// Why a record frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    Oversized(usize),
    Malformed,
    BadMagic(u32),
    UnknownVersion(u16),
    /// A record with an unknown kind, area type or flag bit.
    BadRecord,
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Oversized(n) => {
                write!(f, "record frame of {n} bytes exceeds {MAX_FRAME_LEN}")
            }
            RecordError::Malformed => write!(f, "malformed record frame"),
            RecordError::BadMagic(m) => write!(f, "bad record frame magic {m:#x}"),
            RecordError::UnknownVersion(v) => write!(
                f,
                "unknown record frame version {v} (this host speaks {FRAME_VERSION})"
            ),
            RecordError::BadRecord => write!(f, "a record with an unknown kind, area or flag"),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn record(i: u64) -> FaultRecord {
        FaultRecord {
            tsc: 1000 + i,
            addr: 0x40_0000 + i * 4096 + 7,
            rip: 0x5555_5555_e9cb,
            area_base: 0x40_0000,
            cycles: u64::MAX - i,
            pid: 3,
            kind: FaultKind::DemandZero.index() as u8,
            access: access::WRITE | access::USER | access::TRAP | access::POOL_HIT,
            area_type: AreaType::Normal as u8,
            area_flags: area_flags::USER | area_flags::WRITE,
        }
    }

    fn frame(n: u64, last: bool) -> Vec<u8> {
        let h = FrameHeader {
            last,
            seq: 9,
            count: n as u32,
            dropped: 5,
            seen: 77,
            tsc_khz: 2_000_000,
            sample: 16,
            ring: 4096,
        };
        let mut out = h.to_bytes().to_vec();
        for i in 0..n {
            out.extend_from_slice(&record(i).to_bytes());
        }
        out
    }

    #[test]
    fn round_trip() {
        for (n, last) in [(0, false), (1, true), (MAX_RECORDS_PER_FRAME as u64, false)] {
            let bytes = frame(n, last);
            let f = decode_frame(&bytes).expect("valid");
            assert_eq!(f.header.count as u64, n);
            assert_eq!(f.header.last, last);
            assert_eq!((f.header.seq, f.header.dropped, f.header.seen), (9, 5, 77));
            assert_eq!((f.header.sample, f.header.ring), (16, 4096));
            let back: Vec<FaultRecord> = f.records().collect();
            assert_eq!(back, (0..n).map(record).collect::<Vec<_>>());
            assert_eq!(f.record_bytes().len(), RECORD_LEN * n as usize);
        }
        assert_eq!(MAX_RECORDS_PER_FRAME, 169);
    }

    #[test]
    fn fields_sit_at_their_documented_offsets() {
        let b = frame(1, true);
        assert_eq!(&b[0..4], b"MbRc");
        assert_eq!((b[4], b[5], b[6], b[7]), (1, 0, 1, 48));
        let at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
        assert_eq!(at(8), 9 | 1 << 32);
        assert_eq!((at(16), at(24), at(32)), (5, 77, 2_000_000));
        assert_eq!(at(40), 16 | 4096 << 32);
        let r = &b[48..];
        let rat = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().expect("8"));
        assert_eq!(
            (rat(0), rat(8), rat(16)),
            (1000, 0x40_0007, 0x5555_5555_e9cb)
        );
        assert_eq!((rat(24), rat(32)), (0x40_0000, u64::MAX));
        assert_eq!(&r[40..44], &3u32.to_le_bytes());
        assert_eq!((r[44], r[45], r[46], r[47]), (0, 2 | 1 | 16 | 32, 1, 3));
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        let good = frame(2, false);
        let broken = |at: usize, v: u8| {
            let mut f = good.clone();
            f[at] = v;
            decode_frame(&f).err()
        };
        assert_eq!(broken(0, b'X'), Some(RecordError::BadMagic(0x6352_6258)));
        assert_eq!(broken(4, 2), Some(RecordError::UnknownVersion(2)));
        assert_eq!(broken(6, 2), Some(RecordError::Malformed));
        assert_eq!(broken(7, 40), Some(RecordError::Malformed));
        assert_eq!(broken(12, 3), Some(RecordError::Malformed)); // count vs length
        assert_eq!(broken(40, 0), Some(RecordError::Malformed)); // sample 0
        assert_eq!(broken(48 + 44, 13), Some(RecordError::BadRecord));
        assert_eq!(broken(48 + 45, 128), Some(RecordError::BadRecord));
        assert_eq!(broken(48 + 46, 6), Some(RecordError::BadRecord));
        assert_eq!(broken(48 + 47, 8), Some(RecordError::BadRecord));
        assert_eq!(
            decode_frame(&good[..good.len() - 1]).err(),
            Some(RecordError::Malformed)
        );
        assert_eq!(decode_frame(&[]).err(), Some(RecordError::Malformed));
        let big = [0u8; MAX_FRAME_LEN + 1];
        assert_eq!(
            decode_frame(&big).err(),
            Some(RecordError::Oversized(MAX_FRAME_LEN + 1))
        );
        assert!(is_record_frame(&good) && !is_record_frame(b"MbSt") && !is_record_frame(b"Mb"));
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic; what decodes re-encodes to
        /// the same bytes.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            keep_magic in proptest::bool::ANY,
        ) {
            let mut bytes = bytes;
            if keep_magic && bytes.len() >= 8 {
                bytes[..8].copy_from_slice(&frame(0, false)[..8]);
            }
            if let Ok(f) = decode_frame(&bytes) {
                let mut again = f.header.to_bytes().to_vec();
                for r in f.records() {
                    again.extend_from_slice(&r.to_bytes());
                }
                proptest::prop_assert_eq!(again, bytes);
            }
        }
    }
}
