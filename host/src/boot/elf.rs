//! Checking and loading the kernel ELF.
//!
//! linux-loader does the loading (and finds the PVH note), but it checks
//! neither class nor machine nor where segments land, so a short parse of the
//! headers comes first and turns every bad image into a precise [`BootError`].

use std::io::Cursor;

use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::KernelLoader;
use mobius_shared::layout::KERNEL_MIN_ADDR;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::BootError;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
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

/// Check the ELF header and program headers of `image` (named `name` in
/// messages) against guest RAM `[0, ram_size)`.
pub fn check(name: &str, image: &[u8], ram_size: u64) -> Result<ElfInfo, BootError> {
    let malformed = |what: &str| BootError::Malformed {
        name: name.to_string(),
        what: what.to_string(),
    };
    if image.len() < 4 || &image[..4] != b"\x7fELF" {
        return Err(BootError::NotElf(name.to_string()));
    }
    if image.len() < 6 {
        return Err(malformed("truncated ELF header"));
    }
    match image[4] {
        2 => {}
        1 => return Err(BootError::WrongClass(name.to_string())),
        _ => return Err(malformed("unknown ELF class")),
    }
    match image[5] {
        1 => {}
        2 => return Err(BootError::WrongEndian(name.to_string())),
        _ => return Err(malformed("unknown ELF data encoding")),
    }
    if image.len() < EHDR_SIZE {
        return Err(malformed("truncated ELF header"));
    }
    let machine = u16_at(image, 18);
    if machine != EM_X86_64 {
        return Err(BootError::WrongMachine {
            name: name.to_string(),
            machine,
        });
    }
    let entry = u64_at(image, 24);
    let phoff = u64_at(image, 32);
    let phentsize = u16_at(image, 54) as usize;
    let phnum = u16_at(image, 56) as usize;
    if phentsize != PHDR_SIZE {
        return Err(malformed("program header size is not 56"));
    }
    let table_end = usize::try_from(phoff)
        .ok()
        .filter(|&o| o >= EHDR_SIZE)
        .and_then(|o| o.checked_add(phnum * PHDR_SIZE))
        .filter(|&e| e <= image.len())
        .ok_or_else(|| malformed("program headers outside the file"))?;
    let table = &image[table_end - phnum * PHDR_SIZE..table_end];

    let mut segments = Vec::new();
    for ph in table.chunks_exact(PHDR_SIZE) {
        if u32_at(ph, 0) != PT_LOAD {
            continue;
        }
        let offset = u64_at(ph, 8);
        let paddr = u64_at(ph, 24);
        let filesz = u64_at(ph, 32);
        let memsz = u64_at(ph, 40);
        if filesz > memsz {
            return Err(malformed("segment file size exceeds its memory size"));
        }
        if offset
            .checked_add(filesz)
            .is_none_or(|e| e > image.len() as u64)
        {
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

/// Check `image` and load it into `memory` (RAM `[0, ram_size)`).
pub fn load(
    name: &str,
    image: &[u8],
    memory: &GuestMemoryMmap,
    ram_size: u64,
) -> Result<LoadedKernel, BootError> {
    let info = check(name, image, ram_size)?;
    let result = Elf::load(
        memory,
        None,
        &mut Cursor::new(image),
        Some(GuestAddress(KERNEL_MIN_ADDR)),
    )
    .map_err(|source| BootError::Load {
        name: name.to_string(),
        source,
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
        let info = check("k", &image(0x10_0000, 0x1000, 0x10_0000), 4 << 20).unwrap();
        assert_eq!(info.end, 0x10_1000);
    }

    #[test]
    fn rejects_bad_placement() {
        let e = |img: Vec<u8>, ram| check("k", &img, ram).unwrap_err();
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
}
