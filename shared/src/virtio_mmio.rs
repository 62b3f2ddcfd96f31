//! virtio over MMIO, written once for both sides: the register layout and
//! status bits of the modern (version 2) transport (virtio 1.2 §4.2.2), the
//! device IDs `mobius` offers, and the virtio-blk request format (§5.2).
//!
//! Where the windows are and how the guest learns of them: the console at
//! [`crate::layout::MMIO_BASE`], disk `i` (`mobius run --disk PATH`, in the
//! order given) at [`disk_window`]`(i)`, each announced on the command line
//! as `virtio_mmio.device=4K@<base>:<n>` and listed in the boot-parameters
//! block ([`crate::boot_params`]). For the console `n` is a GSI nothing ever
//! raises (the guest polls it); for a disk it is the local-APIC vector
//! ([`disk_vector`], decimal) on which the host signals completions.

/// Register offsets, relative to the window's base.
pub const MAGIC_VALUE: u64 = 0x000;
pub const VERSION: u64 = 0x004;
pub const DEVICE_ID: u64 = 0x008;
pub const VENDOR_ID: u64 = 0x00c;
pub const DEVICE_FEATURES: u64 = 0x010;
pub const DEVICE_FEATURES_SEL: u64 = 0x014;
pub const DRIVER_FEATURES: u64 = 0x020;
pub const DRIVER_FEATURES_SEL: u64 = 0x024;
pub const QUEUE_SEL: u64 = 0x030;
pub const QUEUE_NUM_MAX: u64 = 0x034;
pub const QUEUE_NUM: u64 = 0x038;
pub const QUEUE_READY: u64 = 0x044;
pub const QUEUE_NOTIFY: u64 = 0x050;
pub const INTERRUPT_STATUS: u64 = 0x060;
pub const INTERRUPT_ACK: u64 = 0x064;
pub const STATUS: u64 = 0x070;
pub const QUEUE_DESC_LOW: u64 = 0x080;
pub const QUEUE_DESC_HIGH: u64 = 0x084;
pub const QUEUE_DRIVER_LOW: u64 = 0x090;
pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
pub const CONFIG_GENERATION: u64 = 0x0fc;
/// Device-specific configuration space starts here.
pub const CONFIG: u64 = 0x100;

/// "virt", little endian.
pub const MAGIC: u32 = 0x7472_6976;
/// The modern (virtio 1.x) transport.
pub const MMIO_VERSION: u32 = 2;
/// VendorID of `mobius`'s devices: "MOBI".
pub const VENDOR: u32 = 0x4942_4f4d;

/// Device status bits.
pub const STATUS_ACKNOWLEDGE: u32 = 1;
pub const STATUS_DRIVER: u32 = 2;
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_NEEDS_RESET: u32 = 64;
pub const STATUS_FAILED: u32 = 128;

/// VIRTIO_F_VERSION_1: feature bit 32.
pub const F_VERSION_1: u64 = 1 << 32;
/// Used-buffer notification bit of InterruptStatus.
pub const INT_USED_RING: u32 = 1;

/// `VIRTQ_DESC_F_NEXT`, `VIRTQ_DESC_F_WRITE`, `VIRTQ_DESC_F_INDIRECT`.
pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const DESC_F_INDIRECT: u16 = 4;

/// Device IDs.
pub const DEVICE_ID_BLOCK: u32 = 2;
pub const DEVICE_ID_CONSOLE: u32 = 3;

/// Most disks one run offers: the guest looks at
/// [`crate::cmdline::MAX_VIRTIO_DEVICES`] windows, the console takes one.
pub const MAX_DISKS: usize = crate::cmdline::MAX_VIRTIO_DEVICES - 1;

/// Guest-physical base of disk `index`'s window: the windows after the
/// console's, [`crate::layout::MMIO_DEVICE_SIZE`] apart.
pub const fn disk_window(index: usize) -> u64 {
    crate::layout::MMIO_BASE + (index as u64 + 1) * crate::layout::MMIO_DEVICE_SIZE
}

/// Local-APIC vector of disk `index`'s completions: `0x40 + index`, above
/// the kernel's exception, timer (32) and spurious (47) vectors. The host
/// sends it as an MSI to APIC ID 0 (address `0xFEE0_0000`, data = vector,
/// fixed delivery, edge) from the disk's worker thread, after setting bit 0
/// ([`INT_USED_RING`]) of InterruptStatus.
pub const fn disk_vector(index: usize) -> u8 {
    DISK_VECTOR_BASE + index as u8
}
/// The vector of disk 0.
pub const DISK_VECTOR_BASE: u8 = 0x40;

/// virtio-blk (device ID 2): request types, status codes, features and the
/// configuration layout `mobius` offers.
pub mod blk {
    /// A sector is 512 bytes, whatever the file system below says.
    pub const SECTOR_SIZE: u64 = 512;
    pub const SECTOR_SHIFT: u32 = 9;

    /// Request types (`virtio_blk_req.type`).
    pub const T_IN: u32 = 0;
    pub const T_OUT: u32 = 1;
    pub const T_FLUSH: u32 = 4;
    pub const T_GET_ID: u32 = 8;

    /// Status codes (the request's last, device-written byte).
    pub const S_OK: u8 = 0;
    pub const S_IOERR: u8 = 1;
    pub const S_UNSUPP: u8 = 2;

    /// The request header: `{ type: le32, reserved: le32, sector: le64 }`.
    pub const HEADER_LEN: u32 = 16;
    /// Bytes of a GET_ID answer (the device's serial, NUL-padded).
    pub const ID_BYTES: u32 = 20;

    /// Features: VIRTIO_BLK_F_SIZE_MAX, _SEG_MAX, _RO, _FLUSH.
    pub const F_SIZE_MAX: u64 = 1 << 1;
    pub const F_SEG_MAX: u64 = 1 << 2;
    pub const F_RO: u64 = 1 << 5;
    pub const F_FLUSH: u64 = 1 << 9;

    /// Configuration space (offsets from [`super::CONFIG`]): capacity in
    /// sectors (le64), size_max (le32), seg_max (le32); the rest reads 0.
    pub const CONFIG_CAPACITY: u64 = 0;
    pub const CONFIG_SIZE_MAX: u64 = 8;
    pub const CONFIG_SEG_MAX: u64 = 12;
    pub const CONFIG_LEN: u64 = 16;

    /// Most data segments (descriptors between header and status) one
    /// request may have, and most bytes in one; the device offers them as
    /// `seg_max` and `size_max`, and a request beyond them fails (IOERR).
    pub const SEG_MAX: u32 = 32;
    pub const SIZE_MAX: u32 = 64 * 1024;
    /// Entries of the request queue (queue 0, the only one).
    pub const QUEUE_SIZE: u16 = 128;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_follow_the_console() {
        assert_eq!(disk_window(0), 0xd000_1000);
        assert_eq!(disk_window(2), 0xd000_3000);
        assert_eq!(disk_vector(0), 0x40);
        assert_eq!(disk_vector(MAX_DISKS - 1), 0x42);
    }
}
