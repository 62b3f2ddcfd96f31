//! What the virtio-mmio drivers share: reaching a window announced on the
//! command line, its 32-bit registers, and the first steps of the modern
//! (version 2) handshake up to FEATURES_OK (virtio 1.2 §3.1.1, §4.2.3.1).
use core::ptr::{read_volatile, write_volatile};

use mobius_shared::virtio_mmio::{
    DEVICE_FEATURES, DEVICE_FEATURES_SEL, DEVICE_ID, DRIVER_FEATURES, DRIVER_FEATURES_SEL,
    F_VERSION_1, MAGIC, MAGIC_VALUE, MMIO_VERSION, STATUS, STATUS_ACKNOWLEDGE, STATUS_DRIVER,
    STATUS_FEATURES_OK, VERSION,
};

/// A mapped register window (its kernel-virtual base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regs(usize);

impl Regs {
    /// Map the window at physical `base` if it is one a device may sit at
    /// (inside the identity-mapped first 4 GiB, above RAM, aligned as
    /// virtio-mmio register blocks are: QEMU's microvm packs its windows
    /// 512 bytes apart) and holds a modern virtio device of type `device_id`.
    pub fn probe(base: u64, device_id: u32) -> Option<Regs> {
        if !(0xC000_0000..0x1_0000_0000).contains(&base) || !base.is_multiple_of(0x200) {
            return None;
        }
        if !crate::arch::x86_64::identity::map_device(base) {
            return None;
        }
        let r = Regs(crate::arch::x86_64::direct::phys_to_virt(base) as usize);
        let ok = r.rd(MAGIC_VALUE) == MAGIC
            && r.rd(VERSION) == MMIO_VERSION
            && r.rd(DEVICE_ID) == device_id;
        ok.then_some(r)
    }

    fn reg(self, off: u64) -> *mut u32 {
        (self.0 + off as usize) as *mut u32
    }

    pub fn rd(self, off: u64) -> u32 {
        // SAFETY: `self.0` is a virtio-mmio window announced by the host,
        // mapped by `probe` and reached through the direct map; registers
        // are 32-bit and aligned.
        unsafe { read_volatile(self.reg(off)) }
    }

    pub fn wr(self, off: u64, v: u32) {
        // SAFETY: as for `rd`.
        unsafe { write_volatile(self.reg(off), v) }
    }

    pub fn wr64(self, off: u64, v: u64) {
        self.wr(off, v as u32);
        self.wr(off + 4, (v >> 32) as u32);
    }

    /// The device's feature bits among `wanted`'s words: the low word is
    /// read only when a low bit is wanted (each access is a VM exit).
    pub fn device_features(self, wanted: u64) -> u64 {
        let mut low = 0;
        if wanted as u32 != 0 {
            self.wr(DEVICE_FEATURES_SEL, 0);
            low = u64::from(self.rd(DEVICE_FEATURES));
        }
        self.wr(DEVICE_FEATURES_SEL, 1);
        low | u64::from(self.rd(DEVICE_FEATURES)) << 32
    }

    /// Reset, acknowledge, and accept `wanted` (which must include
    /// VIRTIO_F_VERSION_1) of the device's features; `None` when the device
    /// lacks VERSION_1 or refuses FEATURES_OK. Returns the features taken.
    pub fn negotiate(self, wanted: u64) -> Option<u64> {
        self.wr(STATUS, 0);
        self.wr(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        let offered = self.device_features(wanted);
        if offered & F_VERSION_1 == 0 {
            return None;
        }
        let taken = offered & (wanted | F_VERSION_1);
        self.wr(DRIVER_FEATURES_SEL, 0);
        self.wr(DRIVER_FEATURES, taken as u32);
        self.wr(DRIVER_FEATURES_SEL, 1);
        self.wr(DRIVER_FEATURES, (taken >> 32) as u32);
        self.wr(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        (self.rd(STATUS) & STATUS_FEATURES_OK != 0).then_some(taken)
    }
}
