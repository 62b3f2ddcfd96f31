//! Starting the program the host packed into the initramfs
//! (`mobius run -- PROGRAM ARGS`): the control files of
//! [`mobius_shared::initramfs`] name it, its arguments and environment.
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::exec::{self, Program};
use super::task::{self, ExitStatus};
use crate::arch::x86_64::{cpu, user};
use crate::console::{write_program_output, Stream};
use crate::fs::initramfs::{self, InitramfsFile};
use mobius_shared::initramfs::{ARGV_FILE, ENV_FILE};

/// Shell status of a program that was not found / could not be executed.
const NOT_FOUND: u8 = 127;
const NOT_EXECUTABLE: u8 = 126;

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
    let Some(file) = archive.find(&name).filter(|e| e.is_file()) else {
        report(&format!(
            "mobius: {name}: no such program in the initramfs\n"
        ));
        return Some(ExitStatus::Code(NOT_FOUND));
    };
    user::init();
    super::entry::install();
    let vmm = crate::kvmm::vmm();
    let space = match vmm.lock().create_process_space() {
        Ok(s) => s,
        Err(e) => {
            report(&format!("mobius: {name}: no address space: {e}\n"));
            return Some(ExitStatus::Code(NOT_EXECUTABLE));
        }
    };
    let program = Program {
        bytes: file.data,
        file: Arc::new(InitramfsFile(file.data)),
        path,
    };
    let loaded = exec::load(vmm, space, &program, &argv, &envp, hwcap(), random_bytes());
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            let _ = vmm.lock().destroy_space(space);
            report(&format!("mobius: {name}: cannot execute: {e}\n"));
            return Some(ExitStatus::Code(NOT_EXECUTABLE));
        }
    };
    let frame = user::user_frame(loaded.entry, loaded.sp);
    task::spawn(space, name, frame, loaded.brk);
    Some(task::run_until_done())
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
