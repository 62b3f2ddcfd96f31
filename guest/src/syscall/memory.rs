//! `brk`, `mmap`, `munmap`, `mprotect`, `madvise` on Möbius areas.
//! Anonymous private memory is a NORMAL area with `VM_MEM_ZERO`; a private
//! file mapping is a FILE area; `PROT_NONE` is a reservation (nothing is
//! placed there, and any access faults). Partial `munmap`/`mprotect` split
//! the areas they cut ([`crate::mm::vmm::Vmm::split`]). `MAP_SHARED`
//! anonymous memory is marked shared, so a `fork` child maps the same
//! pages. `mremap` grows in place or moves an area with its frames;
//! `msync` and the `mlock` family check their arguments and do nothing
//! else (nothing is written back: files are read-only; nothing is ever
//! swapped out).
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Args, EACCES, EFAULT, EINVAL, ENODEV, ENOMEM};
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
    // Nodes and page records live in the kernel heap.
    if crate::heap::pressure() >= crate::heap::Pressure::Refuse {
        return Err(-ENOMEM);
    }
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
    if let Some((backing, writable)) = &file {
        if flags & MAP_SHARED != 0 && prot & PROT_WRITE != 0 {
            // A shared writable mapping writes into the file's own pages
            // (/tmp); a file system without them (the read-only initramfs
            // and disk) refuses it.
            if !*writable {
                return -EACCES;
            }
            if !backing.shares_pages() {
                return -ENODEV;
            }
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
    // Shared anonymous memory, and shared mappings of files whose pages can
    // be mapped themselves, stay one area across fork (no copy-on-write).
    let shared = flags & MAP_SHARED != 0
        && area_flags(prot).is_some()
        && file.as_ref().is_none_or(|f| f.shares_pages());
    match result {
        Ok(at) if shared => match vm.mark_shared(space, at) {
            Ok(()) => at as i64,
            Err(e) => errno(e),
        },
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
    let r = unmap_range(space, start, end);
    // A removed SysV segment goes with its last attachment.
    super::shm::reap();
    r
}

/// Free everything in `[start, end)`, splitting areas it cuts.
pub(super) fn unmap_range(space: SpaceId, start: u64, end: u64) -> i64 {
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

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

/// `mremap(addr, old_len, new_len, flags, new_addr)`: shrink (the tail is
/// unmapped), grow in place when the pages after the mapping are free,
/// else move it with `MREMAP_MAYMOVE` (to `new_addr` with `MREMAP_FIXED`).
/// The old range must lie inside one mapping (`EFAULT`). Refused with
/// `EINVAL`: `MREMAP_DONTUNMAP`, `old_len` 0 (a second mapping of shared
/// memory). Growing memory another process shares fails with `ENOMEM`.
pub fn mremap(a: Args) -> i64 {
    let [addr, old_len, new_len, flags, new_addr, _] = a.a;
    let Some(space) = space() else { return -EINVAL };
    let known = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
    let moves = flags & MREMAP_MAYMOVE != 0;
    if flags & !known != 0 || !addr.is_multiple_of(PAGE_SIZE) {
        return -EINVAL;
    }
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 && !moves || flags & MREMAP_DONTUNMAP != 0 {
        return -EINVAL;
    }
    let (Some(old), Some(new)) = (page_align_up(old_len), page_align_up(new_len)) else {
        return -EINVAL;
    };
    if old == 0 || new == 0 {
        return -EINVAL;
    }
    let Some(old_end) = addr.checked_add(old).filter(|e| *e <= USER_END) else {
        return -EFAULT;
    };
    if !within_one_mapping(space, addr, old_end) {
        return -EFAULT;
    }
    if flags & MREMAP_FIXED != 0 {
        return remap_fixed(space, addr, old, new, new_addr);
    }
    if new <= old {
        return shrink(space, addr, old, new);
    }
    if let Err(e) = isolate(space, addr, old_end) {
        return e;
    }
    let pages = new / PAGE_SIZE;
    let vmm = kvmm::vmm();
    let mut vm = vmm.lock();
    if vm.remap(space, addr, addr, pages).is_ok() {
        return addr as i64;
    }
    if !moves {
        return -ENOMEM;
    }
    let Some(to) = vm.free_range(space, pages) else {
        return -ENOMEM;
    };
    match vm.remap(space, addr, to, pages) {
        Ok(()) => to as i64,
        Err(_) => -ENOMEM,
    }
}

/// Whether `[start, end)` lies inside one area (`mremap`'s old range).
fn within_one_mapping(space: SpaceId, start: u64, end: u64) -> bool {
    let mut vm = kvmm::vmm().lock();
    match vm.lookup(space, start) {
        Some(n) => {
            matches!(n.kind, NodeKind::Mapped { .. })
                && n.base.saturating_add(n.pages.saturating_mul(PAGE_SIZE)) >= end
        }
        None => false,
    }
}

/// Cut the area around `[start, end)` so that the range is a node of its own.
fn isolate(space: SpaceId, start: u64, end: u64) -> Result<(), i64> {
    if splits(space, start, end) {
        room_for_mapping(space)?;
    }
    let mut vm = kvmm::vmm().lock();
    for cut in [start, end] {
        if cut < USER_END {
            vm.split(space, cut).map_err(errno)?;
        }
    }
    Ok(())
}

/// `mremap` to a smaller size: the tail goes.
fn shrink(space: SpaceId, addr: u64, old: u64, new: u64) -> i64 {
    if new < old {
        let r = unmap_range(space, addr + new, addr + old);
        if r != 0 {
            return r;
        }
    }
    addr as i64
}

/// `mremap` with `MREMAP_FIXED`: whatever is at `[to, to + new)` goes, then
/// the mapping (cut to `new` bytes when it shrinks) moves there.
fn remap_fixed(space: SpaceId, addr: u64, old: u64, new: u64, to: u64) -> i64 {
    let Some((to, to_end)) = user_range(to, new) else {
        return -EINVAL;
    };
    if to < addr + old && addr < to_end {
        return -EINVAL;
    }
    let r = unmap_range(space, to, to_end);
    if r != 0 {
        return r;
    }
    let kept = old.min(new);
    if shrink(space, addr, old, kept) < 0 {
        return -ENOMEM;
    }
    if let Err(e) = isolate(space, addr, addr + kept) {
        return e;
    }
    match kvmm::vmm().lock().remap(space, addr, to, new / PAGE_SIZE) {
        Ok(()) => to as i64,
        Err(_) => -ENOMEM,
    }
}

/// Whether every page of `[start, end)` is mapped or reserved.
fn all_mapped(space: SpaceId, start: u64, end: u64) -> bool {
    let mut vm = kvmm::vmm().lock();
    let mut at = start;
    while at < end {
        match vm.lookup(space, at) {
            Some(info) if info.kind != NodeKind::Empty => at = info.base + info.pages * PAGE_SIZE,
            _ => return false,
        }
    }
    true
}

/// `msync(addr, len, flags)`: checked; nothing to write back (anonymous
/// and private memory has no backing store, and files are read-only).
pub fn msync(a: Args) -> i64 {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    let [addr, len, flags, ..] = a.a;
    let Some(space) = space() else { return -EINVAL };
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
        || !addr.is_multiple_of(PAGE_SIZE)
    {
        return -EINVAL;
    }
    locked_range(space, addr, len)
}

/// The page range `[addr, addr + len)` rounded out: 0 when every page is
/// mapped (or `len` is 0), `ENOMEM` when one is not or the range wraps.
fn locked_range(space: SpaceId, addr: u64, len: u64) -> i64 {
    let start = addr & !(PAGE_SIZE - 1);
    let Some(end) = addr.checked_add(len).and_then(page_align_up) else {
        return -ENOMEM;
    };
    if end == start || len == 0 {
        return 0;
    }
    if start < PROCESS_LOW_START || end > USER_END || !all_mapped(space, start, end) {
        return -ENOMEM;
    }
    0
}

/// `mlock(addr, len)` / `munlock`: accepted when the range is mapped
/// (pages are never swapped out here).
pub fn mlock(a: Args) -> i64 {
    let Some(space) = space() else { return -EINVAL };
    locked_range(space, a.a[0], a.a[1])
}

/// `mlock2(addr, len, flags)`: `MLOCK_ONFAULT` or nothing.
pub fn mlock2(a: Args) -> i64 {
    if a.a[2] & !1 != 0 {
        return -EINVAL;
    }
    mlock(a)
}

/// `mlockall(flags)`: `MCL_CURRENT` and/or `MCL_FUTURE` (and
/// `MCL_ONFAULT` with one of them); accepted.
pub fn mlockall(a: Args) -> i64 {
    const CURRENT_OR_FUTURE: u64 = 3;
    const ONFAULT: u64 = 4;
    let flags = a.a[0];
    if flags & !(CURRENT_OR_FUTURE | ONFAULT) != 0 || flags & CURRENT_OR_FUTURE == 0 {
        return -EINVAL;
    }
    0
}
