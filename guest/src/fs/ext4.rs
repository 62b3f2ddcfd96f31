//! The first disk's ext2/3/4 file system at `/mnt`, read-only, through the
//! `ext4-view` crate (no_std + alloc): its `Ext4Read` is the virtio-blk
//! driver ([`crate::dev::virtio_blk`]), so a read here, or a page fault on
//! a mapping of a file here, does real I/O and the thread sleeps until the
//! disk answers.
//!
//! `ext4-view` is path-based and single-threaded (its handle is an `Rc`
//! with `RefCell`s inside): every call goes through [`Volume::with`],
//! which holds the volume's lock, a sleeping one (a thread that finds it
//! taken blocks on `Wait::Disk` until the holder, itself maybe asleep on
//! the disk, frees it). Nodes keep only their path and what `stat` shows;
//! the last file read stays open, so sequential reads do not walk the path
//! and the extent tree again. Mapped files have a page-cache id
//! ([`FileBacking::id`]): a program on the disk is read in once however
//! many processes run it.
//!
//! What the crate does not tell (inode numbers, link counts, times) is
//! made up: `st_ino` is a hash of the path (the root is 2), `st_nlink` 1
//! (2 for directories), `st_mtime` 0.
//!
//! A corrupt image or a failed read is `EIO` for the program (and SIGBUS
//! for a mapped page), counted in [`errors`] (`/proc/disks`, and a line on
//! standard error at the end of the run); an image that does not load at
//! all is mounted as a directory whose every lookup fails with `EIO`.
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ext4_view::{Ext4, Ext4Error, Ext4Read, File, FileType, Metadata};
use spin::Once;

use super::vfs::{DirEntry, Errno, FsStats, Meta, Node, NodeRef, ST_RDONLY, S_IFDIR, S_IFMT};
use crate::dev::virtio_blk::{self, Disk, DiskError};
use crate::errno::{EINTR, EINVAL, EIO, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR};
use crate::mm::vmm::{FileBacking, FileError};
use crate::proc::task::{self, Wait, Wake};

/// `EXT4_SUPER_MAGIC` (also ext2's and ext3's).
pub const EXT4_MAGIC: u64 = 0xEF53;
/// Which disk `/mnt` is.
const DISK: usize = 0;

static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Reads and lookups that failed with `EIO` (a corrupt image, a disk error).
pub fn errors() -> u64 {
    ERRORS.load(Ordering::Relaxed)
}

/// One line on standard error when something failed with `EIO`.
pub fn report_errors() {
    let n = errors();
    if n > 0 {
        let line = format!("mobius-guest: /mnt: {n} reads failed with EIO (see /proc/disks)\n");
        crate::console::write_program_output(crate::console::Stream::Err, line.as_bytes());
    }
}

fn eio() -> Errno {
    ERRORS.fetch_add(1, Ordering::Relaxed);
    EIO
}

fn errno(e: &Ext4Error) -> Errno {
    match e {
        Ext4Error::NotFound => ENOENT,
        Ext4Error::NotADirectory => ENOTDIR,
        Ext4Error::IsADirectory => EISDIR,
        Ext4Error::TooManySymlinks => ELOOP,
        Ext4Error::PathTooLong => ENAMETOOLONG,
        Ext4Error::NotASymlink
        | Ext4Error::NotAbsolute
        | Ext4Error::MalformedPath
        | Ext4Error::NotUtf8
        | Ext4Error::IsASpecialFile => EINVAL,
        _ => eio(),
    }
}

/// A failed disk read, as `ext4-view` wants its I/O errors.
#[derive(Debug)]
struct ReadError(DiskError);

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "disk read failed: {:?}", self.0)
    }
}

impl core::error::Error for ReadError {}

struct DiskReader(&'static Disk);

impl Ext4Read for DiskReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn core::error::Error + Send + Sync + 'static>> {
        self.0
            .read_bytes(start_byte, dst)
            .map_err(|e| Box::new(ReadError(e)) as _)
    }
}

struct State {
    fs: Ext4,
    /// The last file read, by path.
    open: Option<(String, File)>,
}

/// The mounted file system.
struct Volume {
    locked: AtomicBool,
    state: UnsafeCell<State>,
    stats: FsStats,
}

// SAFETY: `state` (whose `Rc`s are not thread-safe) is touched only by the
// holder of `locked` (`Volume::with`); the kernel runs on one CPU and never
// preempts a thread in ring 0, so the holder's accesses never interleave
// with another thread's.
unsafe impl Sync for Volume {}
// SAFETY: as for `Sync`.
unsafe impl Send for Volume {}

static VOLUME: Once<Volume> = Once::new();

impl Volume {
    /// Run `f` on the file system with the lock held.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Ext4Error>) -> Result<T, Errno> {
        self.lock()?;
        // SAFETY: the lock is ours until `unlock` below.
        let r = f(unsafe { &mut *self.state.get() });
        self.unlock();
        r.map_err(|e| errno(&e))
    }

    fn lock(&self) -> Result<(), Errno> {
        let index = u8::try_from(DISK).unwrap_or(u8::MAX);
        loop {
            let free =
                self.locked
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed);
            if free.is_ok() {
                return Ok(());
            }
            if !virtio_blk::can_sleep() {
                // A page fault taken in ring 0 while a thread sleeps
                // holding the lock: nothing can run the holder from here.
                return Err(EIO);
            }
            let deadline = crate::arch::x86_64::cpu::rdtsc()
                .saturating_add(crate::arch::x86_64::tsc::ns_to_cycles(1_000_000_000));
            if task::block(Wait::Disk(index), Some(deadline)) == Wake::Interrupted {
                if crate::proc::process::with_current(|p| p.killed.is_some()).unwrap_or(true) {
                    return Err(EINTR);
                }
                // A signal is pending: run the holder instead of sleeping.
                virtio_blk::poll(DISK);
                task::yield_now();
            }
        }
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
        virtio_blk::wake_waiters(DISK);
    }
}

fn volume() -> Result<&'static Volume, Errno> {
    VOLUME.get().ok_or(EIO)
}

/// The root of the first disk's file system, if there is a disk: the
/// file system, or a directory failing with `EIO` when it does not load
/// (`at`, where it goes, names it in the report).
pub fn mount_first_disk(at: &str) -> Option<NodeRef> {
    let disk = virtio_blk::disk(DISK)?;
    match Ext4::load(Box::new(DiskReader(disk))) {
        Ok(fs) => {
            let stats = fs_stats(disk);
            VOLUME.call_once(|| Volume {
                locked: AtomicBool::new(false),
                state: UnsafeCell::new(State { fs, open: None }),
                stats,
            });
            Some(match lookup_path(String::from("/")) {
                Ok(root) => root,
                Err(_) => Arc::new(Broken),
            })
        }
        Err(e) => {
            ERRORS.fetch_add(1, Ordering::Relaxed);
            let line = format!(
                "mobius-guest: {at}: disk {DISK} is not a readable ext4 file system: {e}\n"
            );
            crate::console::write_program_output(crate::console::Stream::Err, line.as_bytes());
            Some(Arc::new(Broken))
        }
    }
}

fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, |a| u64::from(u32::from_le_bytes(a)))
}

/// `statfs` figures from the superblock (bytes 1024..2048).
fn fs_stats(disk: &Disk) -> FsStats {
    let mut sb = [0u8; 1024];
    if disk.read_bytes(1024, &mut sb).is_err() {
        return FsStats {
            magic: EXT4_MAGIC,
            flags: ST_RDONLY,
            ..FsStats::default()
        };
    }
    FsStats {
        magic: EXT4_MAGIC,
        block_size: 1024u64.checked_shl(le32(&sb, 0x18) as u32).unwrap_or(0),
        blocks: le32(&sb, 0x4),
        blocks_free: le32(&sb, 0xC),
        files: le32(&sb, 0x0),
        files_free: le32(&sb, 0x10),
        flags: ST_RDONLY,
    }
}

/// An inode number for `path` (FNV-1a; the root is 2, as on ext4).
fn ino(path: &str) -> u64 {
    if path == "/" {
        return 2;
    }
    let h = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h | 1 << 32
}

fn type_bits(t: FileType) -> u32 {
    if t.is_dir() {
        S_IFDIR
    } else if t.is_symlink() {
        super::vfs::S_IFLNK
    } else if t.is_char_dev() {
        super::vfs::S_IFCHR
    } else if t.is_block_dev() {
        0o060_000
    } else if t.is_fifo() {
        0o010_000
    } else if t.is_socket() {
        0o140_000
    } else {
        super::vfs::S_IFREG
    }
}

fn meta(path: &str, md: &Metadata) -> Meta {
    let dir = md.is_dir();
    Meta {
        dev: super::DEV_DISK,
        ino: ino(path),
        mode: type_bits(md.file_type()) | u32::from(md.mode()),
        nlink: if dir { 2 } else { 1 },
        size: md.len(),
        rdev: 0,
        mtime: 0,
    }
}

/// The node at absolute `path` of the file system (links not followed).
fn lookup_path(path: String) -> Result<NodeRef, Errno> {
    let md = volume()?.with(|st| st.fs.symlink_metadata(path.as_str()))?;
    let meta = meta(&path, &md);
    Ok(Arc::new(ExtNode { path, meta }))
}

/// Read up to `buf.len()` bytes of the file at `path` from `offset`.
fn read_file(path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    volume()?.with(|st| {
        let reuse = matches!(&st.open, Some((p, _)) if p == path);
        if !reuse {
            st.open = None;
            st.open = Some((path.to_string(), st.fs.open(path)?));
        }
        let Some((_, file)) = st.open.as_mut() else {
            return Err(Ext4Error::NotFound);
        };
        if file.position() != offset {
            file.seek_to(offset)?;
        }
        let mut done = 0;
        while done < buf.len() {
            match file.read_bytes(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => {
                    st.open = None;
                    return Err(e);
                }
            }
        }
        Ok(done)
    })
}

/// A file, directory or link of the file system.
struct ExtNode {
    path: String,
    meta: Meta,
}

impl Node for ExtNode {
    fn meta(&self) -> Meta {
        self.meta
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.meta.is_dir() {
            return Err(EISDIR);
        }
        if !self.meta.is_file() {
            return Err(EINVAL);
        }
        if offset >= self.meta.size || buf.is_empty() {
            return Ok(0);
        }
        read_file(&self.path, offset, buf)
    }

    fn lookup(&self, name: &str) -> Result<NodeRef, Errno> {
        if !self.meta.is_dir() {
            return Err(ENOTDIR);
        }
        lookup_path(super::vfs::join(&self.path, name))
    }

    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        if !self.meta.is_dir() {
            return Err(ENOTDIR);
        }
        let entries = volume()?.with(|st| {
            let mut out = Vec::new();
            for e in st.fs.read_dir(self.path.as_str())? {
                let e = e?;
                let Ok(name) = e.file_name().as_str().map(String::from) else {
                    continue; // not UTF-8: not a name the VFS can carry
                };
                if name == "." || name == ".." {
                    continue;
                }
                let kind = type_bits(e.file_type()?);
                out.push((name, kind));
            }
            Ok(out)
        })?;
        Ok(entries
            .into_iter()
            .map(|(name, kind)| DirEntry {
                ino: ino(&super::vfs::join(&self.path, &name)),
                name,
                kind: kind & S_IFMT,
            })
            .collect())
    }

    fn readlink(&self) -> Result<String, Errno> {
        if !self.meta.is_symlink() {
            return Err(EINVAL);
        }
        let target = volume()?.with(|st| st.fs.read_link(self.path.as_str()))?;
        target.to_str().map(String::from).map_err(|_| EINVAL)
    }

    fn backing(&self) -> Option<Arc<dyn FileBacking>> {
        self.meta.is_file().then(|| {
            Arc::new(ExtFile {
                path: self.path.clone(),
                size: self.meta.size,
                id: Some(file_id(&self.path)),
            }) as Arc<dyn FileBacking>
        })
    }

    fn fs_stats(&self) -> FsStats {
        VOLUME.get().map_or(broken_stats(), |v| v.stats)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A file of the disk as the backing of FILE and IMAGE areas: a page
/// fault reads through the driver (and sleeps); a failure is SIGBUS.
struct ExtFile {
    path: String,
    size: u64,
    id: Option<usize>,
}

/// Ids of the files mapped so far, by path: the disk never changes, so a
/// path names the same bytes for as long as the kernel runs, and the read-
/// only pages of a program on the disk are read once and shared (the VMM's
/// page cache). An id is the address of a byte allocated for it and never
/// freed, so it is no other file's (the initramfs's ids are addresses too).
static IDS: spin::Mutex<alloc::collections::BTreeMap<String, usize>> =
    spin::Mutex::new(alloc::collections::BTreeMap::new());

fn file_id(path: &str) -> usize {
    let mut ids = IDS.lock();
    if let Some(&id) = ids.get(path) {
        return id;
    }
    let id = Box::leak(Box::new(0u8)) as *mut u8 as usize;
    ids.insert(path.to_string(), id);
    id
}

impl FileBacking for ExtFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        if offset >= self.size {
            return Ok(0);
        }
        read_file(&self.path, offset, buf).map_err(|_| FileError)
    }

    fn len(&self) -> u64 {
        self.size
    }

    fn id(&self) -> Option<usize> {
        self.id
    }
}

fn broken_stats() -> FsStats {
    FsStats {
        magic: EXT4_MAGIC,
        flags: ST_RDONLY,
        ..FsStats::default()
    }
}

/// The root of a disk whose file system did not load: every lookup and
/// listing fails with `EIO`.
struct Broken;

impl Node for Broken {
    fn meta(&self) -> Meta {
        Meta {
            dev: super::DEV_DISK,
            ino: 2,
            mode: S_IFDIR | 0o555,
            nlink: 2,
            ..Meta::default()
        }
    }

    fn lookup(&self, _name: &str) -> Result<NodeRef, Errno> {
        Err(eio())
    }

    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(eio())
    }

    fn fs_stats(&self) -> FsStats {
        broken_stats()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
