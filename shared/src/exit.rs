//! Exit statuses of the guest and of the `mobius` process.
//!
//! The guest ends a run by writing a [`GuestStatus`] to the debug-exit port; the
//! host passes statuses in `0..=GUEST_STATUS_MAX` through as its own exit status.
//! Statuses above that are reserved for the host itself.

/// Largest status the guest may report; larger values are treated as a crash.
pub const GUEST_STATUS_MAX: u32 = 63;

/// A debug-exit value `PROGRAM_EXIT | status` (`status` 0..=255) ends the run
/// with the exit status of the program the guest ran (`mobius run -- PROGRAM`):
/// the host exits with `status` itself, so `128 + signal` for a program the
/// kernel killed, as a shell reports it.
pub const PROGRAM_EXIT: u32 = 0x100;

/// The program status a debug-exit value carries, if it is one.
pub const fn program_status(value: u64) -> Option<u32> {
    if value >= PROGRAM_EXIT as u64 && value <= PROGRAM_EXIT as u64 + 255 {
        Some((value - PROGRAM_EXIT as u64) as u32)
    } else {
        None
    }
}

/// Statuses the guest kernel reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum GuestStatus {
    /// The workload or test suite finished and everything passed.
    Success = 0,
    /// The workload ran but reported failure (for example failed in-guest tests).
    Failure = 1,
    /// The guest kernel panicked.
    Panic = 3,
    /// An unhandled CPU exception (including an unresolvable kernel page fault).
    Exception = 4,
    /// The command line asked for something the guest does not know.
    BadCommandLine = 5,
    /// The guest ran out of physical frames where it could not recover.
    OutOfMemory = 6,
}

impl GuestStatus {
    pub const fn code(self) -> u32 {
        self as u32
    }
}

/// Statuses of the `mobius` process that do not come from the guest.
pub mod host {
    /// Bad command-line usage (clap's own status).
    pub const USAGE: i32 = 2;
    /// The kernel image is missing, unreadable or not a loadable x86-64 ELF.
    pub const BAD_KERNEL: i32 = 65;
    /// A `--disk` (or `--disk-fail`) cannot be used: a missing or
    /// unreadable file, a size that is not whole sectors, `,rw` on a file
    /// that cannot be written, an unknown option, too many disks.
    pub const BAD_DISK: i32 = 66;
    /// `mobius report`: the data file is missing or unreadable, not a
    /// `mobius record` file, of an unknown version, truncated or corrupt.
    pub const BAD_RECORD_FILE: i32 = 67;
    /// `/dev/kvm` is missing or not accessible.
    pub const KVM_UNAVAILABLE: i32 = 69;
    /// Any other host-side failure (KVM ioctl failed, out of host memory...).
    pub const HOST_ERROR: i32 = 70;
    /// `mobius stat --fail-if EXPR`: the run ended well (status 0) but one of
    /// the counter budgets it was given is broken (or could not be checked).
    pub const BUDGET_EXCEEDED: i32 = 100;
    /// The guest crashed: triple fault, failed entry, KVM internal error, or an
    /// out-of-range status.
    pub const GUEST_CRASH: i32 = 76;
    /// The run exceeded `--timeout`.
    pub const TIMEOUT: i32 = 124;
    /// Stopped by SIGINT / SIGTERM.
    pub const INTERRUPTED: i32 = 130;
    /// The host process made a system call its seccomp filter forbids
    /// (128 + SIGSYS, as a shell reports a process killed by SIGSYS).
    pub const SECCOMP_VIOLATION: i32 = 159;
}
