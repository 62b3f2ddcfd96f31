//! Named sharing: `VmmShare`, `VmmOpenSharedArea`, `VmmMapSharedArea`,
//! handles and exports.
use alloc::string::String;

use super::*;

impl<M: Mmu> Vmm<M> {
    /// `VmmShare`: export the area containing `addr` under `name`. The
    /// export holds one reference and the returned handle another.
    pub fn share(
        &mut self,
        space: SpaceId,
        addr: VirtAddr,
        name: &str,
    ) -> Result<ShareHandle, VmError> {
        let half = half_of(addr).ok_or(VmError::NotAllocated)?;
        let node = self
            .tree(space, half)?
            .lookup(addr)
            .map(|(_, n)| n)
            .ok_or(VmError::NotAllocated)?;
        let NodeKind::Mapped { desc, .. } = node.kind else {
            return Err(VmError::NotAllocated);
        };
        if self.exports.contains_key(name) {
            return Err(VmError::NameExists);
        }
        self.exports.insert(String::from(name), desc);
        self.descs.get_mut(desc).expect("live").refs += 2;
        Ok(ShareHandle { desc })
    }

    /// `VmmOpenSharedArea` / `HndOpen`: a new handle to the area exported as `name`.
    pub fn open_shared(&mut self, name: &str) -> Result<ShareHandle, VmError> {
        let desc = *self.exports.get(name).ok_or(VmError::UnknownName)?;
        self.descs
            .get_mut(desc)
            .expect("exported desc is live")
            .refs += 1;
        Ok(ShareHandle { desc })
    }

    /// `VmmMapSharedArea`: map the shared area in `space` at `base` (0 =
    /// choose). The mapping may not allow more than the creator's flags:
    /// no WRITE unless the area has it, no user access to a kernel area.
    pub fn map_shared(
        &mut self,
        space: SpaceId,
        handle: &ShareHandle,
        base: VirtAddr,
        flags: MemFlags,
    ) -> Result<VirtAddr, VmError> {
        let flags = MemFlags::validate_area(flags.bits()).ok_or(VmError::InvalidFlags)?;
        let d = self.descs.get(handle.desc).ok_or(VmError::BadHandle)?;
        let widens_write = flags.contains(MemFlags::WRITE) && !d.flags.contains(MemFlags::WRITE);
        if widens_write || (flags.is_user() && !d.flags.is_user()) {
            return Err(VmError::PermissionDenied);
        }
        let pages = d.pages;
        let (half, at) = self.place(space, pages, base, flags, false)?;
        self.descs.get_mut(handle.desc).expect("live").refs += 1;
        let kind = NodeKind::Mapped {
            desc: handle.desc,
            flags: flags & MemFlags::NODE_MASK,
        };
        self.insert_node(space, half, at, pages, kind);
        Ok(at)
    }

    /// `HndClose` on a share handle: drop its reference.
    pub fn close_handle(&mut self, handle: ShareHandle) -> Result<(), VmError> {
        self.descs.get(handle.desc).ok_or(VmError::BadHandle)?;
        self.drop_ref(handle.desc);
        Ok(())
    }

    /// A new shared demand-zero area of `pages` pages mapped nowhere yet
    /// (a SysV shared-memory segment): the handle holds its one reference;
    /// map it with [`Vmm::map_shared`]. `flags` are the most a mapping may
    /// allow.
    pub fn create_shared(&mut self, pages: u64, flags: MemFlags) -> Result<ShareHandle, VmError> {
        let flags = MemFlags::validate_area(flags.bits()).ok_or(VmError::InvalidFlags)?;
        if pages == 0 {
            return Err(VmError::ZeroPages);
        }
        let desc = self.descs.insert(AreaDesc {
            pages,
            flags: flags & MemFlags::NODE_MASK,
            kind: AreaKind::Normal,
            records: PageRecords::default(),
            refs: 1,
            cow: false,
            shared: true,
        });
        Ok(ShareHandle { desc })
    }

    /// References to the area of `handle` (its mappings, handles, export).
    pub fn handle_refs(&self, handle: &ShareHandle) -> u32 {
        self.descs.get(handle.desc).map_or(0, |d| d.refs)
    }

    /// How many names are exported.
    pub fn export_count(&self) -> usize {
        self.exports.len()
    }

    /// Remove the export `name` and its reference (`HndExport(hdr, NULL)`).
    pub fn unexport(&mut self, name: &str) -> Result<(), VmError> {
        let desc = self.exports.remove(name).ok_or(VmError::UnknownName)?;
        self.drop_ref(desc);
        Ok(())
    }
}
