//! Files: the namespace of mounted file systems ([`vfs`]), the initramfs
//! (a `newc` cpio archive read in place) at `/`, a writable in-memory file
//! system at `/tmp`, `/proc`, `/dev`, pipes, and the descriptor table of a
//! process. The first virtio-blk disk's ext4 file system at `/mnt` ([`ext4`]).
pub mod cpio;
pub mod devfs;
#[cfg(target_os = "none")]
pub mod ext4;
pub mod fd;
pub mod initramfs;
pub mod pipe;
#[cfg(target_os = "none")]
pub mod procfs;
pub mod tmpfs;
mod tmpfs_block;
pub mod vfs;

/// `st_dev` of each file system.
pub const DEV_ROOT: u64 = 1;
pub const DEV_TMP: u64 = 2;
pub const DEV_PROC: u64 = 3;
pub const DEV_DEV: u64 = 4;
/// `/mnt`, the first disk's file system.
pub const DEV_DISK: u64 = 5;
