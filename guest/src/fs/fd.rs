//! A process's file-descriptor table and the open files it points to.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

/// Most descriptors a process may hold (`RLIMIT_NOFILE`); `EMFILE` past it.
pub const MAX_FDS: usize = 1024;

/// What a descriptor refers to.
pub enum OpenFile {
    /// The host's standard input, output or error.
    Console(u8),
    /// A regular file of the initramfs, read-only.
    File {
        path: String,
        data: &'static [u8],
        ino: u32,
        mode: u32,
        pos: u64,
    },
    /// A directory of the initramfs (`getdents64` position in `pos`).
    Dir {
        path: String,
        ino: u32,
        mode: u32,
        pos: usize,
    },
}

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

    /// Close `fd`; `false` if it was not open.
    pub fn close(&mut self, fd: u64) -> bool {
        match usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)) {
            Some(slot @ Some(_)) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// Open descriptors.
    pub fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}
