//! seccomp-bpf: once the VM is set up, the thread that runs the vCPU may make
//! only the system calls its allow-list ([`table`]) names, as Firecracker
//! confines its threads. The filter is built with rust-vmm's `seccompiler`.
//!
//! `mobius` has one thread: the main thread sets the VM up and then runs the
//! vCPU itself, devices included (serial, virtio console, frame discards are
//! all emulated in the run loop; timers are signals to that thread). So
//! there is one list for it, [`table::VCPU`], installed just before the first
//! KVM_RUN. `mobius stat -r N` builds N VMs on that thread: before the last
//! one it installs [`table::VCPU`] plus [`table::NEXT_VM`] (what building a
//! VM takes), and stacks [`table::VCPU`] alone on it before the last run.
//!
//! With `--disk`, each disk also has a worker thread (`devices::virtio::block`),
//! started before the vCPU thread's filter; it confines itself with its own
//! list, [`table::DISK_WORKER`] ([`worker_program`]), and the vCPU thread's
//! list gains [`table::VCPU_DISKS`] and the write of the workers' eventfds.
//!
//! A call outside the list is trapped: the SIGSYS handler (`sigsys.rs`) writes
//! `mobius: error: seccomp: forbidden system call N (name) in thread vcpu`
//! and the process exits with status 159 ([`SECCOMP_VIOLATION`], 128 +
//! SIGSYS, as a shell reports a process killed by SIGSYS). `--no-seccomp`
//! turns the filter off for debugging.
//!
//! Self-test: with `MOBIUS_SECCOMP_SELFTEST=getppid` (a call on no list) or
//! `=ioctl` (`KVM_GET_FPU` on the vCPU, an ioctl number on no list) in its
//! environment, the vCPU thread makes that call right after its filter is
//! installed ([`probe`]); the integration tests use it to show a violation
//! is caught. Without a filter the call is harmless and the run goes on.
//! `=panic` panics there instead: the list lets `abort()` end the process
//! with its message and SIGABRT, as without a filter.
//!
//! [`SECCOMP_VIOLATION`]: mobius_shared::exit::host::SECCOMP_VIOLATION

mod ioctls;
mod sigsys;
pub mod table;

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use table::{Allow, Args};

/// The environment variable that makes the vCPU thread break its filter.
pub const SELFTEST_ENV: &str = "MOBIUS_SECCOMP_SELFTEST";

/// Which filter a run installs before its vCPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seccomp {
    /// None (`--no-seccomp`; the library's default, for embedders and tests).
    #[default]
    Off,
    /// [`table::VCPU`]: no VM is built after this one.
    Vcpu,
    /// [`table::VCPU`] and [`table::NEXT_VM`]: another VM follows.
    VcpuAndNextVm,
}

impl Seccomp {
    /// How narrow: a filter is installed only if it narrows the current one.
    fn rank(self) -> u8 {
        match self {
            Seccomp::Off => 0,
            Seccomp::VcpuAndNextVm => 1,
            Seccomp::Vcpu => 2,
        }
    }

    /// The lists allowed under this filter.
    pub fn lists(self) -> &'static [&'static [Allow]] {
        match self {
            Seccomp::Off => &[],
            Seccomp::Vcpu => &[table::VCPU],
            Seccomp::VcpuAndNextVm => &[table::VCPU, table::NEXT_VM],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: cannot build or install the filter: {0}")]
    Filter(#[from] seccompiler::Error),
    #[error("seccomp: cannot install the SIGSYS handler: {0}")]
    Handler(std::io::Error),
}

/// The narrowest filter this process has installed (a [`Seccomp::rank`]).
static INSTALLED: AtomicU8 = AtomicU8::new(0);

/// Confine the calling thread (the vCPU's) to `filter`, unless it already is
/// as narrowly; `write_fds` are files it may also write to (beyond stdout and
/// stderr). Filters stack: one installed stays for the thread's life, so a
/// later, narrower one must be given the same `write_fds`.
///
/// With `disks`, the vCPU thread may also wait on locks and join threads
/// ([`table::VCPU_DISKS`]); the disks' eventfds are among `write_fds`.
pub fn install(filter: Seccomp, write_fds: &[RawFd], disks: bool) -> Result<(), SeccompError> {
    if filter.rank() <= INSTALLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    sigsys::install().map_err(SeccompError::Handler)?;
    let mut lists = filter.lists().to_vec();
    if disks {
        lists.push(table::VCPU_DISKS);
    }
    let program = compile_with(&lists, write_fds)?;
    sigsys::set_label("vcpu");
    seccompiler::apply_filter(&program)?;
    INSTALLED.store(filter.rank(), Ordering::Relaxed);
    Ok(())
}

/// The filter of a disk worker reading its requests' wake-ups from
/// `eventfd`: [`table::DISK_WORKER`], and `read` of that descriptor only.
/// Installs the SIGSYS handler, so that the worker's violations are
/// reported like the vCPU thread's (its report names thread `disk`).
pub fn worker_program(eventfd: RawFd) -> Result<BpfProgram, SeccompError> {
    sigsys::install().map_err(SeccompError::Handler)?;
    let read_own = Allow {
        nr: libc::SYS_read,
        args: Args::Is(0, eventfd as u64),
        why: "",
    };
    let own = [read_own];
    Ok(compile(&[table::DISK_WORKER, &own])?)
}

/// Name the calling thread in the SIGSYS report.
pub fn sigsys_label(label: &'static str) {
    sigsys::set_label(label);
}

/// The BPF program allowing the calls of `lists` and trapping all others.
pub fn compile(lists: &[&[Allow]]) -> Result<BpfProgram, seccompiler::Error> {
    compile_with(lists, &[])
}

/// [`compile`], also allowing `write` to each of `write_fds`.
pub fn compile_with(
    lists: &[&[Allow]],
    write_fds: &[RawFd],
) -> Result<BpfProgram, seccompiler::Error> {
    // None: any arguments; Some(rules): one of them must match.
    let mut calls: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    let output: Vec<Option<Vec<SeccompRule>>> = write_fds
        .iter()
        .map(|&fd| rules(Args::Is(0, fd as u64)))
        .collect::<Result<_, _>>()?;
    let entries = lists.iter().flat_map(|list| list.iter());
    let entries = entries
        .map(|e| (e.nr, rules(e.args)))
        .chain(output.into_iter().map(|r| (libc::SYS_write, Ok(r))));
    for (nr, new) in entries {
        let new = new?;
        let slot = calls.entry(nr).or_insert_with(|| Some(Vec::new()));
        match (slot.as_mut(), new) {
            (Some(old), Some(new)) => old.extend(new),
            _ => *slot = None,
        }
    }
    let calls = calls
        .into_iter()
        .map(|(nr, rules)| (nr, rules.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(
        calls,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    Ok(filter.try_into()?)
}

fn rules(args: Args) -> Result<Option<Vec<SeccompRule>>, seccompiler::Error> {
    let eq = |arg: u8, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
    };
    Ok(Some(match args {
        Args::Any => return Ok(None),
        Args::Is(arg, value) => vec![SeccompRule::new(vec![eq(arg, value)?])?],
        Args::OneOf(arg, values) => values
            .iter()
            .map(|&v| SeccompRule::new(vec![eq(arg, v)?]))
            .collect::<Result<_, _>>()?,
        Args::All(pairs) => {
            let conditions = pairs
                .iter()
                .map(|&(arg, v)| eq(arg, v))
                .collect::<Result<_, _>>()?;
            vec![SeccompRule::new(conditions)?]
        }
    }))
}

/// The self-test: if [`SELFTEST_ENV`] asks, make a forbidden call.
pub fn probe(vcpu_fd: RawFd) {
    match std::env::var(SELFTEST_ENV).as_deref() {
        Ok("getppid") => {
            // SAFETY: getppid has no preconditions.
            unsafe { libc::getppid() };
        }
        Ok("panic") => panic!("{SELFTEST_ENV}=panic"),
        Ok("ioctl") => {
            let mut fpu = kvm_bindings::kvm_fpu::default();
            // SAFETY: KVM_GET_FPU writes a kvm_fpu, which `fpu` is.
            unsafe { libc::ioctl(vcpu_fd, ioctls::KVM_GET_FPU as _, &mut fpu) };
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_compile_and_give_reasons() {
        for filter in [Seccomp::Vcpu, Seccomp::VcpuAndNextVm] {
            let program = compile(filter.lists()).unwrap();
            assert!(!program.is_empty() && program.len() < 4096, "{filter:?}");
        }
        let program = worker_program(9).unwrap();
        assert!(!program.is_empty() && program.len() < 4096);
        let all = [
            table::VCPU,
            table::NEXT_VM,
            table::VCPU_DISKS,
            table::DISK_WORKER,
        ];
        for entry in all.iter().flat_map(|l| l.iter()) {
            assert!(!entry.why.is_empty() && !entry.why.contains('\n'));
            assert_ne!(crate::syscalls::name(entry.nr), "unknown");
        }
    }

    #[test]
    fn the_vcpu_list_builds_nothing() {
        // No way to a new file, process, socket or executable mapping.
        for nr in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_clone,
            libc::SYS_fork,
            libc::SYS_socket,
            libc::SYS_mprotect,
            libc::SYS_ptrace,
        ] {
            assert!(
                !table::VCPU.iter().any(|e| e.nr == nr),
                "{}",
                crate::syscalls::name(nr)
            );
        }
    }

    #[test]
    fn the_disk_worker_opens_nothing_and_makes_no_threads() {
        for nr in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_clone,
            libc::SYS_socket,
            libc::SYS_mmap,
            libc::SYS_mprotect,
            libc::SYS_ioctl,
        ] {
            let listed = table::DISK_WORKER.iter().filter(|e| e.nr == nr).all(|e| {
                nr == libc::SYS_ioctl
                    && matches!(e.args, Args::Is(1, r) if r == ioctls::KVM_SIGNAL_MSI)
            });
            assert!(listed, "{}", crate::syscalls::name(nr));
        }
    }

    #[test]
    fn output_files_add_write_rules() {
        let lists = Seccomp::Vcpu.lists();
        let plain = compile(lists).unwrap();
        let one = compile_with(lists, &[7]).unwrap();
        let two = compile_with(lists, &[7, 9]).unwrap();
        assert!(plain.len() < one.len() && one.len() < two.len());
    }

    #[test]
    fn filters_only_narrow() {
        assert!(Seccomp::Off.rank() < Seccomp::VcpuAndNextVm.rank());
        assert!(Seccomp::VcpuAndNextVm.rank() < Seccomp::Vcpu.rank());
    }
}
