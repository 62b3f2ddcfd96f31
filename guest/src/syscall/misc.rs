//! Process, signal-mask, time and identity calls.
use super::{Args, EFAULT, EINVAL};
use crate::arch::x86_64::cpu;
use crate::kvmm;
use crate::mm::uaccess;
use crate::mm::vmm::SpaceId;
use crate::proc::process::{self, SigAction};
use crate::proc::task;

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

fn space() -> Option<SpaceId> {
    crate::proc::task::current_space()
}

fn put(addr: u64, bytes: &[u8]) -> i64 {
    let Some(space) = space() else { return -EFAULT };
    match uaccess::copy_to_user(kvmm::vmm(), space, addr, bytes) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
}

pub fn sched_yield() -> i64 {
    task::yield_now();
    0
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

/// `rt_sigaction(sig, act, oldact, sigsetsize)`: the action is remembered
/// (and read back through `oldact`); `SIG_IGN` is honoured (an ignored
/// `SIGPIPE` gives `EPIPE`, an ignored `kill` does nothing); a handler runs
/// (`proc::signal`).
pub fn rt_sigaction(a: Args) -> i64 {
    let [sig, act, old, size, ..] = a.a;
    if !(1..=64).contains(&sig) || size != 8 {
        return -EINVAL;
    }
    let Some(space) = space() else { return -EFAULT };
    let mut new = None;
    if act != 0 {
        if sig == 9 || sig == 19 {
            return -EINVAL;
        }
        let mut b = [0u8; 32];
        if uaccess::copy_from_user(kvmm::vmm(), space, act, &mut b).is_err() {
            return -EFAULT;
        }
        let word =
            |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        new = Some(SigAction {
            handler: word(0),
            flags: word(1),
            restorer: word(2),
            mask: word(3),
        });
    }
    let i = sig as usize - 1;
    let Some(previous) = process::with_current(|p| {
        let prev = p.sig_actions[i];
        if let Some(n) = new {
            p.sig_actions[i] = n;
        }
        prev
    }) else {
        return -EFAULT;
    };
    if old != 0 {
        let mut b = [0u8; 32];
        for (k, v) in [
            previous.handler,
            previous.flags,
            previous.restorer,
            previous.mask,
        ]
        .iter()
        .enumerate()
        {
            b[k * 8..k * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        return put(old, &b);
    }
    0
}

/// `rt_sigprocmask(how, set, oldset, size)`: the running thread's mask of
/// blocked signals (SIGKILL and SIGSTOP cannot be blocked).
pub fn rt_sigprocmask(a: Args) -> i64 {
    let [how, set, old, size, ..] = a.a;
    if how > 2 || size != 8 {
        return -EINVAL;
    }
    let Some(space) = space() else { return -EFAULT };
    let new = if set == 0 {
        None
    } else {
        match uaccess::read_u64(kvmm::vmm(), space, set) {
            Ok(v) => Some(v),
            Err(_) => return -EFAULT,
        }
    };
    match crate::proc::signal::sigprocmask(how, new) {
        Ok(prev) if old != 0 => put(old, &prev.to_le_bytes()),
        Ok(_) => 0,
        Err(e) => e,
    }
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

/// Most bytes one `getrandom` fills (Linux may also return fewer than
/// asked beyond 256; callers loop). Each 8 bytes are one RDRAND, an
/// emulated instruction on kvm_pvm: the cap keeps one call short.
const GETRANDOM_MAX: usize = 4096;

/// `getrandom(buf, len, flags)`: RDRAND bytes, 256 at a time, copied as
/// they are made (a bad buffer fails at once, not after making them all).
pub fn getrandom(a: Args) -> i64 {
    let [buf, len, ..] = a.a;
    let len = (len as usize).min(GETRANDOM_MAX);
    let mut done = 0usize;
    let mut chunk = [0u8; 256];
    while done < len {
        let n = (len - done).min(chunk.len());
        for part in chunk[..n].chunks_mut(8) {
            let v = cpu::random_u64().to_le_bytes();
            part.copy_from_slice(&v[..part.len()]);
        }
        if put(buf.wrapping_add(done as u64), &chunk[..n]) != 0 {
            return if done > 0 { done as i64 } else { -EFAULT };
        }
        done += n;
    }
    done as i64
}
