//! The serial fallback: `mobius-stats: <hex>` lines taken out of the
//! guest's console output and handed to the [`StatsCollector`].
//!
//! [`StatsCollector`]: super::StatsCollector
use std::io::{self, Write};

use mobius_shared::stats::MAX_FRAME_LEN;

use super::collector::{SharedCollector, SERIAL_PREFIX};

/// A serial writer that takes `mobius-stats:` lines out of the guest's
/// console output and passes everything else through to `inner`.
pub struct SerialStatsFilter {
    inner: Box<dyn Write + Send>,
    collector: SharedCollector,
    line: Vec<u8>,
    /// Dropping the rest of an over-long statistics line.
    discarding: bool,
    /// Passing the rest of a line that does not begin with the prefix
    /// straight through (a prefix later in the line is console output).
    passing: bool,
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
            passing: false,
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
        let mut rest = buf;
        while let Some((&b, tail)) = rest.split_first() {
            if self.passing {
                // Up to and including the end of the line, in one write.
                let n = rest
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(rest.len(), |i| i + 1);
                self.inner.write_all(&rest[..n])?;
                self.passing = rest[n - 1] != b'\n';
                rest = &rest[n..];
                continue;
            }
            rest = tail;
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
                self.passing = true;
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
    use crate::stats::StatsCollector;
    use mobius_shared::stats::{FaultKind, Snapshot};
    use std::sync::{Arc, Mutex};

    fn hex_line(n: u64) -> String {
        let mut s = Snapshot::new(7, 1000);
        s.faults[FaultKind::DemandZero.index()].count = n;
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let hex: String = s
            .encode(&mut buf)
            .expect("fits")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{SERIAL_PREFIX}{hex}\n")
    }

    #[test]
    fn serial_lines_are_filtered_out_of_console_output() {
        let collector = StatsCollector::shared();
        let out = SharedBuf::default();
        let mut filter = SerialStatsFilter::new(Box::new(out.clone()), collector.clone());
        let long = "01".repeat(MAX_FRAME_LEN + 100);
        let text = format!(
            "hello\nmobius-st\n{}{SERIAL_PREFIX}zz\n{SERIAL_PREFIX}{long}\nbye\n",
            hex_line(9)
        );
        for piece in text.as_bytes().chunks(3) {
            filter.write_all(piece).expect("write");
        }
        assert_eq!(out.text(), "hello\nmobius-st\nbye\n");
        let c = collector.lock();
        assert_eq!(c.decoded(), 1);
        let count = |s: Option<&Snapshot>| s.map(|s| s.faults[0].count);
        assert_eq!(count(c.final_snapshot()), Some(9));
        assert_eq!(c.errors().malformed, 1);
        assert_eq!(c.errors().oversized, 1);
    }

    /// The prefix counts only at the start of a line: later in a line it
    /// is console output, in one piece or byte by byte (found by the
    /// stats_serial fuzz target: "mobius-s\0mobius-stats: <frame>" lost
    /// its second half to the collector).
    #[test]
    fn a_prefix_inside_a_line_is_console_output() {
        let text = format!(
            "mobius-s\0{}x {}say {SERIAL_PREFIX}00\n{}",
            hex_line(1),
            hex_line(2),
            hex_line(3)
        );
        for piece in [1, 7, text.len()] {
            let collector = StatsCollector::shared();
            let out = SharedBuf::default();
            let mut filter = SerialStatsFilter::new(Box::new(out.clone()), collector.clone());
            for chunk in text.as_bytes().chunks(piece) {
                filter.write_all(chunk).expect("write");
            }
            let shown = text[..text.len() - hex_line(3).len()].to_string();
            assert_eq!(out.text(), shown, "pieces of {piece}");
            let c = collector.lock();
            assert_eq!(c.decoded(), 1, "only the line that starts with the prefix");
            assert_eq!(c.errors().total(), 0);
        }
    }

    /// A guest printing statistics lines in a loop: the host keeps a fixed
    /// number of snapshots and buffers at most one line.
    #[test]
    fn a_flood_of_serial_lines_keeps_memory_bounded() {
        let collector = StatsCollector::shared();
        let mut filter = SerialStatsFilter::new(Box::new(io::sink()), collector.clone());
        for n in 0..20_000 {
            filter.write_all(hex_line(n).as_bytes()).expect("write");
            assert!(filter.line.capacity() <= 2 * MAX_LINE);
        }
        let long = "01".repeat(100 * MAX_FRAME_LEN);
        filter
            .write_all(format!("{SERIAL_PREFIX}{long}").as_bytes())
            .expect("write");
        assert!(filter.line.capacity() <= 2 * MAX_LINE);
        let c = collector.lock();
        assert_eq!(c.decoded(), 20_000);
        assert!(c.retained() <= crate::stats::MAX_RETAINED_SNAPSHOTS);
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
