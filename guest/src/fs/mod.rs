//! Files: the initramfs (a `newc` cpio archive read in place) and the
//! descriptor table of a process.
pub mod cpio;
pub mod fd;
pub mod initramfs;
