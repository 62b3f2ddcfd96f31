//! Real x86-64 4-level page tables behind the VMM's [`Mmu`] trait.
//!
//! Layout (see `mm::vmm` for the VMM's ranges, `super::direct` for the
//! kernel's windows on physical memory):
//! * PML4 slot 0 — in the kernel's root (the boot tables, the template): the
//!   boot identity map of the first 4 GiB with 2 MiB pages, never changed
//!   here. In every other root it starts as the same entry and becomes
//!   private on the first user mapping below 512 GiB (ELF programs are
//!   linked at 4 MiB): a private PDPT and directory that keep only the low
//!   identity map (`[0, LOW_IDENTITY_END)`, kernel-only) and hold user page
//!   tables above it.
//! * slots 1–255 — the user half, private to each root.
//! * slot 256 — the kernel half; its PDPT is allocated once at boot
//!   ([`X86Mmu::new`]) and copied into every root, so kernel mappings made
//!   through any root are seen through all of them.
//! * slot 257 — the direct map of physical memory (`super::direct`), copied
//!   into every root: page tables and frames are reached through it.
//!
//! Each non-leaf entry keeps, in its ignored bits 52–61, the number of live
//! entries of the table it points to. `unmap` can then free a table the moment
//! it empties without scanning 512 entries — on kvm_pvm, where ring-0 code is
//! emulated, such a scan would cost more than the whole fault.
use core::arch::asm;

use x86_64::instructions::tlb;
use x86_64::VirtAddr as X86VirtAddr;

use super::direct::{phys_to_virt, DIRECT_SLOT, LOW_IDENTITY_END};
use crate::mm::paging::{MapError, Mmu, PageAttrs, PhysAddr, TableFrames, VirtAddr, PAGE_SIZE};

pub(super) const PRESENT: u64 = 1 << 0;
pub(super) const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
pub(super) const PWT: u64 = 1 << 3;
pub(super) const PCD: u64 = 1 << 4;
pub(super) const HUGE: u64 = 1 << 7;
const NX: u64 = 1 << 63;
pub(super) const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const COUNT_SHIFT: u32 = 52;
const COUNT_MASK: u64 = 0x3ff << COUNT_SHIFT;
const KERNEL_SLOT: usize = 256;
const IDENTITY_SLOT: usize = 0;
const ENTRIES: usize = 512;

/// The guest's MMU.
pub struct X86Mmu {
    /// PML4 whose slots 0 and 256 every new root copies.
    template: PhysAddr,
    /// Whether EFER.NXE is on (otherwise NX bits must stay clear).
    nx: bool,
}

fn table(phys: PhysAddr) -> *mut u64 {
    phys_to_virt(phys) as *mut u64
}

fn read_entry(table_phys: PhysAddr, index: usize) -> u64 {
    // SAFETY: `table_phys` is a page-table frame reached through the direct
    // map and `index` < 512.
    unsafe { table(table_phys).add(index).read_volatile() }
}

fn write_entry(table_phys: PhysAddr, index: usize, value: u64) {
    // SAFETY: as for `read_entry`; page-table frames belong to this MMU.
    unsafe { table(table_phys).add(index).write_volatile(value) }
}

fn indices(va: VirtAddr) -> [usize; 4] {
    [
        ((va >> 39) & 511) as usize,
        ((va >> 30) & 511) as usize,
        ((va >> 21) & 511) as usize,
        ((va >> 12) & 511) as usize,
    ]
}

fn count(entry: u64) -> u64 {
    (entry & COUNT_MASK) >> COUNT_SHIFT
}

fn with_count(entry: u64, n: u64) -> u64 {
    (entry & !COUNT_MASK) | (n << COUNT_SHIFT)
}

fn is_canonical(va: VirtAddr) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

impl X86Mmu {
    /// Take over the current page tables as the template: install the
    /// kernel-half PDPT (a zeroed frame from `frames`) in slot 256.
    ///
    /// # Safety
    /// CR3 must point at the boot tables (identity map in slot 0) and nothing
    /// else may be using slot 256.
    pub unsafe fn new(nx: bool, kernel_pdpt: PhysAddr) -> Self {
        let template = super::cpu::cr3();
        write_entry(template, KERNEL_SLOT, kernel_pdpt | PRESENT | WRITABLE);
        X86Mmu { template, nx }
    }

    fn leaf_bits(&self, attrs: PageAttrs) -> u64 {
        let mut bits = PRESENT;
        if attrs.contains(PageAttrs::WRITABLE) {
            bits |= WRITABLE;
        }
        if attrs.contains(PageAttrs::USER) {
            bits |= USER;
        }
        if attrs.contains(PageAttrs::WRITE_THROUGH) {
            bits |= PWT;
        }
        if attrs.contains(PageAttrs::CACHE_DISABLE) {
            bits |= PCD;
        }
        if self.nx && attrs.contains(PageAttrs::NO_EXECUTE) {
            bits |= NX;
        }
        bits
    }

    fn attrs_of(entry: u64) -> PageAttrs {
        let mut attrs = PageAttrs::empty();
        attrs.set(PageAttrs::WRITABLE, entry & WRITABLE != 0);
        attrs.set(PageAttrs::USER, entry & USER != 0);
        attrs.set(PageAttrs::WRITE_THROUGH, entry & PWT != 0);
        attrs.set(PageAttrs::CACHE_DISABLE, entry & PCD != 0);
        attrs.set(PageAttrs::NO_EXECUTE, entry & NX != 0);
        attrs
    }

    /// Check that the VMM may manage `va` here.
    fn check(va: VirtAddr) -> Result<[usize; 4], MapError> {
        if !va.is_multiple_of(PAGE_SIZE) || !is_canonical(va) {
            return Err(MapError::BadAddress);
        }
        if va < LOW_IDENTITY_END {
            return Err(MapError::BadAddress);
        }
        Ok(indices(va))
    }

    /// The tables on the way to `va`'s PTE: `[pml4, pdpt, pd, pt]` physical
    /// addresses, `None` from the first missing level on.
    fn walk(root: PhysAddr, idx: &[usize; 4]) -> Result<[Option<PhysAddr>; 4], MapError> {
        let mut tables = [Some(root), None, None, None];
        for level in 0..3 {
            let Some(t) = tables[level] else { break };
            let e = read_entry(t, idx[level]);
            if e & PRESENT == 0 {
                break;
            }
            if e & HUGE != 0 {
                return Err(MapError::BadAddress);
            }
            tables[level + 1] = Some(e & ADDR_MASK);
        }
        Ok(tables)
    }

    /// Whether `root`'s slot 0 is its own (not the boot identity map).
    fn has_private_low(&self, root: PhysAddr) -> bool {
        root != self.template
            && read_entry(root, IDENTITY_SLOT) != read_entry(self.template, IDENTITY_SLOT)
    }

    /// Give `root` its own slot 0: a PDPT and a directory that keep the
    /// low identity map (the kernel image) and nothing else, so user pages
    /// can be mapped above it. The kernel's root (the template) keeps the
    /// whole boot identity map: user pages below 512 GiB cannot go there.
    fn make_private_low(
        &mut self,
        root: PhysAddr,
        frames: &mut dyn TableFrames,
    ) -> Result<(), MapError> {
        if root == self.template {
            return Err(MapError::BadAddress);
        }
        let boot_pdpt = read_entry(self.template, IDENTITY_SLOT) & ADDR_MASK;
        let boot_pd = read_entry(boot_pdpt, 0);
        if boot_pd & PRESENT == 0 || boot_pd & HUGE != 0 {
            return Err(MapError::BadAddress);
        }
        let pdpt = frames.alloc_table().ok_or(MapError::OutOfFrames)?;
        let Some(pd) = frames.alloc_table() else {
            frames.free_table(pdpt);
            return Err(MapError::OutOfFrames);
        };
        let low = (LOW_IDENTITY_END >> 21) as usize;
        for i in 0..low {
            write_entry(pd, i, read_entry(boot_pd & ADDR_MASK, i));
        }
        // The live-entry counts keep both tables for as long as the root
        // lives: the identity entries are never unmapped.
        write_entry(
            pdpt,
            0,
            with_count(pd | PRESENT | WRITABLE | USER, low as u64),
        );
        write_entry(
            root,
            IDENTITY_SLOT,
            with_count(pdpt | PRESENT | WRITABLE | USER, 1),
        );
        tlb::flush_all();
        Ok(())
    }

    /// Add `delta` to the live-entry count kept in `parent[index]`, except in
    /// the shared kernel slot of a root (each root has its own copy of it).
    fn adjust_count(parent: PhysAddr, index: usize, level: usize, delta: i64) -> u64 {
        let e = read_entry(parent, index);
        if level == 0 && index == KERNEL_SLOT {
            return u64::MAX;
        }
        let n = count(e).wrapping_add_signed(delta);
        write_entry(parent, index, with_count(e, n));
        n
    }
}

impl Mmu for X86Mmu {
    fn is_live(&self, root: PhysAddr) -> bool {
        super::cpu::cr3() & !0xfff == root
    }

    fn new_root(&mut self, frames: &mut dyn TableFrames) -> Result<PhysAddr, MapError> {
        let root = frames.alloc_table().ok_or(MapError::OutOfFrames)?;
        write_entry(
            root,
            IDENTITY_SLOT,
            read_entry(self.template, IDENTITY_SLOT),
        );
        write_entry(root, KERNEL_SLOT, read_entry(self.template, KERNEL_SLOT));
        write_entry(root, DIRECT_SLOT, read_entry(self.template, DIRECT_SLOT));
        Ok(root)
    }

    fn free_root(&mut self, root: PhysAddr, frames: &mut dyn TableFrames) {
        let private_low = self.has_private_low(root);
        if private_low {
            // The private directory's low entries point at the boot
            // identity map's tables, which every root shares: unhook them
            // so that only this root's own tables are freed.
            let slot0 = read_entry(root, IDENTITY_SLOT);
            let pdpt = slot0 & ADDR_MASK;
            let pd_entry = read_entry(pdpt, 0);
            let pd = pd_entry & ADDR_MASK;
            let low = LOW_IDENTITY_END >> 21;
            for i in 0..low as usize {
                write_entry(pd, i, 0);
            }
            // ...and take them out of its live-entry count.
            write_entry(pdpt, 0, with_count(pd_entry, count(pd_entry) - low));
        }
        let mut slot = if private_low { 0 } else { 1 };
        loop {
            slot = first_used(root, slot, KERNEL_SLOT);
            if slot == KERNEL_SLOT {
                break;
            }
            let e = read_entry(root, slot);
            if e & PRESENT != 0 {
                free_subtree(e & ADDR_MASK, 1, count(e), frames);
            }
            slot += 1;
        }
        // The shared slots (identity, kernel, direct map) are copies of
        // the template's entries, not followed; the root goes back as it
        // is, to be zeroed off this path like a page table.
        frames.free_dirty_table(root);
    }

    fn map(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frame: PhysAddr,
        attrs: PageAttrs,
        frames: &mut dyn TableFrames,
    ) -> Result<(), MapError> {
        let idx = Self::check(page)?;
        // The usual case: the page table is there already.
        if let Ok([_, _, Some(pd), Some(pt)]) = Self::walk(root, &idx) {
            if read_entry(pt, idx[3]) & PRESENT != 0 {
                return Err(MapError::AlreadyMapped);
            }
            write_entry(pt, idx[3], (frame & ADDR_MASK) | self.leaf_bits(attrs));
            Self::adjust_count(pd, idx[2], 2, 1);
            tlb::flush(X86VirtAddr::new_truncate(page));
            return Ok(());
        }
        if idx[0] == IDENTITY_SLOT && !self.has_private_low(root) {
            self.make_private_low(root, frames)?;
        }
        let mut tables = Self::walk(root, &idx)?;
        if let Some(pt) = tables[3] {
            if read_entry(pt, idx[3]) & PRESENT != 0 {
                return Err(MapError::AlreadyMapped);
            }
        }
        // Allocate every missing table first, so that running out of frames
        // leaves the tables exactly as they were.
        let missing = tables.iter().filter(|t| t.is_none()).count();
        let mut fresh = [0; 3];
        for i in 0..missing {
            match frames.alloc_table() {
                Some(t) => fresh[i] = t,
                None => {
                    fresh[..i].iter().for_each(|&t| frames.free_table(t));
                    return Err(MapError::OutOfFrames);
                }
            }
        }
        // Link them, counting each new entry in the entry that points at its table.
        let user = if idx[0] == KERNEL_SLOT { 0 } else { USER };
        let mut next = fresh[..missing].iter();
        for level in 0..3 {
            if tables[level + 1].is_some() {
                continue;
            }
            let (Some(parent), Some(&new)) = (tables[level], next.next()) else {
                return Err(MapError::BadAddress);
            };
            write_entry(parent, idx[level], new | PRESENT | WRITABLE | user);
            if level > 0 {
                if let Some(grand) = tables[level - 1] {
                    Self::adjust_count(grand, idx[level - 1], level - 1, 1);
                }
            }
            tables[level + 1] = Some(new);
        }
        let (Some(pd), Some(pt)) = (tables[2], tables[3]) else {
            return Err(MapError::BadAddress);
        };
        write_entry(pt, idx[3], (frame & ADDR_MASK) | self.leaf_bits(attrs));
        Self::adjust_count(pd, idx[2], 2, 1);
        tlb::flush(X86VirtAddr::new_truncate(page));
        Ok(())
    }

    /// The table goes to the dirty list with its leaf entries; emptied
    /// directories are known by their live-entry counts, not scanned.
    fn free_page_table(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frames: &mut dyn TableFrames,
    ) -> bool {
        let Ok(idx) = Self::check(page) else {
            return false;
        };
        if idx[0] >= KERNEL_SLOT {
            return false;
        }
        let Ok([_, Some(pdpt), Some(pd), Some(pt)]) = Self::walk(root, &idx) else {
            return false;
        };
        frames.free_dirty_table(pt);
        write_entry(pd, idx[2], 0);
        if Self::adjust_count(pdpt, idx[1], 1, -1) == 0 {
            write_entry(pdpt, idx[1], 0);
            frames.free_table(pd);
            if Self::adjust_count(root, idx[0], 0, -1) == 0 {
                write_entry(root, idx[0], 0);
                frames.free_table(pdpt);
            }
        }
        true
    }

    /// One walk to the page table, then one entry written per page: no
    /// table is allocated (the block's table must exist) and no TLB entry
    /// flushed (a not-present entry is never cached, SDM 4.10.2.3).
    fn map_block(
        &mut self,
        root: PhysAddr,
        first: VirtAddr,
        frames: &[Option<PhysAddr>],
        attrs: PageAttrs,
        _tables: &mut dyn TableFrames,
    ) -> u64 {
        let n = frames.len().min(64);
        let last = first.wrapping_add((n as u64).saturating_sub(1) * PAGE_SIZE);
        let Ok(idx) = Self::check(first) else {
            return 0;
        };
        if n == 0 || first >> 21 != last >> 21 || Self::check(last).is_err() {
            return 0;
        }
        let Ok([_, _, Some(pd), Some(pt)]) = Self::walk(root, &idx) else {
            return 0;
        };
        let bits = self.leaf_bits(attrs);
        let mut mapped = 0u64;
        let mut added = 0;
        for (i, f) in frames[..n].iter().enumerate() {
            let Some(frame) = *f else { continue };
            let slot = idx[3] + i;
            if read_entry(pt, slot) & PRESENT != 0 {
                continue;
            }
            write_entry(pt, slot, (frame & ADDR_MASK) | bits);
            mapped |= 1 << i;
            added += 1;
        }
        if added > 0 {
            Self::adjust_count(pd, idx[2], 2, added);
        }
        mapped
    }

    fn unmap(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frames: &mut dyn TableFrames,
    ) -> Option<PhysAddr> {
        let idx = Self::check(page).ok()?;
        let tables = Self::walk(root, &idx).ok()?;
        let pt = tables[3]?;
        let e = read_entry(pt, idx[3]);
        if e & PRESENT == 0 {
            return None;
        }
        write_entry(pt, idx[3], 0);
        tlb::flush(X86VirtAddr::new_truncate(page));
        // Free tables that became empty, bottom up. The PDPT of a user slot
        // goes too; the shared kernel PDPT and the root never do.
        for level in (0..3).rev() {
            let parent = tables[level]?;
            let left = Self::adjust_count(parent, idx[level], level, -1);
            if left != 0 || (level == 0 && idx[0] == KERNEL_SLOT) {
                break;
            }
            let child = read_entry(parent, idx[level]) & ADDR_MASK;
            write_entry(parent, idx[level], 0);
            frames.free_table(child);
            if level == 0 {
                break;
            }
        }
        Some(e & ADDR_MASK)
    }

    fn protect(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        attrs: PageAttrs,
    ) -> Result<(), MapError> {
        let idx = Self::check(page)?;
        let pt = Self::walk(root, &idx)?[3].ok_or(MapError::NotMapped)?;
        let e = read_entry(pt, idx[3]);
        if e & PRESENT == 0 {
            return Err(MapError::NotMapped);
        }
        write_entry(pt, idx[3], (e & ADDR_MASK) | self.leaf_bits(attrs));
        tlb::flush(X86VirtAddr::new_truncate(page));
        Ok(())
    }

    /// One walk: set R/W in the PTE (accessed/dirty bits stay as they are).
    fn set_writable(&mut self, root: PhysAddr, page: VirtAddr) -> Result<bool, MapError> {
        let idx = Self::check(page)?;
        let pt = Self::walk(root, &idx)?[3].ok_or(MapError::NotMapped)?;
        let e = read_entry(pt, idx[3]);
        if e & PRESENT == 0 {
            return Err(MapError::NotMapped);
        }
        if e & WRITABLE != 0 {
            return Ok(false);
        }
        write_entry(pt, idx[3], e | WRITABLE);
        tlb::flush(X86VirtAddr::new_truncate(page));
        Ok(true)
    }

    fn translate(&self, root: PhysAddr, page: VirtAddr) -> Option<(PhysAddr, PageAttrs)> {
        let idx = Self::check(page & !(PAGE_SIZE - 1)).ok()?;
        let pt = Self::walk(root, &idx).ok()?[3]?;
        let e = read_entry(pt, idx[3]);
        (e & PRESENT != 0).then(|| (e & ADDR_MASK, Self::attrs_of(e)))
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        // One `rep stosq` instead of a store loop: on kvm_pvm each ring-0
        // instruction is emulated, and a string instruction is one of them.
        // SAFETY: `frame` is a whole RAM frame owned by the caller, reached
        // through the direct map.
        unsafe {
            asm!("rep stosq", inout("rdi") phys_to_virt(frame) => _, inout("rcx") PAGE_SIZE / 8 => _,
                 in("rax") 0u64, options(nostack, preserves_flags));
        }
    }

    fn write_frame(&mut self, frame: PhysAddr, offset: usize, data: &[u8]) {
        let len = data
            .len()
            .min(PAGE_SIZE as usize - offset.min(PAGE_SIZE as usize));
        // SAFETY: the range lies inside `frame`, a RAM frame owned by the caller.
        unsafe {
            copy_words(
                data.as_ptr(),
                (phys_to_virt(frame) as usize + offset) as *mut u8,
                len,
            )
        }
    }

    fn copy_frame(&mut self, dst: PhysAddr, src: PhysAddr) {
        // SAFETY: two distinct whole RAM frames, reached through the direct
        // map; the caller owns `dst`.
        unsafe {
            copy_words(
                phys_to_virt(src) as *const u8,
                phys_to_virt(dst) as *mut u8,
                PAGE_SIZE as usize,
            )
        }
    }

    fn read_frame(&self, frame: PhysAddr, offset: usize, out: &mut [u8]) {
        let len = out
            .len()
            .min(PAGE_SIZE as usize - offset.min(PAGE_SIZE as usize));
        // SAFETY: as for `write_frame`; `out` holds at least `len` bytes.
        unsafe {
            copy_words(
                (phys_to_virt(frame) as usize + offset) as *const u8,
                out.as_mut_ptr(),
                len,
            )
        }
    }
}

/// The index of the first non-zero entry of page table `table_phys` in
/// `[from, to)`, or `to`: one `repe scasq`, which KVM's emulator runs as
/// one instruction (kvm_pvm emulates every ring-0 instruction: a loop
/// would cost several per entry).
fn first_used(table_phys: PhysAddr, from: usize, to: usize) -> usize {
    if from >= to {
        return to;
    }
    let start = phys_to_virt(table_phys) + from as u64 * 8;
    let end: u64;
    let found: u8;
    // SAFETY: reads entries [from, to) of a page-table frame through the
    // direct map (`to` <= 512); rdi and rcx are the scan's, rax the zero
    // it compares with; the direction flag is clear (the ABI's promise).
    unsafe {
        asm!("repe scasq", "setne {found}",
             found = out(reg_byte) found,
             inout("rdi") start => end, inout("rcx") (to - from) as u64 => _,
             in("rax") 0u64, options(nostack, readonly));
    }
    if found != 0 {
        // rdi stops one entry past the first non-zero one.
        ((end - 8 - phys_to_virt(table_phys)) / 8) as usize
    } else {
        to
    }
}

/// Free a user-half table and everything below it (not the leaf frames),
/// `live` the count of its present entries kept in the entry that points
/// at it (the scan stops after that many). A page table (level 3) goes to
/// the dirty list as it is, leaf entries and all (the idle loop zeroes
/// it, off this path); a directory's entries are read anyway to find its
/// children, so they are cleared and it goes back as a zero frame.
fn free_subtree(table_phys: PhysAddr, level: usize, live: u64, frames: &mut dyn TableFrames) {
    if level == 3 {
        frames.free_dirty_table(table_phys);
        return;
    }
    let (mut left, mut i) = (live, 0);
    while left > 0 {
        i = first_used(table_phys, i, ENTRIES);
        if i == ENTRIES {
            break;
        }
        let e = read_entry(table_phys, i);
        if e & PRESENT != 0 {
            left -= 1;
            if e & HUGE == 0 {
                free_subtree(e & ADDR_MASK, level + 1, count(e), frames);
            }
        }
        write_entry(table_phys, i, 0);
        i += 1;
    }
    frames.free_table(table_phys);
}

impl X86Mmu {
    /// Attributes of `page` in the address space now in CR3.
    pub fn translate_current(&self, page: VirtAddr) -> Option<PageAttrs> {
        self.translate(super::cpu::cr3(), page).map(|(_, a)| a)
    }
}

/// Copy `len` bytes with `rep movsq` and a `rep movsb` tail: on kvm_pvm a
/// string instruction is emulated per iteration, so 8-byte steps cost an
/// eighth of byte steps (and far less than the compiler's `memcpy` loop).
///
/// # Safety
/// `src` readable and `dst` writable for `len` bytes, not overlapping.
unsafe fn copy_words(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's conditions; rsi/rdi advance through exactly
    // `len` bytes.
    unsafe {
        asm!("rep movsq", "mov rcx, {tail}", "rep movsb",
             tail = in(reg) len % 8,
             inout("rsi") src => _, inout("rdi") dst => _,
             inout("rcx") len / 8 => _, options(nostack, preserves_flags))
    }
}
