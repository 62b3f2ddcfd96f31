//! Parsing and validating a static x86-64 Linux ELF executable.
//!
//! [`parse`] accepts `ELFCLASS64`, little-endian, `EV_CURRENT`, `EM_X86_64`
//! files of type `ET_EXEC` (linked at fixed addresses) or `ET_DYN` without a
//! `PT_INTERP` (static-pie: relocates itself, loaded at a base the kernel
//! picks). Everything a loader needs is checked here, so the loader can trust
//! an [`ElfImage`]: the `PT_LOAD` segments are non-empty, sorted, disjoint in
//! memory, inside the file, below the end of the user half, and the entry
//! point lies in an executable one. Nothing here panics on any input.
//!
//! **Shared pages.** Segments are disjoint *byte* ranges, but two consecutive
//! segments may share a 4 KiB page once rounded (the last page of one is the
//! first of the next) when their `p_align` is below 4096 (e.g. linked with
//! `-z max-page-size=16`). This is accepted; [`ElfImage::shared_pages`] lists
//! those pages so the loader maps each with the union of the permissions of
//! the segments touching it. A loader must copy each segment's
//! `[file_offset, file_offset + file_size)` to `[vaddr, vaddr + file_size)`
//! and zero `[vaddr + file_size, vaddr + mem_size)` only — never whole pages,
//! which would clobber a neighbour sharing the page. (The real binaries
//! checked — glibc `-static` and `-static-pie` by GNU ld, gold and lld, and
//! Rust `x86_64-unknown-linux-musl` — never share a page: their linkers
//! offset each segment by a page.)
use alloc::vec::Vec;
use core::fmt;

/// Page size the loader maps with.
pub const PAGE_SIZE: u64 = 4096;
/// End of the user half of the address space (exclusive).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Most program headers accepted.
pub const MAX_PHNUM: u16 = 128;
/// Largest accepted `p_align` of a `PT_LOAD`.
pub const MAX_ALIGN: u64 = 1 << 30;
/// Largest accepted span from the lowest to the highest page of the image.
pub const MAX_SPAN: u64 = 64 << 30;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: u16 = 56;

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Why a file is not a runnable static x86-64 executable (all `ENOEXEC`).
/// `index` is the program header's index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than the 64-byte ELF header.
    TooShort,
    /// Does not start with `\x7fELF`.
    BadMagic,
    /// Not `ELFCLASS64`.
    BadClass(u8),
    /// Not little-endian.
    BadEndian(u8),
    /// `e_ident[EI_VERSION]` or `e_version` is not `EV_CURRENT`.
    BadVersion,
    /// Not `EM_X86_64`.
    BadMachine(u16),
    /// Neither `ET_EXEC` nor `ET_DYN`.
    BadType(u16),
    /// `e_phentsize` is not 56.
    BadPhentsize(u16),
    /// The program-header table does not fit in the file.
    PhdrsOutOfFile,
    /// More than [`MAX_PHNUM`] program headers.
    TooManyPhdrs(u16),
    /// A `PT_INTERP`: dynamically linked.
    Interp,
    /// No `PT_LOAD` with a non-zero memory size.
    NoLoad,
    /// A segment's `p_filesz` exceeds its `p_memsz`.
    FileSizeAboveMemSize { index: usize },
    /// A segment's file range is not inside the file.
    SegmentOutOfFile { index: usize },
    /// `p_align` is not a power of two or above [`MAX_ALIGN`], or `p_vaddr`
    /// and `p_offset` are not congruent modulo `min(p_align, 4096)`
    /// (`p_align` 0 or 1: no constraint).
    Misaligned { index: usize },
    /// `p_vaddr + p_memsz` overflows.
    AddressOverflow { index: usize },
    /// A segment ends above [`USER_END`].
    AboveUserSpace { index: usize },
    /// Lowest to highest page spans more than [`MAX_SPAN`].
    SpanTooLarge(u64),
    /// `PT_LOAD`s not in ascending `p_vaddr` order.
    Unordered { index: usize },
    /// A `PT_LOAD` overlaps the previous one in memory.
    Overlap { index: usize },
    /// The entry point is not inside an executable segment.
    EntryNotExecutable(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => write!(f, "shorter than an ELF header"),
            ElfError::BadMagic => write!(f, "not an ELF file (bad magic)"),
            ElfError::BadClass(c) => write!(f, "not a 64-bit ELF (class {c})"),
            ElfError::BadEndian(d) => write!(f, "not little-endian (data encoding {d})"),
            ElfError::BadVersion => write!(f, "unknown ELF version"),
            ElfError::BadMachine(m) => write!(f, "not an x86-64 executable (machine {m})"),
            ElfError::BadType(t) => write!(f, "not an executable (ELF type {t})"),
            ElfError::BadPhentsize(s) => write!(f, "program header size {s}, want 56"),
            ElfError::PhdrsOutOfFile => write!(f, "program headers lie outside the file"),
            ElfError::TooManyPhdrs(n) => {
                write!(f, "{n} program headers (at most {MAX_PHNUM})")
            }
            ElfError::Interp => {
                write!(f, "dynamically linked: needs a dynamic loader (PT_INTERP)")
            }
            ElfError::NoLoad => write!(f, "no loadable segment"),
            ElfError::FileSizeAboveMemSize { index } => {
                write!(f, "segment {index}: file size above memory size")
            }
            ElfError::SegmentOutOfFile { index } => {
                write!(f, "segment {index}: file range outside the file")
            }
            ElfError::Misaligned { index } => {
                write!(f, "segment {index}: address and file offset misaligned")
            }
            ElfError::AddressOverflow { index } => {
                write!(f, "segment {index}: address range overflows")
            }
            ElfError::AboveUserSpace { index } => {
                write!(f, "segment {index}: ends above user space")
            }
            ElfError::SpanTooLarge(s) => write!(f, "image spans {s:#x} bytes (too large)"),
            ElfError::Unordered { index } => {
                write!(
                    f,
                    "segment {index}: loadable segments not in ascending order"
                )
            }
            ElfError::Overlap { index } => {
                write!(f, "segment {index}: overlaps the previous segment")
            }
            ElfError::EntryNotExecutable(e) => {
                write!(f, "entry point {e:#x} not in an executable segment")
            }
        }
    }
}

/// One `PT_LOAD` segment (addresses relative to the load base when
/// [`ElfImage::dynamic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Segment {
    /// First byte past the segment in memory.
    pub fn end(&self) -> u64 {
        // Validated by `parse`: cannot overflow.
        self.vaddr.saturating_add(self.mem_size)
    }
    /// Page-aligned start (`vaddr` rounded down).
    pub fn page_start(&self) -> u64 {
        self.vaddr & !(PAGE_SIZE - 1)
    }
    /// Page-rounded end (`end()` rounded up).
    pub fn page_end(&self) -> u64 {
        page_up(self.end())
    }
}

/// A validated executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfImage {
    /// `ET_DYN` (static-pie): every address here is relative to a load base
    /// the kernel picks (a multiple of [`ElfImage::align`]).
    pub dynamic: bool,
    /// Entry point (`e_entry`).
    pub entry: u64,
    /// Address of the program-header table in memory (for `AT_PHDR`): the
    /// `PT_PHDR`'s `p_vaddr`, else computed from the `PT_LOAD` whose file
    /// range holds the whole table; `None` if the table is not loaded.
    pub phdr: Option<u64>,
    /// `e_phentsize` (always 56), for `AT_PHENT`.
    pub phent: u16,
    /// `e_phnum`, for `AT_PHNUM`.
    pub phnum: u16,
    /// The non-empty `PT_LOAD`s, ascending and disjoint in memory.
    pub segments: Vec<Segment>,
    /// `PT_GNU_STACK` has `PF_X` (no `PT_GNU_STACK`: false, as Linux on
    /// x86-64 does for 64-bit programs).
    pub stack_exec: bool,
    /// Largest power-of-two `p_align` of the `PT_LOAD`s, at least
    /// [`PAGE_SIZE`]: a dynamic image's load base must be a multiple of it.
    pub align: u64,
}

impl ElfImage {
    /// `(lowest page-aligned vaddr, highest page-rounded end)` of the
    /// segments.
    pub fn span(&self) -> (u64, u64) {
        let lo = self.segments.first().map_or(0, Segment::page_start);
        let hi = self.segments.last().map_or(0, Segment::page_end);
        (lo, hi)
    }

    /// Pages (page-aligned addresses, ascending, each once) touched by more
    /// than one segment; map each with the union of those segments'
    /// permissions. Empty for every binary produced by the usual linkers.
    pub fn shared_pages(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for pair in self.segments.windows(2) {
            if let [a, b] = pair {
                let last_of_a = page_down(a.end().saturating_sub(1));
                if last_of_a == b.page_start() && out.last() != Some(&last_of_a) {
                    out.push(last_of_a);
                }
            }
        }
        out
    }
}

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Rounds up; saturates at the last page (only reachable for unvalidated
/// values: validated segments end at or below [`USER_END`]).
fn page_up(x: u64) -> u64 {
    x.checked_add(PAGE_SIZE - 1)
        .map_or(!(PAGE_SIZE - 1), page_down)
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes(s.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

fn phdr_at(b: &[u8], off: usize) -> Option<Phdr> {
    Some(Phdr {
        p_type: u32_at(b, off)?,
        p_flags: u32_at(b, off.checked_add(4)?)?,
        p_offset: u64_at(b, off.checked_add(8)?)?,
        p_vaddr: u64_at(b, off.checked_add(16)?)?,
        p_filesz: u64_at(b, off.checked_add(32)?)?,
        p_memsz: u64_at(b, off.checked_add(40)?)?,
        p_align: u64_at(b, off.checked_add(48)?)?,
    })
}

/// Parses and validates a static x86-64 executable.
pub fn parse(file: &[u8]) -> Result<ElfImage, ElfError> {
    parse_head(file, file.len() as u64)
}

/// [`parse`] from the first bytes of a file of `file_len` bytes: `head`
/// must hold the ELF and program headers; segments are checked against
/// `file_len` (a program on a disk is not read whole to be started).
pub fn parse_head(file: &[u8], file_len: u64) -> Result<ElfImage, ElfError> {
    let ident = file.get(..16).ok_or(ElfError::TooShort)?;
    if file.len() < EHDR_SIZE {
        return Err(if ident.starts_with(b"\x7fELF") {
            ElfError::TooShort
        } else {
            ElfError::BadMagic
        });
    }
    if !ident.starts_with(b"\x7fELF") {
        return Err(ElfError::BadMagic);
    }
    let get = |i: usize| ident.get(i).copied().unwrap_or(0);
    if get(4) != 2 {
        return Err(ElfError::BadClass(get(4)));
    }
    if get(5) != 1 {
        return Err(ElfError::BadEndian(get(5)));
    }
    if get(6) != 1 {
        return Err(ElfError::BadVersion);
    }
    let short = ElfError::TooShort;
    let e_type = u16_at(file, 16).ok_or(short)?;
    let e_machine = u16_at(file, 18).ok_or(short)?;
    let e_version = u32_at(file, 20).ok_or(short)?;
    let e_entry = u64_at(file, 24).ok_or(short)?;
    let e_phoff = u64_at(file, 32).ok_or(short)?;
    let e_phentsize = u16_at(file, 54).ok_or(short)?;
    let e_phnum = u16_at(file, 56).ok_or(short)?;
    if e_version != 1 {
        return Err(ElfError::BadVersion);
    }
    if e_machine != EM_X86_64 {
        return Err(ElfError::BadMachine(e_machine));
    }
    let dynamic = match e_type {
        ET_EXEC => false,
        ET_DYN => true,
        t => return Err(ElfError::BadType(t)),
    };
    if e_phentsize != PHDR_SIZE {
        return Err(ElfError::BadPhentsize(e_phentsize));
    }
    if e_phnum > MAX_PHNUM {
        return Err(ElfError::TooManyPhdrs(e_phnum));
    }
    let table_len = u64::from(e_phnum) * u64::from(PHDR_SIZE);
    let table_end = e_phoff
        .checked_add(table_len)
        .ok_or(ElfError::PhdrsOutOfFile)?;
    if table_end > file.len() as u64 {
        return Err(ElfError::PhdrsOutOfFile);
    }
    let phoff = usize::try_from(e_phoff).map_err(|_| ElfError::PhdrsOutOfFile)?;

    let mut segments: Vec<Segment> = Vec::new();
    let mut pt_phdr: Option<u64> = None;
    let mut from_load: Option<u64> = None;
    let mut stack_exec = false;
    let mut align = PAGE_SIZE;
    let mut prev: Option<(u64, u64)> = None; // (vaddr, end) of the last PT_LOAD
    for index in 0..usize::from(e_phnum) {
        let off = index
            .checked_mul(usize::from(PHDR_SIZE))
            .and_then(|o| o.checked_add(phoff))
            .ok_or(ElfError::PhdrsOutOfFile)?;
        let ph = phdr_at(file, off).ok_or(ElfError::PhdrsOutOfFile)?;
        match ph.p_type {
            PT_INTERP => return Err(ElfError::Interp),
            PT_PHDR => {
                pt_phdr.get_or_insert(ph.p_vaddr);
            }
            PT_GNU_STACK => stack_exec = ph.p_flags & PF_X != 0,
            PT_LOAD => {
                if ph.p_filesz > ph.p_memsz {
                    return Err(ElfError::FileSizeAboveMemSize { index });
                }
                let file_end = ph
                    .p_offset
                    .checked_add(ph.p_filesz)
                    .ok_or(ElfError::SegmentOutOfFile { index })?;
                if file_end > file_len {
                    return Err(ElfError::SegmentOutOfFile { index });
                }
                if ph.p_align > 1 {
                    if !ph.p_align.is_power_of_two() || ph.p_align > MAX_ALIGN {
                        return Err(ElfError::Misaligned { index });
                    }
                    let m = ph.p_align.min(PAGE_SIZE) - 1;
                    if ph.p_vaddr & m != ph.p_offset & m {
                        return Err(ElfError::Misaligned { index });
                    }
                    align = align.max(ph.p_align);
                }
                let end = ph
                    .p_vaddr
                    .checked_add(ph.p_memsz)
                    .ok_or(ElfError::AddressOverflow { index })?;
                if end > USER_END {
                    return Err(ElfError::AboveUserSpace { index });
                }
                if ph.p_memsz == 0 {
                    continue;
                }
                if let Some((pv, pend)) = prev {
                    if ph.p_vaddr < pv {
                        return Err(ElfError::Unordered { index });
                    }
                    if ph.p_vaddr < pend {
                        return Err(ElfError::Overlap { index });
                    }
                }
                prev = Some((ph.p_vaddr, end));
                if from_load.is_none() && e_phoff >= ph.p_offset && table_end <= file_end {
                    from_load = Some(ph.p_vaddr.saturating_add(e_phoff - ph.p_offset));
                }
                segments.push(Segment {
                    vaddr: ph.p_vaddr,
                    mem_size: ph.p_memsz,
                    file_offset: ph.p_offset,
                    file_size: ph.p_filesz,
                    read: ph.p_flags & PF_R != 0,
                    write: ph.p_flags & PF_W != 0,
                    execute: ph.p_flags & PF_X != 0,
                });
            }
            _ => {}
        }
    }
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Err(ElfError::NoLoad);
    };
    let span = last.page_end().saturating_sub(first.page_start());
    if span > MAX_SPAN {
        return Err(ElfError::SpanTooLarge(span));
    }
    if !segments
        .iter()
        .any(|s| s.execute && e_entry >= s.vaddr && e_entry < s.end())
    {
        return Err(ElfError::EntryNotExecutable(e_entry));
    }
    Ok(ElfImage {
        dynamic,
        entry: e_entry,
        phdr: pt_phdr.or(from_load),
        phent: e_phentsize,
        phnum: e_phnum,
        segments,
        stack_exec,
        align,
    })
}
