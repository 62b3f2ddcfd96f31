//! System calls on names: `openat`, the `stat` family, `access`,
//! `readlink`, `getdents64`, the working directory and `umask`, and the
//! calls that change the namespace (`mkdir`, `unlink`, `rename`, `link`,
//! `symlink`, `chmod`, `truncate`) and `statfs`. Paths go through
//! [`crate::fs::vfs`]: the initramfs at `/` (read-only), `/tmp`, `/proc`,
//! `/dev`.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use super::file::{file, space};
use super::{
    Args, EBADF, EBUSY, EEXIST, EFAULT, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR,
    EOPNOTSUPP, EPERM, ERANGE, EROFS,
};
use crate::fs::fd::{OpenFile, OpenNode};
use crate::fs::vfs::{self, Meta, NodeRef, Resolved, ST_RDONLY};
use crate::kvmm;
use crate::mm::uaccess::{self, StringError};
use crate::mm::vmm::SpaceId;

/// `AT_FDCWD` as the 32-bit `int` it is (the upper half of a descriptor
/// argument is ignored, as Linux takes `int dfd`).
pub const AT_FDCWD: u64 = 0xffff_ff9c;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
const O_ACCMODE: u64 = 3;
const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_NONBLOCK: u64 = 0o4000;
const O_DIRECTORY: u64 = 0o200000;
const O_NOFOLLOW: u64 = 0o400000;
const O_CLOEXEC: u64 = 0o2000000;
const O_PATH: u64 = 0o10000000;
const O_TMPFILE: u64 = 0o20000000;
const RENAME_NOREPLACE: u64 = 1;
const PATH_MAX: usize = 4096;

/// `Err(errno)` of the VFS as a system-call result.
fn neg<T>(r: Result<T, i64>) -> Result<T, i64> {
    r.map_err(|e| -e)
}

/// The working directory of the running process.
fn cwd() -> String {
    crate::proc::process::with_current(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"))
}

/// A path argument made absolute (against `dirfd` or the working
/// directory) and normalised; `Ok("")` for an empty path (`AT_EMPTY_PATH`).
fn path_arg(space: SpaceId, dirfd: u64, addr: u64) -> Result<String, i64> {
    let dirfd = dirfd & 0xffff_ffff;
    let raw = uaccess::read_cstr(kvmm::vmm(), space, addr, PATH_MAX).map_err(|e| match e {
        StringError::Fault => -EFAULT,
        StringError::TooLong => -ENAMETOOLONG,
    })?;
    let path = String::from_utf8(raw).map_err(|_| -ENOENT)?;
    if path.is_empty() {
        return Ok(path);
    }
    if path.starts_with('/') {
        return Ok(vfs::normalize("/", &path));
    }
    let base = if dirfd == AT_FDCWD {
        cwd()
    } else {
        let f = file(dirfd)?;
        let dir = match &*f.lock() {
            OpenFile::Node(n) if n.node.meta().is_dir() => n.path.clone(),
            _ => return Err(-ENOTDIR),
        };
        dir
    };
    Ok(vfs::normalize(&base, &path))
}

/// A path that must name something (`ENOENT` for an empty one).
fn named(space: SpaceId, dirfd: u64, addr: u64) -> Result<String, i64> {
    let p = path_arg(space, dirfd, addr)?;
    if p.is_empty() {
        return Err(-ENOENT);
    }
    Ok(p)
}

/// Whether the file system of `node` is mounted read-only.
fn read_only(node: &NodeRef) -> bool {
    node.fs_stats().flags & ST_RDONLY != 0
}

/// Open `path` (absolute) with `open` flags and creation mode.
pub fn open_path(path: &str, flags: u64, mode: u64) -> Result<OpenNode, i64> {
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(-EOPNOTSUPP);
    }
    let follow = flags & O_NOFOLLOW == 0;
    let found = match vfs::resolve(path, follow) {
        Ok(_) if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL => return Err(-EEXIST),
        Ok(r) => r,
        Err(ENOENT) if flags & O_CREAT != 0 => create(path, mode)?,
        Err(e) => return Err(-e),
    };
    let meta = found.node.meta();
    if meta.is_symlink() && flags & O_PATH == 0 {
        return Err(-ELOOP);
    }
    let access = flags & O_ACCMODE;
    if meta.is_dir() && access != 0 {
        return Err(-EISDIR);
    }
    if !meta.is_dir() && flags & O_DIRECTORY != 0 {
        return Err(-ENOTDIR);
    }
    if access != 0 && read_only(&found.node) {
        return Err(-EROFS);
    }
    if flags & O_TRUNC != 0 && access != 0 && meta.is_file() {
        neg(found.node.truncate(0))?;
    }
    Ok(OpenNode {
        node: found.node,
        path: found.path,
        pos: 0,
        flags: flags & (O_ACCMODE | O_APPEND | O_NONBLOCK),
    })
}

/// Make the regular file `path` (absolute) for `O_CREAT`.
fn create(path: &str, mode: u64) -> Result<Resolved, i64> {
    let (dir, name) = neg(vfs::resolve_parent(path))?;
    let umask = crate::proc::process::with_current(|p| p.umask).unwrap_or(0o022);
    let node = neg(dir.node.create(&name, mode as u32 & 0o7777 & !umask))?;
    Ok(Resolved {
        node,
        path: vfs::join(&dir.path, &name),
    })
}

pub fn openat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let [dirfd, path, flags, mode, ..] = a.a;
    let p = match named(space, dirfd, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    match open_path(&p, flags, mode) {
        Ok(n) => {
            let f = Arc::new(Mutex::new(OpenFile::Node(n)));
            super::fd::insert(f, flags & O_CLOEXEC != 0)
        }
        Err(e) => e,
    }
}

pub fn open(a: Args) -> i64 {
    openat(Args {
        a: [AT_FDCWD, a.a[0], a.a[1], a.a[2], 0, 0],
    })
}

/// `creat(path, mode)`: `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
pub fn creat(a: Args) -> i64 {
    openat(Args {
        a: [AT_FDCWD, a.a[0], O_CREAT | 1 | O_TRUNC, a.a[1], 0, 0],
    })
}

/// `struct stat` (144 bytes) of `m`.
fn stat_bytes(m: &Meta) -> [u8; 144] {
    let mut b = [0u8; 144];
    let mut put = |off: usize, v: u64, n: usize| {
        b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
    };
    put(0, m.dev, 8);
    put(8, m.ino, 8);
    put(16, u64::from(m.nlink), 8);
    put(24, u64::from(m.mode), 4);
    put(40, m.rdev, 8);
    put(48, m.size, 8);
    put(56, 4096, 8); // st_blksize
    put(64, m.size.div_ceil(512), 8); // st_blocks
    for off in [72, 88, 104] {
        put(off, m.mtime as u64, 8); // atime, mtime, ctime
    }
    b
}

/// The metadata of an open descriptor.
fn fd_meta(fd: u64) -> Result<Meta, i64> {
    let f = file(fd)?;
    let f = f.lock();
    Ok(match &*f {
        OpenFile::Console(_) => Meta {
            dev: 5,
            ino: 3,
            mode: 0o020_620,
            nlink: 1,
            rdev: 0x8800,
            ..Meta::default()
        },
        OpenFile::Pipe { end, .. } => Meta {
            dev: 6,
            ino: end.pipe.id as u64,
            mode: 0o010_600,
            nlink: 1,
            ..Meta::default()
        },
        OpenFile::Node(n) => n.node.meta(),
    })
}

fn put(space: SpaceId, addr: u64, bytes: &[u8]) -> i64 {
    match uaccess::copy_to_user(kvmm::vmm(), space, addr, bytes) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
}

pub fn fstat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match fd_meta(a.a[0]) {
        Ok(m) => put(space, a.a[1], &stat_bytes(&m)),
        Err(e) => e,
    }
}

/// The metadata `newfstatat(dirfd, path, _, flags)` reports.
fn meta_at(space: SpaceId, dirfd: u64, path: u64, flags: u64) -> Result<Meta, i64> {
    let dirfd = dirfd & 0xffff_ffff;
    let p = path_arg(space, dirfd, path)?;
    if p.is_empty() {
        return if flags & AT_EMPTY_PATH != 0 {
            if dirfd == AT_FDCWD {
                neg(vfs::resolve(&cwd(), true)).map(|r| r.node.meta())
            } else {
                fd_meta(dirfd)
            }
        } else {
            Err(-ENOENT)
        };
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    neg(vfs::resolve(&p, follow)).map(|r| r.node.meta())
}

fn stat_at(dirfd: u64, path: u64, out: u64, flags: u64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match meta_at(space, dirfd, path, flags) {
        Ok(m) => put(space, out, &stat_bytes(&m)),
        Err(e) => e,
    }
}

pub fn stat(a: Args) -> i64 {
    stat_at(AT_FDCWD, a.a[0], a.a[1], 0)
}

pub fn lstat(a: Args) -> i64 {
    stat_at(AT_FDCWD, a.a[0], a.a[1], AT_SYMLINK_NOFOLLOW)
}

pub fn newfstatat(a: Args) -> i64 {
    stat_at(a.a[0], a.a[1], a.a[2], a.a[3])
}

/// `faccessat2(dirfd, path, mode, flags)`: everything runs as root, so
/// only existence, `W_OK` on a read-only file system and `X_OK` on a file
/// without execute bits can fail.
fn access_at(dirfd: u64, path: u64, mode: u64, flags: u64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    if mode & !7 != 0 {
        return -EINVAL;
    }
    let p = match named(space, dirfd, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let r = match vfs::resolve(&p, flags & AT_SYMLINK_NOFOLLOW == 0) {
        Ok(r) => r,
        Err(e) => return -e,
    };
    let m = r.node.meta();
    if mode & 2 != 0 && read_only(&r.node) {
        return -EROFS;
    }
    if mode & 1 != 0 && !m.is_dir() && m.mode & 0o111 == 0 {
        return -super::EACCES;
    }
    0
}

pub fn access(a: Args) -> i64 {
    access_at(AT_FDCWD, a.a[0], a.a[1], 0)
}

pub fn faccessat(a: Args) -> i64 {
    access_at(a.a[0], a.a[1], a.a[2], 0)
}

pub fn faccessat2(a: Args) -> i64 {
    access_at(a.a[0], a.a[1], a.a[2], a.a[3])
}

pub fn readlinkat(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let p = match named(space, a.a[0], a.a[1]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if (a.a[3] as i64) <= 0 {
        return -EINVAL;
    }
    let target = match vfs::resolve(&p, false).and_then(|r| r.node.readlink()) {
        Ok(t) => t.into_bytes(),
        Err(e) => return -e,
    };
    let n = target.len().min(a.a[3] as usize);
    match put(space, a.a[2], &target[..n]) {
        0 => n as i64,
        e => e,
    }
}

pub fn readlink(a: Args) -> i64 {
    readlinkat(Args {
        a: [AT_FDCWD, a.a[0], a.a[1], a.a[2], 0, 0],
    })
}

/// `chdir(path)`: a directory becomes the working directory.
pub fn chdir(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match named(space, AT_FDCWD, a.a[0]) {
        Ok(p) => set_cwd(&p),
        Err(e) => e,
    }
}

/// `fchdir(fd)`: the directory `fd` is open on.
pub fn fchdir(a: Args) -> i64 {
    let f = match file(a.a[0]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let dir = match &*f.lock() {
        OpenFile::Node(n) if n.node.meta().is_dir() => n.path.clone(),
        _ => return -ENOTDIR,
    };
    set_cwd(&dir)
}

fn set_cwd(path: &str) -> i64 {
    match vfs::resolve(path, true) {
        Ok(r) if r.node.meta().is_dir() => {
            crate::proc::process::with_current(|p| p.cwd = r.path);
            0
        }
        Ok(_) => -ENOTDIR,
        Err(e) => -e,
    }
}

/// `umask(mask)`: the old mask.
pub fn umask(a: Args) -> i64 {
    let new = (a.a[0] & 0o777) as u32;
    crate::proc::process::with_current(|p| core::mem::replace(&mut p.umask, new))
        .map_or(0o022, i64::from)
}

pub fn getcwd(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let mut bytes = cwd().into_bytes();
    bytes.push(0);
    if (a.a[1] as usize) < bytes.len() {
        return -ERANGE;
    }
    match put(space, a.a[0], &bytes) {
        0 => bytes.len() as i64,
        e => e,
    }
}

/// `getdents64(fd, buf, len)`: `.`, `..`, the directory's entries and the
/// mount points in it, as `struct linux_dirent64` records.
pub fn getdents64(a: Args) -> i64 {
    let [fd, buf, len, ..] = a.a;
    let Some(space) = space() else { return -EBADF };
    let f = match file(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let mut f = f.lock();
    let OpenFile::Node(n) = &mut *f else {
        return -ENOTDIR;
    };
    let entries = match listing(n) {
        Ok(e) => e,
        Err(e) => return -e,
    };
    let mut out = Vec::new();
    let mut next = n.pos;
    let start = usize::try_from(n.pos).unwrap_or(usize::MAX);
    for (i, (name, ino, kind)) in entries.iter().enumerate().skip(start) {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > len as usize {
            break;
        }
        let at = out.len();
        out.resize(at + reclen, 0);
        let rec = &mut out[at..];
        rec[..8].copy_from_slice(&ino.to_le_bytes());
        rec[8..16].copy_from_slice(&((i + 1) as u64).to_le_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        rec[18] = (kind >> 12) as u8; // DT_* is S_IFMT >> 12
        rec[19..19 + name.len()].copy_from_slice(name.as_bytes());
        next = (i + 1) as u64;
    }
    if out.is_empty() && (next as usize) < entries.len() {
        return -EINVAL;
    }
    match put(space, buf, &out) {
        0 => {
            n.pos = next;
            out.len() as i64
        }
        e => e,
    }
}

/// Every entry `getdents64` lists for directory `n`: (name, ino, type).
fn listing(n: &OpenNode) -> Result<Vec<(String, u64, u32)>, i64> {
    let meta = n.node.meta();
    let mut v = Vec::new();
    v.push((String::from("."), meta.ino, vfs::S_IFDIR));
    v.push((String::from(".."), meta.ino, vfs::S_IFDIR));
    for e in n.node.read_dir()? {
        v.push((e.name, e.ino, e.kind));
    }
    for m in vfs::mount_points_in(&n.path) {
        if !v.iter().any(|(name, ..)| *name == m) {
            let ino = vfs::resolve(&vfs::join(&n.path, &m), false).map_or(1, |r| r.node.meta().ino);
            v.push((m, ino, vfs::S_IFDIR));
        }
    }
    Ok(v)
}

/// `mkdirat(dirfd, path, mode)`.
fn mkdir_at(dirfd: u64, path: u64, mode: u64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let p = match named(space, dirfd, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if vfs::resolve(&p, false).is_ok() {
        return -EEXIST;
    }
    let umask = crate::proc::process::with_current(|p| p.umask).unwrap_or(0o022);
    match vfs::resolve_parent(&p) {
        Ok((dir, name)) => dir
            .node
            .mkdir(&name, mode as u32 & 0o7777 & !umask)
            .map_or_else(|e| -e, |()| 0),
        Err(e) => -e,
    }
}

pub fn mkdir(a: Args) -> i64 {
    mkdir_at(AT_FDCWD, a.a[0], a.a[1])
}

pub fn mkdirat(a: Args) -> i64 {
    mkdir_at(a.a[0], a.a[1], a.a[2])
}

/// `unlinkat(dirfd, path, flags)`: a file, or with `AT_REMOVEDIR` an empty
/// directory.
fn unlink_at(dirfd: u64, path: u64, flags: u64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    if flags & !AT_REMOVEDIR != 0 {
        return -EINVAL;
    }
    let p = match named(space, dirfd, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if vfs::is_mount_point(&p) {
        return -EBUSY;
    }
    match vfs::resolve_parent(&p) {
        Ok((dir, name)) => dir
            .node
            .unlink(&name, flags & AT_REMOVEDIR != 0)
            .map_or_else(|e| -e, |()| 0),
        Err(e) => -e,
    }
}

pub fn unlink(a: Args) -> i64 {
    unlink_at(AT_FDCWD, a.a[0], 0)
}

pub fn rmdir(a: Args) -> i64 {
    unlink_at(AT_FDCWD, a.a[0], AT_REMOVEDIR)
}

pub fn unlinkat(a: Args) -> i64 {
    unlink_at(a.a[0], a.a[1], a.a[2])
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`.
fn rename_at(a: [u64; 5]) -> i64 {
    let [olddir, old, newdir, new, flags] = a;
    let Some(space) = space() else { return -EBADF };
    if flags & !RENAME_NOREPLACE != 0 {
        return -EINVAL;
    }
    let (from, to) = match (named(space, olddir, old), named(space, newdir, new)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if vfs::is_mount_point(&from) || vfs::is_mount_point(&to) {
        return -EBUSY;
    }
    // A directory cannot move inside itself.
    if to.starts_with(&from) && to.as_bytes().get(from.len()) == Some(&b'/') {
        return -EINVAL;
    }
    if flags & RENAME_NOREPLACE != 0 && vfs::resolve(&to, false).is_ok() {
        return -EEXIST;
    }
    let parents = vfs::resolve_parent(&from).and_then(|f| Ok((f, vfs::resolve_parent(&to)?)));
    match parents {
        Ok(((src, old_name), (dst, new_name))) => {
            if let Err(e) = vfs::same_fs(&src.node, &dst.node) {
                return -e;
            }
            src.node
                .rename(&old_name, &dst.node, &new_name)
                .map_or_else(|e| -e, |()| 0)
        }
        Err(e) => -e,
    }
}

pub fn rename(a: Args) -> i64 {
    rename_at([AT_FDCWD, a.a[0], AT_FDCWD, a.a[1], 0])
}

pub fn renameat(a: Args) -> i64 {
    rename_at([a.a[0], a.a[1], a.a[2], a.a[3], 0])
}

pub fn renameat2(a: Args) -> i64 {
    rename_at([a.a[0], a.a[1], a.a[2], a.a[3], a.a[4]])
}

/// `symlinkat(target, newdirfd, linkpath)`.
fn symlink_at(target: u64, dirfd: u64, path: u64) -> i64 {
    let Some(space) = space() else { return -EBADF };
    let t = match uaccess::read_cstr(kvmm::vmm(), space, target, PATH_MAX) {
        Ok(t) => t,
        Err(StringError::Fault) => return -EFAULT,
        Err(StringError::TooLong) => return -ENAMETOOLONG,
    };
    let Ok(t) = String::from_utf8(t) else {
        return -EINVAL;
    };
    if t.is_empty() {
        return -ENOENT;
    }
    let p = match named(space, dirfd, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if vfs::resolve(&p, false).is_ok() {
        return -EEXIST;
    }
    match vfs::resolve_parent(&p) {
        Ok((dir, name)) => dir.node.symlink(&name, &t).map_or_else(|e| -e, |()| 0),
        Err(e) => -e,
    }
}

pub fn symlink(a: Args) -> i64 {
    symlink_at(a.a[0], AT_FDCWD, a.a[1])
}

pub fn symlinkat(a: Args) -> i64 {
    symlink_at(a.a[0], a.a[1], a.a[2])
}

/// `linkat(olddirfd, old, newdirfd, new, flags)`: a hard link.
fn link_at(a: [u64; 5]) -> i64 {
    let [olddir, old, newdir, new, flags] = a;
    let Some(space) = space() else { return -EBADF };
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return -EINVAL;
    }
    let (from, to) = match (named(space, olddir, old), named(space, newdir, new)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let src = match vfs::resolve(&from, flags & AT_SYMLINK_FOLLOW != 0) {
        Ok(r) => r,
        Err(e) => return -e,
    };
    if src.node.meta().is_dir() {
        return -EPERM;
    }
    if vfs::resolve(&to, false).is_ok() {
        return -EEXIST;
    }
    match vfs::resolve_parent(&to) {
        Ok((dir, name)) => match vfs::same_fs(&src.node, &dir.node) {
            Ok(()) => dir.node.link(&name, &src.node).map_or_else(|e| -e, |()| 0),
            Err(e) => -e,
        },
        Err(e) => -e,
    }
}

pub fn link(a: Args) -> i64 {
    link_at([AT_FDCWD, a.a[0], AT_FDCWD, a.a[1], 0])
}

pub fn linkat(a: Args) -> i64 {
    link_at([a.a[0], a.a[1], a.a[2], a.a[3], a.a[4]])
}

/// The node a path-or-descriptor call works on.
fn node_at(dirfd: u64, path: u64, flags: u64) -> Result<NodeRef, i64> {
    let Some(space) = space() else {
        return Err(-EBADF);
    };
    let p = path_arg(space, dirfd, path)?;
    if p.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(-ENOENT);
        }
        return node_of(dirfd);
    }
    neg(vfs::resolve(&p, flags & AT_SYMLINK_NOFOLLOW == 0)).map(|r| r.node)
}

/// The node open at `fd` (`EBADF` for consoles and pipes here).
fn node_of(fd: u64) -> Result<NodeRef, i64> {
    let f = file(fd)?;
    let f = f.lock();
    match &*f {
        OpenFile::Node(n) => Ok(n.node.clone()),
        _ => Err(-EINVAL),
    }
}

fn chmod_node(node: Result<NodeRef, i64>, mode: u64) -> i64 {
    match node {
        Ok(n) if read_only(&n) => -EROFS,
        Ok(n) => n.chmod(mode as u32).map_or_else(|e| -e, |()| 0),
        Err(e) => e,
    }
}

pub fn chmod(a: Args) -> i64 {
    chmod_node(node_at(AT_FDCWD, a.a[0], 0), a.a[1])
}

pub fn fchmod(a: Args) -> i64 {
    chmod_node(node_of(a.a[0]), a.a[1])
}

pub fn fchmodat(a: Args) -> i64 {
    chmod_node(node_at(a.a[0], a.a[1], 0), a.a[2])
}

/// `chown` and friends: only root exists, so giving a file to root (or
/// leaving an id unchanged, -1) succeeds and anything else is `EPERM`.
fn chown_node(node: Result<NodeRef, i64>, uid: u64, gid: u64) -> i64 {
    let keeps = |id: u64| id as u32 == 0 || id as u32 == u32::MAX;
    match node {
        Ok(_) if keeps(uid) && keeps(gid) => 0,
        Ok(_) => -EPERM,
        Err(e) => e,
    }
}

pub fn chown(a: Args) -> i64 {
    chown_node(node_at(AT_FDCWD, a.a[0], 0), a.a[1], a.a[2])
}

pub fn lchown(a: Args) -> i64 {
    chown_node(
        node_at(AT_FDCWD, a.a[0], AT_SYMLINK_NOFOLLOW),
        a.a[1],
        a.a[2],
    )
}

pub fn fchown(a: Args) -> i64 {
    chown_node(node_of(a.a[0]), a.a[1], a.a[2])
}

pub fn fchownat(a: Args) -> i64 {
    chown_node(node_at(a.a[0], a.a[1], a.a[4]), a.a[2], a.a[3])
}

/// `utimensat(dirfd, path, times, flags)`: no file system here keeps
/// times, so the call checks the file and changes nothing.
pub fn utimensat(a: Args) -> i64 {
    let [dirfd, path, _, flags, ..] = a.a;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return -EINVAL;
    }
    // A null path means `dirfd` itself (futimens).
    let node = if path == 0 {
        node_of(dirfd)
    } else {
        node_at(dirfd, path, flags)
    };
    node.map_or_else(|e| e, |_| 0)
}

/// `truncate(path, len)`.
pub fn truncate(a: Args) -> i64 {
    if (a.a[1] as i64) < 0 {
        return -EINVAL;
    }
    match node_at(AT_FDCWD, a.a[0], 0) {
        Ok(n) if n.meta().is_dir() => -EISDIR,
        Ok(n) if read_only(&n) => -EROFS,
        Ok(n) if !n.meta().is_file() => -EINVAL,
        Ok(n) => n.truncate(a.a[1]).map_or_else(|e| -e, |()| 0),
        Err(e) => e,
    }
}

/// `struct statfs` (120 bytes) of the file system holding `node`.
fn statfs_bytes(node: &NodeRef) -> [u8; 120] {
    let s = node.fs_stats();
    let mut b = [0u8; 120];
    let vals = [
        s.magic,
        s.block_size,
        s.blocks,
        s.blocks_free,
        s.blocks_free,
        s.files,
        s.files_free,
        node.meta().dev,
        vfs::NAME_MAX as u64,
        s.block_size,
        s.flags,
    ];
    for (i, v) in vals.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

pub fn statfs(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match node_at(AT_FDCWD, a.a[0], 0) {
        Ok(n) => put(space, a.a[1], &statfs_bytes(&n)),
        Err(e) => e,
    }
}

pub fn fstatfs(a: Args) -> i64 {
    let Some(space) = space() else { return -EBADF };
    match node_of(a.a[0]) {
        Ok(n) => put(space, a.a[1], &statfs_bytes(&n)),
        Err(e) => e,
    }
}
