//! The process's real-time timer (`ITIMER_REAL`): `alarm`, `setitimer`,
//! `getitimer`, and `pause`. An armed timer is a TSC deadline in the
//! process ([`crate::proc::process::Alarm`]); the scheduler fires it from
//! the APIC timer like a sleeper's deadline and sends SIGALRM (a handler
//! runs, or the default action ends the process). A period is at least
//! 100 µs. `ITIMER_VIRTUAL` and `ITIMER_PROF` (CPU-time timers) are refused
//! with `EINVAL`.
use super::{Args, EFAULT, EINTR, EINVAL, ESRCH};
use crate::arch::x86_64::{cpu, tsc};
use crate::mm::kernel::vmm;
use crate::mm::uaccess;
use crate::proc::process::{self, Alarm};
use crate::proc::task::{self, Wait, Wake};

const ITIMER_REAL: u64 = 0;
/// Shortest period of a periodic timer: a shorter one would keep the CPU
/// in the timer interrupt (the signals merge anyway while one is pending).
const MIN_PERIOD_NS: u64 = 100_000;
const NS_PER_SEC: u64 = 1_000_000_000;
const NS_PER_USEC: u64 = 1000;

/// A timer's setting in nanoseconds: the first expiry from now and the
/// period (`struct itimerval`, interval first).
#[derive(Debug, Clone, Copy, Default)]
struct Setting {
    value: u64,
    interval: u64,
}

/// A `struct timeval` in nanoseconds; `EINVAL` when malformed.
fn timeval_ns(b: &[u8]) -> Result<u64, i64> {
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let usec = i64::from_le_bytes(b[8..16].try_into().unwrap_or_default());
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(-EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(usec as u64 * NS_PER_USEC))
}

fn put_timeval(b: &mut [u8], ns: u64) {
    b[..8].copy_from_slice(&(ns / NS_PER_SEC).to_le_bytes());
    b[8..16].copy_from_slice(&((ns % NS_PER_SEC).div_ceil(NS_PER_USEC)).to_le_bytes());
}

/// Replace the running process's timer by `new` (a zero value disarms);
/// returns the setting it had.
fn swap(new: Option<Setting>) -> Result<Setting, i64> {
    let now = cpu::rdtsc();
    let old = process::with_current(|p| {
        let old = p.alarm.map_or(Setting::default(), |a| Setting {
            value: tsc::cycles_to_ns(a.at.saturating_sub(now)).max(1),
            interval: tsc::cycles_to_ns(a.every),
        });
        if let Some(s) = new {
            if s.value != 0 {
                crate::proc::task::note_alarm_set();
            }
            p.alarm = (s.value != 0).then(|| Alarm {
                at: now.saturating_add(tsc::ns_to_cycles(s.value)),
                every: match s.interval {
                    0 => 0,
                    ns => tsc::ns_to_cycles(ns.max(MIN_PERIOD_NS)),
                },
            });
        }
        old
    })
    .ok_or(-ESRCH)?;
    if new.is_some() {
        task::rearm_timer();
    }
    Ok(old)
}

/// `setitimer(which, new, old)`: `ITIMER_REAL` only; a null `new`
/// disarms, as on Linux.
pub fn setitimer(a: Args) -> i64 {
    let [which, new, old, ..] = a.a;
    if which != ITIMER_REAL {
        return -EINVAL;
    }
    let Some((_, _, space)) = task::current() else {
        return -ESRCH;
    };
    let mut setting = Setting::default();
    if new != 0 {
        let mut b = [0u8; 32];
        if uaccess::copy_from_user(vmm(), space, new, &mut b).is_err() {
            return -EFAULT;
        }
        match (timeval_ns(&b[..16]), timeval_ns(&b[16..])) {
            (Ok(interval), Ok(value)) => setting = Setting { value, interval },
            _ => return -EINVAL,
        }
    }
    match swap(Some(setting)) {
        Ok(prev) => write_setting(space, old, prev),
        Err(e) => e,
    }
}

/// `getitimer(which, curr)`.
pub fn getitimer(a: Args) -> i64 {
    let [which, curr, ..] = a.a;
    if which != ITIMER_REAL {
        return -EINVAL;
    }
    let Some((_, _, space)) = task::current() else {
        return -ESRCH;
    };
    if curr == 0 {
        return -EFAULT;
    }
    match swap(None) {
        Ok(now) => write_setting(space, curr, now),
        Err(e) => e,
    }
}

/// Write `s` as a `struct itimerval` at user `addr` (nothing for 0).
fn write_setting(space: crate::mm::vmm::SpaceId, addr: u64, s: Setting) -> i64 {
    if addr == 0 {
        return 0;
    }
    let mut b = [0u8; 32];
    put_timeval(&mut b[..16], s.interval);
    put_timeval(&mut b[16..], s.value);
    match uaccess::copy_to_user(vmm(), space, addr, &b) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
}

/// `alarm(seconds)`: SIGALRM in that many seconds (0 cancels); returns
/// the seconds the previous alarm had left, rounded to the nearest (at
/// least 1 when one was armed), as Linux does.
pub fn alarm(a: Args) -> i64 {
    // Linux takes an unsigned int.
    let secs = u64::from(a.a[0] as u32);
    let setting = Setting {
        value: secs * NS_PER_SEC,
        interval: 0,
    };
    match swap(Some(setting)) {
        Ok(prev) if prev.value == 0 => 0,
        Ok(prev) => ((prev.value + NS_PER_SEC / 2) / NS_PER_SEC).max(1) as i64,
        Err(e) => e,
    }
}

/// `pause()`: wait for a signal; `EINTR` once one is handled (one that
/// ends the process ends it; an ignored one does not wake it).
pub fn pause() -> i64 {
    loop {
        if task::block(Wait::Signal, None) == Wake::Interrupted {
            return -EINTR;
        }
    }
}
