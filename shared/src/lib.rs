//! The contract between the `mobius` host launcher and the Möbius guest kernel.
//!
//! Everything that both sides must agree on lives here, once: the guest-physical
//! memory layout of the boot structures, I/O ports and MMIO windows, exit statuses,
//! kernel command-line keys, and the fault-statistics wire format.
#![no_std]

pub mod boot_params;
pub mod cmdline;
pub mod exit;
pub mod initramfs;
pub mod layout;
pub mod ports;
pub mod procstats;
pub mod record;
pub mod stats;
pub mod virtio_mmio;
pub mod vmcall;
pub mod workloads;
