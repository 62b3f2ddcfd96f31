//! What Linux's `mremap` and `MAP_SHARED` need of areas: growing an area
//! in place, moving it (its frames go with it: only the page-table entries
//! are dropped, the next access maps the same frame at the new address),
//! and marking an area shared so that `fork` does not copy it.
use super::area::{AreaKind, PageRecords};
use super::{half_of, DescId, Half, Mmu, NodeKind, SpaceId, VmError, Vmm, PAGE_SIZE, USER_START};

impl<M: Mmu> Vmm<M> {
    /// Mark the area mapped at `base` shared (`MAP_SHARED`): a `fork`
    /// child maps it too instead of taking a copy-on-write copy.
    pub fn mark_shared(&mut self, space: SpaceId, base: u64) -> Result<(), VmError> {
        let desc = self.desc_at(space, base)?;
        self.descs.get_mut(desc).ok_or(VmError::BadHandle)?.shared = true;
        Ok(())
    }

    /// The lowest free range of `pages` pages in `space`'s user half.
    pub fn free_range(&self, space: SpaceId, pages: u64) -> Option<u64> {
        self.tree(space, Half::User).ok()?.find_free(pages)
    }

    /// The area of the node starting at `base`.
    fn desc_at(&self, space: SpaceId, base: u64) -> Result<DescId, VmError> {
        let half = half_of(base).ok_or(VmError::OutOfRange)?;
        let (b, node) = self
            .tree(space, half)?
            .lookup(base)
            .ok_or(VmError::NotAllocated)?;
        match node.kind {
            NodeKind::Mapped { desc, .. } if b == base => Ok(desc),
            NodeKind::Mapped { .. } => Err(VmError::NotBase),
            _ => Err(VmError::NotAllocated),
        }
    }

    /// Move the node at `base` (a whole mapped node of the user half) to
    /// `new_base` with `new_pages` pages (`mremap`). Growing (more pages
    /// than now) needs the area to be this node's alone (`refs == 1`) and
    /// demand-zero or file-backed; the new range must be free (or, below
    /// [`USER_START`], part of the process's low reservation), apart from
    /// the node's own pages when it stays where it is. Nothing changes on
    /// an error.
    pub fn remap(
        &mut self,
        space: SpaceId,
        base: u64,
        new_base: u64,
        new_pages: u64,
    ) -> Result<(), VmError> {
        if half_of(base) != Some(Half::User) || half_of(new_base) != Some(Half::User) {
            return Err(VmError::OutOfRange);
        }
        if !new_base.is_multiple_of(PAGE_SIZE) || new_pages == 0 {
            return Err(VmError::Unaligned);
        }
        let desc = self.desc_at(space, base)?;
        let (_, node) = self
            .tree(space, Half::User)?
            .lookup(base)
            .ok_or(VmError::NotAllocated)?;
        if new_pages < node.pages {
            return Err(VmError::InvalidArea);
        }
        let d = self.descs.get(desc).ok_or(VmError::BadHandle)?;
        let grows = new_pages > node.pages;
        let growable = d.refs == 1 && matches!(d.kind, AreaKind::Normal | AreaKind::File { .. });
        if grows && !growable {
            return Err(VmError::PermissionDenied);
        }
        let tree = self.tree(space, Half::User)?;
        if new_base == base {
            let end = base + node.pages * PAGE_SIZE;
            tree.check_fixed(end, new_pages - node.pages, end < USER_START)?;
        } else {
            tree.check_fixed(new_base, new_pages, new_base < USER_START)?;
            self.unmap_node(space, Half::User, base, desc);
        }
        let tree = self.tree_mut(space, Half::User);
        tree.release(base)?;
        tree.carve(new_base, new_pages, node.kind);
        if grows {
            self.regrow(desc, new_pages);
        }
        Ok(())
    }

    /// Give area `desc` `pages` pages (more than now), keeping its records.
    fn regrow(&mut self, desc: DescId, pages: u64) {
        let Some(d) = self.descs.get_mut(desc) else {
            return;
        };
        let old: alloc::vec::Vec<(u64, u64)> = d.records.iter().collect();
        let mut records = PageRecords::default();
        for (i, r) in old {
            records.set(i, pages, r);
        }
        d.records = records;
        d.pages = pages;
    }
}
