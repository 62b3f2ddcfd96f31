//! Process, signal-mask, time and identity calls.
use super::{Args, EFAULT, EINVAL};
use crate::arch::x86_64::cpu;
use crate::kvmm;
use crate::mm::uaccess;
use crate::mm::vmm::SpaceId;
use crate::proc::task::{self, ExitStatus};

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

fn space() -> Option<SpaceId> {
    task::current().map(|(_, _, s)| s)
}

fn put(addr: u64, bytes: &[u8]) -> i64 {
    let Some(space) = space() else { return -EFAULT };
    match uaccess::copy_to_user(kvmm::vmm(), space, addr, bytes) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
}

pub fn exit(a: Args) -> i64 {
    task::exit_current(ExitStatus::Code(a.a[0] as u8))
}

pub fn getpid() -> i64 {
    task::current().map_or(0, |(_, pid, _)| i64::from(pid))
}

pub fn gettid() -> i64 {
    task::current().map_or(0, |(tid, _, _)| i64::from(tid))
}

pub fn getppid() -> i64 {
    task::with_current(|p| i64::from(p.parent)).unwrap_or(0)
}

pub fn sched_yield() -> i64 {
    task::yield_now();
    0
}

/// `set_tid_address`: the thread id. The address is for waking a joiner
/// when a thread ends; with one thread per process nobody can join.
pub fn set_tid_address(_: Args) -> i64 {
    gettid()
}

pub fn arch_prctl(a: Args) -> i64 {
    match a.a[0] {
        ARCH_SET_FS => {
            // A non-canonical base would make the MSR write fault (#GP).
            let top = a.a[1] >> 47;
            if top != 0 && top != 0x1ffff {
                return -super::EPERM;
            }
            task::set_fs_base(a.a[1]);
            0
        }
        ARCH_GET_FS => put(a.a[1], &crate::arch::x86_64::user::fs_base().to_le_bytes()),
        _ => -EINVAL,
    }
}

/// `rt_sigaction`: accepted and remembered nowhere yet: the old action
/// reads as the default (no handler is ever called; a fatal fault still
/// ends the process).
pub fn rt_sigaction(a: Args) -> i64 {
    let [sig, _act, old, size, ..] = a.a;
    if !(1..=64).contains(&sig) || sig == 9 || sig == 19 || size != 8 {
        return -EINVAL;
    }
    if old != 0 {
        return put(old, &[0u8; 32]);
    }
    0
}

/// `rt_sigprocmask`: the mask is accepted; the old mask reads as empty.
pub fn rt_sigprocmask(a: Args) -> i64 {
    let [how, _set, old, size, ..] = a.a;
    if how > 2 || size != 8 {
        return -EINVAL;
    }
    if old != 0 {
        return put(old, &[0u8; 8]);
    }
    0
}

/// `sigaltstack`: accepted; the old stack reads as disabled.
pub fn sigaltstack(a: Args) -> i64 {
    const SS_DISABLE: u32 = 2;
    if a.a[1] != 0 {
        let mut old = [0u8; 24];
        old[8..12].copy_from_slice(&SS_DISABLE.to_le_bytes());
        return put(a.a[1], &old);
    }
    0
}

pub fn uname(a: Args) -> i64 {
    let mut u = [0u8; 65 * 6];
    for (i, field) in [
        &b"Linux"[..],
        b"mobius",
        b"6.1.0-mobius",
        b"#1 Mobius microVM",
        b"x86_64",
        b"(none)",
    ]
    .iter()
    .enumerate()
    {
        u[i * 65..i * 65 + field.len()].copy_from_slice(field);
    }
    put(a.a[0], &u)
}

/// Nanoseconds since boot from the TSC (the host's `tsc_khz=`).
pub fn now_ns() -> u64 {
    crate::arch::x86_64::tsc::ns_since_boot()
}

pub fn clock_gettime(a: Args) -> i64 {
    if a.a[0] > 11 {
        return -EINVAL;
    }
    let ns = now_ns();
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    put(a.a[1], &ts)
}

pub fn gettimeofday(a: Args) -> i64 {
    if a.a[0] == 0 {
        return 0;
    }
    let ns = now_ns();
    let mut tv = [0u8; 16];
    tv[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    tv[8..].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    put(a.a[0], &tv)
}

pub fn time(a: Args) -> i64 {
    let s = (now_ns() / 1_000_000_000) as i64;
    if a.a[0] != 0 && put(a.a[0], &s.to_le_bytes()) != 0 {
        return -EFAULT;
    }
    s
}

pub fn getrandom(a: Args) -> i64 {
    let [buf, len, ..] = a.a;
    let len = len.min(1 << 20) as usize;
    let mut bytes = alloc::vec![0u8; len];
    for chunk in bytes.chunks_mut(8) {
        let v = cpu::random_u64().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    match put(buf, &bytes) {
        0 => len as i64,
        e => e,
    }
}

/// `kill`/`tkill`/`tgkill` aimed at the caller itself (no other process
/// can be named yet: `ESRCH`). With no handlers, a signal whose default
/// action ends a process ends it, reported as killed by that signal
/// (`abort()` gives status 134, as under a shell); the ignored ones
/// (SIGCHLD, SIGCONT, SIGURG, SIGWINCH) and signal 0 do nothing.
pub fn kill_self(target: u64, sig: u64) -> i64 {
    const ESRCH: i64 = 3;
    let Some((tid, pid, _)) = task::current() else {
        return -ESRCH;
    };
    if target != u64::from(pid) && target != u64::from(tid) && target != 0 {
        return -ESRCH;
    }
    match sig {
        0 | 17 | 18 | 23 | 28 => 0,
        1..=64 => {
            let line =
                alloc::format!("mobius: process {pid} killed by signal {sig} it sent itself\n");
            crate::console::write_program_output(crate::console::Stream::Err, line.as_bytes());
            task::exit_current(ExitStatus::Signal(sig as u8))
        }
        _ => -EINVAL,
    }
}

/// `poll`/`ppoll` on the descriptors a program has: the console and the
/// initramfs's files never block (output is always writable, input at its
/// end), so the answer is immediate whatever the timeout.
pub fn poll(fds: u64, nfds: u64) -> i64 {
    const POLLIN: u16 = 1;
    const POLLOUT: u16 = 4;
    const POLLNVAL: u16 = 0x20;
    let Some(space) = space() else { return -EFAULT };
    if nfds > 1024 {
        return -EINVAL;
    }
    let mut raw = alloc::vec![0u8; nfds as usize * 8];
    if uaccess::copy_from_user(kvmm::vmm(), space, fds, &mut raw).is_err() {
        return -EFAULT;
    }
    let mut ready = 0;
    for p in raw.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        let events = u16::from_le_bytes([p[4], p[5]]);
        let revents = if fd < 0 {
            0
        } else if task::with_current(|pr| pr.fds.get(fd as u64).is_some()).unwrap_or(false) {
            events & (POLLIN | POLLOUT)
        } else {
            POLLNVAL
        };
        p[6..8].copy_from_slice(&revents.to_le_bytes());
        if revents != 0 {
            ready += 1;
        }
    }
    if uaccess::copy_to_user(kvmm::vmm(), space, fds, &raw).is_err() {
        return -EFAULT;
    }
    ready
}
