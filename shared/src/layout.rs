//! Guest-physical memory layout used by the host launcher when it boots the guest.
//!
//! ```text
//! 0x0000_0000 .. 0x0000_1000   never used (null page)
//! 0x0000_0500                  boot GDT (host-built, long-mode boot only)
//! 0x0000_6000                  PVH hvm_start_info
//! 0x0000_6100                  PVH memory map (hvm_memmap_table_entry[])
//! 0x0000_6800                  Mobius boot parameters (`boot_params`, 128 bytes)
//! 0x0000_9000                  boot PML4          (long-mode boot only)
//! 0x0000_A000                  boot PDPT          (long-mode boot only)
//! 0x0000_B000 .. 0x0000_F000   boot PDs, 2 MiB pages, identity map of RAM
//! 0x0002_0000                  kernel command line (NUL-terminated)
//! 0x0010_0000 ..               kernel ELF segments
//! MMIO_BASE ..                 virtio-mmio device windows (no RAM above MEMORY_MAX)
//! ```

/// Boot GDT (null, 64-bit code, data, 32-bit code) for the direct long-mode entry.
pub const BOOT_GDT_ADDR: u64 = 0x500;
/// PVH `hvm_start_info` structure.
pub const START_INFO_ADDR: u64 = 0x6000;
/// PVH memory map entries follow the start info.
pub const MEMMAP_ADDR: u64 = 0x6100;
/// Mobius boot parameters (`crate::boot_params`), after the memory map.
pub const BOOT_PARAMS_ADDR: u64 = 0x6800;
/// At most this many memory-map entries are handed over.
pub const MEMMAP_MAX_ENTRIES: usize = 16;
/// Boot page tables built by the host (long-mode entry).
pub const BOOT_PML4_ADDR: u64 = 0x9000;
pub const BOOT_PDPT_ADDR: u64 = 0xA000;
pub const BOOT_PD_ADDR: u64 = 0xB000;
/// Number of page directories (each maps 1 GiB with 2 MiB pages).
pub const BOOT_PD_COUNT: u64 = 4;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// Maximum command-line length including the terminating NUL.
pub const CMDLINE_MAX: usize = 4096;
/// Everything below this address belongs to the boot structures; kernel
/// segments must be loaded at or above it.
pub const KERNEL_MIN_ADDR: u64 = 0x10_0000;
/// Upper bound of guest RAM (exclusive): RAM is one contiguous range
/// `[0, memory)` with `memory <= MEMORY_MAX`, below the MMIO hole.
pub const MEMORY_MAX: u64 = 0xC000_0000;
/// Smallest guest memory the launcher accepts.
pub const MEMORY_MIN: u64 = 4 << 20;
/// Start of the MMIO window for virtio-mmio devices.
pub const MMIO_BASE: u64 = 0xD000_0000;
/// Size of one virtio-mmio device window.
pub const MMIO_DEVICE_SIZE: u64 = 0x1000;
/// GSI of the first virtio-mmio device.
pub const VIRTIO_IRQ_BASE: u32 = 5;
pub const PAGE_SIZE: u64 = 4096;

const _: () = assert!(MEMMAP_ADDR + 24 * MEMMAP_MAX_ENTRIES as u64 <= BOOT_PARAMS_ADDR);
