//! The initramfs the host handed over as a PVH module: checked once at
//! boot, then read in place (read-only) for the life of the kernel.
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use spin::Once;

use super::cpio::{Archive, CpioError, Entry, Index, IMPLICIT_DIR_MODE};
use super::vfs::{DirEntry, Errno, FsStats, Meta, Node, NodeRef, ST_RDONLY, S_IFMT};
#[cfg(target_os = "none")]
use crate::arch::x86_64::direct;
use crate::errno::{EINVAL, EISDIR, ENOENT, ENOTDIR};
#[cfg(target_os = "none")]
use crate::mm::paging::{PhysAddr, PAGE_SIZE};
use crate::mm::vmm::{FileBacking, FileError};

static ARCHIVE: Once<Archive<'static>> = Once::new();

/// Check the archive at `data` and make it the guest's initramfs, its
/// members indexed by path in the same pass.
pub fn init(data: &'static [u8]) -> Result<(), CpioError> {
    let (archive, index) = Archive::new_indexed(data)?;
    ARCHIVE.call_once(|| archive);
    INDEX.call_once(|| index);
    Ok(())
}

/// The initramfs, if the host gave one.
pub fn archive() -> Option<&'static Archive<'static>> {
    ARCHIVE.get()
}

static INDEX: Once<Index<'static>> = Once::new();

/// The initramfs's members by path (empty without an initramfs).
fn index() -> &'static Index<'static> {
    INDEX.call_once(Index::default)
}

/// The member at `path` ([`Archive::find`], through the index).
pub fn find(path: &str) -> Option<Entry<'static>> {
    index().find(path)
}

/// A file's bytes in the initramfs as the backing of FILE and IMAGE areas.
pub struct InitramfsFile(pub &'static [u8]);

impl FileBacking for InitramfsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let start = usize::try_from(offset).map_err(|_| FileError)?;
        let Some(rest) = self.0.get(start..) else {
            return Ok(0);
        };
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self.0)
    }

    /// The archive never changes: where a file's bytes lie says which it is.
    fn id(&self) -> Option<usize> {
        Some(self.0.as_ptr() as usize)
    }

    /// The archive lies in frames the allocator never hands out, read-only
    /// for the life of the kernel; the host starts the data of a program
    /// on a page boundary (and the module on one), so its whole pages are
    /// frames of their own. (Only in the kernel: on the host, where the
    /// tests run, nothing is physical.)
    #[cfg(target_os = "none")]
    fn frame_in_place(&self, offset: u64) -> Option<PhysAddr> {
        self.frames_in_place(offset, 1)
    }

    /// The archive is one physically contiguous module.
    #[cfg(target_os = "none")]
    fn frames_in_place(&self, offset: u64, pages: usize) -> Option<PhysAddr> {
        let start = usize::try_from(offset).ok()?;
        let len = pages.checked_mul(PAGE_SIZE as usize)?;
        let run = self.0.get(start..start.checked_add(len)?)?;
        let phys = direct::virt_to_phys(run.as_ptr() as u64)?;
        phys.is_multiple_of(PAGE_SIZE).then_some(phys)
    }
}

/// A file, directory or link of the initramfs: the member (if the archive
/// holds one; directories may exist only as prefixes of other paths) and
/// its path in the archive (`""` is the root).
struct InitNode {
    path: String,
    entry: Option<Entry<'static>>,
}

/// The root directory of the initramfs (empty when the host gave none).
pub fn root() -> NodeRef {
    Arc::new(InitNode {
        path: String::new(),
        entry: index().find(""),
    })
}

/// `RAMFS_MAGIC`: the initramfs is Linux's rootfs, a ramfs.
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// An inode number for a directory the archive only implies (FNV-1a of
/// its path, above the 32-bit numbers of real members).
fn implied_ino(path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1 << 40
}

impl InitNode {
    fn data(&self) -> Result<&'static [u8], Errno> {
        match self.entry {
            Some(e) if e.is_file() => Ok(e.data),
            _ if self.is_dir() => Err(EISDIR),
            _ => Err(EINVAL),
        }
    }

    fn is_dir(&self) -> bool {
        self.entry.is_none_or(|e| e.is_dir())
    }
}

impl Node for InitNode {
    fn meta(&self) -> Meta {
        match self.entry {
            Some(e) => Meta {
                dev: super::DEV_ROOT,
                ino: u64::from(e.ino),
                mode: e.mode,
                nlink: e.nlink.max(1),
                size: e.data.len() as u64,
                rdev: 0,
                mtime: i64::from(e.mtime),
            },
            None => Meta {
                dev: super::DEV_ROOT,
                ino: implied_ino(&self.path),
                mode: IMPLICIT_DIR_MODE,
                nlink: 2,
                size: 0,
                rdev: 0,
                mtime: 0,
            },
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let data = self.data()?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let rest = data.get(start..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn lookup(&self, name: &str) -> Result<NodeRef, Errno> {
        if !self.is_dir() {
            return Err(ENOTDIR);
        }
        let index = index();
        let mut path = String::with_capacity(self.path.len() + 1 + name.len());
        if !self.path.is_empty() {
            path.push_str(&self.path);
            path.push('/');
        }
        path.push_str(name);
        let entry = index.find(&path);
        if entry.is_none() && !index.is_dir(&path) {
            return Err(ENOENT);
        }
        Ok(Arc::new(InitNode { path, entry }))
    }

    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        if !self.is_dir() {
            return Err(ENOTDIR);
        }
        Ok(index()
            .read_dir(&self.path)
            .into_iter()
            .map(|e| DirEntry {
                name: String::from(e.name),
                ino: if e.ino == 0 {
                    implied_ino(&format!("{}/{}", self.path, e.name))
                } else {
                    u64::from(e.ino)
                },
                kind: e.mode & S_IFMT,
            })
            .collect())
    }

    fn readlink(&self) -> Result<String, Errno> {
        match self.entry {
            Some(e) if e.is_symlink() => String::from_utf8(e.data.to_vec()).map_err(|_| EINVAL),
            _ => Err(EINVAL),
        }
    }

    fn backing(&self) -> Option<Arc<dyn FileBacking>> {
        let data = self.data().ok()?;
        Some(Arc::new(InitramfsFile(data)))
    }

    fn fs_stats(&self) -> FsStats {
        let size = archive().map_or(0, |a| a.size() as u64);
        FsStats {
            magic: RAMFS_MAGIC,
            block_size: 4096,
            blocks: size.div_ceil(4096),
            blocks_free: 0,
            files: archive().map_or(0, |a| a.len() as u64),
            files_free: 0,
            flags: ST_RDONLY,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
