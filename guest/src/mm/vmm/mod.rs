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
//! CALLBACK handlers and file reads, so handlers may fault and call back into
//! the VMM.
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

use mobius_shared::stats::{FaultKind, NodeStats, Snapshot};

use super::frame::{FrameAllocator, FrameZeroing, MemRegion, PoolTables, TABLES_PER_MAP};
use super::paging::{page_align_down, MapError, Mmu, PageAttrs, PhysAddr, VirtAddr, PAGE_SIZE};
use super::stats::{CycleSource, FaultStats};

mod area;
mod error;
mod flags;
mod node;
mod resize;

pub use area::{
    rec, AreaDesc, AreaKind, AreaType, CallbackFault, CallbackFn, CallbackMapper, DescId, Descs,
    FileBacking, FileError, MemFile, PageRecords, Section,
};
pub use error::VmError;
pub use flags::MemFlags;
pub use node::{Node, NodeKind, NodeTree};

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

/// The kind of access that faulted (from the #PF error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    /// Error code W/R: the access was a write.
    pub write: bool,
    /// Error code U/S: the access came from user mode.
    pub user: bool,
    /// Error code I/D: an instruction fetch.
    pub instruction: bool,
    /// Error code P: the page was present (a protection fault). When false
    /// the fault path skips looking at the page tables; if the page turns
    /// out to be mapped after all the fault is [`FaultOutcome::Spurious`]
    /// and the retried access faults again with `present` set.
    pub present: bool,
}

impl Access {
    pub const READ: Access = Access {
        write: false,
        user: false,
        instruction: false,
        present: false,
    };
    pub const WRITE: Access = Access {
        write: true,
        user: false,
        instruction: false,
        present: false,
    };
    pub const USER_READ: Access = Access {
        write: false,
        user: true,
        instruction: false,
        present: false,
    };
    pub const USER_WRITE: Access = Access {
        write: true,
        user: true,
        instruction: false,
        present: false,
    };
}

/// What became of a page fault ([`crate::mm::fault::handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Resolved; retry the instruction. The kind is what was counted.
    Resolved(FaultKind),
    /// The page was already mapped as needed (stale TLB entry); retry.
    Spurious,
    /// Another fault is reading the page in; wait and retry.
    Retry,
    /// The access is not allowed by the area: counted, nothing allocated.
    Protection,
    /// No area covers the address (or no section of an image does).
    Unresolved,
    /// No frame for the page (or a page table): counted, never a hang.
    OutOfFrames,
    /// Reading the page failed; terminal for this page (`PAGE_READFAILED`).
    ReadFailed,
}

impl core::fmt::Display for FaultOutcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FaultOutcome::Resolved(k) => write!(f, "resolved ({})", k.name()),
            FaultOutcome::Spurious => f.write_str("spurious"),
            FaultOutcome::Retry => f.write_str("retry (read in progress)"),
            FaultOutcome::Protection => f.write_str("protection violation"),
            FaultOutcome::Unresolved => f.write_str("no area covers the address"),
            FaultOutcome::OutOfFrames => f.write_str("out of physical frames"),
            FaultOutcome::ReadFailed => f.write_str("page read failed"),
        }
    }
}

impl FaultOutcome {
    /// Whether the faulting instruction can be restarted.
    pub fn is_resolved(self) -> bool {
        matches!(
            self,
            FaultOutcome::Resolved(_) | FaultOutcome::Spurious | FaultOutcome::Retry
        )
    }

    /// The kind this outcome is counted under, if any.
    pub fn kind(self) -> Option<FaultKind> {
        match self {
            FaultOutcome::Resolved(k) => Some(k),
            FaultOutcome::Protection => Some(FaultKind::Protection),
            FaultOutcome::Unresolved | FaultOutcome::OutOfFrames | FaultOutcome::ReadFailed => {
                Some(FaultKind::Unresolved)
            }
            FaultOutcome::Spurious | FaultOutcome::Retry => None,
        }
    }
}

/// What the fault path must do next (see `fault::handle`).
pub(crate) enum Step {
    Done(FaultOutcome, Option<FaultKind>),
    Read(ReadPlan),
    Callback(CallbackPlan),
}

/// A FILE/IMAGE read to do without the lock.
pub(crate) struct ReadPlan {
    pub space: SpaceId,
    pub desc: DescId,
    pub page: VirtAddr,
    pub index: u64,
    pub file: Arc<dyn FileBacking>,
    pub offset: u64,
    pub bytes: usize,
    pub kind: FaultKind,
    pub access: Access,
}

/// A CALLBACK handler to call without the lock.
pub(crate) struct CallbackPlan {
    pub handler: Arc<CallbackFn>,
    pub fault: CallbackFault,
    pub desc: DescId,
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
}

/// A mapped node as the fault path needs it: a one-entry cache in front of
/// the node trees (faults come in runs on the same area), filled by
/// [`Vmm::find`] from a `VmmLookupNode`-style tree lookup.
#[derive(Debug, Clone, Copy)]
struct Hint {
    /// The space the lookup was for (kernel-half nodes too: the space must
    /// be the one that faulted, as for a tree lookup).
    space: SpaceId,
    base: VirtAddr,
    end: VirtAddr,
    /// Page-table root for pages of this node.
    root: PhysAddr,
    desc: DescId,
    flags: MemFlags,
    area: AreaType,
    /// Whether the area and the node allow writing and forbid executing
    /// (per section for IMAGE areas: computed per page there).
    may_write: bool,
    no_exec: bool,
    /// Page attributes a read / a write fault maps with (non-IMAGE areas).
    read_attrs: PageAttrs,
    write_attrs: PageAttrs,
}

impl Hint {
    fn covers(&self, space: SpaceId, page: VirtAddr) -> bool {
        page >= self.base && page < self.end && self.space == space
    }
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
    /// tables and root (process teardown, fixes B36).
    pub fn destroy_space(&mut self, space: SpaceId) -> Result<(), VmError> {
        if space == KERNEL_SPACE {
            return Err(VmError::BadHandle);
        }
        let bases: Vec<VirtAddr> = self
            .space(space)?
            .user
            .iter()
            .filter(|(_, n)| n.kind != NodeKind::Empty)
            .map(|(b, _)| b)
            .collect();
        for base in bases {
            self.free(space, base)?;
        }
        self.hint = None;
        let s = self.spaces[space.0 as usize].take().expect("checked");
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
        for (i, r) in d.records.iter() {
            if r & rec::FRAME != 0 {
                self.mmu.unmap(root, base + i * PAGE_SIZE, &mut tables);
            }
        }
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
        for (_, r) in d.records.iter() {
            if r & rec::OWNED != 0 {
                let freed = self.frames.free(r & rec::ADDR, &mut self.mmu);
                debug_assert!(freed.is_ok(), "area frame not in use: {freed:?}");
            }
        }
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

    // ----- sharing ----------------------------------------------------------

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

    /// Remove the export `name` and its reference (`HndExport(hdr, NULL)`).
    pub fn unexport(&mut self, name: &str) -> Result<(), VmError> {
        let desc = self.exports.remove(name).ok_or(VmError::UnknownName)?;
        self.drop_ref(desc);
        Ok(())
    }

    // ----- frames and statistics -----------------------------------------

    /// Zero up to `n` freed frames into the zero pool (idle work).
    pub fn zero_some(&mut self, n: usize) -> usize {
        self.frames.zero_some(n, &mut self.mmu)
    }

    /// Pin a frame (`MemLockPages`), e.g. for I/O into it.
    pub fn pin_frame(&mut self, frame: PhysAddr) -> Result<u32, super::frame::FrameError> {
        self.frames.pin(frame)
    }

    /// Drop a pin taken with [`Vmm::pin_frame`].
    pub fn unpin_frame(&mut self, frame: PhysAddr) -> Result<u32, super::frame::FrameError> {
        self.frames.unpin(frame)
    }

    pub fn frames(&self) -> &FrameAllocator {
        &self.frames
    }

    pub fn mmu(&self) -> &M {
        &self.mmu
    }

    pub fn mmu_mut(&mut self) -> &mut M {
        &mut self.mmu
    }

    pub fn fault_stats(&self) -> &FaultStats {
        &self.stats
    }

    /// Current cycle count from the configured source.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Count a fault of `kind` (and its zero-pool sub-kind) that started at `t0`.
    pub(crate) fn record_fault(&mut self, outcome: FaultOutcome, pool: Option<FaultKind>, t0: u64) {
        let cycles = self.clock.now().saturating_sub(t0);
        if let Some(kind) = outcome.kind() {
            self.stats.record(kind, cycles);
        }
        if let Some(sub) = pool {
            self.stats.record(sub, cycles);
        }
        if outcome == FaultOutcome::OutOfFrames {
            self.frames.note_exhausted();
        }
    }

    /// Node statistics over all address spaces.
    pub fn node_stats(&self) -> NodeStats {
        let user: usize = self.spaces.iter().flatten().map(|s| s.user.len()).sum();
        NodeStats {
            nodes: (user + self.kernel.len()) as u64,
            areas: self.descs.len() as u64,
            ..self.stats.lookup_stats()
        }
    }

    /// Fill the fault, frame and node fields of `snap`.
    pub fn fill_snapshot(&self, snap: &mut Snapshot) {
        self.stats.fill(snap);
        snap.frames = self.frames.stats();
        snap.nodes = self.node_stats();
    }

    /// A human-readable statistics summary (for the serial console at exit).
    pub fn write_summary(&self, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
        writeln!(w, "vmm: fault kind            count   avg cycles")?;
        for kind in FaultKind::ALL {
            let c = self.stats.get(kind);
            let avg = c.cycles.checked_div(c.count).unwrap_or(0);
            writeln!(w, "vmm: {:<22} {:>8} {:>12}", kind.name(), c.count, avg)?;
        }
        let f = self.frames.stats();
        writeln!(
            w,
            "vmm: frames total {} free {} used {} zeroed {} exhausted {}",
            f.total, f.free, f.used, f.zeroed, f.exhausted
        )?;
        let n = self.node_stats();
        writeln!(
            w,
            "vmm: nodes {} areas {} lookups {} max depth {}",
            n.nodes, n.areas, n.lookups, n.max_lookup_depth
        )
    }

    /// The benchmark floor: map one pre-zeroed frame at `addr` in `space`
    /// writable, with no node lookup, no records and no statistics (what
    /// the issue calls "map one pre-zeroed frame"). Returns false when no
    /// known-zero frame is left or the page is mapped already. Frames mapped
    /// this way are not tracked: use a scratch range outside every area and
    /// release it with [`Vmm::floor_unmap`].
    pub fn floor_map(&mut self, space: SpaceId, addr: VirtAddr) -> bool {
        let Ok(root) = self.root(space) else {
            return false;
        };
        let Some(frame) = self.frames.alloc_known_zero() else {
            return false;
        };
        let attrs = PageAttrs::WRITABLE;
        let page = page_align_down(addr);
        self.frames.ensure_known_zero(TABLES_PER_MAP, &mut self.mmu);
        let mut tables = PoolTables(&mut self.frames);
        if self.mmu.map(root, page, frame, attrs, &mut tables).is_ok() {
            return true;
        }
        let _ = self.frames.free(frame, &mut self.mmu);
        false
    }

    /// Undo [`Vmm::floor_map`] for `addr`, freeing its frame.
    pub fn floor_unmap(&mut self, space: SpaceId, addr: VirtAddr) {
        let Ok(root) = self.root(space) else { return };
        let mut tables = PoolTables(&mut self.frames);
        if let Some(frame) = self.mmu.unmap(root, page_align_down(addr), &mut tables) {
            let _ = self.frames.free(frame, &mut self.mmu);
        }
    }

    /// A snapshot with the VMM's fields filled (run id, TSC fields 0).
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new(0, 0);
        self.fill_snapshot(&mut s);
        s
    }

    /// Everything observable (see [`VmmState`]).
    pub fn state(&self) -> VmmState {
        let f = self.frames.stats();
        VmmState {
            kernel: self.kernel.iter().collect(),
            spaces: self
                .spaces()
                .map(|id| {
                    let s = self.space(id).expect("live");
                    (id, s.root, s.user.iter().collect())
                })
                .collect(),
            descs: self
                .descs
                .iter()
                .map(|(id, d)| DescState {
                    id,
                    refs: d.refs,
                    pages: d.pages,
                    records: d.records.iter().collect(),
                })
                .collect(),
            exports: self.exports.iter().map(|(n, d)| (n.clone(), *d)).collect(),
            frames: (f.free, f.used, f.zeroed),
        }
    }

    /// Structural invariants: full coverage of every half, descriptor
    /// reference counts equal to mapping nodes + exports + `handles`
    /// (outstanding share handles per descriptor, supplied by the caller),
    /// frame conservation.
    pub fn check_invariants(&self, handles: &BTreeMap<DescId, u32>) -> Result<(), &'static str> {
        self.kernel.check_invariants()?;
        let mut refs: BTreeMap<DescId, u32> = BTreeMap::new();
        let trees = self
            .spaces
            .iter()
            .flatten()
            .map(|s| &s.user)
            .chain(core::iter::once(&self.kernel));
        for tree in trees {
            tree.check_invariants()?;
            for (_, n) in tree.iter() {
                if let NodeKind::Mapped { desc, .. } = n.kind {
                    *refs.entry(desc).or_default() += 1;
                }
            }
        }
        for d in self.exports.values() {
            *refs.entry(*d).or_default() += 1;
        }
        for (d, h) in handles {
            *refs.entry(*d).or_default() += h;
        }
        if refs.len() != self.descs.len() {
            return Err("descriptor alive without references, or reference to a dead one");
        }
        for (id, want) in refs {
            if self.descs.get(id).map(|d| d.refs) != Some(want) {
                return Err("reference count mismatch");
            }
        }
        self.frames.check_invariants()
    }

    // ----- fault resolution (called by mm::fault) --------------------------

    /// The mapped node containing `page` in `space` (`VmmLookupNode` on the
    /// fault path), and the tree levels the lookup visited: the hint when it
    /// covers `page` (no level), else a tree lookup that refills the hint.
    fn find(&mut self, space: SpaceId, page: VirtAddr) -> (Option<Hint>, u64) {
        if let Some(h) = self.hint {
            if h.covers(space, page) {
                return (Some(h), 0);
            }
        }
        let Some(half) = half_of(page) else {
            return (None, 0);
        };
        let Ok(tree) = self.tree(space, half) else {
            return (None, 0);
        };
        let depth = tree.depth();
        let Some((base, node)) = tree.lookup(page) else {
            return (None, depth);
        };
        let NodeKind::Mapped { desc, flags } = node.kind else {
            return (None, depth);
        };
        let d = self
            .descs
            .get(desc)
            .expect("mapped node has a live descriptor");
        let (area_write, no_exec) = d.page_rights(0);
        let may_write = area_write && flags.contains(MemFlags::WRITE);
        let h = Hint {
            space,
            base,
            end: base + node.pages * PAGE_SIZE,
            root: self.root_for(space, half),
            desc,
            flags,
            area: d.kind.area_type(),
            may_write,
            no_exec,
            read_attrs: flags.page_attrs(false, no_exec),
            write_attrs: flags.page_attrs(may_write, no_exec),
        };
        self.hint = Some(h);
        (Some(h), depth)
    }

    /// The short path of `VmmPageFault` for the common faults: a demand-zero
    /// fault on a page of a NORMAL area that has no record yet, and a clean
    /// → dirty upgrade. One hint check (a tree lookup when it misses, which
    /// refills the hint), at most one page-record read and write, a frame
    /// from the zero pool, one page-table walk. Counts the node lookup in
    /// every case. `None`, with nothing else changed, for anything else
    /// (other kinds, protection faults, a record present, a pool short of
    /// frames, a failed map): [`Vmm::fault_resolve`] then does the whole job.
    #[inline(always)]
    pub(crate) fn fault_fast(
        &mut self,
        space: SpaceId,
        addr: VirtAddr,
        access: Access,
        t0: u64,
    ) -> Option<FaultOutcome> {
        let page = page_align_down(addr);
        // The node lookup is counted here, once, whatever happens next.
        if self.hint.as_ref().is_some_and(|h| h.covers(space, page)) {
            self.stats.record_hint_lookup();
        } else {
            let (found, depth) = self.find(space, page);
            self.stats.record_lookup(depth);
            found?;
        }
        let h = self.hint.as_ref()?;
        if h.area != AreaType::Normal {
            return None;
        }
        if (access.user && !h.flags.is_user()) || (access.write && !h.may_write) {
            return None;
        }
        let (root, desc, index) = (h.root, h.desc, (page - h.base) / PAGE_SIZE);
        let attrs = if access.write {
            h.write_attrs
        } else {
            h.read_attrs
        };
        let kind = if access.present {
            if !access.write || self.mmu.set_writable(root, page) != Ok(true) {
                return None;
            }
            FaultKind::Upgrade
        } else {
            self.demand_zero_fast(root, page, desc, index, attrs)?;
            FaultKind::DemandZero
        };
        let cycles = self.clock.now().saturating_sub(t0);
        if kind == FaultKind::DemandZero {
            self.stats.record_zero_pool_demand_zero(cycles);
        } else {
            self.stats.record(kind, cycles);
        }
        Some(FaultOutcome::Resolved(kind))
    }

    /// Map a known-zero frame at `page` (page `index` of area `desc`) and
    /// record it; `None`, with nothing changed, if that cannot be done
    /// simply (a record present, the pool short of frames, the map failing).
    #[inline(always)]
    fn demand_zero_fast(
        &mut self,
        root: PhysAddr,
        page: VirtAddr,
        desc: DescId,
        index: u64,
        attrs: PageAttrs,
    ) -> Option<()> {
        let d = self.descs.get_mut(desc)?;
        let pages = d.pages;
        let record = d.records.slot_mut(index);
        if record.as_deref().is_some_and(|r| *r != 0)
            || !self.frames.has_known_zero(1 + TABLES_PER_MAP)
        {
            return None;
        }
        let frame = self.frames.alloc_known_zero()?;
        let mut tables = PoolTables(&mut self.frames);
        if self.mmu.map(root, page, frame, attrs, &mut tables).is_err() {
            // Untouched, so still zero.
            let freed = self.frames.free_zeroed(frame);
            debug_assert!(freed.is_ok(), "fresh frame not in use: {freed:?}");
            return None;
        }
        let value = frame | rec::FRAME | rec::OWNED;
        match record {
            Some(r) => *r = value,
            // First touch of this chunk of records: create it.
            None => d.records.set(index, pages, value),
        }
        Some(())
    }

    /// The whole first part of `VmmPageFault`, under the lock, counting the
    /// node lookup: find the node, check the access, and resolve everything
    /// that needs no I/O and no handler. The kernel's fault path tries
    /// [`Vmm::fault_fast`] first and falls back to [`Vmm::fault_resolve`];
    /// this entry serves the retry after a FILE/IMAGE read.
    pub(crate) fn fault_begin(&mut self, space: SpaceId, addr: VirtAddr, access: Access) -> Step {
        let (_, depth) = self.find(space, page_align_down(addr));
        self.stats.record_lookup(depth);
        self.fault_resolve(space, addr, access)
    }

    /// [`Vmm::fault_begin`] after the node lookup was counted (by
    /// [`Vmm::fault_fast`]): the hint normally covers the page by now.
    pub(crate) fn fault_resolve(&mut self, space: SpaceId, addr: VirtAddr, access: Access) -> Step {
        let page = page_align_down(addr);
        let Some(h) = self.find(space, page).0 else {
            return done(FaultOutcome::Unresolved);
        };
        let index = (page - h.base) / PAGE_SIZE;
        let (may_write, no_exec) = match h.area {
            AreaType::Image => {
                let d = self.descs.get(h.desc).expect("live");
                let (area_write, no_exec) = d.page_rights(index);
                (area_write && h.flags.contains(MemFlags::WRITE), no_exec)
            }
            _ => (h.may_write, h.no_exec),
        };
        if (access.user && !h.flags.is_user())
            || (access.write && !may_write)
            || (access.instruction && no_exec)
        {
            return done(FaultOutcome::Protection);
        }
        if access.present {
            if let Some(outcome) = self.upgrade(h.root, page, access) {
                return done(outcome);
            }
        }
        let target = Target {
            root: h.root,
            page,
            index,
            desc: h.desc,
            attrs: h.flags.page_attrs(access.write && may_write, no_exec),
        };
        if h.area == AreaType::Normal {
            let (root, desc, attrs) = (target.root, target.desc, target.attrs);
            if self
                .demand_zero_fast(root, page, desc, index, attrs)
                .is_some()
            {
                let outcome = FaultOutcome::Resolved(FaultKind::DemandZero);
                return Step::Done(outcome, Some(FaultKind::ZeroPoolHit));
            }
            return self.demand_zero(target);
        }
        let d = self.descs.get(h.desc).expect("live");
        match &d.kind {
            AreaKind::Normal => self.demand_zero(target),
            AreaKind::Map { phys } => {
                let frame = phys + index * PAGE_SIZE;
                done(self.map_recorded(target, frame, rec::FRAME, FaultKind::Map))
            }
            AreaKind::File { .. } | AreaKind::Image { .. } => {
                self.file_fault(space, target, access)
            }
            AreaKind::Callback(handler) => Step::Callback(CallbackPlan {
                handler: handler.clone(),
                fault: CallbackFault {
                    space,
                    node_base: h.base,
                    page,
                    write: access.write,
                    user: access.user,
                },
                desc: h.desc,
            }),
        }
    }

    /// A fault on a present page: clean → dirty upgrade (one page-table
    /// walk), or spurious. `None` if the page is not mapped after all.
    fn upgrade(&mut self, root: PhysAddr, page: VirtAddr, access: Access) -> Option<FaultOutcome> {
        if !access.write {
            return self
                .mmu
                .translate(root, page)
                .map(|_| FaultOutcome::Spurious);
        }
        match self.mmu.set_writable(root, page) {
            Ok(true) => Some(FaultOutcome::Resolved(FaultKind::Upgrade)),
            Ok(false) => Some(FaultOutcome::Spurious),
            Err(MapError::NotMapped) => None,
            Err(_) => Some(FaultOutcome::Unresolved),
        }
    }

    fn demand_zero(&mut self, t: Target) -> Step {
        let existing = self.descs.get(t.desc).expect("live").records.get(t.index);
        if existing & rec::FRAME != 0 {
            // Another mapping of a shared area materialised it already.
            return done(self.map_page(&t, existing & rec::ADDR, FaultKind::DemandZero));
        }
        let Some((frame, hit)) = self.frames.alloc_zeroed(&mut self.mmu) else {
            return done(FaultOutcome::OutOfFrames);
        };
        let outcome = self.map_recorded(t, frame, rec::FRAME | rec::OWNED, FaultKind::DemandZero);
        let pool = if hit {
            FaultKind::ZeroPoolHit
        } else {
            FaultKind::ZeroPoolMiss
        };
        Step::Done(
            outcome,
            matches!(outcome, FaultOutcome::Resolved(_)).then_some(pool),
        )
    }

    /// Map `frame` and record it in the area; on failure free an owned frame
    /// again and leave the record as it was.
    fn map_recorded(
        &mut self,
        t: Target,
        frame: PhysAddr,
        bits: u64,
        kind: FaultKind,
    ) -> FaultOutcome {
        let outcome = self.map_page(&t, frame, kind);
        if matches!(outcome, FaultOutcome::Resolved(_)) {
            let d = self.descs.get_mut(t.desc).expect("live");
            d.records.set(t.index, d.pages, frame | bits);
        } else if bits & rec::OWNED != 0 {
            let _ = self.frames.free(frame, &mut self.mmu);
        }
        outcome
    }

    fn map_page(&mut self, t: &Target, frame: PhysAddr, kind: FaultKind) -> FaultOutcome {
        self.frames.ensure_known_zero(TABLES_PER_MAP, &mut self.mmu);
        match self.mmu.map(
            t.root,
            t.page,
            frame,
            t.attrs,
            &mut PoolTables(&mut self.frames),
        ) {
            Ok(()) => FaultOutcome::Resolved(kind),
            Err(MapError::OutOfFrames) => FaultOutcome::OutOfFrames,
            // Mapped after all (the fault said "not present"): retry.
            Err(MapError::AlreadyMapped) => FaultOutcome::Spurious,
            Err(_) => FaultOutcome::Unresolved,
        }
    }

    fn file_fault(&mut self, space: SpaceId, t: Target, access: Access) -> Step {
        let d = self.descs.get(t.desc).expect("live");
        let r = d.records.get(t.index);
        let (file, offset, bytes, kind) = match &d.kind {
            AreaKind::File { file, offset } => {
                let off = offset + t.index * PAGE_SIZE;
                let bytes = file.len().saturating_sub(off).min(PAGE_SIZE);
                (file.clone(), off, bytes, FaultKind::FileReadIn)
            }
            AreaKind::Image { file, .. } => {
                let Some(s) = d.section(t.index) else {
                    return done(FaultOutcome::Unresolved);
                };
                let rel = t.index * PAGE_SIZE - s.offset;
                let bytes = s.file_size.saturating_sub(rel).min(PAGE_SIZE);
                (file.clone(), s.file_offset + rel, bytes, FaultKind::Image)
            }
            _ => unreachable!("file_fault on a non-file area"),
        };
        if r & rec::FAILED != 0 {
            return done(FaultOutcome::ReadFailed);
        }
        if r & rec::READING != 0 {
            return done(FaultOutcome::Retry);
        }
        if r & rec::FRAME != 0 {
            return done(self.map_page(&t, r & rec::ADDR, kind));
        }
        if bytes == 0 {
            // Past the data: a zero-filled page, no read.
            let Some((frame, _)) = self.frames.alloc_zeroed(&mut self.mmu) else {
                return done(FaultOutcome::OutOfFrames);
            };
            return done(self.map_recorded(t, frame, rec::FRAME | rec::OWNED, kind));
        }
        let d = self.descs.get_mut(t.desc).expect("live");
        d.records.set(t.index, d.pages, rec::READING);
        Step::Read(ReadPlan {
            space,
            desc: t.desc,
            page: t.page,
            index: t.index,
            file,
            offset,
            bytes: bytes as usize,
            kind,
            access,
        })
    }

    /// Second part of a FILE/IMAGE fault, under the lock again: install the
    /// data read without the lock (`None` = the read failed).
    pub(crate) fn read_done(&mut self, plan: ReadPlan, data: Option<&[u8]>) -> FaultOutcome {
        let Some(d) = self.descs.get_mut(plan.desc) else {
            return FaultOutcome::Unresolved; // the area went away meanwhile
        };
        let pages = d.pages;
        let Some(data) = data else {
            d.records.set(plan.index, pages, rec::FAILED);
            return FaultOutcome::ReadFailed;
        };
        let Some(frame) = self.frames.alloc_any() else {
            self.descs
                .get_mut(plan.desc)
                .expect("live")
                .records
                .set(plan.index, pages, 0);
            return FaultOutcome::OutOfFrames;
        };
        self.mmu.write_frame(frame, 0, data);
        self.descs.get_mut(plan.desc).expect("live").records.set(
            plan.index,
            pages,
            frame | rec::FRAME | rec::OWNED,
        );
        // Map it if the faulting node still maps this area there.
        match self.fault_begin(plan.space, plan.page, plan.access) {
            Step::Done(outcome, _) if outcome.is_resolved() => FaultOutcome::Resolved(plan.kind),
            Step::Done(outcome, _) => outcome,
            _ => FaultOutcome::Unresolved,
        }
    }

    /// Map a page for a CALLBACK handler (see [`CallbackMapper`]).
    pub(crate) fn callback_map(
        &mut self,
        plan: &CallbackPlan,
        phys: Option<PhysAddr>,
        writable: bool,
    ) -> Result<PhysAddr, VmError> {
        let f = &plan.fault;
        half_of(f.page).ok_or(VmError::NotAllocated)?;
        self.space(f.space)?;
        let h = self.find(f.space, f.page).0.ok_or(VmError::NotAllocated)?;
        let (desc, flags, root) = (h.desc, h.flags, h.root);
        if desc != plan.desc {
            return Err(VmError::NotAllocated);
        }
        if writable && !flags.contains(MemFlags::WRITE) {
            return Err(VmError::PermissionDenied);
        }
        let index = (f.page - h.base) / PAGE_SIZE;
        if self.mmu.translate(root, f.page).is_some() {
            return Err(VmError::Overlap);
        }
        let existing = self.descs.get(desc).expect("live").records.get(index);
        let attrs = flags.page_attrs(writable, false);
        let t = Target {
            root,
            page: f.page,
            index,
            desc,
            attrs,
        };
        let (frame, bits) = match (phys, existing & rec::FRAME != 0) {
            (Some(p), true) if p != existing & rec::ADDR => return Err(VmError::Overlap),
            (_, true) => {
                // Another mapping of the area has the page already: share it.
                let frame = existing & rec::ADDR;
                return match self.map_page(&t, frame, FaultKind::Callback) {
                    FaultOutcome::Resolved(_) => Ok(frame),
                    FaultOutcome::OutOfFrames => Err(VmError::OutOfFrames),
                    _ => Err(VmError::Overlap),
                };
            }
            (Some(p), false) => (p, rec::FRAME),
            (None, false) => {
                let (frame, _) = self
                    .frames
                    .alloc_zeroed(&mut self.mmu)
                    .ok_or(VmError::OutOfFrames)?;
                (frame, rec::FRAME | rec::OWNED)
            }
        };
        match self.map_recorded(t, frame, bits, FaultKind::Callback) {
            FaultOutcome::Resolved(_) => Ok(frame),
            FaultOutcome::OutOfFrames => Err(VmError::OutOfFrames),
            _ => Err(VmError::Overlap),
        }
    }
}

/// Where a fault maps its page.
struct Target {
    root: PhysAddr,
    page: VirtAddr,
    index: u64,
    desc: DescId,
    attrs: PageAttrs,
}

fn done(outcome: FaultOutcome) -> Step {
    Step::Done(outcome, None)
}
