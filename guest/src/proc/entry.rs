//! What happens when ring 3 traps: system calls go to the table, page
//! faults to the VMM for the current process, the timer to the scheduler,
//! and anything else (or a fault the VMM cannot resolve) raises the signal
//! Linux would send: its handler runs when the program has one (and does
//! not block it), else the process ends, reported on standard error.
use alloc::format;

use super::process::{self, ExitStatus};
use super::signal::{self, FaultInfo, SI_KERNEL};
use super::task;
use crate::arch::x86_64::trap::{self, TrapFrame, SPURIOUS_VECTOR, SYSCALL_VECTOR, TIMER_VECTOR};
use crate::arch::x86_64::{apic, cpu};
use crate::console::{write_program_output, Stream};
use crate::mm::fault;
use crate::mm::vmm::{Access, FaultOutcome};

const SIGILL: u8 = 4;
const SIGTRAP: u8 = 5;
const SIGBUS: u8 = 7;
const SIGFPE: u8 = 8;
const SIGSEGV: u8 = 11;
const SIGKILL: u8 = 9;

/// Install the hooks: every trap from ring 3, and the timer in ring 0.
pub fn install() {
    trap::set_user_hook(user_trap);
    trap::set_timer_hook(|_| apic::eoi());
    trap::set_device_hook(crate::dev::virtio_blk::on_interrupt);
    crate::mm::fault::set_read_waits(crate::mm::fault::ReadWaits {
        wait: wait_for_read,
        woken: reads_done,
    });
}

/// A fault found its page being read by another thread: sleep until a
/// read completes, 10 ms at most (a completion between the fault's check
/// and this sleep is not missed for longer).
fn wait_for_read() {
    let deadline = cpu::rdtsc().saturating_add(crate::arch::x86_64::tsc::ns_to_cycles(10_000_000));
    let _ = task::block(task::Wait::PageRead, Some(deadline));
}

/// A page read completed: every thread waiting for one looks again.
fn reads_done() {
    task::wake_page_readers();
}

fn user_trap(frame: &mut TrapFrame) {
    match frame.vector {
        SYSCALL_VECTOR => crate::syscall::dispatch(frame),
        14 => page_fault(frame),
        TIMER_VECTOR => task::on_timer(),
        SPURIOUS_VECTOR => {}
        v if trap::is_device_vector(v) => trap::device_interrupt(v),
        0 => raise(frame, SIGFPE, FPE_INTDIV, frame.rip, "divide error"),
        1 | 3 => raise(frame, SIGTRAP, SI_KERNEL, 0, "breakpoint"),
        6 => raise(frame, SIGILL, ILL_ILLOPN, frame.rip, "invalid opcode"),
        16 | 19 => raise(
            frame,
            SIGFPE,
            SI_KERNEL,
            frame.rip,
            "floating-point exception",
        ),
        17 => raise(frame, SIGBUS, BUS_ADRALN, frame.rip, "alignment check"),
        13 => raise(frame, SIGSEGV, SI_KERNEL, 0, "general protection fault"),
        _ => raise(
            frame,
            SIGSEGV,
            SI_KERNEL,
            0,
            trap::vector_name(frame.vector),
        ),
    }
    // Fault records go to the host on the way back to ring 3.
    crate::recorder::safe_point();
    // A thread whose process is being ended (by `exit_group` of another
    // thread, a `kill`, a deadlock) leaves here instead of returning.
    process::exit_if_killed();
    super::signal::deliver(frame);
}

fn page_fault(frame: &mut TrapFrame) {
    let cr2 = cpu::cr2();
    task::note_fault();
    // The faulting process's space is the one in CR3 (no table lock on
    // the fault path).
    let space = crate::mm::kernel::current_space();
    let e = frame.error_code;
    let access = Access {
        present: e & 1 != 0,
        write: e & 2 != 0,
        user: true,
        instruction: e & 16 != 0,
    };
    if crate::heap::pressure() == crate::heap::Pressure::Critical {
        // A fault may need kernel memory (page records, page tables'
        // bookkeeping) that the heap no longer has to spare.
        kill(frame, SIGKILL, &format!("out of kernel memory at {cr2:#x}"));
    }
    crate::mm::record::set_trap_rip(frame.rip);
    let outcome = fault::handle(crate::kvmm::vmm(), space, cr2, access);
    if outcome.is_resolved() {
        return;
    }
    let what = match (outcome, access.write, access.instruction) {
        (FaultOutcome::Protection, true, _) => "write to read-only page",
        (FaultOutcome::Protection, _, true) => "execute of no-execute page",
        (FaultOutcome::Protection, _, _) => "access to kernel page",
        (FaultOutcome::OutOfFrames, _, _) => "out of memory at",
        (FaultOutcome::ReadFailed, _, _) => "read of page failed at",
        (_, true, _) => "write to unmapped address",
        (_, _, true) => "execute at unmapped address",
        _ => "read of unmapped address",
    };
    let (signal, code) = match outcome {
        FaultOutcome::ReadFailed => (SIGBUS, BUS_ADRERR),
        FaultOutcome::Protection => (SIGSEGV, SEGV_ACCERR),
        _ => (SIGSEGV, SEGV_MAPERR),
    };
    let text = format!("{what} {cr2:#x}");
    if outcome == FaultOutcome::OutOfFrames {
        kill(frame, signal, &text);
    }
    let fault = FaultInfo {
        code,
        addr: cr2,
        trapno: 14,
        err: e,
    };
    if !signal::deliver_fault(frame, signal, fault) {
        kill(frame, signal, &text);
    }
}

/// `si_code`s of faults.
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const BUS_ADRALN: i32 = 1;
const BUS_ADRERR: i32 = 2;
const FPE_INTDIV: i32 = 1;
const ILL_ILLOPN: i32 = 2;

/// A trap raised `sig` (`code`, address `addr`): run the program's
/// handler, or end the process for `why`.
fn raise(frame: &mut TrapFrame, sig: u8, code: i32, addr: u64, why: &str) {
    let fault = FaultInfo {
        code,
        addr,
        trapno: frame.vector,
        err: frame.error_code,
    };
    if !signal::deliver_fault(frame, sig, fault) {
        kill(frame, sig, why);
    }
}

/// End the current process for `why` with `signal`, reported on stderr the
/// way the example reads:
/// `mobius: process 3 (/prog) killed: write to read-only page 0x… at rip 0x… (SIGSEGV)`.
pub fn kill(frame: &TrapFrame, signal: u8, why: &str) -> ! {
    let (pid, name) = process::with_current(|p| (p.pid, p.name.clone())).unwrap_or_default();
    let line = format!(
        "mobius: process {pid} ({name}) killed: {why} at rip {:#x} ({})\n",
        frame.rip,
        signal_name(signal)
    );
    write_program_output(Stream::Err, line.as_bytes());
    process::exit_current(ExitStatus::Signal(signal))
}

fn signal_name(signal: u8) -> &'static str {
    match signal {
        SIGILL => "SIGILL",
        SIGTRAP => "SIGTRAP",
        SIGBUS => "SIGBUS",
        SIGFPE => "SIGFPE",
        SIGSEGV => "SIGSEGV",
        SIGKILL => "SIGKILL",
        _ => "signal",
    }
}
