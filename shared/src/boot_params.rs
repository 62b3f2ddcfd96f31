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
//! [`BootParams::user_cmdline_len`] bytes of the line. Under another loader
//! (QEMU) there is no block, the magic does not match, and the kernel reads
//! everything from the command line.
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..12 | [`VERSION`] |
//! | 12..16 | flags: [`FLAG_DISCARD`] |
//! | 16..24 | TSC frequency in kHz (0: unknown) |
//! | 24..28 | length of the user's part of the command line |
//! | 28..32 | number of virtio-mmio windows (at most [`MAX_VIRTIO_DEVICES`]) |
//! | 32..64 | virtio-mmio window bases |
use crate::cmdline::MAX_VIRTIO_DEVICES;

/// "MobiusBP", little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"MobiusBP");
pub const VERSION: u32 = 1;
/// Bytes of the block.
pub const LEN: usize = 64;
/// The host offers the frame-discard port (`ports::DISCARD_FRAME`).
pub const FLAG_DISCARD: u32 = 1;

/// The facts the block carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootParams {
    /// TSC frequency in kHz (`KVM_GET_TSC_KHZ`), 0 if unknown.
    pub tsc_khz: u64,
    pub discard: bool,
    /// The command line's first `user_cmdline_len` bytes are the user's
    /// words; the host's follow.
    pub user_cmdline_len: u32,
    /// Bases of the virtio-mmio windows, `virtio_len` of them.
    pub virtio: [u64; MAX_VIRTIO_DEVICES],
    pub virtio_len: usize,
}

fn u32_at(b: &[u8; LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; LEN], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

impl BootParams {
    /// The block's bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let flags = if self.discard { FLAG_DISCARD } else { 0 };
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

    /// Read a block; `None` unless the magic, the version and every field
    /// are as this kernel understands them.
    pub fn decode(b: &[u8; LEN]) -> Option<Self> {
        if u64_at(b, 0) != MAGIC || u32_at(b, 8) != VERSION {
            return None;
        }
        let flags = u32_at(b, 12);
        let n = u32_at(b, 28) as usize;
        if flags & !FLAG_DISCARD != 0 || n > MAX_VIRTIO_DEVICES {
            return None;
        }
        let mut p = BootParams {
            tsc_khz: u64_at(b, 16),
            discard: flags & FLAG_DISCARD != 0,
            user_cmdline_len: u32_at(b, 24),
            virtio: [0; MAX_VIRTIO_DEVICES],
            virtio_len: n,
        };
        for (i, slot) in p.virtio[..n].iter_mut().enumerate() {
            *slot = u64_at(b, 32 + 8 * i);
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BootParams {
        BootParams {
            tsc_khz: 2_596_000,
            discard: true,
            user_cmdline_len: 14,
            virtio: [0xd000_0000, 0, 0, 0],
            virtio_len: 1,
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(BootParams::decode(&sample().encode()), Some(sample()));
        let none = BootParams::default();
        assert_eq!(BootParams::decode(&none.encode()), Some(none));
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        let good = sample().encode();
        for (at, v) in [(0, b'm'), (8, 2), (12, 2), (28, 5)] {
            let mut b = good;
            b[at] = v;
            assert_eq!(BootParams::decode(&b), None, "byte {at} = {v}");
        }
        assert_eq!(BootParams::decode(&[0; LEN]), None);
    }
}
