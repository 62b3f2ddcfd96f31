//! Signal handlers: a signal sent to a process whose action is a handler
//! is queued, and delivered on the way back to ring 3 of one of its
//! threads that does not block it: the kernel builds Linux's x86-64
//! `rt_sigframe` on the user stack (the return address is the action's
//! `sa_restorer`, then the `ucontext` with the interrupted registers and
//! mask, then the `siginfo`), and `rt_sigreturn` puts everything back.
//!
//! A fault in ring 3 (page fault, divide error, invalid opcode, ...) runs
//! the handler of its signal at once ([`deliver_fault`]) with `si_code`
//! and `si_addr` as Linux fills them; with no handler, or with the signal
//! blocked (a fault inside its own handler), the process is killed.
//! Handlers nest: a signal the running handler does not block is
//! delivered on top of it. `SA_ONSTACK` handlers run on the thread's
//! alternate stack (`sigaltstack`). The interrupted code's vector
//! registers are kept by the kernel (`arch::fpu`, under the frame's
//! address), not in the frame (`fpstate` is 0). A blocking call
//! interrupted by a signal returns `EINTR`, or is made again after the
//! handler with `SA_RESTART` (not the calls Linux never restarts: sleeps,
//! `poll`, `pause`).
use core::sync::atomic::{AtomicUsize, Ordering};

use super::process::{self, ExitStatus, SigAction, SIG_IGN};
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
/// The signal of an expired `ITIMER_REAL` timer.
pub const SIGALRM: u8 = 14;
const SIGSTOP: u8 = 19;
/// Signals no mask can block.
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
/// `syscall` is two bytes (`0f 05`): going back over it makes the call again.
const SYSCALL_LEN: u64 = 2;
const SYS_RT_SIGRETURN: u64 = 15;
/// `sizeof(struct ucontext)` (flags, link, stack, sigcontext, mask).
const UCONTEXT_LEN: usize = 8 + 8 + 24 + 256 + 8;
const SIGINFO_LEN: usize = 128;
/// The whole frame: return address, ucontext, siginfo.
const FRAME_LEN: usize = 8 + UCONTEXT_LEN + SIGINFO_LEN;
/// Offset of the `stack_t` in the ucontext.
const UC_STACK: usize = 16;
/// Offset of the sigcontext in the ucontext.
const MCONTEXT: usize = 40;
/// Offset of the mask in the ucontext.
const SIGMASK: usize = MCONTEXT + 256;
/// The red zone below a stack pointer that a handler must not touch.
const RED_ZONE: u64 = 128;

/// `sigaltstack` flags.
const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
const SS_AUTODISARM: u32 = 1 << 31;
/// Smallest alternate stack (`MINSIGSTKSZ`).
const MINSIGSTKSZ: u64 = 2048;

/// `si_code` of a signal sent by `kill`, or by the kernel.
const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;

fn bit(sig: u8) -> u64 {
    1u64 << (sig - 1)
}

/// A thread's alternate signal stack (`stack_t`); disabled while `size`
/// is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    /// `SS_AUTODISARM`, if asked for.
    pub flags: u32,
}

impl AltStack {
    fn enabled(&self) -> bool {
        self.size != 0
    }

    /// Whether `sp` lies on it.
    fn holds(&self, sp: u64) -> bool {
        self.enabled() && sp.wrapping_sub(self.sp) < self.size
    }

    /// `ss_flags` as `sigaltstack` reports it to code running at `sp`.
    fn reported_flags(&self, sp: u64) -> u32 {
        if !self.enabled() {
            SS_DISABLE
        } else if self.holds(sp) {
            SS_ONSTACK | self.flags
        } else {
            self.flags
        }
    }

    /// The `stack_t` bytes (sp, flags, size) for code running at `sp`.
    fn to_bytes(self, sp: u64) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.sp.to_le_bytes());
        b[8..12].copy_from_slice(&self.reported_flags(sp).to_le_bytes());
        b[16..].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    /// A new stack from `stack_t` bytes, checked as Linux does.
    fn from_bytes(b: &[u8; 24]) -> Result<AltStack, i64> {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        let flags = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        let mode = flags & !SS_AUTODISARM;
        if mode == SS_DISABLE {
            return Ok(AltStack::default());
        }
        if mode != 0 && mode != SS_ONSTACK {
            return Err(-crate::syscall::EINVAL);
        }
        let (sp, size) = (word(0), word(16));
        if size < MINSIGSTKSZ {
            return Err(-crate::syscall::ENOMEM);
        }
        Ok(AltStack {
            sp,
            size,
            flags: flags & SS_AUTODISARM,
        })
    }
}

/// What the kernel knows of a fault that raised a signal (the
/// sigcontext's `err`, `trapno` and `cr2`, and the siginfo).
#[derive(Debug, Clone, Copy)]
pub struct FaultInfo {
    pub code: i32,
    pub addr: u64,
    pub trapno: u64,
    pub err: u64,
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

/// Send `sig` from the kernel to `pid` (an expired timer): its handler
/// runs, or nothing happens when it is ignored, or the process ends.
pub fn send_locked(t: &mut task::Table, pid: task::Pid, sig: u8) {
    let Some(p) = t.processes.get(&pid) else {
        return;
    };
    match p.signal_disposition(sig) {
        SIG_IGN => {}
        0 if default_ignored(sig) => {}
        0 => process::kill_locked(t, pid, ExitStatus::Signal(sig)),
        _ => queue_locked(t, pid, sig),
    }
}

/// Signals whose default action is to do nothing.
fn default_ignored(sig: u8) -> bool {
    matches!(sig, 17 | 18 | 23 | 28)
}

/// What delivering a signal to the running thread needs from the table.
#[derive(Clone, Copy)]
struct Target {
    sig: u8,
    action: SigAction,
    blocked: u64,
    alt: AltStack,
}

/// On the way back to ring 3: deliver one deliverable signal, if any.
pub fn deliver(frame: &mut TrapFrame) {
    if QUEUED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Some(target) = take_pending() else {
        return;
    };
    let sig = target.sig;
    if target.action.handler <= SIG_IGN {
        // The action changed since it was queued: ignore or the default.
        if target.action.handler == 0 && !default_ignored(sig) {
            process::exit_current(ExitStatus::Signal(sig));
        }
        return;
    }
    // SA_RESTART: a system call this signal cut short (EINTR) is made again
    // when the handler returns (the saved registers go back to it).
    let eintr = -crate::syscall::EINTR;
    if target.action.flags & SA_RESTART != 0
        && frame.vector == crate::arch::x86_64::trap::SYSCALL_VECTOR
        && frame.rax as i64 == eintr
        && restartable(frame.error_code)
    {
        frame.rax = frame.error_code;
        frame.rip = frame.rip.wrapping_sub(SYSCALL_LEN);
    }
    let info = siginfo(sig, SI_USER, 0);
    if run_handler(frame, &target, &info, None).is_err() {
        process::exit_current(ExitStatus::Signal(SIGSEGV));
    }
}

/// Whether system call `nr`, cut short by a handler, may be made again
/// (`SA_RESTART`): not `rt_sigreturn` itself, and not the calls Linux
/// answers `EINTR` whatever the handler asks (sleeps, `poll`, `select`,
/// `pause`, `sigsuspend`, `epoll_wait`).
fn restartable(nr: u64) -> bool {
    !matches!(
        nr,
        SYS_RT_SIGRETURN | 7 | 23 | 34 | 35 | 130 | 230 | 232 | 270 | 271 | 281
    )
}

/// Take the lowest pending signal the running thread does not block.
fn take_pending() -> Option<Target> {
    let mut t = task::table();
    let tid = t.current_tid()?;
    let th = t.threads.get(&tid)?;
    let (blocked, alt) = (th.blocked, th.alt_stack);
    let p = t.current_process()?;
    let ready = p.pending & !blocked;
    if ready == 0 {
        return None;
    }
    let sig = ready.trailing_zeros() as u8 + 1;
    p.pending &= !bit(sig);
    QUEUED.fetch_sub(1, Ordering::Relaxed);
    let action = take_action(p, sig);
    Some(Target {
        sig,
        action,
        blocked,
        alt,
    })
}

/// The action for `sig` of process `p` (reset to the default afterwards
/// with `SA_RESETHAND`).
fn take_action(p: &mut process::Process, sig: u8) -> SigAction {
    let i = usize::from(sig) - 1;
    let action = p.sig_actions[i];
    if action.flags & SA_RESETHAND != 0 && action.handler > SIG_IGN {
        p.sig_actions[i] = SigAction::default();
    }
    action
}

/// A fault in ring 3 raised `sig`: run its handler now. `false` when the
/// process must be killed instead (no handler, the signal blocked or
/// ignored, or no room for the frame).
pub fn deliver_fault(frame: &mut TrapFrame, sig: u8, fault: FaultInfo) -> bool {
    let target = {
        let mut t = task::table();
        let Some(tid) = t.current_tid() else {
            return false;
        };
        let Some(th) = t.threads.get(&tid) else {
            return false;
        };
        let (blocked, alt) = (th.blocked, th.alt_stack);
        let Some(p) = t.current_process() else {
            return false;
        };
        let handler = p.signal_disposition(sig);
        if handler <= SIG_IGN || blocked & bit(sig) != 0 {
            return false;
        }
        let action = take_action(p, sig);
        Target {
            sig,
            action,
            blocked,
            alt,
        }
    };
    let info = siginfo(sig, fault.code, fault.addr);
    run_handler(frame, &target, &info, Some(fault)).is_ok()
}

/// A `siginfo_t`: number, code, and the address (`si_addr`, or 0).
fn siginfo(sig: u8, code: i32, addr: u64) -> [u8; SIGINFO_LEN] {
    let mut b = [0u8; SIGINFO_LEN];
    b[..4].copy_from_slice(&i32::from(sig).to_le_bytes());
    b[8..12].copy_from_slice(&code.to_le_bytes());
    b[16..24].copy_from_slice(&addr.to_le_bytes());
    b
}

/// Where the frame goes: below the red zone of the interrupted stack, or
/// at the top of the alternate stack for an `SA_ONSTACK` handler not
/// already on it; 16-aligned, then the return address slot, as if the
/// handler had been called. `None` when it would not fit the alternate
/// stack (Linux then kills with SIGSEGV).
fn frame_address(rsp: u64, action: &SigAction, alt: &AltStack) -> Option<(u64, bool)> {
    let on_alt = alt.holds(rsp);
    let switch = action.flags & SA_ONSTACK != 0 && alt.enabled() && !on_alt;
    let top = if switch {
        alt.sp.wrapping_add(alt.size)
    } else {
        rsp.wrapping_sub(RED_ZONE)
    };
    let sp = (top.wrapping_sub(FRAME_LEN as u64) & !15).wrapping_sub(8);
    let fits = !(switch || on_alt) || alt.holds(sp);
    fits.then_some((sp, switch))
}

/// Build the `rt_sigframe` and point `frame` at the handler; the thread
/// then blocks the action's mask (and the signal, unless `SA_NODEFER`).
fn run_handler(
    frame: &mut TrapFrame,
    target: &Target,
    info: &[u8; SIGINFO_LEN],
    fault: Option<FaultInfo>,
) -> Result<(), uaccess::BadAddress> {
    let (sp, switched) =
        frame_address(frame.rsp, &target.action, &target.alt).ok_or(uaccess::BadAddress)?;
    let mut buf = [0u8; FRAME_LEN];
    put(&mut buf, 0, target.action.restorer);
    let uc = 8;
    buf[uc + UC_STACK..uc + UC_STACK + 24].copy_from_slice(&target.alt.to_bytes(frame.rsp));
    write_mcontext(
        &mut buf[uc + MCONTEXT..uc + SIGMASK],
        frame,
        target.blocked,
        fault,
    );
    put(&mut buf, uc + SIGMASK, target.blocked);
    let at_info = 8 + UCONTEXT_LEN;
    buf[at_info..].copy_from_slice(info);
    let space = crate::mm::kernel::current_space();
    uaccess::copy_to_user(vmm(), space, sp, &buf)?;
    {
        let mut t = task::table();
        let used: alloc::collections::BTreeSet<u16> =
            t.threads.values().map(|th| th.fpu_slot()).collect();
        let tid = t.current_tid();
        if let Some(th) = tid.and_then(|tid| t.threads.get_mut(&tid)) {
            fpu::save_for_signal(th.fpu_slot(), sp + uc as u64, &|s| used.contains(&s));
            let own = if target.action.flags & SA_NODEFER != 0 {
                0
            } else {
                bit(target.sig)
            };
            th.blocked = (target.blocked | target.action.mask | own) & !UNBLOCKABLE;
            if switched && target.alt.flags & SS_AUTODISARM != 0 {
                th.alt_stack = AltStack::default();
            }
        }
    }
    frame.rip = target.action.handler;
    frame.rsp = sp;
    frame.rdi = u64::from(target.sig);
    frame.rsi = sp + at_info as u64;
    frame.rdx = sp + uc as u64;
    frame.rax = 0;
    // DF and TF clear in the handler, as Linux does.
    frame.rflags = user::user_flags(frame.rflags & !0x500);
    Ok(())
}

fn put(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The sigcontext (256 bytes): registers, segments, `err`, `trapno`,
/// `oldmask`, `cr2`; `fpstate` 0.
fn write_mcontext(mc: &mut [u8], frame: &TrapFrame, blocked: u64, fault: Option<FaultInfo>) {
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
        put(mc, 8 * i, *v);
    }
    // cs, gs, fs, ss (u16 each).
    put(mc, 144, frame.cs | (frame.ss << 48));
    if let Some(f) = fault {
        put(mc, 152, f.err);
        put(mc, 160, f.trapno);
        put(mc, 176, f.addr);
    }
    put(mc, 168, blocked);
}

/// `rt_sigreturn()`: the registers, mask and vector state the handler
/// interrupted. The frame's `ucontext` is at the stack pointer (the
/// handler's `ret` took the return address).
pub fn sigreturn(frame: &mut TrapFrame) -> i64 {
    let space = crate::mm::kernel::current_space();
    let at = frame.rsp;
    let mut uc = [0u8; UCONTEXT_LEN];
    if uaccess::copy_from_user(vmm(), space, at, &mut uc).is_err() {
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
    let mut stack = [0u8; 24];
    stack.copy_from_slice(&uc[UC_STACK..UC_STACK + 24]);
    let mut t = task::table();
    let tid = t.current_tid();
    if let Some(th) = tid.and_then(|tid| t.threads.get_mut(&tid)) {
        th.blocked = mask;
        // The alternate stack as it was (SS_AUTODISARM), unless the
        // interrupted code runs on the current one (Linux: EPERM, ignored).
        if !th.alt_stack.holds(frame.rsp) {
            if let Ok(alt) = AltStack::from_bytes(&stack) {
                th.alt_stack = alt;
            }
        }
        fpu::restore_after_signal(th.fpu_slot(), at);
    }
    frame.rax as i64
}

/// `sigaltstack(ss, old_ss)` for the running thread, whose user stack
/// pointer is `rsp`: `EPERM` when changing it while running on it,
/// `EINVAL` for bad flags, `ENOMEM` below `MINSIGSTKSZ`.
pub fn sigaltstack(rsp: u64, new: u64, old: u64) -> i64 {
    use crate::syscall::{EFAULT, EPERM, ESRCH};
    let space = crate::mm::kernel::current_space();
    let mut wanted = None;
    if new != 0 {
        let mut b = [0u8; 24];
        if uaccess::copy_from_user(vmm(), space, new, &mut b).is_err() {
            return -EFAULT;
        }
        match AltStack::from_bytes(&b) {
            Ok(a) => wanted = Some(a),
            Err(e) => return e,
        }
    }
    let current = {
        let mut t = task::table();
        let tid = t.current_tid();
        let Some(th) = tid.and_then(|tid| t.threads.get_mut(&tid)) else {
            return -ESRCH;
        };
        let current = th.alt_stack;
        if let Some(a) = wanted {
            if current.holds(rsp) {
                return -EPERM;
            }
            th.alt_stack = a;
        }
        current
    };
    if old != 0 && uaccess::copy_to_user(vmm(), space, old, &current.to_bytes(rsp)).is_err() {
        return -EFAULT;
    }
    0
}

/// `rt_sigsuspend(set, size)`: wait with the mask `set` until a signal
/// the mask lets through is pending, run its handler with the caller's
/// own mask saved in the frame (so `rt_sigreturn` puts it back), and
/// return `EINTR`.
pub fn sigsuspend(frame: &mut TrapFrame, set: u64, size: u64) -> i64 {
    use crate::syscall::{EFAULT, EINTR, EINVAL};
    if size != 8 {
        return -EINVAL;
    }
    let space = crate::mm::kernel::current_space();
    let Ok(mask) = uaccess::read_u64(vmm(), space, set) else {
        return -EFAULT;
    };
    let Ok(saved) = sigprocmask(2, Some(mask)) else {
        return -EINVAL;
    };
    while !deliverable_or_ending() {
        // Woken for a signal this mask blocks: wait on.
        let _ = task::block(task::Wait::Signal, None);
    }
    frame.rax = (-EINTR) as u64;
    let target = take_pending();
    let Some(mut target) = target.filter(|t| t.action.handler > SIG_IGN) else {
        let _ = sigprocmask(2, Some(saved));
        if let Some(t) = target {
            if !default_ignored(t.sig) {
                process::exit_current(ExitStatus::Signal(t.sig));
            }
        }
        return -EINTR;
    };
    target.blocked = saved;
    let info = siginfo(target.sig, SI_USER, 0);
    if run_handler(frame, &target, &info, None).is_err() {
        process::exit_current(ExitStatus::Signal(SIGSEGV));
    }
    -EINTR
}

/// Whether the running thread has a signal its mask lets through, or its
/// process is being ended.
fn deliverable_or_ending() -> bool {
    let mut t = task::table();
    let blocked = t
        .current_tid()
        .and_then(|tid| t.threads.get(&tid))
        .map_or(0, |th| th.blocked);
    t.current_process()
        .is_none_or(|p| p.killed.is_some() || p.pending & !blocked != 0)
}

/// `rt_sigpending(set, size)`: the signals sent to the process that the
/// running thread blocks.
pub fn sigpending(set: u64, size: u64) -> i64 {
    use crate::syscall::{EFAULT, EINVAL, ESRCH};
    if size != 8 {
        return -EINVAL;
    }
    let pending = {
        let mut t = task::table();
        let blocked = t
            .current_tid()
            .and_then(|tid| t.threads.get(&tid))
            .map_or(0, |th| th.blocked);
        match t.current_process() {
            Some(p) => p.pending & blocked,
            None => return -ESRCH,
        }
    };
    let space = crate::mm::kernel::current_space();
    match uaccess::write_u64(vmm(), space, set, pending) {
        Ok(()) => 0,
        Err(_) => -EFAULT,
    }
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
