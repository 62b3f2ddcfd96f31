//! Turning the guest's bytes into [`Snapshot`]s, within fixed bounds.
//!
//! The guest may send frames in a loop: the collector counts every one but
//! keeps at most [`MAX_RETAINED_SNAPSHOTS`] of them, and its counters
//! saturate rather than overflow.
use std::sync::{Arc, Mutex, MutexGuard};

use mobius_shared::stats::{Snapshot, SnapshotReason, WireError, MAX_FRAME_LEN};

pub use super::errors::DecodeErrors;

/// Prefix of the serial fallback line: the guest writes `mobius-stats: `
/// followed by the hex of one frame when it has no virtio console.
pub const SERIAL_PREFIX: &str = "mobius-stats: ";

/// Most snapshots a collector holds, however many frames the guest sends:
/// the first, the newest, and the newest exit snapshot of the expected run
/// ([`StatsCollector::final_snapshot`]), which is all `mobius run` and
/// `mobius stat` report. The others are counted ([`StatsCollector::decoded`])
/// and handed to the callback (`mobius stat -I`) as they arrive.
pub const MAX_RETAINED_SNAPSHOTS: usize = 3;

/// Called with each snapshot as it is decoded (for `mobius stat -I`).
pub type SnapshotCallback = Box<dyn FnMut(&Snapshot) + Send>;

/// Called with each fault-record frame (magic `MbRc`, undecoded: see
/// [`mobius_shared::record`]) for `mobius record`.
pub type RecordFrameCallback = Box<dyn FnMut(&[u8]) + Send>;

/// Collects snapshots from frames: one per virtio descriptor chain, or one
/// per serial statistics line.
#[derive(Default)]
pub struct StatsCollector {
    first: Option<Snapshot>,
    latest: Option<Snapshot>,
    last_exit: Option<Snapshot>,
    /// Only exit snapshots with this run id count as final.
    run_id: Option<u64>,
    decoded: u64,
    errors: DecodeErrors,
    bytes: u64,
    notifications: u64,
    warned: bool,
    on_snapshot: Option<SnapshotCallback>,
    on_record_frame: Option<RecordFrameCallback>,
    record_frames: u64,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCollector")
            .field("decoded", &self.decoded)
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

    /// Take as final only exit snapshots carrying `run_id` (the host put it
    /// on the command line; a stale or forged one is counted, not reported).
    pub fn expect_run_id(&mut self, run_id: u64) {
        self.run_id = Some(run_id);
    }

    /// Take one whole frame (the device has capped it at
    /// [`MAX_FRAME_LEN`] bytes; anything longer is counted as oversized).
    pub fn push_frame(&mut self, frame: &[u8]) {
        self.bytes = self.bytes.saturating_add(frame.len() as u64);
        self.decode(frame);
    }

    /// Take a serial line; returns `true` if it was a statistics line (and so
    /// must not be shown as guest output).
    pub fn push_serial_line(&mut self, line: &str) -> bool {
        let Some(hex) = line.trim_end().strip_prefix(SERIAL_PREFIX) else {
            return false;
        };
        self.bytes = self.bytes.saturating_add(line.len() as u64);
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
        if mobius_shared::record::is_record_frame(frame) {
            // Fault records (`record=N` on the command line): `mobius
            // record`'s, counted and left alone by everyone else.
            self.record_frames = self.record_frames.saturating_add(1);
            if let Some(cb) = self.on_record_frame.as_mut() {
                cb(frame);
            }
            return;
        }
        match Snapshot::decode(frame) {
            Ok(snap) => self.keep(snap),
            Err(e) => self.reject(e),
        }
    }

    /// Count a decoded snapshot and keep it if it is one of the few retained.
    fn keep(&mut self, snap: Snapshot) {
        self.decoded = self.decoded.saturating_add(1);
        if let Some(cb) = self.on_snapshot.as_mut() {
            cb(&snap);
        }
        let ours = self.run_id.is_none_or(|id| id == snap.run_id);
        if snap.reason == SnapshotReason::Exit && ours {
            self.last_exit = Some(snap.clone());
        }
        if self.first.is_none() {
            self.first = Some(snap.clone());
        }
        self.latest = Some(snap);
    }

    /// Hand every fault-record frame to `cb` (without one, such frames are
    /// only counted: [`StatsCollector::record_frames`]).
    pub fn set_record_callback(&mut self, cb: RecordFrameCallback) {
        self.on_record_frame = Some(cb);
    }

    /// Call `cb` with every snapshot as soon as it is decoded.
    pub fn set_callback(&mut self, cb: SnapshotCallback) {
        self.on_snapshot = Some(cb);
    }

    /// Count a frame dropped for its size before it could be decoded.
    pub fn reject_oversized(&mut self, len: usize) {
        self.reject(WireError::Oversized(len));
    }

    /// Count `n` notifications or descriptor chains the transport could not
    /// use (the device warns about the first one itself).
    pub fn note_transport_errors(&mut self, n: u64) {
        self.errors.transport = self.errors.transport.saturating_add(n);
    }

    fn reject(&mut self, e: WireError) {
        self.errors.count(e);
        if !self.warned {
            self.warned = true;
            eprintln!("mobius: warning: ignoring a bad statistics frame from the guest: {e} (further ones counted, summed up at exit)");
        }
    }

    /// The first snapshot decoded.
    pub fn first(&self) -> Option<&Snapshot> {
        self.first.as_ref()
    }

    /// The newest snapshot decoded, of any kind.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.latest.as_ref()
    }

    /// The newest exit snapshot of the expected run, if there is one.
    pub fn exit_snapshot(&self) -> Option<&Snapshot> {
        self.last_exit.as_ref()
    }

    /// The last snapshot the guest sent at exit (or the last of any kind).
    pub fn final_snapshot(&self) -> Option<&Snapshot> {
        self.last_exit.as_ref().or(self.latest.as_ref())
    }

    /// Snapshots decoded so far (all of them, retained or not).
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Snapshots held now: at most [`MAX_RETAINED_SNAPSHOTS`].
    pub fn retained(&self) -> usize {
        [&self.first, &self.latest, &self.last_exit]
            .iter()
            .filter(|s| s.is_some())
            .count()
    }

    pub fn errors(&self) -> DecodeErrors {
        self.errors
    }

    /// One virtio notification (a VM exit) delivered statistics bytes.
    pub fn note_notification(&mut self) {
        self.notifications = self.notifications.saturating_add(1);
    }

    /// Fault-record frames seen ([`mobius_shared::record`]).
    pub fn record_frames(&self) -> u64 {
        self.record_frames
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

/// The bytes of an even number of hex digits; `None` for anything else
/// (`from_str_radix` alone would also take a sign: `+f` is no byte).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |d: u8| char::from(d).to_digit(16).map(|v| v as u8);
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::stats::{FaultKind, HISTOGRAM_BUCKETS};

    fn frame(snap: &Snapshot) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        snap.encode(&mut buf).expect("fits").to_vec()
    }

    fn sample(n: u64) -> Snapshot {
        let mut s = Snapshot::new(7, 1000);
        s.faults[FaultKind::DemandZero.index()].count = n;
        s
    }

    fn interval(n: u64) -> Snapshot {
        let mut s = sample(n);
        s.reason = SnapshotReason::Interval;
        s
    }

    #[test]
    fn record_frames_go_to_their_callback_or_are_only_counted() {
        let record = mobius_shared::record::FrameHeader {
            sample: 1,
            ..Default::default()
        }
        .to_bytes();
        let mut c = StatsCollector::new();
        c.push_frame(&record);
        assert_eq!((c.record_frames(), c.decoded()), (1, 0));
        assert!(c.errors().summary().is_none(), "not a bad frame");
        let got = Arc::new(Mutex::new(0usize));
        let seen = Arc::clone(&got);
        c.set_record_callback(Box::new(move |f| *seen.lock().expect("lock") += f.len()));
        c.push_frame(&record);
        c.push_frame(&frame(&sample(3)));
        assert_eq!(*got.lock().expect("lock"), record.len());
        assert_eq!((c.record_frames(), c.decoded()), (2, 1));
    }

    #[test]
    fn frames_decode_in_order() {
        let mut c = StatsCollector::new();
        c.push_frame(&frame(&sample(1)));
        c.push_frame(&frame(&sample(2)));
        assert_eq!(c.decoded(), 2);
        assert_eq!(c.first(), Some(&sample(1)));
        assert_eq!(c.final_snapshot(), Some(&sample(2)));
        assert_eq!(c.errors().total(), 0);
        assert_eq!(c.bytes(), 2 * frame(&sample(1)).len() as u64);
    }

    #[test]
    fn the_final_snapshot_is_the_last_exit_one_of_the_expected_run() {
        let mut c = StatsCollector::new();
        c.expect_run_id(7);
        c.push_frame(&frame(&interval(1)));
        assert_eq!(c.exit_snapshot(), None);
        assert_eq!(c.final_snapshot(), Some(&interval(1)));
        c.push_frame(&frame(&sample(2)));
        c.push_frame(&frame(&interval(3)));
        let mut stale = sample(4);
        stale.run_id = 8;
        c.push_frame(&frame(&stale));
        assert_eq!(c.exit_snapshot(), Some(&sample(2)));
        assert_eq!(c.final_snapshot(), Some(&sample(2)));
        assert_eq!(c.latest(), Some(&stale));
        assert_eq!(c.decoded(), 4);
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
        assert_eq!(c.decoded(), 1);
        assert_eq!(c.final_snapshot(), Some(&sample(4)));
    }

    /// A guest sending valid frames in a loop: every one is counted and
    /// shown to the callback, a fixed few are kept.
    /// Only hex digits make a frame: a sign, which `from_str_radix`
    /// accepts, is malformed like any other character (found by the
    /// stats_serial fuzz target: `+0` in place of `00` decoded).
    #[test]
    fn serial_lines_take_hex_digits_only() {
        let hex: String = frame(&sample(1))
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let mut c = StatsCollector::new();
        assert!(c.push_serial_line(&format!("{SERIAL_PREFIX}{hex}\r\n")));
        assert_eq!(
            c.decoded(),
            1,
            "upper case digits and a trailing CR are fine"
        );
        let at = (0..hex.len())
            .step_by(2)
            .find(|&i| &hex[i..i + 2] == "00")
            .expect("a zero byte");
        for bad in ["+0", "-0", " 0", "0x"] {
            let mut line = hex.clone();
            line.replace_range(at..at + 2, bad);
            assert!(c.push_serial_line(&format!("{SERIAL_PREFIX}{line}\n")));
        }
        assert_eq!(c.decoded(), 1);
        assert_eq!(c.errors().malformed, 4);
    }

    #[test]
    fn a_million_frames_keep_a_bounded_number_of_snapshots() {
        let seen = Arc::new(Mutex::new(0u64));
        let mut c = StatsCollector::new();
        c.expect_run_id(7);
        let counter = seen.clone();
        c.set_callback(Box::new(move |_| *counter.lock().expect("lock") += 1));
        let frames = [frame(&interval(1)), frame(&sample(2))];
        const N: u64 = 1_000_000;
        for i in 0..N {
            c.push_frame(&frames[(i % 2) as usize]);
            assert!(c.retained() <= MAX_RETAINED_SNAPSHOTS);
        }
        for _ in 0..1000 {
            c.push_frame(&[0xff; 16]);
        }
        assert_eq!(c.decoded(), N);
        assert_eq!(*seen.lock().expect("lock"), N);
        assert_eq!(c.retained(), MAX_RETAINED_SNAPSHOTS);
        assert_eq!(c.final_snapshot(), Some(&sample(2)));
        assert_eq!(c.errors().total(), 1000);
    }

    #[test]
    fn extreme_counters_decode_and_counts_saturate() {
        let mut s = sample(u64::MAX);
        for k in s.faults.iter_mut() {
            k.count = u64::MAX;
            k.cycles = u64::MAX;
            k.histogram = [u64::MAX; HISTOGRAM_BUCKETS];
        }
        s.tsc_khz = u64::MAX;
        let mut c = StatsCollector::new();
        c.push_frame(&frame(&s));
        assert_eq!(
            c.final_snapshot().map(Snapshot::total_faults),
            Some(u64::MAX)
        );
        c.bytes = u64::MAX - 1;
        c.notifications = u64::MAX;
        c.errors.malformed = u64::MAX;
        c.errors.transport = u64::MAX;
        c.push_frame(&frame(&s));
        c.push_frame(&[1, 2, 3]);
        c.note_notification();
        c.note_transport_errors(5);
        assert_eq!(c.bytes(), u64::MAX);
        assert_eq!(c.notifications(), u64::MAX);
        assert_eq!(c.errors().malformed, u64::MAX);
        assert_eq!(c.errors().total(), u64::MAX);
    }
}
