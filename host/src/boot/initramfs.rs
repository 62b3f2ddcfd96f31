//! The initramfs: a `newc` cpio archive (`cpio -H newc`, the format of
//! Linux's initramfs) that carries the program to run into the guest, with
//! the user's `--file`s and the two control files of
//! [`mobius_shared::initramfs`] (program path and argv, environment).
//!
//! [`Initramfs`] writes archives; [`ArchiveSpec`] reads what a run names on
//! the host (PROGRAM, `--file`, `--env`, `--initrd`) and builds its archive.
//! [`super::params::write_start_info`] hands the archive to the guest as the
//! first PVH module.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use mobius_shared::initramfs::{ARGS_MAX, ARGV_FILE, ENV_FILE, PROGRAM_DIR};

/// Magic of a `newc` header.
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// Magic of a `newc` header with a data checksum (`cpio -H crc`); accepted
/// in `--initrd` archives, as Linux and the guest accept it.
pub const CRC_MAGIC: &[u8; 6] = b"070702";
/// Size of a `newc` header: the magic and 13 fields of 8 hex digits.
pub const HEADER_SIZE: usize = 110;
/// Name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// File-type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
/// Modes the host gives its entries.
pub const DIR_MODE: u32 = S_IFDIR | 0o755;
pub const PROGRAM_MODE: u32 = S_IFREG | 0o755;
pub const CONTROL_MODE: u32 = S_IFREG | 0o644;

/// Everything that can go wrong building an archive. All of them are the
/// user's words (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error(
        "no such program '{0}' (a PROGRAM is a host executable: a path such as ./{0}, \
         or a file in the current directory)"
    )]
    NoSuchProgram(String),
    #[error("{what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: not a regular file")]
    NotAFile { what: &'static str, path: PathBuf },
    #[error("program {path}: not an x86-64 ELF executable ({why})")]
    NotElf { path: PathBuf, why: &'static str },
    #[error("--file '{spec}': {why}")]
    BadFileSpec { spec: String, why: String },
    #[error("path '{path}' cannot go into the archive: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("'/{path}' would be in the archive twice")]
    Duplicate { path: String },
    #[error("'/{path}' is already in the --initrd archive")]
    InBase { path: String },
    #[error("'/{path}' cannot go into the archive: '/{parent}' is there and is not a directory")]
    ParentNotDir { path: String, parent: String },
    #[error("file mode {mode:#o} of '/{path}' is not a regular file's")]
    BadMode { path: String, mode: u32 },
    #[error("'/{path}' is {size} bytes; a newc cpio entry holds at most 4 GiB - 1")]
    TooLarge { path: String, size: usize },
    #[error("the archive has more than 2^32 entries")]
    TooManyEntries,
    #[error("argument {index} of the program contains a NUL byte")]
    ArgNul { index: usize },
    #[error("--env '{0}' is not KEY=VALUE")]
    BadEnv(String),
    #[error("--env entry contains a NUL byte")]
    EnvNul,
    #[error("--env only applies to a PROGRAM: mobius run [options] -- PROGRAM [ARGS...]")]
    EnvWithoutProgram,
    #[error(
        "the program's arguments and environment take {size} bytes; at most {ARGS_MAX} are allowed"
    )]
    ArgsTooLarge { size: usize },
    #[error("not a newc cpio archive: {0}")]
    NotNewc(String),
    #[error("malformed newc cpio archive: {0}")]
    Malformed(String),
    #[error("--initrd {path}: {source}")]
    Initrd {
        path: PathBuf,
        source: Box<InitramfsError>,
    },
}

/// What is already at a name in the archive.
#[derive(Debug, Clone, Copy)]
struct Entry {
    dir: bool,
    /// From the user's `--initrd` archive rather than added here.
    base: bool,
}

/// A `newc` archive being written: entries in the order they are added,
/// parent directories first, then [`Initramfs::finish`] closes it.
#[derive(Debug, Default)]
pub struct Initramfs {
    out: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    next_ino: u32,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(4)
}

fn pad4(out: &mut Vec<u8>) {
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

/// One header field: 8 ASCII hex digits.
fn hex_field(header: &[u8], index: usize) -> Option<u32> {
    let start = 6 + 8 * index;
    let digits = std::str::from_utf8(header.get(start..start + 8)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
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
            let field = |i: usize, what: &str| {
                hex_field(header, i)
                    .ok_or_else(|| malformed(format!("bad {what} field at offset {pos}")))
            };
            let ino = field(0, "inode")?;
            let mode = field(1, "mode")?;
            let filesize = field(6, "file size")? as usize;
            let namesize = field(11, "name size")? as usize;
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
                    fs.entries.insert(key, Entry { dir, base: true });
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

    fn push(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        data: &[u8],
    ) -> Result<(), InitramfsError> {
        let filesize = u32::try_from(data.len()).map_err(|_| InitramfsError::TooLarge {
            path: name.to_string(),
            size: data.len(),
        })?;
        let namesize = u32::try_from(name.len() + 1).map_err(|_| InitramfsError::BadPath {
            path: name.to_string(),
            why: "it is too long",
        })?;
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(InitramfsError::TooManyEntries)?;
        Self::header(&mut self.out, ino, mode, nlink, filesize, namesize);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
        Ok(())
    }

    fn header(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, filesize: u32, namesize: u32) {
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
                    self.push(dir, DIR_MODE, 2, &[])?;
                    self.entries.insert(
                        dir.to_string(),
                        Entry {
                            dir: true,
                            base: false,
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
        self.push(&name, mode, 1, data)?;
        self.entries.insert(
            name,
            Entry {
                dir: false,
                base: false,
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

/// The contents of [`ARGV_FILE`]: the program's guest path, then `argv`,
/// each NUL-terminated.
pub fn encode_argv(guest_path: &str, argv: &[OsString]) -> Result<Vec<u8>, InitramfsError> {
    if guest_path.contains('\0') {
        return Err(InitramfsError::BadPath {
            path: guest_path.to_string(),
            why: "it contains a NUL byte",
        });
    }
    let mut out = Vec::new();
    out.extend_from_slice(guest_path.as_bytes());
    out.push(0);
    for (index, arg) in argv.iter().enumerate() {
        let bytes = arg.as_bytes();
        if bytes.contains(&0) {
            return Err(InitramfsError::ArgNul { index });
        }
        out.extend_from_slice(bytes);
        out.push(0);
    }
    Ok(out)
}

/// Check one `--env` entry: `KEY=VALUE`, a non-empty KEY, no NUL byte.
pub fn check_env(entry: &str) -> Result<(), InitramfsError> {
    if entry.contains('\0') {
        return Err(InitramfsError::EnvNul);
    }
    match entry.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(()),
        _ => Err(InitramfsError::BadEnv(entry.to_string())),
    }
}

/// The contents of [`ENV_FILE`]: each `KEY=VALUE` NUL-terminated.
pub fn encode_env(env: &[String]) -> Result<Vec<u8>, InitramfsError> {
    let mut out = Vec::new();
    for entry in env {
        check_env(entry)?;
        out.extend_from_slice(entry.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// Whether a word after `--` names a host program rather than a built-in
/// workload: it contains a '/' or names an existing file.
pub fn is_program_word(word: &OsStr) -> bool {
    word.as_bytes().contains(&b'/') || Path::new(word).is_file()
}

/// Check that `bytes` is a 64-bit little-endian x86-64 ELF file.
fn check_elf(path: &Path, bytes: &[u8]) -> Result<(), InitramfsError> {
    let why = if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        "no ELF magic"
    } else if bytes.get(4) != Some(&2) {
        "not a 64-bit ELF"
    } else if bytes.get(5) != Some(&1) {
        "not little-endian"
    } else if bytes.get(18..20) != Some([62u8, 0].as_slice()) {
        "machine is not x86-64"
    } else {
        return Ok(());
    };
    Err(InitramfsError::NotElf {
        path: path.to_path_buf(),
        why,
    })
}

/// Read a regular host file: its bytes and permission bits.
fn read_host_file(what: &'static str, path: &Path) -> Result<(Vec<u8>, u32), InitramfsError> {
    let read_err = |source| InitramfsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(InitramfsError::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    Ok((bytes, meta.permissions().mode() & 0o777))
}

/// `--file HOST[:GUEST]`: a host file and where it goes in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub host: PathBuf,
    /// Absolute guest path.
    pub guest: String,
}

impl FromStr for FileSpec {
    type Err = InitramfsError;

    /// `HOST` goes to `/<file name of HOST>`; `HOST:/dir/` to
    /// `/dir/<file name of HOST>`; `HOST:/path` to `/path`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InitramfsError::BadFileSpec {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        let (host, guest) = match spec.split_once(':') {
            Some((h, g)) => (h, Some(g)),
            None => (spec, None),
        };
        if host.is_empty() {
            return Err(bad("HOST is empty"));
        }
        let file_name = || {
            Path::new(host)
                .file_name()
                .and_then(OsStr::to_str)
                .ok_or_else(|| bad("HOST does not end in a file name"))
        };
        let guest = match guest {
            None => format!("/{}", file_name()?),
            Some(g) if !g.starts_with('/') => {
                return Err(bad(
                    "GUEST must be an absolute guest path, e.g. data.txt:/data/data.txt",
                ))
            }
            Some(g) if g.ends_with('/') => format!("{g}{}", file_name()?),
            Some(g) => g.to_string(),
        };
        archive_name(&guest).map_err(|e| bad(&e.to_string()))?;
        Ok(FileSpec {
            host: PathBuf::from(host),
            guest,
        })
    }
}

/// What a run packs for the guest.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSpec {
    /// PROGRAM and its arguments: `program[0]` is the host path exactly as
    /// the user typed it, and becomes `argv[0]`. Empty: no program.
    pub program: Vec<OsString>,
    pub files: Vec<FileSpec>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// The user's own newc archive; the host's entries go after its entries.
    pub initrd: Option<PathBuf>,
}

impl ArchiveSpec {
    /// Whether there is nothing to pack (then the guest gets no module).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
            && self.files.is_empty()
            && self.env.is_empty()
            && self.initrd.is_none()
    }

    /// The archive, or `None` when there is nothing to pack.
    pub fn build(&self) -> Result<Option<Vec<u8>>, InitramfsError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.build_archive().map(Some)
    }

    /// The archive (just a trailer when there is nothing to pack): the
    /// `--initrd` entries, the program at `/bin/<file name>`, the `--file`s,
    /// then [`ARGV_FILE`] and [`ENV_FILE`] (this one only if there is an
    /// environment). Reads every file named on the host.
    pub fn build_archive(&self) -> Result<Vec<u8>, InitramfsError> {
        if self.program.is_empty() && !self.env.is_empty() {
            return Err(InitramfsError::EnvWithoutProgram);
        }
        let mut fs = match &self.initrd {
            Some(path) => {
                let (bytes, _) = read_host_file("--initrd", path)?;
                Initramfs::from_archive(&bytes).map_err(|e| InitramfsError::Initrd {
                    path: path.clone(),
                    source: Box::new(e),
                })?
            }
            None => Initramfs::new(),
        };
        let mut control = None;
        if let Some(word) = self.program.first() {
            if !is_program_word(word) {
                return Err(InitramfsError::NoSuchProgram(
                    word.to_string_lossy().into_owned(),
                ));
            }
            let path = Path::new(word);
            let (bytes, _) = read_host_file("program", path)?;
            check_elf(path, &bytes)?;
            let name = path.file_name().and_then(OsStr::to_str).ok_or_else(|| {
                InitramfsError::BadPath {
                    path: path.display().to_string(),
                    why: "the program's file name is not UTF-8",
                }
            })?;
            let guest = format!("/{PROGRAM_DIR}/{name}");
            let argv = encode_argv(&guest, &self.program)?;
            let env = encode_env(&self.env)?;
            let size = argv.len().saturating_add(env.len());
            if size > ARGS_MAX {
                return Err(InitramfsError::ArgsTooLarge { size });
            }
            fs.add_file(&guest, &bytes, PROGRAM_MODE)?;
            control = Some((argv, env));
        }
        for file in &self.files {
            let (bytes, perm) = read_host_file("--file", &file.host)?;
            fs.add_file(&file.guest, &bytes, S_IFREG | perm)?;
        }
        if let Some((argv, env)) = control {
            fs.add_file(ARGV_FILE, &argv, CONTROL_MODE)?;
            if !env.is_empty() {
                fs.add_file(ENV_FILE, &env, CONTROL_MODE)?;
            }
        }
        Ok(fs.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry as an independent reader sees it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Parsed {
        name: String,
        mode: u32,
        nlink: u32,
        ino: u32,
        data: Vec<u8>,
    }

    /// A small newc reader, written from the format's description rather
    /// than from the writer: checks magic, hex fields, NUL-terminated names,
    /// 4-byte alignment of names and data, and that the archive ends right
    /// after a trailer (and its padding).
    fn parse(archive: &[u8]) -> Vec<Parsed> {
        let entries = parse_raw(archive);
        for e in &entries {
            assert!(!e.name.starts_with('/'), "{}", e.name);
        }
        entries
    }

    /// [`parse`] without the check of names.
    fn parse_raw(archive: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            assert_eq!(off % 4, 0, "entry at {off} not 4-aligned");
            let h = &archive[off..off + 110];
            assert_eq!(&h[..6], b"070701", "magic at {off}");
            let f = |i: usize| {
                let s = std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap();
                assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
                u32::from_str_radix(s, 16).unwrap()
            };
            let (namesize, filesize) = (f(11) as usize, f(6) as usize);
            let name = &archive[off + 110..off + 110 + namesize];
            assert_eq!(*name.last().unwrap(), 0);
            let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
            let data_off = (off + 110 + namesize).div_ceil(4) * 4;
            assert!(archive[off + 110 + namesize..data_off]
                .iter()
                .all(|&b| b == 0));
            let data = archive[data_off..data_off + filesize].to_vec();
            let end = (data_off + filesize).div_ceil(4) * 4;
            assert!(archive[data_off + filesize..end].iter().all(|&b| b == 0));
            off = end;
            if name == "TRAILER!!!" {
                assert_eq!((f(1), filesize), (0, 0));
                assert_eq!(off, archive.len(), "bytes after the trailer");
                return out;
            }
            out.push(Parsed {
                name,
                mode: f(1),
                nlink: f(4),
                ino: f(0),
                data,
            });
        }
    }

    fn names(entries: &[Parsed]) -> Vec<&str> {
        entries.iter().map(|e| e.name.as_str()).collect()
    }

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn writes_newc_with_parents_once() {
        let mut fs = Initramfs::new();
        fs.add_file("/bin/hello", b"\x7fELF....", 0o100755).unwrap();
        fs.add_file("bin/two", b"abc", 0o644).unwrap();
        fs.add_dir("/usr/share/doc").unwrap();
        fs.add_dir("usr//share/").unwrap();
        fs.add_file("/usr/share/x", &[], 0o100600).unwrap();
        let archive = fs.finish();
        assert_eq!(archive.len() % 4, 0);
        let e = parse(&archive);
        assert_eq!(
            names(&e),
            [
                "bin",
                "bin/hello",
                "bin/two",
                "usr",
                "usr/share",
                "usr/share/doc",
                "usr/share/x"
            ]
        );
        assert_eq!((e[0].mode, e[0].nlink), (0o040755, 2));
        assert_eq!((e[1].mode, e[1].nlink), (0o100755, 1));
        assert_eq!(e[1].data, b"\x7fELF....");
        assert_eq!((e[2].mode, e[2].data.as_slice()), (0o100644, &b"abc"[..]));
        assert_eq!((e[6].mode, e[6].data.len()), (0o100600, 0));
        // Distinct inodes, so nothing looks like a hard link.
        let mut inos: Vec<u32> = e.iter().map(|e| e.ino).collect();
        inos.dedup();
        assert_eq!(inos.len(), e.len());
        // The empty archive is just a trailer.
        assert!(parse(&Initramfs::new().finish()).is_empty());
    }

    #[test]
    fn alignment_for_every_name_and_data_length() {
        for name_len in 1..=8 {
            for data_len in 0..=8 {
                let mut fs = Initramfs::new();
                let name = "n".repeat(name_len);
                let data = vec![0xa5; data_len];
                fs.add_file(&name, &data, 0o644).unwrap();
                fs.add_file("z", b"z", 0o644).unwrap();
                let e = parse(&fs.finish());
                assert_eq!(names(&e), [name.as_str(), "z"]);
                assert_eq!(e[0].data, data);
            }
        }
    }

    #[test]
    fn refuses_bad_names_and_conflicts() {
        let mut fs = Initramfs::new();
        fs.add_file("/etc/motd", b"hi", 0o644).unwrap();
        assert!(matches!(
            fs.add_file("etc/motd", b"again", 0o644),
            Err(InitramfsError::Duplicate { .. })
        ));
        assert!(matches!(
            fs.add_file("/etc/motd/x", b"", 0o644),
            Err(InitramfsError::ParentNotDir { .. })
        ));
        assert!(matches!(
            fs.add_dir("/etc/motd"),
            Err(InitramfsError::ParentNotDir { .. })
        ));
        assert!(matches!(
            fs.add_file("/etc", b"", 0o644),
            Err(InitramfsError::Duplicate { .. })
        ));
        for bad in ["", "/", "a/../b", "./a", "a\0b", "TRAILER!!!"] {
            assert!(
                matches!(
                    fs.add_file(bad, b"", 0o644),
                    Err(InitramfsError::BadPath { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            fs.add_file("/dev/null", b"", 0o020666),
            Err(InitramfsError::BadMode { .. })
        ));
        // The archive is still well formed after refusals.
        assert_eq!(names(&parse(&fs.finish())), ["etc", "etc/motd"]);
    }

    #[test]
    fn appends_after_a_user_archive() {
        let mut user = Initramfs::new();
        user.add_file("/etc/motd", b"hello\n", 0o644).unwrap();
        user.add_dir("/bin").unwrap();
        let mut base = user.finish();
        base.resize(512, 0); // cpio pads its output to 512 bytes
        let mut fs = Initramfs::from_archive(&base).unwrap();
        fs.add_file("/bin/prog", b"code", PROGRAM_MODE).unwrap();
        assert!(matches!(
            fs.add_file("/etc/motd", b"", 0o644),
            Err(InitramfsError::InBase { .. })
        ));
        let e = parse(&fs.finish());
        // "bin" is the user's directory, not added a second time.
        assert_eq!(names(&e), ["etc", "etc/motd", "bin", "bin/prog"]);
        assert_eq!(e[1].data, b"hello\n");
        assert!(e[3].ino > e[2].ino);

        // Names such as "./etc" or "/etc" in the user's archive are the
        // same files as ours.
        let mut raw = Vec::new();
        for (name, mode) in [(".", DIR_MODE), ("./etc", DIR_MODE), ("/etc/x", 0o100644)] {
            Initramfs::header(&mut raw, 7, mode, 1, 0, name.len() as u32 + 1);
            raw.extend_from_slice(name.as_bytes());
            raw.push(0);
            pad4(&mut raw);
        }
        let mut fs = Initramfs::from_archive(
            &Initramfs {
                out: raw,
                ..Initramfs::default()
            }
            .finish(),
        )
        .unwrap();
        assert!(matches!(
            fs.add_file("etc/x", b"", 0o644),
            Err(InitramfsError::InBase { .. })
        ));
        fs.add_file("etc/y", b"", 0o644).unwrap();
        let e = parse_raw(&fs.finish());
        assert_eq!(names(&e), [".", "./etc", "/etc/x", "etc/y"]);
        assert_eq!(e[3].ino, 8);

        // Two concatenated archives are one base.
        let mut second = Initramfs::new();
        second.add_file("/two", b"2", 0o644).unwrap();
        let mut both = base.clone();
        both.extend_from_slice(&second.finish());
        let fs = Initramfs::from_archive(&both).unwrap();
        assert_eq!(
            names(&parse(&fs.finish())),
            ["etc", "etc/motd", "bin", "two"]
        );
    }

    #[test]
    fn rejects_what_is_not_newc() {
        let not = |bytes: &[u8], hint: &str| match Initramfs::from_archive(bytes) {
            Err(InitramfsError::NotNewc(why)) => assert!(why.contains(hint), "{why}"),
            other => panic!("{other:?}"),
        };
        not(b"", "empty");
        not(b"\x1f\x8b\x08\0\0\0", "gzip");
        not(b"070707000000", "070707");
        not(b"hello world", "070701");
        let mut fs = Initramfs::new();
        fs.add_file("a", b"data", 0o644).unwrap();
        let good = fs.finish();
        for cut in [10, 110, 115, 120, good.len() - 8] {
            assert!(
                matches!(
                    Initramfs::from_archive(&good[..cut]),
                    Err(InitramfsError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        let mut junk = good.clone();
        junk.extend_from_slice(b"\0\0junk");
        assert!(matches!(
            Initramfs::from_archive(&junk),
            Err(InitramfsError::Malformed(_))
        ));
        let mut bad_hex = good.clone();
        bad_hex[6 + 6 * 8] = b'g';
        assert!(Initramfs::from_archive(&bad_hex).is_err());
        // Names: UTF-8, one NUL at the end.
        for bad_name in [&b"\xff\0"[..], b"\0\0"] {
            let mut raw = Vec::new();
            Initramfs::header(&mut raw, 1, 0o100644, 1, 0, 3);
            raw.extend_from_slice(b"a");
            raw.extend_from_slice(bad_name);
            pad4(&mut raw);
            let archive = Initramfs {
                out: raw,
                ..Initramfs::default()
            }
            .finish();
            assert!(matches!(
                Initramfs::from_archive(&archive),
                Err(InitramfsError::Malformed(_))
            ));
        }
        // The checksummed variant (070702) is newc too.
        let mut crc = good.clone();
        crc[5] = b'2';
        let fs = Initramfs::from_archive(&crc).unwrap();
        let out = fs.finish();
        assert_eq!(&out[..6], b"070702");
        assert_eq!(&out[out.len() - 124..][..6], b"070701");
    }

    #[test]
    fn argv_and_env_encoding() {
        assert_eq!(
            encode_argv("/bin/hello", &os(&["./hello", "world", ""])).unwrap(),
            b"/bin/hello\0./hello\0world\0\0"
        );
        assert!(matches!(
            encode_argv("/bin/x", &os(&["x", "a\0b"])),
            Err(InitramfsError::ArgNul { index: 1 })
        ));
        assert_eq!(
            encode_env(&["A=1".into(), "PATH=/bin:/usr/bin".into(), "E=".into()]).unwrap(),
            b"A=1\0PATH=/bin:/usr/bin\0E=\0"
        );
        assert!(encode_env(&[]).unwrap().is_empty());
        for bad in ["A", "=1", ""] {
            assert!(matches!(check_env(bad), Err(InitramfsError::BadEnv(_))));
        }
        assert!(matches!(check_env("A=\0"), Err(InitramfsError::EnvNul)));
    }

    #[test]
    fn file_specs() {
        let f: FileSpec = "data/in.txt".parse().unwrap();
        assert_eq!(
            (f.host, f.guest),
            (PathBuf::from("data/in.txt"), "/in.txt".into())
        );
        let f: FileSpec = "in.txt:/etc/conf".parse().unwrap();
        assert_eq!(
            (f.host, f.guest),
            (PathBuf::from("in.txt"), "/etc/conf".into())
        );
        let f: FileSpec = "a/in.txt:/etc/".parse().unwrap();
        assert_eq!(f.guest, "/etc/in.txt");
        let f: FileSpec = "in.txt:/".parse().unwrap();
        assert_eq!(f.guest, "/in.txt");
        for bad in [
            "in.txt:etc/conf",
            ":/x",
            "in.txt:/a/../b",
            "..",
            "x:/TRAILER!!!",
        ] {
            assert!(bad.parse::<FileSpec>().is_err(), "{bad}");
        }
    }

    struct Dir(tempfile::TempDir);
    impl Dir {
        fn new() -> Self {
            Dir(tempfile::tempdir().unwrap())
        }
        fn write(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
            let p = self.0.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }

    /// The start of a 64-bit little-endian x86-64 ELF header.
    fn fake_elf() -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[18] = 62;
        b
    }

    fn program_spec(d: &Dir) -> (ArchiveSpec, PathBuf) {
        let prog = d.write("hello", &fake_elf(), 0o755);
        let data = d.write("data.txt", b"some data", 0o640);
        let spec = ArchiveSpec {
            program: vec![prog.clone().into(), "-x".into(), "two words".into()],
            files: vec![
                format!("{}:/etc/", data.display()).parse().unwrap(),
                data.to_str().unwrap().parse().unwrap(),
            ],
            env: vec!["HOME=/".into(), "K=a=b".into()],
            initrd: None,
        };
        (spec, prog)
    }

    #[test]
    fn program_archive() {
        let d = Dir::new();
        let (spec, prog) = program_spec(&d);
        let e = parse(&spec.build().unwrap().unwrap());
        assert_eq!(
            names(&e),
            [
                "bin",
                "bin/hello",
                "etc",
                "etc/data.txt",
                "data.txt",
                ".mobius",
                ".mobius/argv",
                ".mobius/env"
            ]
        );
        assert_eq!((e[1].mode, e[1].data.clone()), (0o100755, fake_elf()));
        assert_eq!(
            (e[3].mode, e[3].data.as_slice()),
            (0o100640, &b"some data"[..])
        );
        let mut argv = b"/bin/hello\0".to_vec();
        argv.extend_from_slice(prog.as_os_str().as_bytes());
        argv.extend_from_slice(b"\0-x\0two words\0");
        assert_eq!(e[6].data, argv);
        assert_eq!(e[7].data, b"HOME=/\0K=a=b\0");
        assert_eq!(e[6].mode, CONTROL_MODE);

        // No environment: no env file. Nothing at all: no archive.
        let quiet = ArchiveSpec {
            env: vec![],
            files: vec![],
            ..spec.clone()
        };
        let e = parse(&quiet.build_archive().unwrap());
        assert_eq!(names(&e), ["bin", "bin/hello", ".mobius", ".mobius/argv"]);
        assert!(ArchiveSpec::default().build().unwrap().is_none());
    }

    #[test]
    fn program_archive_errors() {
        let d = Dir::new();
        let (spec, prog) = program_spec(&d);
        let with_program = |words: Vec<OsString>| ArchiveSpec {
            program: words,
            ..spec.clone()
        };
        let err = |s: ArchiveSpec| s.build().unwrap_err();
        let missing = d.0.path().join("nope");
        assert!(matches!(
            err(with_program(vec![missing.clone().into()])),
            InitramfsError::Read {
                what: "program",
                ..
            }
        ));
        assert!(matches!(
            err(with_program(os(&["surely-no-such-file-here"]))),
            InitramfsError::NoSuchProgram(_)
        ));
        assert!(matches!(
            err(with_program(vec![d.0.path().into()])),
            InitramfsError::NotAFile { .. }
        ));
        let script = d.write("script", b"#!/bin/sh\n", 0o755);
        assert!(matches!(
            err(with_program(vec![script.into()])),
            InitramfsError::NotElf { .. }
        ));
        let big = "x".repeat(ARGS_MAX);
        assert!(matches!(
            err(with_program(vec![prog.clone().into(), big.into()])),
            InitramfsError::ArgsTooLarge { .. }
        ));
        // Exactly ARGS_MAX bytes of argv + env fit.
        let used = "/bin/hello\0".len() + prog.as_os_str().len() + 1 + "HOME=/\0K=a=b\0".len();
        let fill = "y".repeat(ARGS_MAX - used - 1);
        let exact = ArchiveSpec {
            files: vec![],
            ..with_program(vec![prog.clone().into(), fill.into()])
        };
        exact.build().unwrap();
        let no_prog = ArchiveSpec {
            program: vec![],
            ..spec.clone()
        };
        assert!(matches!(err(no_prog), InitramfsError::EnvWithoutProgram));
        let missing_file = ArchiveSpec {
            files: vec![FileSpec {
                host: missing,
                guest: "/x".into(),
            }],
            ..spec.clone()
        };
        assert!(matches!(
            err(missing_file),
            InitramfsError::Read { what: "--file", .. }
        ));
        let clash = ArchiveSpec {
            files: vec![format!("{}:/bin/hello", prog.display()).parse().unwrap()],
            ..spec.clone()
        };
        assert!(matches!(err(clash), InitramfsError::Duplicate { .. }));
        let not_cpio = d.write("initrd.gz", b"\x1f\x8b\x08\0rest", 0o644);
        let e = err(ArchiveSpec {
            initrd: Some(not_cpio),
            ..spec.clone()
        });
        assert!(e.to_string().contains("gzip"), "{e}");
        assert!(e.to_string().starts_with("--initrd "), "{e}");
    }

    #[test]
    fn program_after_initrd() {
        let d = Dir::new();
        let (spec, _) = program_spec(&d);
        let mut user = Initramfs::new();
        user.add_file("/etc/motd", b"motd", 0o644).unwrap();
        let initrd = d.write("user.cpio", &user.finish(), 0o644);
        let spec = ArchiveSpec {
            initrd: Some(initrd),
            files: vec![],
            ..spec
        };
        let e = parse(&spec.build().unwrap().unwrap());
        assert_eq!(
            names(&e),
            [
                "etc",
                "etc/motd",
                "bin",
                "bin/hello",
                ".mobius",
                ".mobius/argv",
                ".mobius/env"
            ]
        );
    }

    /// GNU cpio, when installed, lists and extracts what we write, and
    /// writes what we read; skipped without it.
    #[test]
    fn gnu_cpio_agrees() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        if Command::new("cpio").arg("--version").output().is_err() {
            eprintln!("SKIP: cpio not installed");
            return;
        }
        let d = Dir::new();
        let (spec, _) = program_spec(&d);
        let archive = spec.build_archive().unwrap();
        let out = d.0.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let cpio = |args: &[&str], input: &[u8]| {
            let mut child = Command::new("cpio")
                .args(args)
                .current_dir(&out)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        };
        let listed = String::from_utf8(cpio(&["-it", "--quiet"], &archive)).unwrap();
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            [
                "bin",
                "bin/hello",
                "etc",
                "etc/data.txt",
                "data.txt",
                ".mobius",
                ".mobius/argv",
                ".mobius/env"
            ]
        );
        cpio(&["-id", "--quiet", "--no-absolute-filenames"], &archive);
        assert_eq!(std::fs::read(out.join("bin/hello")).unwrap(), fake_elf());
        let mode = std::fs::metadata(out.join("bin/hello"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read(out.join(".mobius/env")).unwrap(),
            b"HOME=/\0K=a=b\0"
        );

        // An archive written by cpio is a valid --initrd base.
        let listing = b"./bin\n./bin/hello\n./data.txt\n";
        let theirs = cpio(&["-o", "-H", "newc", "--quiet"], listing);
        assert_eq!(theirs.len() % 512, 0);
        let mut fs = Initramfs::from_archive(&theirs).unwrap();
        assert!(matches!(
            fs.add_file("/bin/hello", b"", 0o755),
            Err(InitramfsError::InBase { .. })
        ));
        fs.add_file("/bin/more", b"more", 0o755).unwrap();
        let e = parse(&fs.finish());
        assert_eq!(names(&e), ["bin", "bin/hello", "data.txt", "bin/more"]);
        assert_eq!(e[1].data, fake_elf());
    }
}
