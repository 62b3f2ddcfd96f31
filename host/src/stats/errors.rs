//! What the host could not use of the guest's statistics traffic, counted
//! (with saturating arithmetic) and summed up once when the run ends.
use mobius_shared::stats::WireError;

/// Frames (and transport requests) the host could not use, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeErrors {
    pub malformed: u64,
    pub oversized: u64,
    pub unknown_version: u64,
    pub bad_magic: u64,
    /// Virtio notifications or descriptor chains the console device could
    /// not use (queue not ready, rings or buffers outside guest memory).
    pub transport: u64,
}

impl DecodeErrors {
    fn fields(&self) -> [u64; 5] {
        [
            self.malformed,
            self.oversized,
            self.unknown_version,
            self.bad_magic,
            self.transport,
        ]
    }

    /// Everything counted; saturates at `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.fields()
            .iter()
            .fold(0u64, |sum, &n| sum.saturating_add(n))
    }

    /// Count one frame refused by the decoder.
    pub fn count(&mut self, e: WireError) {
        let n = match e {
            WireError::Oversized(_) => &mut self.oversized,
            WireError::UnknownVersion(_) => &mut self.unknown_version,
            WireError::BadMagic(_) => &mut self.bad_magic,
            WireError::Malformed | WireError::BufferTooSmall => &mut self.malformed,
        };
        *n = n.saturating_add(1);
    }

    /// Add another run's counts (saturating).
    pub fn add(&mut self, other: &DecodeErrors) {
        self.malformed = self.malformed.saturating_add(other.malformed);
        self.oversized = self.oversized.saturating_add(other.oversized);
        self.unknown_version = self.unknown_version.saturating_add(other.unknown_version);
        self.bad_magic = self.bad_magic.saturating_add(other.bad_magic);
        self.transport = self.transport.saturating_add(other.transport);
    }

    /// The one line printed at exit when anything was unusable.
    pub fn summary(&self) -> Option<String> {
        if self.total() == 0 {
            return None;
        }
        Some(format!(
            "mobius: warning: {} statistics frames from the guest were unusable (malformed {}, oversized {}, unknown version {}, bad magic {}, transport {})",
            self.total(), self.malformed, self.oversized, self.unknown_version, self.bad_magic, self.transport
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sums_saturate() {
        let mut e = DecodeErrors {
            malformed: u64::MAX,
            ..Default::default()
        };
        e.count(WireError::Malformed);
        e.count(WireError::BadMagic(0));
        assert_eq!((e.malformed, e.bad_magic), (u64::MAX, 1));
        assert_eq!(e.total(), u64::MAX);
        let mut sum = e;
        sum.add(&e);
        assert_eq!(sum.malformed, u64::MAX);
        assert_eq!(sum.bad_magic, 2);
        assert!(sum.summary().is_some_and(|s| s.contains("bad magic 2")));
        assert_eq!(DecodeErrors::default().summary(), None);
    }
}
