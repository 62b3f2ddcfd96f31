//! System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`. A
//! segment is a shared Möbius area mapped nowhere until attached
//! ([`crate::mm::vmm::Vmm::create_shared`]); the segment table holds its
//! handle, each attachment maps the same area ([`Vmm::map_shared`]), so a
//! `fork` child shares it and unrelated processes attach it by key or id.
//! `IPC_RMID` takes the key away; the area (and its frames) goes when the
//! last attachment does ([`reap`], after a detach, an unmap, an `execve`
//! or a process's end). Everyone is root here: permissions are kept and
//! reported, never refused.
//!
//! [`Vmm::map_shared`]: crate::mm::vmm::Vmm::map_shared
use alloc::collections::BTreeMap;

use spin::Mutex;

use super::{Args, EEXIST, EFAULT, EINVAL, ENOENT, ENOMEM, ENOSPC, ESRCH};
use crate::mm::kernel::vmm;
use crate::mm::paging::{page_align_up, PAGE_SIZE};
use crate::mm::uaccess;
use crate::mm::vmm::{MemFlags, NodeKind, ShareHandle, SpaceId, VmError};
use crate::proc::task;

/// Largest segment (`SHMMAX`), all segments' pages together (`SHMALL`),
/// and most segments (`SHMMNI`): each costs kernel heap, so no program
/// may make unboundedly many.
const SHMMAX: u64 = 1 << 30;
const SHMALL: u64 = (1 << 30) / PAGE_SIZE;
const SHMMNI: usize = 1024;

const IPC_PRIVATE: u64 = 0;
const IPC_CREAT: u64 = 0o1000;
const IPC_EXCL: u64 = 0o2000;
const IPC_RMID: u64 = 0;
const IPC_SET: u64 = 1;
const IPC_STAT: u64 = 2;
const IPC_64: u64 = 0x100;
const SHM_LOCK: u64 = 11;
const SHM_UNLOCK: u64 = 12;
const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
/// `mode` bit of a removed segment still attached.
const SHM_DEST: u32 = 0o1000;
/// `sizeof(struct shmid64_ds)`.
const SHMID_DS_LEN: usize = 112;

struct Segment {
    key: i32,
    size: u64,
    pages: u64,
    handle: ShareHandle,
    mode: u32,
    removed: bool,
    cpid: u32,
    lpid: u32,
    atime: u64,
    dtime: u64,
    ctime: u64,
}

struct Table {
    segments: BTreeMap<i32, Segment>,
    next: i32,
    pages: u64,
}

static SHM: Mutex<Table> = Mutex::new(Table {
    segments: BTreeMap::new(),
    next: 0,
    pages: 0,
});

fn now_secs() -> u64 {
    crate::arch::x86_64::tsc::ns_since_boot() / 1_000_000_000
}

fn me() -> Result<(u32, SpaceId), i64> {
    task::current()
        .map(|(_, pid, space)| (pid, space))
        .ok_or(-ESRCH)
}

/// `shmget(key, size, flags)`.
pub fn shmget(a: Args) -> i64 {
    let [key, size, flags, ..] = a.a;
    let Ok((pid, _)) = me() else { return -ESRCH };
    let key = key as i32;
    let mut shm = SHM.lock();
    if key as u64 != IPC_PRIVATE {
        let found = shm
            .segments
            .iter()
            .find(|(_, s)| s.key == key && !s.removed);
        if let Some((id, s)) = found {
            if flags & (IPC_CREAT | IPC_EXCL) == IPC_CREAT | IPC_EXCL {
                return -EEXIST;
            }
            if size > s.size {
                return -EINVAL;
            }
            return i64::from(*id);
        }
        if flags & IPC_CREAT == 0 {
            return -ENOENT;
        }
    }
    create(&mut shm, key, size, (flags & 0o777) as u32, pid)
}

/// A new segment of `size` bytes.
fn create(shm: &mut Table, key: i32, size: u64, mode: u32, pid: u32) -> i64 {
    if size == 0 || size > SHMMAX {
        return -EINVAL;
    }
    let Some(pages) = page_align_up(size).map(|b| b / PAGE_SIZE) else {
        return -EINVAL;
    };
    if shm.segments.len() >= SHMMNI || shm.pages.saturating_add(pages) > SHMALL {
        return -ENOSPC;
    }
    let flags = MemFlags::USER | MemFlags::READ | MemFlags::WRITE | MemFlags::ZERO;
    let Ok(handle) = vmm().lock().create_shared(pages, flags) else {
        return -ENOMEM;
    };
    let mut id = shm.next;
    while shm.segments.contains_key(&id) {
        id = id.wrapping_add(1).max(0);
    }
    shm.next = id.wrapping_add(1).max(0);
    shm.pages += pages;
    let segment = Segment {
        key,
        size,
        pages,
        handle,
        mode,
        removed: false,
        cpid: pid,
        lpid: 0,
        atime: 0,
        dtime: 0,
        ctime: now_secs(),
    };
    shm.segments.insert(id, segment);
    i64::from(id)
}

/// `shmat(id, addr, flags)`: at `addr` (rounded down with `SHM_RND`;
/// replacing what is there with `SHM_REMAP`) or where the kernel chooses;
/// read-only with `SHM_RDONLY`.
pub fn shmat(a: Args) -> i64 {
    let [id, addr, flags, ..] = a.a;
    let Ok((pid, space)) = me() else {
        return -ESRCH;
    };
    let addr = if flags & SHM_RND != 0 {
        addr & !(PAGE_SIZE - 1)
    } else {
        addr
    };
    if !addr.is_multiple_of(PAGE_SIZE) || (addr == 0 && flags & SHM_REMAP != 0) {
        return -EINVAL;
    }
    if let Err(e) = super::memory::room_for_mapping(space) {
        return e;
    }
    let mut shm = SHM.lock();
    let Some(seg) = shm.segments.get_mut(&(id as i32)) else {
        return -EINVAL;
    };
    if addr != 0 {
        let Some(len) = seg.pages.checked_mul(PAGE_SIZE) else {
            return -EINVAL;
        };
        if !uaccess::in_user_range(addr, len as usize) {
            return -EINVAL;
        }
        if flags & SHM_REMAP != 0 && super::memory::unmap_range(space, addr, addr + len) != 0 {
            return -EINVAL;
        }
    }
    let mut mem = MemFlags::USER | MemFlags::READ | MemFlags::ZERO;
    if flags & SHM_RDONLY == 0 {
        mem |= MemFlags::WRITE;
    }
    let mapped = vmm().lock().map_shared(space, &seg.handle, addr, mem);
    match mapped {
        Ok(at) => {
            seg.lpid = pid;
            seg.atime = now_secs();
            at as i64
        }
        Err(VmError::AddressSpaceExhausted | VmError::OutOfFrames) => -ENOMEM,
        Err(_) => -EINVAL,
    }
}

/// `shmdt(addr)`: `addr` must be where a segment was attached.
pub fn shmdt(a: Args) -> i64 {
    let addr = a.a[0];
    let Ok((pid, space)) = me() else {
        return -ESRCH;
    };
    if !addr.is_multiple_of(PAGE_SIZE) {
        return -EINVAL;
    }
    let mut shm = SHM.lock();
    let desc = {
        let mut vm = vmm().lock();
        match vm.lookup(space, addr) {
            Some(n) if n.base == addr => match n.kind {
                NodeKind::Mapped { desc, .. } => Some(desc),
                _ => None,
            },
            _ => None,
        }
    };
    let Some(seg) = shm
        .segments
        .values_mut()
        .find(|s| Some(s.handle.desc()) == desc)
    else {
        return -EINVAL;
    };
    if vmm().lock().free(space, addr).is_err() {
        return -EINVAL;
    }
    seg.lpid = pid;
    seg.dtime = now_secs();
    reap_locked(&mut shm);
    0
}

/// `shmctl(id, cmd, buf)`: `IPC_RMID`, `IPC_STAT`, `IPC_SET` (the mode),
/// `SHM_LOCK`/`SHM_UNLOCK` (accepted: nothing is swapped).
pub fn shmctl(a: Args) -> i64 {
    let [id, cmd, buf, ..] = a.a;
    let Ok((_, space)) = me() else { return -ESRCH };
    let mut shm = SHM.lock();
    let Some(seg) = shm.segments.get_mut(&(id as i32)) else {
        return -EINVAL;
    };
    match cmd & !IPC_64 {
        IPC_RMID => {
            seg.removed = true;
            seg.key = IPC_PRIVATE as i32;
            reap_locked(&mut shm);
            0
        }
        IPC_STAT => {
            let bytes = stat_bytes(seg);
            match uaccess::copy_to_user(vmm(), space, buf, &bytes) {
                Ok(()) => 0,
                Err(_) => -EFAULT,
            }
        }
        IPC_SET => {
            let mut b = [0u8; 24];
            if uaccess::copy_from_user(vmm(), space, buf, &mut b).is_err() {
                return -EFAULT;
            }
            let mode = u32::from_le_bytes(b[20..24].try_into().unwrap_or_default());
            seg.mode = mode & 0o777;
            seg.ctime = now_secs();
            0
        }
        SHM_LOCK | SHM_UNLOCK => 0,
        _ => -EINVAL,
    }
}

/// A segment as `struct shmid64_ds`.
fn stat_bytes(seg: &Segment) -> [u8; SHMID_DS_LEN] {
    let mut b = [0u8; SHMID_DS_LEN];
    let attached = u64::from(vmm().lock().handle_refs(&seg.handle).saturating_sub(1));
    let mode = seg.mode | if seg.removed { SHM_DEST } else { 0 };
    b[..4].copy_from_slice(&seg.key.to_le_bytes());
    b[20..24].copy_from_slice(&mode.to_le_bytes());
    for (at, v) in [
        (48, seg.size),
        (56, seg.atime),
        (64, seg.dtime),
        (72, seg.ctime),
        (88, attached),
    ] {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    b[80..84].copy_from_slice(&seg.cpid.to_le_bytes());
    b[84..88].copy_from_slice(&seg.lpid.to_le_bytes());
    b
}

/// Free the removed segments nothing maps any more (their handle holds
/// the last reference): called after anything that may drop an
/// attachment (`shmdt`, `munmap`, `execve`, a process's end).
pub fn reap() {
    reap_locked(&mut SHM.lock());
}

fn reap_locked(shm: &mut Table) {
    let gone: alloc::vec::Vec<i32> = {
        let vm = vmm().lock();
        shm.segments
            .iter()
            .filter(|(_, s)| s.removed && vm.handle_refs(&s.handle) <= 1)
            .map(|(id, _)| *id)
            .collect()
    };
    for id in gone {
        if let Some(seg) = shm.segments.remove(&id) {
            shm.pages = shm.pages.saturating_sub(seg.pages);
            let _ = vmm().lock().close_handle(seg.handle);
        }
    }
}
