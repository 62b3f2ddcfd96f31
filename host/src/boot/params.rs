//! Boot structures in low guest memory, at the addresses of
//! [`mobius_shared::layout`]: GDT, identity page tables, PVH `hvm_start_info`,
//! its memory map, and the command line.

use mobius_shared::boot_params::BootParams;
use mobius_shared::initramfs::MODLIST_ADDR;
use mobius_shared::layout::{
    BOOT_GDT_ADDR, BOOT_PARAMS_ADDR, BOOT_PDPT_ADDR, BOOT_PD_ADDR, BOOT_PD_COUNT, BOOT_PML4_ADDR,
    CMDLINE_ADDR, CMDLINE_MAX, KERNEL_MIN_ADDR, MEMMAP_ADDR, PAGE_SIZE, START_INFO_ADDR,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::BootError;

/// GDT entries: null, 64-bit code, data, 32-bit code.
pub const GDT: [u64; 4] = [
    0,
    0x00af_9b00_0000_ffff, // 0x08: code, L=1, DPL 0, present, accessed
    0x00cf_9300_0000_ffff, // 0x10: data, 4 GiB flat, writable, accessed
    0x00cf_9b00_0000_ffff, // 0x18: code, D=1 (32-bit), 4 GiB flat
];
pub const CODE64_SELECTOR: u16 = 0x08;
pub const DATA_SELECTOR: u16 = 0x10;
pub const CODE32_SELECTOR: u16 = 0x18;

/// `hvm_start_info.magic` ("xEn3" with the 0x80 bit of 'E' cleared).
pub const PVH_MAGIC: u32 = 0x336e_c578;
/// E820 types of the PVH memory map.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
/// The top of conventional memory below 640 KiB, as on a PC.
pub const LOW_RAM_END: u64 = 0x9_fc00;

const PTE_PRESENT: u64 = 1;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_HUGE: u64 = 1 << 7;

/// Write the GDT at [`BOOT_GDT_ADDR`].
pub fn write_gdt(memory: &GuestMemoryMmap) -> Result<(), BootError> {
    let bytes: Vec<u8> = GDT.iter().flat_map(|e| e.to_le_bytes()).collect();
    memory.write_slice(&bytes, GuestAddress(BOOT_GDT_ADDR))?;
    Ok(())
}

/// Identity-map the first `BOOT_PD_COUNT` GiB with 2 MiB pages.
pub fn write_page_tables(memory: &GuestMemoryMmap) -> Result<(), BootError> {
    let table = PTE_PRESENT | PTE_WRITABLE;
    memory.write_obj(BOOT_PDPT_ADDR | table, GuestAddress(BOOT_PML4_ADDR))?;
    let pdpt: Vec<u8> = (0..BOOT_PD_COUNT)
        .flat_map(|i| ((BOOT_PD_ADDR + i * 0x1000) | table).to_le_bytes())
        .collect();
    memory.write_slice(&pdpt, GuestAddress(BOOT_PDPT_ADDR))?;
    let pds: Vec<u8> = (0..BOOT_PD_COUNT * 512)
        .flat_map(|i| ((i << 21) | table | PTE_HUGE).to_le_bytes())
        .collect();
    memory.write_slice(&pds, GuestAddress(BOOT_PD_ADDR))?;
    Ok(())
}

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// The memory map for RAM `[0, ram_size)`: low RAM, the legacy hole, high RAM.
pub fn memmap(ram_size: u64) -> Vec<MemmapEntry> {
    vec![
        MemmapEntry {
            addr: 0,
            size: LOW_RAM_END,
            kind: E820_RAM,
        },
        MemmapEntry {
            addr: LOW_RAM_END,
            size: KERNEL_MIN_ADDR - LOW_RAM_END,
            kind: E820_RESERVED,
        },
        MemmapEntry {
            addr: KERNEL_MIN_ADDR,
            size: ram_size - KERNEL_MIN_ADDR,
            kind: E820_RAM,
        },
    ]
}

/// A boot module for [`write_start_info`]: the initramfs.
#[derive(Debug, Clone, Copy)]
pub struct BootModule<'a> {
    pub data: &'a [u8],
    /// First byte after the kernel's segments ([`super::elf::LoadedKernel::end`]):
    /// the module goes above it.
    pub kernel_end: u64,
}

/// Where a module of `size` bytes goes in RAM `[0, ram_size)`: page-aligned
/// and as high as it fits, so that it ends at or just below the end of RAM,
/// above the kernel (ending at `kernel_end`) and the boot structures.
pub fn module_addr(ram_size: u64, kernel_end: u64, size: u64) -> Result<u64, BootError> {
    let floor = kernel_end
        .max(KERNEL_MIN_ADDR)
        .checked_next_multiple_of(PAGE_SIZE);
    let addr = ram_size
        .checked_sub(size)
        .map(|a| a & !(PAGE_SIZE - 1))
        .zip(floor)
        .filter(|&(addr, floor)| addr >= floor)
        .map(|(addr, _)| addr);
    addr.ok_or_else(|| BootError::InitramfsTooLarge {
        size,
        memory: ram_size,
        needed: floor
            .unwrap_or(u64::MAX)
            .saturating_add(size.checked_next_multiple_of(PAGE_SIZE).unwrap_or(u64::MAX)),
    })
}

/// Write `hvm_start_info` (version 1) and its memory map, and, if there is
/// a non-empty `module`, the module at the top of RAM ([`module_addr`]) and
/// its one `hvm_modlist_entry` at [`MODLIST_ADDR`]. The memory map does not
/// mention the module: the guest reserves its range itself.
pub fn write_start_info(
    memory: &GuestMemoryMmap,
    ram_size: u64,
    module: Option<BootModule<'_>>,
) -> Result<(), BootError> {
    let map = memmap(ram_size);
    let mut entries = Vec::with_capacity(map.len() * 24);
    for e in &map {
        entries.extend_from_slice(&e.addr.to_le_bytes());
        entries.extend_from_slice(&e.size.to_le_bytes());
        entries.extend_from_slice(&e.kind.to_le_bytes());
        entries.extend_from_slice(&0u32.to_le_bytes());
    }
    memory.write_slice(&entries, GuestAddress(MEMMAP_ADDR))?;

    let (nr_modules, modlist_paddr) = match module.filter(|m| !m.data.is_empty()) {
        Some(m) => {
            let size = m.data.len() as u64;
            let addr = module_addr(ram_size, m.kernel_end, size)?;
            memory.write_slice(m.data, GuestAddress(addr))?;
            let mut entry = Vec::with_capacity(32);
            entry.extend_from_slice(&addr.to_le_bytes());
            entry.extend_from_slice(&size.to_le_bytes());
            entry.extend_from_slice(&0u64.to_le_bytes()); // cmdline_paddr
            entry.extend_from_slice(&0u64.to_le_bytes()); // reserved
            memory.write_slice(&entry, GuestAddress(MODLIST_ADDR))?;
            (1u32, MODLIST_ADDR)
        }
        None => (0, 0),
    };

    let mut info = Vec::with_capacity(56);
    info.extend_from_slice(&PVH_MAGIC.to_le_bytes());
    info.extend_from_slice(&1u32.to_le_bytes()); // version
    info.extend_from_slice(&0u32.to_le_bytes()); // flags
    info.extend_from_slice(&nr_modules.to_le_bytes());
    info.extend_from_slice(&modlist_paddr.to_le_bytes());
    info.extend_from_slice(&CMDLINE_ADDR.to_le_bytes());
    info.extend_from_slice(&0u64.to_le_bytes()); // rsdp_paddr
    info.extend_from_slice(&MEMMAP_ADDR.to_le_bytes());
    info.extend_from_slice(&(map.len() as u32).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes()); // reserved
    memory.write_slice(&info, GuestAddress(START_INFO_ADDR))?;
    Ok(())
}

/// Write the Mobius boot parameters block at [`BOOT_PARAMS_ADDR`].
pub fn write_boot_params(memory: &GuestMemoryMmap, params: &BootParams) -> Result<(), BootError> {
    memory.write_slice(&params.encode(), GuestAddress(BOOT_PARAMS_ADDR))?;
    Ok(())
}

/// Write the NUL-terminated command line at [`CMDLINE_ADDR`].
pub fn write_cmdline(memory: &GuestMemoryMmap, cmdline: &str) -> Result<(), BootError> {
    if cmdline.as_bytes().contains(&0) {
        return Err(BootError::CmdlineNul);
    }
    if cmdline.len() + 1 > CMDLINE_MAX {
        return Err(BootError::CmdlineTooLong { len: cmdline.len() });
    }
    let mut bytes = Vec::with_capacity(cmdline.len() + 1);
    bytes.extend_from_slice(cmdline.as_bytes());
    bytes.push(0);
    memory.write_slice(&bytes, GuestAddress(CMDLINE_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 8 << 20)]).unwrap()
    }

    #[test]
    fn page_tables_identity_map_4g_with_2m_pages() {
        let m = mem();
        write_page_tables(&m).unwrap();
        let pml4: u64 = m.read_obj(GuestAddress(BOOT_PML4_ADDR)).unwrap();
        assert_eq!(pml4, BOOT_PDPT_ADDR | 3);
        let pdpt3: u64 = m.read_obj(GuestAddress(BOOT_PDPT_ADDR + 24)).unwrap();
        assert_eq!(pdpt3, (BOOT_PD_ADDR + 0x3000) | 3);
        let last: u64 = m.read_obj(GuestAddress(BOOT_PD_ADDR + 0x3ff8)).unwrap();
        assert_eq!(last, ((4u64 << 30) - (2 << 20)) | 0x83);
        // The PDs end below the command line.
        const { assert!(BOOT_PD_ADDR + BOOT_PD_COUNT * 0x1000 <= CMDLINE_ADDR) };
    }

    #[test]
    fn start_info_and_memmap() {
        let m = mem();
        write_start_info(&m, 8 << 20, None).unwrap();
        let magic: u32 = m.read_obj(GuestAddress(START_INFO_ADDR)).unwrap();
        assert_eq!(magic, PVH_MAGIC);
        let nr_modules: u32 = m.read_obj(GuestAddress(START_INFO_ADDR + 12)).unwrap();
        let modlist: u64 = m.read_obj(GuestAddress(START_INFO_ADDR + 16)).unwrap();
        assert_eq!((nr_modules, modlist), (0, 0));
        let entries: u32 = m.read_obj(GuestAddress(START_INFO_ADDR + 48)).unwrap();
        assert_eq!(entries, 3);
        let size: u64 = m.read_obj(GuestAddress(MEMMAP_ADDR + 2 * 24 + 8)).unwrap();
        assert_eq!(size, (8 << 20) - KERNEL_MIN_ADDR);
    }

    /// Read back start info, modlist entry and module after a write.
    fn module_of(m: &GuestMemoryMmap) -> (u32, u64, [u64; 4]) {
        let nr: u32 = m.read_obj(GuestAddress(START_INFO_ADDR + 12)).unwrap();
        let list: u64 = m.read_obj(GuestAddress(START_INFO_ADDR + 16)).unwrap();
        let mut entry = [0u64; 4];
        for (i, f) in entry.iter_mut().enumerate() {
            *f = m
                .read_obj(GuestAddress(MODLIST_ADDR + 8 * i as u64))
                .unwrap();
        }
        (nr, list, entry)
    }

    #[test]
    fn start_info_module_at_the_top_of_ram() {
        let m = mem();
        let ram = 8u64 << 20;
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let module = BootModule {
            data: &data,
            kernel_end: 0x12_3456,
        };
        write_start_info(&m, ram, Some(module)).unwrap();
        let (nr, list, [paddr, size, cmdline, reserved]) = module_of(&m);
        assert_eq!((nr, list), (1, MODLIST_ADDR));
        assert_eq!(paddr, ram - 0x2000);
        assert_eq!(paddr % PAGE_SIZE, 0);
        assert!(paddr + size <= ram && paddr >= 0x12_4000);
        assert_eq!((size, cmdline, reserved), (5000, 0, 0));
        let mut back = vec![0u8; data.len()];
        m.read_slice(&mut back, GuestAddress(paddr)).unwrap();
        assert_eq!(back, data);
        // The rest of start info is as without a module.
        let cmd: u64 = m.read_obj(GuestAddress(START_INFO_ADDR + 24)).unwrap();
        let map: u64 = m.read_obj(GuestAddress(START_INFO_ADDR + 40)).unwrap();
        let entries: u32 = m.read_obj(GuestAddress(START_INFO_ADDR + 48)).unwrap();
        assert_eq!((cmd, map, entries), (CMDLINE_ADDR, MEMMAP_ADDR, 3));
        // The memory map still ends at the end of RAM.
        let size: u64 = m.read_obj(GuestAddress(MEMMAP_ADDR + 2 * 24 + 8)).unwrap();
        assert_eq!(size, ram - KERNEL_MIN_ADDR);

        // A page-sized module ends exactly at the end of RAM; an empty one is none.
        assert_eq!(
            module_addr(ram, 0x20_0000, PAGE_SIZE).unwrap(),
            ram - PAGE_SIZE
        );
        let m = mem();
        let empty = BootModule {
            data: &[],
            kernel_end: 0x20_0000,
        };
        write_start_info(&m, ram, Some(empty)).unwrap();
        assert_eq!(module_of(&m).0, 0);
    }

    #[test]
    fn module_too_large_for_memory() {
        let ram = 8u64 << 20;
        let kernel_end = 0x20_0001; // the module starts at 0x201000 at the lowest
        let fits = ram - 0x20_1000;
        assert_eq!(module_addr(ram, kernel_end, fits).unwrap(), 0x20_1000);
        let err = module_addr(ram, kernel_end, fits + 1).unwrap_err();
        assert!(err.is_usage());
        match &err {
            BootError::InitramfsTooLarge {
                size,
                memory,
                needed,
            } => assert_eq!((*size, *memory, *needed), (fits + 1, ram, ram + PAGE_SIZE)),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("--memory"), "{err}");
        assert!(module_addr(ram, kernel_end, u64::MAX).is_err());
        assert!(module_addr(ram, u64::MAX, 1).is_err());
        // Nothing is written when it does not fit.
        let m = mem();
        let data = vec![1u8; fits as usize + 1];
        let module = BootModule {
            data: &data,
            kernel_end,
        };
        assert!(matches!(
            write_start_info(&m, ram, Some(module)),
            Err(BootError::InitramfsTooLarge { .. })
        ));
        assert_eq!(module_of(&m).0, 0);
    }

    #[test]
    fn cmdline_limits() {
        let m = mem();
        write_cmdline(&m, "a=b").unwrap();
        assert!(matches!(
            write_cmdline(&m, &"x".repeat(CMDLINE_MAX)),
            Err(BootError::CmdlineTooLong { .. })
        ));
        assert!(matches!(
            write_cmdline(&m, "a\0b"),
            Err(BootError::CmdlineNul)
        ));
    }
}
