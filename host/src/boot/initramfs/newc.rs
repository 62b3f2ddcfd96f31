//! Writing `newc` cpio archives ([`Initramfs`]) and the archive names of guest paths.

use std::collections::BTreeMap;

use super::*;

/// What is already at a name in the archive.
#[derive(Debug, Clone, Copy)]
struct Entry {
    dir: bool,
    /// From the user's `--initrd` archive rather than added here.
    base: bool,
    /// Inode number and mode of the member (a padding member restates a
    /// directory with both).
    ino: u32,
    mode: u32,
}

/// Page size of the guest: the data of a file of at least this many bytes
/// starts at a multiple of it in the archive ([`Initramfs::add_file`]).
pub const DATA_ALIGN: usize = 4096;

/// Offset of the `filesize` field in a header (the magic, then six fields).
const FILESIZE_AT: usize = 6 + 8 * 6;

/// A `newc` archive being written: entries in the order they are added,
/// parent directories first, then [`Initramfs::finish`] closes it.
#[derive(Debug, Default)]
pub struct Initramfs {
    pub(super) out: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    next_ino: u32,
    /// Where the last member written here starts, if it is a directory
    /// with no data (padding can then go into it): header offset and name.
    last_dir: Option<(usize, String)>,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(4)
}

pub(super) fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The archive name of a guest path: no leading '/', no empty components;
/// `.` and `..` are refused.
pub fn archive_name(path: &str) -> Result<String, InitramfsError> {
    let bad = |why| InitramfsError::BadPath {
        path: path.to_string(),
        why,
    };
    if path.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() {
        return Err(bad("it names no file"));
    }
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return Err(bad("'.' and '..' are not allowed"));
    }
    let name = parts.join("/");
    if name == TRAILER {
        return Err(bad("it is the cpio end-of-archive name"));
    }
    Ok(name)
}

/// A name from an archive, compared the way [`archive_name`] makes them
/// (`./bin/x`, `/bin/x` and `bin/x` are the same file); `None` for the root.
fn normalize_existing(name: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(name); // checked to be UTF-8
    let parts: Vec<&str> = text
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The 13 header fields, in order, as messages name them.
const FIELDS: [&str; 13] = [
    "inode",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "file size",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "name size",
    "check",
];

/// One header field: exactly 8 ASCII hex digits (no sign: the guest's
/// reader takes nothing else, so neither does the host).
fn hex_field(header: &[u8], index: usize) -> Option<u32> {
    let start = 6 + 8 * index;
    let digits = header.get(start..start + 8)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Why `bytes` is not a newc archive, with a hint for the usual suspects.
fn not_newc(bytes: &[u8]) -> InitramfsError {
    let why = match bytes {
        [] => "the file is empty".to_string(),
        [0x1f, 0x8b, ..] => "it is gzip-compressed; decompress it first (gunzip)".into(),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "it is zstd-compressed; decompress it first".into(),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => "it is xz-compressed; decompress it first".into(),
        [b'B', b'Z', b'h', ..] => "it is bzip2-compressed; decompress it first".into(),
        [0x02, 0x21, 0x4c, 0x18, ..] | [0x04, 0x22, 0x4d, 0x18, ..] => {
            "it is lz4-compressed; decompress it first".into()
        }
        [b'0', b'7', b'0', b'7', b'0', b'7', ..] => {
            "it is old portable ASCII cpio (070707); write it with cpio -H newc".into()
        }
        [0xc7, 0x71, ..] | [0x71, 0xc7, ..] => {
            "it is old binary cpio; write it with cpio -H newc".into()
        }
        _ => "it does not start with the magic 070701 (make it with cpio -o -H newc)".into(),
    };
    InitramfsError::NotNewc(why)
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// An archive that starts with the entries of `base`, a newc archive
    /// (or several concatenated), without its trailers and their padding;
    /// what is added afterwards comes after them. Names must be UTF-8 (the
    /// guest reads no others).
    pub fn from_archive(base: &[u8]) -> Result<Self, InitramfsError> {
        let malformed = |what: String| InitramfsError::Malformed(what);
        let newc = |b: &[u8]| b.starts_with(NEWC_MAGIC) || b.starts_with(CRC_MAGIC);
        if !newc(base) {
            return Err(not_newc(base));
        }
        let mut fs = Initramfs::new();
        let mut pos = 0usize;
        let mut after_trailer = false;
        let mut max_ino = 0u32;
        while pos < base.len() {
            if after_trailer {
                // Zero padding (cpio pads to 512 bytes), then perhaps
                // another archive, 4-byte aligned as Linux wants it.
                while base.get(pos) == Some(&0) {
                    pos += 1;
                }
                if pos == base.len() {
                    break;
                }
                if !pos.is_multiple_of(4) {
                    return Err(malformed(format!(
                        "data after the trailer at offset {pos} is not 4-byte aligned"
                    )));
                }
            }
            let header = base
                .get(pos..)
                .and_then(|rest| rest.get(..HEADER_SIZE))
                .ok_or_else(|| malformed(format!("truncated header at offset {pos}")))?;
            if !newc(header) {
                return Err(malformed(format!("no newc magic at offset {pos}")));
            }
            // Every field, not only those read here: the archive goes to
            // the guest as it is, and the guest refuses a bad one.
            let mut fields = [0u32; 13];
            for (i, (slot, what)) in fields.iter_mut().zip(FIELDS).enumerate() {
                *slot = hex_field(header, i)
                    .ok_or_else(|| malformed(format!("bad {what} field at offset {pos}")))?;
            }
            let [ino, mode, .., check] = fields;
            let filesize = fields[6] as usize;
            let namesize = fields[11] as usize;
            let name_start = pos + HEADER_SIZE;
            let name = name_start
                .checked_add(namesize)
                .and_then(|end| base.get(name_start..end))
                .ok_or_else(|| malformed(format!("truncated name at offset {name_start}")))?;
            let Some((&0, name)) = name.split_last().filter(|(_, n)| !n.contains(&0)) else {
                return Err(malformed(format!(
                    "name at offset {name_start} is not NUL-terminated"
                )));
            };
            if std::str::from_utf8(name).is_err() {
                return Err(malformed(format!(
                    "name at offset {name_start} is not UTF-8"
                )));
            }
            let data_end = align4(name_start + namesize)
                .and_then(|start| start.checked_add(filesize))
                .filter(|&end| end <= base.len())
                .ok_or_else(|| malformed(format!("truncated data of the entry at offset {pos}")))?;
            // A checksummed (070702) regular file: its data must sum to
            // `check`, as Linux and the guest require.
            if header.starts_with(CRC_MAGIC)
                && mode & S_IFMT == S_IFREG
                && name != TRAILER.as_bytes()
            {
                let data = &base[data_end - filesize..data_end];
                let sum = data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
                if sum != check {
                    return Err(malformed(format!(
                        "checksum of the entry at offset {pos} is {check:#x}, its data sums to {sum:#x}"
                    )));
                }
            }
            // The last padding of a file may be cut off; nothing follows it then.
            let next = align4(data_end).map_or(base.len(), |n| n.min(base.len()));
            if name == TRAILER.as_bytes() {
                after_trailer = true;
            } else {
                after_trailer = false;
                fs.out.extend_from_slice(&base[pos..next]);
                pad4(&mut fs.out);
                max_ino = max_ino.max(ino);
                if let Some(key) = normalize_existing(name) {
                    let dir = mode & S_IFMT == S_IFDIR;
                    let e = Entry {
                        dir,
                        base: true,
                        ino,
                        mode,
                    };
                    fs.entries.insert(key, e);
                }
            }
            pos = next;
        }
        if !after_trailer {
            return Err(malformed(
                "no TRAILER!!! entry at the end (truncated archive?)".into(),
            ));
        }
        fs.next_ino = max_ino.saturating_add(1);
        Ok(fs)
    }

    /// Write a member; returns its inode number.
    fn push(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        data: &[u8],
    ) -> Result<u32, InitramfsError> {
        u32::try_from(data.len()).map_err(|_| InitramfsError::TooLarge {
            path: name.to_string(),
            size: data.len(),
        })?;
        u32::try_from(name.len() + 1).map_err(|_| InitramfsError::BadPath {
            path: name.to_string(),
            why: "it is too long",
        })?;
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(InitramfsError::TooManyEntries)?;
        self.last_dir = None;
        self.push_member(name, ino, mode, nlink, data);
        Ok(ino)
    }

    /// Write one member as it is (sizes checked by the caller).
    fn push_member(&mut self, name: &str, ino: u32, mode: u32, nlink: u32, data: &[u8]) {
        let start = self.out.len();
        let namesize = name.len() as u32 + 1;
        Self::header(&mut self.out, ino, mode, nlink, data.len() as u32, namesize);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
        if mode & S_IFMT == S_IFDIR && data.is_empty() {
            self.last_dir = Some((start, name.to_string()));
        }
    }

    /// Pad the archive so that the data of a member named `name` written
    /// next starts at a multiple of [`DATA_ALIGN`]: the guest then maps
    /// the read-only pages of a program in place instead of copying them.
    /// The padding is the data of a directory member, which readers skip
    /// (Linux's initramfs unpacker, GNU cpio, the guest): the parent
    /// directory just written, or else the parent restated (same inode
    /// and mode, a second member of that name). The result is an ordinary
    /// newc archive.
    fn align_data_of(&mut self, name: &str) {
        let header_and_name = |n: &str| align4(HEADER_SIZE + n.len() + 1).unwrap_or(usize::MAX);
        let parent = name.rsplit_once('/').map_or(".", |(p, _)| p);
        let data_at = self.out.len() + header_and_name(name);
        let gap = data_at.next_multiple_of(DATA_ALIGN) - data_at;
        if gap == 0 {
            return;
        }
        if let Some((start, _)) = self.last_dir.take().filter(|(_, n)| n == parent) {
            // The parent directory was the last member: its data is the gap.
            let field = format!("{gap:08x}");
            self.out[start + FILESIZE_AT..start + FILESIZE_AT + 8]
                .copy_from_slice(field.as_bytes());
            self.out.resize(self.out.len() + gap, 0);
            return;
        }
        // A member of its own: header, name, then at least no data.
        let least = header_and_name(parent);
        let pad = (gap + DATA_ALIGN - least % DATA_ALIGN) % DATA_ALIGN;
        let (ino, mode) = match self.entries.get(parent) {
            Some(e) if e.dir => (e.ino, e.mode),
            // The root ("."), which has no member yet: give it one.
            _ => {
                let ino = self.next_ino;
                self.next_ino = ino.saturating_add(1);
                let e = Entry {
                    dir: true,
                    base: false,
                    ino,
                    mode: DIR_MODE,
                };
                self.entries.insert(parent.to_string(), e);
                (ino, DIR_MODE)
            }
        };
        self.push_member(parent, ino, mode, 2, &vec![0; pad]);
        self.last_dir = None;
    }

    pub(super) fn header(
        out: &mut Vec<u8>,
        ino: u32,
        mode: u32,
        nlink: u32,
        filesize: u32,
        namesize: u32,
    ) {
        out.extend_from_slice(NEWC_MAGIC);
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [ino, mode, 0, 0, nlink, 0, filesize, 0, 0, 0, 0, namesize, 0];
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
    }

    /// Add the directories of `name` (an [`archive_name`]) and `name`
    /// itself as a directory, each unless it is there already.
    fn ensure_dirs(&mut self, name: &str, child: &str) -> Result<(), InitramfsError> {
        let ends = name
            .match_indices('/')
            .map(|(i, _)| i)
            .chain(std::iter::once(name.len()));
        for end in ends {
            let dir = &name[..end];
            match self.entries.get(dir) {
                Some(e) if e.dir => {}
                Some(_) => {
                    return Err(InitramfsError::ParentNotDir {
                        path: child.to_string(),
                        parent: dir.to_string(),
                    })
                }
                None => {
                    let ino = self.push(dir, DIR_MODE, 2, &[])?;
                    self.entries.insert(
                        dir.to_string(),
                        Entry {
                            dir: true,
                            base: false,
                            ino,
                            mode: DIR_MODE,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Add a directory (and its parents) at guest path `path`; a directory
    /// already there is left alone.
    pub fn add_dir(&mut self, path: &str) -> Result<(), InitramfsError> {
        let name = archive_name(path)?;
        self.ensure_dirs(&name, &name)
    }

    /// Add a regular file at guest path `path` (absolute or not, the archive
    /// name has no leading '/'), with its parent directories. `mode` is the
    /// whole `st_mode` (`0o100755`) or only the permission bits (`0o755`).
    /// The data of a file of [`DATA_ALIGN`] bytes or more starts at a
    /// multiple of [`DATA_ALIGN`] in the archive (see `align_data_of`).
    pub fn add_file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<(), InitramfsError> {
        let name = archive_name(path)?;
        let mode = match mode & S_IFMT {
            0 => mode | S_IFREG,
            S_IFREG => mode,
            _ => return Err(InitramfsError::BadMode { path: name, mode }),
        };
        if u32::try_from(data.len()).is_err() {
            return Err(InitramfsError::TooLarge {
                path: name,
                size: data.len(),
            });
        }
        match self.entries.get(&name) {
            Some(e) if e.base => return Err(InitramfsError::InBase { path: name }),
            Some(_) => return Err(InitramfsError::Duplicate { path: name }),
            None => {}
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.ensure_dirs(parent, &name)?;
        }
        if data.len() >= DATA_ALIGN {
            self.align_data_of(&name);
        }
        let ino = self.push(&name, mode, 1, data)?;
        self.entries.insert(
            name,
            Entry {
                dir: false,
                base: false,
                ino,
                mode,
            },
        );
        Ok(())
    }

    /// Close the archive with its trailer and return it.
    pub fn finish(mut self) -> Vec<u8> {
        let namesize = TRAILER.len() as u32 + 1;
        Self::header(&mut self.out, 0, 0, 1, 0, namesize);
        self.out.extend_from_slice(TRAILER.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out
    }
}
