//! Tests of the statistics wire format.
use super::*;

fn sample() -> Snapshot {
    let mut s = Snapshot::new(42, 2_000_000);
    s.seq = 3;
    s.reason = SnapshotReason::Interval;
    s.tsc = 7;
    s.tsc_boot = 5;
    s.tsc_ready = 6;
    s.faults[FaultKind::DemandZero.index()].count = 1000;
    s.faults[FaultKind::DemandZero.index()].cycles = 123_456;
    s.faults[FaultKind::Unresolved.index()].histogram[HISTOGRAM_BUCKETS - 1] = 9;
    s.faults[FaultKind::DemandZero.index()].histogram[17] = 1000;
    s.frames = FrameStats {
        total: 1,
        free: 12345,
        used: 3,
        zeroed: 4,
        exhausted: 5,
        free_errors: 2,
    };
    s.nodes = NodeStats {
        nodes: 6,
        areas: 7,
        lookups: 8,
        max_lookup_depth: 9,
    };
    s
}

#[test]
fn round_trip_with_and_without_histograms() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let frame = sample().encode(&mut buf).expect("fits");
    assert_eq!(frame.len(), wire::FULL_LEN);
    assert_eq!(Snapshot::decode(frame), Ok(sample()));

    let mut plain = sample();
    for c in plain.faults.iter_mut() {
        c.histogram = [0; HISTOGRAM_BUCKETS];
    }
    let frame = plain.encode(&mut buf).expect("fits");
    assert_eq!(frame.len(), wire::SHORT_LEN);
    assert_eq!(Snapshot::decode(frame), Ok(plain));
}

#[test]
fn header_fields_sit_at_their_documented_offsets() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let frame = sample().encode(&mut buf).expect("fits");
    let at = |o: usize| u64::from_le_bytes(frame[o..o + 8].try_into().expect("8 bytes"));
    assert_eq!(&frame[0..4], b"MbSt");
    assert_eq!(u16::from_le_bytes([frame[4], frame[5]]), WIRE_VERSION);
    assert_eq!((frame[6], frame[7]), (0, wire::FLAG_HISTOGRAMS));
    assert_eq!((at(8) & 0xffff_ffff, at(8) >> 32), (3, 2)); // seq, free errors
    assert_eq!((at(16), at(24)), (42, 2_000_000));
    assert_eq!((at(56), at(64), at(96), at(120)), (1, 12345, 6, 9));
    assert_eq!((at(128), at(136)), (1000, 123_456));
    assert_eq!(at(wire::SHORT_LEN + 17 * 8), 1000);
}

#[test]
fn rejects_what_it_does_not_understand() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let good = sample().encode(&mut buf).expect("fits").to_vec_in_test();
    let broken = |offset: usize, value: u8| {
        let mut f = good.to_vec_in_test();
        f[offset] = value;
        Snapshot::decode(&f)
    };
    assert_eq!(broken(0, b'X'), Err(WireError::BadMagic(0x7453_6258)));
    assert_eq!(broken(4, 99), Err(WireError::UnknownVersion(99)));
    assert_eq!(broken(6, 2), Err(WireError::Malformed)); // reason
    assert_eq!(broken(7, 2), Err(WireError::Malformed)); // flags
    assert_eq!(broken(7, 0), Err(WireError::Malformed)); // length vs flags
                                                         // Bytes 12..16: the free-error count since version 4.
    assert_eq!(broken(12, 7).map(|s| s.frames.free_errors), Ok(7));
    assert_eq!(
        Snapshot::decode(&good[..good.len() - 1]),
        Err(WireError::Malformed)
    );
    assert_eq!(Snapshot::decode(&good[..3]), Err(WireError::Malformed));
    assert_eq!(Snapshot::decode(&[]), Err(WireError::Malformed));
    assert_eq!(
        Snapshot::decode(&[0u8; MAX_FRAME_LEN + 1]),
        Err(WireError::Oversized(MAX_FRAME_LEN + 1))
    );
    assert_eq!(
        sample().encode(&mut [0u8; 100]).err(),
        Some(WireError::BufferTooSmall)
    );
}

#[test]
fn the_documented_serial_line_start() {
    let mut s = sample();
    s.reason = SnapshotReason::Exit;
    s.seq = 0;
    s.frames.free_errors = 0;
    for c in s.faults.iter_mut() {
        c.histogram = [0; HISTOGRAM_BUCKETS];
    }
    let mut buf = [0u8; MAX_FRAME_LEN];
    let frame = s.encode(&mut buf).expect("fits");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (i, b) in frame[..16].iter().enumerate() {
        hex[2 * i] = HEX[usize::from(b >> 4)];
        hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    assert_eq!(&hex, b"4d625374050001000000000000000000");
    assert_eq!(14 + 2 * frame.len() + 1, 687);
}

#[test]
fn extreme_values_decode_and_total_saturates() {
    let mut s = sample();
    s.run_id = u64::MAX;
    s.tsc_khz = u64::MAX;
    s.tsc = u64::MAX;
    s.seq = u32::MAX;
    for c in s.faults.iter_mut() {
        c.count = u64::MAX;
        c.cycles = u64::MAX;
        c.histogram = [u64::MAX; HISTOGRAM_BUCKETS];
    }
    s.frames.total = u64::MAX;
    let mut buf = [0u8; MAX_FRAME_LEN];
    let frame = s.encode(&mut buf).expect("fits");
    let back = Snapshot::decode(frame).expect("valid frame");
    assert_eq!(back, s);
    assert_eq!(back.total_faults(), u64::MAX);
    let mut two = Snapshot::new(0, 0);
    two.faults[FaultKind::DemandZero.index()].count = u64::MAX - 1;
    two.faults[FaultKind::Map.index()].count = 1;
    two.faults[FaultKind::Upgrade.index()].count = 5;
    two.faults[FaultKind::ZeroPoolHit.index()].count = u64::MAX;
    assert_eq!(two.total_faults(), u64::MAX, "sub-counts excluded");
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

#[test]
fn a_process_block_round_trips_and_v3_frames_still_decode() {
    use crate::procstats::{ProcessBlock, ProcessRecord};
    let mut s = sample();
    let mut block = ProcessBlock {
        syscalls: 77,
        ..ProcessBlock::default()
    };
    let mut r = ProcessRecord {
        pid: 1,
        syscalls: 77,
        ..ProcessRecord::default()
    };
    r.set_name("/bin/hello");
    r.set_command(b"hello\0world\0");
    block.push(r);
    s.processes = Some(block);
    let mut buf = [0u8; MAX_FRAME_LEN];
    let frame = s.encode(&mut buf).expect("fits").to_vec();
    assert_eq!(frame[7], wire::FLAG_HISTOGRAMS | wire::FLAG_PROCESSES);
    let back = Snapshot::decode(&frame).expect("decodes");
    assert_eq!(back, s);
    // A truncated block is malformed, not a panic.
    assert_eq!(
        Snapshot::decode(&frame[..frame.len() - 1]),
        Err(WireError::Malformed)
    );
    // A version-4 frame: the same, records of 64 bytes without the
    // command line.
    let block_at = frame.len() - crate::procstats::HEAD_LEN - crate::procstats::RECORD_LEN;
    let mut f4 = frame[..block_at + crate::procstats::HEAD_LEN + 64].to_vec();
    f4[4] = 4;
    let v4 = Snapshot::decode(&f4).expect("v4 decodes");
    let rec = v4.processes.as_ref().expect("block").records()[0];
    assert_eq!((rec.pid, rec.syscalls, rec.name()), (1, 77, "/bin/hello"));
    assert_eq!(v4.version, 4);
    // A version-3 frame (ten kinds, no block, bytes 12..16 zero) still
    // decodes.
    let mut v3 = sample();
    v3.frames.free_errors = 0;
    for c in v3.faults.iter_mut() {
        c.histogram = [0; HISTOGRAM_BUCKETS];
    }
    for k in [FaultKind::Shared, FaultKind::Cow, FaultKind::CowReuse] {
        v3.faults[k.index()] = FaultCounter::default();
    }
    let mut buf3 = [0u8; MAX_FRAME_LEN];
    let full = v3.encode(&mut buf3).expect("fits");
    let mut f3 = full[..wire::HEADER_LEN + 16 * FaultKind::COUNT_V3].to_vec();
    f3[4] = 3;
    v3.version = 3;
    assert_eq!(Snapshot::decode(&f3), Ok(v3));
    // A v3 frame claiming a process block does not.
    let mut bad = frame.clone();
    bad[4] = 3;
    assert_eq!(Snapshot::decode(&bad), Err(WireError::Malformed));
}
