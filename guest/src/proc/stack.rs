//! The initial process stack of a Linux x86-64 program, built as bytes.
//!
//! Layout, from `stack_top` down, as Linux's `create_elf_tables` builds it
//! (without the random offsets):
//!
//! ```text
//! stack_top -  8 .. stack_top    8 zero bytes (end marker)
//!                                execfn, NUL-terminated
//!                                argv strings then env strings, each NUL-terminated
//!   (aligned down to 16)
//!                                platform string, NUL-terminated (if non-empty)
//!                                16 random bytes (AT_RANDOM)
//!   (zero padding so that sp is 16-aligned)
//!                                auxv pairs ..., (AT_NULL, 0)
//!                                envp[0..envc], NULL
//!                                argv[0..argc], NULL
//! sp                             argc
//! ```
//!
//! `sp` is 16-byte aligned at `argc`, as the SysV x86-64 ABI requires at
//! process entry. Nothing here panics on any input.
use alloc::vec::Vec;
use core::fmt;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Most bytes the initial stack may take (`stack_top - sp`).
pub const MAX_SIZE: u64 = 256 * 1024;

/// Why the initial stack could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// The stack would take `size` bytes, more than [`MAX_SIZE`].
    TooLarge { size: u64 },
    /// An argument, environment, execfn or platform string contains a NUL.
    NulInString,
    /// The caller's auxv holds a type this module owns (`AT_NULL`,
    /// `AT_RANDOM`, `AT_EXECFN`, `AT_PLATFORM`).
    ReservedAux(u64),
    /// `stack_top` is too low to hold the stack below it.
    StackTopTooLow,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StackError::TooLarge { size } => {
                write!(f, "initial stack needs {size} bytes (at most {MAX_SIZE})")
            }
            StackError::NulInString => write!(f, "argument or environment string contains NUL"),
            StackError::ReservedAux(t) => {
                write!(f, "auxv type {t} is set by the stack builder itself")
            }
            StackError::StackTopTooLow => write!(f, "stack top too low for the initial stack"),
        }
    }
}

/// The built stack: copy `bytes` to `[sp, stack_top)` and enter with `rsp = sp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    pub bytes: Vec<u8>,
    pub sp: u64,
}

/// Builds the initial stack.
///
/// `argv` empty is replaced by `[""]` (as Linux does since 5.18), so
/// `argv[0]` always exists. `platform` empty: no string and no
/// `AT_PLATFORM`. The auxiliary vector is `AT_RANDOM`, `AT_EXECFN`,
/// (`AT_PLATFORM`,) then `auxv` in order, then `AT_NULL`.
pub fn build(
    stack_top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    auxv: &[(u64, u64)],
    random: [u8; 16],
    execfn: &[u8],
    platform: &[u8],
) -> Result<InitialStack, StackError> {
    const EMPTY_ARGV: [&[u8]; 1] = [b""];
    let argv = if argv.is_empty() {
        &EMPTY_ARGV[..]
    } else {
        argv
    };
    let strings = || argv.iter().chain(envp.iter());
    if strings()
        .chain([&execfn, &platform])
        .any(|s| s.contains(&0))
    {
        return Err(StackError::NulInString);
    }
    if let Some(&(t, _)) = auxv
        .iter()
        .find(|(t, _)| matches!(*t, AT_NULL | AT_RANDOM | AT_EXECFN | AT_PLATFORM))
    {
        return Err(StackError::ReservedAux(t));
    }

    // Sizes first (any overflow means "too large"), then addresses from the top.
    let too_large = StackError::TooLarge { size: u64::MAX };
    let len = |n: usize| u64::try_from(n).map_err(|_| too_large);
    let strlen = |s: &[u8]| len(s.len())?.checked_add(1).ok_or(too_large);
    let mut strings_len: u64 = 0;
    for s in strings() {
        strings_len = strings_len.checked_add(strlen(s)?).ok_or(too_large)?;
        if strings_len > MAX_SIZE {
            return Err(StackError::TooLarge { size: strings_len });
        }
    }
    if execfn.len() as u64 > MAX_SIZE || platform.len() as u64 > MAX_SIZE {
        return Err(too_large);
    }
    if auxv.len() as u64 > MAX_SIZE {
        return Err(too_large);
    }
    let own_aux: u64 = if platform.is_empty() { 2 } else { 3 };
    let naux = len(auxv.len())? + own_aux + 1; // + AT_NULL
    let argc = len(argv.len())?;
    let envc = len(envp.len())?;
    // argc, argv + NULL, envp + NULL, auxv pairs: all bounded by MAX_SIZE above.
    let table_words = 1 + (argc + 1) + (envc + 1) + 2 * naux;

    let low = StackError::StackTopTooLow;
    let end_marker = stack_top.checked_sub(8).ok_or(low)?;
    let execfn_addr = end_marker.checked_sub(strlen(execfn)?).ok_or(low)?;
    let strings_addr = execfn_addr.checked_sub(strings_len).ok_or(low)?;
    let aligned = strings_addr & !15;
    let platform_addr = if platform.is_empty() {
        aligned
    } else {
        aligned.checked_sub(strlen(platform)?).ok_or(low)?
    };
    let random_addr = platform_addr.checked_sub(16).ok_or(low)?;
    let sp = random_addr
        .checked_sub(table_words.checked_mul(8).ok_or(too_large)?)
        .ok_or(low)?
        & !15;
    let size = stack_top - sp; // sp <= stack_top by construction
    if size > MAX_SIZE {
        return Err(StackError::TooLarge { size });
    }

    let mut bytes: Vec<u8> = Vec::with_capacity(size as usize);
    let word = |b: &mut Vec<u8>, w: u64| b.extend_from_slice(&w.to_le_bytes());

    word(&mut bytes, argc);
    let mut addr = strings_addr;
    for s in argv {
        word(&mut bytes, addr);
        addr += strlen(s)?;
    }
    word(&mut bytes, 0);
    for s in envp {
        word(&mut bytes, addr);
        addr += strlen(s)?;
    }
    word(&mut bytes, 0);
    let aux = |b: &mut Vec<u8>, t: u64, v: u64| {
        word(b, t);
        word(b, v);
    };
    aux(&mut bytes, AT_RANDOM, random_addr);
    aux(&mut bytes, AT_EXECFN, execfn_addr);
    if !platform.is_empty() {
        aux(&mut bytes, AT_PLATFORM, platform_addr);
    }
    for &(t, v) in auxv {
        aux(&mut bytes, t, v);
    }
    aux(&mut bytes, AT_NULL, 0);

    // Everything after the tables, at fixed addresses: pad up to each.
    let pad_to = |b: &mut Vec<u8>, a: u64| {
        let at = sp + b.len() as u64;
        b.resize(b.len() + a.saturating_sub(at) as usize, 0);
    };
    pad_to(&mut bytes, random_addr);
    bytes.extend_from_slice(&random);
    if !platform.is_empty() {
        bytes.extend_from_slice(platform);
        bytes.push(0);
    }
    pad_to(&mut bytes, strings_addr);
    for s in strings() {
        bytes.extend_from_slice(s);
        bytes.push(0);
    }
    bytes.extend_from_slice(execfn);
    bytes.push(0);
    bytes.extend_from_slice(&[0; 8]);
    Ok(InitialStack { bytes, sp })
}
