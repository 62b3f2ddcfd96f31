//! The initramfs: a `newc` cpio archive (`cpio -H newc`, the format of
//! Linux's initramfs) that carries the program to run into the guest, with
//! the user's `--file`s and the two control files of
//! [`mobius_shared::initramfs`] (program path and argv, environment).
//!
//! [`Initramfs`] writes archives; [`ArchiveSpec`] reads what a run names on
//! the host (PROGRAM, `--file`, `--env`, `--initrd`) and builds its archive.
//! [`super::params::write_start_info`] hands the archive to the guest as the
//! first PVH module.

use std::path::PathBuf;

use mobius_shared::initramfs::ARGS_MAX;

/// Magic of a `newc` header.
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// Magic of a `newc` header with a data checksum (`cpio -H crc`); accepted
/// in `--initrd` archives, as Linux and the guest accept it.
pub const CRC_MAGIC: &[u8; 6] = b"070702";
/// Size of a `newc` header: the magic and 13 fields of 8 hex digits.
pub const HEADER_SIZE: usize = 110;
/// Name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// File-type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
/// Modes the host gives its entries.
pub const DIR_MODE: u32 = S_IFDIR | 0o755;
pub const PROGRAM_MODE: u32 = S_IFREG | 0o755;
pub const CONTROL_MODE: u32 = S_IFREG | 0o644;

/// Everything that can go wrong building an archive. All of them are the
/// user's words (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error(
        "no such program '{0}' (a PROGRAM is a host executable: a path such as ./{0}, \
         or a file in the current directory)"
    )]
    NoSuchProgram(String),
    #[error("{what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: not a regular file")]
    NotAFile { what: &'static str, path: PathBuf },
    #[error("program {path}: not an x86-64 ELF executable ({why})")]
    NotElf { path: PathBuf, why: &'static str },
    #[error("--file '{spec}': {why}")]
    BadFileSpec { spec: String, why: String },
    #[error("path '{path}' cannot go into the archive: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("'/{path}' would be in the archive twice")]
    Duplicate { path: String },
    #[error("'/{path}' is already in the --initrd archive")]
    InBase { path: String },
    #[error("'/{path}' cannot go into the archive: '/{parent}' is there and is not a directory")]
    ParentNotDir { path: String, parent: String },
    #[error("file mode {mode:#o} of '/{path}' is not a regular file's")]
    BadMode { path: String, mode: u32 },
    #[error("'/{path}' is {size} bytes; a newc cpio entry holds at most 4 GiB - 1")]
    TooLarge { path: String, size: usize },
    #[error("the archive has more than 2^32 entries")]
    TooManyEntries,
    #[error("argument {index} of the program contains a NUL byte")]
    ArgNul { index: usize },
    #[error("--env '{0}' is not KEY=VALUE")]
    BadEnv(String),
    #[error("--env entry contains a NUL byte")]
    EnvNul,
    #[error("--env only applies to a PROGRAM: mobius run [options] -- PROGRAM [ARGS...]")]
    EnvWithoutProgram,
    #[error("--disk {0},root: only the first --disk can hold the root file system")]
    RootDiskNotFirst(String),
    #[error("program {0}: a program on the root disk is named by its absolute path, e.g. /bin/sh")]
    DiskProgramNotAbsolute(String),
    #[error(
        "the program's arguments and environment take {size} bytes; at most {ARGS_MAX} are allowed"
    )]
    ArgsTooLarge { size: usize },
    #[error("not a newc cpio archive: {0}")]
    NotNewc(String),
    #[error("malformed newc cpio archive: {0}")]
    Malformed(String),
    #[error("--initrd {path}: {source}")]
    Initrd {
        path: PathBuf,
        source: Box<InitramfsError>,
    },
}

mod newc;
mod program;
#[cfg(test)]
mod tests;

pub use newc::*;
pub use program::*;
