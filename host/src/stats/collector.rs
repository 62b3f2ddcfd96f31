//! Turning the guest's bytes into [`Snapshot`]s.
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use mobius_shared::stats::{Snapshot, WireError, MAX_FRAME_LEN};

/// Prefix of the serial fallback line: the guest writes `mobius-stats: `
/// followed by the hex of one frame when it has no virtio console.
pub const SERIAL_PREFIX: &str = "mobius-stats: ";

/// Frames the host could not use, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeErrors {
    pub malformed: u64,
    pub oversized: u64,
    pub unknown_version: u64,
    pub bad_magic: u64,
}

impl DecodeErrors {
    pub fn total(&self) -> u64 {
        self.malformed + self.oversized + self.unknown_version + self.bad_magic
    }
}

/// Called with each snapshot as it is decoded (for `mobius stat -I`).
pub type SnapshotCallback = Box<dyn FnMut(&Snapshot) + Send>;

/// Collects snapshots from frames: one per virtio descriptor chain, or one
/// per serial statistics line.
#[derive(Default)]
pub struct StatsCollector {
    snapshots: Vec<Snapshot>,
    errors: DecodeErrors,
    bytes: u64,
    notifications: u64,
    warned: bool,
    on_snapshot: Option<SnapshotCallback>,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCollector")
            .field("snapshots", &self.snapshots.len())
            .field("errors", &self.errors)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl StatsCollector {
    pub fn new() -> Self {
        Self::default()
    }

    /// A collector shared between a device (writer) and the CLI (reader).
    pub fn shared() -> SharedCollector {
        SharedCollector(Arc::new(Mutex::new(StatsCollector::new())))
    }

    /// Take one whole frame (the device has capped it at
    /// [`MAX_FRAME_LEN`] bytes; anything longer is counted as oversized).
    pub fn push_frame(&mut self, frame: &[u8]) {
        self.bytes += frame.len() as u64;
        self.decode(frame);
    }

    /// Take a serial line; returns `true` if it was a statistics line (and so
    /// must not be shown as guest output).
    pub fn push_serial_line(&mut self, line: &str) -> bool {
        let Some(hex) = line.trim_end().strip_prefix(SERIAL_PREFIX) else {
            return false;
        };
        self.bytes += line.len() as u64;
        if hex.len() > 2 * MAX_FRAME_LEN {
            self.reject(WireError::Oversized(hex.len() / 2));
            return true;
        }
        match decode_hex(hex) {
            Some(frame) => self.decode(&frame),
            None => self.reject(WireError::Malformed),
        }
        true
    }

    fn decode(&mut self, frame: &[u8]) {
        match Snapshot::decode(frame) {
            Ok(snap) => {
                if let Some(cb) = self.on_snapshot.as_mut() {
                    cb(&snap);
                }
                self.snapshots.push(snap);
            }
            Err(e) => self.reject(e),
        }
    }

    /// Call `cb` with every snapshot as soon as it is decoded.
    pub fn set_callback(&mut self, cb: SnapshotCallback) {
        self.on_snapshot = Some(cb);
    }

    /// Count a frame dropped for its size before it could be decoded.
    pub fn reject_oversized(&mut self, len: usize) {
        self.reject(WireError::Oversized(len));
    }

    fn reject(&mut self, e: WireError) {
        match e {
            WireError::Oversized(_) => self.errors.oversized += 1,
            WireError::UnknownVersion(_) => self.errors.unknown_version += 1,
            WireError::BadMagic(_) => self.errors.bad_magic += 1,
            WireError::Malformed | WireError::BufferTooSmall => self.errors.malformed += 1,
        }
        if !self.warned {
            self.warned = true;
            eprintln!("mobius: warning: ignoring a bad statistics frame from the guest: {e}");
        }
    }

    /// Snapshots decoded so far, in arrival order.
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    /// The last snapshot the guest sent at exit (or the last of any kind).
    pub fn final_snapshot(&self) -> Option<&Snapshot> {
        self.snapshots.last()
    }

    pub fn errors(&self) -> DecodeErrors {
        self.errors
    }

    /// One virtio notification (a VM exit) delivered statistics bytes.
    pub fn note_notification(&mut self) {
        self.notifications += 1;
    }

    /// Virtio notifications seen (0 when the guest used the serial fallback).
    pub fn notifications(&self) -> u64 {
        self.notifications
    }

    /// Bytes of statistics traffic received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A [`StatsCollector`] behind a lock, cloneable into devices and writers.
#[derive(Debug, Clone)]
pub struct SharedCollector(Arc<Mutex<StatsCollector>>);

impl SharedCollector {
    /// Lock it; a poisoned lock (a panic elsewhere) still gives the data.
    pub fn lock(&self) -> MutexGuard<'_, StatsCollector> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A serial writer that takes `mobius-stats:` lines out of the guest's
/// console output and passes everything else through to `inner`.
pub struct SerialStatsFilter {
    inner: Box<dyn Write + Send>,
    collector: SharedCollector,
    line: Vec<u8>,
    /// Dropping the rest of an over-long statistics line.
    discarding: bool,
}

/// Longest console line buffered while looking for the statistics prefix.
const MAX_LINE: usize = 2 * MAX_FRAME_LEN + 64;

impl SerialStatsFilter {
    pub fn new(inner: Box<dyn Write + Send>, collector: SharedCollector) -> Self {
        SerialStatsFilter {
            inner,
            collector,
            line: Vec::new(),
            discarding: false,
        }
    }

    /// Whether the buffered start of the line could still be a stats line.
    fn may_be_stats(&self) -> bool {
        let n = self.line.len().min(SERIAL_PREFIX.len());
        self.line[..n] == SERIAL_PREFIX.as_bytes()[..n]
    }

    fn pass_through(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        self.inner.write_all(&line)
    }
}

impl Write for SerialStatsFilter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if self.discarding {
                self.discarding = b != b'\n';
                continue;
            }
            self.line.push(b);
            if b == b'\n' {
                let text = String::from_utf8_lossy(&self.line).into_owned();
                if self.may_be_stats() && self.collector.lock().push_serial_line(&text) {
                    self.line.clear();
                } else {
                    self.pass_through()?;
                }
            } else if !self.may_be_stats() {
                self.pass_through()?;
            } else if self.line.len() > MAX_LINE {
                // A statistics line longer than any frame: count it, drop it.
                self.collector.lock().reject_oversized(self.line.len() / 2);
                self.line.clear();
                self.discarding = true;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::stats::FaultKind;

    fn frame(snap: &Snapshot) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        snap.encode(&mut buf).expect("fits").to_vec()
    }

    fn sample(n: u64) -> Snapshot {
        let mut s = Snapshot::new(7, 1000);
        s.faults[FaultKind::DemandZero.index()].count = n;
        s
    }

    #[test]
    fn frames_decode_in_order() {
        let mut c = StatsCollector::new();
        c.push_frame(&frame(&sample(1)));
        c.push_frame(&frame(&sample(2)));
        assert_eq!(c.snapshots().len(), 2);
        assert_eq!(c.final_snapshot(), Some(&sample(2)));
        assert_eq!(c.errors().total(), 0);
        assert_eq!(c.bytes(), 2 * frame(&sample(1)).len() as u64);
    }

    #[test]
    fn garbage_oversized_and_unknown_version_are_counted_and_skipped() {
        let mut c = StatsCollector::new();
        c.push_frame(&[5, 1, 2, 0]);
        c.push_frame(&vec![1u8; MAX_FRAME_LEN * 3]);
        let mut future = frame(&sample(3));
        future[4] = future[4].wrapping_add(1);
        c.push_frame(&future);
        let mut bad_magic = frame(&sample(3));
        bad_magic[0] ^= 0xff;
        c.push_frame(&bad_magic);
        c.push_frame(&frame(&sample(4)));
        let e = c.errors();
        assert_eq!(
            (e.malformed, e.oversized, e.unknown_version, e.bad_magic),
            (1, 1, 1, 1)
        );
        assert_eq!(c.snapshots(), &[sample(4)]);
    }

    #[test]
    fn serial_lines_are_filtered_out_of_console_output() {
        let collector = StatsCollector::shared();
        let out = SharedBuf::default();
        let mut filter = SerialStatsFilter::new(Box::new(out.clone()), collector.clone());
        let hex: String = frame(&sample(9))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let long = "01".repeat(MAX_FRAME_LEN + 100);
        let text = format!(
            "hello\nmobius-st\n{SERIAL_PREFIX}{hex}\n{SERIAL_PREFIX}zz\n{SERIAL_PREFIX}{long}\nbye\n"
        );
        for piece in text.as_bytes().chunks(3) {
            filter.write_all(piece).expect("write");
        }
        assert_eq!(out.text(), "hello\nmobius-st\nbye\n");
        let c = collector.lock();
        assert_eq!(c.snapshots(), &[sample(9)]);
        assert_eq!(c.errors().malformed, 1);
        assert_eq!(c.errors().oversized, 1);
    }

    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);
    impl SharedBuf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8")
        }
    }
    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
