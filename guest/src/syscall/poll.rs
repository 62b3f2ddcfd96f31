//! `poll`/`ppoll`: the console and initramfs files are always ready;
//! pipes are ready when they have data or room, or their other end is
//! closed. With nothing ready the caller sleeps until a pipe changes or
//! the timeout passes.
use alloc::vec;

use super::{Args, EFAULT, EINTR, EINVAL};
use crate::arch::x86_64::{cpu, tsc};
use crate::fs::fd::OpenFile;
use crate::mm::kernel::vmm;
use crate::mm::uaccess;
use crate::proc::task::{self, Wait, Wake};

const POLLIN: u16 = 1;
const POLLOUT: u16 = 4;
const POLLERR: u16 = 8;
const POLLHUP: u16 = 0x10;
const POLLNVAL: u16 = 0x20;
/// Most descriptors one call looks at (`RLIMIT_NOFILE`).
const MAX_POLL: u64 = 1024;

/// What descriptor `fd` is ready for, of `events`.
fn revents(fd: i32, events: u16) -> u16 {
    if fd < 0 {
        return 0;
    }
    let Ok(f) = super::fd::get(fd as u64) else {
        return POLLNVAL;
    };
    let ready = match &*f.lock() {
        OpenFile::Pipe { end, .. } => {
            let (queued, writers, readers) = end.pipe.status();
            if end.write {
                if !readers {
                    POLLERR
                } else if queued < crate::fs::pipe::CAPACITY {
                    POLLOUT
                } else {
                    0
                }
            } else {
                let data = if queued > 0 { POLLIN } else { 0 };
                data | if writers { 0 } else { POLLHUP }
            }
        }
        _ => POLLIN | POLLOUT,
    };
    ready & (events | POLLERR | POLLHUP)
}

/// Poll `nfds` entries at `fds` until one is ready or TSC `deadline`
/// (`None`: no limit).
fn poll_until(fds: u64, nfds: u64, deadline: Option<u64>) -> i64 {
    let Some((_, _, space)) = task::current() else {
        return -EFAULT;
    };
    if nfds > MAX_POLL {
        return -EINVAL;
    }
    let mut raw = vec![0u8; nfds as usize * 8];
    if uaccess::copy_from_user(vmm(), space, fds, &mut raw).is_err() {
        return -EFAULT;
    }
    loop {
        let mut ready = 0;
        for p in raw.chunks_exact_mut(8) {
            let fd = i32::from_le_bytes([p[0], p[1], p[2], p[3]]);
            let events = u16::from_le_bytes([p[4], p[5]]);
            let r = revents(fd, events);
            p[6..8].copy_from_slice(&r.to_le_bytes());
            if r != 0 {
                ready += 1;
            }
        }
        let expired = deadline.is_some_and(|d| cpu::rdtsc() >= d);
        if ready > 0 || expired {
            if uaccess::copy_to_user(vmm(), space, fds, &raw).is_err() {
                return -EFAULT;
            }
            return ready;
        }
        if task::block(Wait::Poll, deadline) == Wake::Interrupted {
            return -EINTR;
        }
    }
}

/// `poll(fds, nfds, timeout_ms)` (negative: no limit).
pub fn poll(a: Args) -> i64 {
    let ms = a.a[2] as i32;
    let deadline = (ms >= 0).then(|| {
        let ns = u64::from(ms.unsigned_abs()) * 1_000_000;
        cpu::rdtsc().saturating_add(tsc::ns_to_cycles(ns))
    });
    poll_until(a.a[0], a.a[1], deadline)
}

/// `ppoll(fds, nfds, timeout, sigmask)` (NULL timeout: no limit; the mask
/// changes nothing while no handler runs).
pub fn ppoll(a: Args) -> i64 {
    let deadline = if a.a[2] == 0 {
        None
    } else {
        let Some((_, _, space)) = task::current() else {
            return -EFAULT;
        };
        let ns = match super::process::timespec_ns(space, a.a[2]) {
            Ok(ns) => ns,
            Err(e) => return e,
        };
        Some(cpu::rdtsc().saturating_add(tsc::ns_to_cycles(ns)))
    };
    poll_until(a.a[0], a.a[1], deadline)
}
