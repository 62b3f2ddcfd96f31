//! Kernel access to user memory (system-call arguments): checked copies
//! that resolve faults the way a user access would and answer `EFAULT`
//! instead of faulting in the kernel.
//!
//! Nothing here touches user memory through its virtual address: each page
//! is looked up in the space's page tables ([`Mmu::translate`]), must be a
//! user page (and writable, for a write), is faulted in through
//! [`fault::handle`] as a *user* access when it is not, and is then copied
//! through the MMU's view of physical memory. A bad pointer therefore can
//! neither crash the kernel nor reach kernel memory, whatever the address;
//! a fault the copy resolves is counted like the program's own.
use alloc::vec::Vec;

use super::fault;
use super::paging::{Mmu, PageAttrs, VirtAddr, PAGE_SIZE};
use super::vmm::{Access, SpaceId, VmmLock, PROCESS_LOW_START, USER_END};

/// A user pointer that cannot be used (Linux `EFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

/// Most times one page is faulted in before the copy gives up (a page
/// taken away between the fault and the copy cannot loop for ever).
const TRIES: usize = 3;

/// Whether `[addr, addr + len)` lies inside a process's user half.
pub fn in_user_range(addr: VirtAddr, len: usize) -> bool {
    let Some(end) = addr.checked_add(len as u64) else {
        return false;
    };
    len == 0 || (addr >= PROCESS_LOW_START && end <= USER_END)
}

/// The frame behind user page `page` of `space`, faulting it in if needed;
/// `write` also needs it writable.
fn user_frame<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    page: VirtAddr,
    write: bool,
) -> Result<u64, BadAddress> {
    for _ in 0..TRIES {
        let mapped = {
            let vm = vmm.lock();
            let root = vm.root(space).map_err(|_| BadAddress)?;
            vm.mmu().translate(root, page)
        };
        let present = match mapped {
            Some((frame, attrs)) if attrs.contains(PageAttrs::USER) => {
                if !write || attrs.contains(PageAttrs::WRITABLE) {
                    return Ok(frame);
                }
                true
            }
            // A kernel page in the user range: never for a user access.
            Some(_) => return Err(BadAddress),
            None => false,
        };
        let access = Access {
            write,
            user: true,
            instruction: false,
            present,
        };
        // Not a CPU trap: a fault record gets no instruction pointer.
        super::record::set_trap_rip(0);
        if !fault::handle(vmm, space, page, access).is_resolved() {
            return Err(BadAddress);
        }
    }
    Err(BadAddress)
}

/// `[addr, addr + len)` cut at page boundaries: each piece's page, its
/// offset in the page, and its range in the buffer. The caller has checked
/// that the range does not wrap.
fn page_pieces(
    addr: VirtAddr,
    len: usize,
) -> impl Iterator<Item = (VirtAddr, usize, core::ops::Range<usize>)> {
    let mut done = 0;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = addr + done as u64;
        let offset = (at % PAGE_SIZE) as usize;
        let n = (PAGE_SIZE as usize - offset).min(len - done);
        let piece = (at - offset as u64, offset, done..done + n);
        done += n;
        Some(piece)
    })
}

/// Copy `out.len()` bytes from user address `addr` of `space`.
pub fn copy_from_user<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    out: &mut [u8],
) -> Result<(), BadAddress> {
    if !in_user_range(addr, out.len()) {
        return Err(BadAddress);
    }
    for (page, offset, range) in page_pieces(addr, out.len()) {
        let frame = user_frame(vmm, space, page, false)?;
        vmm.lock().mmu().read_frame(frame, offset, &mut out[range]);
    }
    Ok(())
}

/// Copy `data` to user address `addr` of `space`.
pub fn copy_to_user<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    data: &[u8],
) -> Result<(), BadAddress> {
    if !in_user_range(addr, data.len()) {
        return Err(BadAddress);
    }
    for (page, offset, range) in page_pieces(addr, data.len()) {
        let frame = user_frame(vmm, space, page, true)?;
        vmm.lock()
            .mmu_mut()
            .write_frame(frame, offset, &data[range]);
    }
    Ok(())
}

/// Why a user string could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringError {
    /// A byte of it is not readable (`EFAULT`).
    Fault,
    /// No NUL within the limit (`ENAMETOOLONG` / `E2BIG`).
    TooLong,
}

/// Read a NUL-terminated string of at most `max` bytes (without the NUL)
/// from user address `addr`.
pub fn read_cstr<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    max: usize,
) -> Result<Vec<u8>, StringError> {
    let mut s = Vec::new();
    let mut at = addr;
    loop {
        let offset = (at % PAGE_SIZE) as usize;
        let mut chunk = [0u8; 256];
        let n = (PAGE_SIZE as usize - offset).min(chunk.len());
        copy_from_user(vmm, space, at, &mut chunk[..n]).map_err(|_| StringError::Fault)?;
        if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
            if s.len() + nul > max {
                return Err(StringError::TooLong);
            }
            s.extend_from_slice(&chunk[..nul]);
            return Ok(s);
        }
        if s.len() + n > max {
            return Err(StringError::TooLong);
        }
        s.extend_from_slice(&chunk[..n]);
        at = at.checked_add(n as u64).ok_or(StringError::Fault)?;
    }
}

/// Read a `u64` from user memory.
pub fn read_u64<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
) -> Result<u64, BadAddress> {
    let mut b = [0u8; 8];
    copy_from_user(vmm, space, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Write a `u64` to user memory.
pub fn write_u64<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    value: u64,
) -> Result<(), BadAddress> {
    copy_to_user(vmm, space, addr, &value.to_le_bytes())
}

/// Read a `u32` from user memory.
pub fn read_u32<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
) -> Result<u32, BadAddress> {
    let mut b = [0u8; 4];
    copy_from_user(vmm, space, addr, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Write a `u32` to user memory.
pub fn write_u32<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    value: u32,
) -> Result<(), BadAddress> {
    copy_to_user(vmm, space, addr, &value.to_le_bytes())
}
