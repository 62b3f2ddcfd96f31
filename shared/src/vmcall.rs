//! Möbius calls for programs: the Möbius VMM API as system calls.
//!
//! A program in the guest calls these with the ordinary `syscall`
//! instruction (`syscall(2)` in C), the number in `rax`, arguments in
//! `rdi, rsi, rdx, r10, r8, r9`, like any Linux system call. The numbers
//! start at [`BASE`], far above Linux x86-64's table (which ends below
//! 1024) and below the x32 bit (`0x4000_0000`), so no Linux number is ever
//! taken. Results are Linux-style: a value `>= 0` on success, `-errno` on
//! failure.
//!
//! | number | call | arguments | returns |
//! |---|---|---|---|
//! | `BASE + 0` | `VmmAlloc` | `pages, base, flags` | the area's base |
//! | `BASE + 1` | `VmmFree` | `base` | 0 |
//! | `BASE + 2` | `VmmReserveArea` | `pages, base` | the reservation's base |
//! | `BASE + 3` | `VmmShare` | `addr, name, name_len` | a handle |
//! | `BASE + 4` | open-shared (`VmmOpenSharedArea`) | `name, name_len` | a handle |
//! | `BASE + 5` | `VmmMapSharedArea` | `handle, base, flags` | the mapping's base |
//! | `BASE + 6` | `VmmMapFile` | `fd, offset, pages, base, flags` | the area's base |
//! | `BASE + 7` | `HndClose` | `handle` | 0 |
//! | `BASE + 8` | unexport (`HndExport(name, NULL)`) | `name, name_len` | 0 |
//! | `BASE + 9` | kernel counters | `buf, len` | bytes written ([`KernelCounts`]) |
//!
//! Arguments, all checked by the kernel:
//! * `pages`: more than 0; `base`: 0 to let the kernel choose (unless
//!   `VM_MEM_LITERAL`), else page-aligned and inside the program's half of
//!   the address space (`EINVAL` otherwise).
//! * `flags`: `VM_MEM_*` as on the Möbius API page ([`VM_MEM_USER`],
//!   [`VM_MEM_READ`], [`VM_MEM_WRITE`], [`VM_MEM_ZERO`], [`VM_MEM_LITERAL`],
//!   cache bits). A program's areas are user areas: the privilege bits
//!   must be `VM_MEM_USER` (`EPERM` for kernel-only areas);
//!   `VM_MEM_RESERVED` and unknown bits are `EINVAL`.
//! * `VmmAlloc` inside a reservation commits that part of it.
//! * `name`: 1 to [`NAME_MAX`] bytes of UTF-8 at a user address. Names are
//!   global to the guest (two processes of one run meet by name);
//!   `EEXIST` if taken, `ENOENT` if unknown.
//! * `handle`: a small integer from the calling process's handle table
//!   (at most [`MAX_HANDLES`] open, `EMFILE` past it); `EBADF` if not open.
//!   A process's handles are closed when it ends; an export lives until it
//!   is unexported.
//! * `VmmMapSharedArea` may not widen the creator's rights (`EACCES`).
//! * `VmmMapFile`: `fd` an open regular file, `offset` page-aligned.
//!
//! Errors: `ENOMEM` (no frames or address space), `EEXIST` (overlaps an
//! area, or the name is taken), `EINVAL`, `EPERM`, `EACCES`, `EBADF`,
//! `ENOENT`, `EFAULT` (a bad name or buffer pointer), `EMFILE`.
//!
//! This file has no dependencies beyond `core`, so a Rust program can
//! include it as a module (`#[path = ".../vmcall.rs"] mod vmcall;`) and
//! use the helpers at the end.

/// First Möbius call number (`'M' << 8`).
pub const BASE: u64 = 0x4D00;
pub const VMM_ALLOC: u64 = BASE;
pub const VMM_FREE: u64 = BASE + 1;
pub const VMM_RESERVE: u64 = BASE + 2;
pub const VMM_SHARE: u64 = BASE + 3;
pub const VMM_OPEN_SHARED: u64 = BASE + 4;
pub const VMM_MAP_SHARED: u64 = BASE + 5;
pub const VMM_MAP_FILE: u64 = BASE + 6;
pub const HANDLE_CLOSE: u64 = BASE + 7;
pub const VMM_UNEXPORT: u64 = BASE + 8;
pub const KERNEL_COUNTS: u64 = BASE + 9;
/// One past the last Möbius call number.
pub const END: u64 = BASE + 10;

/// `VM_MEM_USER`: user and kernel access.
pub const VM_MEM_USER: u64 = 0x3;
/// `VM_MEM_READ`.
pub const VM_MEM_READ: u64 = 0x4;
/// `VM_MEM_WRITE`.
pub const VM_MEM_WRITE: u64 = 0x8;
/// `VM_MEM_ZERO`.
pub const VM_MEM_ZERO: u64 = 0x10;
/// `VM_MEM_LITERAL`: a base of 0 means address 0.
pub const VM_MEM_LITERAL: u64 = 0x80;

/// Longest share name.
pub const NAME_MAX: usize = 64;
/// Most share handles a process holds at once.
pub const MAX_HANDLES: usize = 256;

/// What [`KERNEL_COUNTS`] writes: seven little-endian `u64`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounts {
    /// Physical frames in all / free.
    pub frames_total: u64,
    pub frames_free: u64,
    /// Kernel heap bytes in use / in all.
    pub heap_used: u64,
    pub heap_size: u64,
    /// Live (not yet reaped) processes and threads.
    pub processes: u64,
    pub threads: u64,
    /// Named exports.
    pub exports: u64,
}

impl KernelCounts {
    /// Size of the encoding.
    pub const LEN: usize = 7 * 8;

    /// The little-endian encoding.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        let v = [
            self.frames_total,
            self.frames_free,
            self.heap_used,
            self.heap_size,
            self.processes,
            self.threads,
            self.exports,
        ];
        for (i, x) in v.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Decode [`Self::to_bytes`].
    pub fn from_bytes(b: &[u8; Self::LEN]) -> KernelCounts {
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(x)
        };
        KernelCounts {
            frames_total: w(0),
            frames_free: w(1),
            heap_used: w(2),
            heap_size: w(3),
            processes: w(4),
            threads: w(5),
            exports: w(6),
        }
    }
}

/// Helpers for programs (x86-64 Linux ABI). Each returns `Ok(value)` or
/// `Err(errno)`.
#[cfg(target_arch = "x86_64")]
pub mod call {
    use super::*;

    /// A raw six-argument system call.
    ///
    /// # Safety
    /// The call may write to memory the arguments point to.
    pub unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
        let ret: i64;
        // SAFETY: the Linux x86-64 system-call convention; the kernel
        // clobbers rcx and r11 only.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") nr as i64 => ret,
                in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3],
                in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _,
                options(nostack))
        };
        ret
    }

    fn result(r: i64) -> Result<u64, i64> {
        if r < 0 {
            Err(-r)
        } else {
            Ok(r as u64)
        }
    }

    /// `VmmAlloc(pages, base, flags)`.
    pub fn alloc(pages: u64, base: u64, flags: u64) -> Result<u64, i64> {
        // SAFETY: writes no memory of ours.
        result(unsafe { syscall6(VMM_ALLOC, [pages, base, flags, 0, 0, 0]) })
    }

    /// `VmmFree(base)`.
    pub fn free(base: u64) -> Result<u64, i64> {
        // SAFETY: frees only the area at `base`; the caller must not use it.
        result(unsafe { syscall6(VMM_FREE, [base, 0, 0, 0, 0, 0]) })
    }

    /// `VmmReserveArea(pages, base)`.
    pub fn reserve(pages: u64, base: u64) -> Result<u64, i64> {
        // SAFETY: writes no memory of ours.
        result(unsafe { syscall6(VMM_RESERVE, [pages, base, 0, 0, 0, 0]) })
    }

    /// `VmmShare(addr, name)`: a handle.
    pub fn share(addr: u64, name: &str) -> Result<u64, i64> {
        let (p, n) = (name.as_ptr() as u64, name.len() as u64);
        // SAFETY: the kernel only reads the name.
        result(unsafe { syscall6(VMM_SHARE, [addr, p, n, 0, 0, 0]) })
    }

    /// Open the area shared as `name`: a handle.
    pub fn open_shared(name: &str) -> Result<u64, i64> {
        let (p, n) = (name.as_ptr() as u64, name.len() as u64);
        // SAFETY: the kernel only reads the name.
        result(unsafe { syscall6(VMM_OPEN_SHARED, [p, n, 0, 0, 0, 0]) })
    }

    /// `VmmMapSharedArea(handle, base, flags)`.
    pub fn map_shared(handle: u64, base: u64, flags: u64) -> Result<u64, i64> {
        // SAFETY: maps new memory only.
        result(unsafe { syscall6(VMM_MAP_SHARED, [handle, base, flags, 0, 0, 0]) })
    }

    /// `VmmMapFile(fd, offset, pages, base, flags)`.
    pub fn map_file(fd: u64, offset: u64, pages: u64, base: u64, flags: u64) -> Result<u64, i64> {
        // SAFETY: maps new memory only.
        result(unsafe { syscall6(VMM_MAP_FILE, [fd, offset, pages, base, flags, 0]) })
    }

    /// Close a share handle.
    pub fn close(handle: u64) -> Result<u64, i64> {
        // SAFETY: writes no memory of ours.
        result(unsafe { syscall6(HANDLE_CLOSE, [handle, 0, 0, 0, 0, 0]) })
    }

    /// Remove the export `name`.
    pub fn unexport(name: &str) -> Result<u64, i64> {
        let (p, n) = (name.as_ptr() as u64, name.len() as u64);
        // SAFETY: the kernel only reads the name.
        result(unsafe { syscall6(VMM_UNEXPORT, [p, n, 0, 0, 0, 0]) })
    }

    /// The kernel's counters.
    pub fn counts() -> Result<KernelCounts, i64> {
        let mut b = [0u8; KernelCounts::LEN];
        let (p, n) = (b.as_mut_ptr() as u64, b.len() as u64);
        // SAFETY: the kernel writes at most `n` bytes into `b`.
        result(unsafe { syscall6(KERNEL_COUNTS, [p, n, 0, 0, 0, 0]) })?;
        Ok(KernelCounts::from_bytes(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_outside_linux_range() {
        const { assert!(BASE >= 1024 && END < 0x4000_0000) };
    }

    #[test]
    fn counts_round_trip() {
        let c = KernelCounts {
            frames_total: 1,
            frames_free: 2,
            heap_used: 3,
            heap_size: 4,
            processes: 5,
            threads: 6,
            exports: u64::MAX,
        };
        assert_eq!(KernelCounts::from_bytes(&c.to_bytes()), c);
    }
}
