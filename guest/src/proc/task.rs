//! Processes and threads in the running kernel: the table, the run queue,
//! starting, switching, and ending them (Möbius `process_t` / `thread_t`).
//!
//! Every thread has its own kernel stack; a trap from ring 3 lands on it
//! (TSS rsp0) and the switch between threads is a switch of kernel stacks
//! ([`crate::arch::x86_64::user::switch`]). The boot context is the idle
//! loop ([`run_until_done`]): it runs whatever is runnable and halts with
//! interrupts on when nothing is. The kernel is not preemptible; the timer
//! preempts ring 3 only, and is armed only while two threads want the CPU.
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use spin::Mutex;

use crate::arch::x86_64::trap::TrapFrame;
use crate::arch::x86_64::user::{self, FpuState, KernelStack};
use crate::arch::x86_64::{apic, cpu};
use crate::fs::fd::FdTable;
use crate::mm::vmm::{SpaceId, KERNEL_SPACE};

/// Process id.
pub type Pid = u32;
/// Thread id.
pub type Tid = u32;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(u8),
    /// Killed by signal `n`.
    Signal(u8),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128 + signal.
    pub fn shell_status(self) -> u32 {
        match self {
            ExitStatus::Code(c) => u32::from(c),
            ExitStatus::Signal(s) => 128 + u32::from(s),
        }
    }
}

/// A process: an address space, descriptors, and its threads.
pub struct Process {
    pub pid: Pid,
    pub parent: Pid,
    pub space: SpaceId,
    /// The path it runs (for reports).
    pub name: String,
    pub fds: FdTable,
    /// Program break: where the heap starts, where it ends now, and the
    /// page-rounded end of what is mapped for it.
    pub brk_start: u64,
    pub brk: u64,
    pub brk_mapped: u64,
}

/// A thread's saved context; boxed so its address stays put while the
/// table changes (the switch writes the stack pointer through it).
struct Context {
    rsp: u64,
    fpu: FpuState,
}

/// A thread of a process.
struct Thread {
    pid: Pid,
    stack: Box<KernelStack>,
    context: Box<Context>,
    fs_base: u64,
}

/// Everything the scheduler knows.
struct Table {
    processes: BTreeMap<Pid, Process>,
    threads: BTreeMap<Tid, Thread>,
    run_queue: VecDeque<Tid>,
    current: Option<Tid>,
    next_id: u32,
    /// Stacks of threads that ended, freed from the idle loop (a thread
    /// cannot free the stack it runs on).
    dead_stacks: Vec<Box<KernelStack>>,
    /// The first process's status, when it has ended.
    first_exit: Option<ExitStatus>,
    first_pid: Option<Pid>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    processes: BTreeMap::new(),
    threads: BTreeMap::new(),
    run_queue: VecDeque::new(),
    current: None,
    next_id: 1,
    dead_stacks: Vec::new(),
    first_exit: None,
    first_pid: None,
});

/// The idle context's saved stack pointer.
static mut IDLE_RSP: u64 = 0;
/// Where a dying thread's last stack pointer goes (never switched back to).
static mut DISCARD_RSP: u64 = 0;

/// Time slice of a thread while others are waiting: 10 ms of APIC timer
/// ticks at the 1 GHz / 16 clock KVM's APIC runs (62.5 M/s).
const SLICE_TICKS: u32 = 625_000;

/// Start a process running `frame` in `space` (already loaded). Returns
/// its pid.
pub fn spawn(space: SpaceId, name: String, frame: TrapFrame, brk: u64) -> Pid {
    let mut t = TABLE.lock();
    let pid = t.next_id;
    t.next_id += 1;
    let mut stack = Box::new(KernelStack([0; user::KERNEL_STACK_SIZE]));
    let rsp = user::prepare_stack(&mut stack, &frame);
    let context = Box::new(Context {
        rsp,
        fpu: FpuState::initial(),
    });
    t.threads.insert(
        pid,
        Thread {
            pid,
            stack,
            context,
            fs_base: 0,
        },
    );
    let parent = t
        .current
        .and_then(|c| t.threads.get(&c))
        .map_or(0, |th| th.pid);
    t.processes.insert(
        pid,
        Process {
            pid,
            parent,
            space,
            name,
            fds: FdTable::with_console(),
            brk_start: brk,
            brk,
            brk_mapped: brk,
        },
    );
    if t.first_pid.is_none() {
        t.first_pid = Some(pid);
    }
    t.run_queue.push_back(pid);
    pid
}

/// Run `f` on the current process (none in the idle loop).
pub fn with_current<R>(f: impl FnOnce(&mut Process) -> R) -> Option<R> {
    let mut t = TABLE.lock();
    let tid = t.current?;
    let pid = t.threads.get(&tid)?.pid;
    t.processes.get_mut(&pid).map(f)
}

/// The current thread id and its process's pid and space.
pub fn current() -> Option<(Tid, Pid, SpaceId)> {
    let t = TABLE.lock();
    let tid = t.current?;
    let pid = t.threads.get(&tid)?.pid;
    let space = t.processes.get(&pid)?.space;
    Some((tid, pid, space))
}

/// Set the current thread's FS base (TLS).
pub fn set_fs_base(base: u64) {
    let mut t = TABLE.lock();
    if let Some(tid) = t.current {
        if let Some(th) = t.threads.get_mut(&tid) {
            th.fs_base = base;
        }
    }
    user::set_fs_base(base);
}

/// The idle loop: run threads until every process has ended; returns the
/// first process's exit status.
pub fn run_until_done() -> ExitStatus {
    apic::init();
    loop {
        let next = {
            let mut t = TABLE.lock();
            t.dead_stacks.clear();
            if t.processes.is_empty() {
                return t.first_exit.unwrap_or(ExitStatus::Code(0));
            }
            t.run_queue.pop_front()
        };
        match next {
            Some(tid) => {
                // SAFETY: interrupts are off in the kernel; IDLE_RSP is the
                // idle context's own slot.
                unsafe { switch_to(tid, &raw mut IDLE_RSP) };
            }
            None => {
                // Nothing runnable: wait for an interrupt with interrupts on.
                // SAFETY: sti; hlt; cli only waits.
                unsafe { core::arch::asm!("sti; hlt; cli", options(nomem, nostack)) };
            }
        }
    }
}

/// Make `tid` the running thread and switch to it, saving the running
/// context's stack pointer in `*save`.
///
/// # Safety
/// Interrupts off; `save` must stay valid until something switches back.
unsafe fn switch_to(tid: Tid, save: *mut u64) {
    let (next_rsp, space, root_fs) = {
        let mut t = TABLE.lock();
        let Some(th) = t.threads.get_mut(&tid) else {
            return;
        };
        let top = th.stack.top();
        let rsp = th.context.rsp;
        th.context.fpu.restore();
        let fs = th.fs_base;
        let pid = th.pid;
        t.current = Some(tid);
        let space = t.processes.get(&pid).map_or(KERNEL_SPACE, |p| p.space);
        let waiting = !t.run_queue.is_empty();
        user::set_kernel_stack(top);
        if waiting {
            apic::arm_oneshot(SLICE_TICKS);
        } else {
            apic::disarm();
        }
        (rsp, space, fs)
    };
    load_space(space);
    user::set_fs_base(root_fs);
    // SAFETY: the caller's conditions; `next_rsp` is the thread's saved
    // stack pointer.
    unsafe { user::switch(save, next_rsp) };
}

/// Load `space`'s root into CR3 (if it is not there already).
fn load_space(space: SpaceId) {
    let vmm = crate::kvmm::vmm();
    let root = vmm.lock().root(space);
    if let Ok(root) = root {
        if root != cpu::cr3() {
            crate::mm::kernel::switch_space(space, root);
        }
    }
}

/// Give the CPU to the next runnable thread, if any (timer preemption,
/// `sched_yield`). Called on the current thread's kernel stack.
pub fn yield_now() {
    let (next, save) = {
        let mut t = TABLE.lock();
        let Some(tid) = t.current else { return };
        let Some(next) = t.run_queue.pop_front() else {
            return;
        };
        t.run_queue.push_back(tid);
        let th = t.threads.get_mut(&tid).expect("current thread");
        th.context.fpu.save();
        let save: *mut u64 = &mut th.context.rsp;
        (next, save)
    };
    // SAFETY: `save` points into the thread's boxed context, which lives
    // until the thread is reaped (never while it is runnable).
    unsafe { switch_to(next, save) };
}

/// End the current process with `status`: tear down its address space,
/// record the status, and switch away for good.
pub fn exit_current(status: ExitStatus) -> ! {
    let space = {
        let mut t = TABLE.lock();
        let tid = t.current.take().expect("a current thread");
        let th = t.threads.remove(&tid).expect("current thread");
        t.dead_stacks.push(th.stack);
        let p = t.processes.remove(&th.pid).expect("its process");
        if t.first_pid == Some(p.pid) {
            t.first_exit = Some(status);
        }
        p.space
    };
    // The space may not be live in CR3 while it is destroyed.
    let vmm = crate::kvmm::vmm();
    let kernel_root = vmm.lock().root(KERNEL_SPACE);
    if let Ok(root) = kernel_root {
        crate::mm::kernel::switch_space(KERNEL_SPACE, root);
    }
    let _ = vmm.lock().destroy_space(space);
    apic::disarm();
    // SAFETY: interrupts are off; the idle context saved its stack pointer
    // when it switched to this thread (directly or through others); this
    // stack is freed by the idle loop, after the switch.
    unsafe { user::switch(&raw mut DISCARD_RSP, IDLE_RSP) };
    unreachable!("a dead thread was switched back to")
}
