//! Starting programs from the initramfs: the one the host packed
//! (`mobius run -- PROGRAM ARGS`, named by the control files of
//! [`mobius_shared::initramfs`]) and every later `execve`.
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::exec::{self, ExecError, Loaded, Program};
use super::process::{self, ExitStatus};
use crate::arch::x86_64::{cpu, user};
use crate::console::{write_program_output, Stream};
use crate::fs::initramfs;
use crate::fs::vfs;
use crate::mm::kernel;
use crate::mm::vmm::{FileBacking, SpaceId};
use crate::syscall::{E2BIG, EACCES, EIO, ELOOP, ENOENT, ENOEXEC, ENOMEM};
use mobius_shared::initramfs::{ARGV_FILE, ENV_FILE, ROOT_DISK_FILE};

/// Shell status of a program that was not found / could not be executed.
const NOT_FOUND: u8 = 127;
const NOT_EXECUTABLE: u8 = 126;
/// Any execute permission bit.
const S_IXANY: u32 = 0o111;

/// Why a program could not be started: the errno `execve` returns and a
/// sentence for the host's report.
pub struct StartError {
    pub errno: i64,
    pub why: String,
}

/// Most `#!` interpreters one `execve` goes through (Linux's limit).
const MAX_INTERPRETERS: usize = 4;

/// A program loaded into a new address space the caller now owns.
pub struct Started {
    pub space: SpaceId,
    pub loaded: Loaded,
    /// The executable's absolute path, links followed (`/proc/self/exe`).
    pub path: String,
    /// Its arguments, each ended by a NUL (`/proc/PID/cmdline`), at most
    /// [`CMDLINE_MAX`] bytes.
    pub cmdline: Vec<u8>,
}

/// Most bytes of a command line kept for `/proc/PID/cmdline` (Linux
/// shows them all; a page is plenty for a look at what runs).
pub const CMDLINE_MAX: usize = 4096;

/// `argv` as `/proc/PID/cmdline` shows it.
fn cmdline(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in argv {
        if out.len() + a.len() + 1 > CMDLINE_MAX {
            break;
        }
        out.extend_from_slice(a);
        out.push(0);
    }
    out
}

/// Load the program `given` (as `execve` was given it: relative paths
/// start at `cwd`; any mounted file system; a `#!` script runs its
/// interpreter) into a new address space with `argv` and `envp`. The name
/// as given is `AT_EXECFN` and a script's argument, as on Linux.
pub fn load_program(
    given: &str,
    cwd: &str,
    argv: &[&[u8]],
    envp: &[&[u8]],
) -> Result<Started, StartError> {
    let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    load_at_depth(given, cwd, argv, envp, 0)
}

fn load_at_depth(
    given: &str,
    cwd: &str,
    argv: Vec<Vec<u8>>,
    envp: &[&[u8]],
    depth: usize,
) -> Result<Started, StartError> {
    let fail = |errno, why: String| StartError { errno, why };
    let path = vfs::normalize(cwd, given);
    let found = vfs::resolve(&path, true).map_err(|e| fail(e, String::from("no such program")))?;
    let meta = found.node.meta();
    if !meta.is_file() || meta.mode & S_IXANY == 0 {
        return Err(fail(EACCES, String::from("not an executable file")));
    }
    let file = found
        .node
        .backing()
        .ok_or_else(|| fail(EACCES, String::from("not an executable file")))?;
    let owned;
    let bytes = match file.as_bytes() {
        Some(b) => b,
        None => {
            owned = read_head(&*file).map_err(|e| fail(e, String::from("cannot read")))?;
            &owned[..]
        }
    };
    if let Some(line) = bytes.strip_prefix(b"#!") {
        if depth >= MAX_INTERPRETERS {
            return Err(fail(ELOOP, String::from("too many #! interpreters")));
        }
        let (interp, new_argv) = script_argv(line, given, &argv)
            .ok_or_else(|| fail(ENOEXEC, String::from("bad #! line")))?;
        return load_at_depth(&interp, cwd, new_argv, envp, depth + 1);
    }
    let vmm = kernel::vmm();
    let space = vmm
        .lock()
        .create_process_space()
        .map_err(|e| fail(ENOMEM, format!("no address space: {e}")))?;
    let program = Program {
        bytes,
        file: file.clone(),
        path: given.as_bytes(),
    };
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    match exec::load(vmm, space, &program, &argv, envp, hwcap(), random_bytes()) {
        Ok(loaded) => Ok(Started {
            space,
            loaded,
            path: found.path,
            cmdline: cmdline(&argv),
        }),
        Err(e) => {
            let _ = vmm.lock().destroy_space(space);
            let errno = match e {
                ExecError::NotExecutable(_) | ExecError::SharedPage(_) => ENOEXEC,
                ExecError::TooBig(_) => E2BIG,
                ExecError::NoMemory(_) | ExecError::StackWrite => ENOMEM,
            };
            Err(fail(errno, format!("cannot execute: {e}")))
        }
    }
}

/// Bytes read first of a program that is not in memory: its `#!` line, or
/// its ELF header and (usually) program headers; the pages of its segments
/// are read when first touched, like the initramfs's.
const HEAD: u64 = 4096;
/// Most bytes read for the program headers of an ELF file whose table
/// lies beyond [`HEAD`].
const MAX_HEAD: u64 = 1 << 20;

/// The first bytes of `file`: [`HEAD`], or up to the end of its program
/// header table when that lies further (bounded by [`MAX_HEAD`]).
fn read_head(file: &dyn FileBacking) -> Result<Vec<u8>, i64> {
    let len = file.len();
    let mut v = read_prefix(file, len.min(HEAD))?;
    if let Some(end) = phdr_table_end(&v).filter(|&e| e > v.len() as u64 && e <= len) {
        v = read_prefix(file, end.min(MAX_HEAD))?;
    }
    Ok(v)
}

/// Where an ELF header's program header table ends (`e_phoff + e_phnum * 56`).
fn phdr_table_end(head: &[u8]) -> Option<u64> {
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    let phoff = u64::from_le_bytes(head.get(32..40)?.try_into().ok()?);
    let phnum = u16::from_le_bytes(head.get(56..58)?.try_into().ok()?);
    phoff.checked_add(u64::from(phnum).checked_mul(56)?)
}

/// The first `n` bytes of `file` (fewer if it is shorter).
fn read_prefix(file: &dyn FileBacking, n: u64) -> Result<Vec<u8>, i64> {
    let n = usize::try_from(n).map_err(|_| E2BIG)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| ENOMEM)?;
    v.resize(n, 0);
    let mut done = 0;
    while done < n {
        match file.read_at(done as u64, &mut v[done..]) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(_) => return Err(EIO),
        }
    }
    v.truncate(done);
    Ok(v)
}

/// A `#!` line (after the `#!`): the interpreter's absolute path and the
/// argument vector it runs with (`interp [arg] script argv[1..]`, as
/// Linux builds it).
fn script_argv(line: &[u8], script: &str, argv: &[Vec<u8>]) -> Option<(String, Vec<Vec<u8>>)> {
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let text = core::str::from_utf8(line.get(..end.min(255))?).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\t');
    let (interp, arg) = match text.find([' ', '\t']) {
        Some(i) => (
            &text[..i],
            Some(text[i..].trim_matches(|c| c == ' ' || c == '\t')),
        ),
        None => (text, None),
    };
    if interp.is_empty() {
        return None;
    }
    let mut v = vec![interp.as_bytes().to_vec()];
    if let Some(a) = arg.filter(|a| !a.is_empty()) {
        v.push(a.as_bytes().to_vec());
    }
    v.push(script.as_bytes().to_vec());
    v.extend(argv.iter().skip(1).cloned());
    Some((String::from(interp), v))
}

/// Run the initramfs's program to the end of every process it starts.
/// `None` when the initramfs names no program.
pub fn run_program() -> Option<ExitStatus> {
    initramfs::archive()?;
    let control = initramfs::find(ARGV_FILE)?;
    let mut words = control.data.split(|&b| b == 0);
    let path = words.next().unwrap_or_default();
    let argv: Vec<&[u8]> = words.filter(|w| !w.is_empty()).collect();
    let env = initramfs::find(ENV_FILE)
        .map(|e| e.data)
        .unwrap_or_default();
    let envp: Vec<&[u8]> = env.split(|&b| b == 0).filter(|w| !w.is_empty()).collect();
    let name = String::from_utf8_lossy(path).into_owned();
    vfs::mount_defaults(initramfs::find(ROOT_DISK_FILE).is_some());
    user::init();
    super::entry::install();
    let started = match load_program(&name, "/", &argv, &envp) {
        Ok(s) => s,
        Err(e) => {
            report(&format!("mobius: {name}: {}\n", e.why));
            let status = if e.errno == ENOENT {
                NOT_FOUND
            } else {
                NOT_EXECUTABLE
            };
            return Some(ExitStatus::Code(status));
        }
    };
    let frame = user::user_frame(started.loaded.entry, started.loaded.sp);
    let pid = process::spawn_first(started.space, started.path, frame, started.loaded.brk)?;
    process::set_cmdline(pid, started.cmdline);
    Some(super::task::run_until_done())
}

fn report(line: &str) {
    write_program_output(Stream::Err, line.as_bytes());
}

/// `AT_HWCAP`: CPUID leaf 1 EDX, as Linux gives it.
fn hwcap() -> u64 {
    u64::from(cpu::cpuid(1).3)
}

/// 16 bytes for `AT_RANDOM`: RDRAND where the CPU has it, else the TSC
/// stirred (a microVM has no better entropy at this point).
pub fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        let v = cpu::random_u64();
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}
