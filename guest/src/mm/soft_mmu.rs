//! A software model of 4-level x86-64 paging, so that `cargo test` runs the
//! VMM on the host.
//!
//! Physical memory is simulated sparsely (an absent frame reads as zero, as
//! the host hands RAM over). Page tables are real 512-entry tables whose
//! frames come from the [`TableFrames`] the VMM passes, so the table-frame
//! accounting is exercised; their contents are kept beside the simulated
//! memory. Every root shares the kernel-half level-3 tables: a kernel mapping
//! made through one root is visible through all of them, and those shared
//! tables are never freed. Empty lower-level tables are freed on `unmap`.
//!
//! The model also checks the VMM's promises: a table frame it is given must
//! read as zero, and no data may be written into a live table frame.
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};

use super::paging::{MapError, Mmu, PageAttrs, PhysAddr, TableFrames, VirtAddr, PAGE_SIZE};

const ENTRIES: usize = 512;
const PRESENT: u64 = 1;
const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// First PML4 slot of the kernel half.
const KERNEL_SLOT: usize = 256;

type Table = Box<[u64; ENTRIES]>;

/// The software MMU. See the module documentation.
#[derive(Default)]
pub struct SoftMmu {
    memory: BTreeMap<PhysAddr, Box<[u8; PAGE_SIZE as usize]>>,
    tables: BTreeMap<PhysAddr, Table>,
    roots: BTreeSet<PhysAddr>,
    /// Shared kernel-half PML4 entries (slots 256..512).
    kernel_template: BTreeMap<usize, u64>,
    /// Table frames taken from / given back to the `TableFrames`.
    pub tables_allocated: u64,
    pub tables_freed: u64,
    /// Calls to `zero_frame`.
    pub frames_zeroed: u64,
    /// The root a test says the CPU runs on (CR3 of the software machine).
    pub live_root: Option<PhysAddr>,
}

impl core::fmt::Debug for SoftMmu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftMmu")
            .field("tables", &self.tables.len())
            .field("roots", &self.roots.len())
            .finish()
    }
}

fn index(page: VirtAddr, level: u32) -> usize {
    ((page >> (12 + 9 * level)) & 0x1FF) as usize
}

fn is_canonical(addr: VirtAddr) -> bool {
    let top = addr >> 47;
    top == 0 || top == 0x1_FFFF
}

fn encode(frame: PhysAddr, attrs: PageAttrs) -> u64 {
    frame | PRESENT | ((attrs.bits() as u64) << 1)
}

fn decode(entry: u64) -> (PhysAddr, PageAttrs) {
    (
        entry & ADDR_MASK,
        PageAttrs::from_bits_truncate(((entry & 0xFFF) >> 1) as u32),
    )
}

impl SoftMmu {
    pub fn new() -> Self {
        Self::default()
    }

    /// Page-table frames currently in use (roots included).
    pub fn live_tables(&self) -> usize {
        self.tables.len()
    }

    /// Every table except roots and the shared kernel level-3 tables must
    /// hold at least one entry: empty tables are freed at once.
    pub fn check_no_empty_tables(&self) -> Result<(), &'static str> {
        let shared: BTreeSet<PhysAddr> = self
            .kernel_template
            .values()
            .map(|e| e & ADDR_MASK)
            .collect();
        let lingering = self.tables.iter().any(|(f, t)| {
            !self.roots.contains(f) && !shared.contains(f) && t.iter().all(|e| *e == 0)
        });
        if lingering {
            return Err("empty page table not freed");
        }
        Ok(())
    }

    /// Number of present leaf mappings under `root` (both halves).
    pub fn mapped_pages(&self, root: PhysAddr) -> usize {
        self.count_leaves(root, 3)
    }

    fn count_leaves(&self, table: PhysAddr, level: u32) -> usize {
        let t = &self.tables[&table];
        t.iter()
            .filter(|e| **e & PRESENT != 0)
            .map(|e| {
                if level == 0 {
                    1
                } else {
                    self.count_leaves(e & ADDR_MASK, level - 1)
                }
            })
            .sum()
    }

    fn new_table(&mut self, frames: &mut dyn TableFrames) -> Result<PhysAddr, MapError> {
        let f = frames.alloc_table().ok_or(MapError::OutOfFrames)?;
        assert!(
            self.memory
                .get(&f)
                .is_none_or(|m| m.iter().all(|b| *b == 0)),
            "table frame {f:#x} handed out as zero is not zero"
        );
        assert!(
            self.tables.insert(f, Box::new([0; ENTRIES])).is_none(),
            "table frame reused"
        );
        self.tables_allocated += 1;
        Ok(f)
    }

    fn release_table(&mut self, table: PhysAddr, frames: &mut dyn TableFrames) {
        self.tables.remove(&table);
        self.tables_freed += 1;
        frames.free_table(table);
    }

    /// Walk to the level-0 table for `page`, creating tables when `create`.
    fn walk(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        mut frames: Option<&mut dyn TableFrames>,
    ) -> Result<Option<PhysAddr>, MapError> {
        let mut table = root;
        for level in (1..=3).rev() {
            let i = index(page, level);
            let entry = self.tables.get(&table).ok_or(MapError::BadAddress)?[i];
            table = if entry & PRESENT != 0 {
                entry & ADDR_MASK
            } else if let Some(fr) = frames.as_deref_mut() {
                let t = self.new_table(fr)?;
                self.tables.get_mut(&table).expect("table")[i] = t | PRESENT;
                if level == 3 && i >= KERNEL_SLOT {
                    self.share_kernel_slot(i, t | PRESENT);
                }
                t
            } else {
                return Ok(None);
            };
        }
        Ok(Some(table))
    }

    fn share_kernel_slot(&mut self, slot: usize, entry: u64) {
        self.kernel_template.insert(slot, entry);
        for root in self.roots.clone() {
            self.tables.get_mut(&root).expect("root")[slot] = entry;
        }
    }

    fn check(page: VirtAddr) -> Result<(), MapError> {
        if page & (PAGE_SIZE - 1) != 0 || !is_canonical(page) {
            return Err(MapError::BadAddress);
        }
        Ok(())
    }

    fn frame_mut(&mut self, frame: PhysAddr) -> &mut [u8; PAGE_SIZE as usize] {
        assert!(
            !self.tables.contains_key(&frame),
            "data write into live table {frame:#x}"
        );
        self.memory
            .entry(frame)
            .or_insert_with(|| Box::new([0; PAGE_SIZE as usize]))
    }

    /// Free empty tables on the path to `page`, bottom-up; never the root
    /// nor a shared kernel-half level-3 table.
    fn prune(&mut self, root: PhysAddr, page: VirtAddr, frames: &mut dyn TableFrames) {
        let mut path = [(root, 0usize); 4];
        let mut table = root;
        for (depth, level) in (1..=3u32).rev().enumerate() {
            let i = index(page, level);
            path[depth] = (table, i);
            table = self.tables[&table][i] & ADDR_MASK;
        }
        path[3] = (table, 0);
        for depth in (1..=3).rev() {
            let (t, _) = path[depth];
            let kernel_l3 = depth == 1 && path[0].1 >= KERNEL_SLOT;
            if kernel_l3 || self.tables[&t].iter().any(|e| *e != 0) {
                return;
            }
            let (parent, i) = path[depth - 1];
            self.tables.get_mut(&parent).expect("parent")[i] = 0;
            self.release_table(t, frames);
        }
    }
}

impl Mmu for SoftMmu {
    fn is_live(&self, root: PhysAddr) -> bool {
        self.live_root == Some(root)
    }

    fn new_root(&mut self, frames: &mut dyn TableFrames) -> Result<PhysAddr, MapError> {
        let root = self.new_table(frames)?;
        let t = self.tables.get_mut(&root).expect("root");
        for (slot, entry) in &self.kernel_template {
            t[*slot] = *entry;
        }
        self.roots.insert(root);
        Ok(root)
    }

    fn free_root(&mut self, root: PhysAddr, frames: &mut dyn TableFrames) {
        let user: alloc::vec::Vec<u64> = self.tables[&root][..KERNEL_SLOT]
            .iter()
            .copied()
            .filter(|e| *e & PRESENT != 0)
            .collect();
        for l3 in user {
            self.free_subtree(l3 & ADDR_MASK, 2, frames);
        }
        self.roots.remove(&root);
        self.release_table(root, frames);
    }

    fn free_page_table(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frames: &mut dyn TableFrames,
    ) -> bool {
        if Self::check(page).is_err() || index(page, 3) >= KERNEL_SLOT {
            return false;
        }
        let mut path = [(root, 0usize); 3];
        let mut table = root;
        for (depth, level) in (1..=3u32).rev().enumerate() {
            let i = index(page, level);
            let Some(entry) = self.tables.get(&table).map(|t| t[i]) else {
                return false;
            };
            if entry & PRESENT == 0 {
                return false;
            }
            path[depth] = (table, i);
            table = entry & ADDR_MASK;
        }
        let (pd, i) = path[2];
        self.tables.get_mut(&pd).expect("pd")[i] = 0;
        self.release_table(table, frames);
        for depth in (1..=2).rev() {
            let (t, _) = path[depth];
            if self.tables[&t].iter().any(|e| *e != 0) {
                break;
            }
            let (parent, i) = path[depth - 1];
            self.tables.get_mut(&parent).expect("parent")[i] = 0;
            self.release_table(t, frames);
        }
        true
    }

    fn map(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frame: PhysAddr,
        attrs: PageAttrs,
        frames: &mut dyn TableFrames,
    ) -> Result<(), MapError> {
        Self::check(page)?;
        let pt = self.walk(root, page, Some(frames))?.expect("created");
        let slot = &mut self.tables.get_mut(&pt).expect("pt")[index(page, 0)];
        if *slot & PRESENT != 0 {
            return Err(MapError::AlreadyMapped);
        }
        *slot = encode(frame, attrs);
        Ok(())
    }

    fn unmap(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        frames: &mut dyn TableFrames,
    ) -> Option<PhysAddr> {
        Self::check(page).ok()?;
        let pt = self.walk(root, page, None).ok()??;
        let slot = &mut self.tables.get_mut(&pt).expect("pt")[index(page, 0)];
        if *slot & PRESENT == 0 {
            return None;
        }
        let (frame, _) = decode(*slot);
        *slot = 0;
        self.prune(root, page, frames);
        Some(frame)
    }

    fn protect(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        attrs: PageAttrs,
    ) -> Result<(), MapError> {
        Self::check(page)?;
        let pt = self.walk(root, page, None)?.ok_or(MapError::NotMapped)?;
        let slot = &mut self.tables.get_mut(&pt).expect("pt")[index(page, 0)];
        if *slot & PRESENT == 0 {
            return Err(MapError::NotMapped);
        }
        *slot = encode(decode(*slot).0, attrs);
        Ok(())
    }

    fn translate(&self, root: PhysAddr, page: VirtAddr) -> Option<(PhysAddr, PageAttrs)> {
        let page = page & !(PAGE_SIZE - 1);
        if !is_canonical(page) {
            return None;
        }
        let mut table = root;
        for level in (0..=3).rev() {
            let entry = self.tables.get(&table)?[index(page, level)];
            if entry & PRESENT == 0 {
                return None;
            }
            if level == 0 {
                return Some(decode(entry));
            }
            table = entry & ADDR_MASK;
        }
        None
    }

    fn zero_frame(&mut self, frame: PhysAddr) {
        self.frames_zeroed += 1;
        assert!(
            !self.tables.contains_key(&frame),
            "zeroing live table {frame:#x}"
        );
        self.memory.remove(&frame);
    }

    fn write_frame(&mut self, frame: PhysAddr, offset: usize, data: &[u8]) {
        self.frame_mut(frame)[offset..offset + data.len()].copy_from_slice(data);
    }

    fn read_frame(&self, frame: PhysAddr, offset: usize, out: &mut [u8]) {
        match self.memory.get(&frame) {
            Some(m) => out.copy_from_slice(&m[offset..offset + out.len()]),
            None => out.fill(0),
        }
    }
}

impl SoftMmu {
    fn free_subtree(&mut self, table: PhysAddr, level: u32, frames: &mut dyn TableFrames) {
        if level > 0 {
            let children: alloc::vec::Vec<u64> = self.tables[&table]
                .iter()
                .copied()
                .filter(|e| *e & PRESENT != 0)
                .collect();
            for c in children {
                self.free_subtree(c & ADDR_MASK, level - 1, frames);
            }
        }
        self.release_table(table, frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Table frames from a simple counter, for testing the model alone.
    struct Bump(u64, Vec<u64>);
    impl TableFrames for Bump {
        fn alloc_table(&mut self) -> Option<PhysAddr> {
            self.0 += PAGE_SIZE;
            Some(self.0)
        }
        fn free_table(&mut self, frame: PhysAddr) {
            self.1.push(frame);
        }
        fn free_dirty_table(&mut self, frame: PhysAddr) {
            self.1.push(frame);
        }
    }

    #[test]
    fn map_translate_unmap_frees_tables() {
        let mut m = SoftMmu::new();
        let mut fr = Bump(0x100_0000, Vec::new());
        let root = m.new_root(&mut fr).unwrap();
        let page = 0x80_0000_1000;
        m.map(root, page, 0x5000, PageAttrs::USER, &mut fr).unwrap();
        assert_eq!(m.live_tables(), 4);
        assert_eq!(m.translate(root, page + 5), Some((0x5000, PageAttrs::USER)));
        assert_eq!(
            m.map(root, page, 0x6000, PageAttrs::empty(), &mut fr),
            Err(MapError::AlreadyMapped)
        );
        m.protect(root, page, PageAttrs::USER | PageAttrs::WRITABLE)
            .unwrap();
        assert_eq!(m.unmap(root, page, &mut fr), Some(0x5000));
        assert_eq!(m.live_tables(), 1);
        assert_eq!(fr.1.len(), 3);
        assert_eq!(m.unmap(root, page, &mut fr), None);
    }

    #[test]
    fn kernel_half_is_shared() {
        let mut m = SoftMmu::new();
        let mut fr = Bump(0x100_0000, Vec::new());
        let a = m.new_root(&mut fr).unwrap();
        let b = m.new_root(&mut fr).unwrap();
        let k = 0xFFFF_8000_0000_2000;
        m.map(a, k, 0x7000, PageAttrs::WRITABLE, &mut fr).unwrap();
        assert_eq!(m.translate(b, k).map(|t| t.0), Some(0x7000));
        let c = m.new_root(&mut fr).unwrap();
        assert_eq!(m.translate(c, k).map(|t| t.0), Some(0x7000));
        assert_eq!(m.unmap(b, k, &mut fr), Some(0x7000));
        assert_eq!(m.translate(a, k), None);
        // The shared level-3 table stays.
        assert_eq!(m.live_tables(), 4);
        m.free_root(c, &mut fr);
        assert_eq!(m.live_tables(), 3);
    }

    #[test]
    fn memory_reads_zero_until_written() {
        let mut m = SoftMmu::new();
        let mut b = [9u8; 4];
        m.read_frame(0x3000, 10, &mut b);
        assert_eq!(b, [0; 4]);
        m.write_frame(0x3000, 10, &[1, 2, 3, 4]);
        m.read_frame(0x3000, 10, &mut b);
        assert_eq!(b, [1, 2, 3, 4]);
        m.zero_frame(0x3000);
        m.read_frame(0x3000, 10, &mut b);
        assert_eq!(b, [0; 4]);
    }
}
