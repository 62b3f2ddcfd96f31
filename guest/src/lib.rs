//! The Möbius guest kernel as a library.
//!
//! `mm` (frames, page-table abstraction, the Möbius VMM, statistics) is portable:
//! it builds for the host too, where `cargo test` runs it against a software MMU.
//! `arch` and everything that touches the real machine exist only when built for
//! `x86_64-unknown-none`.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

pub mod console;
pub mod errno;
pub mod fs;
pub mod mm;
pub mod proc;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod dev;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod kmain;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
pub mod kvmm;
#[cfg(target_os = "none")]
pub mod recorder;
#[cfg(target_os = "none")]
pub mod report;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod workloads;
