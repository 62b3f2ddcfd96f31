//! Raw Linux x86-64 system calls: `syscallN(nr, args...)` returns the kernel's
//! raw result, a negative errno (-4095..=-1) on failure.

use core::arch::asm;

pub const SYS_READ: usize = 0;
pub const SYS_WRITE: usize = 1;
pub const SYS_CLOSE: usize = 3;
pub const SYS_FSTAT: usize = 5;
pub const SYS_LSEEK: usize = 8;
pub const SYS_MMAP: usize = 9;
pub const SYS_MPROTECT: usize = 10;
pub const SYS_MUNMAP: usize = 11;
pub const SYS_BRK: usize = 12;
pub const SYS_PREAD64: usize = 17;
pub const SYS_EXIT_GROUP: usize = 231;
pub const SYS_GETDENTS64: usize = 217;
pub const SYS_OPENAT: usize = 257;

pub const AT_FDCWD: isize = -100;
pub const O_RDONLY: usize = 0;
pub const O_DIRECTORY: usize = 0o200000;
pub const O_CLOEXEC: usize = 0o2000000;

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_ANONYMOUS: usize = 0x20;

pub const SEEK_SET: usize = 0;
pub const SEEK_CUR: usize = 1;
pub const SEEK_END: usize = 2;

pub const EFAULT: isize = 14;
pub const PAGE_SIZE: usize = 4096;

/// Whether a raw result is an error (-4095..=-1).
pub fn is_err(ret: isize) -> bool {
    (-4095..0).contains(&ret)
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall0(nr: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall1(nr: usize, a1: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a1,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall2(nr: usize, a1: usize, a2: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a1, in("rsi") a2,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall3(nr: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a1, in("rsi") a2,
         in("rdx") a3, lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall4(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a1, in("rsi") a2,
         in("rdx") a3, in("r10") a4, lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall5(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a1, in("rsi") a2,
         in("rdx") a3, in("r10") a4, in("r8") a5,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// # Safety
/// A raw system call: the caller answers for its effects.
#[inline(always)]
pub unsafe fn syscall6(
    nr: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret;
    asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a1, in("rsi") a2,
         in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    ret
}

/// Anonymous private read-write mapping of `len` bytes.
pub fn mmap_anon(len: usize, prot: usize) -> isize {
    // SAFETY: a fresh mapping chosen by the kernel touches no existing memory.
    unsafe {
        syscall6(
            SYS_MMAP,
            0,
            len,
            prot,
            MAP_PRIVATE | MAP_ANONYMOUS,
            usize::MAX, // fd -1
            0,
        )
    }
}

/// `openat(AT_FDCWD, path, flags)` with a NUL-terminated copy of `path`.
pub fn open(path: &[u8], flags: usize) -> isize {
    let mut c = path.to_vec();
    c.push(0);
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    unsafe { syscall4(SYS_OPENAT, AT_FDCWD as usize, c.as_ptr() as usize, flags, 0) }
}

pub fn close(fd: isize) -> isize {
    // SAFETY: closing a descriptor this program opened.
    unsafe { syscall1(SYS_CLOSE, fd as usize) }
}

/// `struct stat` as x86-64 Linux lays it out (144 bytes).
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub _pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub _unused: [i64; 3],
}

pub fn fstat(fd: isize, st: &mut Stat) -> isize {
    // SAFETY: `st` is a writable `struct stat`.
    unsafe { syscall2(SYS_FSTAT, fd as usize, st as *mut Stat as usize) }
}
