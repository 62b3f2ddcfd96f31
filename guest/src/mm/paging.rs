//! The page-table abstraction the Möbius VMM is written against.
//!
//! The VMM (`mm::vmm`) never touches hardware page tables directly: it calls an
//! [`Mmu`]. In the guest kernel the implementation is `arch::x86_64::paging`
//! (real 4-level x86-64 tables, TLB invalidation); on the host, `cargo test` uses
//! [`crate::mm::soft_mmu::SoftMmu`], a software model with simulated physical
//! memory. Keeping this trait small is what lets most of the VMM be tested
//! without a VM.

/// A guest-physical address.
pub type PhysAddr = u64;
/// A guest-virtual address.
pub type VirtAddr = u64;

/// Size of a page / frame.
pub const PAGE_SIZE: u64 = 4096;

/// Round down to a page boundary (Möbius `PAGE_ALIGN`).
pub const fn page_align_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Round up to a page boundary (Möbius `PAGE_ALIGN_UP`); `None` on overflow.
pub const fn page_align_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(a) => Some(a & !(PAGE_SIZE - 1)),
        None => None,
    }
}

bitflags::bitflags! {
    /// Hardware attributes of one 4 KiB mapping. "Present" is implied by the
    /// mapping existing; a page without `WRITABLE` is read-only, also for the
    /// kernel (CR0.WP is set).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PageAttrs: u32 {
        /// Writes allowed (x86 R/W).
        const WRITABLE = 1 << 0;
        /// User-mode access allowed (x86 U/S).
        const USER = 1 << 1;
        /// Instruction fetch not allowed (x86 NX, needs EFER.NXE).
        const NO_EXECUTE = 1 << 2;
        /// Write-through caching (x86 PWT) — `VM_MEM_CACHE_WT`.
        const WRITE_THROUGH = 1 << 3;
        /// Caching disabled (x86 PCD) — `VM_MEM_CACHE_NONE`.
        const CACHE_DISABLE = 1 << 4;
    }
}

/// Why an [`Mmu`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No frame for an intermediate page table.
    OutOfFrames,
    /// The page is already mapped (`map`) or not mapped (`protect`).
    AlreadyMapped,
    NotMapped,
    /// The address is not canonical or not page aligned, or lies in a region
    /// the MMU does not let the VMM manage (for example a huge-page mapping).
    BadAddress,
}

/// Where page-table pages come from and go back to. Frames returned by
/// [`TableFrames::alloc_table`] must be zeroed.
pub trait TableFrames {
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    /// Give back a table that reads as zero.
    fn free_table(&mut self, frame: PhysAddr);
    /// Give back a table that may still hold entries (to be zeroed before
    /// it is handed out again).
    fn free_dirty_table(&mut self, frame: PhysAddr);
}

/// Page-table operations on address spaces identified by their root table.
///
/// Every root shares the kernel half (created by [`Mmu::new_root`] from the
/// kernel's template), so a kernel-half mapping made through any root is seen
/// through all of them.
pub trait Mmu {
    /// Create a new, empty root whose kernel half is shared with every other root.
    fn new_root(&mut self, frames: &mut dyn TableFrames) -> Result<PhysAddr, MapError>;
    /// Free a root created by `new_root` and every user-half table below it,
    /// whatever they still map; frames they point to are not touched. No
    /// CPU may run on the root (it is not live).
    fn free_root(&mut self, root: PhysAddr, frames: &mut dyn TableFrames);
    /// Map one page. Invalidates the TLB entry where needed.
    fn map(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frame: PhysAddr,
        attrs: PageAttrs,
        frames: &mut dyn TableFrames,
    ) -> Result<(), MapError>;
    /// Free the page table that maps `page` of the user half of `root`,
    /// with whatever it still maps (the frames are not touched), and the
    /// directories this leaves empty; `false` if there is none. Only for
    /// a space being torn down that no CPU runs on (no TLB flush): it lets
    /// the VMM free a dying space's tables where it knows pages are
    /// mapped, so that [`Mmu::free_root`] finds little left to look for.
    /// The default does nothing (`free_root` then frees everything).
    fn free_page_table(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frames: &mut dyn TableFrames,
    ) -> bool {
        let _ = (root, page, frames);
        false
    }
    /// Unmap one page and return the frame it mapped; page tables left empty
    /// by this are freed (except the root and shared kernel-half tables).
    fn unmap(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frames: &mut dyn TableFrames,
    ) -> Option<PhysAddr>;
    /// Change the attributes of a mapped page (for example clean → dirty).
    fn protect(&mut self, root: PhysAddr, page: VirtAddr, attrs: PageAttrs)
        -> Result<(), MapError>;
    /// The frame and attributes a page is mapped to, if any.
    fn translate(&self, root: PhysAddr, page: VirtAddr) -> Option<(PhysAddr, PageAttrs)>;

    /// Make a mapped page writable, keeping its other attributes (the clean →
    /// dirty upgrade of `VmmPageFault`): `Ok(true)` if it is now, `Ok(false)`
    /// if it was writable already, `Err(NotMapped)` if it is not mapped. The
    /// default is [`Mmu::translate`] then [`Mmu::protect`]; an MMU can do it
    /// in one page-table walk.
    fn set_writable(&mut self, root: PhysAddr, page: VirtAddr) -> Result<bool, MapError> {
        let (_, attrs) = self.translate(root, page).ok_or(MapError::NotMapped)?;
        if attrs.contains(PageAttrs::WRITABLE) {
            return Ok(false);
        }
        self.protect(root, page, attrs | PageAttrs::WRITABLE)?;
        Ok(true)
    }

    /// Map `frames[i]` at `first + i * PAGE_SIZE` with `attrs` for every
    /// `Some`, where nothing is mapped yet (at most 64 pages, which the
    /// caller keeps inside one 2 MiB block whose page table exists: a page
    /// of it is mapped). Pages that cannot be mapped that way are skipped.
    /// Returns a mask of the pages mapped (bit `i`: `frames[i]`). The
    /// default maps page by page; an MMU can do it in one walk.
    fn map_block(
        &mut self,
        root: PhysAddr,
        first: VirtAddr,
        frames: &[Option<PhysAddr>],
        attrs: PageAttrs,
        tables: &mut dyn TableFrames,
    ) -> u64 {
        let mut mapped = 0;
        for (i, f) in frames.iter().enumerate().take(64) {
            let Some(frame) = *f else { continue };
            let page = first + i as u64 * PAGE_SIZE;
            if self.map(root, page, frame, attrs, tables).is_ok() {
                mapped |= 1 << i;
            }
        }
        mapped
    }

    /// Whether the CPU runs on `root` right now (it is in CR3): such a
    /// space must not be torn down.
    fn is_live(&self, root: PhysAddr) -> bool {
        let _ = root;
        false
    }

    /// Fill a whole frame with zeroes.
    fn zero_frame(&mut self, frame: PhysAddr);
    /// Copy `data` into physical memory at `frame + offset` (within one frame).
    fn write_frame(&mut self, frame: PhysAddr, offset: usize, data: &[u8]);
    /// Copy physical memory at `frame + offset` into `out` (within one frame).
    fn read_frame(&self, frame: PhysAddr, offset: usize, out: &mut [u8]);
    /// Copy the whole frame `src` into `dst` (a copy-on-write break).
    fn copy_frame(&mut self, dst: PhysAddr, src: PhysAddr) {
        let mut page = alloc::vec![0u8; PAGE_SIZE as usize];
        self.read_frame(src, 0, &mut page);
        self.write_frame(dst, 0, &page);
    }
}
