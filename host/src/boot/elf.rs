//! Checking and loading the kernel ELF.
//!
//! linux-loader does the loading (and finds the PVH note), but it checks
//! neither class nor machine nor where segments land, so a short parse of the
//! headers comes first and turns every bad image into a precise [`BootError`].

use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::KernelLoader;
use mobius_shared::layout::KERNEL_MIN_ADDR;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::image::KernelImage;
use super::BootError;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const EM_X86_64: u16 = 62;

/// A loadable segment: guest-physical `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
}

/// What the header check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub entry: u64,
    pub segments: Vec<Segment>,
    /// End of the highest segment: the least RAM the kernel needs.
    pub end: u64,
}

/// The kernel once in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedKernel {
    /// 64-bit ELF entry.
    pub entry: u64,
    /// 32-bit PVH entry, if the image has the note.
    pub pvh_entry: Option<u64>,
    /// First byte after the kernel.
    pub end: u64,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The ELF header: its first [`EHDR_SIZE`] bytes, fewer if the image is shorter.
fn read_header(name: &str, image: &KernelImage<'_>) -> Result<([u8; EHDR_SIZE], usize), BootError> {
    let mut header = [0u8; EHDR_SIZE];
    let n = usize::try_from(image.len()).map_or(EHDR_SIZE, |len| len.min(EHDR_SIZE));
    image
        .read_exact_at(&mut header[..n], 0)
        .map_err(|e| read_error(name, e))?;
    Ok((header, n))
}

fn read_error(name: &str, source: std::io::Error) -> BootError {
    BootError::Read {
        path: name.into(),
        source,
    }
}

/// Whether `[offset, offset + size)` lies inside an image of `len` bytes.
fn inside(offset: u64, size: u64, len: u64) -> bool {
    offset.checked_add(size).is_some_and(|end| end <= len)
}

/// Check the ELF header and program headers of `image` (named `name` in
/// messages) against guest RAM `[0, ram_size)`. Reads only the headers; every
/// offset and size in them is checked against the image's length.
pub fn check(name: &str, image: &KernelImage<'_>, ram_size: u64) -> Result<ElfInfo, BootError> {
    let malformed = |what: &str| BootError::Malformed {
        name: name.to_string(),
        what: what.to_string(),
    };
    let (header, header_len) = read_header(name, image)?;
    let header = &header[..header_len];
    if header.len() < 4 || &header[..4] != b"\x7fELF" {
        return Err(BootError::NotElf(name.to_string()));
    }
    if header.len() < 6 {
        return Err(malformed("truncated ELF header"));
    }
    match header[4] {
        2 => {}
        1 => return Err(BootError::WrongClass(name.to_string())),
        _ => return Err(malformed("unknown ELF class")),
    }
    match header[5] {
        1 => {}
        2 => return Err(BootError::WrongEndian(name.to_string())),
        _ => return Err(malformed("unknown ELF data encoding")),
    }
    if header.len() < EHDR_SIZE {
        return Err(malformed("truncated ELF header"));
    }
    let machine = u16_at(header, 18);
    if machine != EM_X86_64 {
        return Err(BootError::WrongMachine {
            name: name.to_string(),
            machine,
        });
    }
    let entry = u64_at(header, 24);
    let phoff = u64_at(header, 32);
    let phentsize = u16_at(header, 54) as usize;
    let phnum = u16_at(header, 56) as usize;
    if phentsize != PHDR_SIZE {
        return Err(malformed("program header size is not 56"));
    }
    // At most 65535 * 56 bytes, and only once they are known to be in the file.
    let table_size = phnum * PHDR_SIZE;
    if phoff < EHDR_SIZE as u64 || !inside(phoff, table_size as u64, image.len()) {
        return Err(malformed("program headers outside the file"));
    }
    let mut table = vec![0u8; table_size];
    image
        .read_exact_at(&mut table, phoff)
        .map_err(|e| read_error(name, e))?;

    let mut segments = Vec::new();
    for ph in table.chunks_exact(PHDR_SIZE) {
        let kind = u32_at(ph, 0);
        if kind == PT_NOTE && !inside(u64_at(ph, 8), u64_at(ph, 32), image.len()) {
            return Err(malformed("note data outside the file"));
        }
        if kind != PT_LOAD {
            continue;
        }
        let offset = u64_at(ph, 8);
        let paddr = u64_at(ph, 24);
        let filesz = u64_at(ph, 32);
        let memsz = u64_at(ph, 40);
        if filesz > memsz {
            return Err(malformed("segment file size exceeds its memory size"));
        }
        if !inside(offset, filesz, image.len()) {
            return Err(malformed("segment data outside the file"));
        }
        if memsz == 0 {
            continue;
        }
        let end = paddr
            .checked_add(memsz)
            .ok_or_else(|| malformed("segment address overflows"))?;
        let seg = Segment { start: paddr, end };
        if paddr < KERNEL_MIN_ADDR {
            return Err(BootError::OverBootStructures {
                name: name.to_string(),
                start: paddr,
                end,
            });
        }
        if end > mobius_shared::layout::MEMORY_MAX {
            return Err(BootError::OutsideMemory {
                name: name.to_string(),
                start: paddr,
                end,
                limit: mobius_shared::layout::MEMORY_MAX,
            });
        }
        segments.push(seg);
    }
    if segments.is_empty() {
        return Err(malformed("no loadable segment"));
    }
    let end = segments.iter().map(|s| s.end).max().unwrap_or(0);
    if end > ram_size {
        return Err(BootError::MemoryTooSmall {
            name: name.to_string(),
            memory: ram_size,
            needed: end,
        });
    }
    if !segments.iter().any(|s| (s.start..s.end).contains(&entry)) {
        return Err(BootError::BadEntry {
            name: name.to_string(),
            entry,
        });
    }
    Ok(ElfInfo {
        entry,
        segments,
        end,
    })
}

/// Load `image`, which [`check`] found to be `info`, into `memory` (RAM
/// `[0, ram_size)`): each `PT_LOAD`'s file bytes are read straight into
/// guest memory.
pub fn load(
    name: &str,
    image: &mut KernelImage<'_>,
    info: &ElfInfo,
    memory: &GuestMemoryMmap,
    ram_size: u64,
) -> Result<LoadedKernel, BootError> {
    if info.end > ram_size {
        return Err(BootError::MemoryTooSmall {
            name: name.to_string(),
            memory: ram_size,
            needed: info.end,
        });
    }
    let result =
        Elf::load(memory, None, image, Some(GuestAddress(KERNEL_MIN_ADDR))).map_err(|source| {
            BootError::Load {
                name: name.to_string(),
                source,
            }
        })?;
    let pvh_entry = match result.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => Some(addr.0),
        _ => None,
    };
    Ok(LoadedKernel {
        entry: info.entry,
        pvh_entry,
        end: info.end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header + one PT_LOAD at `paddr` of `memsz` bytes, entry `entry`.
    fn image(paddr: u64, memsz: u64, entry: u64) -> Vec<u8> {
        let mut f = vec![0u8; EHDR_SIZE + PHDR_SIZE + 16];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        f[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = &mut f[EHDR_SIZE..EHDR_SIZE + PHDR_SIZE];
        ph[..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        ph[8..16].copy_from_slice(&((EHDR_SIZE + PHDR_SIZE) as u64).to_le_bytes());
        ph[24..32].copy_from_slice(&paddr.to_le_bytes());
        ph[32..40].copy_from_slice(&16u64.to_le_bytes());
        ph[40..48].copy_from_slice(&memsz.to_le_bytes());
        f
    }

    #[test]
    fn accepts_a_good_image() {
        let info = check(
            "k",
            &KernelImage::bytes(&image(0x10_0000, 0x1000, 0x10_0000)),
            4 << 20,
        )
        .unwrap();
        assert_eq!(info.end, 0x10_1000);
    }

    #[test]
    fn rejects_bad_placement() {
        let e = |img: Vec<u8>, ram| check("k", &KernelImage::bytes(&img), ram).unwrap_err();
        assert!(matches!(
            e(image(0x8000, 0x1000, 0x8000), 4 << 20),
            BootError::OverBootStructures { .. }
        ));
        assert!(matches!(
            e(image(0xbfff_f000, 0x2000, 0xbfff_f000), 4 << 20),
            BootError::OutsideMemory { .. }
        ));
        assert!(matches!(
            e(image(u64::MAX - 8, 0x1000, 0x10_0000), 4 << 20),
            BootError::Malformed { .. }
        ));
        assert!(matches!(
            e(image(0x10_0000, 8 << 20, 0x10_0000), 4 << 20),
            BootError::MemoryTooSmall { .. }
        ));
        assert!(matches!(
            e(image(0x10_0000, 0x1000, 0x20_0000), 4 << 20),
            BootError::BadEntry { .. }
        ));
        let mut bad_filesz = image(0x10_0000, 8, 0x10_0000);
        bad_filesz[EHDR_SIZE + 32..EHDR_SIZE + 40].copy_from_slice(&1000u64.to_le_bytes());
        bad_filesz[EHDR_SIZE + 40..EHDR_SIZE + 48].copy_from_slice(&2000u64.to_le_bytes());
        assert!(matches!(
            e(bad_filesz, 4 << 20),
            BootError::Malformed { .. }
        ));
    }

    /// Offsets and sizes far past the end of a kernel file are refused from
    /// the headers alone, before anything of that size is read or allocated.
    #[test]
    fn huge_offsets_in_a_file_are_malformed() {
        use std::io::Write;
        let set =
            |f: &mut Vec<u8>, at: usize, v: u64| f[at..at + 8].copy_from_slice(&v.to_le_bytes());
        let good = image(0x10_0000, 0x1000, 0x10_0000);
        let mut cases = Vec::new();
        let mut phoff = good.clone();
        set(&mut phoff, 32, u64::MAX - 8);
        cases.push((phoff, "program headers outside the file"));
        let mut phnum = good.clone();
        phnum[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        cases.push((phnum, "program headers outside the file"));
        for offset in [1 << 40, u64::MAX - 4] {
            let mut seg = good.clone();
            set(&mut seg, EHDR_SIZE + 8, offset);
            cases.push((seg, "segment data outside the file"));
        }
        let mut filesz = good.clone();
        set(&mut filesz, EHDR_SIZE + 32, 1 << 40);
        set(&mut filesz, EHDR_SIZE + 40, 1 << 40);
        cases.push((filesz, "segment data outside the file"));
        let mut note = good.clone();
        note[EHDR_SIZE..EHDR_SIZE + 4].copy_from_slice(&PT_NOTE.to_le_bytes());
        set(&mut note, EHDR_SIZE + 32, u64::MAX);
        cases.push((note, "note data outside the file"));
        for (bytes, want) in cases {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            file.write_all(&bytes).unwrap();
            let image = KernelImage::open(file.path()).unwrap();
            match check("k", &image, 4 << 20) {
                Err(BootError::Malformed { what, .. }) => assert_eq!(what, want),
                other => panic!("{want}: {other:?}"),
            }
        }
    }
}
