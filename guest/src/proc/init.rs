//! Starting programs from the initramfs: the one the host packed
//! (`mobius run -- PROGRAM ARGS`, named by the control files of
//! [`mobius_shared::initramfs`]) and every later `execve`.
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::exec::{self, ExecError, Loaded, Program};
use super::process::{self, ExitStatus};
use crate::arch::x86_64::{cpu, user};
use crate::console::{write_program_output, Stream};
use crate::fs::cpio::S_IFMT;
use crate::fs::initramfs::{self, InitramfsFile};
use crate::mm::kernel;
use crate::mm::vmm::SpaceId;
use crate::syscall::{E2BIG, EACCES, ENOENT, ENOEXEC, ENOMEM};
use mobius_shared::initramfs::{ARGV_FILE, ENV_FILE};

/// Shell status of a program that was not found / could not be executed.
const NOT_FOUND: u8 = 127;
const NOT_EXECUTABLE: u8 = 126;
/// Any execute permission bit.
const S_IXANY: u32 = 0o111;
const S_IFREG: u32 = 0o100_000;

/// Why a program could not be started: the errno `execve` returns and a
/// sentence for the host's report.
pub struct StartError {
    pub errno: i64,
    pub why: String,
}

/// Load the initramfs program at `path` into a new address space with
/// `argv` and `envp`. On success the caller owns the space.
pub fn load_program(
    path: &str,
    argv: &[&[u8]],
    envp: &[&[u8]],
) -> Result<(SpaceId, Loaded), StartError> {
    let fail = |errno, why: String| StartError { errno, why };
    let archive = initramfs::archive().ok_or_else(|| fail(ENOENT, String::from("no initramfs")))?;
    let file = archive
        .find(path)
        .ok_or_else(|| fail(ENOENT, String::from("no such program in the initramfs")))?;
    if file.mode & S_IFMT != S_IFREG || file.mode & S_IXANY == 0 {
        return Err(fail(EACCES, String::from("not an executable file")));
    }
    let vmm = kernel::vmm();
    let space = vmm
        .lock()
        .create_process_space()
        .map_err(|e| fail(ENOMEM, format!("no address space: {e}")))?;
    let program = Program {
        bytes: file.data,
        file: Arc::new(InitramfsFile(file.data)),
        path: path.as_bytes(),
    };
    match exec::load(vmm, space, &program, argv, envp, hwcap(), random_bytes()) {
        Ok(loaded) => Ok((space, loaded)),
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

/// Run the initramfs's program to the end of every process it starts.
/// `None` when the initramfs names no program.
pub fn run_program() -> Option<ExitStatus> {
    let archive = initramfs::archive()?;
    let control = archive.find(ARGV_FILE)?;
    let mut words = control.data.split(|&b| b == 0);
    let path = words.next().unwrap_or_default();
    let argv: Vec<&[u8]> = words.filter(|w| !w.is_empty()).collect();
    let env = archive.find(ENV_FILE).map(|e| e.data).unwrap_or_default();
    let envp: Vec<&[u8]> = env.split(|&b| b == 0).filter(|w| !w.is_empty()).collect();
    let name = String::from_utf8_lossy(path).into_owned();
    user::init();
    super::entry::install();
    let (space, loaded) = match load_program(&name, &argv, &envp) {
        Ok(l) => l,
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
    let frame = user::user_frame(loaded.entry, loaded.sp);
    process::spawn_first(space, name, frame, loaded.brk)?;
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
