//! A writable file system in kernel memory, mounted at `/tmp`: regular
//! files, directories, symbolic and hard links, nothing kept across boots.
//!
//! File data lives in separate 4 KiB blocks, whole pages of the kernel heap
//! ([`super::tmpfs_block`]; sparse: a hole costs nothing and reads as
//! zeroes), each taken with a fallible allocation, so a full heap is
//! `ENOSPC` and never a kernel panic. A `MAP_SHARED` mapping of a file maps
//! its blocks themselves ([`TmpBacking`]), so mappings, `read` and `write`
//! all see the same bytes. The
//! whole file system holds at most the page and inode budget it was made
//! with (`statfs` reports both), so programs writing to `/tmp` cannot
//! starve the kernel of the memory it needs for everything else.
use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use super::tmpfs_block::{Block, Budget, BLOCK};
use super::vfs::{
    DirEntry, Errno, FsStats, Meta, Node, NodeRef, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
};
use crate::errno::{EEXIST, EFBIG, EINVAL, EISDIR, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY, EXDEV};

/// `TMPFS_MAGIC` of `statfs`.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Largest file (Linux's `MAX_LFS_FILESIZE` is larger; past the budget a
/// file could not be filled anyway).
const MAX_FILE: u64 = 1 << 40;

/// One mounted instance: its budget and what is used of it.
pub struct TmpFs {
    dev: u64,
    limit_inodes: u64,
    /// Blocks in use, wherever they are held (files, shared mappings).
    blocks: Arc<Budget>,
    inodes: AtomicU64,
    next_ino: AtomicU64,
}

/// A file system of at most `limit_blocks` 4 KiB blocks and `limit_inodes`
/// nodes; `dev` is its `st_dev`. Returns the root directory.
pub fn new(dev: u64, limit_blocks: u64, limit_inodes: u64) -> NodeRef {
    let fs = Arc::new(TmpFs {
        dev,
        limit_inodes,
        blocks: Arc::new(Budget {
            used: AtomicU64::new(0),
            limit: limit_blocks,
        }),
        inodes: AtomicU64::new(0),
        next_ino: AtomicU64::new(1),
    });
    fs.inodes.fetch_add(1, Ordering::Relaxed);
    TmpNode::make(&fs, S_IFDIR | 0o1777, Body::Dir(BTreeMap::new()))
}

/// `/tmp` of the guest: half the kernel heap at most (as Linux's tmpfs
/// takes half of RAM by default).
#[cfg(target_os = "none")]
pub fn new_fs() -> NodeRef {
    let blocks = (crate::heap::size() / 2) / BLOCK as u64;
    new(super::DEV_TMP, blocks, 65_536)
}

enum Body {
    /// Blocks by index, and the size in bytes.
    File(BTreeMap<u64, Arc<Block>>, u64),
    Dir(BTreeMap<String, Arc<TmpNode>>),
    Symlink(String),
}

/// A file, directory or link of a [`TmpFs`].
pub struct TmpNode {
    /// This node's own `Arc` (for hard links and mappings).
    me: Weak<TmpNode>,
    fs: Arc<TmpFs>,
    ino: u64,
    mode: AtomicU32,
    nlink: AtomicU32,
    body: Mutex<Body>,
}

impl TmpNode {
    fn new(fs: &Arc<TmpFs>, mode: u32, body: Body) -> Result<Arc<TmpNode>, Errno> {
        let used = fs.inodes.fetch_add(1, Ordering::Relaxed);
        if used >= fs.limit_inodes {
            fs.inodes.fetch_sub(1, Ordering::Relaxed);
            return Err(ENOSPC);
        }
        Ok(TmpNode::make(fs, mode, body))
    }

    /// A node already counted in the inode budget.
    fn make(fs: &Arc<TmpFs>, mode: u32, body: Body) -> Arc<TmpNode> {
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        Arc::new_cyclic(|me| TmpNode {
            me: me.clone(),
            fs: fs.clone(),
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            mode: AtomicU32::new(mode),
            nlink: AtomicU32::new(nlink),
            body: Mutex::new(body),
        })
    }

    fn self_arc(&self) -> Option<Arc<TmpNode>> {
        self.me.upgrade()
    }

    fn is_file_node(&self) -> bool {
        self.mode.load(Ordering::Relaxed) & S_IFMT == S_IFREG
    }

    /// Put `node` here as `name`, replacing what was there the way
    /// `rename` does; returns the replaced node (to drop outside locks).
    fn place(&self, name: &str, node: Arc<TmpNode>) -> Result<Option<Arc<TmpNode>>, Errno> {
        let mut b = self.body.lock();
        let Body::Dir(children) = &mut *b else {
            return Err(ENOTDIR);
        };
        if let Some(old) = children.get(name) {
            match (node.is_dir(), old.is_dir()) {
                (false, true) => return Err(EISDIR),
                (true, false) => return Err(ENOTDIR),
                (true, true) => {
                    if matches!(&*old.body.lock(), Body::Dir(c) if !c.is_empty()) {
                        return Err(ENOTEMPTY);
                    }
                    self.nlink.fetch_sub(1, Ordering::Relaxed);
                }
                (false, false) => {
                    old.nlink.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        Ok(children.insert(String::from(name), node))
    }

    /// Whether `name` here is `node` itself (a hard link of it): a rename
    /// onto it does nothing.
    fn holds(&self, name: &str, node: &Arc<TmpNode>) -> bool {
        matches!(&*self.body.lock(), Body::Dir(c) if c.get(name).is_some_and(|o| Arc::ptr_eq(o, node)))
    }

    /// `rename` inside one directory.
    fn rename_within(&self, name: &str, new_name: &str) -> Result<(), Errno> {
        if name == new_name {
            return match &*self.body.lock() {
                Body::Dir(c) if c.contains_key(name) => Ok(()),
                Body::Dir(_) => Err(ENOENT),
                _ => Err(ENOTDIR),
            };
        }
        let moving = match &*self.body.lock() {
            Body::Dir(c) => c.get(name).cloned().ok_or(ENOENT)?,
            _ => return Err(ENOTDIR),
        };
        if self.holds(new_name, &moving) {
            return Ok(());
        }
        let replaced = self.place(new_name, moving)?;
        if let Body::Dir(c) = &mut *self.body.lock() {
            c.remove(name);
        }
        drop(replaced);
        Ok(())
    }

    /// Take one zeroed block from the budget and the heap.
    fn new_block(&self) -> Result<Arc<Block>, Errno> {
        Block::new(&self.fs.blocks).ok_or(ENOSPC)
    }

    fn is_dir(&self) -> bool {
        self.mode.load(Ordering::Relaxed) & S_IFMT == S_IFDIR
    }

    /// A child node made in this directory by `make`.
    fn add_child(&self, name: &str, mode: u32, body: Body) -> Result<Arc<TmpNode>, Errno> {
        let mut b = self.body.lock();
        let Body::Dir(children) = &mut *b else {
            return Err(ENOTDIR);
        };
        if children.contains_key(name) {
            return Err(EEXIST);
        }
        let node = TmpNode::new(&self.fs, mode, body)?;
        if node.is_dir() {
            self.nlink.fetch_add(1, Ordering::Relaxed);
        }
        children.insert(String::from(name), node.clone());
        Ok(node)
    }
}

impl Drop for TmpNode {
    fn drop(&mut self) {
        // Its blocks give themselves back to the budget as they go.
        self.fs.inodes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Zero `blocks` from byte `from` on, dropping whole blocks past it.
fn cut(blocks: &mut BTreeMap<u64, Arc<Block>>, from: u64) {
    let first_whole = from.div_ceil(BLOCK as u64);
    drop(blocks.split_off(&first_whole));
    if !from.is_multiple_of(BLOCK as u64) {
        if let Some(b) = blocks.get(&(from / BLOCK as u64)) {
            b.zero_from((from % BLOCK as u64) as usize);
        }
    }
}

impl Node for TmpNode {
    fn meta(&self) -> Meta {
        let size = match &*self.body.lock() {
            Body::File(_, size) => *size,
            Body::Dir(c) => (c.len() as u64 + 2) * 20,
            Body::Symlink(t) => t.len() as u64,
        };
        Meta {
            dev: self.fs.dev,
            ino: self.ino,
            mode: self.mode.load(Ordering::Relaxed),
            nlink: self.nlink.load(Ordering::Relaxed),
            size,
            rdev: 0,
            mtime: 0,
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let b = self.body.lock();
        let Body::File(blocks, size) = &*b else {
            return Err(if self.is_dir() { EISDIR } else { EINVAL });
        };
        if offset >= *size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((*size - offset).min(usize::MAX as u64) as usize);
        let mut done = 0usize;
        while done < n {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK as u64, (at % BLOCK as u64) as usize);
            let step = (BLOCK - within).min(n - done);
            let dst = &mut buf[done..done + step];
            match blocks.get(&index) {
                Some(block) => block.read(within, dst),
                None => dst.fill(0),
            }
            done += step;
        }
        Ok(n)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let end = offset.checked_add(buf.len() as u64).ok_or(EFBIG)?;
        if end > MAX_FILE {
            return Err(EFBIG);
        }
        let mut b = self.body.lock();
        let Body::File(blocks, size) = &mut *b else {
            return Err(if self.is_dir() { EISDIR } else { EINVAL });
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK as u64, (at % BLOCK as u64) as usize);
            let step = (BLOCK - within).min(buf.len() - done);
            let block = match blocks.entry(index) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => match self.new_block() {
                    Ok(block) => v.insert(block),
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                },
            };
            block.write(within, &buf[done..done + step]);
            done += step;
            *size = (*size).max(offset + done as u64);
        }
        Ok(done)
    }

    fn truncate(&self, len: u64) -> Result<(), Errno> {
        if len > MAX_FILE {
            return Err(EFBIG);
        }
        let mut b = self.body.lock();
        let Body::File(blocks, size) = &mut *b else {
            return Err(if self.is_dir() { EISDIR } else { EINVAL });
        };
        if len < *size {
            cut(blocks, len);
        }
        *size = len;
        Ok(())
    }

    fn lookup(&self, name: &str) -> Result<NodeRef, Errno> {
        match &*self.body.lock() {
            Body::Dir(c) => c.get(name).map(|n| n.clone() as NodeRef).ok_or(ENOENT),
            _ => Err(ENOTDIR),
        }
    }

    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        match &*self.body.lock() {
            Body::Dir(c) => Ok(c
                .iter()
                .map(|(name, n)| DirEntry {
                    name: name.clone(),
                    ino: n.ino,
                    kind: n.mode.load(Ordering::Relaxed) & S_IFMT,
                })
                .collect()),
            _ => Err(ENOTDIR),
        }
    }

    fn create(&self, name: &str, mode: u32) -> Result<NodeRef, Errno> {
        let body = Body::File(BTreeMap::new(), 0);
        Ok(self.add_child(name, S_IFREG | (mode & 0o7777), body)?)
    }

    fn mkdir(&self, name: &str, mode: u32) -> Result<(), Errno> {
        let body = Body::Dir(BTreeMap::new());
        self.add_child(name, S_IFDIR | (mode & 0o7777), body)
            .map(|_| ())
    }

    fn symlink(&self, name: &str, target: &str) -> Result<(), Errno> {
        let body = Body::Symlink(String::from(target));
        self.add_child(name, S_IFLNK | 0o777, body).map(|_| ())
    }

    fn link(&self, name: &str, node: &NodeRef) -> Result<(), Errno> {
        let other = node.as_any().downcast_ref::<TmpNode>().ok_or(EXDEV)?;
        if !Arc::ptr_eq(&other.fs, &self.fs) {
            return Err(EXDEV);
        }
        if other.is_dir() {
            return Err(crate::errno::EPERM);
        }
        let mut b = self.body.lock();
        let Body::Dir(children) = &mut *b else {
            return Err(ENOTDIR);
        };
        if children.contains_key(name) {
            return Err(EEXIST);
        }
        let arc = other.self_arc().ok_or(EXDEV)?;
        other.nlink.fetch_add(1, Ordering::Relaxed);
        children.insert(String::from(name), arc);
        Ok(())
    }

    fn unlink(&self, name: &str, dir: bool) -> Result<(), Errno> {
        let removed = {
            let mut b = self.body.lock();
            let Body::Dir(children) = &mut *b else {
                return Err(ENOTDIR);
            };
            let child = children.get(name).ok_or(ENOENT)?;
            match (dir, child.is_dir()) {
                (true, false) => return Err(ENOTDIR),
                (false, true) => return Err(EISDIR),
                (true, true) => {
                    if matches!(&*child.body.lock(), Body::Dir(c) if !c.is_empty()) {
                        return Err(ENOTEMPTY);
                    }
                    self.nlink.fetch_sub(1, Ordering::Relaxed);
                }
                (false, false) => {
                    child.nlink.fetch_sub(1, Ordering::Relaxed);
                }
            }
            children.remove(name)
        };
        // Dropped outside the lock: the last reference frees its blocks.
        drop(removed);
        Ok(())
    }

    fn rename(&self, name: &str, to: &NodeRef, new_name: &str) -> Result<(), Errno> {
        let target = to.as_any().downcast_ref::<TmpNode>().ok_or(EXDEV)?;
        if !Arc::ptr_eq(&target.fs, &self.fs) {
            return Err(EXDEV);
        }
        if core::ptr::eq(target, self) {
            return self.rename_within(name, new_name);
        }
        let moving = match &mut *self.body.lock() {
            Body::Dir(c) => c.get(name).cloned().ok_or(ENOENT)?,
            _ => return Err(ENOTDIR),
        };
        if target.holds(new_name, &moving) {
            return Ok(());
        }
        let replaced = target.place(new_name, moving.clone())?;
        if let Body::Dir(c) = &mut *self.body.lock() {
            c.remove(name);
        }
        if moving.is_dir() {
            self.nlink.fetch_sub(1, Ordering::Relaxed);
            target.nlink.fetch_add(1, Ordering::Relaxed);
        }
        drop(replaced);
        Ok(())
    }

    fn chmod(&self, mode: u32) -> Result<(), Errno> {
        let old = self.mode.load(Ordering::Relaxed);
        self.mode
            .store((old & S_IFMT) | (mode & 0o7777), Ordering::Relaxed);
        Ok(())
    }

    fn readlink(&self) -> Result<String, Errno> {
        match &*self.body.lock() {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(EINVAL),
        }
    }

    fn fs_stats(&self) -> FsStats {
        let used = self.fs.blocks.used.load(Ordering::Relaxed);
        let inodes = self.fs.inodes.load(Ordering::Relaxed);
        FsStats {
            magic: TMPFS_MAGIC,
            block_size: BLOCK as u64,
            blocks: self.fs.blocks.limit,
            blocks_free: self.fs.blocks.limit.saturating_sub(used),
            files: self.fs.limit_inodes,
            files_free: self.fs.limit_inodes.saturating_sub(inodes),
            flags: 0,
        }
    }

    fn backing(&self) -> Option<Arc<dyn crate::mm::vmm::FileBacking>> {
        let me = self.self_arc()?;
        me.is_file_node().then(|| {
            Arc::new(TmpBacking {
                node: me,
                pinned: Mutex::new(BTreeMap::new()),
            }) as _
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl TmpNode {
    /// The block holding byte `offset` of this file, made (zeroed) if it
    /// was a hole; `None` past the end of the file or when the budget or
    /// the heap is exhausted.
    fn block_at(&self, offset: u64) -> Option<Arc<Block>> {
        let mut b = self.body.lock();
        let Body::File(blocks, size) = &mut *b else {
            return None;
        };
        if offset >= *size {
            return None;
        }
        match blocks.entry(offset / BLOCK as u64) {
            Entry::Occupied(o) => Some(o.get().clone()),
            Entry::Vacant(v) => Some(v.insert(self.new_block().ok()?).clone()),
        }
    }
}

/// The physical address of a block (kernel heap pages are in the identity
/// or direct map).
#[cfg(target_os = "none")]
fn phys_of(block: &Block) -> Option<u64> {
    crate::arch::x86_64::direct::virt_to_phys(block.addr())
}

/// Host builds have no physical memory to map: shared pages are refused.
#[cfg(not(target_os = "none"))]
fn phys_of(_: &Block) -> Option<u64> {
    None
}

/// A tmpfs file as the backing of one `mmap` of it.
///
/// A private mapping reads pages from the file when first touched (later
/// writes to the file are not seen by pages already read, as with any
/// private mapping). A shared mapping maps the file's blocks themselves,
/// each kept here (`pinned`) for as long as the mapping lives, so the
/// mapping, `read`, `write` and other mappings see the same bytes. A page
/// that a `truncate` cuts off stays with the mappings that hold it (Linux
/// would raise `SIGBUS` on it instead) and stays counted in the budget
/// until they go.
struct TmpBacking {
    node: Arc<TmpNode>,
    /// Blocks handed to shared mappings, by block index: at most one per
    /// page of the mapping.
    pinned: Mutex<BTreeMap<u64, Arc<Block>>>,
}

impl crate::mm::vmm::FileBacking for TmpBacking {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, crate::mm::vmm::FileError> {
        self.node
            .read_at(offset, buf)
            .map_err(|_| crate::mm::vmm::FileError)
    }

    fn len(&self) -> u64 {
        self.node.meta().size
    }

    fn shared_page(&self, offset: u64) -> Option<Result<u64, crate::mm::vmm::FileError>> {
        let index = offset / BLOCK as u64;
        let mut pinned = self.pinned.lock();
        let block = match pinned.get(&index) {
            Some(b) => b.clone(),
            None => match self.node.block_at(offset) {
                Some(b) => pinned.entry(index).or_insert(b).clone(),
                None => return Some(Err(crate::mm::vmm::FileError)),
            },
        };
        Some(phys_of(&block).ok_or(crate::mm::vmm::FileError))
    }

    fn shares_pages(&self) -> bool {
        cfg!(target_os = "none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(blocks: u64) -> NodeRef {
        new(9, blocks, 16)
    }

    #[test]
    fn write_read_sparse_truncate() {
        let root = fs(8);
        let f = root.create("a", 0o644).unwrap();
        assert_eq!(f.write_at(5000, b"xyz").unwrap(), 3);
        assert_eq!(f.meta().size, 5003);
        let mut buf = [1u8; 8];
        assert_eq!(f.read_at(4998, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], &[0, 0, b'x', b'y', b'z']);
        assert_eq!(root.fs_stats().blocks_free, 7);
        f.truncate(5001).unwrap();
        assert_eq!(f.read_at(5000, &mut buf).unwrap(), 1);
        f.truncate(100).unwrap();
        assert_eq!(root.fs_stats().blocks_free, 8);
        f.truncate(6000).unwrap();
        assert_eq!(f.read_at(5000, &mut buf).unwrap(), 8);
        assert_eq!(buf, [0; 8]);
    }

    #[test]
    fn budget_gives_enospc_and_unlink_returns_it() {
        let root = fs(2);
        let f = root.create("a", 0o644).unwrap();
        assert_eq!(f.write_at(0, &[7u8; 3 * BLOCK]).unwrap(), 2 * BLOCK);
        assert_eq!(f.write_at(2 * BLOCK as u64, b"x"), Err(ENOSPC));
        drop(f);
        root.unlink("a", false).unwrap();
        assert_eq!(root.fs_stats().blocks_free, 2);
        assert_eq!(root.fs_stats().files_free, 15);
    }

    #[test]
    fn open_file_outlives_unlink() {
        let root = fs(4);
        let f = root.create("a", 0o644).unwrap();
        f.write_at(0, b"kept").unwrap();
        root.unlink("a", false).unwrap();
        assert_eq!(root.lookup("a").err(), Some(ENOENT));
        let mut buf = [0u8; 4];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"kept");
        drop(f);
        assert_eq!(root.fs_stats().blocks_free, 4);
    }

    #[test]
    fn dirs_links_and_renames() {
        let root = fs(4);
        root.mkdir("d", 0o755).unwrap();
        assert_eq!(root.mkdir("d", 0o755), Err(EEXIST));
        assert_eq!(root.meta().nlink, 3);
        let d = root.lookup("d").unwrap();
        let f = d.create("f", 0o600).unwrap();
        assert_eq!(root.unlink("d", true), Err(ENOTEMPTY));
        assert_eq!(root.unlink("d", false), Err(EISDIR));
        root.link("hard", &f).unwrap();
        assert_eq!(f.meta().nlink, 2);
        d.rename("f", &root, "moved").unwrap();
        assert!(d.read_dir().unwrap().is_empty());
        let names: Vec<String> = root
            .read_dir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["d", "hard", "moved"]);
        // Renaming onto a hard link of the same file changes nothing.
        root.rename("hard", &root.clone(), "moved").unwrap();
        assert_eq!(root.read_dir().unwrap().len(), 3);
        root.symlink("l", "/tmp/moved").unwrap();
        assert_eq!(root.lookup("l").unwrap().readlink().unwrap(), "/tmp/moved");
        assert_eq!(root.rename("moved", &root.clone(), "d"), Err(EISDIR));
        root.unlink("d", true).unwrap();
        assert_eq!(root.meta().nlink, 2);
        let other = fs(1);
        assert_eq!(root.rename("l", &other, "l"), Err(EXDEV));
    }
}
