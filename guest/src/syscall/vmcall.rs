//! Möbius calls for programs (`mobius_shared::vmcall`: numbers, arguments
//! and errors are documented there): `VmmAlloc`, `VmmFree`,
//! `VmmReserveArea`, `VmmShare`, open-shared, `VmmMapSharedArea`,
//! `VmmMapFile`, `HndClose`, unexport, and the kernel's counters. Every
//! argument is checked here before the VMM sees it; a program can only
//! make user areas in its own half, and names only through checked copies.
use alloc::string::String;

use super::memory::{errno, file_backing};
use super::{Args, EBADF, EFAULT, EINVAL, EMFILE, ENOENT, EPERM, ESRCH};
use crate::mm::kernel::vmm;
use crate::mm::paging::PAGE_SIZE;
use crate::mm::uaccess;
use crate::mm::vmm::{MemFlags, ShareHandle, SpaceId, VmError};
use crate::proc::process;
use crate::proc::task;
use mobius_shared::vmcall::*;

/// Flags a program may pass (privilege bits, READ, WRITE, ZERO, cache
/// bits, LITERAL).
const ALLOWED: u64 = 0xFF;

/// Handle a Möbius call `nr` (in `BASE..END`).
pub fn dispatch(nr: u64, a: Args) -> i64 {
    let Some((_, _, space)) = task::current() else {
        return -ESRCH;
    };
    let creates = matches!(nr, VMM_ALLOC | VMM_RESERVE | VMM_MAP_SHARED | VMM_MAP_FILE);
    if creates {
        if let Err(e) = super::memory::room_for_mapping(space) {
            return e;
        }
    }
    let r = match nr {
        VMM_ALLOC => return alloc(space, a),
        VMM_FREE => vmm().lock().free_from_user(space, a.a[0]).map(|_| 0),
        VMM_RESERVE => reserve(space, a),
        VMM_SHARE => return share(space, a),
        VMM_OPEN_SHARED => return open_shared(space, a),
        VMM_MAP_SHARED => return map_shared(space, a),
        VMM_MAP_FILE => return map_file(space, a),
        HANDLE_CLOSE => return close(a.a[0]),
        VMM_UNEXPORT => return unexport(space, a),
        KERNEL_COUNTS => return counts(space, a),
        _ => return -super::ENOSYS,
    };
    match r {
        Ok(v) => v as i64,
        Err(e) => vm_errno(e),
    }
}

fn vm_errno(e: VmError) -> i64 {
    match e {
        VmError::UnknownName => -ENOENT,
        VmError::NameExists => -super::EEXIST,
        VmError::PermissionDenied => -super::EACCES,
        VmError::BadHandle => -EBADF,
        e => errno(e),
    }
}

/// Checked area flags: user privilege, no unknown or node-only bits.
fn user_flags(flags: u64) -> Result<MemFlags, i64> {
    if flags & !ALLOWED != 0 {
        return Err(-EINVAL);
    }
    let f = MemFlags::from_bits(flags as u32).ok_or(-EINVAL)?;
    if f & MemFlags::PL_MASK != MemFlags::USER {
        return Err(-EPERM);
    }
    Ok(f)
}

/// A checked `(pages, base)`: pages > 0, base 0 (choose) or page-aligned
/// with the whole range in the user half.
fn user_range(pages: u64, base: u64, literal: bool) -> Result<(), i64> {
    let len = pages
        .checked_mul(PAGE_SIZE)
        .filter(|l| *l > 0)
        .ok_or(-EINVAL)?;
    if base == 0 && !literal {
        return Ok(());
    }
    if !base.is_multiple_of(PAGE_SIZE) || !uaccess::in_user_range(base, len as usize) {
        return Err(-EINVAL);
    }
    Ok(())
}

fn alloc(space: SpaceId, a: Args) -> i64 {
    let [pages, base, flags, ..] = a.a;
    let f = match user_flags(flags) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Err(e) = user_range(pages, base, flags & VM_MEM_LITERAL != 0) {
        return e;
    }
    let r = vmm().lock().alloc(space, pages, base, f);
    r.map_or_else(vm_errno, |at| at as i64)
}

fn reserve(space: SpaceId, a: Args) -> Result<u64, VmError> {
    let [pages, base, ..] = a.a;
    user_range(pages, base, false).map_err(|_| VmError::OutOfRange)?;
    let base = if base == 0 {
        // Automatic placement of a reservation is in the user half.
        let probe = vmm().lock().alloc(space, pages, 0, MemFlags::USER)?;
        vmm().lock().free(space, probe)?;
        probe
    } else {
        base
    };
    vmm().lock().reserve(space, pages, base)
}

/// A share name at user `(ptr, len)`.
fn name_arg(space: SpaceId, ptr: u64, len: u64) -> Result<String, i64> {
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (1..=NAME_MAX).contains(l))
        .ok_or(-EINVAL)?;
    let mut b = alloc::vec![0u8; len];
    uaccess::copy_from_user(vmm(), space, ptr, &mut b).map_err(|_| -EFAULT)?;
    String::from_utf8(b).map_err(|_| -EINVAL)
}

/// Put `h` in the calling process's handle table.
fn add_handle(h: ShareHandle) -> i64 {
    let slot = process::with_current(|p| {
        if let Some(i) = p.handles.iter().position(Option::is_none) {
            p.handles[i] = Some(h);
            return Ok(i);
        }
        if p.handles.len() >= MAX_HANDLES {
            return Err(h);
        }
        p.handles.push(Some(h));
        Ok(p.handles.len() - 1)
    });
    match slot {
        Some(Ok(i)) => i as i64,
        Some(Err(h)) => {
            let _ = vmm().lock().close_handle(h);
            -EMFILE
        }
        None => -ESRCH,
    }
}

fn share(space: SpaceId, a: Args) -> i64 {
    let [addr, ptr, len, ..] = a.a;
    let name = match name_arg(space, ptr, len) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if !uaccess::in_user_range(addr, 1) || addr == 0 {
        return -EINVAL;
    }
    let shared = vmm().lock().share(space, addr, &name);
    match shared {
        Ok(h) => add_handle(h),
        Err(e) => vm_errno(e),
    }
}

fn open_shared(space: SpaceId, a: Args) -> i64 {
    let name = match name_arg(space, a.a[0], a.a[1]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let opened = vmm().lock().open_shared(&name);
    match opened {
        Ok(h) => add_handle(h),
        Err(e) => vm_errno(e),
    }
}

fn map_shared(space: SpaceId, a: Args) -> i64 {
    let [handle, base, flags, ..] = a.a;
    let f = match user_flags(flags) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let literal = flags & VM_MEM_LITERAL != 0;
    if base != 0 || literal {
        // The area's size is checked by the VMM; the base must be ours.
        if let Err(e) = user_range(1, base, literal) {
            return e;
        }
    }
    // Borrow the handle out of the table (the table lock is never held
    // while the VMM's is taken), map, and put it back.
    let Some(h) = take_handle(handle) else {
        return -EBADF;
    };
    let r = vmm().lock().map_shared(space, &h, base, f);
    process::with_current(|p| {
        if let Some(slot) = usize::try_from(handle)
            .ok()
            .and_then(|i| p.handles.get_mut(i))
        {
            *slot = Some(h);
        }
    });
    r.map_or_else(vm_errno, |at| at as i64)
}

fn map_file(space: SpaceId, a: Args) -> i64 {
    let [fd, offset, pages, base, flags, _] = a.a;
    let f = match user_flags(flags) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if !offset.is_multiple_of(PAGE_SIZE) {
        return -EINVAL;
    }
    if let Err(e) = user_range(pages, base, flags & VM_MEM_LITERAL != 0) {
        return e;
    }
    let file = match file_backing(fd) {
        Ok((f, _)) => f,
        Err(e) => return if e == -super::ENODEV { -EBADF } else { e },
    };
    let mapped = vmm().lock().map_file(space, file, offset, base, pages, f);
    match mapped {
        Ok(at) => at as i64,
        Err(e) => vm_errno(e),
    }
}

/// Take handle number `handle` out of the calling process's table.
fn take_handle(handle: u64) -> Option<ShareHandle> {
    process::with_current(|p| {
        usize::try_from(handle)
            .ok()
            .and_then(|i| p.handles.get_mut(i))
            .and_then(Option::take)
    })
    .flatten()
}

fn close(handle: u64) -> i64 {
    match take_handle(handle) {
        Some(h) => vmm().lock().close_handle(h).map_or_else(vm_errno, |_| 0),
        None => -EBADF,
    }
}

fn unexport(space: SpaceId, a: Args) -> i64 {
    let name = match name_arg(space, a.a[0], a.a[1]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let removed = vmm().lock().unexport(&name);
    removed.map_or_else(vm_errno, |_| 0)
}

fn counts(space: SpaceId, a: Args) -> i64 {
    let [buf, len, ..] = a.a;
    let (frames_total, frames_free, exports) = {
        let v = vmm().lock();
        let f = v.frames().stats();
        (f.total, f.free, v.export_count() as u64)
    };
    let (heap_used, heap_free) = crate::heap::usage();
    let (processes, threads) = {
        let t = task::table();
        (t.processes.len() as u64, t.threads.len() as u64)
    };
    let c = KernelCounts {
        frames_total,
        frames_free,
        heap_used: heap_used as u64,
        heap_size: (heap_used + heap_free) as u64,
        processes,
        threads,
        exports,
    };
    let bytes = c.to_bytes();
    let n = (len as usize).min(bytes.len());
    match uaccess::copy_to_user(vmm(), space, buf, &bytes[..n]) {
        Ok(()) => n as i64,
        Err(_) => -EFAULT,
    }
}
