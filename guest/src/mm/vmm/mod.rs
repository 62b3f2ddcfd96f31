//! The Möbius virtual-memory manager, rebuilt in Rust with the defects of
//! the original (spec §8) fixed.
//!
//! # Layout of an address space
//!
//! | Half | Range | Notes |
//! |---|---|---|
//! | user | [`USER_START`]` = 0x0000_0080_0000_0000` .. [`USER_END`]` = 0x0000_8000_0000_0000` | private per [`AddressSpace`]; PML4 slots 1–255 |
//! | process low range | [`PROCESS_LOW_START`]` = 0x0000_0000_0040_0000` .. [`USER_START`] | process spaces only ([`Vmm::create_process_space`]): where Linux programs are linked (4 MiB) and their heap grows; starts out reserved |
//! | kernel | [`KERNEL_START`]` = 0xFFFF_8000_0000_0000` .. [`KERNEL_END`]` = 0xFFFF_8080_0000_0000` | one node tree shared by all spaces; PML4 slot 256 |
//!
//! Everything else — page 0, the kernel's own identity map in PML4 slot 0,
//! the non-canonical hole, the rest of the upper half — is never handed out
//! (§9 row 8). Automatic placement is lowest-first within the half chosen by
//! the PL bits of the flags (`VM_MEM_USER` → user half, `VM_MEM_KERNEL` →
//! kernel half); the whole area always lies inside that half (B7).
//!
//! # Locking
//!
//! The kernel keeps one [`Vmm`] in a `spin::Mutex` ([`VmmLock`]). Every
//! method runs under that lock. The fault entry point
//! [`crate::mm::fault::handle`] takes the lock itself and drops it around
//! CALLBACK handlers and file reads, so a handler may call back into the VMM
//! (it maps its page through the [`CallbackMapper`] it is given). A handler
//! must not fault itself: a kernel page fault inside the page-fault path is
//! fatal (`arch::x86_64::trap` refuses to nest them on its one stack).
//!
//! # Möbius names
//!
//! | Möbius (API page) | Here |
//! |---|---|
//! | `vm_node_t` | [`Node`], [`NodeKind`], [`NodeInfo`] (in a [`NodeTree`]) |
//! | `vm_desc_t` | [`AreaDesc`] (in [`Descs`], id [`DescId`]) |
//! | `VM_AREA_NORMAL` | [`AreaKind::Normal`] / [`AreaType::Normal`] = 1 |
//! | `VM_AREA_MAP` | [`AreaKind::Map`] / [`AreaType::Map`] = 2 |
//! | `VM_AREA_FILE` | [`AreaKind::File`] / [`AreaType::File`] = 3 |
//! | `VM_AREA_IMAGE` | [`AreaKind::Image`] / [`AreaType::Image`] = 4 |
//! | `VM_AREA_CALLBACK` | [`AreaKind::Callback`] / [`AreaType::Callback`] = 5 |
//! | `VM_MEM_KERNEL` | [`MemFlags::KERNEL`] |
//! | `VM_MEM_USER` | [`MemFlags::USER`] |
//! | `VM_MEM_PL_MASK` | [`MemFlags::PL_MASK`] |
//! | `VM_MEM_READ` | [`MemFlags::READ`] |
//! | `VM_MEM_WRITE` | [`MemFlags::WRITE`] |
//! | `VM_MEM_ZERO` | [`MemFlags::ZERO`] |
//! | `VM_MEM_CACHE_WT` | [`MemFlags::CACHE_WT`] → `PageAttrs::WRITE_THROUGH` |
//! | `VM_MEM_CACHE_NONE` | [`MemFlags::CACHE_NONE`] → `PageAttrs::CACHE_DISABLE` |
//! | `VM_MEM_LITERAL` | [`MemFlags::LITERAL`] |
//! | `VM_MEM_RESERVED` | [`MemFlags::RESERVED`], [`NodeKind::Reserved`] |
//! | `VM_MEM_NODE_MASK` | [`MemFlags::NODE_MASK`] |
//! | `VMM_NODE_IS_EMPTY(n)` | [`NodeKind::Empty`] |
//! | `PAGE_SIZE`, `PAGE_ALIGN`, `PAGE_ALIGN_UP` | `paging::PAGE_SIZE`, `paging::page_align_down`, `paging::page_align_up` |
//! | `VMM_CALLBACK` + cookie | [`CallbackFn`] (a closure: the cookie is what it captures), [`CallbackMapper`], [`CallbackFault`] |
//! | `VmmMap` | [`Vmm::map`] |
//! | `VmmAlloc` | [`Vmm::alloc`] |
//! | `VmmAllocCallback` | [`Vmm::alloc_callback`] |
//! | `VmmMapFile` | [`Vmm::map_file`] (with a file offset) |
//! | `VmmMapSharedArea` | [`Vmm::map_shared`] |
//! | `VmmReserveArea` | [`Vmm::reserve`] |
//! | `VmmShare` | [`Vmm::share`] → [`ShareHandle`]; `VmmOpenSharedArea`/`HndOpen` → [`Vmm::open_shared`]; `HndExport(NULL)` → [`Vmm::unexport`]; `HndClose` → [`Vmm::close_handle`] |
//! | `VmmFree` | [`Vmm::free`] (base address only, B20) |
//! | `VmmFreeNode` | [`Vmm::free`] on a node's base (nodes are owned by the tree) |
//! | `VmmLookupNode` | [`Vmm::lookup`] (the unused `level` argument is dropped) |
//! | `VmmPageFault` | [`crate::mm::fault::handle`] |
//! | `process_t` (its VMM part) | [`AddressSpace`], [`SpaceId`] |
//! | `file_handle_t` (for `VmmMapFile`, `dest1` of FILE) | [`FileBacking`] (`Arc<dyn FileBacking>`; [`MemFile`] in memory) |
//! | `module_t` (`dest1` of IMAGE) | the file plus a [`Section`] list in [`AreaKind::Image`] |
//! | `handle_t` returned by `VmmShare` | [`ShareHandle`] |
//! | `dest1`/`dest2`/`type` of `VmmMap` | the variant and fields of [`AreaKind`] |
//! | page states (`PAGE_VALID_CLEAN`, `PAGE_VALID_DIRTY`, `PAGE_READINPROG`, `PAGE_READFAILED`) | not mapped / mapped without `WRITABLE` / mapped `WRITABLE` (from the PTE); [`rec::READING`], [`rec::FAILED`] in the area's [`PageRecords`] |
//! | `errno` values | [`VmError`] |
//!
//! # No-execute
//!
//! Möbius has no execute flag. NORMAL, FILE and CALLBACK pages are
//! executable (code may be loaded or generated there); MAP areas (device
//! memory, framebuffers) are mapped NX; IMAGE pages are NX unless their
//! section is marked executable.
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::frame::{FrameAllocator, FrameZeroing, MemRegion, PoolTables, TABLES_PER_MAP};
use super::paging::{page_align_down, MapError, Mmu, PageAttrs, PhysAddr, VirtAddr, PAGE_SIZE};
use super::stats::{CycleSource, FaultStats};

mod area;
mod cache;
mod error;
mod file_fault;
mod flags;
mod fork;
mod inspect;
mod node;
mod remap;
mod resize;
mod resolve;
mod sharing;

pub use area::{
    rec, AreaDesc, AreaKind, AreaType, CallbackFault, CallbackFn, CallbackMapper, DescId, Descs,
    FileBacking, FileError, MemFile, PageRecords, Section,
};
pub use error::VmError;
pub use flags::MemFlags;
pub use node::{Node, NodeKind, NodeTree};
use resolve::Hint;
pub use resolve::{Access, FaultOutcome};
pub(crate) use resolve::{CallbackPlan, ReadPlan, Step};

/// First address of the user half.
pub const USER_START: VirtAddr = 0x0000_0080_0000_0000;
/// First address of a process space's user half ([`Vmm::create_process_space`]):
/// static Linux programs are linked at 4 MiB. Below it lies the kernel's low
/// identity map, which every address space keeps.
pub const PROCESS_LOW_START: VirtAddr = 0x0000_0000_0040_0000;
/// End (exclusive) of the user half: the top of the lower canonical half.
pub const USER_END: VirtAddr = 0x0000_8000_0000_0000;
/// First address of the kernel half (start of the upper canonical half).
pub const KERNEL_START: VirtAddr = 0xFFFF_8000_0000_0000;
/// End (exclusive) of the kernel half: 512 GiB, one PML4 slot.
pub const KERNEL_END: VirtAddr = 0xFFFF_8080_0000_0000;

/// The VMM as the kernel holds it.
pub type VmmLock<M> = spin::Mutex<Vmm<M>>;

/// Identifies an address space (the VMM part of a Möbius `process_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(pub u32);

/// The kernel's own address space (Möbius `proc_idle`), created by [`Vmm::new`].
pub const KERNEL_SPACE: SpaceId = SpaceId(0);

/// One address space: a page-table root and the nodes of its user half.
/// The kernel half's nodes live in the [`Vmm`], shared by all spaces.
#[derive(Debug)]
pub struct AddressSpace {
    pub root: PhysAddr,
    pub user: NodeTree,
}

/// Which half an address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    User,
    Kernel,
}

/// The half containing `addr`, if any.
pub fn half_of(addr: VirtAddr) -> Option<Half> {
    if (PROCESS_LOW_START..USER_END).contains(&addr) {
        // Below USER_START only process spaces have a user tree; elsewhere
        // the tree's own range check refuses the address.
        Some(Half::User)
    } else if (KERNEL_START..KERNEL_END).contains(&addr) {
        Some(Half::Kernel)
    } else {
        None
    }
}

/// A reference to a shared area, returned by [`Vmm::share`] and
/// [`Vmm::open_shared`] (a Möbius handle to a `vm_desc_t`). It owns one
/// reference; give it back with [`Vmm::close_handle`].
#[must_use = "a share handle holds a reference until closed"]
#[derive(Debug, PartialEq, Eq)]
pub struct ShareHandle {
    desc: DescId,
}

impl ShareHandle {
    pub fn desc(&self) -> DescId {
        self.desc
    }
}

/// A node as seen from outside (`VmmLookupNode`'s answer and the debug listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub base: VirtAddr,
    pub pages: u64,
    pub kind: NodeKind,
    /// `VM_AREA_*` of a mapped node.
    pub area: Option<AreaType>,
    /// Tree levels the lookup visited.
    pub depth: u64,
}

impl core::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let end = self.base + self.pages * PAGE_SIZE;
        write!(
            f,
            "{:#018x}-{:#018x} {:>10} pages ",
            self.base, end, self.pages
        )?;
        match (self.kind, self.area) {
            (NodeKind::Empty, _) => f.write_str("empty"),
            (NodeKind::Reserved, _) => f.write_str("reserved"),
            (NodeKind::Mapped { flags, .. }, area) => write!(f, "{area:?} {flags:?}"),
        }
    }
}

/// Nodes of one half in address order, by base.
pub type NodeList = Vec<(VirtAddr, Node)>;

/// A descriptor as seen by [`VmmState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescState {
    pub id: DescId,
    pub refs: u32,
    pub pages: u64,
    /// Non-zero page records (index, record).
    pub records: Vec<(u64, u64)>,
}

/// Everything observable about the VMM's state, for "an error changed
/// nothing" checks and debugging. Fault statistics are not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmmState {
    pub kernel: NodeList,
    pub spaces: Vec<(SpaceId, PhysAddr, NodeList)>,
    pub descs: Vec<DescState>,
    pub exports: Vec<(String, DescId)>,
    /// free, used, zeroed frames.
    pub frames: (u64, u64, u64),
}

/// Initial configuration: the memory map and how to zero frames.
pub struct VmmConfig<'a> {
    /// RAM regions from the PVH memory map.
    pub ram: &'a [MemRegion],
    /// Ranges never to hand out (kernel image, boot structures, heap).
    pub reserved: &'a [MemRegion],
    pub zeroing: Box<dyn FrameZeroing>,
    pub clock: Box<dyn CycleSource>,
}

/// The whole VMM: frames, page tables, the kernel-half nodes, every address
/// space, area descriptors, exported names and statistics.
pub struct Vmm<M: Mmu> {
    mmu: M,
    frames: FrameAllocator,
    kernel: NodeTree,
    spaces: Vec<Option<AddressSpace>>,
    descs: Descs,
    exports: BTreeMap<String, DescId>,
    stats: FaultStats,
    clock: Box<dyn CycleSource>,
    /// The node the last fault lookup found; cleared whenever a tree changes.
    hint: Option<Hint>,
    /// Read-only program-image pages shared by every process.
    cache: cache::ImageCache,
}

fn map_err(e: MapError) -> VmError {
    match e {
        MapError::OutOfFrames => VmError::OutOfFrames,
        MapError::AlreadyMapped => VmError::Overlap,
        MapError::NotMapped => VmError::NotAllocated,
        MapError::BadAddress => VmError::OutOfRange,
    }
}

impl<M: Mmu> Vmm<M> {
    /// Initialise: frame allocator over the memory map, the kernel address
    /// space ([`KERNEL_SPACE`]) with its root from `mmu`.
    pub fn new(config: VmmConfig<'_>, mmu: M) -> Result<Self, VmError> {
        let mut vmm = Vmm {
            mmu,
            frames: FrameAllocator::new(config.ram, config.reserved, config.zeroing),
            kernel: NodeTree::new(KERNEL_START, KERNEL_END),
            spaces: Vec::new(),
            descs: Descs::default(),
            exports: BTreeMap::new(),
            stats: FaultStats::default(),
            clock: config.clock,
            hint: None,
            cache: cache::ImageCache::default(),
        };
        let kernel = vmm.create_space()?;
        debug_assert_eq!(kernel, KERNEL_SPACE);
        Ok(vmm)
    }

    // ----- address spaces -------------------------------------------------

    /// Create an address space with a fresh root whose kernel half is shared.
    pub fn create_space(&mut self) -> Result<SpaceId, VmError> {
        self.create_space_from(USER_START)
    }

    /// Create the address space of a process (Möbius `process_t`): like
    /// [`Vmm::create_space`], but its user half starts at
    /// [`PROCESS_LOW_START`], where Linux programs are linked. That low
    /// range starts as one reservation, so automatic placement (`mmap`
    /// without an address) still begins at [`USER_START`] and leaves the
    /// room above a program for its heap; a program's segments and heap are
    /// fixed mappings carved out of the reservation.
    pub fn create_process_space(&mut self) -> Result<SpaceId, VmError> {
        let space = self.create_space_from(PROCESS_LOW_START)?;
        let pages = (USER_START - PROCESS_LOW_START) / PAGE_SIZE;
        self.insert_node(
            space,
            Half::User,
            PROCESS_LOW_START,
            pages,
            NodeKind::Reserved,
        );
        Ok(space)
    }

    fn create_space_from(&mut self, user_start: VirtAddr) -> Result<SpaceId, VmError> {
        self.frames.ensure_known_zero(1, &mut self.mmu);
        let root = self
            .mmu
            .new_root(&mut PoolTables(&mut self.frames))
            .map_err(map_err)?;
        let space = AddressSpace {
            root,
            user: NodeTree::new(user_start, USER_END),
        };
        let slot = self.spaces.iter().position(Option::is_none);
        let index = slot.unwrap_or(self.spaces.len());
        if slot.is_some() {
            self.spaces[index] = Some(space);
        } else {
            self.spaces.push(Some(space));
        }
        Ok(SpaceId(index as u32))
    }

    /// Free every user-half area and reservation of `space`, then its page
    /// tables and root (process teardown, fixes B36). Refuses the kernel
    /// space and the space live in CR3 (`SpaceLive`).
    ///
    /// The page tables go whole, with the mappings still in them: nothing
    /// is unmapped page by page (no CPU runs on the space, and no TLB
    /// holds its entries: it is not in CR3). Then each area loses the
    /// space's reference, and the last reference frees its frames.
    pub fn destroy_space(&mut self, space: SpaceId) -> Result<(), VmError> {
        if space == KERNEL_SPACE {
            return Err(VmError::BadHandle);
        }
        if self.mmu.is_live(self.space(space)?.root) {
            return Err(VmError::SpaceLive);
        }
        self.hint = None;
        let s = self.spaces[space.0 as usize].take().expect("checked");
        // One pass over each area's records: free the page table of each
        // 2 MiB block where the records say pages are mapped (a mapped page
        // always has a record), and the frames of areas that lose their
        // last reference with the space.
        for (base, desc) in s.user.mapped() {
            let d = self.descs.get_mut(desc).expect("live desc");
            d.refs -= 1;
            let last = d.refs == 0;
            let (frames, mmu) = (&mut self.frames, &mut self.mmu);
            let mut last_block = u64::MAX;
            d.records.for_each(|i, r| {
                if r & rec::FRAME == 0 {
                    return;
                }
                let page = base + i * PAGE_SIZE;
                if page >> 21 != last_block {
                    last_block = page >> 21;
                    mmu.free_page_table(s.root, page, &mut PoolTables(&mut *frames));
                }
                if last && r & rec::OWNED != 0 {
                    let freed = frames.free(r & rec::ADDR, &mut *mmu);
                    debug_assert!(freed.is_ok(), "area frame not in use: {freed:?}");
                }
            });
            if last {
                self.descs.remove(desc);
            }
        }
        // Then whatever tables are left, and the root.
        self.mmu
            .free_root(s.root, &mut PoolTables(&mut self.frames));
        Ok(())
    }

    fn space(&self, space: SpaceId) -> Result<&AddressSpace, VmError> {
        self.spaces
            .get(space.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(VmError::BadHandle)
    }

    /// Nodes (areas, reservations, free ranges) in `space`'s user half: what
    /// a program's mappings cost the kernel heap.
    pub fn user_nodes(&self, space: SpaceId) -> usize {
        self.space(space).map_or(0, |s| s.user.len())
    }

    /// The page-table root of a space (for CR3).
    pub fn root(&self, space: SpaceId) -> Result<PhysAddr, VmError> {
        Ok(self.space(space)?.root)
    }

    /// Live address spaces.
    pub fn spaces(&self) -> impl Iterator<Item = SpaceId> + '_ {
        self.spaces
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| SpaceId(i as u32))
    }

    fn tree(&self, space: SpaceId, half: Half) -> Result<&NodeTree, VmError> {
        let s = self.space(space)?;
        Ok(match half {
            Half::User => &s.user,
            Half::Kernel => &self.kernel,
        })
    }

    /// A tree about to change: the fault hint goes.
    fn tree_mut(&mut self, space: SpaceId, half: Half) -> &mut NodeTree {
        self.hint = None;
        match half {
            Half::User => {
                &mut self.spaces[space.0 as usize]
                    .as_mut()
                    .expect("checked")
                    .user
            }
            Half::Kernel => &mut self.kernel,
        }
    }

    /// The root to use for a page: kernel-half pages go through the kernel
    /// root (the kernel half is shared by all roots).
    fn root_for(&self, space: SpaceId, half: Half) -> PhysAddr {
        let s = match half {
            Half::User => space,
            Half::Kernel => KERNEL_SPACE,
        };
        self.spaces[s.0 as usize].as_ref().expect("live space").root
    }

    // ----- placement ------------------------------------------------------

    /// Choose or check the range for a new node of `pages` pages.
    fn place(
        &self,
        space: SpaceId,
        pages: u64,
        base: VirtAddr,
        flags: MemFlags,
        reserve: bool,
    ) -> Result<(Half, VirtAddr), VmError> {
        self.space(space)?;
        if pages == 0 {
            return Err(VmError::ZeroPages);
        }
        if base == 0 && !flags.contains(MemFlags::LITERAL) {
            let half = if flags.is_user() || reserve {
                Half::User
            } else {
                Half::Kernel
            };
            let tree = self.tree(space, half)?;
            if pages > (tree.end() - tree.start()) / PAGE_SIZE {
                return Err(VmError::AddressSpaceExhausted);
            }
            let at = tree
                .find_free(pages)
                .ok_or(VmError::AddressSpaceExhausted)?;
            return Ok((half, at));
        }
        if base & (PAGE_SIZE - 1) != 0 {
            return Err(VmError::Unaligned);
        }
        let half = half_of(base).ok_or(VmError::OutOfRange)?;
        if half == Half::Kernel && flags.is_user() {
            return Err(VmError::InvalidFlags);
        }
        self.tree(space, half)?.check_fixed(base, pages, !reserve)?;
        Ok((half, base))
    }

    fn insert_node(
        &mut self,
        space: SpaceId,
        half: Half,
        base: VirtAddr,
        pages: u64,
        kind: NodeKind,
    ) {
        self.tree_mut(space, half).carve(base, pages, kind);
    }

    // ----- creating areas -------------------------------------------------

    /// `VmmMap`: create an area of any kind in `space` and map it at `base`
    /// (0 = choose, unless `VM_MEM_LITERAL`). Nothing is touched until the
    /// first fault. Returns the base.
    pub fn map(
        &mut self,
        space: SpaceId,
        pages: u64,
        base: VirtAddr,
        kind: AreaKind,
        flags: MemFlags,
    ) -> Result<VirtAddr, VmError> {
        let flags = MemFlags::validate_area(flags.bits()).ok_or(VmError::InvalidFlags)?;
        kind.validate(pages)?;
        let (half, at) = self.place(space, pages, base, flags, false)?;
        let node_flags = flags & MemFlags::NODE_MASK;
        let desc = self.descs.insert(AreaDesc {
            pages,
            flags: node_flags,
            kind,
            records: PageRecords::default(),
            refs: 1,
            cow: false,
            shared: false,
        });
        self.insert_node(
            space,
            half,
            at,
            pages,
            NodeKind::Mapped {
                desc,
                flags: node_flags,
            },
        );
        Ok(at)
    }

    /// `VmmAlloc`: a NORMAL (demand-zero) area.
    pub fn alloc(
        &mut self,
        space: SpaceId,
        pages: u64,
        base: VirtAddr,
        flags: MemFlags,
    ) -> Result<VirtAddr, VmError> {
        self.map(space, pages, base, AreaKind::Normal, flags)
    }

    /// `VmmAllocCallback`: an area whose faults `handler` resolves.
    pub fn alloc_callback(
        &mut self,
        space: SpaceId,
        pages: u64,
        base: VirtAddr,
        flags: MemFlags,
        handler: Arc<CallbackFn>,
    ) -> Result<VirtAddr, VmError> {
        self.map(space, pages, base, AreaKind::Callback(handler), flags)
    }

    /// `VmmMap(VM_AREA_MAP)`: map the physical range at `phys`.
    pub fn map_phys(
        &mut self,
        space: SpaceId,
        pages: u64,
        base: VirtAddr,
        phys: PhysAddr,
        flags: MemFlags,
    ) -> Result<VirtAddr, VmError> {
        self.map(space, pages, base, AreaKind::Map { phys }, flags)
    }

    /// `VmmMapFile`: map `pages` pages of `file` from byte `offset` (page
    /// aligned). `VM_MEM_ZERO` is dropped as in Möbius.
    pub fn map_file(
        &mut self,
        space: SpaceId,
        file: Arc<dyn FileBacking>,
        offset: u64,
        base: VirtAddr,
        pages: u64,
        flags: MemFlags,
    ) -> Result<VirtAddr, VmError> {
        self.map(
            space,
            pages,
            base,
            AreaKind::File { file, offset },
            flags - MemFlags::ZERO,
        )
    }

    /// `VmmMap(VM_AREA_IMAGE)`: map an executable image described by `sections`.
    pub fn map_image(
        &mut self,
        space: SpaceId,
        file: Arc<dyn FileBacking>,
        sections: &[Section],
        base: VirtAddr,
        pages: u64,
        flags: MemFlags,
    ) -> Result<VirtAddr, VmError> {
        let kind = AreaKind::Image {
            file,
            sections: sections.into(),
        };
        self.map(space, pages, base, kind, flags)
    }

    /// `VmmReserveArea`: reserve `pages` pages at `base` (0 = lowest free
    /// range of the user half). Automatic placement skips it; fixed
    /// allocations may be carved out of it.
    pub fn reserve(
        &mut self,
        space: SpaceId,
        pages: u64,
        base: VirtAddr,
    ) -> Result<VirtAddr, VmError> {
        let (half, at) = self.place(space, pages, base, MemFlags::KERNEL, true)?;
        self.insert_node(space, half, at, pages, NodeKind::Reserved);
        Ok(at)
    }

    /// Whether `page` is mapped in `space` (either half).
    pub fn is_mapped(&self, space: SpaceId, page: VirtAddr) -> bool {
        let Some(half) = half_of(page) else {
            return false;
        };
        self.space(space).is_ok()
            && self
                .mmu
                .translate(self.root_for(space, half), page)
                .is_some()
    }

    // ----- freeing ----------------------------------------------------------

    /// `VmmFree` as the syscall: like [`Vmm::free`], but only areas and
    /// reservations a user may free — user-accessible areas in the user
    /// half (B20: a user cannot free its thread-info page or kernel areas).
    pub fn free_from_user(&mut self, space: SpaceId, base: VirtAddr) -> Result<(), VmError> {
        if half_of(base) != Some(Half::User) {
            return Err(VmError::PermissionDenied);
        }
        let node = self.space(space)?.user.lookup(base).map(|(_, n)| n.kind);
        if let Some(NodeKind::Mapped { flags, .. }) = node {
            if !flags.is_user() {
                return Err(VmError::PermissionDenied);
            }
        }
        self.free(space, base)
    }

    /// `VmmFree` / `VmmFreeNode`: free the area or reservation starting at
    /// `base`. Unmaps every page the node mapped (CALLBACK pages included),
    /// frees empty page tables, coalesces the free range and drops the
    /// node's reference to the area.
    pub fn free(&mut self, space: SpaceId, base: VirtAddr) -> Result<(), VmError> {
        let half = half_of(base).ok_or(VmError::NotAllocated)?;
        self.tree(space, half)?;
        let node = self.tree_mut(space, half).release(base)?;
        if let NodeKind::Mapped { desc, .. } = node.kind {
            self.unmap_node(space, half, base, desc);
            self.drop_ref(desc);
        }
        Ok(())
    }

    fn unmap_node(&mut self, space: SpaceId, half: Half, base: VirtAddr, desc: DescId) {
        let root = self.root_for(space, half);
        let d = self.descs.get(desc).expect("live desc");
        if d.records.is_untouched() {
            return;
        }
        let mut tables = PoolTables(&mut self.frames);
        let mmu = &mut self.mmu;
        d.records.for_each(|i, r| {
            if r & rec::FRAME != 0 {
                mmu.unmap(root, base + i * PAGE_SIZE, &mut tables);
            }
        });
    }

    /// Drop one reference; the last one frees the area's owned frames.
    fn drop_ref(&mut self, id: DescId) {
        let d = self.descs.get_mut(id).expect("live desc");
        d.refs -= 1;
        if d.refs > 0 {
            return;
        }
        let d = self.descs.remove(id).expect("live desc");
        if d.records.is_untouched() {
            return;
        }
        let (frames, mmu) = (&mut self.frames, &mut self.mmu);
        d.records.for_each(|_, r| {
            if r & rec::OWNED != 0 {
                let freed = frames.free(r & rec::ADDR, mmu);
                debug_assert!(freed.is_ok(), "area frame not in use: {freed:?}");
            }
        });
    }

    // ----- lookup ---------------------------------------------------------

    /// `VmmLookupNode`: the node containing `addr` (any interior address).
    pub fn lookup(&mut self, space: SpaceId, addr: VirtAddr) -> Option<NodeInfo> {
        let tree = self.tree(space, half_of(addr)?).ok()?;
        let depth = tree.depth();
        let found = tree.lookup(addr);
        self.stats.record_lookup(depth);
        let (base, node) = found?;
        Some(self.info(base, node, depth))
    }

    fn info(&self, base: VirtAddr, node: Node, depth: u64) -> NodeInfo {
        let area = match node.kind {
            NodeKind::Mapped { desc, .. } => self.descs.get(desc).map(|d| d.kind.area_type()),
            _ => None,
        };
        NodeInfo {
            base,
            pages: node.pages,
            kind: node.kind,
            area,
            depth,
        }
    }

    /// Every node of `space` (user half, then the shared kernel half), in
    /// address order: the debug listing (§9 row 37).
    pub fn nodes(&self, space: SpaceId) -> Result<Vec<NodeInfo>, VmError> {
        let s = self.space(space)?;
        Ok(s.user
            .iter()
            .chain(self.kernel.iter())
            .map(|(b, n)| self.info(b, n, 0))
            .collect())
    }

    /// The live area descriptor `desc` (`vm_desc_t`).
    pub fn area(&self, desc: DescId) -> Option<&AreaDesc> {
        self.descs.get(desc)
    }

    /// Reference count of the area mapped at `addr`.
    pub fn area_refs(&self, space: SpaceId, addr: VirtAddr) -> Option<u32> {
        let (_, node) = self.tree(space, half_of(addr)?).ok()?.lookup(addr)?;
        match node.kind {
            NodeKind::Mapped { desc, .. } => self.descs.get(desc).map(|d| d.refs),
            _ => None,
        }
    }
}
