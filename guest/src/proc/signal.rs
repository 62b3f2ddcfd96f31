//! Signal handlers: a signal sent to a process whose action is a handler
//! is queued, and delivered on the way back to ring 3 of one of its
//! threads that does not block it: the kernel builds Linux's x86-64
//! `rt_sigframe` on the user stack (the return address is the action's
//! `sa_restorer`, then the `ucontext` with the interrupted registers and
//! mask, then the `siginfo`), and `rt_sigreturn` puts everything back.
//!
//! One level: while a thread runs a handler no other is delivered to it
//! (the next waits for its `rt_sigreturn`). The interrupted code's vector
//! registers are kept by the kernel (`arch::fpu`'s signal slot), not in
//! the frame (`fpstate` is 0). A blocking call interrupted by a signal
//! returns `EINTR`, or is made again after the handler with `SA_RESTART`.
use core::sync::atomic::{AtomicUsize, Ordering};

use super::process::{self, ExitStatus, SIG_IGN};
use super::task;
use crate::arch::x86_64::trap::TrapFrame;
use crate::arch::x86_64::{fpu, user};
use crate::mm::kernel::vmm;
use crate::mm::uaccess;

/// Queued signals not yet delivered, over all processes: the return path
/// looks at the table only while this is non-zero.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

const SIGKILL: u8 = 9;
const SIGSEGV: u8 = 11;
const SIGSTOP: u8 = 19;
/// Signals no mask can block.
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESTART: u64 = 0x1000_0000;
/// `syscall` is two bytes (`0f 05`): going back over it makes the call again.
const SYSCALL_LEN: u64 = 2;
const SA_RESETHAND: u64 = 0x8000_0000;
/// `sizeof(struct ucontext)` (flags, link, stack, sigcontext, mask).
const UCONTEXT_LEN: usize = 8 + 8 + 24 + 256 + 8;
const SIGINFO_LEN: usize = 128;
/// Offset of the sigcontext in the ucontext.
const MCONTEXT: usize = 40;
/// Offset of the mask in the ucontext.
const SIGMASK: usize = MCONTEXT + 256;

fn bit(sig: u8) -> u64 {
    1u64 << (sig - 1)
}

/// Queue `sig` for process `pid` and interrupt its blocked threads (their
/// calls return `EINTR`, and the handler runs on their way out).
pub fn queue(pid: task::Pid, sig: u8) {
    queue_locked(&mut task::table(), pid, sig);
}

/// [`queue`] with the table already locked.
pub fn queue_locked(t: &mut task::Table, pid: task::Pid, sig: u8) {
    if let Some(p) = t.processes.get_mut(&pid) {
        if p.pending & bit(sig) == 0 {
            p.pending |= bit(sig);
            QUEUED.fetch_add(1, Ordering::Relaxed);
        }
        t.interrupt(pid);
    }
}

/// On the way back to ring 3: deliver one deliverable signal, if any.
pub fn deliver(frame: &mut TrapFrame) {
    if QUEUED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let picked = {
        let mut t = task::table();
        let Some(tid) = t.current_tid() else { return };
        let Some(th) = t.threads.get(&tid) else {
            return;
        };
        let (blocked, busy, slot) = (th.blocked, th.in_handler, th.fpu_slot());
        let saved = th.suspended_mask.unwrap_or(blocked);
        let Some(p) = t.current_process() else { return };
        let ready = p.pending & !blocked;
        if busy || ready == 0 {
            return;
        }
        let sig = ready.trailing_zeros() as u8 + 1;
        p.pending &= !bit(sig);
        QUEUED.fetch_sub(1, Ordering::Relaxed);
        let action = p.sig_actions[usize::from(sig) - 1];
        if action.flags & SA_RESETHAND != 0 {
            p.sig_actions[usize::from(sig) - 1] = Default::default();
        }
        (sig, action, blocked, saved, tid, slot)
    };
    let (sig, action, blocked, saved, tid, slot) = picked;
    if action.handler <= SIG_IGN {
        // The action changed since it was queued: ignore or the default.
        if action.handler == 0 && !matches!(sig, 17 | 18 | 23 | 28) {
            process::exit_current(ExitStatus::Signal(sig));
        }
        return;
    }
    // SA_RESTART: a system call this signal cut short (EINTR) is made again
    // when the handler returns (the saved registers go back to it).
    let eintr = -crate::syscall::EINTR;
    if action.flags & SA_RESTART != 0
        && frame.vector == crate::arch::x86_64::trap::SYSCALL_VECTOR
        && frame.rax as i64 == eintr
    {
        frame.rax = frame.error_code;
        frame.rip = frame.rip.wrapping_sub(SYSCALL_LEN);
    }
    if push_frame(frame, sig, action, saved, slot).is_err() {
        process::exit_current(ExitStatus::Signal(SIGSEGV));
    }
    let mut t = task::table();
    if let Some(th) = t.threads.get_mut(&tid) {
        let own = if action.flags & SA_NODEFER != 0 {
            0
        } else {
            bit(sig)
        };
        th.blocked = (blocked | action.mask | own) & !UNBLOCKABLE;
        th.in_handler = true;
        th.suspended_mask = None;
    }
}

/// Build the `rt_sigframe` below the interrupted stack and point `frame`
/// at the handler.
fn push_frame(
    frame: &mut TrapFrame,
    sig: u8,
    action: process::SigAction,
    blocked: u64,
    slot: u16,
) -> Result<(), uaccess::BadAddress> {
    let space = crate::mm::kernel::current_space();
    let size = (8 + UCONTEXT_LEN + SIGINFO_LEN) as u64;
    // Below the red zone; 16-aligned, then the return address slot, as if
    // the handler had been called.
    let sp = (frame.rsp.wrapping_sub(128).wrapping_sub(size) & !15).wrapping_sub(8);
    let mut buf = [0u8; 8 + UCONTEXT_LEN + SIGINFO_LEN];
    let put = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut buf, 0, action.restorer);
    let uc = 8;
    let mc = uc + MCONTEXT;
    let regs = [
        frame.r8,
        frame.r9,
        frame.r10,
        frame.r11,
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15,
        frame.rdi,
        frame.rsi,
        frame.rbp,
        frame.rbx,
        frame.rdx,
        frame.rax,
        frame.rcx,
        frame.rsp,
        frame.rip,
        frame.rflags,
    ];
    for (i, v) in regs.iter().enumerate() {
        put(&mut buf, mc + 8 * i, *v);
    }
    // cs, gs, fs, ss (u16 each).
    let segs = frame.cs | (frame.ss << 48);
    put(&mut buf, mc + 144, segs);
    put(&mut buf, mc + 176, blocked); // oldmask
    put(&mut buf, uc + SIGMASK, blocked);
    let info = 8 + UCONTEXT_LEN;
    buf[info..info + 4].copy_from_slice(&i32::from(sig).to_le_bytes());
    buf[info + 8..info + 12].copy_from_slice(&0i32.to_le_bytes()); // SI_USER
    uaccess::copy_to_user(vmm(), space, sp, &buf)?;
    fpu::save_for_signal(slot);
    frame.rip = action.handler;
    frame.rsp = sp;
    frame.rdi = u64::from(sig);
    frame.rsi = sp + info as u64;
    frame.rdx = sp + uc as u64;
    frame.rax = 0;
    // DF and TF clear in the handler, as Linux does.
    frame.rflags = user::user_flags(frame.rflags & !0x500);
    Ok(())
}

/// `rt_sigreturn()`: the registers, mask and vector state the handler
/// interrupted. The frame's `ucontext` is at the stack pointer (the
/// handler's `ret` took the return address).
/// `rt_sigsuspend(mask)`: wait with `mask` in place until a signal's
/// handler is to run (or the process ends); always `EINTR`. The mask in
/// force before goes into the handler's frame, so `rt_sigreturn` puts it
/// back.
pub fn sigsuspend(mask: u64) -> i64 {
    {
        let mut t = task::table();
        let Some(tid) = t.current_tid() else {
            return -crate::syscall::EINTR;
        };
        if let Some(th) = t.threads.get_mut(&tid) {
            th.suspended_mask = Some(th.blocked);
            th.blocked = mask & !UNBLOCKABLE;
        }
    }
    while task::block(task::Wait::Sleep, None) != task::Wake::Interrupted {}
    -crate::syscall::EINTR
}

pub fn sigreturn(frame: &mut TrapFrame) -> i64 {
    let space = crate::mm::kernel::current_space();
    let mut uc = [0u8; UCONTEXT_LEN];
    if uaccess::copy_from_user(vmm(), space, frame.rsp, &mut uc).is_err() {
        process::exit_current(ExitStatus::Signal(SIGSEGV));
    }
    let get = |at: usize| u64::from_le_bytes(uc[at..at + 8].try_into().unwrap_or_default());
    let r = |i: usize| get(MCONTEXT + 8 * i);
    frame.r8 = r(0);
    frame.r9 = r(1);
    frame.r10 = r(2);
    frame.r11 = r(3);
    frame.r12 = r(4);
    frame.r13 = r(5);
    frame.r14 = r(6);
    frame.r15 = r(7);
    frame.rdi = r(8);
    frame.rsi = r(9);
    frame.rbp = r(10);
    frame.rbx = r(11);
    frame.rdx = r(12);
    frame.rax = r(13);
    frame.rcx = r(14);
    frame.rsp = r(15);
    frame.rip = r(16);
    // Only the flags a program may set; CS and SS stay the user's.
    frame.rflags = user::user_flags(r(17));
    let mask = get(SIGMASK) & !UNBLOCKABLE;
    let slot = {
        let mut t = task::table();
        let tid = t.current_tid();
        match tid.and_then(|tid| t.threads.get_mut(&tid)) {
            Some(th) => {
                th.blocked = mask;
                th.in_handler = false;
                Some(th.fpu_slot())
            }
            None => None,
        }
    };
    if let Some(slot) = slot {
        fpu::restore_after_signal(slot);
    }
    frame.rax as i64
}

/// `rt_sigprocmask(how, set, oldset, size)` on the running thread.
pub fn sigprocmask(how: u64, set: Option<u64>) -> Result<u64, i64> {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    let mut t = task::table();
    let tid = t.current_tid().ok_or(-crate::syscall::ESRCH)?;
    let th = t.threads.get_mut(&tid).ok_or(-crate::syscall::ESRCH)?;
    let old = th.blocked;
    if let Some(set) = set {
        th.blocked = match how {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(-crate::syscall::EINVAL),
        } & !UNBLOCKABLE;
    }
    Ok(old)
}
