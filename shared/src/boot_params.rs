//! Mobius boot parameters: what the `mobius` host tells the kernel beyond the
//! PVH start info, in a fixed little-endian block at
//! [`crate::layout::BOOT_PARAMS_ADDR`] (the "start_info extension").
//!
//! The host also writes the same facts as command-line words (`tsc_khz=`,
//! `discard=1`, `virtio_mmio.device=`), so that any PVH kernel, and a reader,
//! sees them. The block spares our kernel parsing them: the kernel parses
//! the command line in ring 0, which kvm_pvm emulates at ~0.7 µs per
//! instruction, and the host's words were ~1,200 instructions (~0.8 ms) of a
//! boot. With a valid block the kernel parses only the user's words, the first
//! [`BootParams::user_cmdline_len`] bytes of the line. Version 2 goes one
//! step further: the host parses the user's words too, with the same
//! [`BootOptions::parse`](crate::cmdline::BootOptions::parse), and hands over
//! the result ([`ParsedOptions`]: the workload and test names as places in the
//! line, the numbers as numbers), which spares the kernel its ~400
//! instructions of scanning and matching (~0.3 ms on kvm_pvm). Under another
//! loader (QEMU) there is no block, the magic does not match, and the kernel
//! parses everything from the command line.
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..12 | [`VERSION`] |
//! | 12..16 | flags: [`FLAG_DISCARD`], [`FLAG_CONSOLE`], [`FLAG_XSTATE`], [`FLAG_OPTIONS`] and the `FLAG_HAS_*`/[`FLAG_SUMMARY`] bits of the options |
//! | 16..24 | TSC frequency in kHz (0: unknown) |
//! | 24..28 | length of the user's part of the command line |
//! | 28..32 | number of virtio-mmio windows (at most [`MAX_VIRTIO_DEVICES`]) |
//! | 32..64 | virtio-mmio window bases |
//! | 64..68 | `workload=`: offset and length (u16 each) of its value in the line |
//! | 68..72 | `test=`: offset and length of its value |
//! | 72..80 | `stats_interval_ms=` |
//! | 80..88 | `run_id=` |
//! | 88..92 | `record=` (flag [`FLAG_HAS_RECORD`]) |
//! | 92..96 | `record_ring=` (flag [`FLAG_HAS_RECORD_RING`]) |
//! | 96..128 | zero |
use crate::cmdline::MAX_VIRTIO_DEVICES;

/// "MobiusBP", little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"MobiusBP");
pub const VERSION: u32 = 2;
/// Bytes of the block.
pub const LEN: usize = 128;
/// The host offers the frame-discard port (`ports::DISCARD_FRAME`).
pub const FLAG_DISCARD: u32 = 1;
/// The block carries the parsed user options ([`ParsedOptions`]).
pub const FLAG_OPTIONS: u32 = 1 << 1;
pub const FLAG_HAS_WORKLOAD: u32 = 1 << 2;
pub const FLAG_HAS_TEST: u32 = 1 << 3;
pub const FLAG_HAS_STATS_INTERVAL: u32 = 1 << 4;
pub const FLAG_HAS_RUN_ID: u32 = 1 << 5;
/// `summary=1`.
pub const FLAG_SUMMARY: u32 = 1 << 6;
/// The host offers the console-write port (`ports::CONSOLE_WRITE`).
pub const FLAG_CONSOLE: u32 = 1 << 7;
/// The host offers the extended-state port (`ports::XSTATE`).
pub const FLAG_XSTATE: u32 = 1 << 8;
/// The host offers the console-read port (`ports::CONSOLE_READ`).
pub const FLAG_STDIN: u32 = 1 << 9;
pub const FLAG_HAS_RECORD: u32 = 1 << 10;
pub const FLAG_HAS_RECORD_RING: u32 = 1 << 11;
const KNOWN_FLAGS: u32 = (1 << 12) - 1;

/// Where a value lies in the command line: `line[offset..offset + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: u16,
    pub len: u16,
}

impl Span {
    /// The span of `part`, a subslice of `line`; `None` if it is not one or
    /// lies beyond what a u16 can say.
    pub fn of(line: &str, part: &str) -> Option<Span> {
        let offset = (part.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
        if offset + part.len() > line.len() {
            return None;
        }
        Some(Span {
            offset: u16::try_from(offset).ok()?,
            len: u16::try_from(part.len()).ok()?,
        })
    }

    /// The spanned part of `line`, if it lies inside it on char boundaries.
    pub fn get<'a>(&self, line: &'a str) -> Option<&'a str> {
        let start = usize::from(self.offset);
        line.get(start..start + usize::from(self.len))
    }
}

/// The user's options as the host parsed them (the kernel-acted-on fields of
/// [`BootOptions`](crate::cmdline::BootOptions) that come from the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParsedOptions {
    pub workload: Option<Span>,
    pub test: Option<Span>,
    pub stats_interval_ms: Option<u64>,
    pub run_id: Option<u64>,
    pub summary: bool,
    pub record: Option<u32>,
    pub record_ring: Option<u32>,
}

/// The facts the block carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootParams {
    /// TSC frequency in kHz (`KVM_GET_TSC_KHZ`), 0 if unknown.
    pub tsc_khz: u64,
    pub discard: bool,
    /// The host offers the console-write port.
    pub console: bool,
    /// The host offers the extended-state port.
    pub xstate: bool,
    /// The host offers the console-read port.
    pub stdin: bool,
    /// The command line's first `user_cmdline_len` bytes are the user's
    /// words; the host's follow.
    pub user_cmdline_len: u32,
    /// Bases of the virtio-mmio windows, `virtio_len` of them.
    pub virtio: [u64; MAX_VIRTIO_DEVICES],
    pub virtio_len: usize,
    /// The user's words, parsed (spans are in the user's part of the line).
    pub options: Option<ParsedOptions>,
}

fn u32_at(b: &[u8; LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; LEN], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

fn span_at(b: &[u8; LEN], at: usize) -> Span {
    let v = u32_at(b, at);
    Span {
        offset: v as u16,
        len: (v >> 16) as u16,
    }
}

fn put_span(b: &mut [u8; LEN], at: usize, span: Option<Span>) {
    let v = span.map_or(0, |s| u32::from(s.offset) | (u32::from(s.len) << 16));
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// `value` when `flags` has `bit`.
fn when<T>(flags: u32, bit: u32, value: T) -> Option<T> {
    (flags & bit != 0).then_some(value)
}

impl BootParams {
    /// The block's bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let mut flags = if self.discard { FLAG_DISCARD } else { 0 };
        if self.console {
            flags |= FLAG_CONSOLE;
        }
        if self.xstate {
            flags |= FLAG_XSTATE;
        }
        if self.stdin {
            flags |= FLAG_STDIN;
        }
        if let Some(o) = &self.options {
            flags |= FLAG_OPTIONS;
            for (has, bit) in [
                (o.workload.is_some(), FLAG_HAS_WORKLOAD),
                (o.test.is_some(), FLAG_HAS_TEST),
                (o.stats_interval_ms.is_some(), FLAG_HAS_STATS_INTERVAL),
                (o.run_id.is_some(), FLAG_HAS_RUN_ID),
                (o.summary, FLAG_SUMMARY),
                (o.record.is_some(), FLAG_HAS_RECORD),
                (o.record_ring.is_some(), FLAG_HAS_RECORD_RING),
            ] {
                if has {
                    flags |= bit;
                }
            }
            put_span(&mut b, 64, o.workload);
            put_span(&mut b, 68, o.test);
            b[72..80].copy_from_slice(&o.stats_interval_ms.unwrap_or(0).to_le_bytes());
            b[80..88].copy_from_slice(&o.run_id.unwrap_or(0).to_le_bytes());
            b[88..92].copy_from_slice(&o.record.unwrap_or(0).to_le_bytes());
            b[92..96].copy_from_slice(&o.record_ring.unwrap_or(0).to_le_bytes());
        }
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.tsc_khz.to_le_bytes());
        b[24..28].copy_from_slice(&self.user_cmdline_len.to_le_bytes());
        let n = self.virtio_len.min(MAX_VIRTIO_DEVICES);
        b[28..32].copy_from_slice(&(n as u32).to_le_bytes());
        for (i, base) in self.virtio[..n].iter().enumerate() {
            b[32 + 8 * i..40 + 8 * i].copy_from_slice(&base.to_le_bytes());
        }
        b
    }
}

/// A valid block read where it lies, each field decoded when asked. The
/// kernel reads a few fields once: decoding all into a [`BootParams`] and
/// moving that and the options built from it around was ~200 emulated
/// instructions of its boot.
#[derive(Debug, Clone, Copy)]
pub struct ParamsView<'a>(&'a [u8; LEN]);

impl<'a> ParamsView<'a> {
    /// The block in `b`; `None` unless the magic, the version and every field
    /// are as this kernel understands them.
    pub fn new(b: &'a [u8; LEN]) -> Option<Self> {
        if u64_at(b, 0) != MAGIC || u32_at(b, 8) != VERSION {
            return None;
        }
        if u32_at(b, 12) & !KNOWN_FLAGS != 0 || u32_at(b, 28) as usize > MAX_VIRTIO_DEVICES {
            return None;
        }
        Some(ParamsView(b))
    }

    fn flags(&self) -> u32 {
        u32_at(self.0, 12)
    }

    /// TSC frequency in kHz, 0 if unknown.
    pub fn tsc_khz(&self) -> u64 {
        u64_at(self.0, 16)
    }

    pub fn discard(&self) -> bool {
        self.flags() & FLAG_DISCARD != 0
    }

    pub fn console(&self) -> bool {
        self.flags() & FLAG_CONSOLE != 0
    }

    pub fn xstate(&self) -> bool {
        self.flags() & FLAG_XSTATE != 0
    }

    pub fn stdin(&self) -> bool {
        self.flags() & FLAG_STDIN != 0
    }

    /// The whole block as a [`BootParams`] (what [`BootParams::encode`]
    /// wrote): one decoder for tests and fuzzing, so a new field is read
    /// in one place.
    pub fn to_params(&self) -> BootParams {
        let mut p = BootParams {
            tsc_khz: self.tsc_khz(),
            discard: self.discard(),
            console: self.console(),
            xstate: self.xstate(),
            stdin: self.stdin(),
            user_cmdline_len: self.user_cmdline_len(),
            virtio: [0; MAX_VIRTIO_DEVICES],
            virtio_len: self.virtio_len(),
            options: self.options(),
        };
        for (i, slot) in p.virtio[..p.virtio_len].iter_mut().enumerate() {
            *slot = self.virtio(i);
        }
        p
    }

    pub fn user_cmdline_len(&self) -> u32 {
        u32_at(self.0, 24)
    }

    /// Number of virtio-mmio windows (at most [`MAX_VIRTIO_DEVICES`]).
    pub fn virtio_len(&self) -> usize {
        u32_at(self.0, 28) as usize
    }

    /// Base of virtio-mmio window `i` (< [`Self::virtio_len`]).
    pub fn virtio(&self, i: usize) -> u64 {
        u64_at(self.0, 32 + 8 * (i % MAX_VIRTIO_DEVICES))
    }

    /// The host's parse of the user's words, if it handed one over.
    pub fn options(&self) -> Option<ParsedOptions> {
        let (b, flags) = (self.0, self.flags());
        when(
            flags,
            FLAG_OPTIONS,
            ParsedOptions {
                workload: when(flags, FLAG_HAS_WORKLOAD, span_at(b, 64)),
                test: when(flags, FLAG_HAS_TEST, span_at(b, 68)),
                stats_interval_ms: when(flags, FLAG_HAS_STATS_INTERVAL, u64_at(b, 72)),
                run_id: when(flags, FLAG_HAS_RUN_ID, u64_at(b, 80)),
                summary: flags & FLAG_SUMMARY != 0,
                record: when(flags, FLAG_HAS_RECORD, u32_at(b, 88)),
                record_ring: when(flags, FLAG_HAS_RECORD_RING, u32_at(b, 92)),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole block read back, for the round trips.
    fn decode(b: &[u8; LEN]) -> Option<BootParams> {
        Some(ParamsView::new(b)?.to_params())
    }

    fn sample() -> BootParams {
        BootParams {
            tsc_khz: 2_596_000,
            discard: true,
            console: true,
            xstate: true,
            stdin: true,
            user_cmdline_len: 14,
            virtio: [0xd000_0000, 0, 0, 0],
            virtio_len: 1,
            options: Some(ParsedOptions {
                workload: Some(Span { offset: 9, len: 5 }),
                test: None,
                stats_interval_ms: Some(0),
                run_id: Some(u64::MAX),
                summary: true,
                record: Some(16),
                record_ring: None,
            }),
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&sample().encode()), Some(sample()));
        let none = BootParams::default();
        assert_eq!(decode(&none.encode()), Some(none));
        let empty = BootParams {
            options: Some(ParsedOptions::default()),
            ..BootParams::default()
        };
        assert_eq!(decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn spans_locate_values_in_the_line() {
        let line = "workload=hello test=é";
        let (w, t) = (&line[9..14], &line[20..]);
        assert_eq!(Span::of(line, w), Some(Span { offset: 9, len: 5 }));
        assert_eq!(Span::of(line, w).and_then(|s| s.get(line)), Some("hello"));
        assert_eq!(Span::of(line, t).and_then(|s| s.get(line)), Some("é"));
        assert_eq!(Span::of(line, "elsewhere"), None);
        // Past the end, or inside a character: nothing.
        assert_eq!(Span { offset: 20, len: 9 }.get(line), None);
        assert_eq!(Span { offset: 21, len: 1 }.get(line), None);
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        let good = sample().encode();
        for (at, v) in [(0, b'm'), (8, 1), (13, 16), (28, 5)] {
            let mut b = good;
            b[at] = v;
            assert_eq!(decode(&b), None, "byte {at} = {v}");
        }
        assert_eq!(decode(&[0; LEN]), None);
    }
}
