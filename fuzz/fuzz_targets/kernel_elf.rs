//! The host's kernel ELF checks and loader (`mobius::boot::elf`) on arbitrary
//! bytes: `check` never panics; what it accepts lies where the guest's RAM
//! and the boot structures allow; `load` then never panics either, and puts
//! each segment's file bytes at its physical address.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mobius::boot::elf::{check, load};
use mobius::boot::image::KernelImage;
use mobius_shared::layout::{KERNEL_MIN_ADDR, MEMORY_MAX};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM of the fuzz runs (the default `--memory` is larger; a smaller
/// one also exercises `MemoryTooSmall`).
const RAM: u64 = 8 << 20;

fn memory() -> &'static GuestMemoryMmap {
    static MEM: OnceLock<GuestMemoryMmap> = OnceLock::new();
    MEM.get_or_init(|| {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).expect("guest memory")
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// `(offset, paddr, filesz)` of each `PT_LOAD` (the header is valid: `check`
/// accepted it).
fn loads(data: &[u8]) -> Vec<(u64, u64, u64)> {
    let phoff = u64_at(data, 32) as usize;
    let phnum = u16::from_le_bytes([data[56], data[57]]) as usize;
    (0..phnum)
        .map(|i| &data[phoff + 56 * i..phoff + 56 * (i + 1)])
        .filter(|ph| u32::from_le_bytes(ph[..4].try_into().expect("4 bytes")) == 1)
        .map(|ph| (u64_at(ph, 8), u64_at(ph, 24), u64_at(ph, 32)))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let image = KernelImage::bytes(data);
    let Ok(info) = check("fuzz", &image, RAM) else {
        return;
    };
    assert!(!info.segments.is_empty());
    for s in &info.segments {
        assert!(s.start >= KERNEL_MIN_ADDR, "{s:?} over the boot structures");
        assert!(s.start < s.end && s.end <= MEMORY_MAX, "{s:?}");
        assert!(s.end <= info.end);
    }
    assert_eq!(info.segments.iter().map(|s| s.end).max(), Some(info.end));
    assert!(info.end <= RAM);
    assert!(info
        .segments
        .iter()
        .any(|s| (s.start..s.end).contains(&info.entry)));
    // A larger RAM accepts the same image the same way.
    assert_eq!(check("fuzz", &image, MEMORY_MAX).ok(), Some(info.clone()));

    let mut image = KernelImage::bytes(data);
    let Ok(kernel) = load("fuzz", &mut image, &info, memory(), RAM) else {
        return;
    };
    assert_eq!((kernel.entry, kernel.end), (info.entry, info.end));
    // Each segment's file bytes at its physical address, unless a later
    // segment overwrote them (the kernel check does not refuse overlaps).
    let segs = loads(data);
    for (i, &(offset, paddr, filesz)) in segs.iter().enumerate() {
        let overlapped = segs[i + 1..]
            .iter()
            .any(|&(_, p, f)| p < paddr + filesz && paddr < p + f);
        if filesz == 0 || overlapped {
            continue;
        }
        let mut got = vec![0u8; filesz as usize];
        memory()
            .read_slice(&mut got, GuestAddress(paddr))
            .expect("a checked segment lies in RAM");
        assert_eq!(
            got[..],
            data[offset as usize..(offset + filesz) as usize],
            "segment at {paddr:#x}"
        );
    }
});
