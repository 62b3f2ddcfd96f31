//! A process's file-descriptor table and the open files it points to.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use super::pipe::PipeEnd;
use super::vfs::NodeRef;

/// Most descriptors a process may hold (`RLIMIT_NOFILE`); `EMFILE` past it.
pub const MAX_FDS: usize = 1024;

/// What a descriptor refers to.
pub enum OpenFile {
    /// The host's standard input, output or error.
    Console(u8),
    /// A file, directory or device of the namespace ([`super::vfs`]).
    Node(OpenNode),
    /// One end of a pipe; `nonblock` is `O_NONBLOCK` (`EAGAIN` instead of
    /// sleeping).
    Pipe { end: PipeEnd, nonblock: bool },
}

/// A node opened by `openat`.
pub struct OpenNode {
    pub node: NodeRef,
    /// The absolute path it was opened by, every link followed (for
    /// `*at` calls relative to a directory, and `fchdir`).
    pub path: String,
    /// Byte offset, or the next entry's index for a directory.
    pub pos: u64,
    /// `O_ACCMODE`, `O_APPEND` and `O_NONBLOCK` of `open`.
    pub flags: u64,
}

impl OpenNode {
    /// Opened for reading.
    pub fn readable(&self) -> bool {
        self.flags & 3 != 1
    }
    /// Opened for writing.
    pub fn writable(&self) -> bool {
        matches!(self.flags & 3, 1 | 2)
    }
}

/// A descriptor number no table can hold (`EBADF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFd;

/// A shared open file (several descriptors after `dup`).
pub type FileRef = Arc<Mutex<OpenFile>>;

/// The descriptor table.
#[derive(Default, Clone)]
pub struct FdTable {
    slots: Vec<Option<(FileRef, bool)>>,
}

impl FdTable {
    /// Descriptors 0, 1 and 2 on the console.
    pub fn with_console() -> FdTable {
        let mut t = FdTable::default();
        for i in 0..3u8 {
            t.slots
                .push(Some((Arc::new(Mutex::new(OpenFile::Console(i))), false)));
        }
        t
    }

    /// The file behind `fd`.
    pub fn get(&self, fd: u64) -> Option<FileRef> {
        let i = usize::try_from(fd).ok()?;
        self.slots.get(i)?.as_ref().map(|(f, _)| f.clone())
    }

    /// Put `file` in the lowest free slot; `None` when the table is full.
    pub fn insert(&mut self, file: FileRef, cloexec: bool) -> Option<u64> {
        let free = self.slots.iter().position(Option::is_none);
        let i = match free {
            Some(i) => i,
            None if self.slots.len() < MAX_FDS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[i] = Some((file, cloexec));
        Some(i as u64)
    }

    /// Put `file` in the lowest free slot at or above `min` (`F_DUPFD`).
    pub fn insert_from(&mut self, min: u64, file: FileRef, cloexec: bool) -> Option<u64> {
        let min = usize::try_from(min).ok().filter(|m| *m < MAX_FDS)?;
        let free = (min..MAX_FDS).find(|i| self.slots.get(*i).is_none_or(Option::is_none))?;
        if free >= self.slots.len() {
            self.slots.resize(free + 1, None);
        }
        self.slots[free] = Some((file, cloexec));
        Some(free as u64)
    }

    /// Put `file` at `fd` (`dup2`), returning what was there (to be dropped
    /// by the caller outside any lock). `Err` if `fd` is out of range.
    pub fn insert_at(
        &mut self,
        fd: u64,
        file: FileRef,
        cloexec: bool,
    ) -> Result<Option<FileRef>, BadFd> {
        let i = usize::try_from(fd)
            .ok()
            .filter(|i| *i < MAX_FDS)
            .ok_or(BadFd)?;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        Ok(self.slots[i].replace((file, cloexec)).map(|(f, _)| f))
    }

    /// Close `fd`, returning the file it held (`None` if it was not open);
    /// the caller drops it outside the table's lock.
    pub fn close(&mut self, fd: u64) -> Option<FileRef> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))?;
        slot.take().map(|(f, _)| f)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: u64) -> Option<bool> {
        let i = usize::try_from(fd).ok()?;
        self.slots.get(i)?.as_ref().map(|(_, c)| *c)
    }

    /// Set the close-on-exec flag of `fd`; `false` if it is not open.
    pub fn set_cloexec(&mut self, fd: u64, on: bool) -> bool {
        let slot = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i));
        match slot {
            Some(Some((_, c))) => {
                *c = on;
                true
            }
            _ => false,
        }
    }

    /// Close every close-on-exec descriptor (`execve`), returning the files
    /// for the caller to drop outside the lock.
    pub fn take_cloexec(&mut self) -> Vec<FileRef> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|(_, c)| *c) {
                if let Some((f, _)) = slot.take() {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Open descriptors.
    pub fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}
