//! Counting VM exits by reason.

use std::fmt;

/// VM exits of one run, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitCounts {
    pub io_in: u64,
    pub io_out: u64,
    pub mmio_read: u64,
    pub mmio_write: u64,
    pub hlt: u64,
    pub shutdown: u64,
    /// KVM_RUN interrupted by a signal (EINTR) other than a halt-watch tick.
    pub interrupted: u64,
    /// KVM_RUN interrupted by a halt-watch tick (every 10 ms with KVM's
    /// APIC, to see whether the vCPU halted for good).
    pub halt_watch: u64,
    pub other: u64,
    /// Port accesses no device claimed (also counted in io_in/io_out).
    pub unknown_io: u64,
    /// MMIO accesses no device claimed (also counted in mmio_read/mmio_write).
    pub unknown_mmio: u64,
    /// Discard requests outside guest RAM.
    pub bad_discard: u64,
    /// Console writes refused (buffer outside RAM or too long).
    pub bad_console_write: u64,
}

impl ExitCounts {
    /// `(name, count)` for every reason, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("io_in", self.io_in),
            ("io_out", self.io_out),
            ("mmio_read", self.mmio_read),
            ("mmio_write", self.mmio_write),
            ("hlt", self.hlt),
            ("shutdown", self.shutdown),
            ("interrupted", self.interrupted),
            ("halt_watch", self.halt_watch),
            ("other", self.other),
            ("unknown_io", self.unknown_io),
            ("unknown_mmio", self.unknown_mmio),
            ("bad_discard", self.bad_discard),
            ("bad_console_write", self.bad_console_write),
        ]
        .into_iter()
    }

    /// All VM exits (the unknown_* and bad_* sub-counts excluded);
    /// saturates at `u64::MAX`.
    pub fn total(&self) -> u64 {
        [
            self.io_in,
            self.io_out,
            self.mmio_read,
            self.mmio_write,
            self.hlt,
            self.shutdown,
            self.interrupted,
            self.halt_watch,
            self.other,
        ]
        .iter()
        .fold(0u64, |sum, &n| sum.saturating_add(n))
    }
}

impl fmt::Display for ExitCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, n) in self.iter().filter(|(_, n)| *n > 0) {
            if !first {
                write!(f, " ")?;
            }
            first = false;
            write!(f, "{name}={n}")?;
        }
        Ok(())
    }
}
