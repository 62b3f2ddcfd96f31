//! Threads and the scheduler (Möbius `thread_t`): the table every process
//! and thread lives in, the run queue, blocking and waking, sleeping, and
//! the idle loop.
//!
//! Every thread has its own kernel stack; a trap from ring 3 lands on it
//! (TSS rsp0) and the switch between threads is a switch of kernel stacks
//! ([`crate::arch::x86_64::user::switch`]). The boot context is the idle
//! loop ([`run_until_done`]): it runs whatever is runnable and halts with
//! interrupts on when nothing is. The kernel is not preemptible (interrupts
//! are off in ring 0); the APIC timer preempts ring 3, and is armed only
//! while another thread waits for the CPU or a sleeper's deadline nears.
//!
//! A thread that blocks ([`block`]) gives up the CPU inside its system call
//! and returns from [`block`] when woken ([`Table::wake`]), when its
//! deadline passes, or when its process is being ended: then it unwinds
//! with `EINTR` and ends itself on the way back to ring 3
//! ([`super::process::exit_if_killed`]), so that everything its kernel
//! stack holds is released the ordinary way.
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mobius_shared::procstats::{self, EnosysCount, ProcessBlock, ProcessRecord};
use spin::{Mutex, MutexGuard};

use super::process::Process;
use crate::arch::x86_64::trap::TrapFrame;
use crate::arch::x86_64::user::{self, FpuState, KernelStack};
use crate::arch::x86_64::{apic, cpu, fpu, tsc};
use crate::mm::vmm::SpaceId;

/// Process id.
pub type Pid = u32;
/// Thread id (one number space with process ids, as on Linux).
pub type Tid = u32;

/// What a blocked thread waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A child of its process ends (`wait4`).
    Child,
    /// The `vfork` child `pid` execs or ends.
    Vfork(Pid),
    /// The futex word at this user address of this space.
    Futex(SpaceId, u64),
    /// A change on the pipe with this id (data, room, an end closed).
    Pipe(usize),
    /// Any pipe changing (`poll`), or its deadline.
    Poll,
    /// Only its deadline (`nanosleep`).
    Sleep,
    /// A page another thread is reading in (any read's completion wakes
    /// it; it faults again and sees its own page).
    PageRead,
    /// A signal (`pause`): only an interruption ends it.
    Signal,
    /// A request completing on disk `n`, or its file system's lock
    /// freeing (`dev::virtio_blk`, `fs::ext4`).
    Disk(u8),
}

/// How [`block`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something it waited for happened (check again).
    Woken,
    /// Its deadline passed.
    TimedOut,
    /// Its process is ending: unwind with `EINTR`.
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Runnable,
    Running,
    Blocked(Wait),
}

/// A thread's saved context; boxed so its address stays put while the
/// table changes (the switch writes the stack pointer through it).
struct Context {
    rsp: u64,
    fpu: FpuState,
}

/// A thread of a process.
pub struct Thread {
    pub pid: Pid,
    /// Its slot for the host's extended-state port (see `arch::fpu`).
    slot: u16,
    stack: Box<KernelStack>,
    context: Box<Context>,
    pub fs_base: u64,
    state: State,
    /// TSC deadline of a sleep or timed wait.
    deadline: Option<u64>,
    /// Why it last left `Blocked`.
    wake: Wake,
    /// `CLONE_CHILD_CLEARTID` / `set_tid_address`: zeroed and woken at exit.
    pub clear_child_tid: u64,
    /// Signals this thread blocks (`rt_sigprocmask`).
    pub blocked: u64,
    /// Its alternate signal stack (`sigaltstack`).
    pub alt_stack: super::signal::AltStack,
}

impl Thread {
    /// Its extended-state slot (see `arch::fpu`).
    pub fn fpu_slot(&self) -> u16 {
        self.slot
    }
}

/// Every process and thread.
pub struct Table {
    pub processes: BTreeMap<Pid, Process>,
    pub threads: BTreeMap<Tid, Thread>,
    run_queue: VecDeque<Tid>,
    /// The threads blocked with a deadline, by deadline: the scheduler
    /// looks here instead of at every thread (each switch and timer tick
    /// would otherwise walk the whole table, in emulated ring 0). An entry
    /// whose thread was woken some other way stays until it runs again.
    sleepers: BTreeSet<(u64, Tid)>,
    current: Option<Tid>,
    next_id: u32,
    /// Stacks of threads that ended, freed later from a live stack (a
    /// thread cannot free the stack it runs on).
    dead_stacks: Vec<Box<KernelStack>>,
    /// The first process (the one the host started) and how it ended.
    pub first: Option<Pid>,
    pub first_exit: Option<super::process::ExitStatus>,
    /// TSC when the running thread got the CPU (CPU-time accounting).
    since: u64,
    /// Processes that have ended, for the final statistics.
    pub history: ProcessBlock,
    /// Distinct unimplemented system-call numbers and their counts.
    enosys: [EnosysCount; procstats::MAX_ENOSYS],
    n_enosys: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    processes: BTreeMap::new(),
    threads: BTreeMap::new(),
    run_queue: VecDeque::new(),
    sleepers: BTreeSet::new(),
    current: None,
    next_id: 1,
    dead_stacks: Vec::new(),
    first: None,
    first_exit: None,
    since: 0,
    history: ProcessBlock {
        syscalls: 0,
        enosys: 0,
        n_enosys: 0,
        enosys_numbers: [EnosysCount { nr: 0, count: 0 }; procstats::MAX_ENOSYS],
        n_records: 0,
        records: [EMPTY_RECORD; procstats::MAX_RECORDS],
    },
    enosys: [EnosysCount { nr: 0, count: 0 }; procstats::MAX_ENOSYS],
    n_enosys: 0,
});

const EMPTY_RECORD: ProcessRecord = ProcessRecord::EMPTY;

/// Whether any process has set an `ITIMER_REAL` timer in this run: until
/// then the scheduler does not look at the processes' timers at all.
static ALARMS_USED: AtomicBool = AtomicBool::new(false);

/// Note that a process set a timer ([`ALARMS_USED`]).
pub fn note_alarm_set() {
    ALARMS_USED.store(true, Ordering::Relaxed);
}

/// System calls, unimplemented ones, and ring-3 page faults of the running
/// thread not yet charged to its process: bumped on the hot paths without
/// the table lock, moved into the process at every switch ([`Table::account`]).
static PENDING_SYSCALLS: AtomicU64 = AtomicU64::new(0);
static PENDING_ENOSYS: AtomicU64 = AtomicU64::new(0);
static PENDING_FAULTS: AtomicU64 = AtomicU64::new(0);

/// Count one system call of the running thread.
pub fn note_syscall() {
    PENDING_SYSCALLS.fetch_add(1, Ordering::Relaxed);
}

/// Count one ring-3 page fault of the running thread.
pub fn note_fault() {
    PENDING_FAULTS.fetch_add(1, Ordering::Relaxed);
}

/// Count a call of unimplemented system call `nr` (`ENOSYS`).
pub fn note_enosys(nr: u64) {
    PENDING_ENOSYS.fetch_add(1, Ordering::Relaxed);
    let mut t = TABLE.lock();
    let nr = u32::try_from(nr).unwrap_or(u32::MAX);
    let n = t.n_enosys;
    if let Some(e) = t.enosys[..n].iter_mut().find(|e| e.nr == nr) {
        e.count = e.count.saturating_add(1);
    } else if n < procstats::MAX_ENOSYS {
        t.enosys[n] = EnosysCount { nr, count: 1 };
        t.n_enosys += 1;
    }
}

/// The idle context's saved stack pointer.
static mut IDLE_RSP: u64 = 0;
/// Where a dying thread's last stack pointer goes (never switched back to).
static mut DISCARD_RSP: u64 = 0;

/// Time slice of a thread while others are waiting: 10 ms.
const SLICE_NS: u64 = 10_000_000;
/// Most threads (and so kernel stacks, 16 KiB each) alive at once:
/// `clone` answers `EAGAIN` past it, so no program can take the kernel
/// heap with threads.
pub const MAX_THREADS: usize = 512;

/// Ids are below this (`/proc/sys/kernel/pid_max`, Linux's 64-bit
/// default); past it they start again at 2, skipping ids in use (at most
/// [`MAX_THREADS`] are, so the search ends).
pub const PID_MAX: u32 = 1 << 22;

/// Wake every thread waiting for a page read ([`Wait::PageRead`]), unless
/// the table is held by the caller itself (a kernel fault under the table
/// lock): those waiters' deadlines wake them instead.
pub fn wake_page_readers() {
    if let Some(mut t) = TABLE.try_lock() {
        t.wake(|w| *w == Wait::PageRead, usize::MAX);
    }
}

/// The table, locked. Never hold it across a switch, a user copy, or
/// anything that drops a descriptor (closing a pipe end wakes through it).
pub fn table() -> MutexGuard<'static, Table> {
    TABLE.lock()
}

impl Table {
    /// A new process or thread id.
    pub fn alloc_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = if id + 1 >= PID_MAX { 2 } else { id + 1 };
            if !self.threads.contains_key(&id) && !self.processes.contains_key(&id) {
                return id;
            }
        }
    }

    /// The running thread's id.
    pub fn current_tid(&self) -> Option<Tid> {
        self.current
    }

    /// The running thread's process id.
    pub fn current_pid(&self) -> Option<Pid> {
        Some(self.threads.get(&self.current?)?.pid)
    }

    /// The running thread's process.
    pub fn current_process(&mut self) -> Option<&mut Process> {
        let pid = self.current_pid()?;
        self.processes.get_mut(&pid)
    }

    /// Add a runnable thread of `pid` that enters ring 3 with `frame` and
    /// FS base `fs_base`; its vector registers are a copy of the running
    /// thread's (`inherit`) or the reset state. `None` past [`MAX_THREADS`].
    pub fn add_thread(
        &mut self,
        tid: Tid,
        pid: Pid,
        frame: &TrapFrame,
        inherit: bool,
        fs_base: u64,
    ) -> Option<Tid> {
        // Running on a live stack: the dead ones can go now.
        self.dead_stacks.clear();
        if self.threads.len() >= MAX_THREADS {
            return None;
        }
        let slot = self.free_slot()?;
        let from = if inherit {
            self.current
                .and_then(|c| self.threads.get(&c))
                .map(|t| t.slot)
        } else {
            None
        };
        let fpu = fpu::inherit(from, slot);
        let mut stack = KernelStack::new_boxed();
        let rsp = user::prepare_stack(&mut stack, frame);
        let context = Box::new(Context { rsp, fpu });
        let thread = Thread {
            slot,
            pid,
            stack,
            context,
            fs_base,
            state: State::Runnable,
            deadline: None,
            wake: Wake::Woken,
            clear_child_tid: 0,
            blocked: 0,
            alt_stack: super::signal::AltStack::default(),
        };
        self.threads.insert(tid, thread);
        let was_empty = self.run_queue.is_empty();
        self.run_queue.push_back(tid);
        self.start_slice_if_first(was_empty);
        Some(tid)
    }

    /// Take thread `tid` out of the table (it never runs again); its stack
    /// is freed later. Returns its `clear_child_tid` address.
    pub fn remove_thread(&mut self, tid: Tid) -> u64 {
        self.run_queue.retain(|t| *t != tid);
        if self.current == Some(tid) {
            self.current = None;
        }
        match self.threads.remove(&tid) {
            Some(th) => {
                if let Some(d) = th.deadline {
                    self.sleepers.remove(&(d, tid));
                }
                fpu::free(th.slot);
                fpu::free_signal(th.slot);
                self.dead_stacks.push(th.stack);
                th.clear_child_tid
            }
            None => 0,
        }
    }

    /// A slot no live thread uses (at most [`MAX_THREADS`] are live).
    fn free_slot(&self) -> Option<u16> {
        let used: alloc::collections::BTreeSet<u16> =
            self.threads.values().map(|t| t.slot).collect();
        (0..MAX_THREADS as u16).find(|s| !used.contains(s) && !fpu::lent(*s))
    }

    /// Make up to `max` threads blocked on a wait that `matches` runnable.
    /// Returns how many.
    pub fn wake(&mut self, matches: impl Fn(&Wait) -> bool, max: usize) -> usize {
        let was_empty = self.run_queue.is_empty();
        let mut n = 0;
        for (tid, th) in self.threads.iter_mut() {
            if n == max {
                break;
            }
            if let State::Blocked(w) = th.state {
                if matches(&w) {
                    th.state = State::Runnable;
                    th.wake = Wake::Woken;
                    self.run_queue.push_back(*tid);
                    n += 1;
                }
            }
        }
        self.start_slice_if_first(was_empty);
        n
    }

    /// Move up to `max` threads blocked on `from` to wait on `to` instead
    /// (`FUTEX_REQUEUE`). Returns how many.
    pub fn requeue(&mut self, from: Wait, to: Wait, max: usize) -> usize {
        let mut n = 0;
        for th in self.threads.values_mut() {
            if n == max {
                break;
            }
            if th.state == State::Blocked(from) {
                th.state = State::Blocked(to);
                n += 1;
            }
        }
        n
    }

    /// Interrupt every blocked thread of `pid` (its process is ending).
    pub fn interrupt(&mut self, pid: Pid) {
        let was_empty = self.run_queue.is_empty();
        for (tid, th) in self.threads.iter_mut() {
            if th.pid == pid && matches!(th.state, State::Blocked(_)) {
                th.state = State::Runnable;
                th.wake = Wake::Interrupted;
                self.run_queue.push_back(*tid);
            }
        }
        self.start_slice_if_first(was_empty);
    }

    /// Threads were queued while one runs and stays on the CPU (a wake-up
    /// from its system call, a new thread). If they are the first to wait
    /// (the queue `was_empty`), start the running thread's time slice now:
    /// the timer was set, or stopped, when nobody waited, and the running
    /// thread would otherwise keep the CPU until it blocks or ends.
    fn start_slice_if_first(&self, was_empty: bool) {
        if !was_empty || self.run_queue.is_empty() || self.current.is_none() {
            return;
        }
        let sleepers = self.sleepers.first().map(|&(d, _)| d);
        let earliest = sleepers.into_iter().chain(self.alarms()).min();
        match earliest {
            Some(d) => arm_until(d),
            None => apic::arm_oneshot(ns_to_ticks(SLICE_NS)),
        }
    }

    /// The TSC deadlines of the processes' `ITIMER_REAL` timers.
    fn alarms(&self) -> impl Iterator<Item = u64> + '_ {
        // Not a single step over the processes until a timer was ever set.
        let processes = ALARMS_USED
            .load(Ordering::Relaxed)
            .then(|| self.processes.values());
        processes
            .into_iter()
            .flatten()
            .filter_map(|p| p.alarm.map(|a| a.at))
    }

    /// Send SIGALRM to every process whose timer has expired (and set the
    /// next expiry of a periodic one).
    fn fire_alarms(&mut self, now: u64) {
        if !ALARMS_USED.load(Ordering::Relaxed) {
            return;
        }
        let mut expired = Vec::new();
        for p in self.processes.values_mut() {
            let Some(a) = p.alarm else { continue };
            if a.at > now {
                continue;
            }
            p.alarm = a.next(now);
            expired.push(p.pid);
        }
        for pid in expired {
            super::signal::send_locked(self, pid, super::signal::SIGALRM);
        }
    }

    /// Wake the sleepers whose deadline has passed and fire expired
    /// timers; returns the earliest deadline still pending.
    fn wake_expired(&mut self, now: u64) -> Option<u64> {
        self.fire_alarms(now);
        while let Some(&(d, tid)) = self.sleepers.first() {
            if d > now {
                break;
            }
            self.sleepers.pop_first();
            let Some(th) = self.threads.get_mut(&tid) else {
                continue;
            };
            if matches!(th.state, State::Blocked(_)) && th.deadline == Some(d) {
                th.state = State::Runnable;
                th.wake = Wake::TimedOut;
                th.deadline = None;
                self.run_queue.push_back(tid);
            }
        }
        let earliest = self.sleepers.first().map(|&(d, _)| d);
        self.alarms().chain(earliest).min()
    }

    /// Charge the running thread's process for the CPU since it got it,
    /// and for its system calls and faults since then.
    pub fn account(&mut self, now: u64) {
        let used = now.saturating_sub(self.since);
        self.since = now;
        let calls = PENDING_SYSCALLS.swap(0, Ordering::Relaxed);
        let enosys = PENDING_ENOSYS.swap(0, Ordering::Relaxed);
        let faults = PENDING_FAULTS.swap(0, Ordering::Relaxed);
        self.history.syscalls = self.history.syscalls.saturating_add(calls);
        self.history.enosys = self.history.enosys.saturating_add(enosys);
        if let Some(p) = self.current_process() {
            let s = &mut p.stats;
            s.cpu_cycles = s.cpu_cycles.saturating_add(used);
            s.syscalls = s.syscalls.saturating_add(calls);
            s.enosys = s.enosys.saturating_add(enosys);
            s.faults = s.faults.saturating_add(faults);
        }
    }

    /// Free the stacks of ended threads (call only from a live stack).
    pub fn free_dead_stacks(&mut self) {
        self.dead_stacks.clear();
    }

    /// Whether no thread can run and none sleeps: nothing will ever wake.
    fn stuck(&self) -> bool {
        self.run_queue.is_empty() && self.sleepers.is_empty() && self.alarms().next().is_none()
    }
}

/// The statistics of every process of the run (ended ones first, then
/// those still alive), or `None` when no program ran.
pub fn process_block() -> Option<ProcessBlock> {
    let mut t = TABLE.lock();
    t.account(cpu::rdtsc());
    if t.history.records().is_empty() && t.processes.is_empty() {
        return None;
    }
    let mut b = t.history.clone();
    for p in t.processes.values().filter(|p| p.exited.is_none()) {
        b.push(p.record());
    }
    b.n_enosys = t.n_enosys as u32;
    b.enosys_numbers = t.enosys;
    Some(b)
}

/// The running process's address space, from the one live in CR3 (no
/// table lock: the system-call paths ask for it on every call). `None`
/// outside a process.
pub fn current_space() -> Option<SpaceId> {
    let s = crate::mm::kernel::current_space();
    (s != crate::mm::vmm::KERNEL_SPACE).then_some(s)
}

/// The running thread's id, its process id and that process's space.
pub fn current() -> Option<(Tid, Pid, SpaceId)> {
    let mut t = TABLE.lock();
    let tid = t.current?;
    let p = t.current_process()?;
    Some((tid, p.pid, p.space))
}

/// Set the running thread's FS base (TLS).
pub fn set_fs_base(base: u64) {
    let mut t = TABLE.lock();
    if let Some(tid) = t.current {
        if let Some(th) = t.threads.get_mut(&tid) {
            th.fs_base = base;
        }
    }
    user::set_fs_base(base);
}

/// Set the running thread's `clear_child_tid` address.
pub fn set_clear_child_tid(addr: u64) {
    let mut t = TABLE.lock();
    if let Some(tid) = t.current {
        if let Some(th) = t.threads.get_mut(&tid) {
            th.clear_child_tid = addr;
        }
    }
}

/// The idle loop: run threads until every process has ended; returns the
/// first process's exit status. With nothing runnable it halts until the
/// next interrupt (the timer of the earliest sleeper); when nothing can
/// ever wake again it ends every process (`deadlock`).
pub fn run_until_done() -> super::process::ExitStatus {
    apic::init();
    loop {
        let next = {
            let mut t = TABLE.lock();
            t.dead_stacks.clear();
            if t.processes.is_empty() {
                return t.first_exit.unwrap_or(super::process::ExitStatus::Code(0));
            }
            let earliest = t.wake_expired(cpu::rdtsc());
            match t.run_queue.pop_front() {
                Some(tid) => Ok(tid),
                None if t.stuck() => Err(None),
                None => Err(earliest),
            }
        };
        match next {
            Ok(tid) => {
                // SAFETY: interrupts are off in the kernel; IDLE_RSP is the
                // idle context's own slot.
                unsafe { switch_to(tid, &raw mut IDLE_RSP) };
            }
            Err(Some(deadline)) => {
                arm_until(deadline);
                // Nothing runnable: zero a few free frames for the pool
                // (row 33), then wait for the timer with interrupts on.
                if let Some(vmm) = crate::mm::kernel::vmm_if_started() {
                    vmm.lock().zero_some(8);
                }
                // SAFETY: sti; hlt; cli only waits.
                unsafe { core::arch::asm!("sti; hlt; cli", options(nomem, nostack)) };
            }
            Err(None) => super::process::end_deadlock(),
        }
    }
}

/// Arm the timer to fire at TSC `deadline` (and at least every slice).
fn arm_until(deadline: u64) {
    let ns = tsc::cycles_to_ns(deadline.saturating_sub(cpu::rdtsc()));
    apic::arm_oneshot(ns_to_ticks(ns.min(SLICE_NS)));
}

/// APIC-timer ticks (bus clock 1 GHz / 16) in `ns`.
fn ns_to_ticks(ns: u64) -> u32 {
    u32::try_from(ns / 16).unwrap_or(u32::MAX).max(1)
}

/// Make `tid` the running thread and switch to it, saving the running
/// context's stack pointer in `*save`.
///
/// # Safety
/// Interrupts off; `save` must stay valid until something switches back.
unsafe fn switch_to(tid: Tid, save: *mut u64) {
    let (next_rsp, space, fs) = {
        let mut t = TABLE.lock();
        let now = cpu::rdtsc();
        t.account(now);
        let Some(th) = t.threads.get_mut(&tid) else {
            return;
        };
        th.state = State::Running;
        let top = th.stack.top();
        let rsp = th.context.rsp;
        fpu::restore(&th.context.fpu, th.slot);
        let fs = th.fs_base;
        let pid = th.pid;
        t.current = Some(tid);
        crate::mm::record::set_pid(pid);
        let space = t.processes.get(&pid).map(|p| p.space);
        user::set_kernel_stack(top);
        let earliest = t.wake_expired(now);
        if !t.run_queue.is_empty() {
            apic::arm_oneshot(ns_to_ticks(SLICE_NS));
        } else if let Some(d) = earliest {
            arm_until(d);
        } else {
            apic::disarm();
        }
        (rsp, space, fs)
    };
    if let Some(space) = space {
        crate::mm::kernel::load_space(space);
    }
    user::set_fs_base(fs);
    // SAFETY: the caller's conditions; `next_rsp` is the thread's saved
    // stack pointer.
    unsafe { user::switch(save, next_rsp) };
}

/// Save the running thread's FPU state and pick what runs next: the next
/// runnable thread, or the idle loop. Returns the save slot and target.
fn leave(t: &mut Table, tid: Tid) -> Option<(*mut u64, Option<Tid>)> {
    let th = t.threads.get_mut(&tid)?;
    fpu::save(&mut th.context.fpu, th.slot);
    let save: *mut u64 = &mut th.context.rsp;
    Some((save, t.run_queue.pop_front()))
}

/// Switch from the running thread (its context in `save`) to `next`, or
/// back to the idle loop.
///
/// # Safety
/// `save` points into the running thread's boxed context.
unsafe fn go(save: *mut u64, next: Option<Tid>) {
    match next {
        // SAFETY: the caller's conditions.
        Some(next) => unsafe { switch_to(next, save) },
        None => {
            let mut t = TABLE.lock();
            t.account(cpu::rdtsc());
            t.current = None;
            crate::mm::record::set_pid(0);
            drop(t);
            // SAFETY: the idle context saved IDLE_RSP when it switched to a
            // thread (this one or one that switched here directly) and
            // waits in `switch_to` for exactly this.
            unsafe { user::switch(save, IDLE_RSP) }
        }
    }
}

/// Give the CPU to the next runnable thread, if any (timer preemption,
/// `sched_yield`). Called on the running thread's kernel stack.
pub fn yield_now() {
    let (save, next) = {
        let mut t = TABLE.lock();
        let Some(tid) = t.current else { return };
        if t.run_queue.is_empty() {
            return;
        }
        let Some((save, next)) = leave(&mut t, tid) else {
            return;
        };
        t.run_queue.push_back(tid);
        if let Some(th) = t.threads.get_mut(&tid) {
            th.state = State::Runnable;
        }
        (save, next)
    };
    // SAFETY: `save` points into the thread's boxed context, which lives
    // until the thread is removed (never while it is runnable).
    unsafe { go(save, next) };
}

/// Timer interrupt from ring 3: wake expired sleepers, then let the next
/// runnable thread have the CPU.
pub fn on_timer() {
    apic::eoi();
    {
        let mut t = TABLE.lock();
        let earliest = t.wake_expired(cpu::rdtsc());
        if t.run_queue.is_empty() {
            // Nothing else to run: keep the timer going for the next
            // deadline (a sleeper, a process's timer), if any.
            if let Some(d) = earliest {
                arm_until(d);
            }
            return;
        }
    }
    yield_now();
}

/// A process's timer changed (`setitimer`, `alarm`): arm the APIC timer
/// for the earliest deadline (within the running slice).
pub fn rearm_timer() {
    let t = TABLE.lock();
    let earliest = t
        .sleepers
        .first()
        .map(|&(d, _)| d)
        .into_iter()
        .chain(t.alarms())
        .min();
    if let Some(d) = earliest {
        arm_until(d);
    } else if t.run_queue.is_empty() {
        apic::disarm();
    }
}

/// Block the running thread on `wait` until woken, until TSC `deadline`
/// passes, or until its process is ended. The caller checks its condition
/// again after [`Wake::Woken`] (wake-ups may be shared).
pub fn block(wait: Wait, deadline: Option<u64>) -> Wake {
    let (save, next) = {
        let mut t = TABLE.lock();
        let Some(tid) = t.current else {
            return Wake::Interrupted;
        };
        let blocked = t.threads.get(&tid).map_or(0, |th| th.blocked);
        if t.current_process()
            .is_none_or(|p| p.killed.is_some() || p.pending & !blocked != 0)
        {
            return Wake::Interrupted;
        }
        t.dead_stacks.clear();
        let Some((save, next)) = leave(&mut t, tid) else {
            return Wake::Interrupted;
        };
        if let Some(th) = t.threads.get_mut(&tid) {
            th.state = State::Blocked(wait);
            th.deadline = deadline;
        }
        if let Some(d) = deadline {
            t.sleepers.insert((d, tid));
        }
        (save, next)
    };
    // SAFETY: as in `yield_now`: a blocked thread is never removed without
    // being interrupted and run first.
    unsafe { go(save, next) };
    let mut t = TABLE.lock();
    let tid = t.current;
    let Some(tid) = tid else {
        return Wake::Interrupted;
    };
    match t.threads.get_mut(&tid) {
        Some(th) => {
            let left = th.deadline.take();
            let wake = th.wake;
            if let Some(d) = left {
                t.sleepers.remove(&(d, tid));
            }
            wake
        }
        None => Wake::Interrupted,
    }
}

/// Leave the CPU for good: the running thread has been removed from the
/// table (its stack is freed once something else runs).
pub fn leave_for_good() -> ! {
    let next = {
        let mut t = TABLE.lock();
        let now = cpu::rdtsc();
        t.account(now);
        t.current = None;
        crate::mm::record::set_pid(0);
        t.run_queue.pop_front()
    };
    apic::disarm();
    // SAFETY: DISCARD_RSP is written and never read back; the target is a
    // runnable thread's saved context or the waiting idle loop.
    unsafe { go(&raw mut DISCARD_RSP, next) };
    unreachable!("a dead thread was switched back to")
}
