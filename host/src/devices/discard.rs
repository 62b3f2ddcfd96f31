//! The frame-discard port ([`mobius_shared::ports::DISCARD_FRAME`]): the guest
//! writes a page frame number and the host drops the backing of that 4 KiB page
//! with `madvise(MADV_DONTNEED)`, so it reads back as zeroes.

use mobius_shared::layout::PAGE_SIZE;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Outcome of one discard request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    Done,
    /// The frame is not inside guest RAM; nothing was touched.
    OutOfRange,
    /// madvise failed (errno).
    Failed(i32),
}

/// Drop the backing of guest frame `pfn` if it lies inside guest RAM `[0, ram_size)`.
pub fn discard_frame(memory: &GuestMemoryMmap, ram_size: u64, pfn: u64) -> Discard {
    let Some(gpa) = pfn.checked_mul(PAGE_SIZE) else {
        return Discard::OutOfRange;
    };
    match gpa.checked_add(PAGE_SIZE) {
        Some(end) if end <= ram_size => {}
        _ => return Discard::OutOfRange,
    }
    // The page must be wholly inside one region of the mapping.
    let Some(region) = memory.find_region(GuestAddress(gpa)) else {
        return Discard::OutOfRange;
    };
    use vm_memory::GuestMemoryRegion;
    let Some(offset) = gpa.checked_sub(region.start_addr().0) else {
        return Discard::OutOfRange;
    };
    if offset + PAGE_SIZE > region.len() {
        return Discard::OutOfRange;
    }
    let host = match memory.get_host_address(GuestAddress(gpa)) {
        Ok(p) => p,
        Err(_) => return Discard::OutOfRange,
    };
    // SAFETY: `host` points at the start of a page-aligned 4 KiB range that lies
    // entirely inside a private anonymous mapping owned by `memory` (checked
    // above). MADV_DONTNEED on it only replaces the page with zero-fill-on-demand;
    // it cannot affect any memory outside the guest region, and the guest (the
    // only user of these bytes) asked for it.
    let rc = unsafe { libc::madvise(host.cast(), PAGE_SIZE as usize, libc::MADV_DONTNEED) };
    if rc == 0 {
        Discard::Done
    } else {
        Discard::Failed(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn discards_inside_ram_only() {
        let size = 16 * PAGE_SIZE;
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size as usize)]).unwrap();
        mem.write_obj(0xabcd_u32, GuestAddress(3 * PAGE_SIZE + 8))
            .unwrap();
        assert_eq!(discard_frame(&mem, size, 3), Discard::Done);
        assert_eq!(
            mem.read_obj::<u32>(GuestAddress(3 * PAGE_SIZE + 8))
                .unwrap(),
            0
        );
        assert_eq!(discard_frame(&mem, size, 16), Discard::OutOfRange);
        assert_eq!(discard_frame(&mem, size, u64::MAX), Discard::OutOfRange);
        assert_eq!(discard_frame(&mem, size, 1 << 52), Discard::OutOfRange);
    }
}
