//! `brk`, `mmap`, `munmap`, `mprotect`, `madvise` on Möbius areas.
//! Anonymous private memory is a NORMAL area with `VM_MEM_ZERO`; a private
//! file mapping is a FILE area; `PROT_NONE` is a reservation (nothing is
//! placed there, and any access faults). Partial `munmap`/`mprotect` split
//! the areas they cut ([`crate::mm::vmm::Vmm::split`]).
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Args, EACCES, EINVAL, ENODEV, ENOMEM};
use crate::fs::fd::OpenFile;
use crate::kvmm;
use crate::mm::paging::{page_align_up, PAGE_SIZE};
use crate::mm::vmm::{
    FileBacking, MemFlags, NodeKind, SpaceId, VmError, PROCESS_LOW_START, USER_END,
};

const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

fn space() -> Option<SpaceId> {
    crate::proc::task::current_space()
}

pub(super) fn errno(e: VmError) -> i64 {
    match e {
        VmError::OutOfFrames | VmError::AddressSpaceExhausted => -ENOMEM,
        VmError::Overlap => -super::EEXIST,
        _ => -EINVAL,
    }
}

/// Area flags for `prot` (`None` for `PROT_NONE`).
fn area_flags(prot: u64) -> Option<MemFlags> {
    if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
        return None;
    }
    let mut f = MemFlags::USER | MemFlags::READ | MemFlags::ZERO;
    if prot & PROT_WRITE != 0 {
        f |= MemFlags::WRITE;
    }
    Some(f)
}

/// `[addr, addr + len)` page-rounded, inside the user half.
fn user_range(addr: u64, len: u64) -> Option<(u64, u64)> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return None;
    }
    let end = page_align_up(addr.checked_add(len)?)?;
    (addr >= PROCESS_LOW_START && end <= USER_END).then_some((addr, end))
}

/// Most nodes (mappings, reservations and the gaps between them) a
/// process's address space may hold (Linux's `vm.max_map_count` is 65530,
/// but Linux merges neighbouring mappings and this kernel does not): each
/// costs kernel heap, so one program must not take it all.
pub const MAX_USER_NODES: usize = 4096;

/// Whether changing `[start, end)` must split a node (one of its ends lies
/// inside one).
fn splits(space: SpaceId, start: u64, end: u64) -> bool {
    let mut vm = kvmm::vmm().lock();
    let inside = |n: Option<crate::mm::vmm::NodeInfo>, at: u64| {
        n.is_some_and(|n| n.base != at && n.base + n.pages * PAGE_SIZE != at)
    };
    inside(vm.lookup(space, start), start) || inside(vm.lookup(space, end - 1), end)
}

/// `ENOMEM` when `space` holds all the mappings a process may have.
pub(super) fn room_for_mapping(space: SpaceId) -> Result<(), i64> {
    if kvmm::vmm().lock().user_nodes(space) >= MAX_USER_NODES {
        Err(-ENOMEM)
    } else {
        Ok(())
    }
}

pub fn mmap(a: Args) -> i64 {
    let [addr, len, prot, flags, fd, offset] = a.a;
    let Some(space) = space() else { return -EINVAL };
    if let Err(e) = room_for_mapping(space) {
        return e;
    }
    if len == 0 || !offset.is_multiple_of(PAGE_SIZE) || flags & (MAP_SHARED | MAP_PRIVATE) == 0 {
        return -EINVAL;
    }
    let Some(pages) = page_align_up(len).map(|l| l / PAGE_SIZE) else {
        return -ENOMEM;
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if fixed && user_range(addr, len).is_none() {
        return -EINVAL;
    }
    if flags & MAP_FIXED != 0 {
        let r = unmap_range(space, addr, addr + pages * PAGE_SIZE);
        if r != 0 {
            return r;
        }
    }
    let file = if flags & MAP_ANONYMOUS == 0 {
        match file_backing(fd) {
            Ok(f) => Some(f),
            Err(e) => return e,
        }
    } else {
        None
    };
    if let Some((_, writable)) = &file {
        if flags & MAP_SHARED != 0 && prot & PROT_WRITE != 0 {
            // A shared writable mapping would have to write its pages back
            // to the file; no file system here does that yet (the
            // initramfs is read-only; /tmp files are mapped privately).
            return if *writable { -ENODEV } else { -EACCES };
        }
    }
    let file = file.map(|(f, _)| f);
    // A hint that fits is taken; otherwise the lowest free range.
    let wanted = if fixed || (addr != 0 && user_range(addr, len).is_some()) {
        addr
    } else {
        0
    };
    let vmm = kvmm::vmm();
    let mut vm = vmm.lock();
    let place = |vm: &mut crate::mm::vmm::Vmm<_>, at: u64| -> Result<u64, VmError> {
        match (area_flags(prot), &file) {
            (None, _) if at == 0 => vm.reserve(space, pages, 0),
            (None, _) => vm.reserve(space, pages, at),
            (Some(f), None) => vm.alloc(space, pages, at, f),
            (Some(f), Some(backing)) => vm.map_file(space, backing.clone(), offset, at, pages, f),
        }
    };
    let result = match place(&mut vm, wanted) {
        Err(_) if !fixed && wanted != 0 => place(&mut vm, 0),
        r => r,
    };
    match result {
        Ok(at) => at as i64,
        Err(e) => errno(e),
    }
}

/// The file open at `fd` as the backing of a FILE area, and whether the
/// descriptor was opened for writing.
pub(super) fn file_backing(fd: u64) -> Result<(Arc<dyn FileBacking>, bool), i64> {
    let file = super::fd::get(fd)?;
    let f = file.lock();
    match &*f {
        OpenFile::Node(n) if n.readable() => match n.node.backing() {
            Some(b) => Ok((b, n.writable())),
            None => Err(-ENODEV),
        },
        OpenFile::Node(_) => Err(-EACCES),
        _ => Err(-ENODEV),
    }
}

pub fn munmap(a: Args) -> i64 {
    let [addr, len, ..] = a.a;
    let Some(space) = space() else { return -EINVAL };
    let Some((start, end)) = user_range(addr, len) else {
        return -EINVAL;
    };
    if splits(space, start, end) {
        if let Err(e) = room_for_mapping(space) {
            return e;
        }
    }
    unmap_range(space, start, end)
}

/// Free everything in `[start, end)`, splitting areas it cuts.
fn unmap_range(space: SpaceId, start: u64, end: u64) -> i64 {
    let vmm = kvmm::vmm();
    let mut vm = vmm.lock();
    for cut in [start, end] {
        if cut < USER_END {
            if let Err(e) = vm.split(space, cut) {
                return errno(e);
            }
        }
    }
    for base in nodes_in(&mut vm, space, start, end) {
        if let Err(e) = vm.free(space, base) {
            return errno(e);
        }
    }
    0
}

/// Bases of the areas and reservations inside `[start, end)`.
fn nodes_in<M: crate::mm::paging::Mmu>(
    vm: &mut crate::mm::vmm::Vmm<M>,
    space: SpaceId,
    start: u64,
    end: u64,
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let Some(info) = vm.lookup(space, at) else {
            break;
        };
        if info.kind != NodeKind::Empty && info.base >= start {
            out.push(info.base);
        }
        at = info.base + info.pages * PAGE_SIZE;
    }
    out
}

pub fn mprotect(a: Args) -> i64 {
    let [addr, len, prot, ..] = a.a;
    let Some(space) = space() else { return -EINVAL };
    // Changing part of an area splits it: one more node.
    if let Err(e) = room_for_mapping(space) {
        return e;
    }
    let Some((start, end)) = user_range(addr, len) else {
        return -EINVAL;
    };
    let vmm = kvmm::vmm();
    let mut vm = vmm.lock();
    // Every page of the range must be mapped or reserved (Linux: ENOMEM).
    let mut at = start;
    while at < end {
        match vm.lookup(space, at) {
            Some(info) if info.kind != NodeKind::Empty => at = info.base + info.pages * PAGE_SIZE,
            _ => return -ENOMEM,
        }
    }
    for cut in [start, end] {
        if cut < USER_END {
            if let Err(e) = vm.split(space, cut) {
                return errno(e);
            }
        }
    }
    let flags = area_flags(prot).unwrap_or(MemFlags::READ | MemFlags::ZERO);
    for base in nodes_in(&mut vm, space, start, end) {
        if let Err(e) = vm.protect_node(space, base, flags) {
            return errno(e);
        }
    }
    0
}

pub fn madvise(a: Args) -> i64 {
    let [addr, len, ..] = a.a;
    if user_range(addr, len.max(1)).is_none() {
        return -EINVAL;
    }
    // Advice only: MADV_DONTNEED's zeroing is not done (Möbius keeps the
    // pages); every other advice changes nothing observable.
    0
}

pub fn brk(a: Args) -> i64 {
    let [want, ..] = a.a;
    let Some(space) = space() else { return -EINVAL };
    let Some((start, now, mapped)) =
        crate::proc::process::with_current(|p| (p.brk_start, p.brk, p.brk_mapped))
    else {
        return -EINVAL;
    };
    if want < start || want >= USER_END {
        return now as i64;
    }
    let Some(new_mapped) = page_align_up(want) else {
        return now as i64;
    };
    let vmm = kvmm::vmm();
    if new_mapped > mapped && room_for_mapping(space).is_err() {
        return now as i64;
    }
    if new_mapped > mapped {
        let flags = MemFlags::USER | MemFlags::READ | MemFlags::WRITE | MemFlags::ZERO;
        let pages = (new_mapped - mapped) / PAGE_SIZE;
        if vmm.lock().alloc(space, pages, mapped, flags).is_err() {
            return now as i64;
        }
    } else if new_mapped < mapped && unmap_range(space, new_mapped, mapped) != 0 {
        return now as i64;
    }
    crate::proc::process::with_current(|p| {
        p.brk = want;
        p.brk_mapped = new_mapped;
    });
    want as i64
}
