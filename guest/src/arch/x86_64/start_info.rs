//! The PVH `hvm_start_info` handed over by the loader (Xen's
//! `arch-x86/hvm/start_info.h`, version 1): memory map and command line.
use crate::mm::frame::MemRegion;
use mobius_shared::boot_params::{self, ParamsView};
use mobius_shared::layout::BOOT_PARAMS_ADDR;

const MAGIC: u32 = 0x336e_c578;
const MEMMAP_TYPE_RAM: u32 = 1;
/// Anything larger is not a memory map we believe.
const MAX_ENTRIES: u32 = 128;
const MAX_CMDLINE: usize = 4096;

#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// At most this many RAM regions are used (read before the heap exists);
/// RAM past them is left unused. A microVM's map has one or two (`mobius`
/// gives two, QEMU's microvm two or three), and every array slot is bytes
/// zeroed and copied in emulated ring 0 at boot.
pub const MAX_RAM_REGIONS: usize = 8;

/// What the kernel needs from the start info.
pub struct BootInfo {
    /// The command line; with the host's boot parameters block, only the
    /// user's words (the host's facts are in `params`).
    pub cmdline: &'static str,
    /// The `mobius` host's boot parameters block, if it wrote one.
    pub params: Option<ParamsView<'static>>,
    /// The loader's memory map.
    pub ram: RamMap,
    /// The first boot module (the initramfs): physical address and size.
    pub module: Option<(u64, u64)>,
}

/// One `hvm_modlist_entry`.
#[repr(C)]
struct ModlistEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

/// The first module of the start info, if it has one of a sane size inside
/// the first 4 GiB (the direct map's reach).
///
/// # Safety
/// `info` is the loader's start info; its module list, when present, is
/// in identity-mapped low memory.
unsafe fn first_module(info: &StartInfo) -> Option<(u64, u64)> {
    if info.nr_modules == 0 || info.modlist_paddr == 0 || info.modlist_paddr >= 1 << 20 {
        return None;
    }
    // SAFETY: the caller vouches for the list's address (checked below 1 MiB).
    let m = unsafe { &*(info.modlist_paddr as *const ModlistEntry) };
    let end = m.paddr.checked_add(m.size)?;
    (m.size > 0 && end <= 4 << 30).then_some((m.paddr, m.size))
}

/// The loader's memory map, read where it lies: low memory below the kernel,
/// which the kernel never hands out, so it stays valid. Nothing is copied at
/// boot (every byte copied is emulated work on kvm_pvm); the RAM regions are
/// gathered when the VMM starts or a snapshot counts frames.
#[derive(Clone, Copy)]
pub struct RamMap {
    entries: &'static [MemmapEntry],
}

impl RamMap {
    /// The RAM regions of the map (the first [`MAX_RAM_REGIONS`]).
    pub fn iter(&self) -> RamRegions {
        RamRegions {
            entries: self.entries.iter(),
            left: MAX_RAM_REGIONS,
        }
    }

    /// The same, in an array, and how many there are.
    pub fn regions(&self) -> ([MemRegion; MAX_RAM_REGIONS], usize) {
        let mut ram = [MemRegion::new(0, 0); MAX_RAM_REGIONS];
        let mut len = 0;
        for region in self.iter() {
            ram[len] = region;
            len += 1;
        }
        (ram, len)
    }

    /// End of the highest RAM region.
    pub fn end(&self) -> u64 {
        let mut end = 0;
        for r in self.iter() {
            end = end.max(r.base.saturating_add(r.len));
        }
        end
    }
}

/// The iterator of [`RamMap::iter`]: one plain loop, since adapter chains
/// cost several times the instructions in emulated ring 0.
pub struct RamRegions {
    entries: core::slice::Iter<'static, MemmapEntry>,
    left: usize,
}

impl Iterator for RamRegions {
    type Item = MemRegion;

    fn next(&mut self) -> Option<MemRegion> {
        if self.left == 0 {
            return None;
        }
        for e in self.entries.by_ref() {
            if e.kind == MEMMAP_TYPE_RAM && e.size > 0 {
                self.left -= 1;
                return Some(MemRegion::new(e.addr, e.size));
            }
        }
        None
    }
}

/// Why the start info could not be used.
#[derive(Debug)]
pub enum StartInfoError {
    BadMagic(u32),
    NoMemoryMap,
}

/// Read the start info at physical address `addr` (identity mapped).
///
/// # Safety
/// `addr` must be the start-info pointer the loader passed, in identity-mapped
/// memory that nothing else writes.
pub unsafe fn read(addr: u64) -> Result<BootInfo, StartInfoError> {
    // SAFETY: the caller vouches for `addr`.
    let info = unsafe { &*(addr as *const StartInfo) };
    if info.magic != MAGIC {
        return Err(StartInfoError::BadMagic(info.magic));
    }
    if info.memmap_paddr == 0 || info.memmap_entries == 0 {
        return Err(StartInfoError::NoMemoryMap);
    }
    let n = info.memmap_entries.min(MAX_ENTRIES) as usize;
    // SAFETY: the loader put `memmap_entries` entries at `memmap_paddr`, in
    // low memory that nothing writes after boot (see `RamMap`).
    let entries =
        unsafe { core::slice::from_raw_parts(info.memmap_paddr as *const MemmapEntry, n) };
    // SAFETY: the block's address is low RAM, identity-mapped, that any PVH
    // loader leaves to us; a loader that wrote something else there fails
    // the magic and version check.
    let params = unsafe { boot_params() };
    // With the host's block, its words on the line are known already and
    // the block says how long the user's part is: read only that, without
    // looking for the NUL (every byte read is emulated on kvm_pvm).
    let cmdline = match params {
        Some(p) => {
            let len = (p.user_cmdline_len() as usize).min(MAX_CMDLINE);
            // SAFETY: the host put a line of at least `len` bytes there.
            unsafe { line_at(info.cmdline_paddr, len) }
        }
        // SAFETY: the loader put a NUL-terminated line at `cmdline_paddr`.
        None => unsafe { cmdline_at(info.cmdline_paddr, MAX_CMDLINE) },
    };
    // SAFETY: the start info is the loader's.
    let module = unsafe { first_module(info) };
    Ok(BootInfo {
        cmdline,
        params,
        ram: RamMap { entries },
        module,
    })
}

/// The `mobius` boot parameters at their fixed address, if valid.
///
/// # Safety
/// [`BOOT_PARAMS_ADDR`] must be identity-mapped, readable memory.
unsafe fn boot_params() -> Option<ParamsView<'static>> {
    // SAFETY: the caller vouches for the address; any bytes are a valid
    // array, and nothing writes the block after boot (low memory the
    // kernel never hands out).
    let raw = unsafe { &*(BOOT_PARAMS_ADDR as *const [u8; boot_params::LEN]) };
    ParamsView::new(raw)
}

/// The first `len` bytes of the line at `addr`, cut at the first byte that
/// is not UTF-8.
unsafe fn line_at(addr: u64, len: usize) -> &'static str {
    if addr == 0 {
        return "";
    }
    // SAFETY: the caller vouches for `len` bytes at `addr`.
    let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
    // core's ASCII check goes a word at a time.
    as_str(bytes, bytes.is_ascii())
}

/// The NUL-terminated command line at `addr`, cut at `max` bytes and at the
/// first byte that is not UTF-8.
unsafe fn cmdline_at(addr: u64, max: usize) -> &'static str {
    if addr == 0 {
        return "";
    }
    let base = addr as *const u8;
    let (mut len, mut high_bits) = (0, 0u8);
    while len < max {
        // SAFETY: reading up to the NUL (or the cap) of the loader's line.
        let b = unsafe { *base.add(len) };
        if b == 0 {
            break;
        }
        high_bits |= b;
        len += 1;
    }
    // SAFETY: `len` bytes were just read.
    let bytes = unsafe { core::slice::from_raw_parts(base, len) };
    as_str(bytes, high_bits & 0x80 == 0)
}

/// `bytes` as text, up to the first byte that is not UTF-8. The usual line
/// is ASCII, which the caller has checked (`ascii`): then the validator's
/// ~100 emulated instructions are spared.
fn as_str(bytes: &'static [u8], ascii: bool) -> &'static str {
    if ascii {
        // SAFETY: ASCII bytes are UTF-8.
        return unsafe { core::str::from_utf8_unchecked(bytes) };
    }
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}
