//! The guest's file namespace: file systems mounted at absolute paths, each
//! a tree of [`Node`]s, and path resolution across them (mount points and
//! symbolic links, `ELOOP` after [`MAX_SYMLINKS`]).
//!
//! What is mounted where is fixed at boot by [`mount_defaults`]: the
//! initramfs at `/` (read-only), a writable in-memory file system at `/tmp`,
//! the process file system at `/proc`, the devices at `/dev`, and the first
//! virtio-blk disk's ext4 file system (read-only) at `/mnt`; or, when the
//! program is on that disk, the disk at `/` and the initramfs at `/initrd`.
//!
//! Errors are positive Linux errno values (`ENOENT`, ...); the system-call
//! layer negates them.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use spin::RwLock;

use crate::errno::{EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EPERM, EROFS, EXDEV};
use crate::mm::vmm::FileBacking;

/// A positive errno.
pub type Errno = i64;
/// A node of some file system.
pub type NodeRef = Arc<dyn Node>;

/// Most symbolic links one resolution follows (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;
/// Longest name of one path component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// File-type bits of a mode (the initramfs reader's, which has them
/// from the archive format), and character devices.
pub use super::cpio::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
pub const S_IFCHR: u32 = 0o020_000;

/// What `stat` reports of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Which file system (`st_dev`).
    pub dev: u64,
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub size: u64,
    /// Device number of a character device.
    pub rdev: u64,
    /// Seconds since the epoch of the last change (0 where unknown).
    pub mtime: i64,
}

impl Meta {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub ino: u64,
    /// Type bits of the entry's mode (`S_IFDIR`, ...).
    pub kind: u32,
}

/// What `statfs` reports of a file system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// `f_type` magic (`TMPFS_MAGIC`, ...).
    pub magic: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub files: u64,
    pub files_free: u64,
    /// `ST_RDONLY` and friends.
    pub flags: u64,
}

/// `ST_RDONLY` of `statfs`' `f_flags`.
pub const ST_RDONLY: u64 = 1;

/// A file, directory, link or device of a mounted file system. Every call
/// has a default that refuses, so a file system implements what it has.
pub trait Node: Send + Sync + Any {
    fn meta(&self) -> Meta;
    /// Read at `offset`; `Ok(0)` at the end.
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(EINVAL)
    }
    /// Write at `offset` (growing the file); how many bytes were written.
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(EROFS)
    }
    /// Cut or extend (with zeroes) to `len` bytes.
    fn truncate(&self, _len: u64) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// The child `name` of a directory.
    fn lookup(&self, _name: &str) -> Result<NodeRef, Errno> {
        Err(ENOTDIR)
    }
    /// Every child of a directory (without `.` and `..`).
    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(ENOTDIR)
    }
    /// Make an empty regular file `name` in this directory.
    fn create(&self, _name: &str, _mode: u32) -> Result<NodeRef, Errno> {
        Err(EROFS)
    }
    /// Make an empty directory `name` in this directory.
    fn mkdir(&self, _name: &str, _mode: u32) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// Make a symbolic link `name` to `target` in this directory.
    fn symlink(&self, _name: &str, _target: &str) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// Put `node` (of the same file system) here as `name` (a hard link).
    fn link(&self, _name: &str, _node: &NodeRef) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// Remove `name` (a directory only when `dir`, which must be empty).
    fn unlink(&self, _name: &str, _dir: bool) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// Move `name` to `to`/`new_name`; `to` is a directory of the same file
    /// system (`EXDEV` otherwise).
    fn rename(&self, _name: &str, _to: &NodeRef, _new_name: &str) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// Change the permission bits.
    fn chmod(&self, _mode: u32) -> Result<(), Errno> {
        Err(EROFS)
    }
    /// The target of a symbolic link.
    fn readlink(&self) -> Result<String, Errno> {
        Err(EINVAL)
    }
    /// The file as the backing of FILE and IMAGE areas (`mmap`, programs).
    fn backing(&self) -> Option<Arc<dyn FileBacking>> {
        None
    }
    /// The file system's figures.
    fn fs_stats(&self) -> FsStats;
    /// For file systems that must see their own node types (`rename`).
    fn as_any(&self) -> &dyn Any;
}

struct Mount {
    /// Absolute, normalised (`/`, `/tmp`).
    path: String,
    root: NodeRef,
}

static MOUNTS: RwLock<Vec<Mount>> = RwLock::new(Vec::new());

/// Mount `root` at absolute path `path` (replacing what was there).
pub fn mount(path: &str, root: NodeRef) {
    let mut m = MOUNTS.write();
    m.retain(|x| x.path != path);
    m.push(Mount {
        path: String::from(path),
        root,
    });
}

/// The mounts, as (path, file-system magic) pairs, in mount order.
pub fn mounts() -> Vec<(String, FsStats)> {
    MOUNTS
        .read()
        .iter()
        .map(|m| (m.path.clone(), m.root.fs_stats()))
        .collect()
}

/// The root of the file system mounted at `path`, if one is.
fn mounted_at(path: &str) -> Option<NodeRef> {
    MOUNTS
        .read()
        .iter()
        .find(|m| m.path == path)
        .map(|m| m.root.clone())
}

/// The mount points directly inside directory `dir` (absolute), as names.
pub fn mount_points_in(dir: &str) -> Vec<String> {
    MOUNTS
        .read()
        .iter()
        .filter_map(|m| {
            let (parent, name) = split_last(&m.path)?;
            (parent == dir && !name.is_empty()).then(|| String::from(name))
        })
        .collect()
}

/// The standard namespace: the initramfs (if any) at `/`, `/tmp`, `/proc`,
/// `/dev`, and the first disk's ext4 file system at `/mnt` when there is a
/// disk. With `root_disk` (the program is on the disk) the disk is at `/`
/// and the initramfs at `/initrd`; without a disk the initramfs stays at
/// `/` (and the program is not found).
#[cfg(target_os = "none")]
pub fn mount_defaults(root_disk: bool) {
    use mobius_shared::initramfs::ARCHIVE_MOUNT_WITH_ROOT_DISK;
    let disk_at = if root_disk { "/" } else { "/mnt" };
    match super::ext4::mount_first_disk(disk_at) {
        Some(disk) if root_disk => {
            mount("/", disk);
            mount(ARCHIVE_MOUNT_WITH_ROOT_DISK, super::initramfs::root());
        }
        Some(disk) => {
            mount("/", super::initramfs::root());
            mount("/mnt", disk);
        }
        None => mount("/", super::initramfs::root()),
    }
    mount("/tmp", super::tmpfs::new_fs());
    mount("/proc", super::procfs::root());
    mount("/dev", super::devfs::root());
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

/// `(parent, last component)` of a normalised absolute path; `None` for `/`.
pub fn split_last(path: &str) -> Option<(&str, &str)> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// A resolved path: the node and its absolute path with every link
/// followed (the last one only when asked).
#[derive(Clone)]
pub struct Resolved {
    pub node: NodeRef,
    pub path: String,
}

/// Resolve the normalised absolute `path`; the last component's symbolic
/// link is followed when `follow`.
pub fn resolve(path: &str, follow: bool) -> Result<Resolved, Errno> {
    let mut path = String::from(path);
    let mut links = 0usize;
    'again: loop {
        let root = mounted_at("/").ok_or(ENOENT)?;
        let mut node = root;
        let mut walked = String::from("/");
        let comps: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        for (i, comp) in comps.iter().enumerate() {
            if comp.len() > NAME_MAX {
                return Err(ENAMETOOLONG);
            }
            let here = join(&walked, comp);
            let child = match mounted_at(&here) {
                Some(r) => r,
                None => node.lookup(comp)?,
            };
            let last = i + 1 == comps.len();
            if child.meta().is_symlink() && (!last || follow) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ELOOP);
                }
                let target = child.readlink()?;
                let mut next = normalize(&walked, &target);
                for rest in &comps[i + 1..] {
                    next = join(&next, rest);
                }
                path = next;
                continue 'again;
            }
            node = child;
            walked = here;
        }
        return Ok(Resolved { node, path: walked });
    }
}

/// `dir` + `/` + `name`.
pub fn join(dir: &str, name: &str) -> String {
    let mut s = String::from(dir);
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(name);
    s
}

/// The directory that holds `path`'s last component, resolved, and that
/// component: what `creat`, `mkdir`, `unlink` and `rename` work on.
pub fn resolve_parent(path: &str) -> Result<(Resolved, String), Errno> {
    let (parent, name) = split_last(path).ok_or(EPERM)?;
    if name.len() > NAME_MAX {
        return Err(ENAMETOOLONG);
    }
    let dir = resolve(parent, true)?;
    if !dir.node.meta().is_dir() {
        return Err(ENOTDIR);
    }
    Ok((dir, String::from(name)))
}

/// Whether `path` is a mount point (not to be removed or renamed).
pub fn is_mount_point(path: &str) -> bool {
    mounted_at(path).is_some()
}

/// `EXDEV` unless `a` and `b` are of the same file system.
pub fn same_fs(a: &NodeRef, b: &NodeRef) -> Result<(), Errno> {
    if a.meta().dev == b.meta().dev {
        Ok(())
    } else {
        Err(EXDEV)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_split() {
        assert_eq!(normalize("/a/b", "../c/./d"), "/a/c/d");
        assert_eq!(normalize("/", "../.."), "/");
        assert_eq!(split_last("/tmp"), Some(("/", "tmp")));
        assert_eq!(split_last("/tmp/x"), Some(("/tmp", "x")));
        assert_eq!(split_last("/"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    /// The only test that mounts (the table is global): resolution across
    /// mounts, through links, `ELOOP`, and parents.
    #[test]
    fn resolution_across_mounts_and_links() {
        let root = crate::fs::tmpfs::new(1, 16, 64);
        let tmp = crate::fs::tmpfs::new(2, 16, 64);
        mount("/", root.clone());
        mount("/tmp", tmp.clone());
        root.mkdir("bin", 0o755).unwrap();
        let bin = root.lookup("bin").unwrap();
        bin.create("prog", 0o755).unwrap();
        bin.symlink("sh", "prog").unwrap();
        tmp.symlink("up", "../bin/sh").unwrap();
        tmp.symlink("loop", "/tmp/loop").unwrap();
        let r = resolve("/tmp/up", true).unwrap();
        assert_eq!(r.path, "/bin/prog");
        assert_eq!(r.node.meta().dev, 1);
        assert!(resolve("/tmp/up", false).unwrap().node.meta().is_symlink());
        assert_eq!(resolve("/tmp/loop", true).err(), Some(ELOOP));
        assert_eq!(resolve("/tmp", true).unwrap().node.meta().dev, 2);
        assert_eq!(resolve("/bin/prog/x", true).err(), Some(ENOTDIR));
        assert_eq!(resolve("/nothing", true).err(), Some(ENOENT));
        let (dir, name) = resolve_parent("/tmp/new").unwrap();
        assert_eq!((dir.path.as_str(), name.as_str()), ("/tmp", "new"));
        assert_eq!(mount_points_in("/"), ["tmp"]);
        assert!(is_mount_point("/tmp"));
        assert_eq!(same_fs(&root, &tmp), Err(EXDEV));
        let long = alloc::format!("/{}", "x".repeat(NAME_MAX + 1));
        assert_eq!(resolve(&long, true).err(), Some(ENAMETOOLONG));
    }
}
