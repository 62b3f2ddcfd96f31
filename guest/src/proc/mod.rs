//! Processes: ELF program loading and the initial stack (portable, tested on
//! the host), and in the kernel the process table, scheduler, ring-3 trap
//! handling and the start of the first program.
pub mod elf;
pub mod exec;
pub mod stack;

#[cfg(target_os = "none")]
pub mod entry;
#[cfg(target_os = "none")]
pub mod init;
#[cfg(target_os = "none")]
pub mod process;
#[cfg(target_os = "none")]
pub mod signal;
#[cfg(target_os = "none")]
pub mod task;
