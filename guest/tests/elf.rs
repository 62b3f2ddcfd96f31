//! The static x86-64 ELF parser, against hand-made ELF files.
//!
//! The "shape" tests replay the program headers of real binaries (read with
//! `readelf -lW`) into a hand-made file of the same length.
use mobius_guest::proc::elf::{
    parse, parse_head, ElfError, ElfImage, Segment, MAX_PHNUM, USER_END,
};
use proptest::prelude::*;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const R: u32 = 4;
const W: u32 = 2;
const X: u32 = 1;

#[derive(Clone, Copy)]
struct Ph {
    ty: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn ph(ty: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64) -> Ph {
    Ph {
        ty,
        flags,
        offset,
        vaddr,
        filesz,
        memsz,
        align,
    }
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    ph(PT_LOAD, flags, offset, vaddr, filesz, memsz, 0x1000)
}

/// A hand-made ELF file.
#[derive(Clone)]
struct Elf {
    class: u8,
    data: u8,
    ident_version: u8,
    e_type: u16,
    machine: u16,
    version: u32,
    entry: u64,
    phoff: u64,
    phentsize: u16,
    /// `None`: the number of `phdrs`.
    phnum: Option<u16>,
    phdrs: Vec<Ph>,
    /// The file is at least this long (zero-padded).
    min_len: usize,
}

impl Elf {
    /// A valid two-segment `ET_EXEC`: headers in a read-only page at
    /// 0x400000, code at 0x401000.
    fn exec() -> Elf {
        Elf {
            class: 2,
            data: 1,
            ident_version: 1,
            e_type: 2,
            machine: 62,
            version: 1,
            entry: 0x401000,
            phoff: 64,
            phentsize: 56,
            phnum: None,
            phdrs: vec![
                load(R, 0, 0x400000, 0x200, 0x200),
                load(R | X, 0x1000, 0x401000, 0x100, 0x100),
                ph(PT_GNU_STACK, R | W, 0, 0, 0, 0, 16),
            ],
            min_len: 0x1100,
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Elf)) -> Elf {
        f(&mut self);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = self.class;
        b[5] = self.data;
        b[6] = self.ident_version;
        b[16..18].copy_from_slice(&self.e_type.to_le_bytes());
        b[18..20].copy_from_slice(&self.machine.to_le_bytes());
        b[20..24].copy_from_slice(&self.version.to_le_bytes());
        b[24..32].copy_from_slice(&self.entry.to_le_bytes());
        b[32..40].copy_from_slice(&self.phoff.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&self.phentsize.to_le_bytes());
        let phnum = self.phnum.unwrap_or(self.phdrs.len() as u16);
        b[56..58].copy_from_slice(&phnum.to_le_bytes());
        let mut table = Vec::new();
        for p in &self.phdrs {
            table.extend_from_slice(&p.ty.to_le_bytes());
            table.extend_from_slice(&p.flags.to_le_bytes());
            table.extend_from_slice(&p.offset.to_le_bytes());
            table.extend_from_slice(&p.vaddr.to_le_bytes());
            table.extend_from_slice(&p.vaddr.to_le_bytes()); // p_paddr
            table.extend_from_slice(&p.filesz.to_le_bytes());
            table.extend_from_slice(&p.memsz.to_le_bytes());
            table.extend_from_slice(&p.align.to_le_bytes());
        }
        // Place the table at phoff when that is a sane in-memory offset.
        if let Ok(off) = usize::try_from(self.phoff) {
            if off < (1 << 24) {
                let end = off + table.len();
                if b.len() < end {
                    b.resize(end, 0);
                }
                // Never overwrite the ELF header (tests with phoff < 64).
                let skip = 64usize.saturating_sub(off);
                if skip < table.len() {
                    b[off + skip..end].copy_from_slice(&table[skip..]);
                }
            }
        }
        if b.len() < self.min_len {
            b.resize(self.min_len, 0);
        }
        b
    }

    fn parse(&self) -> Result<ElfImage, ElfError> {
        parse(&self.bytes())
    }
}

/// Checks everything `parse` promises about an accepted image.
fn check_invariants(file: &[u8], img: &ElfImage) {
    assert!(!img.segments.is_empty());
    for s in &img.segments {
        assert!(s.mem_size > 0 && s.file_size <= s.mem_size);
        assert!(s.file_offset + s.file_size <= file.len() as u64);
        assert!(s.vaddr.checked_add(s.mem_size).unwrap() <= USER_END);
    }
    for w in img.segments.windows(2) {
        assert!(w[0].vaddr + w[0].mem_size <= w[1].vaddr);
    }
    assert!(img
        .segments
        .iter()
        .any(|s| s.execute && (s.vaddr..s.vaddr + s.mem_size).contains(&img.entry)));
    let (lo, hi) = img.span();
    assert!(lo % 4096 == 0 && hi % 4096 == 0 && lo < hi && hi - lo <= 64 << 30);
    assert!(img.align.is_power_of_two() && img.align >= 4096);
    let shared = img.shared_pages();
    assert!(shared.windows(2).all(|w| w[0] < w[1]));
    assert!(shared.iter().all(|p| p % 4096 == 0 && *p >= lo && *p < hi));
}

fn accept(e: &Elf) -> ElfImage {
    let bytes = e.bytes();
    let img = parse(&bytes).unwrap_or_else(|err| panic!("rejected: {err}"));
    check_invariants(&bytes, &img);
    img
}

fn reject(e: &Elf) -> ElfError {
    match e.parse() {
        Ok(img) => panic!("accepted: {img:?}"),
        Err(err) => err,
    }
}

// ---- accepted -------------------------------------------------------------

/// A program not in memory is started from its first page: the headers
/// come from the head, segments are checked against the whole file's
/// length.
#[test]
fn head_of_a_longer_file_is_parsed_against_its_length() {
    let bytes = Elf::exec().bytes();
    let head = &bytes[..0x200];
    assert_eq!(
        parse(head).err(),
        Some(ElfError::SegmentOutOfFile { index: 1 })
    );
    let img = parse_head(head, bytes.len() as u64).expect("accepted");
    assert_eq!(Ok(img), parse(&bytes));
    assert_eq!(
        parse_head(head, 0x1080).err(),
        Some(ElfError::SegmentOutOfFile { index: 1 })
    );
    assert_eq!(
        parse_head(&bytes[..0x40], 0x1100).err(),
        Some(ElfError::PhdrsOutOfFile)
    );
}

#[test]
fn minimal_exec_is_accepted() {
    let img = accept(&Elf::exec());
    assert!(!img.dynamic);
    assert_eq!(img.entry, 0x401000);
    assert_eq!(
        img.phdr,
        Some(0x400040),
        "computed from the PT_LOAD at offset 0"
    );
    assert_eq!((img.phent, img.phnum), (56, 3));
    assert!(!img.stack_exec);
    assert_eq!(img.align, 4096);
    assert_eq!(
        img.segments,
        vec![
            Segment {
                vaddr: 0x400000,
                mem_size: 0x200,
                file_offset: 0,
                file_size: 0x200,
                read: true,
                write: false,
                execute: false
            },
            Segment {
                vaddr: 0x401000,
                mem_size: 0x100,
                file_offset: 0x1000,
                file_size: 0x100,
                read: true,
                write: false,
                execute: true
            },
        ]
    );
    assert_eq!(img.span(), (0x400000, 0x402000));
    assert!(img.shared_pages().is_empty());
}

#[test]
fn static_pie_is_accepted_and_pt_phdr_wins() {
    let img = accept(&Elf::exec().with(|e| {
        e.e_type = 3;
        e.entry = 0x1010;
        e.phdrs = vec![
            ph(PT_PHDR, R, 64, 0x40, 3 * 56, 3 * 56, 8),
            load(R, 0, 0, 0x200, 0x200),
            load(R | X, 0x1000, 0x1000, 0x100, 0x100),
        ];
    }));
    assert!(img.dynamic);
    assert_eq!(img.phdr, Some(0x40));
    assert_eq!(img.span(), (0, 0x2000));

    // PT_PHDR's value is taken as given, even if it disagrees.
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs.insert(0, ph(PT_PHDR, R, 64, 0x400abc, 0, 0, 8));
    }));
    assert_eq!(img.phdr, Some(0x400abc));
}

#[test]
fn phdr_is_none_when_the_table_is_not_loaded() {
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs[0] = load(R, 0x1000, 0x400000, 0x10, 0x10);
        e.phdrs[1] = load(R | X, 0x1000, 0x401000, 0x100, 0x100);
    }));
    assert_eq!(img.phdr, None);
    // Partly loaded (the segment ends inside the table): not loaded either.
    let img = accept(&Elf::exec().with(|e| e.phdrs[0] = load(R, 0, 0x400000, 0x50, 0x50)));
    assert_eq!(img.phdr, None);
}

#[test]
fn gnu_stack_flags_set_stack_exec() {
    let img = accept(&Elf::exec().with(|e| e.phdrs[2].flags = R | W | X));
    assert!(img.stack_exec);
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs.pop();
    }));
    assert!(!img.stack_exec, "no PT_GNU_STACK: not executable");
}

#[test]
fn other_program_headers_are_ignored() {
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs.push(ph(PT_TLS, R, 0x1000, 0x401000, 8, 0x40, 8));
        e.phdrs
            .push(ph(PT_GNU_RELRO, R, 0, 0x400000, 0x10, 0x10, 1));
        e.phdrs
            .push(ph(0x1234_5678, 0, u64::MAX, u64::MAX, u64::MAX, 0, 3));
    }));
    assert_eq!(img.segments.len(), 2);
}

#[test]
fn empty_load_segments_are_skipped() {
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs.insert(1, load(R, 0, 0x400000, 0, 0));
        e.phdrs.push(load(R, 0, 0, 0, 0)); // out of order, but empty
    }));
    assert_eq!(img.segments.len(), 2);
}

#[test]
fn bss_only_segment() {
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs[2] = load(R | W, 0x1100, 0x402100, 0, 0x10000);
    }));
    assert_eq!(img.segments.len(), 3);
    assert_eq!(img.segments[2].file_size, 0);
    assert_eq!(img.span(), (0x400000, 0x413000));
}

#[test]
fn segment_ending_exactly_at_user_end() {
    let img = accept(&Elf::exec().with(|e| {
        e.entry = USER_END - 0x2000;
        e.phdrs = vec![
            load(R | X, 0x1000, USER_END - 0x2000, 0x100, 0x1000),
            load(R | W, 0, USER_END - 0x1000, 0, 0x1000),
        ];
    }));
    assert_eq!(img.span(), (USER_END - 0x2000, USER_END));
    assert_eq!(img.phdr, None);
}

#[test]
fn small_alignment_relaxes_congruence() {
    // p_align 16: congruent mod 16 only; p_align 0 or 1: no constraint.
    for (align, vaddr) in [(16, 0x401010), (0, 0x401234), (1, 0x401001)] {
        let img = accept(&Elf::exec().with(|e| {
            e.entry = vaddr;
            e.phdrs[1] = ph(PT_LOAD, R | X, 0x1000, vaddr, 0x100, 0x100, align);
        }));
        assert_eq!(img.segments[1].vaddr, vaddr);
    }
}

#[test]
fn largest_load_alignment_is_reported() {
    let img = accept(&Elf::exec().with(|e| {
        e.phdrs[0].align = 0x200000;
        e.phdrs[1].align = 0x1000;
    }));
    assert_eq!(img.align, 0x200000);
}

/// `gcc -static -O2` (glibc 2.36, GNU ld 2.40), `readelf -lW`.
#[test]
fn shape_glibc_static() {
    let img = accept(&Elf::exec().with(|e| {
        e.entry = 0x401550;
        e.phdrs = vec![
            load(R, 0x000000, 0x400000, 0x000518, 0x000518),
            load(R | X, 0x001000, 0x401000, 0x077d01, 0x077d01),
            load(R, 0x079000, 0x479000, 0x026fbc, 0x026fbc),
            load(R | W, 0x0a06d8, 0x4a06d8, 0x005b98, 0x00b3c8),
            ph(4, R, 0x000350, 0x400350, 0x000030, 0x000030, 8), // NOTE
            ph(4, R, 0x000380, 0x400380, 0x000044, 0x000044, 4), // NOTE
            ph(PT_TLS, R, 0x0a06d8, 0x4a06d8, 0x000018, 0x000060, 8),
            ph(0x6474_e553, R, 0x000350, 0x400350, 0x000030, 0x000030, 8), // GNU_PROPERTY
            ph(PT_GNU_STACK, R | W, 0, 0, 0, 0, 0x10),
            ph(PT_GNU_RELRO, R, 0x0a06d8, 0x4a06d8, 0x003928, 0x003928, 1),
        ];
        e.min_len = 762424;
    }));
    assert!(!img.dynamic);
    assert_eq!(img.phdr, Some(0x400040));
    assert_eq!(img.segments.len(), 4);
    assert!(img.shared_pages().is_empty());
    assert_eq!(img.span(), (0x400000, 0x4ac000));
}

/// `gcc -static-pie -O2` (glibc 2.36, GNU ld 2.40).
#[test]
fn shape_glibc_static_pie() {
    let img = accept(&Elf::exec().with(|e| {
        e.e_type = 3;
        e.entry = 0x9610;
        e.phdrs = vec![
            load(R, 0x000000, 0x000000, 0x008020, 0x008020),
            load(R | X, 0x009000, 0x009000, 0x078d41, 0x078d41),
            load(R, 0x082000, 0x082000, 0x029254, 0x029254),
            load(R | W, 0x0ab518, 0x0ac518, 0x005d58, 0x00b528),
            ph(2, R | W, 0x0b0078, 0x0b1078, 0x0001a0, 0x0001a0, 8), // DYNAMIC
            ph(PT_TLS, R, 0x0ab518, 0x0ac518, 0x000018, 0x000060, 8),
            ph(PT_GNU_STACK, R | W, 0, 0, 0, 0, 0x10),
            ph(PT_GNU_RELRO, R, 0x0ab518, 0x0ac518, 0x003ae8, 0x003ae8, 1),
        ];
        e.min_len = 808000;
    }));
    assert!(img.dynamic);
    assert_eq!(img.phdr, Some(0x40));
    assert!(img.shared_pages().is_empty());
    assert_eq!(img.span(), (0, 0xb8000));
}

/// Rust 1.95 `hello` for `x86_64-unknown-linux-musl` (static-pie).
#[test]
fn shape_rust_musl() {
    let img = accept(&Elf::exec().with(|e| {
        e.e_type = 3;
        e.entry = 0x92bb;
        e.phdrs = vec![
            load(R, 0x000000, 0x000000, 0x003f98, 0x003f98),
            load(R | X, 0x004000, 0x004000, 0x0510f6, 0x0510f6),
            load(R, 0x056000, 0x056000, 0x012c78, 0x012c78),
            load(R | W, 0x0699c0, 0x0699c0, 0x003114, 0x004960),
            ph(2, R | W, 0x06bed0, 0x06bed0, 0x000190, 0x000190, 8), // DYNAMIC
            ph(PT_TLS, R, 0x0699c0, 0x0699c0, 0x000020, 0x000050, 8),
            ph(PT_GNU_STACK, R | W, 0, 0, 0, 0, 0x10),
            ph(PT_GNU_RELRO, R, 0x0699c0, 0x0699c0, 0x002640, 0x002640, 1),
        ];
        e.min_len = 554992;
    }));
    assert!(img.dynamic);
    assert_eq!(img.phdr, Some(0x40));
    assert!(img.shared_pages().is_empty());
    assert_eq!(img.span(), (0, 0x6f000));
}

/// `gcc -static -O2 -fuse-ld=lld`: a PT_PHDR, two RW segments, GNU_STACK
/// align 0.
#[test]
fn shape_lld_static() {
    let img = accept(&Elf::exec().with(|e| {
        e.entry = 0x228600;
        e.phdrs = vec![
            ph(PT_PHDR, R, 0x40, 0x200040, 0x1f8, 0x1f8, 8),
            load(R, 0x000000, 0x200000, 0x0275d0, 0x0275d0),
            load(R | X, 0x027600, 0x228600, 0x077d80, 0x077d80),
            load(R | W, 0x09f380, 0x2a1380, 0x003970, 0x003c80),
            load(R | W, 0x0a2d00, 0x2a5d00, 0x0022a8, 0x007ab8),
            ph(PT_GNU_RELRO, R, 0x09f380, 0x2a1380, 0x003970, 0x003c80, 1),
            ph(PT_GNU_STACK, R | W, 0, 0, 0, 0, 0),
        ];
        e.min_len = 0x0a2d00 + 0x0022a8;
    }));
    assert_eq!(img.phdr, Some(0x200040));
    assert_eq!(img.segments.len(), 4);
    assert!(img.shared_pages().is_empty());
}

/// `gcc -static -Wl,-z,max-page-size=0x10,-z,common-page-size=0x10`:
/// consecutive segments share pages once rounded to 4 KiB (three share the
/// first page). Accepted; the shared pages are reported.
#[test]
fn shape_small_page_size_shares_pages() {
    let img = accept(&Elf::exec().with(|e| {
        e.entry = 0x400680;
        e.phdrs = vec![
            ph(PT_LOAD, R, 0x000000, 0x400000, 0x000588, 0x000588, 0x10),
            ph(PT_LOAD, R | X, 0x000590, 0x400590, 0x0000d8, 0x0000d8, 0x10),
            ph(PT_LOAD, R | X, 0x000680, 0x400680, 0x077c01, 0x077c01, 0x40),
            ph(PT_LOAD, R, 0x0782a0, 0x4782a0, 0x026fbc, 0x026fbc, 0x20),
            ph(PT_LOAD, R | W, 0x09f278, 0x49f278, 0x005b98, 0x005b98, 0x20),
            ph(PT_LOAD, R | W, 0x000000, 0x4a4e20, 0x000000, 0x005820, 0x20),
            ph(PT_GNU_STACK, R | W, 0, 0, 0, 0, 0x10),
        ];
        e.min_len = 0x09f278 + 0x005b98;
    }));
    assert_eq!(img.segments.len(), 6);
    assert_eq!(img.align, 4096);
    assert_eq!(
        img.shared_pages(),
        vec![0x400000, 0x478000, 0x49f000, 0x4a4000]
    );
    let s = &img.segments[1];
    assert_eq!(
        (s.page_start(), s.page_end(), s.end()),
        (0x400000, 0x401000, 0x400668)
    );
}

// ---- rejected -------------------------------------------------------------

#[test]
fn header_checks() {
    assert_eq!(parse(&[]), Err(ElfError::TooShort));
    assert_eq!(parse(b"\x7fELF"), Err(ElfError::TooShort));
    assert_eq!(parse(&Elf::exec().bytes()[..63]), Err(ElfError::TooShort));
    assert_eq!(parse(&[0u8; 64]), Err(ElfError::BadMagic));
    assert_eq!(
        parse(b"#!/bin/sh\necho hello world\n"),
        Err(ElfError::BadMagic)
    );
    let mut b = Elf::exec().bytes();
    b[3] = b'f';
    assert_eq!(parse(&b), Err(ElfError::BadMagic));
    assert_eq!(
        reject(&Elf::exec().with(|e| e.class = 1)),
        ElfError::BadClass(1)
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.data = 2)),
        ElfError::BadEndian(2)
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.ident_version = 0)),
        ElfError::BadVersion
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.version = 2)),
        ElfError::BadVersion
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.machine = 3)),
        ElfError::BadMachine(3)
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.machine = 183)),
        ElfError::BadMachine(183)
    );
    for t in [0, 1, 4, 0xfe00] {
        assert_eq!(
            reject(&Elf::exec().with(|e| e.e_type = t)),
            ElfError::BadType(t)
        );
    }
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phentsize = 32)),
        ElfError::BadPhentsize(32)
    );
}

#[test]
fn program_header_table_checks() {
    let b = Elf::exec().bytes();
    assert_eq!(parse(&b[..64 + 3 * 56 - 1]), Err(ElfError::PhdrsOutOfFile));
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phoff = 1 << 40)),
        ElfError::PhdrsOutOfFile
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phoff = u64::MAX - 8)),
        ElfError::PhdrsOutOfFile
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phnum = Some(MAX_PHNUM + 1))),
        ElfError::TooManyPhdrs(129)
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phnum = Some(0xffff))),
        ElfError::TooManyPhdrs(0xffff)
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phnum = Some(0))),
        ElfError::NoLoad
    );
    // The table may overlap the ELF header (phoff 0): parsed as is, and
    // here its "first entry" is not a loadable segment.
    assert!(Elf::exec().with(|e| e.phoff = 0).parse().is_err());
    // 128 headers are fine.
    let img = accept(&Elf::exec().with(|e| {
        while e.phdrs.len() < 128 {
            e.phdrs.push(ph(4, R, 0, 0, 0, 0, 4));
        }
        e.min_len = 64 + 128 * 56;
        e.phdrs[1] = load(R | X, 0x2000, 0x402000, 0x100, 0x100);
        e.phdrs[0] = load(R, 0, 0x400000, 0x2000, 0x2000);
        e.entry = 0x402000;
        e.min_len = 0x2100;
    }));
    assert_eq!(img.phnum, 128);
}

#[test]
fn interp_means_dynamically_linked() {
    let e = Elf::exec().with(|e| {
        e.phdrs
            .insert(0, ph(PT_INTERP, R, 0x200, 0x400200, 28, 28, 1))
    });
    let err = reject(&e);
    assert_eq!(err, ElfError::Interp);
    assert!(err.to_string().contains("needs a dynamic loader"));
    assert_eq!(reject(&e.with(|e| e.e_type = 3)), ElfError::Interp);
}

#[test]
fn no_load_segment() {
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs.retain(|p| p.ty != PT_LOAD))),
        ElfError::NoLoad
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs = vec![load(R | X, 0, 0x400000, 0, 0)])),
        ElfError::NoLoad
    );
}

#[test]
fn segment_size_and_file_range_checks() {
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs[1].filesz = 0x101)),
        ElfError::FileSizeAboveMemSize { index: 1 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| {
            e.phdrs[1].filesz = 0x101;
            e.phdrs[1].memsz = 0x101;
        })),
        ElfError::SegmentOutOfFile { index: 1 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| {
            e.phdrs[1].offset = u64::MAX - 0xfff;
            e.phdrs[1].vaddr = u64::MAX - 0xfff;
        })),
        ElfError::SegmentOutOfFile { index: 1 }
    );
    // memsz beyond the file is fine (bss).
    accept(&Elf::exec().with(|e| e.phdrs[1].memsz = 0x100000));
}

#[test]
fn alignment_checks() {
    assert_eq!(
        reject(&Elf::exec().with(|e| {
            e.phdrs[1].vaddr = 0x401008;
            e.entry = 0x401008;
        })),
        ElfError::Misaligned { index: 1 }
    );
    // Congruent modulo 4096 with a larger p_align is enough.
    accept(&Elf::exec().with(|e| {
        e.phdrs[1].align = 0x200000;
        e.phdrs[1].vaddr = 0x601000;
        e.entry = 0x601000;
    }));
    assert_eq!(
        reject(&Elf::exec().with(|e| {
            e.phdrs[1].align = 16;
            e.phdrs[1].vaddr = 0x401008;
            e.entry = 0x401008;
        })),
        ElfError::Misaligned { index: 1 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs[0].align = 0x3000)),
        ElfError::Misaligned { index: 0 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs[0].align = 1 << 40)),
        ElfError::Misaligned { index: 0 }
    );
}

#[test]
fn address_range_checks() {
    assert_eq!(
        reject(&Elf::exec().with(|e| {
            e.phdrs.push(load(R | W, 0x1000, !0xfff, 0, 0x2000));
        })),
        ElfError::AddressOverflow { index: 3 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs.push(load(R | W, 0, USER_END - 0x1000, 0, 0x1001)))),
        ElfError::AboveUserSpace { index: 3 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs.push(load(R | W, 0, 0xffff_8000_0000_0000, 0, 1)))),
        ElfError::AboveUserSpace { index: 3 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs.push(load(R | W, 0, 0x400000 + (64 << 30), 0, 1)))),
        ElfError::SpanTooLarge((64 << 30) + 0x1000)
    );
    // Exactly 64 GiB is fine.
    accept(&Elf::exec().with(|e| {
        e.phdrs
            .push(load(R | W, 0, 0x400000 + (64 << 30) - 0x1000, 0, 0x1000))
    }));
}

#[test]
fn ordering_and_overlap_checks() {
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs.swap(0, 1))),
        ElfError::Unordered { index: 1 }
    );
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs[0].memsz = 0x1001)),
        ElfError::Overlap { index: 1 }
    );
    // Touching is fine.
    accept(&Elf::exec().with(|e| e.phdrs[0].memsz = 0x1000));
    // Starting where the previous one starts: overlap.
    assert_eq!(
        reject(&Elf::exec().with(|e| e.phdrs.push(load(R, 0x1000, 0x401000, 0, 8)))),
        ElfError::Overlap { index: 3 }
    );
}

#[test]
fn entry_checks() {
    for entry in [0x400000, 0x400010, 0x401100, 0x3fffff, 0, u64::MAX] {
        assert_eq!(
            reject(&Elf::exec().with(|e| e.entry = entry)),
            ElfError::EntryNotExecutable(entry)
        );
    }
    accept(&Elf::exec().with(|e| e.entry = 0x4010ff));
    // In the bss part of an executable segment: accepted (inside memsz).
    accept(&Elf::exec().with(|e| {
        e.phdrs[1].memsz = 0x200;
        e.entry = 0x401150;
    }));
}

#[test]
fn every_error_displays_one_line() {
    let all = [
        ElfError::TooShort,
        ElfError::BadMagic,
        ElfError::BadClass(1),
        ElfError::BadEndian(2),
        ElfError::BadVersion,
        ElfError::BadMachine(3),
        ElfError::BadType(1),
        ElfError::BadPhentsize(32),
        ElfError::PhdrsOutOfFile,
        ElfError::TooManyPhdrs(200),
        ElfError::Interp,
        ElfError::NoLoad,
        ElfError::FileSizeAboveMemSize { index: 1 },
        ElfError::SegmentOutOfFile { index: 1 },
        ElfError::Misaligned { index: 1 },
        ElfError::AddressOverflow { index: 1 },
        ElfError::AboveUserSpace { index: 1 },
        ElfError::SpanTooLarge(1 << 40),
        ElfError::Unordered { index: 1 },
        ElfError::Overlap { index: 1 },
        ElfError::EntryNotExecutable(0x1234),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for e in all {
        let s = e.to_string();
        assert!(!s.is_empty() && !s.contains('\n'), "{e:?}: {s:?}");
        assert!(seen.insert(s), "{e:?}: duplicate message");
    }
}

/// Optional: `MOBIUS_TEST_ELF=/path/a:/path/b cargo test --test elf` parses
/// real binaries too (skipped when unset; nothing is built here).
#[test]
fn real_binaries_from_env() {
    let Ok(paths) = std::env::var("MOBIUS_TEST_ELF") else {
        return;
    };
    for p in paths.split(':').filter(|p| !p.is_empty()) {
        let bytes = std::fs::read(p).unwrap();
        match parse(&bytes) {
            Ok(img) => {
                check_invariants(&bytes, &img);
                println!(
                    "{p}: dynamic={} entry={:#x} phdr={:?} segments={} span={:x?} shared={:x?} align={:#x}",
                    img.dynamic,
                    img.entry,
                    img.phdr,
                    img.segments.len(),
                    img.span(),
                    img.shared_pages(),
                    img.align
                );
            }
            Err(e) => println!("{p}: rejected: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random byte mutations (and truncations) of valid files never panic,
    /// and whatever is accepted satisfies the invariants.
    #[test]
    fn mutations_never_panic(
        base in 0usize..3,
        edits in proptest::collection::vec((0usize..0x200, any::<u8>()), 0..12),
        cut in proptest::option::of(0usize..0x1100),
    ) {
        let e = match base {
            0 => Elf::exec(),
            1 => Elf::exec().with(|e| {
                e.e_type = 3;
                e.phdrs.insert(0, ph(PT_PHDR, R, 64, 0x400040, 4 * 56, 4 * 56, 8));
            }),
            _ => Elf::exec().with(|e| {
                e.phdrs.push(ph(PT_LOAD, R | W, 0x1100, 0x402100, 0, 0x100, 0x10));
            }),
        };
        let mut b = e.bytes();
        for (i, v) in edits {
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
        }
        if let Some(c) = cut {
            b.truncate(c);
        }
        if let Ok(img) = parse(&b) {
            check_invariants(&b, &img);
        }
    }

    /// Random program headers (structured, so most reach the deep checks).
    #[test]
    fn random_program_headers_never_panic(
        e_type in 2u16..4,
        entry in prop_oneof![Just(0x401000u64), any::<u64>()],
        phdrs in proptest::collection::vec(
            (
                prop_oneof![Just(PT_LOAD), Just(PT_PHDR), Just(PT_GNU_STACK), any::<u32>()],
                0u32..8,
                prop_oneof![0u64..0x2000, any::<u64>()],
                prop_oneof![0x3ff000u64..0x403000, any::<u64>()],
                prop_oneof![0u64..0x1100, any::<u64>()],
                prop_oneof![0u64..0x3000, any::<u64>()],
                prop_oneof![Just(0x1000u64), 0u64..0x40, any::<u64>()],
            ),
            0..10,
        ),
    ) {
        let e = Elf::exec().with(|e| {
            e.e_type = e_type;
            e.entry = entry;
            e.phdrs = phdrs
                .iter()
                .map(|&(ty, flags, offset, vaddr, filesz, memsz, align)| {
                    ph(ty, flags, offset, vaddr, filesz, memsz, align)
                })
                .collect();
        });
        let b = e.bytes();
        if let Ok(img) = parse(&b) {
            check_invariants(&b, &img);
        }
    }
}
