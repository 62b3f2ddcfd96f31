//! `/dev`: `null` (reads end at once) and `zero` (reads give zeroes);
//! writes to either are discarded.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::vfs::{DirEntry, Errno, FsStats, Meta, Node, NodeRef, S_IFCHR, S_IFDIR};
use crate::errno::ENOENT;

/// `DEVFS_SUPER_MAGIC`/tmpfs-like magic Linux reports for `/dev` (devtmpfs).
const DEVTMPFS_MAGIC: u64 = 0x0102_1994;

/// The devices: name, inode, `st_rdev` (major 1: memory devices).
const DEVICES: [(&str, u64, u64); 2] = [("null", 3, 0x103), ("zero", 5, 0x105)];

struct DevDir;

struct DevNode {
    ino: u64,
    rdev: u64,
}

/// The `/dev` directory.
pub fn root() -> NodeRef {
    Arc::new(DevDir)
}

fn stats() -> FsStats {
    FsStats {
        magic: DEVTMPFS_MAGIC,
        block_size: 4096,
        ..FsStats::default()
    }
}

impl Node for DevDir {
    fn meta(&self) -> Meta {
        Meta {
            dev: super::DEV_DEV,
            ino: 1,
            mode: S_IFDIR | 0o755,
            nlink: 2,
            ..Meta::default()
        }
    }

    fn lookup(&self, name: &str) -> Result<NodeRef, Errno> {
        let (_, ino, rdev) = DEVICES.iter().find(|d| d.0 == name).ok_or(ENOENT)?;
        Ok(Arc::new(DevNode {
            ino: *ino,
            rdev: *rdev,
        }))
    }

    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok(DEVICES
            .iter()
            .map(|(name, ino, _)| DirEntry {
                name: String::from(*name),
                ino: *ino,
                kind: S_IFCHR,
            })
            .collect())
    }

    fn fs_stats(&self) -> FsStats {
        stats()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Node for DevNode {
    fn meta(&self) -> Meta {
        Meta {
            dev: super::DEV_DEV,
            ino: self.ino,
            mode: S_IFCHR | 0o666,
            nlink: 1,
            rdev: self.rdev,
            ..Meta::default()
        }
    }

    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.rdev == 0x105 {
            buf.fill(0);
            Ok(buf.len())
        } else {
            Ok(0)
        }
    }

    fn write_at(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        Ok(buf.len())
    }

    fn truncate(&self, _len: u64) -> Result<(), Errno> {
        Ok(())
    }

    fn fs_stats(&self) -> FsStats {
        stats()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
