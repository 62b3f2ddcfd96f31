//! Files: the initramfs (a `newc` cpio archive read in place), pipes, and
//! the descriptor table of a process.
pub mod cpio;
pub mod fd;
pub mod initramfs;
pub mod pipe;
