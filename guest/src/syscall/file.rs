//! File system calls on the console descriptors and the (read-only)
//! initramfs.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use super::{
    Args, EBADF, EFAULT, EINVAL, EISDIR, ENAMETOOLONG, ENOENT, ENOTDIR, ENOTTY, ERANGE, EROFS,
    ESPIPE,
};
use crate::console::{write_program_output, Stream};
use crate::fs::cpio::{S_IFDIR, S_IFMT};
use crate::fs::fd::{FileRef, OpenFile};
use crate::fs::initramfs;
use crate::kvmm;
use crate::mm::uaccess::{self, StringError};
use crate::mm::vmm::SpaceId;

const AT_FDCWD: u64 = (-100i64) as u64;
const AT_EMPTY_PATH: u64 = 0x1000;
const O_ACCMODE: u64 = 3;
const O_CREAT: u64 = 0o100;
const O_DIRECTORY: u64 = 0o200000;
const O_CLOEXEC: u64 = 0o2000000;
const PATH_MAX: usize = 4096;
/// Most bytes one read or write moves (Linux's `MAX_RW_COUNT` is ~2 GiB;
/// a kernel buffer of this size is copied at a time).
const CHUNK: usize = 64 * 1024;
/// Most `iovec`s in one `readv`/`writev` (`UIO_MAXIOV`).
const IOV_MAX: u64 = 1024;

fn space() -> Option<SpaceId> {
    crate::proc::task::current_space()
}

fn file(fd: u64) -> Result<FileRef, i64> {
    super::fd::get(fd)
}

/// Write `len` bytes at user `buf` to `fd`.
fn write_to(fd: u64, buf: u64, len: u64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some((pipe, write_end, nonblock)) = super::fd::as_pipe(&f) {
        if !write_end {
            return -EBADF;
        }
        return super::fd::write_pipe(&pipe, nonblock, space, buf, len);
    }
    let stream = match &*f.lock() {
        OpenFile::Console(1) => Stream::Out,
        OpenFile::Console(2) => Stream::Err,
        OpenFile::Console(_) => return -EBADF,
        OpenFile::Null { .. } => return len.min(i64::MAX as u64) as i64,
        _ => return -EBADF,
    };
    let len = len.min(i64::MAX as u64) as usize;
    let mut done = 0usize;
    let mut chunk = vec![0u8; len.min(CHUNK)];
    while done < len {
        let n = (len - done).min(CHUNK);
        if uaccess::copy_from_user(kvmm::vmm(), space, buf + done as u64, &mut chunk[..n]).is_err()
        {
            return if done > 0 { done as i64 } else { -EFAULT };
        }
        write_program_output(stream, &chunk[..n]);
        done += n;
    }
    done as i64
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
        if write_end || at.is_some() {
            return if at.is_some() { -ESPIPE } else { -EBADF };
        }
        return super::fd::read_pipe(&pipe, nonblock, space, buf, len);
    }
    let mut f = f.lock();
    match &mut *f {
        OpenFile::Pipe { .. } => -EBADF,
        // The host's standard input (empty where the host offers none).
        OpenFile::Console(0) => {
            let data = crate::arch::x86_64::stdin::read(len.min(i64::MAX as u64) as usize);
            match uaccess::copy_to_user(kvmm::vmm(), space, buf, &data) {
                Ok(()) => data.len() as i64,
                Err(_) => -EFAULT,
            }
        }
        OpenFile::Console(_) => -EBADF,
        OpenFile::Null { zero: false } => 0,
        OpenFile::Null { zero: true } => {
            let n = len.min(CHUNK as u64) as usize;
            match uaccess::copy_to_user(kvmm::vmm(), space, buf, &vec![0u8; n]) {
                Ok(()) => n as i64,
                Err(_) => -EFAULT,
            }
        }
        OpenFile::Dir { .. } => -EISDIR,
        OpenFile::File { data, pos, .. } => {
            let start = at.unwrap_or(*pos);
            let Some(rest) = usize::try_from(start).ok().and_then(|s| data.get(s..)) else {
                return 0;
            };
            let n = rest.len().min(len.min(i64::MAX as u64) as usize);
            if uaccess::copy_to_user(kvmm::vmm(), space, buf, &rest[..n]).is_err() {
                return -EFAULT;
            }
            if at.is_none() {
                *pos = start + n as u64;
            }
            n as i64
        }
    }
}

pub fn write(a: Args) -> i64 {
    write_to(a.a[0], a.a[1], a.a[2])
}

pub fn read(a: Args) -> i64 {
    read_from(a.a[0], a.a[1], a.a[2], None)
}

pub fn pread64(a: Args) -> i64 {
    let off = a.a[3];
    if (off as i64) < 0 {
        return -EINVAL;
    }
    if let Ok(f) = file(a.a[0]) {
        if matches!(&*f.lock(), OpenFile::Console(_) | OpenFile::Pipe { .. }) {
            return -ESPIPE;
        }
    }
    read_from(a.a[0], a.a[1], a.a[2], Some(off))
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
    vectored(a, |base, len| write_to(a.a[0], base, len))
}

pub fn readv(a: Args) -> i64 {
    vectored(a, |base, len| read_from(a.a[0], base, len, None))
}

/// A path argument, resolved against the root (there is no other
/// directory yet: the working directory is `/`).
fn path_arg(space: SpaceId, dirfd: u64, addr: u64) -> Result<String, i64> {
    let raw = uaccess::read_cstr(kvmm::vmm(), space, addr, PATH_MAX).map_err(|e| match e {
        StringError::Fault => -EFAULT,
        StringError::TooLong => -ENAMETOOLONG,
    })?;
    let path = String::from_utf8(raw).map_err(|_| -ENOENT)?;
    if path.starts_with('/') {
        return Ok(normalize("/", &path));
    }
    let base = if dirfd == AT_FDCWD {
        crate::proc::process::with_current(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"))
    } else {
        // Relative to a directory descriptor: only initramfs directories.
        let f = file(dirfd)?;
        let dir = match &*f.lock() {
            OpenFile::Dir { path, .. } => alloc::format!("/{path}"),
            _ => return Err(-ENOTDIR),
        };
        dir
    };
    Ok(normalize(&base, &path))
}

/// `path` taken from directory `base` (absolute), as an absolute path
/// without `.`, `..` or empty components (`..` of `/` is `/`).
pub fn normalize(base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let full = if path.starts_with('/') {
        [path, ""]
    } else {
        [base, path]
    };
    for comp in full.iter().flat_map(|p| p.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    out
}

/// `chdir(path)`: a directory of the initramfs becomes the working
/// directory.
pub fn chdir(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let p = match path_arg(space, AT_FDCWD, a.a[0]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    set_cwd(p)
}

/// `fchdir(fd)`: the directory `fd` is open on.
pub fn fchdir(a: Args) -> i64 {
    let f = match file(a.a[0]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let dir = match &*f.lock() {
        OpenFile::Dir { path, .. } => alloc::format!("/{path}"),
        _ => return -ENOTDIR,
    };
    set_cwd(normalize("/", &dir))
}

fn set_cwd(path: String) -> i64 {
    let Some(archive) = initramfs::archive() else {
        return -ENOENT;
    };
    let rel = path.trim_start_matches('/');
    if !archive.is_dir(rel) {
        return if archive.find(rel).is_some() {
            -ENOTDIR
        } else {
            -ENOENT
        };
    }
    crate::proc::process::with_current(|p| p.cwd = path);
    0
}

/// `umask(mask)`: the old mask.
pub fn umask(a: Args) -> i64 {
    let new = (a.a[0] & 0o777) as u32;
    crate::proc::process::with_current(|p| core::mem::replace(&mut p.umask, new))
        .map_or(0o022, i64::from)
}

fn open_path(path: &str, flags: u64) -> i64 {
    if let Some(zero) = match path {
        "/dev/null" => Some(false),
        "/dev/zero" => Some(true),
        _ => None,
    } {
        let file = Arc::new(Mutex::new(OpenFile::Null { zero }));
        return super::fd::insert(file, flags & O_CLOEXEC != 0);
    }
    if flags & O_CREAT != 0 || flags & O_ACCMODE != 0 {
        return -EROFS;
    }
    let Some(archive) = initramfs::archive() else {
        return -ENOENT;
    };
    let norm = path.trim_start_matches('/');
    let opened = if let Some(e) = archive.find(norm).filter(|e| !e.is_dir()) {
        if flags & O_DIRECTORY != 0 {
            return -ENOTDIR;
        }
        OpenFile::File {
            path: String::from(path),
            data: e.data,
            ino: e.ino,
            mode: e.mode,
            pos: 0,
        }
    } else if archive.is_dir(norm) {
        OpenFile::Dir {
            path: String::from(norm),
            ino: archive.find(norm).map_or(1, |e| e.ino),
            mode: S_IFDIR | 0o755,
            pos: 0,
        }
    } else {
        return -ENOENT;
    };
    let file = Arc::new(Mutex::new(opened));
    super::fd::insert(file, flags & O_CLOEXEC != 0)
}

pub fn openat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match path_arg(space, a.a[0], a.a[1]) {
        Ok(p) => open_path(&p, a.a[2]),
        Err(e) => e,
    }
}

pub fn open(a: Args) -> i64 {
    openat(Args {
        a: [AT_FDCWD, a.a[0], a.a[1], a.a[2], 0, 0],
    })
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
    match &mut *f {
        OpenFile::Console(_) | OpenFile::Pipe { .. } => -ESPIPE,
        OpenFile::Null { .. } => 0,
        OpenFile::Dir { pos, .. } if whence == 0 && off == 0 => {
            *pos = 0;
            0
        }
        OpenFile::Dir { .. } => -EINVAL,
        OpenFile::File { data, pos, .. } => {
            let base = match whence {
                0 => 0i64,
                1 => *pos as i64,
                2 => data.len() as i64,
                _ => return -EINVAL,
            };
            match base.checked_add(off as i64) {
                Some(n) if n >= 0 => {
                    *pos = n as u64;
                    n
                }
                _ => -EINVAL,
            }
        }
    }
}

/// `struct stat` (144 bytes) for an open file.
fn stat_bytes(f: &OpenFile) -> [u8; 144] {
    let (ino, mode, size, rdev) = match f {
        OpenFile::Console(_) => (3u64, 0o020_620u32, 0u64, 0x8800u64),
        OpenFile::Pipe { end, .. } => (end.pipe.id as u64, 0o010_600u32, 0, 0),
        OpenFile::Null { zero } => (4, 0o020_666, 0, if *zero { 0x105 } else { 0x103 }),
        OpenFile::File {
            ino, mode, data, ..
        } => (u64::from(*ino), *mode, data.len() as u64, 0),
        OpenFile::Dir { ino, mode, .. } => (u64::from(*ino), *mode, 0, 0),
    };
    let mut b = [0u8; 144];
    let put = |b: &mut [u8; 144], off: usize, v: u64, n: usize| {
        b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
    };
    put(&mut b, 0, 1, 8); // st_dev
    put(&mut b, 8, ino, 8);
    put(&mut b, 16, 1, 8); // st_nlink
    put(&mut b, 24, u64::from(mode), 4);
    put(&mut b, 40, rdev, 8);
    put(&mut b, 48, size, 8);
    put(&mut b, 56, 4096, 8); // st_blksize
    put(&mut b, 64, size.div_ceil(512), 8); // st_blocks
    b
}

fn put_stat(space: SpaceId, f: &OpenFile, addr: u64) -> i64 {
    match uaccess::copy_to_user(kvmm::vmm(), space, addr, &stat_bytes(f)) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
}

pub fn fstat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match file(a.a[0]) {
        Ok(f) => put_stat(space, &f.lock(), a.a[1]),
        Err(e) => e,
    }
}

fn stat_path(space: SpaceId, dirfd: u64, path: u64, out: u64, flags: u64) -> i64 {
    let p = match path_arg(space, dirfd, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return match file(dirfd) {
            Ok(f) => put_stat(space, &f.lock(), out),
            Err(e) => e,
        };
    }
    let fd = open_path(&p, 0);
    if fd < 0 {
        return fd;
    }
    let r = match file(fd as u64) {
        Ok(f) => put_stat(space, &f.lock(), out),
        Err(e) => e,
    };
    super::fd::close(fd as u64);
    r
}

pub fn stat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    stat_path(space, AT_FDCWD, a.a[0], a.a[1], 0)
}

pub fn newfstatat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    stat_path(space, a.a[0], a.a[1], a.a[2], a.a[3])
}

pub fn access(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let p = match path_arg(space, AT_FDCWD, a.a[0]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let fd = open_path(&p, 0);
    if fd < 0 {
        return fd;
    }
    super::fd::close(fd as u64);
    if a.a[1] & 2 != 0 {
        -EROFS
    } else {
        0
    }
}

pub fn ioctl(a: Args) -> i64 {
    match file(a.a[0]) {
        // Not a terminal: the host's streams may be pipes, and no terminal
        // state is forwarded (TCGETS, TIOCGWINSZ and the rest: ENOTTY).
        Ok(_) => -ENOTTY,
        Err(e) => e,
    }
}

pub fn getcwd(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let cwd =
        crate::proc::process::with_current(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"));
    let mut bytes = cwd.into_bytes();
    bytes.push(0);
    if (a.a[1] as usize) < bytes.len() {
        return -ERANGE;
    }
    match uaccess::copy_to_user(kvmm::vmm(), space, a.a[0], &bytes) {
        Ok(()) => bytes.len() as i64,
        Err(_) => -EFAULT,
    }
}

pub fn readlinkat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let p = match path_arg(space, a.a[0], a.a[1]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let target: Vec<u8> = if p == "/proc/self/exe" {
        match crate::proc::process::with_current(|pr| pr.name.clone()) {
            Some(n) => n.into_bytes(),
            None => return -ENOENT,
        }
    } else {
        match initramfs::archive().and_then(|ar| ar.find(&p)) {
            Some(e) if e.is_symlink() => e.data.to_vec(),
            Some(_) => return -EINVAL,
            None => return -ENOENT,
        }
    };
    let n = target.len().min(a.a[3] as usize);
    match uaccess::copy_to_user(kvmm::vmm(), space, a.a[2], &target[..n]) {
        Ok(()) => n as i64,
        Err(_) => -EFAULT,
    }
}

pub fn readlink(a: Args) -> i64 {
    readlinkat(Args {
        a: [AT_FDCWD, a.a[0], a.a[1], a.a[2], 0, 0],
    })
}

pub fn getdents64(a: Args) -> i64 {
    let [fd, buf, len, ..] = a.a;
    let Some(space) = space() else { return -EBADF };
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let mut f = f.lock();
    let OpenFile::Dir { path, pos, .. } = &mut *f else {
        return -ENOTDIR;
    };
    let Some(archive) = initramfs::archive() else {
        return 0;
    };
    let entries = archive.read_dir(path);
    let mut out = Vec::new();
    let mut next = *pos;
    for (i, e) in entries.iter().enumerate().skip(*pos) {
        let name = e.name.as_bytes();
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > len as usize {
            break;
        }
        let start = out.len();
        out.resize(start + reclen, 0);
        let rec = &mut out[start..];
        rec[..8].copy_from_slice(&u64::from(e.ino).to_le_bytes());
        rec[8..16].copy_from_slice(&((i + 1) as u64).to_le_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        rec[18] = if e.mode & S_IFMT == S_IFDIR { 4 } else { 8 };
        rec[19..19 + name.len()].copy_from_slice(name);
        next = i + 1;
    }
    if out.is_empty() && next < entries.len() {
        return -EINVAL;
    }
    if uaccess::copy_to_user(kvmm::vmm(), space, buf, &out).is_err() {
        return -EFAULT;
    }
    *pos = next;
    out.len() as i64
}
