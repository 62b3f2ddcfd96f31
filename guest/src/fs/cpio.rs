//! A zero-copy reader of `newc` cpio archives (`cpio -H newc`, the format of
//! Linux's initramfs), read in place.
//!
//! Each member is a 110-byte ASCII header — the magic `"070701"` (or
//! `"070702"`, the "crc" variant whose `check` field is the 32-bit sum of a
//! regular file's data bytes) and thirteen 8-digit hex fields (`ino`, `mode`, `uid`, `gid`,
//! `nlink`, `mtime`, `filesize`, `devmajor`, `devminor`, `rdevmajor`,
//! `rdevminor`, `namesize`, `check`) — then the NUL-terminated name
//! (`namesize` counts the NUL), padded so the data starts 4-aligned, then
//! `filesize` bytes of data, padded to 4. The member named `TRAILER!!!` ends
//! the archive; anything after it is ignored.
//!
//! [`Archive::new`] validates the whole archive once; afterwards nothing
//! fails. Nothing here panics on any input: every offset is computed with
//! checked arithmetic and every slice taken with `get`.
//!
//! Paths are compared component by component: empty and `.` components are
//! skipped, so `"/bin/x"`, `"bin/x"`, `"./bin/x"`, `"bin//x/"` are one path and
//! `"."`, `"/"`, `""` name the root. `..` is not resolved (it is an ordinary
//! component here).
use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// File-type bits of `mode` (`S_IFMT`).
pub const S_IFMT: u32 = 0o170_000;
/// Directory.
pub const S_IFDIR: u32 = 0o040_000;
/// Regular file.
pub const S_IFREG: u32 = 0o100_000;
/// Symbolic link (the data is the target).
pub const S_IFLNK: u32 = 0o120_000;

/// Mode reported for directories that exist only as a prefix of a path.
pub const IMPLICIT_DIR_MODE: u32 = S_IFDIR | 0o755;

const HEADER_LEN: usize = 110;
const MAGIC_NEWC: &[u8; 6] = b"070701";
const MAGIC_CRC: &[u8; 6] = b"070702";
const TRAILER: &[u8] = b"TRAILER!!!";

const FIELD_NAMES: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];
const F_INO: usize = 0;
const F_MODE: usize = 1;
const F_NLINK: usize = 4;
const F_MTIME: usize = 5;
const F_FILESIZE: usize = 6;
const F_NAMESIZE: usize = 11;
const F_CHECK: usize = 12;

/// Why an archive was rejected. Offsets are byte offsets of the member's
/// header from the start of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpioError {
    /// The header does not start with `070701` or `070702`.
    BadMagic { offset: usize },
    /// A header field holds something other than 8 hex digits.
    BadHex { offset: usize, field: &'static str },
    /// Fewer than 110 bytes left for a header.
    TruncatedHeader { offset: usize },
    /// The name runs past the end of the archive.
    TruncatedName { offset: usize },
    /// The data (or the padding before it) runs past the end of the archive.
    TruncatedData { offset: usize },
    /// `namesize` is 0, or the name's last byte is not its only NUL.
    NameNotTerminated { offset: usize },
    /// The name is not UTF-8.
    NameNotUtf8 { offset: usize },
    /// A `070702` regular file whose `check` is not the sum of its data bytes.
    BadChecksum { offset: usize },
    /// An offset or size computation overflowed.
    SizeOverflow { offset: usize },
    /// The archive ended without a `TRAILER!!!` member.
    NoTrailer,
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CpioError::BadMagic { offset } => {
                write!(
                    f,
                    "cpio: bad magic at offset {offset} (want 070701 or 070702)"
                )
            }
            CpioError::BadHex { offset, field } => {
                write!(
                    f,
                    "cpio: header at offset {offset}: field {field} is not 8 hex digits"
                )
            }
            CpioError::TruncatedHeader { offset } => {
                write!(f, "cpio: truncated header at offset {offset}")
            }
            CpioError::TruncatedName { offset } => {
                write!(f, "cpio: member at offset {offset}: name runs past the end")
            }
            CpioError::TruncatedData { offset } => {
                write!(f, "cpio: member at offset {offset}: data runs past the end")
            }
            CpioError::NameNotTerminated { offset } => {
                write!(
                    f,
                    "cpio: member at offset {offset}: name is not NUL-terminated"
                )
            }
            CpioError::NameNotUtf8 { offset } => {
                write!(f, "cpio: member at offset {offset}: name is not UTF-8")
            }
            CpioError::BadChecksum { offset } => {
                write!(f, "cpio: member at offset {offset}: data checksum mismatch")
            }
            CpioError::SizeOverflow { offset } => {
                write!(f, "cpio: member at offset {offset}: size overflows")
            }
            CpioError::NoTrailer => write!(f, "cpio: no TRAILER!!! member"),
        }
    }
}

/// One member of the archive, borrowing the archive's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Normalised: no leading `/` or `./`, no trailing `/`; `""` is the root.
    /// Interior `//` or `/./` are kept as they are in the archive (lookups
    /// compare components, so they still match).
    pub name: &'a str,
    pub mode: u32,
    pub ino: u32,
    pub mtime: u32,
    pub nlink: u32,
    /// The member's data: file contents, or a symlink's target.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// `S_IFMT` bits say directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    /// `S_IFMT` bits say regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    /// `S_IFMT` bits say symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// An immediate child of a directory, from [`Archive::read_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// One path component (no `/`).
    pub name: &'a str,
    /// The member's mode, or [`IMPLICIT_DIR_MODE`] for a directory that only
    /// exists as a prefix of a path.
    pub mode: u32,
    /// The member's inode number, 0 for an implicit directory.
    pub ino: u32,
}

impl DirEntry<'_> {
    /// `S_IFMT` bits say directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// A validated archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive<'a> {
    data: &'a [u8],
    len: usize,
}

impl<'a> Archive<'a> {
    /// Validates every member up to and including the trailer.
    pub fn new(data: &'a [u8]) -> Result<Archive<'a>, CpioError> {
        Self::validate(data, |_| {})
    }

    /// [`Archive::new`] and [`Archive::index`] in one pass over the
    /// headers (the kernel reads each header once at boot).
    pub fn new_indexed(data: &'a [u8]) -> Result<(Archive<'a>, Index<'a>), CpioError> {
        let mut index = IndexBuilder::default();
        let archive = Self::validate(data, |e| index.add(e))?;
        Ok((archive, index.finish()))
    }

    /// Parse every member, handing each to `each`.
    fn validate(data: &'a [u8], mut each: impl FnMut(Entry<'a>)) -> Result<Archive<'a>, CpioError> {
        let mut pos = 0usize;
        let mut len = 0usize;
        loop {
            match parse_member(data, pos)? {
                Member::Trailer => return Ok(Archive { data, len }),
                Member::Entry(e, next) => {
                    each(e);
                    len = len.saturating_add(1);
                    pos = next;
                }
            }
        }
    }

    /// Number of members, the trailer not counted.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the archive.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// No members besides the trailer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every member in archive order (the trailer excluded), duplicates
    /// included.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            data: self.data,
            pos: 0,
            done: false,
        }
    }

    /// The last member named `path` (later members with the same name win,
    /// as when Linux unpacks an initramfs). Only members present in the
    /// archive are found: a directory that exists only as a prefix of other
    /// paths (and the root, unless the archive has a `.` member) is not —
    /// use [`Archive::is_dir`] for those.
    ///
    /// A regular file with `nlink >= 2` and no data is a hard link whose
    /// data `cpio` stored with another member of the same `ino` and mode;
    /// its `data` is taken from the last such member that has data.
    pub fn find(&self, path: &str) -> Option<Entry<'a>> {
        let mut found = self.entries().filter(|e| same_path(e.name, path)).last()?;
        if found.is_file() && found.nlink >= 2 && found.data.is_empty() {
            if let Some(other) = self
                .entries()
                .filter(|e| {
                    e.ino == found.ino && e.mode == found.mode && e.nlink >= 2 && !e.data.is_empty()
                })
                .last()
            {
                found.data = other.data;
            }
        }
        Some(found)
    }

    /// Every member by path, for look-ups without a scan ([`Index`]): two
    /// passes over the headers, whatever the number of members.
    pub fn index(&self) -> Index<'a> {
        let mut index = IndexBuilder::default();
        self.entries().for_each(|e| index.add(e));
        index.finish()
    }

    /// Whether `path` is a directory: the root; or the last member named
    /// `path` is a directory; or no member is named `path` but some member's
    /// path lies under it (an implicit directory).
    pub fn is_dir(&self, path: &str) -> bool {
        if components(path).next().is_none() {
            return true;
        }
        match self.entries().filter(|e| same_path(e.name, path)).last() {
            Some(e) => e.is_dir(),
            None => self.entries().any(|e| {
                strip_prefix_components(e.name, path).is_some_and(|mut r| r.next().is_some())
            }),
        }
    }

    /// The immediate children of directory `dir`, each name once, sorted by
    /// name (bytewise). A child present as a member reports its last
    /// member's mode and ino (even if it is not a directory); a child that
    /// only exists as a prefix of deeper paths reports [`IMPLICIT_DIR_MODE`]
    /// and ino 0.
    ///
    /// Empty if `dir` is missing, is not a directory, or has no children:
    /// callers that must tell these apart ask [`Archive::is_dir`] first.
    pub fn read_dir(&self, dir: &str) -> Vec<DirEntry<'a>> {
        if !self.is_dir(dir) {
            return Vec::new();
        }
        // name -> (mode, ino, explicit)
        let mut children: BTreeMap<&'a str, (u32, u32, bool)> = BTreeMap::new();
        for e in self.entries() {
            let Some(mut rest) = strip_prefix_components(e.name, dir) else {
                continue;
            };
            let Some(child) = rest.next() else { continue };
            if rest.next().is_none() {
                children.insert(child, (e.mode, e.ino, true));
            } else {
                children
                    .entry(child)
                    .or_insert((IMPLICIT_DIR_MODE, 0, false));
            }
        }
        children
            .into_iter()
            .map(|(name, (mode, ino, _))| DirEntry { name, mode, ino })
            .collect()
    }
}

/// The archive's members by path, built once ([`Archive::index`]):
/// [`Index::find`], [`Index::is_dir`] and [`Index::read_dir`] answer as
/// the archive's own scans do, with a map search instead of parsing every
/// header again (each path look-up of the kernel's namespace asks them).
#[derive(Debug, Clone, Default)]
pub struct Index<'a> {
    /// Canonical path (components joined by `/`, `""` the root) → the
    /// member [`Archive::find`] gives for it.
    members: BTreeMap<String, Entry<'a>>,
}

/// An [`Index`] being built, member by member in archive order.
#[derive(Default)]
struct IndexBuilder<'a> {
    members: BTreeMap<String, Entry<'a>>,
    /// The data of hard links, as `find` takes it: from the last member
    /// of the same inode and mode that has data.
    link_data: BTreeMap<(u32, u32), &'a [u8]>,
}

impl<'a> IndexBuilder<'a> {
    fn add(&mut self, e: Entry<'a>) {
        if e.is_file() && e.nlink >= 2 && !e.data.is_empty() {
            self.link_data.insert((e.ino, e.mode), e.data);
        }
        // A later member of the same name wins.
        self.members.insert(canonical(e.name).into_owned(), e);
    }

    fn finish(mut self) -> Index<'a> {
        if !self.link_data.is_empty() {
            for e in self.members.values_mut() {
                if e.is_file() && e.nlink >= 2 && e.data.is_empty() {
                    if let Some(d) = self.link_data.get(&(e.ino, e.mode)) {
                        e.data = d;
                    }
                }
            }
        }
        Index {
            members: self.members,
        }
    }
}

/// `p`'s components joined by `/` (the index's key): `p` itself when it
/// is in that form already (no empty or `.` component), as the kernel's
/// own paths are, without building a string.
fn canonical(p: &str) -> Cow<'_, str> {
    if is_canonical(p) {
        return Cow::Borrowed(p);
    }
    let mut out = String::new();
    for c in components(p) {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(c);
    }
    Cow::Owned(out)
}

/// Whether `p` is `""` or components joined by single `/`s, none `.`.
fn is_canonical(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() {
        return true;
    }
    let mut start = 0;
    for i in 0..=b.len() {
        if i == b.len() || b[i] == b'/' {
            let c = &b[start..i];
            if c.is_empty() || c == b"." {
                return false;
            }
            start = i + 1;
        }
    }
    true
}

impl<'a> Index<'a> {
    /// See [`Archive::find`].
    pub fn find(&self, path: &str) -> Option<Entry<'a>> {
        self.members.get(&*canonical(path)).copied()
    }

    /// The members strictly under directory `key` (canonical), with the
    /// rest of their path.
    fn under<'s>(&'s self, key: &str) -> impl Iterator<Item = (&'s str, &'s Entry<'a>)> + 's {
        let prefix = if key.is_empty() {
            String::new()
        } else {
            alloc::format!("{key}/")
        };
        let start = prefix.clone();
        let len = prefix.len();
        self.members
            .range(start..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter_map(move |(k, e)| {
                let rest = &k[len..];
                (!rest.is_empty()).then_some((rest, e))
            })
    }

    /// See [`Archive::is_dir`].
    pub fn is_dir(&self, path: &str) -> bool {
        let key = canonical(path);
        if key.is_empty() {
            return true;
        }
        match self.members.get(&*key) {
            Some(e) => e.is_dir(),
            None => self.under(&key).next().is_some(),
        }
    }

    /// See [`Archive::read_dir`].
    pub fn read_dir(&self, dir: &str) -> Vec<DirEntry<'_>> {
        if !self.is_dir(dir) {
            return Vec::new();
        }
        let key = canonical(dir);
        let mut children: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for (rest, e) in self.under(&key) {
            match rest.split_once('/') {
                None => {
                    children.insert(rest, (e.mode, e.ino));
                }
                Some((child, _)) => {
                    children.entry(child).or_insert((IMPLICIT_DIR_MODE, 0));
                }
            }
        }
        children
            .into_iter()
            .map(|(name, (mode, ino))| DirEntry { name, mode, ino })
            .collect()
    }
}

/// Iterator over an archive's members, from [`Archive::entries`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.done {
            return None;
        }
        match parse_member(self.data, self.pos) {
            Ok(Member::Entry(e, next)) => {
                self.pos = next;
                Some(e)
            }
            // The trailer, or (impossible once validated) an error.
            _ => {
                self.done = true;
                None
            }
        }
    }
}

impl core::iter::FusedIterator for Entries<'_> {}

/// The path components of `p`, empty and `.` components skipped.
fn components(p: &str) -> impl Iterator<Item = &str> {
    p.split('/').filter(|c| !c.is_empty() && *c != ".")
}

fn same_path(a: &str, b: &str) -> bool {
    components(a).eq(components(b))
}

/// If `prefix`'s components are a prefix of `path`'s, the remaining
/// components of `path`.
fn strip_prefix_components<'p>(
    path: &'p str,
    prefix: &str,
) -> Option<impl Iterator<Item = &'p str>> {
    let mut rest = components(path);
    for want in components(prefix) {
        if rest.next()? != want {
            return None;
        }
    }
    Some(rest)
}

/// Strips leading `/` and `./` and trailing `/`; `"."` becomes `""`.
fn normalise(mut name: &str) -> &str {
    loop {
        if let Some(r) = name.strip_prefix('/') {
            name = r;
        } else if let Some(r) = name.strip_prefix("./") {
            name = r;
        } else {
            break;
        }
    }
    name = name.trim_end_matches('/');
    if name == "." {
        ""
    } else {
        name
    }
}

enum Member<'a> {
    /// The member and the offset of the next header.
    Entry(Entry<'a>, usize),
    Trailer,
}

fn align4(x: usize) -> Option<usize> {
    Some(x.checked_add(3)? & !3)
}

/// Eight ASCII hex digits (either case) as a number: the digits of a
/// header field checked and combined eight at a time in one 64-bit word
/// (a few dozen instructions instead of a loop of a dozen per digit: on
/// kvm_pvm each ring-0 instruction is emulated).
fn hex8(field: &[u8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(field.try_into().ok()?);
    // Per byte b < 0x80: (b + 0x80 - lo) has its high bit set iff b >= lo,
    // and (b + 0x7f - hi) iff b > hi; no byte carries into the next.
    let at_least = |v: u64, lo: u8| v.wrapping_add(ONES * u64::from(0x80 - lo)) & HIGH;
    let above = |v: u64, hi: u8| v.wrapping_add(ONES * u64::from(0x7f - hi)) & HIGH;
    let digit = at_least(x, b'0') & !above(x, b'9');
    let lower = x | (ONES * 0x20);
    let letter = at_least(lower, b'a') & !above(lower, b'f');
    if x & HIGH != 0 || (digit | letter) != HIGH {
        return None;
    }
    // Each byte's value: its low nibble, plus 9 for a letter.
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    // The first digit is the lowest byte and the most significant digit:
    // pair the bytes up, then the pairs, then the halves.
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = ((pairs << 8) | (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    Some((((quads << 16) | (quads >> 32)) & 0xffff_ffff) as u32)
}

fn parse_member(data: &[u8], offset: usize) -> Result<Member<'_>, CpioError> {
    if offset >= data.len() {
        return Err(CpioError::NoTrailer);
    }
    let header_end = offset
        .checked_add(HEADER_LEN)
        .ok_or(CpioError::SizeOverflow { offset })?;
    let Some(header) = data.get(offset..header_end) else {
        // Report a wrong magic before a short header, if there is enough to tell.
        if let Some(m) = data.get(offset..) {
            let n = m.len().min(6);
            if m.get(..n) != MAGIC_NEWC.get(..n) && m.get(..n) != MAGIC_CRC.get(..n) {
                return Err(CpioError::BadMagic { offset });
            }
        }
        return Err(CpioError::TruncatedHeader { offset });
    };
    let magic = header
        .get(..6)
        .ok_or(CpioError::TruncatedHeader { offset })?;
    let crc = if magic == MAGIC_NEWC {
        false
    } else if magic == MAGIC_CRC {
        true
    } else {
        return Err(CpioError::BadMagic { offset });
    };
    let mut fields = [0u32; 13];
    for (i, (slot, name)) in fields.iter_mut().zip(FIELD_NAMES).enumerate() {
        let start = 6 + 8 * i;
        *slot = header
            .get(start..start + 8)
            .and_then(hex8)
            .ok_or(CpioError::BadHex {
                offset,
                field: name,
            })?;
    }
    let overflow = CpioError::SizeOverflow { offset };
    let namesize = usize::try_from(fields[F_NAMESIZE]).map_err(|_| overflow)?;
    let filesize = usize::try_from(fields[F_FILESIZE]).map_err(|_| overflow)?;
    if namesize == 0 {
        return Err(CpioError::NameNotTerminated { offset });
    }
    let name_end = header_end.checked_add(namesize).ok_or(overflow)?;
    let raw_name = data
        .get(header_end..name_end)
        .ok_or(CpioError::TruncatedName { offset })?;
    let (last, body) = raw_name
        .split_last()
        .ok_or(CpioError::NameNotTerminated { offset })?;
    if *last != 0 || body.contains(&0) {
        return Err(CpioError::NameNotTerminated { offset });
    }
    let name = core::str::from_utf8(body).map_err(|_| CpioError::NameNotUtf8 { offset })?;
    if body == TRAILER {
        // Nothing after the trailer's name is looked at (not even padding).
        return Ok(Member::Trailer);
    }
    let data_start = align4(name_end).ok_or(overflow)?;
    let data_end = data_start.checked_add(filesize).ok_or(overflow)?;
    let contents = data
        .get(data_start..data_end)
        .ok_or(CpioError::TruncatedData { offset })?;
    // Only regular files carry a checksum (GNU cpio writes 0 for symlinks;
    // Linux checks it only when copying a regular file).
    if crc && fields[F_MODE] & S_IFMT == S_IFREG {
        let sum = contents
            .iter()
            .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
        if sum != fields[F_CHECK] {
            return Err(CpioError::BadChecksum { offset });
        }
    }
    let next = align4(data_end).ok_or(overflow)?;
    // Only files and links have contents: the data of anything else (a
    // directory's is padding that puts the next file's data on a page
    // boundary, as the host writes it) is skipped, as Linux skips it.
    let kind = fields[F_MODE] & S_IFMT;
    let data = if kind == S_IFREG || kind == S_IFLNK {
        contents
    } else {
        &[]
    };
    Ok(Member::Entry(
        Entry {
            name: normalise(name),
            mode: fields[F_MODE],
            ino: fields[F_INO],
            mtime: fields[F_MTIME],
            nlink: fields[F_NLINK],
            data,
        },
        next,
    ))
}

#[cfg(test)]
mod tests {
    use super::{canonical, hex8};
    use alloc::borrow::Cow;

    /// Canonical paths are used as they are; others are rebuilt.
    #[test]
    fn canonical_borrows_when_it_can() {
        for p in ["", "bin", "bin/hello", ".mobius/argv", "a/..", "a/.b"] {
            assert!(matches!(canonical(p), Cow::Borrowed(q) if q == p), "{p}");
        }
        for (p, want) in [
            ("/", ""),
            (".", ""),
            ("/bin", "bin"),
            ("bin/", "bin"),
            ("./bin//x", "bin/x"),
            ("bin/./x", "bin/x"),
            ("bin/.", "bin"),
        ] {
            assert!(
                matches!(canonical(p), Cow::Owned(ref q) if q == want),
                "{p}"
            );
        }
    }

    /// The digit-at-a-time reading `hex8` replaces.
    fn reference(field: &[u8]) -> Option<u32> {
        let mut v = 0u32;
        for &b in field {
            v = (v << 4) | char::from(b).to_digit(16)?;
        }
        Some(v)
    }

    /// Every byte value at every position, and a spread of whole fields.
    #[test]
    fn hex8_agrees_with_reading_digit_by_digit() {
        let mut field = *b"0a1B2c3D";
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut f = field;
                f[pos] = b;
                assert_eq!(hex8(&f), reference(&f), "{f:?}");
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let digits = b"0123456789abcdefABCDEF";
            for (i, slot) in field.iter_mut().enumerate() {
                *slot = digits[((seed >> (i * 5)) % 22) as usize];
            }
            assert_eq!(hex8(&field), reference(&field), "{field:?}");
        }
        assert_eq!(hex8(b"ffffffff"), Some(u32::MAX));
        assert_eq!(hex8(b"00000000"), Some(0));
        assert_eq!(hex8(b"0000000"), None);
        assert_eq!(hex8(b"000000000"), None);
        assert_eq!(hex8(b"0000000g"), None);
        assert_eq!(hex8(b"\xb0000000"), None);
    }
}
