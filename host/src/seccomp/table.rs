//! The allow-lists, one entry per allowed call (or argument value), each with
//! why it is needed. Found with `strace -f` on `mobius run` (workloads, test
//! programs, `--timeout`, `--boot pvh`, `--kernel`) and `mobius stat` (`-r`,
//! `-I`, `--json`, `-x`, `--serial-stats`, programs), from the first KVM_RUN
//! on; plus the paths strace cannot show on a good run: crash reports, the
//! halt watch, warnings, the allocator growing, and `abort()` on a panic.
//!
//! Arguments are compared on their low 32 bits, as Firecracker does for
//! ioctl request numbers and flags.

use libc::{c_int, SYS_ioctl, SYS_mmap, SYS_open};

use super::ioctls::*;

/// What an allowed call may be passed.
#[derive(Debug, Clone, Copy)]
pub enum Args {
    Any,
    /// Argument `.0` is `.1`.
    Is(u8, u64),
    /// Argument `.0` is one of these values.
    OneOf(u8, &'static [u64]),
    /// Every (argument, value) pair holds.
    All(&'static [(u8, u64)]),
}

/// One allowed call.
#[derive(Debug, Clone, Copy)]
pub struct Allow {
    pub nr: i64,
    pub args: Args,
    pub why: &'static str,
}

const fn allow(nr: i64, why: &'static str) -> Allow {
    Allow {
        nr,
        args: Args::Any,
        why,
    }
}

const fn ioctl(request: u64, why: &'static str) -> Allow {
    Allow {
        nr: SYS_ioctl,
        args: Args::Is(1, request),
        why,
    }
}

const fn sig(nr: c_int) -> u64 {
    nr as u64
}

const RW: u64 = (libc::PROT_READ | libc::PROT_WRITE) as u64;
const PRIVATE_ANON: u64 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
/// musl's `open()` always adds O_LARGEFILE (its x86-64 value).
const O_LARGEFILE: u64 = 0o100000;
const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;

/// The vCPU thread from its first KVM_RUN to the process's end: the run loop,
/// the devices it emulates, teardown, the report, exit. With one VM per
/// process (`mobius run`, the last run of `mobius stat`) this is all.
pub const VCPU: &[Allow] = &[
    ioctl(KVM_RUN, "enter the guest; every VM exit comes back here"),
    ioctl(
        KVM_GET_MP_STATE,
        "halt watch: is the vCPU halted inside KVM_RUN",
    ),
    ioctl(
        KVM_GET_REGS,
        "halt watch and crash reports read the registers",
    ),
    ioctl(
        KVM_GET_SREGS,
        "halt watch (APIC base) and crash reports (control registers)",
    ),
    ioctl(
        KVM_GET_LAPIC,
        "halt watch: interrupts pending or the APIC timer armed",
    ),
    ioctl(KVM_GET_MSRS, "halt watch: the TSC deadline"),
    ioctl(
        KVM_GET_XSAVE,
        "XSTATE port: save a guest thread's vector registers (and the reset state)",
    ),
    ioctl(
        KVM_SET_XSAVE,
        "XSTATE port: load a guest thread's vector registers",
    ),
    ioctl(
        KVM_GET_STATS_FD,
        "`mobius stat` reads KVM's vCPU statistics when the guest stops",
    ),
    allow(
        libc::SYS_pread64,
        "read those statistics from their file descriptor (and, before the next run of \
         `mobius stat -r N`, the `--kernel PATH` headers and segments)",
    ),
    Allow {
        nr: libc::SYS_write,
        args: Args::OneOf(0, &[1, 2]),
        why: "guest console to stdout; program stderr, warnings, reports to stderr",
    },
    Allow {
        nr: libc::SYS_read,
        args: Args::OneOf(0, &[0]),
        why: "the guest program reads our standard input (CONSOLE_READ), descriptor 0 only",
    },
    Allow {
        nr: libc::SYS_madvise,
        args: Args::OneOf(2, &[libc::MADV_DONTNEED as u64]),
        why: "the guest gives a frame back (DISCARD_FRAME): drop its host page",
    },
    Allow {
        nr: SYS_mmap,
        args: Args::All(&[(2, RW), (3, PRIVATE_ANON)]),
        why: "the allocator takes more memory (read-write, private, anonymous only)",
    },
    Allow {
        nr: libc::SYS_mremap,
        args: Args::OneOf(3, &[0, libc::MREMAP_MAYMOVE as u64]),
        why: "the allocator resizes a large block",
    },
    allow(
        libc::SYS_munmap,
        "the allocator frees; teardown unmaps kvm_run and guest RAM",
    ),
    allow(
        libc::SYS_close,
        "teardown closes the vCPU, VM, KVM and statistics fds",
    ),
    Allow {
        nr: libc::SYS_fcntl,
        args: Args::Is(1, libc::F_GETFD as u64),
        why: "Rust's std (debug builds) checks that an fd is open before closing it",
    },
    allow(
        libc::SYS_timer_delete,
        "teardown deletes the timeout and halt-watch timers",
    ),
    allow(
        libc::SYS_rt_sigreturn,
        "return from the timer and SIGINT/SIGTERM handlers",
    ),
    allow(
        libc::SYS_clock_gettime,
        "Instant::now() where the vDSO is unavailable",
    ),
    allow(
        libc::SYS_sigaltstack,
        "Rust's runtime drops the main thread's signal stack at exit",
    ),
    allow(libc::SYS_exit_group, "the process ends"),
    allow(
        libc::SYS_rt_sigprocmask,
        "abort() (a panic) blocks signals around raising SIGABRT",
    ),
    Allow {
        nr: libc::SYS_tkill,
        args: Args::OneOf(1, &[sig(libc::SIGABRT)]),
        why: "abort() sends SIGABRT to its own thread",
    },
    Allow {
        nr: libc::SYS_rt_sigaction,
        args: Args::OneOf(
            0,
            &[sig(libc::SIGABRT), sig(libc::SIGSEGV), sig(libc::SIGBUS)],
        ),
        why: "abort() and Rust's stack-overflow handler restore the default action to die",
    },
];

/// Also allowed on the vCPU thread when the run has disks (`--disk`); the
/// write to each disk worker's eventfd is allowed by descriptor, as the
/// `-o FILE` writes are.
pub const VCPU_DISKS: &[Allow] = &[allow(
    libc::SYS_futex,
    "wait for a disk's queue lock while its worker holds it (reset), join the worker at teardown",
)];

/// A disk's worker thread (`host/src/devices/virtio/block.rs`) once it is
/// running: the file I/O of requests, the completion MSI, the queue lock,
/// and its own end. The read of its eventfd is allowed by descriptor.
pub const DISK_WORKER: &[Allow] = &[
    allow(
        libc::SYS_pread64,
        "read requests: the disk file into guest memory",
    ),
    allow(
        libc::SYS_pwrite64,
        "write requests: guest memory into the disk file",
    ),
    allow(libc::SYS_fdatasync, "flush requests"),
    ioctl(
        KVM_SIGNAL_MSI,
        "the completion interrupt, an MSI into the local APIC",
    ),
    allow(
        libc::SYS_futex,
        "the queue lock shared with the vCPU thread, the counters' lock",
    ),
    Allow {
        nr: libc::SYS_write,
        args: Args::OneOf(0, &[2]),
        why: "the SIGSYS handler's report (and a panic's message) to stderr",
    },
    allow(libc::SYS_exit, "the worker ends when its device is dropped"),
    allow(
        libc::SYS_sigaltstack,
        "Rust's runtime drops the thread's signal stack at its end",
    ),
    allow(
        libc::SYS_munmap,
        "the thread's signal stack, freed memory at its end",
    ),
    allow(
        libc::SYS_rt_sigprocmask,
        "musl blocks signals as the thread exits; abort() (a panic)",
    ),
    allow(libc::SYS_exit_group, "the SIGSYS handler ends the process"),
    Allow {
        nr: libc::SYS_tkill,
        args: Args::OneOf(1, &[sig(libc::SIGABRT)]),
        why: "abort() sends SIGABRT to its own thread",
    },
    Allow {
        nr: libc::SYS_rt_sigaction,
        args: Args::OneOf(0, &[sig(libc::SIGABRT)]),
        why: "abort() restores SIGABRT's default action to die",
    },
];

/// Also allowed while more VMs follow on the same thread (`mobius stat -r N`
/// before its last run): what building the next VM takes.
pub const NEXT_VM: &[Allow] = &[
    allow(
        libc::SYS_getpid,
        "the next run's id is made of the pid and the run index",
    ),
    Allow {
        nr: SYS_open,
        args: Args::OneOf(1, &[libc::O_RDWR as u64 | O_CLOEXEC | O_LARGEFILE]),
        why: "open /dev/kvm (read-write, nothing created)",
    },
    Allow {
        nr: SYS_open,
        args: Args::OneOf(1, &[libc::O_RDONLY as u64 | O_CLOEXEC | O_LARGEFILE]),
        why: "open `--kernel PATH` again (read-only)",
    },
    Allow {
        nr: libc::SYS_fcntl,
        args: Args::All(&[(1, libc::F_SETFD as u64), (2, libc::FD_CLOEXEC as u64)]),
        why: "musl's open() sets FD_CLOEXEC again, for kernels that ignore O_CLOEXEC",
    },
    allow(libc::SYS_fstat, "size the kernel file"),
    ioctl(KVM_GET_API_VERSION, "check /dev/kvm speaks API 12"),
    ioctl(KVM_CREATE_VM, "create the VM"),
    ioctl(KVM_GET_VCPU_MMAP_SIZE, "size the vCPU's kvm_run area"),
    ioctl(KVM_SET_TSS_ADDR, "place the TSS KVM needs on Intel"),
    ioctl(KVM_ENABLE_CAP, "split irqchip: the local APIC in KVM"),
    ioctl(KVM_SET_USER_MEMORY_REGION, "hand guest RAM to the VM"),
    ioctl(KVM_CREATE_VCPU, "create the vCPU"),
    ioctl(KVM_GET_SUPPORTED_CPUID, "the CPUID KVM offers"),
    ioctl(KVM_SET_CPUID2, "give it to the vCPU"),
    ioctl(
        KVM_GET_TSC_KHZ,
        "the TSC frequency for the guest's command line",
    ),
    ioctl(KVM_SET_SREGS, "boot state: segments, control registers"),
    ioctl(KVM_SET_REGS, "boot state: entry point, start_info"),
    Allow {
        nr: SYS_mmap,
        args: Args::All(&[(2, RW), (3, PRIVATE_ANON | libc::MAP_NORESERVE as u64)]),
        why: "guest RAM (pages cost nothing until touched)",
    },
    Allow {
        nr: SYS_mmap,
        args: Args::All(&[(2, RW), (3, libc::MAP_SHARED as u64)]),
        why: "map the vCPU's kvm_run area",
    },
    allow(
        libc::SYS_timer_create,
        "the next run's timeout and halt-watch timers",
    ),
    allow(libc::SYS_timer_settime, "arm them"),
    Allow {
        nr: libc::SYS_prctl,
        args: Args::OneOf(0, &[libc::PR_SET_NO_NEW_PRIVS as u64]),
        why: "before the last run, stack the VCPU list on this one",
    },
    Allow {
        nr: libc::SYS_seccomp,
        args: Args::OneOf(0, &[libc::SECCOMP_SET_MODE_FILTER as u64]),
        why: "(the same: a further filter only narrows what is allowed)",
    },
];
