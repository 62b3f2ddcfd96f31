//! The statistics frame decoder (`mobius_shared::stats::Snapshot::decode`,
//! wire v3 and v4 with the process block of `mobius_shared::procstats`) on
//! arbitrary bytes: it never panics, and what it accepts encodes back to a
//! frame that decodes to the same snapshot; a v4 frame as the guest sends
//! it comes back byte for byte (the only bytes that may differ are the zero
//! words inside the process block, which the decoder does not look at).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius_shared::procstats::{
    ProcessBlock, ENOSYS_LEN, HEAD_LEN, MAX_ENOSYS, MAX_RECORDS, RECORD_LEN,
};
use mobius_shared::stats::{
    wire, FaultCounter, FaultKind, Snapshot, MAX_FRAME_LEN, WIRE_MAGIC, WIRE_VERSION,
};

/// The process block alone: read, write, read gives the same block
/// (version 5, which this side writes; version 4 must only not panic).
fn check_block(bytes: &[u8]) {
    let _ = ProcessBlock::read(bytes, 4);
    let Ok(block) = ProcessBlock::read(bytes, 5) else {
        return;
    };
    assert!(block.records().len() <= MAX_RECORDS);
    assert!(block.enosys_numbers().len() <= MAX_ENOSYS);
    assert_eq!(block.wire_len(), bytes.len());
    let mut out = vec![0u8; block.wire_len()];
    assert_eq!(block.write(&mut out), Ok(bytes.len()));
    assert_eq!(ProcessBlock::read(&out, 5), Ok(block.clone()));
    for (i, (a, b)) in out.iter().zip(bytes).enumerate() {
        assert!(a == b || is_block_padding(&block, i), "byte {i}");
    }
}

/// Whether byte `i` of `block`'s wire form is one of its unchecked zero
/// words (the `u32 zero` of each ENOSYS entry and of each record).
fn is_block_padding(block: &ProcessBlock, i: usize) -> bool {
    let enosys_end = HEAD_LEN + ENOSYS_LEN * block.enosys_numbers().len();
    if (HEAD_LEN..enosys_end).contains(&i) {
        return (4..8).contains(&((i - HEAD_LEN) % ENOSYS_LEN));
    }
    i >= enosys_end && (12..16).contains(&((i - enosys_end) % RECORD_LEN))
}

fuzz_target!(|data: &[u8]| {
    check_block(data);
    let Ok(snap) = Snapshot::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_FRAME_LEN);
    assert_eq!(snap.magic, WIRE_MAGIC);
    match snap.version {
        3 => {
            assert!(snap.processes.is_none());
            for k in &snap.faults[FaultKind::COUNT_V3..] {
                assert_eq!(*k, FaultCounter::default());
            }
        }
        // Version 4: records without a command line (re-encoded as 5).
        4 | 5 => {}
        v => panic!("decoded version {v}"),
    }
    let histograms = data[7] & wire::FLAG_HISTOGRAMS != 0;
    if !histograms {
        assert!(!snap.has_histograms());
    }

    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let frame = snap.encode(&mut buf).expect("a decoded snapshot fits");
    assert_eq!(frame.len(), snap.header().frame_len());
    let mut want = snap.clone();
    want.version = WIRE_VERSION;
    assert_eq!(Snapshot::decode(frame), Ok(want));

    if snap.version == WIRE_VERSION && histograms == snap.has_histograms() {
        assert_eq!(frame.len(), data.len());
        let block_start = if histograms {
            wire::FULL_LEN
        } else {
            wire::SHORT_LEN
        };
        for (i, (a, b)) in frame.iter().zip(data).enumerate() {
            let padding = i >= block_start
                && snap
                    .processes
                    .as_ref()
                    .is_some_and(|p| is_block_padding(p, i - block_start));
            assert!(a == b || padding, "byte {i}: {a:#x} != {b:#x}");
        }
    }
});
