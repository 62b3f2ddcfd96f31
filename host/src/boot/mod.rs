//! Getting the guest kernel into memory: ELF checks and loading
//! ([`elf`]), and the boot structures the entry expects ([`params`]): GDT,
//! identity page tables, PVH `hvm_start_info` (with the initramfs of
//! [`initramfs`] as its module), memory map and command line. [`image`]
//! reads a kernel file by offset, only the parts the loader needs.

pub mod elf;
pub mod image;
pub mod initramfs;
pub mod params;

use std::path::PathBuf;

use mobius_shared::layout::{CMDLINE_MAX, KERNEL_MIN_ADDR};

/// How the vCPU enters the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BootMode {
    /// 64-bit long mode at the ELF entry, paging on (host-built page tables).
    #[default]
    Long,
    /// 32-bit protected mode at the PVH entry note, paging off (PVH ABI).
    Pvh,
}

/// Errors in the kernel image or in fitting it into guest memory.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("kernel {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kernel {0}: not an ELF file")]
    NotElf(String),
    #[error("kernel {0}: 32-bit ELF; need a 64-bit (ELFCLASS64) x86-64 kernel")]
    WrongClass(String),
    #[error("kernel {0}: big-endian ELF; need a little-endian x86-64 kernel")]
    WrongEndian(String),
    #[error("kernel {name}: ELF machine {machine} is not x86-64 (62)")]
    WrongMachine { name: String, machine: u16 },
    #[error("kernel {name}: malformed ELF: {what}")]
    Malformed { name: String, what: String },
    #[error(
        "kernel {name}: segment [{start:#x}, {end:#x}) overlaps the boot structures \
         (kernel segments must start at or above {KERNEL_MIN_ADDR:#x})"
    )]
    OverBootStructures { name: String, start: u64, end: u64 },
    #[error(
        "kernel {name}: segment [{start:#x}, {end:#x}) lies outside guest RAM \
         (RAM ends at {limit:#x})"
    )]
    OutsideMemory {
        name: String,
        start: u64,
        end: u64,
        limit: u64,
    },
    #[error(
        "memory size {memory} bytes is too small for kernel {name}, which needs {needed} bytes \
         (use --memory with a larger size)"
    )]
    MemoryTooSmall {
        name: String,
        memory: u64,
        needed: u64,
    },
    #[error(
        "the initramfs ({size} bytes) does not fit in guest memory above the kernel: \
         it needs {needed} bytes of RAM, the guest has {memory} (use --memory {}M or more)",
        needed.div_ceil(1 << 20)
    )]
    InitramfsTooLarge { size: u64, memory: u64, needed: u64 },
    #[error("kernel {name}: entry point {entry:#x} is not inside a loaded segment")]
    BadEntry { name: String, entry: u64 },
    #[error("kernel {0}: no PVH entry note (Xen ELF note type 18); use --boot long")]
    NoPvhEntry(String),
    #[error("kernel {name}: {source}")]
    Load {
        name: String,
        source: linux_loader::loader::Error,
    },
    #[error(
        "command line is {len} bytes; at most {} fit (with the host's additions)",
        CMDLINE_MAX - 1
    )]
    CmdlineTooLong { len: usize },
    #[error("command line contains a NUL byte")]
    CmdlineNul,
    #[error("writing boot structures into guest memory: {0}")]
    Memory(#[from] vm_memory::GuestMemoryError),
}

impl BootError {
    /// Whether the error is in the user's configuration rather than the kernel.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            BootError::MemoryTooSmall { .. }
                | BootError::InitramfsTooLarge { .. }
                | BootError::CmdlineTooLong { .. }
                | BootError::CmdlineNul
        )
    }

    /// Whether the error is in the kernel image.
    pub fn is_bad_kernel(&self) -> bool {
        !self.is_usage() && !matches!(self, BootError::Memory(_))
    }
}
