//! Fault statistics: the counters the guest keeps and the wire format that
//! carries them to the host.
//!
//! # Wire format (version 5)
//!
//! A frame is a fixed layout read at fixed offsets. Every integer is
//! unsigned and little-endian; `u64` fields are 8 bytes at the offsets given.
//!
//! | bytes | type | what |
//! |---|---|---|
//! | 0..4 | u32 | [`WIRE_MAGIC`] `0x7453624d`: the bytes `4d 62 53 74`, ASCII `MbSt` |
//! | 4..6 | u16 | [`WIRE_VERSION`], 5: `05 00` (a decoder also reads version 4, whose process records have no command line, and version 3, which never has the process block) |
//! | 6 | u8 | [`SnapshotReason`]: 0 interval (`-I`), 1 exit (the final one); any other value: malformed |
//! | 7 | u8 | flags: bit 0 [`wire::FLAG_HISTOGRAMS`] (1): the histogram block follows the counters; bit 1 [`wire::FLAG_PROCESSES`] (2, versions 4 and 5): a process block ([`crate::procstats`]) ends the frame; any other bit: malformed |
//! | 8..12 | u32 | sequence number of the snapshot within the run, from 0 |
//! | 12..16 | u32 | versions 4 and 5: [`FrameStats::free_errors`], saturated at `u32::MAX`; version 3: zero (a decoder rejects anything else) |
//! | 16..24 | u64 | run id (`run_id=` on the command line, 0 if none) |
//! | 24..32 | u64 | TSC frequency in kHz (0: unknown) |
//! | 32..40 | u64 | TSC when the snapshot was taken |
//! | 40..48 | u64 | TSC when the kernel reached its main function |
//! | 48..56 | u64 | TSC when the workload started |
//! | 56..96 | 5 × u64 | [`FrameStats`]: total, free, used, zeroed, exhausted (at 56, 64, 72, 80, 88) |
//! | 96..128 | 4 × u64 | [`NodeStats`]: nodes, areas, lookups (at 96, 104, 112); at 120 the largest B-tree height bound of a searched tree (computed from its node count, not a measured path: `mobius stat` does not show it) |
//! | 128..336 | 13 × (u64, u64) | per [`FaultKind`] `k` in index order: count at `128 + 16k`, sum of TSC cycles at `136 + 16k` (version 3: 10 kinds, bytes 128..288) |
//! | 336..3664 | 13 × 32 × u64 | only with the histograms flag: bucket `i` of kind `k` at `336 + 8 (32k + i)`: faults that took `[2^i, 2^(i+1))` cycles (bucket 0 also 0 and 1, bucket 31 everything from `2^31`); version 3: 10 × 32 at `288..2848` |
//!
//! Kind indices `k`: 0 demand-zero, 1 zero-pool-hit, 2 zero-pool-miss
//! (these two split demand-zero), 3 upgrade, 4 map, 5 file, 6 image,
//! 7 callback, 8 protection, 9 unresolved, 10 shared, 11 cow, 12 cow-reuse
//! ([`FaultKind::ALL`]; version 3 has kinds 0 to 9).
//!
//! Without the process flag a frame is exactly [`wire::SHORT_LEN`] (336)
//! bytes with flags 0, or [`wire::FULL_LEN`] (3664) with flags 1 (version 3:
//! 288 and 2848); with it,
//! that many plus the process block, whose own head gives its length
//! (`32 + 16 E + 128 R`, or `32 + 16 E + 64 R` in version 4, see [`crate::procstats`]). Any other length is
//! malformed, and one longer than [`MAX_FRAME_LEN`] (8192) is dropped unread. Magic and
//! version come first and stay there forever, so a decoder rejects what it
//! does not understand before reading the rest (check the magic, then the
//! version, then reason, flags, length and bytes 12..16).
//!
//! # Transports
//!
//! Over the virtio console one frame is one descriptor chain (header,
//! counter block and histogram block may be separate descriptors: the frame
//! is their bytes in chain order).
//!
//! Without a virtio console the guest writes each frame as one line on its
//! serial console (COM1, port 0x3f8; under `mobius` the console-write port
//! may carry parts of the same line, which the host treats as COM1 bytes):
//!
//! | bytes of the line | what |
//! |---|---|
//! | 0..14 | the ASCII prefix `mobius-stats: `, bytes `6d 6f 62 69 75 73 2d 73 74 61 74 73 3a 20` (one space at the end) |
//! | 14..14+2N | the frame's N bytes, byte 0 first, each as two lowercase hex digits (`0-9a-f`), high nibble first |
//! | 14+2N | `\n` (0x0a), no `\r` |
//!
//! So a line is 14 + 2 × 336 + 1 = 687 bytes, or 7343 with histograms.
//! The final snapshot of a run without histograms starts
//! `mobius-stats: 4d62537405000100` (magic, version 5, reason 1, flags 0),
//! then bytes 8..16, `0000000000000000` for the first snapshot (sequence
//! number 0, then the zero word).
//!
//! A decoder (this host's is `mobius::stats::collector`) takes a console
//! line as statistics only when it begins with the prefix; it removes it
//! from the console output and passes every other line through. It ignores
//! trailing whitespace (a `\r` added on the way), counts a line with an odd
//! number of digits or a character that is not a hex digit as malformed, and
//! one with more than `2 × MAX_FRAME_LEN` digits as oversized (without
//! decoding it); the decoded bytes are then checked as a frame like any
//! other.
//!
//! Why not serde + postcard (v1, v2): the guest sends a snapshot from ring 0,
//! which kvm_pvm emulates at ~0.7 µs per instruction. Encoding v2 cost about
//! 8,500 instructions (~6 ms, a third of a whole boot); v3 costs the header's
//! sixteen stores, because the counter and histogram blocks go out as they
//! lie in the guest's memory (the guest keeps them in this very layout and
//! hands their addresses to the device as descriptors).

use crate::procstats::ProcessBlock;

/// First field of every frame: "MbSt".
pub const WIRE_MAGIC: u32 = 0x7453_624d;
/// Version of the frame layout. Bump on any change to it.
/// v2: postcard with sparse histograms; v3: the fixed layout above; v4:
/// the same plus an optional process block ([`crate::procstats`]); v5:
/// process records carry the command line.
pub const WIRE_VERSION: u16 = 5;
/// The oldest version a decoder still reads (v3 frames: no process block).
pub const WIRE_VERSION_MIN: u16 = 3;
/// Upper bound of a frame in bytes; the host drops longer ones unread.
pub const MAX_FRAME_LEN: usize = 8192;
/// Buckets of a log2 cycle histogram: bucket `i` counts faults that took
/// `[2^i, 2^(i+1))` TSC cycles (bucket 0 also holds 0 and 1; the last bucket
/// holds everything from 2^31 cycles up).
pub const HISTOGRAM_BUCKETS: usize = 32;

/// The kinds of page fault the Möbius VMM distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FaultKind {
    /// First touch of a NORMAL page: a zeroed frame was mapped.
    DemandZero = 0,
    /// A demand-zero fault served from the pool of known-zero frames.
    ZeroPoolHit = 1,
    /// A demand-zero fault that had to zero a frame on the fault path.
    ZeroPoolMiss = 2,
    /// A write to a valid clean page upgraded it to dirty (read-only → writable).
    Upgrade = 3,
    /// A page of a MAP area (given physical range) was mapped.
    Map = 4,
    /// A page of a FILE area was read in.
    FileReadIn = 5,
    /// A page of an IMAGE area was read in.
    Image = 6,
    /// A CALLBACK area's handler resolved the fault.
    Callback = 7,
    /// Access not allowed by the area (write to read-only, user to kernel).
    Protection = 8,
    /// No area covers the address, or the fault could not be resolved.
    Unresolved = 9,
    /// A frame that already exists was mapped: another space's page of a
    /// shared area, a copy-on-write page read after a fork, a FILE or
    /// IMAGE page already read in, a page of a `/tmp` file mapped
    /// `MAP_SHARED` (the file's own page; a hole becomes a page of the
    /// file), a read-only IMAGE page that lies whole in the initramfs
    /// (mapped in place, with the like pages of its 16-page block, which
    /// are not counted). No frame allocated, nothing read.
    Shared = 10,
    /// A write to a page shared copy-on-write: copied into a new frame.
    Cow = 11,
    /// A write to a copy-on-write page no one else shares any more: the
    /// frame was taken over without a copy.
    CowReuse = 12,
}

impl FaultKind {
    pub const COUNT: usize = 13;
    /// Kinds in a version-3 frame (the first ten).
    pub const COUNT_V3: usize = 10;
    pub const ALL: [FaultKind; Self::COUNT] = [
        FaultKind::DemandZero,
        FaultKind::ZeroPoolHit,
        FaultKind::ZeroPoolMiss,
        FaultKind::Upgrade,
        FaultKind::Map,
        FaultKind::FileReadIn,
        FaultKind::Image,
        FaultKind::Callback,
        FaultKind::Protection,
        FaultKind::Unresolved,
        FaultKind::Shared,
        FaultKind::Cow,
        FaultKind::CowReuse,
    ];

    /// Stable event name, as used by `mobius stat -e`.
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::DemandZero => "faults.demand-zero",
            FaultKind::ZeroPoolHit => "faults.zero-pool-hit",
            FaultKind::ZeroPoolMiss => "faults.zero-pool-miss",
            FaultKind::Upgrade => "faults.upgrade",
            FaultKind::Map => "faults.map",
            FaultKind::FileReadIn => "faults.file",
            FaultKind::Image => "faults.image",
            FaultKind::Callback => "faults.callback",
            FaultKind::Protection => "faults.protection",
            FaultKind::Unresolved => "faults.unresolved",
            FaultKind::Shared => "faults.shared",
            FaultKind::Cow => "faults.cow",
            FaultKind::CowReuse => "faults.cow-reuse",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Index of the log2 histogram bucket for a duration in cycles.
pub const fn histogram_bucket(cycles: u64) -> usize {
    let b = if cycles <= 1 {
        0
    } else {
        63 - cycles.leading_zeros() as usize
    };
    if b >= HISTOGRAM_BUCKETS {
        HISTOGRAM_BUCKETS - 1
    } else {
        b
    }
}

/// Count and latency of one fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounter {
    pub count: u64,
    /// Sum of the TSC cycles spent in faults of this kind.
    pub cycles: u64,
    /// log2 histogram of cycles per fault.
    pub histogram: [u64; HISTOGRAM_BUCKETS],
}

/// Physical frame accounting (4 KiB frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameStats {
    pub total: u64,
    pub free: u64,
    pub used: u64,
    /// Free frames known to be zero (the zero pool).
    pub zeroed: u64,
    /// Times an allocation found no frame.
    pub exhausted: u64,
    /// Frees (and shares) of frames that were not in use: a kernel bug,
    /// counted in every build (versions 4 and 5: bytes 12..16 of the header).
    pub free_errors: u64,
}

/// Address-space (node tree) statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Nodes in all address spaces (empty, reserved and mapped).
    pub nodes: u64,
    /// Mapped areas (descriptors) alive.
    pub areas: u64,
    pub lookups: u64,
    /// The largest B-tree height bound (from the node count) of a tree a
    /// lookup searched: a bound, not a measured path, so not shown as an
    /// event.
    pub max_lookup_depth: u64,
}

/// Why the snapshot was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReason {
    /// Periodic snapshot (`--interval`).
    Interval,
    /// Final snapshot before the guest exits.
    Exit,
}

/// One statistics snapshot, the unit of the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Always [`WIRE_MAGIC`].
    pub magic: u32,
    /// Always [`WIRE_VERSION`] when sent by this guest.
    pub version: u16,
    /// Run identifier from the command line (`run_id=`), 0 if none.
    pub run_id: u64,
    /// Sequence number of this snapshot within the run, from 0.
    pub seq: u32,
    pub reason: SnapshotReason,
    /// Guest TSC frequency in kHz.
    pub tsc_khz: u64,
    /// Guest TSC when the snapshot was taken.
    pub tsc: u64,
    /// Guest TSC when the kernel reached its main function.
    pub tsc_boot: u64,
    /// Guest TSC when the workload started (`ready`).
    pub tsc_ready: u64,
    /// Indexed by [`FaultKind::index`].
    pub faults: [FaultCounter; FaultKind::COUNT],
    pub frames: FrameStats,
    pub nodes: NodeStats,
    /// Per-process statistics (v4 frames with the process block).
    pub processes: Option<ProcessBlock>,
}

impl Snapshot {
    /// An empty snapshot with magic and version set.
    pub fn new(run_id: u64, tsc_khz: u64) -> Self {
        Snapshot {
            magic: WIRE_MAGIC,
            version: WIRE_VERSION,
            run_id,
            seq: 0,
            reason: SnapshotReason::Exit,
            tsc_khz,
            tsc: 0,
            tsc_boot: 0,
            tsc_ready: 0,
            faults: [FaultCounter::default(); FaultKind::COUNT],
            frames: FrameStats::default(),
            nodes: NodeStats::default(),
            processes: None,
        }
    }

    /// Total faults of every kind that counts as a resolved or failed fault
    /// (ZeroPoolHit/ZeroPoolMiss are sub-counts of DemandZero and excluded).
    /// The counts come from the guest: the sum saturates at `u64::MAX`
    /// rather than overflow (the same in debug and release builds).
    pub fn total_faults(&self) -> u64 {
        FaultKind::ALL
            .iter()
            .filter(|k| !matches!(k, FaultKind::ZeroPoolHit | FaultKind::ZeroPoolMiss))
            .fold(0u64, |sum, k| {
                sum.saturating_add(self.faults[k.index()].count)
            })
    }

    /// Whether any histogram bucket is non-zero.
    pub fn has_histograms(&self) -> bool {
        self.faults
            .iter()
            .any(|c| c.histogram.iter().any(|&v| v != 0))
    }

    /// The header of this snapshot in wire layout.
    pub fn header(&self) -> wire::Header {
        wire::Header {
            reason: self.reason,
            seq: self.seq,
            run_id: self.run_id,
            tsc_khz: self.tsc_khz,
            tsc: self.tsc,
            tsc_boot: self.tsc_boot,
            tsc_ready: self.tsc_ready,
            frames: self.frames,
            nodes: self.nodes,
            histograms: self.has_histograms(),
            process_block_len: self.processes.as_ref().map_or(0, ProcessBlock::wire_len),
        }
    }

    /// Encode as one frame into `buf`; returns the frame. The histograms go
    /// out only when one of them has a non-zero bucket. Magic and version
    /// are the constants, whatever the fields say.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8], WireError> {
        let header = self.header();
        let len = header.frame_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (head, rest) = out.split_at_mut(wire::HEADER_LEN);
        header.write(head);
        let (counters, histograms) = rest.split_at_mut(wire::COUNTERS_LEN);
        for (c, out) in self.faults.iter().zip(counters.chunks_exact_mut(16)) {
            out[..8].copy_from_slice(&c.count.to_le_bytes());
            out[8..].copy_from_slice(&c.cycles.to_le_bytes());
        }
        let hist_len = if header.histograms {
            wire::HISTOGRAMS_LEN
        } else {
            0
        };
        let (histograms, block) = histograms.split_at_mut(hist_len);
        let buckets = self.faults.iter().flat_map(|c| c.histogram.iter());
        for (v, out) in buckets.zip(histograms.chunks_exact_mut(8)) {
            out.copy_from_slice(&v.to_le_bytes());
        }
        if let Some(p) = &self.processes {
            p.write(block).map_err(|_| WireError::BufferTooSmall)?;
        }
        Ok(out)
    }

    /// Decode one frame (see the module doc for the layout).
    pub fn decode(frame: &[u8]) -> Result<Snapshot, WireError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(WireError::Oversized(frame.len()));
        }
        let u64_at = |at: usize| -> Result<u64, WireError> {
            let bytes = frame.get(at..at + 8).ok_or(WireError::Malformed)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            Ok(u64::from_le_bytes(b))
        };
        let head = frame.get(..8).ok_or(WireError::Malformed)?;
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if magic != WIRE_MAGIC {
            return Err(WireError::BadMagic(magic));
        }
        let version = u16::from_le_bytes([head[4], head[5]]);
        if !(WIRE_VERSION_MIN..=WIRE_VERSION).contains(&version) {
            return Err(WireError::UnknownVersion(version));
        }
        let reason = match head[6] {
            0 => SnapshotReason::Interval,
            1 => SnapshotReason::Exit,
            _ => return Err(WireError::Malformed),
        };
        let known = if version >= 4 {
            wire::FLAG_HISTOGRAMS | wire::FLAG_PROCESSES
        } else {
            wire::FLAG_HISTOGRAMS
        };
        if head[7] & !known != 0 {
            return Err(WireError::Malformed);
        }
        let histograms = head[7] & wire::FLAG_HISTOGRAMS != 0;
        let kinds = wire::kinds_in(version);
        let short = wire::HEADER_LEN + 16 * kinds;
        let expected = if histograms {
            short + kinds * HISTOGRAM_BUCKETS * 8
        } else {
            short
        };
        let has_block = head[7] & wire::FLAG_PROCESSES != 0;
        let length_ok = if has_block {
            frame.len() > expected
        } else {
            frame.len() == expected
        };
        if !length_ok || (version < 4 && u64_at(8)? >> 32 != 0) {
            return Err(WireError::Malformed);
        }
        let mut snap = Snapshot::new(u64_at(16)?, u64_at(24)?);
        snap.reason = reason;
        snap.seq = u64_at(8)? as u32;
        snap.tsc = u64_at(32)?;
        snap.tsc_boot = u64_at(40)?;
        snap.tsc_ready = u64_at(48)?;
        snap.frames = FrameStats {
            total: u64_at(56)?,
            free: u64_at(64)?,
            used: u64_at(72)?,
            zeroed: u64_at(80)?,
            exhausted: u64_at(88)?,
            free_errors: u64_at(8)? >> 32,
        };
        snap.nodes = NodeStats {
            nodes: u64_at(96)?,
            areas: u64_at(104)?,
            lookups: u64_at(112)?,
            max_lookup_depth: u64_at(120)?,
        };
        for (k, c) in snap.faults.iter_mut().enumerate().take(kinds) {
            let at = wire::HEADER_LEN + 16 * k;
            c.count = u64_at(at)?;
            c.cycles = u64_at(at + 8)?;
            if histograms {
                let base = short + k * HISTOGRAM_BUCKETS * 8;
                for (i, v) in c.histogram.iter_mut().enumerate() {
                    *v = u64_at(base + 8 * i)?;
                }
            }
        }
        if has_block {
            let block = frame.get(expected..).ok_or(WireError::Malformed)?;
            snap.processes =
                Some(ProcessBlock::read(block, version).map_err(|_| WireError::Malformed)?);
        }
        snap.version = version;
        Ok(snap)
    }
}

/// The frame layout: sizes, flags, and the header the guest fills.
pub mod wire {
    use super::{FaultKind, FrameStats, NodeStats, SnapshotReason, HISTOGRAM_BUCKETS};
    use super::{WIRE_MAGIC, WIRE_VERSION};

    /// Bytes of the header (magic to node statistics).
    pub const HEADER_LEN: usize = 128;
    /// Bytes of the per-kind count and cycle block.
    pub const COUNTERS_LEN: usize = FaultKind::COUNT * 16;
    /// Bytes of the per-kind histogram block.
    pub const HISTOGRAMS_LEN: usize = FaultKind::COUNT * HISTOGRAM_BUCKETS * 8;
    /// A frame without histograms.
    pub const SHORT_LEN: usize = HEADER_LEN + COUNTERS_LEN;
    /// A frame with histograms.
    pub const FULL_LEN: usize = SHORT_LEN + HISTOGRAMS_LEN;
    /// Flag: the histogram block follows the counters.
    pub const FLAG_HISTOGRAMS: u8 = 1;

    /// Fault kinds in a frame of `version` (3: the first ten; 4: all).
    pub const fn kinds_in(version: u16) -> usize {
        if version <= 3 {
            FaultKind::COUNT_V3
        } else {
            FaultKind::COUNT
        }
    }
    /// Flag (v4): a process block ([`crate::procstats`]) ends the frame.
    pub const FLAG_PROCESSES: u8 = 2;

    const _: () = assert!(FULL_LEN + crate::procstats::MAX_BLOCK_LEN <= super::MAX_FRAME_LEN);

    /// Everything of a frame before the counter block.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Header {
        pub reason: SnapshotReason,
        pub seq: u32,
        pub run_id: u64,
        pub tsc_khz: u64,
        pub tsc: u64,
        pub tsc_boot: u64,
        pub tsc_ready: u64,
        pub frames: FrameStats,
        pub nodes: NodeStats,
        /// Whether the histogram block follows.
        pub histograms: bool,
        /// Bytes of the process block at the end (0: none).
        pub process_block_len: usize,
    }

    impl Header {
        /// Length of the whole frame this header starts.
        pub const fn frame_len(&self) -> usize {
            let base = if self.histograms { FULL_LEN } else { SHORT_LEN };
            base + self.process_block_len
        }

        /// The header as sixteen little-endian words (word `i` is bytes
        /// `8i..8i+8`): built in registers, with no buffer to zero first.
        pub fn to_words(&self) -> [u64; HEADER_LEN / 8] {
            let reason: u64 = match self.reason {
                SnapshotReason::Interval => 0,
                SnapshotReason::Exit => 1,
            };
            let mut flags = 0u64;
            if self.histograms {
                flags |= u64::from(FLAG_HISTOGRAMS);
            }
            if self.process_block_len > 0 {
                flags |= u64::from(FLAG_PROCESSES);
            }
            let (f, n) = (&self.frames, &self.nodes);
            [
                u64::from(WIRE_MAGIC) | u64::from(WIRE_VERSION) << 32 | reason << 48 | flags << 56,
                u64::from(self.seq) | (self.frames.free_errors.min(u64::from(u32::MAX)) << 32),
                self.run_id,
                self.tsc_khz,
                self.tsc,
                self.tsc_boot,
                self.tsc_ready,
                f.total,
                f.free,
                f.used,
                f.zeroed,
                f.exhausted,
                n.nodes,
                n.areas,
                n.lookups,
                n.max_lookup_depth,
            ]
        }

        /// Write the header into the first [`HEADER_LEN`] bytes of `out`.
        ///
        /// # Panics
        /// If `out` is shorter than [`HEADER_LEN`] (a caller's bug).
        pub fn write(&self, out: &mut [u8]) {
            let words = self.to_words();
            for (w, out) in words.iter().zip(out[..HEADER_LEN].chunks_exact_mut(8)) {
                out.copy_from_slice(&w.to_le_bytes());
            }
        }
    }
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    BufferTooSmall,
    Oversized(usize),
    Malformed,
    BadMagic(u32),
    UnknownVersion(u16),
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::BufferTooSmall => write!(f, "buffer too small for snapshot"),
            WireError::Oversized(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME_LEN}"),
            WireError::Malformed => write!(f, "malformed frame"),
            WireError::BadMagic(m) => write!(f, "bad magic {m:#x}"),
            WireError::UnknownVersion(v) => {
                write!(
                    f,
                    "unknown wire version {v} (this host speaks {WIRE_VERSION})"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
