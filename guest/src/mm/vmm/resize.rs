//! Cutting and re-protecting areas: what Linux's partial `munmap` and
//! `mprotect` need. Möbius had neither; an area here is split into two
//! areas (two nodes, two descriptors, the page records divided between
//! them), so each part can then be freed or re-protected on its own.
use alloc::sync::Arc;

use super::area::{rec, AreaDesc, AreaKind, PageRecords, Section};
use super::{half_of, Half, MemFlags, Mmu, NodeKind, SpaceId, VmError, Vmm, PAGE_SIZE};

impl<M: Mmu> Vmm<M> {
    /// Split the node containing `addr` so that a node starts at `addr`
    /// (page aligned). Nothing to do if one does already. A mapped node
    /// must be its area's only mapping (`refs == 1`: a shared area stays
    /// whole) and not a CALLBACK area. Mappings and frames stay as they are.
    pub fn split(&mut self, space: SpaceId, addr: u64) -> Result<(), VmError> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(VmError::Unaligned);
        }
        let half = half_of(addr).ok_or(VmError::OutOfRange)?;
        let (base, node) = self
            .tree(space, half)?
            .lookup(addr)
            .ok_or(VmError::OutOfRange)?;
        if base == addr || node.kind == NodeKind::Empty {
            return Ok(());
        }
        let head = (addr - base) / PAGE_SIZE;
        let tail_kind = match node.kind {
            NodeKind::Reserved => NodeKind::Reserved,
            NodeKind::Mapped { desc, flags } => {
                let tail_desc = self.split_desc(desc, head)?;
                NodeKind::Mapped {
                    desc: tail_desc,
                    flags,
                }
            }
            NodeKind::Empty => return Ok(()),
        };
        self.tree_mut(space, half).cut(base, head, tail_kind)
    }

    /// Cut descriptor `id` after `head` pages; returns the new descriptor
    /// holding the rest.
    fn split_desc(&mut self, id: super::DescId, head: u64) -> Result<super::DescId, VmError> {
        let d = self.descs.get_mut(id).ok_or(VmError::BadHandle)?;
        if d.refs != 1 {
            return Err(VmError::PermissionDenied);
        }
        let shift = head * PAGE_SIZE;
        let kind = match &d.kind {
            AreaKind::Normal => AreaKind::Normal,
            AreaKind::Map { phys } => AreaKind::Map { phys: phys + shift },
            AreaKind::File { file, offset } => AreaKind::File {
                file: file.clone(),
                offset: offset + shift,
            },
            AreaKind::Image { file, sections } => AreaKind::Image {
                file: file.clone(),
                sections: rebase(sections, shift),
            },
            AreaKind::Callback(_) => return Err(VmError::InvalidFlags),
        };
        if let AreaKind::Image { sections, .. } = &mut d.kind {
            *sections = clip(sections, shift);
        }
        let tail_pages = d.pages - head;
        let mut records = PageRecords::default();
        let moved: alloc::vec::Vec<(u64, u64)> =
            d.records.iter().filter(|&(i, _)| i >= head).collect();
        for &(i, r) in &moved {
            records.set(i - head, tail_pages, r);
            d.records.set(i, d.pages, 0);
        }
        d.pages = head;
        let tail = AreaDesc {
            pages: tail_pages,
            flags: d.flags,
            kind,
            records,
            refs: 1,
            cow: d.cow,
            shared: d.shared,
        };
        Ok(self.descs.insert(tail))
    }

    /// Give the area or reservation at `base` (a whole node) new flags
    /// (`mprotect`): a reservation becomes a demand-zero area, an area
    /// takes `flags` (its own mapping only: `refs == 1`), and the pages it
    /// has mapped are re-protected (or unmapped, when the access level
    /// changes) so that the next access faults under the new flags.
    pub fn protect_node(
        &mut self,
        space: SpaceId,
        base: u64,
        flags: MemFlags,
    ) -> Result<(), VmError> {
        let flags = MemFlags::validate_area(flags.bits()).ok_or(VmError::InvalidFlags)?;
        let half = half_of(base).ok_or(VmError::OutOfRange)?;
        let (b, node) = self
            .tree(space, half)?
            .lookup(base)
            .ok_or(VmError::NotAllocated)?;
        if b != base {
            return Err(VmError::NotBase);
        }
        let node_flags = flags & MemFlags::NODE_MASK;
        match node.kind {
            NodeKind::Empty => Err(VmError::NotAllocated),
            NodeKind::Reserved => {
                let tree = self.tree_mut(space, half);
                tree.release(base)?;
                self.map(space, node.pages, base, AreaKind::Normal, flags)
                    .map(|_| ())
            }
            NodeKind::Mapped { desc, .. } => {
                let d = self.descs.get_mut(desc).ok_or(VmError::BadHandle)?;
                if d.refs != 1 {
                    return Err(VmError::PermissionDenied);
                }
                d.flags = node_flags;
                self.reprotect(space, half, base, desc, node_flags);
                let kind = NodeKind::Mapped {
                    desc,
                    flags: node_flags,
                };
                self.tree_mut(space, half).set_kind(base, kind)
            }
        }
    }

    /// Bring the mapped pages of an area in line with new node flags:
    /// read-only where writing is no longer allowed; unmapped where the
    /// access level changed (the next fault maps them again, or refuses).
    fn reprotect(
        &mut self,
        space: SpaceId,
        half: Half,
        base: u64,
        desc: super::DescId,
        flags: MemFlags,
    ) {
        let root = self.root_for(space, half);
        let Some(d) = self.descs.get(desc) else {
            return;
        };
        let pages: alloc::vec::Vec<u64> = d
            .records
            .iter()
            .filter(|&(_, r)| r & rec::FRAME != 0)
            .map(|(i, _)| i)
            .collect();
        for i in pages {
            let page = base + i * PAGE_SIZE;
            let Some((_, attrs)) = self.mmu.translate(root, page) else {
                continue;
            };
            let user = attrs.contains(super::PageAttrs::USER);
            if user != flags.is_user() {
                // Keep the frame and its record (the area owns it; the next
                // fault maps it again under the new flags): only the
                // mapping goes.
                let mut tables = super::PoolTables(&mut self.frames);
                self.mmu.unmap(root, page, &mut tables);
            } else if !flags.contains(MemFlags::WRITE) {
                let _ = self
                    .mmu
                    .protect(root, page, attrs - super::PageAttrs::WRITABLE);
            }
        }
    }
}

/// Sections of the part of an image area that starts `shift` bytes in.
fn rebase(sections: &[Section], shift: u64) -> Arc<[Section]> {
    sections
        .iter()
        .filter(|s| s.offset + s.size > shift)
        .map(|s| {
            if s.offset >= shift {
                Section {
                    offset: s.offset - shift,
                    ..*s
                }
            } else {
                let cut = shift - s.offset;
                Section {
                    offset: 0,
                    size: s.size - cut,
                    file_offset: s.file_offset + cut,
                    file_size: s.file_size.saturating_sub(cut),
                    ..*s
                }
            }
        })
        .collect()
}

/// Sections of the first `len` bytes of an image area.
fn clip(sections: &[Section], len: u64) -> Arc<[Section]> {
    sections
        .iter()
        .filter(|s| s.offset < len)
        .map(|s| Section {
            size: s.size.min(len - s.offset),
            file_size: s.file_size.min(len - s.offset),
            ..*s
        })
        .collect()
}
