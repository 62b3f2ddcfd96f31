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
/// Record page faults for `mobius record`: one fault in N (`record=1`:
/// every fault); see [`crate::record`].
pub const RECORD: &str = "record";
/// Capacity of the fault-record ring in records (`record_ring=4096`).
pub const RECORD_RING: &str = "record_ring";

use crate::boot_params::{ParamsView, ParsedOptions, Span};

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
    /// `record=N`: record one page fault in N (N >= 1).
    pub record: Option<u32>,
    /// `record_ring=N`: the fault-record ring's capacity.
    pub record_ring: Option<u32>,
    /// Base addresses of the `virtio_mmio.device=` windows, in line order.
    pub virtio: [u64; MAX_VIRTIO_DEVICES],
    pub virtio_len: usize,
}

impl<'a> BootOptions<'a> {
    /// The options of `line`, with the host's facts from the boot parameters
    /// block (read where it lies) when the host wrote one: then only the
    /// user's part of the line counts, taken from the host's parse of it when
    /// the block carries one (else parsed here), and the TSC frequency,
    /// discard and virtio windows come from the block.
    pub fn from_view(line: &'a str, params: Option<ParamsView<'_>>) -> Self {
        let Some(p) = params else {
            return Self::parse(line);
        };
        let Some(user) = line.get(..p.user_cmdline_len() as usize) else {
            return Self::parse(line);
        };
        let parsed = p.options().and_then(|o| Self::from_parsed(user, &o));
        let mut o = parsed.unwrap_or_else(|| Self::parse(user));
        let tsc_khz = p.tsc_khz();
        if tsc_khz != 0 {
            o.tsc_khz = Some(tsc_khz);
        }
        o.discard = p.discard();
        o.virtio_len = p.virtio_len();
        for (i, slot) in o.virtio[..o.virtio_len].iter_mut().enumerate() {
            *slot = p.virtio(i);
        }
        o
    }

    /// The options the host parsed from `user` ([`Self::to_parsed`]); `None`
    /// if a span does not lie in `user`.
    fn from_parsed(user: &'a str, p: &ParsedOptions) -> Option<Self> {
        Some(BootOptions {
            workload: map_present(p.workload, |s| s.get(user))?,
            test: map_present(p.test, |s| s.get(user))?,
            stats_interval_ms: p.stats_interval_ms,
            run_id: p.run_id,
            summary: p.summary,
            record: p.record,
            record_ring: p.record_ring,
            ..BootOptions::default()
        })
    }

    /// These options (parsed from `line`) in the boot parameters' form, for
    /// the host: `None` when the form cannot carry them, so that the kernel
    /// parses the line itself: a value beyond 64 KiB, or a `tsc_khz=`,
    /// `discard=` or `virtio_mmio.device=` word among the user's (the block
    /// carries the host's own values of those).
    pub fn to_parsed(&self, line: &str) -> Option<ParsedOptions> {
        if self.tsc_khz.is_some() || self.discard || self.virtio_len != 0 {
            return None;
        }
        Some(ParsedOptions {
            workload: map_present(self.workload, |v| Span::of(line, v))?,
            test: map_present(self.test, |v| Span::of(line, v))?,
            stats_interval_ms: self.stats_interval_ms,
            run_id: self.run_id,
            summary: self.summary,
            record: self.record,
            record_ring: self.record_ring,
        })
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
                RECORD => o.record = value.parse().ok(),
                RECORD_RING => o.record_ring = value.parse().ok(),
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

/// `Some(None)` for an absent value, `Some(Some(f(v)))` for a present one,
/// `None` if `f` fails on it.
fn map_present<T, U>(value: Option<T>, f: impl FnOnce(T) -> Option<U>) -> Option<Option<U>> {
    match value {
        None => Some(None),
        Some(v) => f(v).map(Some),
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
    extern crate std;
    use super::*;
    use crate::boot_params::BootParams;
    use std::string::String;
    use std::vec::Vec;
    use std::{format, vec};

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
            console: false,
            xstate: false,
            stdin: false,
            user_cmdline_len: 20,
            virtio: [0xd000_0000, 0, 0, 0],
            virtio_len: 1,
            options: None,
        };
        let o = from_boot(line, Some(&p));
        assert_eq!(o.workload, Some("exit"));
        assert_eq!(o.tsc_khz, Some(2_000_000));
        assert!(!o.discard);
        assert_eq!(o.virtio_devices(), &[0xd000_0000]);
        // A length past the line or inside a character: the whole line.
        let long = BootParams {
            user_cmdline_len: 999,
            ..p
        };
        assert_eq!(from_boot(line, Some(&long)), BootOptions::parse(line));
        assert_eq!(
            from_boot(
                "é",
                Some(&BootParams {
                    user_cmdline_len: 1,
                    ..p
                })
            ),
            BootOptions::parse("é")
        );
        assert_eq!(from_boot(line, None), BootOptions::parse(line));
    }

    /// The options the kernel takes from `line` and the block `params`
    /// would be, once written.
    fn from_boot<'a>(line: &'a str, params: Option<&BootParams>) -> BootOptions<'a> {
        let bytes = params.map(BootParams::encode);
        BootOptions::from_view(line, bytes.as_ref().and_then(ParamsView::new))
    }

    /// The block for `line`, whose first `user_len` bytes are the user's,
    /// as the host writes it, with or without its parse of them.
    fn params(line: &str, user_len: usize, with_options: bool) -> BootParams {
        let user = &line[..user_len];
        BootParams {
            tsc_khz: 7,
            discard: true,
            console: true,
            xstate: true,
            stdin: true,
            user_cmdline_len: user_len as u32,
            virtio: [0xd000_0000, 0, 0, 0],
            virtio_len: 1,
            options: if with_options {
                BootOptions::parse(user).to_parsed(user)
            } else {
                None
            },
        }
    }

    #[test]
    fn the_hosts_parse_equals_the_kernels() {
        let line = "run_id=3 workload=seq-touch pages=9 summary=1 test= workload=hello \
                    stats_interval_ms=20 tsc_khz=1 virtio_mmio.device=4K@0x1000:5";
        let user_len = line.find("tsc_khz").unwrap_or(0);
        let from_host = from_boot(line, Some(&params(line, user_len, true)));
        assert!(params(line, user_len, true).options.is_some());
        assert_eq!(from_host.workload, Some("hello"));
        assert_eq!(from_host.test, Some(""));
        assert_eq!(
            (from_host.run_id, from_host.stats_interval_ms),
            (Some(3), Some(20))
        );
        assert!(from_host.summary);
        assert_eq!(
            from_host,
            from_boot(line, Some(&params(line, user_len, false)))
        );
        // The user's own tsc_khz= is not the block's to carry.
        assert_eq!(BootOptions::parse("tsc_khz=5").to_parsed("tsc_khz=5"), None);
    }

    #[test]
    fn a_parse_that_does_not_fit_the_line_is_not_used() {
        let line = "workload=exit code=3";
        let mut p = params(line, line.len(), true);
        if let Some(o) = p.options.as_mut() {
            o.workload = Some(Span { offset: 18, len: 9 });
        }
        assert_eq!(
            from_boot(line, Some(&p)),
            from_boot(line, Some(&params(line, line.len(), false)))
        );
    }

    proptest::proptest! {
        /// Any user line: the host's parse, handed over, gives the kernel
        /// the options it would have parsed itself.
        #[test]
        fn handing_over_the_parse_changes_nothing(
            words in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "workload", "test", "stats_interval_ms", "run_id", "summary",
                        "record", "record_ring",
                        "tsc_khz", "discard", "pages", "é", "",
                    ]),
                    proptest::sample::select(vec!["", "1", "0", "hello", "x=y", "18446744073709551616", "ü"]),
                    proptest::bool::ANY,
                ),
                0..8,
            )
        ) {
            let user: Vec<String> = words
                .iter()
                .map(|(k, v, eq)| if *eq { format!("{k}={v}") } else { format!("{k}{v}") })
                .collect();
            let user = user.join(" ");
            let line = format!("{user} tsc_khz=7 discard=1 virtio_mmio.device=4K@0xd0000000:5");
            let with = from_boot(&line, Some(&params(&line, user.len(), true)));
            let without = from_boot(&line, Some(&params(&line, user.len(), false)));
            proptest::prop_assert_eq!(with, without);
        }
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
