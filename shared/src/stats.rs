//! Fault statistics: the counters the guest keeps and the wire format that
//! carries them to the host.
//!
//! A [`Snapshot`] is serialised with postcard and framed with COBS (a frame ends
//! at a zero byte). The first two fields, [`WIRE_MAGIC`] and the version, are
//! fixed forever so that a decoder can reject frames it does not understand
//! before decoding the rest.
use serde::{Deserialize, Serialize};

/// First field of every frame: "MbSt".
pub const WIRE_MAGIC: u32 = 0x7453_624d;
/// Version of the [`Snapshot`] layout. Bump on any change to the structs below.
/// v2: histograms are sent sparse (only non-zero buckets).
pub const WIRE_VERSION: u16 = 2;
/// Upper bound of an encoded, COBS-framed snapshot in bytes (including the
/// terminating zero). The host rejects longer frames without decoding them.
pub const MAX_FRAME_LEN: usize = 8192;
/// Buckets of a log2 cycle histogram: bucket `i` counts faults that took
/// `[2^i, 2^(i+1))` TSC cycles (bucket 0 also holds 0 and 1; the last bucket
/// holds everything from 2^31 cycles up). 32 is also serde's largest array.
pub const HISTOGRAM_BUCKETS: usize = 32;

/// The kinds of page fault the Möbius VMM distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
}

impl FaultKind {
    pub const COUNT: usize = 10;
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

/// Histograms on the wire: only the non-zero buckets, as `(index, count)`
/// pairs. Most of the 10 × 32 buckets are zero, and every value serialised
/// costs guest ring-0 instructions (emulated on kvm_pvm): sending them sparse
/// makes a snapshot several times cheaper to encode.
pub mod sparse {
    use super::HISTOGRAM_BUCKETS;
    use core::fmt;
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u64; HISTOGRAM_BUCKETS], s: S) -> Result<S::Ok, S::Error> {
        let n = h.iter().filter(|&&v| v != 0).count();
        let mut seq = s.serialize_seq(Some(n))?;
        for (i, &v) in h.iter().enumerate().filter(|(_, &v)| v != 0) {
            seq.serialize_element(&(i as u8, v))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[u64; HISTOGRAM_BUCKETS], D::Error> {
        struct Buckets;
        impl<'de> Visitor<'de> for Buckets {
            type Value = [u64; HISTOGRAM_BUCKETS];
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("(bucket, count) pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut h = [0u64; HISTOGRAM_BUCKETS];
                while let Some((i, v)) = seq.next_element::<(u8, u64)>()? {
                    *h.get_mut(usize::from(i))
                        .ok_or_else(|| A::Error::custom("histogram bucket out of range"))? = v;
                }
                Ok(h)
            }
        }
        d.deserialize_seq(Buckets)
    }
}

/// Count and latency of one fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FaultCounter {
    pub count: u64,
    /// Sum of the TSC cycles spent in faults of this kind.
    pub cycles: u64,
    /// log2 histogram of cycles per fault (sent sparse: see [`sparse`]).
    #[serde(with = "sparse")]
    pub histogram: [u64; HISTOGRAM_BUCKETS],
}

/// Physical frame accounting (4 KiB frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FrameStats {
    pub total: u64,
    pub free: u64,
    pub used: u64,
    /// Free frames known to be zero (the zero pool).
    pub zeroed: u64,
    /// Times an allocation found no frame.
    pub exhausted: u64,
}

/// Address-space (node tree) statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeStats {
    /// Nodes in all address spaces (empty, reserved and mapped).
    pub nodes: u64,
    /// Mapped areas (descriptors) alive.
    pub areas: u64,
    pub lookups: u64,
    /// Deepest lookup seen (tree levels visited).
    pub max_lookup_depth: u64,
}

/// Why the snapshot was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotReason {
    /// Periodic snapshot (`--interval`).
    Interval,
    /// Final snapshot before the guest exits.
    Exit,
}

/// One statistics snapshot, the unit of the wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The fixed prefix of every frame, decodable whatever the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireHeader {
    pub magic: u32,
    pub version: u16,
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
        }
    }

    /// Total faults of every kind that counts as a resolved or failed fault
    /// (ZeroPoolHit/ZeroPoolMiss are sub-counts of DemandZero and excluded).
    pub fn total_faults(&self) -> u64 {
        FaultKind::ALL
            .iter()
            .filter(|k| !matches!(k, FaultKind::ZeroPoolHit | FaultKind::ZeroPoolMiss))
            .map(|k| self.faults[k.index()].count)
            .sum()
    }

    /// Encode as one COBS frame (terminated by a zero byte) into `buf`.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], WireError> {
        postcard::to_slice_cobs(self, buf).map_err(|_| WireError::BufferTooSmall)
    }

    /// Decode one frame (with or without its terminating zero). `frame` is
    /// used as scratch space for COBS decoding.
    pub fn decode(frame: &mut [u8]) -> Result<Snapshot, WireError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(WireError::Oversized(frame.len()));
        }
        let n = cobs_decode_in_place(frame)?;
        let raw = &frame[..n];
        let (header, _) =
            postcard::take_from_bytes::<WireHeader>(raw).map_err(|_| WireError::Malformed)?;
        if header.magic != WIRE_MAGIC {
            return Err(WireError::BadMagic(header.magic));
        }
        if header.version != WIRE_VERSION {
            return Err(WireError::UnknownVersion(header.version));
        }
        let (snap, rest) =
            postcard::take_from_bytes::<Snapshot>(raw).map_err(|_| WireError::Malformed)?;
        if !rest.is_empty() {
            return Err(WireError::Malformed);
        }
        Ok(snap)
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

/// COBS-decode `buf` in place; returns the decoded length. A trailing zero
/// (frame terminator) is allowed; any other zero byte is malformed.
fn cobs_decode_in_place(buf: &mut [u8]) -> Result<usize, WireError> {
    let end = match buf.iter().position(|&b| b == 0) {
        Some(p) if p + 1 == buf.len() => p,
        Some(_) => return Err(WireError::Malformed),
        None => buf.len(),
    };
    let (mut read, mut write) = (0usize, 0usize);
    while read < end {
        let code = buf[read] as usize;
        if code == 0 || read + code > end + 1 {
            return Err(WireError::Malformed);
        }
        read += 1;
        for _ in 1..code {
            if read >= end {
                return Err(WireError::Malformed);
            }
            buf[write] = buf[read];
            write += 1;
            read += 1;
        }
        if code != 0xff && read < end {
            buf[write] = 0;
            write += 1;
        }
    }
    Ok(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let mut s = Snapshot::new(42, 2_000_000);
        s.seq = 3;
        s.faults[FaultKind::DemandZero.index()].count = 1000;
        s.faults[FaultKind::DemandZero.index()].histogram[17] = 1000;
        s.frames.free = 12345;
        s
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let frame = sample().encode(&mut buf).expect("fits");
        assert_eq!(*frame.last().expect("non-empty"), 0);
        let mut copy = frame.to_vec_in_test();
        assert_eq!(Snapshot::decode(&mut copy), Ok(sample()));
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        let mut s = sample();
        s.version = 99;
        let mut buf = [0u8; MAX_FRAME_LEN];
        let mut frame = s.encode(&mut buf).expect("fits").to_vec_in_test();
        assert_eq!(
            Snapshot::decode(&mut frame),
            Err(WireError::UnknownVersion(99))
        );
        let mut garbage = [7u8, 1, 2, 3, 0];
        assert!(Snapshot::decode(&mut garbage).is_err());
        let mut zero_inside = [2u8, 0, 3, 0];
        assert_eq!(
            Snapshot::decode(&mut zero_inside),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn sparse_histograms_are_small_and_bounded() {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let len = Snapshot::new(1, 1).encode(&mut buf).expect("fits").len();
        assert!(
            len < 120,
            "an empty snapshot should be small, got {len} bytes"
        );
        // A bucket index past the end is malformed, not a panic.
        let mut s = sample();
        s.faults[0].histogram[HISTOGRAM_BUCKETS - 1] = 5;
        let mut frame = s.encode(&mut buf).expect("fits").to_vec_in_test();
        let pos = frame
            .iter()
            .position(|&b| b == (HISTOGRAM_BUCKETS - 1) as u8)
            .expect("index byte");
        frame[pos] = 200;
        assert_eq!(Snapshot::decode(&mut frame), Err(WireError::Malformed));
    }

    #[test]
    fn buckets() {
        assert_eq!(histogram_bucket(0), 0);
        assert_eq!(histogram_bucket(1), 0);
        assert_eq!(histogram_bucket(2), 1);
        assert_eq!(histogram_bucket(1 << 20), 20);
        assert_eq!(histogram_bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
    }

    trait ToVec {
        fn to_vec_in_test(&self) -> FixedVec;
    }
    /// no_std stand-in for Vec in tests: a fixed buffer with a length.
    struct FixedVec([u8; MAX_FRAME_LEN], usize);
    impl ToVec for [u8] {
        fn to_vec_in_test(&self) -> FixedVec {
            let mut v = FixedVec([0; MAX_FRAME_LEN], self.len());
            v.0[..self.len()].copy_from_slice(self);
            v
        }
    }
    impl core::ops::Deref for FixedVec {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            &self.0[..self.1]
        }
    }
    impl core::ops::DerefMut for FixedVec {
        fn deref_mut(&mut self) -> &mut [u8] {
            &mut self.0[..self.1]
        }
    }
}
