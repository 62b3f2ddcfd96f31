//! System calls on open descriptors: `read`, `write` and their positioned
//! and vectored forms, `lseek`, `ftruncate`, `fsync`, `sendfile`, `ioctl`,
//! `close`. Names (open, stat, mkdir, ...) are in [`super::path`].
use alloc::vec;
use alloc::vec::Vec;

use super::{Args, EBADF, EFAULT, EINVAL, EISDIR, ENOTTY, ENXIO, ESPIPE};
use crate::console::{write_program_output, Stream};
use crate::fs::fd::{FileRef, OpenFile, OpenNode};
use crate::kvmm;
use crate::mm::uaccess;
use crate::mm::vmm::SpaceId;

/// Most bytes one read or write moves at a time through a kernel buffer
/// (Linux's `MAX_RW_COUNT` is ~2 GiB; longer transfers loop).
const CHUNK: usize = 64 * 1024;
/// Most `iovec`s in one `readv`/`writev` (`UIO_MAXIOV`).
const IOV_MAX: u64 = 1024;
const O_APPEND: u64 = 0o2000;

pub(super) fn space() -> Option<SpaceId> {
    crate::proc::task::current_space()
}

pub(super) fn file(fd: u64) -> Result<FileRef, i64> {
    super::fd::get(fd)
}

/// Bytes of a user length a call may move.
fn clamp(len: u64) -> usize {
    len.min(i64::MAX as u64) as usize
}

/// Write `len` bytes at user `buf` to `fd` (at `at`, or the file position).
fn write_to(fd: u64, buf: u64, len: u64, at: Option<u64>) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some((pipe, write_end, nonblock)) = super::fd::as_pipe(&f) {
        if at.is_some() {
            return -ESPIPE;
        }
        if !write_end {
            return -EBADF;
        }
        return super::fd::write_pipe(&pipe, nonblock, space, buf, len);
    }
    let len = clamp(len);
    let mut chunk = vec![0u8; len.min(CHUNK)];
    let mut done = 0usize;
    while done < len {
        let n = (len - done).min(CHUNK);
        if uaccess::copy_from_user(kvmm::vmm(), space, buf + done as u64, &mut chunk[..n]).is_err()
        {
            return if done > 0 { done as i64 } else { -EFAULT };
        }
        let at = at.map(|a| a.saturating_add(done as u64));
        match write_kernel(&f, &chunk[..n], at) {
            Ok(w) => {
                done += w;
                if w < n {
                    break;
                }
            }
            Err(e) if done == 0 => return -e,
            Err(_) => break,
        }
    }
    done as i64
}

/// Write `data` to the console or node `f`; how many bytes went.
fn write_kernel(f: &FileRef, data: &[u8], at: Option<u64>) -> Result<usize, i64> {
    let mut f = f.lock();
    match &mut *f {
        OpenFile::Console(1) => write_program_output(Stream::Out, data),
        OpenFile::Console(2) => write_program_output(Stream::Err, data),
        OpenFile::Console(_) | OpenFile::Pipe { .. } => return Err(EBADF),
        OpenFile::Node(n) => return write_node(n, data, at),
    }
    Ok(data.len())
}

fn write_node(n: &mut OpenNode, data: &[u8], at: Option<u64>) -> Result<usize, i64> {
    if !n.writable() {
        return Err(EBADF);
    }
    if n.node.meta().is_dir() {
        return Err(EISDIR);
    }
    let pos = match at {
        Some(a) => a,
        None if n.flags & O_APPEND != 0 => n.node.meta().size,
        None => n.pos,
    };
    let w = n.node.write_at(pos, data)?;
    if at.is_none() {
        n.pos = pos.saturating_add(w as u64);
    }
    Ok(w)
}

/// Read up to `len` bytes from `fd` into user `buf` (at `at`, or the file
/// position when `None`).
fn read_from(fd: u64, buf: u64, len: u64, at: Option<u64>) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some((pipe, write_end, nonblock)) = super::fd::as_pipe(&f) {
        if at.is_some() {
            return -ESPIPE;
        }
        if write_end {
            return -EBADF;
        }
        return super::fd::read_pipe(&pipe, nonblock, space, buf, len);
    }
    let len = clamp(len);
    let mut chunk = Vec::new();
    let mut done = 0usize;
    while done < len {
        let at = at.map(|a| a.saturating_add(done as u64));
        // Only as many zeroed bytes as can come (a reader often asks for far
        // more than the file holds).
        let want = (len - done).min(CHUNK).min(readable(&f, at));
        if want == 0 {
            break;
        }
        chunk.resize(want, 0);
        let n = match read_kernel(&f, &mut chunk[..want], at) {
            Ok(n) => n,
            Err(e) if done == 0 => return -e,
            Err(_) => break,
        };
        if uaccess::copy_to_user(kvmm::vmm(), space, buf + done as u64, &chunk[..n]).is_err() {
            return if done > 0 { done as i64 } else { -EFAULT };
        }
        done += n;
        // The console gives what the host has; a short read ends the call.
        if n < want || matches!(&*f.lock(), OpenFile::Console(_)) {
            break;
        }
    }
    done as i64
}

/// At most how many bytes a read of `f` at `at` (or its position) can
/// return: what is left of a regular file, else unbounded. A file of size 0
/// may still have bytes (`/proc`'s are made when read, as on Linux).
fn readable(f: &FileRef, at: Option<u64>) -> usize {
    match &*f.lock() {
        OpenFile::Node(n) => {
            let m = n.node.meta();
            if m.is_file() && m.size > 0 && n.readable() {
                let left = m.size.saturating_sub(at.unwrap_or(n.pos));
                usize::try_from(left).unwrap_or(usize::MAX)
            } else {
                usize::MAX
            }
        }
        _ => usize::MAX,
    }
}

/// Read from the console or node `f` into `buf`.
fn read_kernel(f: &FileRef, buf: &mut [u8], at: Option<u64>) -> Result<usize, i64> {
    let mut f = f.lock();
    match &mut *f {
        // The host's standard input (empty where the host offers none).
        OpenFile::Console(0) => {
            let data = crate::arch::x86_64::stdin::read(buf.len());
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok(n)
        }
        OpenFile::Console(_) | OpenFile::Pipe { .. } => Err(EBADF),
        OpenFile::Node(n) => {
            if !n.readable() {
                return Err(EBADF);
            }
            let r = n.node.read_at(at.unwrap_or(n.pos), buf)?;
            if at.is_none() {
                n.pos = n.pos.saturating_add(r as u64);
            }
            Ok(r)
        }
    }
}

pub fn write(a: Args) -> i64 {
    write_to(a.a[0], a.a[1], a.a[2], None)
}

pub fn read(a: Args) -> i64 {
    read_from(a.a[0], a.a[1], a.a[2], None)
}

/// The offset argument of `pread64`/`pwrite64`, checked; `ESPIPE` for
/// descriptors without positions.
fn positioned(fd: u64, off: u64) -> Result<u64, i64> {
    if (off as i64) < 0 {
        return Err(-EINVAL);
    }
    let f = file(fd)?;
    if matches!(&*f.lock(), OpenFile::Console(_) | OpenFile::Pipe { .. }) {
        return Err(-ESPIPE);
    }
    Ok(off)
}

pub fn pread64(a: Args) -> i64 {
    match positioned(a.a[0], a.a[3]) {
        Ok(off) => read_from(a.a[0], a.a[1], a.a[2], Some(off)),
        Err(e) => e,
    }
}

pub fn pwrite64(a: Args) -> i64 {
    match positioned(a.a[0], a.a[3]) {
        Ok(off) => write_to(a.a[0], a.a[1], a.a[2], Some(off)),
        Err(e) => e,
    }
}

/// The `iovec`s at user `iov`.
fn iovecs(space: SpaceId, iov: u64, count: u64) -> Result<Vec<(u64, u64)>, i64> {
    if count > IOV_MAX {
        return Err(-EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    uaccess::copy_from_user(kvmm::vmm(), space, iov, &mut raw).map_err(|_| -EFAULT)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let base = u64::from_le_bytes(c[..8].try_into().unwrap_or_default());
            let len = u64::from_le_bytes(c[8..].try_into().unwrap_or_default());
            (base, len)
        })
        .collect())
}

/// `readv`/`writev`: `each` moves one `iovec`; the calls stop at the first
/// error (reported only if nothing moved before it) or short transfer.
fn vectored(a: Args, mut each: impl FnMut(u64, u64) -> i64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let v = match iovecs(space, a.a[1], a.a[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut total = 0i64;
    for (base, len) in v {
        let n = each(base, len);
        if n < 0 {
            return if total > 0 { total } else { n };
        }
        total += n;
        if (n as u64) < len {
            break;
        }
    }
    total
}

pub fn writev(a: Args) -> i64 {
    vectored(a, |base, len| write_to(a.a[0], base, len, None))
}

pub fn readv(a: Args) -> i64 {
    vectored(a, |base, len| read_from(a.a[0], base, len, None))
}

pub fn close(a: Args) -> i64 {
    super::fd::close(a.a[0])
}

pub fn lseek(a: Args) -> i64 {
    let [fd, off, whence, ..] = a.a;
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let mut f = f.lock();
    let OpenFile::Node(n) = &mut *f else {
        return -ESPIPE;
    };
    let size = n.node.meta().size;
    let off = off as i64;
    let target = match whence {
        0 => Some(off),
        1 => (n.pos as i64).checked_add(off),
        2 => (size as i64).checked_add(off),
        // SEEK_DATA / SEEK_HOLE: the file is all data up to its end.
        3 | 4 if off < 0 => None,
        3 | 4 if off as u64 >= size => return -ENXIO,
        3 => Some(off),
        4 => Some(size as i64),
        _ => None,
    };
    match target {
        Some(t) if t >= 0 => {
            n.pos = t as u64;
            t
        }
        _ => -EINVAL,
    }
}

/// `ftruncate(fd, len)`: the file must be open for writing.
pub fn ftruncate(a: Args) -> i64 {
    let [fd, len, ..] = a.a;
    if (len as i64) < 0 {
        return -EINVAL;
    }
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let f = f.lock();
    match &*f {
        OpenFile::Node(n) if n.writable() && n.node.meta().is_file() => {
            n.node.truncate(len).map_or_else(|e| -e, |()| 0)
        }
        OpenFile::Node(n) if !n.writable() => -EBADF,
        _ => -EINVAL,
    }
}

/// `fsync`/`fdatasync`: every file system here is in memory (or
/// read-only), so there is nothing to write back.
pub fn fsync(a: Args) -> i64 {
    file(a.a[0]).map_or_else(|e| e, |_| 0)
}

/// `sendfile(out, in, offset, count)`: copy through a kernel buffer.
pub fn sendfile(a: Args) -> i64 {
    let [out, input, off_ptr, count, ..] = a.a;
    let Some(space) = space() else { return -EBADF };
    let (src, dst) = match (file(input), file(out)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    // Pipes are read and written through user buffers; `sendfile` from or
    // to them is refused, and callers (busybox, coreutils) fall back to
    // read and write.
    if super::fd::as_pipe(&src).is_some() || super::fd::as_pipe(&dst).is_some() {
        return -EINVAL;
    }
    let mut offset = None;
    if off_ptr != 0 {
        let mut raw = [0u8; 8];
        if uaccess::copy_from_user(kvmm::vmm(), space, off_ptr, &mut raw).is_err() {
            return -EFAULT;
        }
        let o = i64::from_le_bytes(raw);
        if o < 0 {
            return -EINVAL;
        }
        offset = Some(o as u64);
    }
    let mut buf = Vec::new();
    let mut done = 0usize;
    while done < clamp(count) {
        let at = offset.map(|o| o + done as u64);
        let want = (clamp(count) - done).min(CHUNK).min(readable(&src, at));
        if want == 0 {
            break;
        }
        buf.resize(want, 0);
        let n = match read_kernel(&src, &mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return -e,
            Err(_) => break,
        };
        match write_kernel(&dst, &buf[..n], None) {
            Ok(w) => done += w,
            Err(e) if done == 0 => return -e,
            Err(_) => break,
        }
    }
    if let Some(o) = offset {
        let end = (o + done as u64).to_le_bytes();
        if uaccess::copy_to_user(kvmm::vmm(), space, off_ptr, &end).is_err() {
            return -EFAULT;
        }
    }
    done as i64
}

pub fn ioctl(a: Args) -> i64 {
    match file(a.a[0]) {
        // Not a terminal: the host's streams may be pipes, and no terminal
        // state is forwarded (TCGETS, TIOCGWINSZ and the rest: ENOTTY).
        Ok(_) => -ENOTTY,
        Err(e) => e,
    }
}
