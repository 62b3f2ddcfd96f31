//! Workloads chosen with `workload=NAME` on the command line.
//!
//! The basic ones exercise the machine itself (output, exit status, a CPU
//! exception, a guest that never stops, a triple fault); the fault workloads
//! of the Möbius VMM live in `crate::scenarios`.
use crate::arch::x86_64::{cpu, trap};
use crate::println;
use mobius_shared::cmdline;
use mobius_shared::exit::GuestStatus;

mod faults;
mod flood;
mod flood_disk;

/// An address in the user half that no area covers: reading it is an
/// unresolvable kernel-mode page fault.
const UNMAPPED: u64 = 0x0000_4000_0000_0000;

/// Run workload `name`; `line` carries its parameters (`key=value`).
pub fn run(name: &str, line: &str) -> GuestStatus {
    match name {
        "hello" => {
            println!("Hello from the Möbius guest");
            GuestStatus::Success
        }
        "exit" => exit_with(line),
        "fault" => {
            println!("workload fault: reading unmapped address {UNMAPPED:#x}");
            // SAFETY: deliberately faults; the trap handler reports and exits.
            let v = unsafe { (UNMAPPED as *const u8).read_volatile() };
            println!("read {v} from an unmapped address?");
            GuestStatus::Failure
        }
        "spin" => loop {
            core::hint::spin_loop();
        },
        "triple-fault" => {
            trap::load_empty_idt();
            // SAFETY: deliberately faults with no IDT: the CPU shuts down.
            unsafe { core::arch::asm!("ud2") };
            GuestStatus::Failure
        }
        other if other.starts_with("flood-") => flood_for(other, line),
        other => faults::run(other, line).unwrap_or_else(|| {
            println!("mobius-guest: unknown workload '{other}' (see `mobius list`)");
            GuestStatus::BadCommandLine
        }),
    }
}

/// A flood workload for its `ms=` (see `flood`).
fn flood_for(name: &str, line: &str) -> GuestStatus {
    let Some(w) = mobius_shared::workloads::find(name) else {
        return GuestStatus::BadCommandLine;
    };
    let ms = match w.param(line, "ms") {
        Ok(ms) => ms,
        Err(e) => {
            println!("mobius-guest: workload {name}: {e}");
            return GuestStatus::BadCommandLine;
        }
    };
    match flood::run(name, ms) {
        Some(n) => {
            println!("workload {name}: {n} in {ms} ms");
            GuestStatus::Success
        }
        None => GuestStatus::Failure,
    }
}

/// `workload=exit code=N`: exit with status N.
fn exit_with(line: &str) -> GuestStatus {
    match cmdline::get(line, "code").map(str::parse::<u32>) {
        Some(Ok(code)) => cpu::exit(code),
        _ => {
            println!("mobius-guest: workload exit needs code=<number>");
            GuestStatus::BadCommandLine
        }
    }
}
