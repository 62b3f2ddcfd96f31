//! Descriptor calls: `pipe2`, `dup`/`dup2`/`dup3`, `fcntl`, and reading
//! and writing pipes (blocking: a reader sleeps until data or the last
//! writer closes, a writer until there is room or the last reader closes).
use alloc::sync::Arc;
use alloc::vec;

use spin::Mutex;

use super::{Args, EAGAIN, EBADF, EFAULT, EINTR, EINVAL, EMFILE, EPIPE};
use crate::fs::fd::{FileRef, OpenFile};
use crate::fs::pipe::{Pipe, PipeEnd, ReadResult, WriteResult, CAPACITY};
use crate::mm::kernel::vmm;
use crate::mm::uaccess;
use crate::mm::vmm::SpaceId;
use crate::proc::process::{self, ExitStatus};
use crate::proc::task::{self, Wait, Wake};

pub const O_NONBLOCK: u64 = 0o4000;
const O_APPEND: u64 = 0o2000;
pub const O_CLOEXEC: u64 = 0o2_000_000;
const SIGPIPE: u8 = 13;

/// The file behind `fd` in the running process.
/// Descriptor arguments are C `int`s: the upper half of the register is
/// ignored (as Linux does), so -1 stays invalid and `AT_FDCWD` is 32-bit.
pub fn get(fd: u64) -> Result<FileRef, i64> {
    let fd = fd & 0xffff_ffff;
    process::fds().and_then(|t| t.lock().get(fd)).ok_or(-EBADF)
}

/// Put `file` in the lowest free slot.
pub fn insert(file: FileRef, cloexec: bool) -> i64 {
    process::fds()
        .and_then(|t| t.lock().insert(file, cloexec))
        .map_or(-EMFILE, |fd| fd as i64)
}

/// Close `fd`; the file is dropped after the table is unlocked (closing a
/// pipe end wakes the other side through the scheduler).
pub fn close(fd: u64) -> i64 {
    let closed = process::fds().and_then(|t| t.lock().close(fd));
    match closed {
        Some(f) => {
            drop(f);
            0
        }
        None => -EBADF,
    }
}

/// Wake every thread waiting on pipe `id` (and every `poll`er).
pub fn pipe_changed(id: usize) {
    task::table().wake(|w| *w == Wait::Pipe(id) || *w == Wait::Poll, usize::MAX);
}

pub fn pipe2(a: Args) -> i64 {
    let [fds, flags, ..] = a.a;
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return -EINVAL;
    }
    let Some((_, _, space)) = task::current() else {
        return -EFAULT;
    };
    // A pipe's buffer lives in the kernel heap (Linux: ENFILE when the
    // system's file table is full).
    if crate::heap::pressure() >= crate::heap::Pressure::Refuse {
        return -super::ENFILE;
    }
    let nonblock = flags & O_NONBLOCK != 0;
    let cloexec = flags & O_CLOEXEC != 0;
    let (r, w) = PipeEnd::pair(pipe_changed);
    let r = Arc::new(Mutex::new(OpenFile::Pipe { end: r, nonblock }));
    let w = Arc::new(Mutex::new(OpenFile::Pipe { end: w, nonblock }));
    let Some(table) = process::fds() else {
        return -EBADF;
    };
    let (rfd, wfd) = {
        let mut t = table.lock();
        let Some(rfd) = t.insert(r, cloexec) else {
            return -EMFILE;
        };
        let Some(wfd) = t.insert(w, cloexec) else {
            let f = t.close(rfd);
            drop(t);
            drop(f);
            return -EMFILE;
        };
        (rfd, wfd)
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(rfd as u32).to_le_bytes());
    out[4..].copy_from_slice(&(wfd as u32).to_le_bytes());
    if uaccess::copy_to_user(vmm(), space, fds, &out).is_err() {
        close(rfd);
        close(wfd);
        return -EFAULT;
    }
    0
}

pub fn pipe(a: Args) -> i64 {
    pipe2(Args {
        a: [a.a[0], 0, 0, 0, 0, 0],
    })
}

pub fn dup(a: Args) -> i64 {
    match get(a.a[0]) {
        Ok(f) => insert(f, false),
        Err(e) => e,
    }
}

/// `dup2`/`dup3`: `newfd` becomes a copy of `oldfd`.
fn dup_to(old: u64, new: u64, cloexec: bool) -> i64 {
    let f = match get(old) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let Some(table) = process::fds() else {
        return -EBADF;
    };
    let replaced = table.lock().insert_at(new, f, cloexec);
    match replaced {
        Ok(previous) => {
            drop(previous);
            new as i64
        }
        Err(_) => -EBADF,
    }
}

pub fn dup2(a: Args) -> i64 {
    let [old, new, ..] = a.a;
    if old == new {
        return get(old).map_or_else(|e| e, |_| new as i64);
    }
    dup_to(old, new, false)
}

pub fn dup3(a: Args) -> i64 {
    let [old, new, flags, ..] = a.a;
    if old == new || flags & !O_CLOEXEC != 0 {
        return -EINVAL;
    }
    dup_to(old, new, flags & O_CLOEXEC != 0)
}

pub fn fcntl(a: Args) -> i64 {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const FD_CLOEXEC: u64 = 1;
    let [fd, cmd, arg, ..] = a.a;
    let Some(table) = process::fds() else {
        return -EBADF;
    };
    let f = match get(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => table
            .lock()
            .insert_from(arg, f, cmd == F_DUPFD_CLOEXEC)
            .map_or(-EINVAL, |n| n as i64),
        F_GETFD => table.lock().cloexec(fd).map_or(-EBADF, i64::from),
        F_SETFD => {
            table.lock().set_cloexec(fd, arg & FD_CLOEXEC != 0);
            0
        }
        F_GETFL => status_flags(&f.lock()) as i64,
        F_SETFL => {
            match &mut *f.lock() {
                OpenFile::Pipe { nonblock, .. } => *nonblock = arg & O_NONBLOCK != 0,
                OpenFile::Node(n) => {
                    let settable = O_APPEND | O_NONBLOCK;
                    n.flags = (n.flags & !settable) | (arg & settable);
                }
                OpenFile::Console(_) => {}
            }
            0
        }
        _ => -EINVAL,
    }
}

/// `F_GETFL`: access mode and `O_NONBLOCK`.
fn status_flags(f: &OpenFile) -> u64 {
    match f {
        OpenFile::Console(0) => 0,
        OpenFile::Console(_) => 1,
        OpenFile::Pipe { end, nonblock } => {
            u64::from(end.write) | if *nonblock { O_NONBLOCK } else { 0 }
        }
        OpenFile::Node(n) => n.flags,
    }
}

/// The pipe behind an open file, if it is one: (pipe, write end, nonblock).
pub fn as_pipe(f: &FileRef) -> Option<(Arc<Pipe>, bool, bool)> {
    match &*f.lock() {
        OpenFile::Pipe { end, nonblock } => Some((end.pipe.clone(), end.write, *nonblock)),
        _ => None,
    }
}

/// Read up to `len` bytes of `pipe` into user `buf`, sleeping while it is
/// empty and a writer is left.
pub fn read_pipe(pipe: &Pipe, nonblock: bool, space: SpaceId, buf: u64, len: u64) -> i64 {
    let want = (len as usize).min(CAPACITY);
    if want == 0 {
        return 0;
    }
    loop {
        // Only as many zeroed bytes as the pipe holds (a reader often asks
        // for far more than is there).
        let mut tmp = vec![0u8; want.min(pipe.queued().max(1))];
        match pipe.read(&mut tmp) {
            ReadResult::Data(n) => {
                pipe_changed(pipe.id);
                return match uaccess::copy_to_user(vmm(), space, buf, &tmp[..n]) {
                    Ok(()) => n as i64,
                    Err(_) => -EFAULT,
                };
            }
            ReadResult::Eof => return 0,
            ReadResult::WouldBlock if nonblock => return -EAGAIN,
            ReadResult::WouldBlock => {
                if task::block(Wait::Pipe(pipe.id), None) == Wake::Interrupted {
                    return -EINTR;
                }
            }
        }
    }
}

/// Write `len` bytes at user `buf` to `pipe`, sleeping while it is full.
/// With no reader left: `EPIPE`, and the process ends with `SIGPIPE`
/// unless it ignores or handles that signal.
pub fn write_pipe(pipe: &Pipe, nonblock: bool, space: SpaceId, buf: u64, len: u64) -> i64 {
    let mut done = 0u64;
    let mut chunk = vec![0u8; (len as usize).min(CAPACITY)];
    while done < len {
        let n = (len - done).min(CAPACITY as u64) as usize;
        if uaccess::copy_from_user(vmm(), space, buf + done, &mut chunk[..n]).is_err() {
            return if done > 0 { done as i64 } else { -EFAULT };
        }
        let mut off = 0;
        while off < n {
            let may_grow = crate::heap::pressure() < crate::heap::Pressure::Critical;
            match pipe.write_within(&chunk[off..n], may_grow) {
                WriteResult::Written(k) => {
                    off += k;
                    pipe_changed(pipe.id);
                }
                WriteResult::Broken => return broken_pipe(done + off as u64),
                WriteResult::WouldBlock if nonblock => {
                    let moved = done + off as u64;
                    return if moved > 0 { moved as i64 } else { -EAGAIN };
                }
                WriteResult::WouldBlock => {
                    if task::block(Wait::Pipe(pipe.id), None) == Wake::Interrupted {
                        let moved = done + off as u64;
                        return if moved > 0 { moved as i64 } else { -EINTR };
                    }
                }
            }
        }
        done += n as u64;
    }
    done as i64
}

/// A write found no reader: `EPIPE`, and `SIGPIPE`: its default action
/// ends the process, an ignored one does nothing, a handler runs.
fn broken_pipe(moved: u64) -> i64 {
    let disposition = process::with_current(|p| p.signal_disposition(SIGPIPE)).unwrap_or(1);
    let pid = task::table().current_pid();
    if let Some(pid) = pid {
        match disposition {
            0 => process::kill(pid, ExitStatus::Signal(SIGPIPE)),
            process::SIG_IGN => {}
            _ => crate::proc::signal::queue(pid, SIGPIPE),
        }
    }
    if moved > 0 {
        moved as i64
    } else {
        -EPIPE
    }
}
