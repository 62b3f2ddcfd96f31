//! What [`crate::run_vm`] gives back: how the guest stopped ([`Stop`]), the
//! VM exits ([`crate::ExitCounts`]) and the host's phase times ([`Timings`]).
use std::time::Duration;

use mobius_shared::exit::host;

use crate::ExitCounts;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The guest wrote this status (<= GUEST_STATUS_MAX) to the debug-exit port.
    Guest(u32),
    /// The guest crashed (triple fault, HLT without status, failed entry,
    /// internal error, out-of-range status); the text is the report.
    Crash(String),
    /// `--timeout` expired.
    Timeout(Duration),
    /// Stopped by this signal (SIGINT/SIGTERM).
    Interrupted(i32),
}

/// Host phase times of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Opening the kernel image and checking its headers.
    pub kernel_read: Duration,
    /// Opening KVM, creating the VM and guest memory.
    pub vm_create: Duration,
    /// Loading the ELF and writing GDT, page tables and start_info.
    pub load: Duration,
    /// Creating the vCPU, CPUID, TSC frequency, command line, registers.
    pub vcpu_setup: Duration,
    /// Building and installing the seccomp filter (zero without one).
    pub seccomp: Duration,
    /// First KVM_RUN to the first byte on the serial console.
    pub first_output: Option<Duration>,
    /// First KVM_RUN to the guest stopping.
    pub run: Duration,
    /// Start of [`crate::run_vm`] to the first serial byte.
    pub boot_to_first_output: Option<Duration>,
    /// Start of [`crate::run_vm`] to the guest stopping.
    pub total: Duration,
}

/// What [`crate::run_vm`] returns once the guest has stopped.
///
/// ```
/// use mobius::{ExitCounts, RunOutcome, Stop, Timings};
///
/// let outcome = RunOutcome {
///     stop: Stop::Guest(3),
///     exits: ExitCounts { io_out: 2, ..ExitCounts::default() },
///     timings: Timings::default(),
///     tsc_khz: None,
///     kvm_stats: Vec::new(),
///     disks: Vec::new(),
/// };
/// // The status `mobius run` would exit with: the guest's own here.
/// assert_eq!(outcome.exit_status(), 3);
/// assert_eq!(outcome.exits.total(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// How the guest stopped.
    pub stop: Stop,
    /// The VM exits the host handled, by reason.
    pub exits: ExitCounts,
    /// Where the host's time went.
    pub timings: Timings,
    /// The TSC frequency handed to the guest, if KVM reported one.
    pub tsc_khz: Option<u32>,
    /// KVM's own per-vCPU statistics (`KVM_GET_STATS_FD`), empty if the
    /// kernel does not offer them or [`crate::RunConfig::kvm_stats`] is off.
    pub kvm_stats: Vec<(String, u64)>,
    /// What each `--disk`'s device counted, in [`crate::RunConfig::disks`]
    /// order (a line each on stderr at the end when a request failed).
    pub disks: Vec<crate::devices::virtio::disk::DiskReport>,
}

impl RunOutcome {
    /// The `mobius` process exit status for this outcome: the guest's status,
    /// or [`host::GUEST_CRASH`], [`host::TIMEOUT`], [`host::INTERRUPTED`].
    pub fn exit_status(&self) -> i32 {
        match self.stop {
            Stop::Guest(status) => status as i32,
            Stop::Crash(_) => host::GUEST_CRASH,
            Stop::Timeout(_) => host::TIMEOUT,
            Stop::Interrupted(_) => host::INTERRUPTED,
        }
    }
}

impl Timings {
    /// One line, `name=1.234ms` pairs, for `--timings`.
    ///
    /// ```
    /// let line = mobius::Timings::default().line();
    /// assert!(line.starts_with("kernel=0.000ms vm_memory=0.000ms"));
    /// ```
    pub fn line(&self) -> String {
        let ms = |d: Duration| format!("{:.3}ms", d.as_secs_f64() * 1e3);
        let opt = |d: Option<Duration>| d.map(ms).unwrap_or_else(|| "none".into());
        format!(
            "kernel={} vm_memory={} load={} vcpu={} seccomp={} first_run_to_output={} run={} total={}",
            ms(self.kernel_read),
            ms(self.vm_create),
            ms(self.load),
            ms(self.vcpu_setup),
            ms(self.seccomp),
            opt(self.first_output),
            ms(self.run),
            ms(self.total)
        )
    }
}
