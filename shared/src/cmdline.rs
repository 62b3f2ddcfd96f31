//! Kernel command-line keys understood by the guest.
//!
//! The command line is a list of space-separated `key=value` words (a bare
//! `key` means `key=` with an empty value). Unknown keys are ignored by the guest
//! so that the same line can carry Linux-style words.

/// Which workload to run (`workload=seq-touch`). Default: `hello`.
pub const WORKLOAD: &str = "workload";
/// Run the in-guest test suite named by the value (`test=vmm`).
pub const TEST: &str = "test";
/// TSC frequency in kHz, handed over by the host from `KVM_GET_TSC_KHZ`.
pub const TSC_KHZ: &str = "tsc_khz";
/// Linux-form virtio-mmio announcement: `virtio_mmio.device=<size>@<addr>:<irq>`.
pub const VIRTIO_MMIO_DEVICE: &str = "virtio_mmio.device";
/// Statistics snapshot interval in milliseconds (0 = only at exit).
pub const STATS_INTERVAL_MS: &str = "stats_interval_ms";
/// `discard=1`: the host implements [`crate::ports::DISCARD_FRAME`].
pub const DISCARD: &str = "discard";
/// Run identifier echoed back in every statistics snapshot.
pub const RUN_ID: &str = "run_id";

/// Iterate over the `(key, value)` words of a command line.
pub fn words(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split_ascii_whitespace()
        .map(|w| w.split_once('=').unwrap_or((w, "")))
}

/// The value of the last occurrence of `key`, if any.
pub fn get<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    words(line)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_and_last_wins() {
        let line = "console=ttyS0 workload=seq-touch pages=10 quiet workload=hello";
        assert_eq!(get(line, "workload"), Some("hello"));
        assert_eq!(get(line, "pages"), Some("10"));
        assert_eq!(get(line, "quiet"), Some(""));
        assert_eq!(get(line, "missing"), None);
        assert_eq!(words(line).count(), 5);
    }
}
