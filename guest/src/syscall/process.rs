//! Process and thread calls: `clone` (threads, the `CLONE_VM|CLONE_VFORK`
//! child `posix_spawn` makes, and `fork`'s copy-on-write child), `fork`,
//! `vfork`, `execve`, `wait4`,
//! `exit`/`exit_group`, `futex`, `nanosleep`, `kill` and the process-group
//! and session ids a shell asks for.
use alloc::string::String;
use alloc::vec::Vec;

use super::{
    Args, E2BIG, EAGAIN, EFAULT, EINTR, EINVAL, ENAMETOOLONG, ENOENT, ENOSYS, EPERM, ESRCH,
    ETIMEDOUT,
};
use crate::arch::x86_64::trap::TrapFrame;
use crate::arch::x86_64::user;
use crate::arch::x86_64::{cpu, tsc};
use crate::mm::kernel::vmm;
use crate::mm::uaccess::{self, StringError};
use crate::mm::vmm::SpaceId;
use crate::proc::process::{self, flags::*, ChildSelector, ExitStatus};
use crate::proc::task::{self, Wait, Wake};

const PATH_MAX: usize = 4096;
/// Most argument and environment strings `execve` takes, and their total
/// size (Linux's `ARG_MAX` is 2 MiB; our initial stack has room for this).
const MAX_ARGS: usize = 4096;
const MAX_ARG_BYTES: usize = 256 * 1024;

fn current() -> Result<(u32, u32, SpaceId), i64> {
    task::current().ok_or(-ESRCH)
}

/// `clone(flags, stack, parent_tid, child_tid, tls)`.
pub fn clone(frame: &TrapFrame, a: Args) -> i64 {
    let [flags, stack, parent_tid, child_tid, tls, _] = a.a;
    let (_, _, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    // Each process or thread costs kernel heap: none past the reserve.
    if crate::heap::pressure() >= crate::heap::Pressure::Refuse {
        return -super::ENOMEM;
    }
    let mut child = frame.clone();
    child.rax = 0;
    if stack != 0 {
        child.rsp = stack;
    }
    let fs = if flags & CLONE_SETTLS != 0 {
        tls
    } else {
        user::fs_base()
    };
    let id = if flags & CLONE_THREAD != 0 {
        if flags & (CLONE_VM | CLONE_SIGHAND) != CLONE_VM | CLONE_SIGHAND {
            return -EINVAL;
        }
        let clear = if flags & CLONE_CHILD_CLEARTID != 0 {
            child_tid
        } else {
            0
        };
        process::new_thread(&child, fs, clear)
    } else if flags & CLONE_VM != 0 {
        let vfork = flags & CLONE_VFORK != 0;
        process::new_process(&child, space, flags & CLONE_FILES != 0, vfork, fs)
    } else {
        // fork: a copy-on-write duplicate of the address space.
        let forked = vmm().lock().fork_space(space);
        let Ok(child_space) = forked else {
            return -super::ENOMEM;
        };
        let vfork = flags & CLONE_VFORK != 0;
        let made = process::new_process(&child, child_space, flags & CLONE_FILES != 0, vfork, fs);
        if made.is_err() {
            let _ = vmm().lock().destroy_space(child_space);
        }
        made
    };
    let id = match id {
        Ok(id) => id,
        Err(e) => return -e,
    };
    let tid_bytes = id.to_le_bytes();
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = uaccess::copy_to_user(vmm(), space, parent_tid, &tid_bytes);
    }
    if flags & CLONE_CHILD_SETTID != 0 && flags & CLONE_VM != 0 {
        let _ = uaccess::copy_to_user(vmm(), space, child_tid, &tid_bytes);
    }
    if flags & CLONE_VFORK != 0 && flags & CLONE_THREAD == 0 {
        process::wait_vfork(id);
    }
    i64::from(id)
}

/// `fork()`: `clone(SIGCHLD)`, a copy-on-write child.
pub fn fork(frame: &TrapFrame) -> i64 {
    clone(
        frame,
        Args {
            a: [17, 0, 0, 0, 0, 0],
        },
    )
}

/// `vfork()`: `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` on the caller's
/// stack, as Linux does it.
pub fn vfork(frame: &TrapFrame) -> i64 {
    clone(
        frame,
        Args {
            a: [CLONE_VM | CLONE_VFORK | 17, 0, 0, 0, 0, 0],
        },
    )
}

/// Read the NULL-terminated array of strings at user `addr`.
fn string_array(space: SpaceId, addr: u64, total: &mut usize) -> Result<Vec<Vec<u8>>, i64> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    for i in 0..=MAX_ARGS {
        if i == MAX_ARGS {
            return Err(-E2BIG);
        }
        let at = addr.checked_add(i as u64 * 8).ok_or(-EFAULT)?;
        let p = uaccess::read_u64(vmm(), space, at).map_err(|_| -EFAULT)?;
        if p == 0 {
            break;
        }
        let left = MAX_ARG_BYTES.saturating_sub(*total);
        let s = uaccess::read_cstr(vmm(), space, p, left).map_err(|e| match e {
            StringError::Fault => -EFAULT,
            StringError::TooLong => -E2BIG,
        })?;
        *total += s.len() + 1;
        out.push(s);
    }
    Ok(out)
}

/// `execve(path, argv, envp)`: the program replaces the caller's image.
pub fn execve(frame: &mut TrapFrame, a: Args) -> i64 {
    let [path, argv, envp, ..] = a.a;
    let (_, _, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let raw = match uaccess::read_cstr(vmm(), space, path, PATH_MAX) {
        Ok(p) => p,
        Err(StringError::Fault) => return -EFAULT,
        Err(StringError::TooLong) => return -ENAMETOOLONG,
    };
    let Ok(path) = String::from_utf8(raw) else {
        return -ENOENT;
    };
    if path.is_empty() {
        return -ENOENT;
    }
    let cwd = process::with_current(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"));
    let mut total = 0;
    let args = match string_array(space, argv, &mut total) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let env = match string_array(space, envp, &mut total) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = env.iter().map(Vec::as_slice).collect();
    let started = match crate::proc::init::load_program(&path, &cwd, &argv, &envp) {
        Ok(s) => s,
        Err(e) => return -e.errno,
    };
    let loaded = started.loaded;
    process::replace_image(started.space, started.path, loaded.brk);
    let pid = task::table().current_pid();
    if let Some(pid) = pid {
        process::set_cmdline(pid, started.cmdline);
    }
    task::set_fs_base(0);
    task::set_clear_child_tid(0);
    crate::arch::x86_64::fpu::reset();
    *frame = user::user_frame(loaded.entry, loaded.sp);
    0
}

pub fn exit(a: Args) -> i64 {
    process::exit_thread(Some(a.a[0] as u8))
}

pub fn exit_group(a: Args) -> i64 {
    process::exit_current(ExitStatus::Code(a.a[0] as u8))
}

/// `wait4(pid, wstatus, options, rusage)`.
pub fn wait4(a: Args) -> i64 {
    const WNOHANG: u64 = 1;
    let [pid, wstatus, options, rusage, ..] = a.a;
    let (_, me, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let pid = pid as i32;
    let which = match pid {
        -1 => ChildSelector::Any,
        0 => ChildSelector::Group(process::with_current(|p| p.pgid).unwrap_or(me)),
        p if p < 0 => ChildSelector::Group(p.unsigned_abs()),
        p => ChildSelector::Pid(p as u32),
    };
    let r = process::wait_child(which, options & WNOHANG != 0);
    match r {
        Ok(Some((child, status))) => {
            if wstatus != 0 {
                let _ = uaccess::write_u32(vmm(), space, wstatus, status.wait_status());
            }
            if rusage != 0 {
                let _ = uaccess::copy_to_user(vmm(), space, rusage, &[0u8; 144]);
            }
            i64::from(child)
        }
        Ok(None) => 0,
        Err(e) => -e,
    }
}

/// `waitid(idtype, id, infop, options, rusage)`: `P_ALL`, `P_PID`,
/// `P_PGID`; `WEXITED` must be asked for (stopped and continued children
/// do not exist here); `WNOWAIT` (leave the child waitable) is refused.
/// The child's end goes into `infop` as a `siginfo_t` (`SIGCHLD`,
/// `CLD_EXITED`/`CLD_KILLED`, pid, status).
pub fn waitid(a: Args) -> i64 {
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    const WNOHANG: u64 = 1;
    const WEXITED: u64 = 4;
    const WNOWAIT: u64 = 0x0100_0000;
    const KNOWN: u64 = WNOHANG | WEXITED | 2 | 8 | WNOWAIT | 0xe000_0000;
    let [idtype, id, infop, options, rusage, _] = a.a;
    let (_, _, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    if options & WEXITED == 0 || options & WNOWAIT != 0 || options & !KNOWN != 0 {
        return -EINVAL;
    }
    let which = match idtype {
        P_ALL => ChildSelector::Any,
        P_PID => ChildSelector::Pid(id as u32),
        P_PGID => ChildSelector::Group(id as u32),
        _ => return -EINVAL,
    };
    let mut info = [0u8; 128];
    match process::wait_child(which, options & WNOHANG != 0) {
        Ok(Some((child, status))) => {
            let (code, value) = match status {
                ExitStatus::Code(c) => (1i32, i32::from(c)),
                ExitStatus::Signal(s) => (2i32, i32::from(s)),
            };
            info[0..4].copy_from_slice(&17i32.to_le_bytes()); // SIGCHLD
            info[8..12].copy_from_slice(&code.to_le_bytes());
            info[16..20].copy_from_slice(&(child as i32).to_le_bytes());
            info[24..28].copy_from_slice(&value.to_le_bytes());
        }
        Ok(None) => {}
        Err(e) => return -e,
    }
    if infop != 0 && uaccess::copy_to_user(vmm(), space, infop, &info).is_err() {
        return -EFAULT;
    }
    if rusage != 0 && uaccess::copy_to_user(vmm(), space, rusage, &[0u8; 144]).is_err() {
        return -EFAULT;
    }
    0
}

/// A `timespec` at user `addr` in nanoseconds; `EINVAL` when malformed.
pub(super) fn timespec_ns(space: SpaceId, addr: u64) -> Result<u64, i64> {
    let mut b = [0u8; 16];
    uaccess::copy_from_user(vmm(), space, addr, &mut b).map_err(|_| -EFAULT)?;
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let nsec = i64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(-EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

/// Sleep until TSC `deadline`; `EINTR` if the process is ended first.
fn sleep_until(deadline: u64) -> i64 {
    loop {
        match task::block(Wait::Sleep, Some(deadline)) {
            Wake::TimedOut => return 0,
            Wake::Interrupted => return -EINTR,
            Wake::Woken if cpu::rdtsc() >= deadline => return 0,
            Wake::Woken => {}
        }
    }
}

pub fn nanosleep(a: Args) -> i64 {
    let (_, _, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = match timespec_ns(space, a.a[0]) {
        Ok(ns) => ns,
        Err(e) => return e,
    };
    sleep_until(cpu::rdtsc().saturating_add(tsc::ns_to_cycles(ns)))
}

/// `clock_nanosleep(clock, flags, request, remain)`: relative, or absolute
/// on the kernel's clock (`TIMER_ABSTIME`).
pub fn clock_nanosleep(a: Args) -> i64 {
    const TIMER_ABSTIME: u64 = 1;
    let [clock, flags, req, ..] = a.a;
    if clock > 11 {
        return -EINVAL;
    }
    let (_, _, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = match timespec_ns(space, req) {
        Ok(ns) => ns,
        Err(e) => return e,
    };
    let now = cpu::rdtsc();
    let deadline = if flags & TIMER_ABSTIME != 0 {
        let wait = ns.saturating_sub(tsc::ns_since_boot());
        now.saturating_add(tsc::ns_to_cycles(wait))
    } else {
        now.saturating_add(tsc::ns_to_cycles(ns))
    };
    sleep_until(deadline)
}

/// `futex(uaddr, op, val, timeout|val2, uaddr2, val3)`: WAIT, WAKE, their
/// BITSET forms (the bitset is treated as all ones), REQUEUE and
/// CMP_REQUEUE; private and shared futexes alike are keyed by address
/// space and address.
pub fn futex(a: Args) -> i64 {
    const WAIT: u64 = 0;
    const WAKE: u64 = 1;
    const REQUEUE: u64 = 3;
    const CMP_REQUEUE: u64 = 4;
    const WAIT_BITSET: u64 = 9;
    const WAKE_BITSET: u64 = 10;
    let [uaddr, op, val, timeout, uaddr2, val3] = a.a;
    let (_, _, space) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    if uaddr % 4 != 0 {
        return -EINVAL;
    }
    let key = Wait::Futex(space, uaddr);
    match op & 0x7f {
        WAIT | WAIT_BITSET => {
            let now = match uaccess::read_u32(vmm(), space, uaddr) {
                Ok(v) => v,
                Err(_) => return -EFAULT,
            };
            if now != val as u32 {
                return -EAGAIN;
            }
            let deadline = if timeout == 0 {
                None
            } else {
                let ns = match timespec_ns(space, timeout) {
                    Ok(ns) => ns,
                    Err(e) => return e,
                };
                let wait = if op & 0x7f == WAIT_BITSET {
                    ns.saturating_sub(tsc::ns_since_boot())
                } else {
                    ns
                };
                Some(cpu::rdtsc().saturating_add(tsc::ns_to_cycles(wait)))
            };
            match task::block(key, deadline) {
                Wake::Woken => 0,
                Wake::TimedOut => -ETIMEDOUT,
                Wake::Interrupted => -EINTR,
            }
        }
        WAKE | WAKE_BITSET => task::table().wake(|w| *w == key, val as usize) as i64,
        REQUEUE | CMP_REQUEUE => {
            if op & 0x7f == CMP_REQUEUE {
                match uaccess::read_u32(vmm(), space, uaddr) {
                    Ok(v) if v == val3 as u32 => {}
                    Ok(_) => return -EAGAIN,
                    Err(_) => return -EFAULT,
                }
            }
            if uaddr2 % 4 != 0 {
                return -EINVAL;
            }
            let mut t = task::table();
            let woken = t.wake(|w| *w == key, val as usize);
            let moved = t.requeue(key, Wait::Futex(space, uaddr2), timeout as usize);
            (woken + moved) as i64
        }
        _ => -ENOSYS,
    }
}

pub fn set_tid_address(a: Args) -> i64 {
    task::set_clear_child_tid(a.a[0]);
    task::current().map_or(0, |(tid, _, _)| i64::from(tid))
}

/// Signals whose default action is to do nothing.
fn ignored_by_default(sig: u8) -> bool {
    matches!(sig, 17 | 18 | 23 | 28) || matches!(sig, 19..=22)
}

/// `kill(pid, sig)`: to one process, the caller's group (0), every
/// process but the first (-1), or a group (< -1). A signal whose default
/// action ends a process ends it (reported on stderr when it ends the
/// sender itself), unless the target ignores or handles it; handlers are
/// not run yet, so a handled signal is dropped.
pub fn kill(a: Args) -> i64 {
    let [pid, sig, ..] = a.a;
    let pid = pid as i32;
    if sig > 64 {
        return -EINVAL;
    }
    let sig = sig as u8;
    let (_, me, _) = match current() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let targets: Vec<(u32, u64)> = {
        let t = task::table();
        let my_group = t.processes.get(&me).map_or(me, |p| p.pgid);
        t.processes
            .values()
            .filter(|p| p.exited.is_none())
            .filter(|p| match pid {
                0 => p.pgid == my_group,
                -1 => Some(p.pid) != t.first,
                p2 if p2 < -1 => p.pgid == p2.unsigned_abs(),
                p2 => p.pid == p2 as u32,
            })
            .map(|p| (p.pid, p.signal_disposition(sig)))
            .collect()
    };
    if targets.is_empty() {
        return -ESRCH;
    }
    if sig == 0 {
        return 0;
    }
    for (target, disposition) in targets {
        if sig != 9 && sig != 19 && disposition > process::SIG_IGN {
            // A handler: delivered on the target's way back to ring 3.
            crate::proc::signal::queue(target, sig);
            continue;
        }
        if sig != 9 && (disposition == process::SIG_IGN || ignored_by_default(sig)) {
            continue;
        }
        if target == me {
            let line =
                alloc::format!("mobius: process {me} killed by signal {sig} it sent itself\n");
            crate::console::write_program_output(crate::console::Stream::Err, line.as_bytes());
        }
        process::kill(target, ExitStatus::Signal(sig));
    }
    0
}

/// `tkill(tid, sig)` / `tgkill(tgid, tid, sig)`: the thread's process.
pub fn tkill(tid: u64, sig: u64) -> i64 {
    let owner = task::table().threads.get(&(tid as u32)).map(|t| t.pid);
    match owner {
        Some(pid) => kill(Args {
            a: [u64::from(pid), sig, 0, 0, 0, 0],
        }),
        None => -ESRCH,
    }
}

pub fn getpid() -> i64 {
    task::current().map_or(0, |(_, pid, _)| i64::from(pid))
}

pub fn gettid() -> i64 {
    task::current().map_or(0, |(tid, _, _)| i64::from(tid))
}

pub fn getppid() -> i64 {
    process::with_current(|p| i64::from(p.parent)).unwrap_or(0)
}

/// `getpgid(pid)` (0: the caller).
pub fn getpgid(a: Args) -> i64 {
    with_process(a.a[0], |p| i64::from(p.pgid))
}

/// `getsid(pid)` (0: the caller).
pub fn getsid(a: Args) -> i64 {
    with_process(a.a[0], |p| i64::from(p.sid))
}

fn with_process(pid: u64, f: impl FnOnce(&process::Process) -> i64) -> i64 {
    let mut t = task::table();
    let pid = if pid == 0 {
        t.current_pid().unwrap_or(0)
    } else {
        pid as u32
    };
    t.processes.get_mut(&pid).map_or(-ESRCH, |p| f(p))
}

/// `setpgid(pid, pgid)`: the caller or one of its children (0: itself).
pub fn setpgid(a: Args) -> i64 {
    let [pid, pgid, ..] = a.a;
    if (pgid as i64) < 0 {
        return -EINVAL;
    }
    let mut t = task::table();
    let Some(me) = t.current_pid() else {
        return -ESRCH;
    };
    let pid = if pid == 0 { me } else { pid as u32 };
    let Some(p) = t.processes.get_mut(&pid) else {
        return -ESRCH;
    };
    if p.pid != me && p.parent != me {
        return -ESRCH;
    }
    p.pgid = if pgid == 0 { pid } else { pgid as u32 };
    0
}

/// `setsid()`: a new session and group led by the caller.
pub fn setsid() -> i64 {
    let mut t = task::table();
    let Some(me) = t.current_pid() else {
        return -ESRCH;
    };
    let leads_group = t.processes.values().any(|p| p.pid != me && p.pgid == me);
    match t.processes.get_mut(&me) {
        Some(p) if p.pgid != me || !leads_group => {
            p.pgid = me;
            p.sid = me;
            i64::from(me)
        }
        _ => -EPERM,
    }
}
