//! Where the guest's record frames go during `mobius record`: checked
//! ([`mobius_shared::record::decode_frame`]) and their records streamed to
//! the data file. The sink keeps counts, never records: whatever the guest
//! sends, the host holds one write buffer of them.
use std::io::Write;

use mobius_shared::record::{decode_frame, RecordError as WireError};

use super::file::{Trailer, Writer};

/// Counts of what arrived, for the trailer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub frames: u64,
    /// Refused frames, and frames missing from the sequence.
    pub bad_frames: u64,
    pub dropped: u64,
    pub seen: u64,
    pub tsc_khz: u64,
    pub final_frame: bool,
}

/// The record frames' destination.
pub struct Sink<W: Write> {
    writer: Option<Writer<W>>,
    pub counts: SinkCounts,
    next_seq: u32,
    warned: bool,
}

impl<W: Write> Sink<W> {
    pub fn new(writer: Writer<W>) -> Self {
        Sink {
            writer: Some(writer),
            counts: SinkCounts::default(),
            next_seq: 0,
            warned: false,
        }
    }

    /// Take one frame from the guest.
    pub fn push(&mut self, frame: &[u8]) {
        let f = match decode_frame(frame) {
            Ok(f) => f,
            Err(e) => return self.refuse(e),
        };
        let c = &mut self.counts;
        c.frames = c.frames.saturating_add(1);
        let h = f.header;
        if h.seq != self.next_seq {
            // Frames lost (or replayed) on the way: count the gap.
            let gap = h.seq.wrapping_sub(self.next_seq);
            c.bad_frames = c.bad_frames.saturating_add(u64::from(gap));
        }
        self.next_seq = h.seq.wrapping_add(1);
        c.dropped = c.dropped.max(h.dropped);
        c.seen = c.seen.max(h.seen);
        c.tsc_khz = h.tsc_khz;
        c.final_frame |= h.last;
        if let Some(w) = self.writer.as_mut() {
            w.set_tsc_khz(h.tsc_khz);
            w.records(f.record_bytes());
        }
    }

    fn refuse(&mut self, e: WireError) {
        self.counts.bad_frames = self.counts.bad_frames.saturating_add(1);
        if !self.warned {
            self.warned = true;
            eprintln!("mobius: warning: ignoring a bad record frame from the guest: {e} (further ones counted)");
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.writer.as_ref().map_or(0, Writer::count)
    }

    /// Write the trailer with these counts, the run's `status` and the
    /// processes' names; the writer's output back.
    pub fn finish(
        &mut self,
        status: i32,
        processes: Vec<(u32, String)>,
    ) -> Result<(W, u64), std::io::Error> {
        let c = self.counts;
        let trailer = Trailer {
            records: 0,
            dropped: c.dropped,
            seen: c.seen,
            frames: c.frames,
            bad_frames: c.bad_frames,
            final_frame: c.final_frame,
            status,
            processes,
        };
        let writer = self
            .writer
            .take()
            .ok_or_else(|| std::io::Error::other("the record file was finished already"))?;
        writer.finish(&trailer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::file::Header;
    use mobius_shared::record::{FaultRecord, FrameHeader};

    fn frame(seq: u32, n: u32, last: bool) -> Vec<u8> {
        let h = FrameHeader {
            last,
            seq,
            count: n,
            dropped: u64::from(seq),
            seen: 100,
            tsc_khz: 5,
            sample: 1,
            ring: 8,
        };
        let mut out = h.to_bytes().to_vec();
        for i in 0..n {
            out.extend_from_slice(
                &FaultRecord {
                    tsc: u64::from(i),
                    ..FaultRecord::default()
                }
                .to_bytes(),
            );
        }
        out
    }

    #[test]
    fn counts_frames_gaps_and_bad_frames() {
        let w = Writer::new(
            Vec::new(),
            &Header {
                sample: 1,
                ..Header::default()
            },
        );
        let mut s = Sink::new(w);
        s.push(&frame(0, 3, false));
        s.push(&frame(2, 2, false)); // frame 1 missing
        s.push(b"MbRc garbage");
        s.push(&frame(3, 0, true));
        assert_eq!(s.records(), 5);
        let c = s.counts;
        assert_eq!((c.frames, c.bad_frames, c.dropped, c.seen), (3, 2, 3, 100));
        assert!(c.final_frame);
        let (bytes, len) = s.finish(0, vec![(1, "/bin/x".into())]).expect("finish");
        assert_eq!(len as usize, bytes.len());
        assert!(bytes.ends_with(&(60u64 + 4 + 4 + 6 + 8).to_le_bytes()));
        // The header carries the TSC frequency of the first frame.
        let h_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4")) as usize;
        assert_eq!(Header::parse(&bytes[..h_len]).expect("header").tsc_khz, 5);
    }
}
