//! The host's serial filter (`mobius::stats::SerialStatsFilter`) and the
//! collector's hex lines behind it, on an arbitrary console byte stream
//! written in arbitrary pieces (byte 0 of the input picks the piece sizes).
//!
//! Checked against a model of the documented behaviour (the module doc of
//! `mobius_shared::stats`, "Transports"): every line that does not begin
//! with `mobius-stats: ` comes out unchanged; a statistics line is taken
//! out and decoded when its digits are hex digits (an even number of them,
//! at most `2 * MAX_FRAME_LEN`) and the frame is valid, and counted as an
//! error otherwise; an over-long one is dropped and counted; the collector
//! keeps what the model decodes.
#![no_main]

use std::io::Write;
use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use mobius::stats::{SerialStatsFilter, StatsCollector, SERIAL_PREFIX};
use mobius_shared::stats::{Snapshot, SnapshotReason, MAX_FRAME_LEN};

/// The filter's buffer bound (`MAX_LINE` in host/src/stats/serial.rs).
const MAX_LINE: usize = 2 * MAX_FRAME_LEN + 64;

#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<u8>>>);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The documented decoding of one statistics line's digits.
fn model_decode(hex: &str) -> Option<Snapshot> {
    if hex.len() > 2 * MAX_FRAME_LEN
        || !hex.len().is_multiple_of(2)
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let frame: Vec<u8> = hex
        .as_bytes()
        .chunks(2)
        .map(|d| u8::from_str_radix(std::str::from_utf8(d).expect("ASCII"), 16).expect("hex"))
        .collect();
    Snapshot::decode(&frame).ok()
}

#[derive(Default)]
struct Model {
    out: Vec<u8>,
    /// Statistics lines taken out (decoded or counted as errors).
    taken: u64,
    decoded: Vec<Snapshot>,
}

fn model(stream: &[u8]) -> Model {
    let prefix = SERIAL_PREFIX.as_bytes();
    let mut m = Model::default();
    let mut rest = stream;
    while !rest.is_empty() {
        let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..=i], true),
            None => (rest, false),
        };
        rest = &rest[line.len()..];
        let content = if complete {
            &line[..line.len() - 1]
        } else {
            line
        };
        let n = content.len().min(prefix.len());
        let may_be_stats = content[..n] == prefix[..n];
        if !may_be_stats || (complete && content.len() < prefix.len()) {
            m.out.extend_from_slice(line);
        } else if content.len() > MAX_LINE {
            m.taken += 1; // dropped unread, counted as oversized
        } else if !complete {
            // Held back: the stream may still finish the line.
        } else {
            let text = String::from_utf8_lossy(line);
            match text.trim_end().strip_prefix(SERIAL_PREFIX) {
                Some(hex) => {
                    m.taken += 1;
                    m.decoded.extend(model_decode(hex));
                }
                None => m.out.extend_from_slice(line),
            }
        }
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let collector = StatsCollector::shared();
    let out = Out::default();
    let mut filter = SerialStatsFilter::new(Box::new(out.clone()), collector.clone());
    // Pieces of 1 to 64 bytes from a small generator seeded by byte 0, or
    // the whole stream at once for seed 0.
    let mut state = u32::from(seed);
    let mut rest = stream;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = if seed == 0 {
            rest.len()
        } else {
            1 + (state >> 16) as usize % 64
        };
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        assert_eq!(filter.write(piece).expect("write"), piece.len());
        rest = tail;
    }

    let want = model(stream);
    assert_eq!(
        String::from_utf8_lossy(&out.0.lock().expect("lock")),
        String::from_utf8_lossy(&want.out)
    );
    let c = collector.lock();
    assert_eq!(c.decoded() + c.errors().total(), want.taken);
    assert_eq!(c.decoded(), want.decoded.len() as u64);
    assert!(c.retained() <= mobius::stats::MAX_RETAINED_SNAPSHOTS);
    assert_eq!(c.first(), want.decoded.first());
    assert_eq!(c.latest(), want.decoded.last());
    let last_exit = want
        .decoded
        .iter()
        .rev()
        .find(|s| s.reason == SnapshotReason::Exit);
    assert_eq!(c.exit_snapshot(), last_exit);
});
