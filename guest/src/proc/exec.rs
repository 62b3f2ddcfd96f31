//! Loading a static ELF program into a fresh process address space
//! (`execve`'s memory half): each `PT_LOAD` becomes a Möbius IMAGE area
//! (one section, its own protection and NX, demand-paged from the file,
//! `.bss` and partial pages zero-filled), then the stack area with a guard
//! page below it, then the initial stack (argc, argv, envp, auxv) copied in
//! through the checked user copies.
//!
//! Portable: the host tests run it against the software MMU.
use alloc::sync::Arc;

use super::elf::{self, ElfError, ElfImage};
use super::stack::{self, StackError};
use crate::mm::paging::{Mmu, VirtAddr, PAGE_SIZE};
use crate::mm::uaccess;
use crate::mm::vmm::{FileBacking, MemFlags, Section, SpaceId, VmError, VmmLock, USER_END};

/// Where a static-PIE program is loaded (Linux's `ELF_ET_DYN_BASE` region).
pub const PIE_BASE: VirtAddr = 0x5555_5555_4000;
/// Top of the main thread's stack (one guard gap below the end of the
/// user half, as Linux leaves).
pub const STACK_TOP: VirtAddr = USER_END - 0x1000_0000;
/// Size of the main thread's stack area (Linux's default `ulimit -s`);
/// pages are demand-zero, so only what is touched costs a frame.
pub const STACK_SIZE: u64 = 8 << 20;
/// The unmapped gap below the stack that catches an overflow (reserved, so
/// nothing is placed there).
pub const STACK_GUARD: u64 = PAGE_SIZE;

/// Why a program could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// Not a program we can run (`ENOEXEC`).
    NotExecutable(ElfError),
    /// Two segments share a page (no linker we know does this).
    SharedPage(u64),
    /// Arguments and environment too large (`E2BIG`).
    TooBig(StackError),
    /// The address space could not take it (`ENOMEM`).
    NoMemory(VmError),
    /// Writing the initial stack failed (`ENOMEM`: the stack pages could
    /// not be had).
    StackWrite,
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::NotExecutable(e) => write!(f, "not an executable: {e}"),
            ExecError::SharedPage(p) => write!(f, "segments share the page at {p:#x}"),
            ExecError::TooBig(e) => write!(f, "arguments too large: {e}"),
            ExecError::NoMemory(e) => write!(f, "out of memory: {e}"),
            ExecError::StackWrite => f.write_str("cannot write the initial stack"),
        }
    }
}

/// What the new program needs to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Where ring 3 starts.
    pub entry: VirtAddr,
    /// The initial stack pointer (at `argc`).
    pub sp: VirtAddr,
    /// The initial program break (page after the highest segment).
    pub brk: VirtAddr,
}

/// The program to load: its bytes (for the headers) and the file its pages
/// are read from.
pub struct Program<'a> {
    pub bytes: &'a [u8],
    pub file: Arc<dyn FileBacking>,
    /// The path it was run as (`AT_EXECFN`).
    pub path: &'a [u8],
}

/// Load `program` into `space` (a fresh process space) with its arguments
/// and environment. `hwcap` is `AT_HWCAP`; `random` the 16 bytes of
/// `AT_RANDOM`.
pub fn load<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    program: &Program<'_>,
    argv: &[&[u8]],
    envp: &[&[u8]],
    hwcap: u64,
    random: [u8; 16],
) -> Result<Loaded, ExecError> {
    let file_len = program.file.len().max(program.bytes.len() as u64);
    let image = elf::parse_head(program.bytes, file_len).map_err(ExecError::NotExecutable)?;
    if let Some(&page) = image.shared_pages().first() {
        return Err(ExecError::SharedPage(page));
    }
    let bias = if image.dynamic { PIE_BASE } else { 0 };
    map_segments(vmm, space, &image, bias, &program.file)?;
    map_stack(vmm, space)?;
    let (_, hi) = image.span();
    let phdr = image.phdr.map_or(0, |p| p + bias);
    let auxv = [
        (stack::AT_PHDR, phdr),
        (stack::AT_PHENT, u64::from(image.phent)),
        (stack::AT_PHNUM, u64::from(image.phnum)),
        (stack::AT_PAGESZ, PAGE_SIZE),
        (stack::AT_BASE, 0),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, image.entry + bias),
        (stack::AT_UID, 0),
        (stack::AT_EUID, 0),
        (stack::AT_GID, 0),
        (stack::AT_EGID, 0),
        (stack::AT_SECURE, 0),
        (stack::AT_HWCAP, hwcap),
        (stack::AT_CLKTCK, 100),
        (stack::AT_HWCAP2, 0),
    ];
    let initial = stack::build(
        STACK_TOP,
        argv,
        envp,
        &auxv,
        random,
        program.path,
        b"x86_64",
    )
    .map_err(ExecError::TooBig)?;
    uaccess::copy_to_user(vmm, space, initial.sp, &initial.bytes)
        .map_err(|_| ExecError::StackWrite)?;
    Ok(Loaded {
        entry: image.entry + bias,
        sp: initial.sp,
        brk: hi + bias,
    })
}

/// One IMAGE area per `PT_LOAD`.
fn map_segments<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    image: &ElfImage,
    bias: u64,
    file: &Arc<dyn FileBacking>,
) -> Result<(), ExecError> {
    for seg in &image.segments {
        let start = seg.page_start() + bias;
        let end = seg.page_end() + bias;
        let lead = seg.vaddr % PAGE_SIZE;
        let section = Section {
            offset: 0,
            size: lead + seg.mem_size,
            file_offset: seg.file_offset - lead,
            file_size: lead + seg.file_size,
            flags: if seg.write {
                MemFlags::WRITE
            } else {
                MemFlags::empty()
            },
            execute: seg.execute,
        };
        let mut flags = MemFlags::USER | MemFlags::READ;
        if seg.write {
            flags |= MemFlags::WRITE;
        }
        let pages = (end - start) / PAGE_SIZE;
        vmm.lock()
            .map_image(space, file.clone(), &[section], start, pages, flags)
            .map_err(ExecError::NoMemory)?;
    }
    Ok(())
}

/// The stack area below [`STACK_TOP`] and its guard.
fn map_stack<M: Mmu>(vmm: &VmmLock<M>, space: SpaceId) -> Result<(), ExecError> {
    let base = STACK_TOP - STACK_SIZE;
    let flags = MemFlags::USER | MemFlags::READ | MemFlags::WRITE | MemFlags::ZERO;
    let mut vm = vmm.lock();
    vm.alloc(space, STACK_SIZE / PAGE_SIZE, base, flags)
        .map_err(ExecError::NoMemory)?;
    vm.reserve(space, STACK_GUARD / PAGE_SIZE, base - STACK_GUARD)
        .map_err(ExecError::NoMemory)?;
    Ok(())
}
