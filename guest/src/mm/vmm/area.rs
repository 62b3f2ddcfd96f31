//! Area descriptors (Möbius `vm_desc_t`) and what backs them (`VM_AREA_*`).
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::flags::MemFlags;
use super::{SpaceId, VmError};
use crate::mm::paging::{PhysAddr, VirtAddr, PAGE_SIZE};

/// A file an area can be backed by (`file_handle_t` for `VmmMapFile` and
/// IMAGE areas). A later issue backs it with real files; [`MemFile`] is the
/// in-memory version.
pub trait FileBacking: Send + Sync {
    /// Read up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at end of file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError>;
    /// Current length in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The whole file, when it lies in memory: a fault then copies its
    /// page straight into the frame (one copy instead of three).
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }
    /// Who the file is, for the page cache of program images: two backings
    /// with the same id hold the same bytes for as long as the kernel runs.
    /// `None`: its pages are not cached.
    fn id(&self) -> Option<usize> {
        None
    }
    /// For a `MAP_SHARED` mapping: the physical page that holds the file's
    /// bytes from `offset` (page aligned), the file's own page that `read`,
    /// `write` and every shared mapping use, kept alive for as long as this
    /// backing lives. `None`: the file has no such pages (its pages are
    /// read in as for a private mapping). `Some(Err)`: past the end of the
    /// file, or no page could be had; the access is a bus error (as on
    /// Linux).
    fn shared_page(&self, _offset: u64) -> Option<Result<PhysAddr, FileError>> {
        None
    }
    /// Whether [`Self::shared_page`] gives pages (a writable `MAP_SHARED`
    /// mapping is possible).
    fn shares_pages(&self) -> bool {
        false
    }
    /// The physical frame that holds the file's bytes `[offset, offset +
    /// PAGE_SIZE)` (`offset` page aligned), when they fill that one frame
    /// exactly and stay there unchanged for as long as the kernel runs, in
    /// memory no allocator hands out (the initramfs, whose host aligns the
    /// data of programs to pages). Read-only mappings of the page may then
    /// map that frame in place: nothing copied, no frame allocated, never
    /// freed. `None` (the default): the page is copied into a frame.
    fn frame_in_place(&self, _offset: u64) -> Option<PhysAddr> {
        None
    }
    /// [`FileBacking::frame_in_place`] for `pages` consecutive pages at
    /// once: the frame of the first, when every one of them lies in place
    /// and they are consecutive frames (page `i` at the first plus `i`
    /// pages). `None` (the default): ask page by page.
    fn frames_in_place(&self, _offset: u64, _pages: usize) -> Option<PhysAddr> {
        None
    }
}

/// A read from a [`FileBacking`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileError;

/// An in-memory file. Its contents can be replaced (to simulate truncation).
#[derive(Debug, Default)]
pub struct MemFile(spin::Mutex<Vec<u8>>);

impl MemFile {
    pub fn new(data: Vec<u8>) -> Self {
        MemFile(spin::Mutex::new(data))
    }

    /// Cut the file to `len` bytes.
    pub fn truncate(&self, len: usize) {
        self.0.lock().truncate(len);
    }
}

impl FileBacking for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let data = self.0.lock();
        let start = usize::try_from(offset)
            .map_err(|_| FileError)?
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.0.lock().len() as u64
    }
}

/// One section of an IMAGE area (the part of a PE section table we need).
/// `offset` is page aligned; bytes of the section past `file_size` read as
/// zero (BSS and section tails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Byte offset of the section from the start of the area (page aligned).
    pub offset: u64,
    /// Size in memory, in bytes.
    pub size: u64,
    /// Where the section's data starts in the file.
    pub file_offset: u64,
    /// Bytes of data in the file (the rest of `size` is zero-filled).
    pub file_size: u64,
    /// `VM_MEM_WRITE` allows writing, further limited by the area's flags.
    pub flags: MemFlags,
    /// Whether code may run from this section (else mapped NX).
    pub execute: bool,
}

impl Section {
    fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE_SIZE)
    }

    fn contains_page(&self, page_offset: u64) -> bool {
        page_offset >= self.offset && page_offset < self.offset + self.pages() * PAGE_SIZE
    }
}

/// Information given to a CALLBACK handler (the arguments of `VMM_CALLBACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackFault {
    pub space: SpaceId,
    /// Base of the node that faulted (`vm_node_t *node`).
    pub node_base: VirtAddr,
    /// The faulting page (`addr_t start`).
    pub page: VirtAddr,
    /// `is_writing`.
    pub write: bool,
    pub user: bool,
}

/// What a CALLBACK handler may do to resolve its fault. Every page mapped
/// through it is recorded in the area and unmapped when the area goes (B45).
pub trait CallbackMapper {
    /// Map a zeroed frame owned by the area (freed with it) at the faulting
    /// page; if another mapping of the area already has one, that frame is
    /// mapped instead. Returns the frame.
    fn map_new_frame(&mut self, writable: bool) -> Result<PhysAddr, VmError>;
    /// Map a given physical frame (not owned: never freed by the VMM).
    fn map_phys(&mut self, phys: PhysAddr, writable: bool) -> Result<(), VmError>;
    /// Write into a frame returned by `map_new_frame`.
    fn write(&mut self, frame: PhysAddr, offset: usize, data: &[u8]);
}

/// A CALLBACK handler (`VMM_CALLBACK` + cookie: the closure carries the
/// cookie). Called with no VMM lock held; returns whether it resolved the
/// fault.
pub type CallbackFn = dyn Fn(&mut dyn CallbackMapper, &CallbackFault) -> bool + Send + Sync;

/// What backs an area (`VM_AREA_*`, the `dest` union of `vm_desc_t`).
#[derive(Clone)]
pub enum AreaKind {
    /// `VM_AREA_NORMAL`: demand-zero memory.
    Normal,
    /// `VM_AREA_MAP`: the physical range from `phys`; those frames never
    /// return to the allocator (B21). Mapped no-execute (device memory).
    Map { phys: PhysAddr },
    /// `VM_AREA_FILE`: pages read from `file` starting at byte `offset`.
    /// Writes stay private to the area (no write-back).
    File {
        file: Arc<dyn FileBacking>,
        offset: u64,
    },
    /// `VM_AREA_IMAGE`: sections of an executable image from `file`.
    Image {
        file: Arc<dyn FileBacking>,
        sections: Arc<[Section]>,
    },
    /// `VM_AREA_CALLBACK`: `VmmAllocCallback`'s handler and cookie.
    Callback(Arc<CallbackFn>),
}

impl core::fmt::Debug for AreaKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AreaKind::Normal => f.write_str("Normal"),
            AreaKind::Map { phys } => write!(f, "Map({phys:#x})"),
            AreaKind::File { offset, .. } => write!(f, "File(+{offset:#x})"),
            AreaKind::Image { sections, .. } => write!(f, "Image({} sections)", sections.len()),
            AreaKind::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// The `VM_AREA_*` number of an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum AreaType {
    Normal = 1,
    Map = 2,
    File = 3,
    Image = 4,
    Callback = 5,
}

impl AreaKind {
    pub fn area_type(&self) -> AreaType {
        match self {
            AreaKind::Normal => AreaType::Normal,
            AreaKind::Map { .. } => AreaType::Map,
            AreaKind::File { .. } => AreaType::File,
            AreaKind::Image { .. } => AreaType::Image,
            AreaKind::Callback(_) => AreaType::Callback,
        }
    }

    /// Check the parameters against an area of `pages` pages.
    pub(super) fn validate(&self, pages: u64) -> Result<(), VmError> {
        match self {
            AreaKind::Map { phys } if phys & (PAGE_SIZE - 1) != 0 => Err(VmError::Unaligned),
            AreaKind::Map { phys } => {
                let bytes = pages.checked_mul(PAGE_SIZE).ok_or(VmError::OutOfRange)?;
                phys.checked_add(bytes)
                    .map(|_| ())
                    .ok_or(VmError::OutOfRange)
            }
            AreaKind::File { offset, .. } if offset & (PAGE_SIZE - 1) != 0 => {
                Err(VmError::Unaligned)
            }
            AreaKind::Image { sections, .. } => validate_sections(sections, pages),
            _ => Ok(()),
        }
    }
}

fn validate_sections(sections: &[Section], pages: u64) -> Result<(), VmError> {
    let mut sorted: Vec<&Section> = sections.iter().collect();
    sorted.sort_by_key(|s| s.offset);
    let mut next_free = 0u64;
    for s in sorted {
        if s.offset & (PAGE_SIZE - 1) != 0 {
            return Err(VmError::Unaligned);
        }
        let end_page = (s.offset / PAGE_SIZE)
            .checked_add(s.pages())
            .ok_or(VmError::InvalidArea)?;
        if s.size == 0 || s.offset < next_free || end_page > pages || s.file_size > s.size {
            return Err(VmError::InvalidArea);
        }
        next_free = end_page * PAGE_SIZE;
    }
    Ok(())
}

/// Per-page record bits. The frame address sits in bits 12 and up.
pub mod rec {
    /// A frame is recorded for the page.
    pub const FRAME: u64 = 1;
    /// The area owns the frame and frees it with itself.
    pub const OWNED: u64 = 2;
    /// FILE/IMAGE: a read into this page is in progress (`PAGE_READINPROG`).
    pub const READING: u64 = 4;
    /// FILE/IMAGE: reading failed; terminal (`PAGE_READFAILED`).
    pub const FAILED: u64 = 8;
    /// The frame is shared copy-on-write with another area (after a fork):
    /// mapped read-only; the first write copies it, or takes it over when
    /// no one else owns it any more.
    pub const COW: u64 = 16;
    pub const ADDR: u64 = !0xFFF;
}

/// Pages per record chunk.
const CHUNK: u64 = 64;

/// Sparse per-page records of an area: chunks of 64 records, created on the
/// first touch in the chunk. An untouched area of any size costs nothing.
/// The first chunk hangs off the records directly, so areas of up to 64
/// pages never need more, and the record of a one-page area is held inline:
/// its first fault allocates nothing. Later chunks live (behind one box, to keep descriptors small) in a
/// vector in creation order, found through a map from chunk number to
/// position; the chunk found last is remembered, so a run of faults through
/// one chunk costs no map search.
#[derive(Debug, Default, Clone)]
pub struct PageRecords {
    first: First,
    more: Option<Box<MoreChunks>>,
}

/// The first chunk of [`PageRecords`].
#[derive(Debug, Default, Clone)]
enum First {
    #[default]
    None,
    /// The one record of a one-page area.
    One(u64),
    Chunk(Box<[u64]>),
}

impl First {
    fn get(&self) -> Option<&[u64]> {
        match self {
            First::None => None,
            First::One(r) => Some(core::slice::from_ref(r)),
            First::Chunk(c) => Some(c),
        }
    }

    fn get_mut(&mut self) -> Option<&mut [u64]> {
        match self {
            First::None => None,
            First::One(r) => Some(core::slice::from_mut(r)),
            First::Chunk(c) => Some(c),
        }
    }
}

/// The chunks after the first (see [`PageRecords`]).
#[derive(Debug, Default, Clone)]
struct MoreChunks {
    chunks: Vec<Box<[u64]>>,
    keys: BTreeMap<u64, u32>,
    /// Chunk number (≥ 1; 0 = none) and position of the chunk used last.
    last: (u64, u32),
}

impl MoreChunks {
    fn position(&self, key: u64) -> Option<usize> {
        if key == self.last.0 {
            return Some(self.last.1 as usize);
        }
        self.keys.get(&key).map(|&p| p as usize)
    }
}

fn new_chunk(key: u64, pages: u64) -> Box<[u64]> {
    let len = (pages - key * CHUNK).min(CHUNK) as usize;
    alloc::vec![0u64; len].into_boxed_slice()
}

impl PageRecords {
    fn chunk(&self, key: u64) -> Option<&[u64]> {
        match key {
            0 => self.first.get(),
            _ => {
                let more = self.more.as_deref()?;
                more.position(key).map(|p| &*more.chunks[p])
            }
        }
    }

    pub fn get(&self, index: u64) -> u64 {
        self.chunk(index / CHUNK)
            .map_or(0, |c| c[(index % CHUNK) as usize])
    }

    /// The record of page `index` to update in place, if its chunk exists
    /// (the fault path's short way; [`PageRecords::set`] creates chunks).
    #[inline]
    pub fn slot_mut(&mut self, index: u64) -> Option<&mut u64> {
        let key = index / CHUNK;
        let chunk = match key {
            0 => self.first.get_mut()?,
            _ => {
                let more = self.more.as_deref_mut()?;
                let p = more.position(key)?;
                more.last = (key, p as u32);
                &mut *more.chunks[p]
            }
        };
        chunk.get_mut((index % CHUNK) as usize)
    }

    /// The records of pages `[index, index + len)` to read and update in
    /// place, if they lie in one chunk that exists (a chunk holds 64
    /// aligned pages: an aligned run of 16 lies in one).
    pub fn run_mut(&mut self, index: u64, len: usize) -> Option<&mut [u64]> {
        let start = (index % CHUNK) as usize;
        if start + len > CHUNK as usize {
            return None;
        }
        self.slot_mut(index)?;
        let key = index / CHUNK;
        let chunk = match key {
            0 => self.first.get_mut()?,
            _ => {
                let more = self.more.as_deref_mut()?;
                let p = more.position(key)?;
                &mut *more.chunks[p]
            }
        };
        chunk.get_mut(start..start + len)
    }

    /// Set a record in an area of `pages` pages.
    pub fn set(&mut self, index: u64, pages: u64, value: u64) {
        if let Some(r) = self.slot_mut(index) {
            *r = value;
            return;
        }
        if value == 0 {
            return;
        }
        let key = index / CHUNK;
        if pages == 1 && index == 0 {
            self.first = First::One(value);
            return;
        }
        let mut chunk = new_chunk(key, pages);
        chunk[(index % CHUNK) as usize] = value;
        if key == 0 {
            self.first = First::Chunk(chunk);
        } else {
            let more = self.more.get_or_insert_with(Box::default);
            more.keys.insert(key, more.chunks.len() as u32);
            more.chunks.push(chunk);
        }
    }

    /// The area grows from `old_pages` to `pages` pages (`mremap`): only the
    /// chunk that held the old last page is widened (a one-page record
    /// becomes a chunk); later chunks are made on first use as always.
    /// Costs at most one chunk's copy, whatever the area's size.
    pub fn grow(&mut self, old_pages: u64, pages: u64) {
        if pages <= old_pages || old_pages == 0 {
            return;
        }
        let key = (old_pages - 1) / CHUNK;
        let want = (pages - key * CHUNK).min(CHUNK) as usize;
        let widen = |c: &mut Box<[u64]>| {
            if c.len() < want {
                let mut v = core::mem::take(c).into_vec();
                v.resize(want, 0);
                *c = v.into_boxed_slice();
            }
        };
        if key == 0 {
            match &mut self.first {
                First::None => {}
                First::One(r) => {
                    let mut chunk = new_chunk(0, pages);
                    chunk[0] = *r;
                    self.first = First::Chunk(chunk);
                }
                First::Chunk(c) => widen(c),
            }
        } else if let Some(more) = self.more.as_deref_mut() {
            if let Some(p) = more.position(key) {
                widen(&mut more.chunks[p]);
            }
        }
    }

    /// Whether no page was ever recorded (no chunk exists).
    pub fn is_untouched(&self) -> bool {
        matches!(self.first, First::None) && self.more.is_none()
    }

    /// Non-zero records in page order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let first = self.first.get().map(|c| (0u64, c));
        let more = self.more.as_deref().into_iter().flat_map(|m| {
            m.keys
                .iter()
                .map(move |(k, &p)| (*k, &*m.chunks[p as usize]))
        });
        first.into_iter().chain(more).flat_map(|(k, c)| {
            c.iter()
                .enumerate()
                .filter(|(_, r)| **r != 0)
                .map(move |(i, r)| (k * CHUNK + i as u64, *r))
        })
    }

    /// Call `f(index, record)` for every non-zero record in page order:
    /// [`PageRecords::iter`] as plain loops over the chunks (the teardown
    /// paths walk every record; on kvm_pvm each ring-0 instruction counts).
    pub fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        let mut chunk = |key: u64, c: &[u64]| {
            for (i, &r) in c.iter().enumerate() {
                if r != 0 {
                    f(key * CHUNK + i as u64, r);
                }
            }
        };
        if let Some(c) = self.first.get() {
            chunk(0, c);
        }
        if let Some(m) = self.more.as_deref() {
            for (k, &p) in &m.keys {
                chunk(*k, &m.chunks[p as usize]);
            }
        }
    }

    /// Number of pages with a frame.
    pub fn frames(&self) -> usize {
        self.iter().filter(|(_, r)| r & rec::FRAME != 0).count()
    }
}

/// An area descriptor (`vm_desc_t`): one memory object, mapped by one or
/// more nodes, possibly in several address spaces, and held by share
/// handles and exports. `refs` counts all of those; the area and its owned
/// frames go exactly when it drops to zero.
#[derive(Debug)]
pub struct AreaDesc {
    pub pages: u64,
    /// The creator's flags: the most any mapping may allow.
    pub flags: MemFlags,
    pub kind: AreaKind,
    pub records: PageRecords,
    pub refs: u32,
    /// Some page may be shared copy-on-write ([`rec::COW`]): the fault
    /// path's short cut for upgrades is off for this area.
    pub cow: bool,
    /// `MAP_SHARED` memory (or a SysV segment): a `fork` child maps this
    /// same area instead of a copy-on-write copy.
    pub shared: bool,
}

impl AreaDesc {
    /// The section containing page `index` of an IMAGE area.
    pub fn section(&self, index: u64) -> Option<Section> {
        match &self.kind {
            AreaKind::Image { sections, .. } => sections
                .iter()
                .copied()
                .find(|s| s.contains_page(index * PAGE_SIZE)),
            _ => None,
        }
    }

    /// Whether page `index` may be written and must not execute.
    pub fn page_rights(&self, index: u64) -> (bool, bool) {
        let area_write = self.flags.contains(MemFlags::WRITE);
        match &self.kind {
            AreaKind::Map { .. } => (area_write, true),
            AreaKind::Image { .. } => match self.section(index) {
                Some(s) => (area_write && s.flags.contains(MemFlags::WRITE), !s.execute),
                None => (false, true),
            },
            _ => (area_write, false),
        }
    }
}

/// Identifies a live area descriptor; the generation makes stale ids fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DescId {
    index: u32,
    generation: u32,
}

impl DescId {
    #[cfg(test)]
    pub(crate) fn test(index: u32) -> Self {
        DescId {
            index,
            generation: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    /// Boxed: the table keeps its high-water number of slots (generations
    /// must outlive their descriptors), so a slot that is free costs a
    /// pointer, not a whole descriptor.
    desc: Option<Box<AreaDesc>>,
}

/// The descriptor arena: an explicit reference-counted table (the VMM lock
/// protects it, so counts need not be atomic).
#[derive(Debug, Default)]
pub struct Descs {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Descs {
    pub fn insert(&mut self, desc: AreaDesc) -> DescId {
        self.live += 1;
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            (self.slots.len() - 1) as u32
        });
        let slot = &mut self.slots[index as usize];
        slot.desc = Some(Box::new(desc));
        DescId {
            index,
            generation: slot.generation,
        }
    }

    pub fn get(&self, id: DescId) -> Option<&AreaDesc> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation).then_some(slot.desc.as_deref()?)
    }

    pub fn get_mut(&mut self, id: DescId) -> Option<&mut AreaDesc> {
        let slot = self.slots.get_mut(id.index as usize)?;
        (slot.generation == id.generation).then_some(slot.desc.as_deref_mut()?)
    }

    pub fn remove(&mut self, id: DescId) -> Option<AreaDesc> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let desc = slot.desc.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.live -= 1;
        Some(*desc)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (DescId, &AreaDesc)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            Some((
                DescId {
                    index: i as u32,
                    generation: s.generation,
                },
                s.desc.as_deref()?,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_sparse() {
        let mut r = PageRecords::default();
        let million = 1 << 20;
        assert_eq!(r.get(123_456), 0);
        r.set(999_999, million, 0x5000 | rec::FRAME);
        assert_eq!(r.more.as_ref().map(|m| m.keys.len()), Some(1));
        assert!(r.first.get().is_none());
        assert_eq!(r.get(999_999), 0x5000 | rec::FRAME);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            [(999_999, 0x5000 | rec::FRAME)]
        );
        r.set(5, million, 0);
        assert!(r.first.get().is_none());
        r.set(5, million, 0x7000 | rec::FRAME);
        assert_eq!(r.iter().next(), Some((5, 0x7000 | rec::FRAME)));
        assert_eq!(r.frames(), 2);
    }

    /// `grow` widens only the chunk of the old last page; every record
    /// stays, and pages past the old end can be recorded.
    #[test]
    fn records_grow_in_place() {
        for (old, new) in [
            (1u64, 2u64),
            (1, 200),
            (10, 11),
            (64, 65),
            (70, 100),
            (130, 300),
        ] {
            let mut r = PageRecords::default();
            for i in [0, old / 2, old - 1] {
                r.set(i, old, (i << 12) | rec::FRAME);
            }
            let before: Vec<_> = r.iter().collect();
            r.grow(old, new);
            assert_eq!(r.iter().collect::<Vec<_>>(), before, "{old} -> {new}");
            for i in old..new {
                r.set(i, new, (i << 12) | rec::FRAME);
                assert_eq!(r.get(i), (i << 12) | rec::FRAME, "{old} -> {new}: page {i}");
            }
            assert_eq!(r.frames() as u64, before.len() as u64 + new - old);
        }
    }

    #[test]
    fn records_across_chunks_keep_page_order() {
        let mut r = PageRecords::default();
        let pages = 1000;
        for &i in &[700u64, 5, 130, 701, 64, 999] {
            r.set(i, pages, (i << 12) | rec::FRAME);
        }
        // Chunks were created out of order; the remembered one changes.
        assert_eq!(r.slot_mut(130).copied(), Some((130 << 12) | rec::FRAME));
        assert_eq!(r.slot_mut(131).copied(), Some(0));
        assert_eq!(r.slot_mut(300), None, "no chunk for page 300 yet");
        assert_eq!(r.run_mut(300, 4), None);
        assert_eq!(r.run_mut(60, 8), None, "two chunks");
        let run = r.run_mut(128, 16).expect("chunk of 130");
        assert_eq!(run[2], (130 << 12) | rec::FRAME);
        run[3] = 0x8000 | rec::FRAME;
        assert_eq!(r.get(131), 0x8000 | rec::FRAME);
        r.set(131, pages, 0);
        *r.slot_mut(702).expect("chunk of 700") = 0x9000 | rec::FRAME;
        assert_eq!(r.get(702), 0x9000 | rec::FRAME);
        assert_eq!(r.get(999), (999 << 12) | rec::FRAME);
        let got: Vec<u64> = r.iter().map(|(i, _)| i).collect();
        assert_eq!(got, [5, 64, 130, 700, 701, 702, 999]);
        let mut each = Vec::new();
        r.for_each(|i, rec| each.push((i, rec)));
        assert_eq!(each, r.iter().collect::<Vec<_>>());
        // The last chunk of an area is short: no slot past the end.
        assert_eq!(r.slot_mut(1000), None);
    }

    #[test]
    fn one_page_area_record_is_inline() {
        let mut r = PageRecords::default();
        assert!(r.is_untouched());
        assert_eq!(r.slot_mut(0), None);
        r.set(0, 1, 0x3000 | rec::FRAME);
        assert!(matches!(r.first, First::One(_)));
        assert_eq!(r.get(0), 0x3000 | rec::FRAME);
        assert_eq!(r.slot_mut(1), None);
        *r.slot_mut(0).unwrap() = 0x4000 | rec::FRAME | rec::OWNED;
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            [(0, 0x4000 | rec::FRAME | rec::OWNED)]
        );
        assert!(!r.is_untouched());
    }

    #[test]
    fn arena_generations() {
        let mut d = Descs::default();
        let desc = || AreaDesc {
            pages: 1,
            flags: MemFlags::READ,
            kind: AreaKind::Normal,
            records: PageRecords::default(),
            refs: 1,
            cow: false,
            shared: false,
        };
        let a = d.insert(desc());
        d.remove(a).unwrap();
        let b = d.insert(desc());
        assert!(d.get(a).is_none());
        assert!(d.get(b).is_some());
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn file_reads() {
        let f = MemFile::new(alloc::vec![1, 2, 3]);
        let mut b = [0u8; 8];
        assert_eq!(f.read_at(1, &mut b), Ok(2));
        assert_eq!(f.read_at(10, &mut b), Ok(0));
    }

    #[test]
    fn sections_validated() {
        let s = |offset, size| Section {
            offset,
            size,
            file_offset: 0,
            file_size: 0,
            flags: MemFlags::READ,
            execute: false,
        };
        assert!(validate_sections(&[s(0, 4096), s(4096, 10)], 2).is_ok());
        assert_eq!(
            validate_sections(&[s(0, 4097), s(4096, 10)], 3),
            Err(VmError::InvalidArea)
        );
        assert_eq!(validate_sections(&[s(100, 1)], 3), Err(VmError::Unaligned));
        assert_eq!(
            validate_sections(&[s(0, 3 * 4096)], 2),
            Err(VmError::InvalidArea)
        );
    }
}
