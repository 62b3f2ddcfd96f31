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

use crate::boot_params::BootParams;

/// Summary of the statistics on the guest console at exit (`summary=1`).
pub const SUMMARY: &str = "summary";

/// Most `virtio_mmio.device=` announcements the guest looks at.
pub const MAX_VIRTIO_DEVICES: usize = 4;

/// Iterate over the `(key, value)` words of a command line.
///
/// A byte scan of our own rather than `split_ascii_whitespace` and
/// `split_once`: the guest parses its line in ring 0, which kvm_pvm emulates
/// instruction by instruction, and the generic `str` searchers cost about
/// ten times as many instructions per byte.
pub fn words(line: &str) -> Words<'_> {
    Words { rest: line }
}

/// The iterator of [`words`].
#[derive(Debug, Clone)]
pub struct Words<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Words<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // One pass: skip separators, then find the word's end and its first
        // `=`. Every byte up to and including the space is a separator
        // (control characters mean nothing on a command line).
        let bytes = self.rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] <= b' ' {
            i += 1;
        }
        if i == bytes.len() {
            self.rest = "";
            return None;
        }
        let start = i;
        while i < bytes.len() && bytes[i] > b' ' && bytes[i] != b'=' {
            i += 1;
        }
        let key_end = i;
        let has_value = i < bytes.len() && bytes[i] == b'=';
        if has_value {
            i += 1;
            while i < bytes.len() && bytes[i] > b' ' {
                i += 1;
            }
        }
        // Every cut is next to an ASCII byte or at an end of the line, so
        // it is a char boundary and `get` cannot fail.
        let word = |from: usize, to: usize| self.rest.get(from..to).unwrap_or("");
        let item = if has_value {
            (word(start, key_end), word(key_end + 1, i))
        } else {
            (word(start, i), "")
        };
        self.rest = self.rest.get(i..).unwrap_or("");
        Some(item)
    }
}

/// The value of the last occurrence of `key`, if any.
pub fn get<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    words(line)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .last()
}

/// The words the kernel itself acts on, read in one pass over the line
/// (the last occurrence of a key wins; unparseable numbers count as absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootOptions<'a> {
    pub workload: Option<&'a str>,
    pub test: Option<&'a str>,
    pub tsc_khz: Option<u64>,
    pub stats_interval_ms: Option<u64>,
    pub discard: bool,
    pub run_id: Option<u64>,
    pub summary: bool,
    /// Base addresses of the `virtio_mmio.device=` windows, in line order.
    pub virtio: [u64; MAX_VIRTIO_DEVICES],
    pub virtio_len: usize,
}

impl<'a> BootOptions<'a> {
    /// The options of `line`, with the host's facts from `params` when the
    /// host wrote them: then only the user's part of the line is parsed, and
    /// the TSC frequency, discard and virtio windows come from `params`.
    pub fn from_boot(line: &'a str, params: Option<&BootParams>) -> Self {
        let Some(p) = params else {
            return Self::parse(line);
        };
        let Some(user) = line.get(..p.user_cmdline_len as usize) else {
            return Self::parse(line);
        };
        let mut o = Self::parse(user);
        if p.tsc_khz != 0 {
            o.tsc_khz = Some(p.tsc_khz);
        }
        o.discard = p.discard;
        o.virtio = p.virtio;
        o.virtio_len = p.virtio_len;
        o
    }

    /// The options of a whole command line.
    pub fn parse(line: &'a str) -> Self {
        let mut o = BootOptions::default();
        for (key, value) in words(line) {
            match key {
                WORKLOAD => o.workload = Some(value),
                TEST => o.test = Some(value),
                TSC_KHZ => o.tsc_khz = value.parse().ok(),
                STATS_INTERVAL_MS => o.stats_interval_ms = value.parse().ok(),
                DISCARD => o.discard = value == "1",
                RUN_ID => o.run_id = value.parse().ok(),
                SUMMARY => o.summary = value == "1",
                VIRTIO_MMIO_DEVICE => {
                    if let (Some(base), Some(slot)) =
                        (virtio_mmio_base(value), o.virtio.get_mut(o.virtio_len))
                    {
                        *slot = base;
                        o.virtio_len += 1;
                    }
                }
                _ => {}
            }
        }
        o
    }

    /// The announced virtio-mmio windows.
    pub fn virtio_devices(&self) -> &[u64] {
        &self.virtio[..self.virtio_len]
    }
}

/// The base address of Linux's `<size>@<addr>[:<irq>]` announcement, the
/// address in hex with `0x` (size like `4K` or `0x1000`).
pub fn virtio_mmio_base(v: &str) -> Option<u64> {
    let at = v.bytes().position(|b| b == b'@')?;
    let rest = &v[at + 1..];
    let end = rest.bytes().position(|b| b == b':').unwrap_or(rest.len());
    let addr = &rest[..end];
    let hex = addr
        .strip_prefix("0x")
        .or_else(|| addr.strip_prefix("0X"))?;
    u64::from_str_radix(hex, 16).ok()
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
        assert_eq!(words("").count(), 0);
        assert_eq!(words("  \t ").count(), 0);
        let expected = [("a", "b=c"), ("", "="), ("d", "")];
        assert!(words(" a=b=c\t== d ").eq(expected));
        assert_eq!(words("é=ü x").next(), Some(("é", "ü")));
    }

    #[test]
    fn boot_options_in_one_pass() {
        let line = "virtio_mmio.device=4K@0xd0000000:5 tsc_khz=2596000 discard=1 \
                    workload=exit code=3 run_id=9 stats_interval_ms=x summary=1 \
                    virtio_mmio.device=512@0XFEB00000 virtio_mmio.device=bad";
        let o = BootOptions::parse(line);
        assert_eq!(o.workload, Some("exit"));
        assert_eq!(o.test, None);
        assert_eq!(o.tsc_khz, Some(2_596_000));
        assert_eq!(o.stats_interval_ms, None, "unparseable is absent");
        assert!(o.discard && o.summary);
        assert_eq!(o.run_id, Some(9));
        assert_eq!(o.virtio_devices(), &[0xd000_0000, 0xfeb0_0000]);
        assert_eq!(BootOptions::parse(""), BootOptions::default());
        let many = "virtio_mmio.device=4K@0x1000 ".repeat(MAX_VIRTIO_DEVICES + 2);
        assert_eq!(
            BootOptions::parse(&many).virtio_devices().len(),
            MAX_VIRTIO_DEVICES
        );
    }

    #[test]
    fn boot_params_spare_parsing_the_hosts_words() {
        let line = "workload=exit code=3 tsc_khz=1 discard=1 virtio_mmio.device=4K@0x1000:5";
        let p = BootParams {
            tsc_khz: 2_000_000,
            discard: false,
            user_cmdline_len: 20,
            virtio: [0xd000_0000, 0, 0, 0],
            virtio_len: 1,
        };
        let o = BootOptions::from_boot(line, Some(&p));
        assert_eq!(o.workload, Some("exit"));
        assert_eq!(o.tsc_khz, Some(2_000_000));
        assert!(!o.discard);
        assert_eq!(o.virtio_devices(), &[0xd000_0000]);
        // A length past the line or inside a character: the whole line.
        let long = BootParams {
            user_cmdline_len: 999,
            ..p
        };
        assert_eq!(
            BootOptions::from_boot(line, Some(&long)),
            BootOptions::parse(line)
        );
        assert_eq!(
            BootOptions::from_boot(
                "é",
                Some(&BootParams {
                    user_cmdline_len: 1,
                    ..p
                })
            ),
            BootOptions::parse("é")
        );
        assert_eq!(BootOptions::from_boot(line, None), BootOptions::parse(line));
    }

    #[test]
    fn virtio_announcements() {
        assert_eq!(virtio_mmio_base("4K@0xd0000000:5"), Some(0xd000_0000));
        assert_eq!(virtio_mmio_base("0x1000@0xFEB00000"), Some(0xfeb0_0000));
        assert_eq!(virtio_mmio_base("4K@d0000000:5"), None);
        assert_eq!(virtio_mmio_base("4K"), None);
        assert_eq!(virtio_mmio_base("4K@0x:5"), None);
    }
}
