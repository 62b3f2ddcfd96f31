//! Processes (Möbius `process_t`): creating them (the first program,
//! `clone`), replacing their image (`execve`), ending them, and reaping
//! them (`wait4`).
//!
//! A process owns an address space (shared with a `vfork` child until the
//! child execs), a descriptor table (`Arc`: shared by its threads), its
//! program break and statistics. Ending a process is two steps: it is
//! marked killed and its blocked threads are interrupted; each thread then
//! ends itself on its way back to ring 3 ([`exit_if_killed`]), and the last
//! one out tears the process down ([`finish`]): descriptors, address space
//! (unless another process still runs in it), and a zombie for its parent
//! to reap.
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use super::task::{self, Pid, Table, Tid, Wait};
use crate::arch::x86_64::trap::TrapFrame;
use crate::console::{write_program_output, Stream};
use crate::fs::fd::FdTable;
use crate::mm::kernel;
use crate::mm::vmm::{ShareHandle, SpaceId, KERNEL_SPACE};
use mobius_shared::procstats::{self, ProcessRecord};

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

    /// The status word `wait4` stores (`WEXITSTATUS`/`WTERMSIG` encoding).
    pub fn wait_status(self) -> u32 {
        match self {
            ExitStatus::Code(c) => u32::from(c) << 8,
            ExitStatus::Signal(s) => u32::from(s & 0x7f),
        }
    }
}

/// What a process has used.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub syscalls: u64,
    pub enosys: u64,
    /// Page faults taken in ring 3.
    pub faults: u64,
    pub cpu_cycles: u64,
}

/// A process: an address space, descriptors, and its threads.
pub struct Process {
    pub pid: Pid,
    pub parent: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub space: SpaceId,
    /// The path it runs (for reports).
    pub name: String,
    /// Its arguments, each ended by a NUL (`/proc/PID/cmdline`).
    pub cmdline: Vec<u8>,
    pub fds: Arc<Mutex<FdTable>>,
    /// Program break: where the heap starts, where it ends now, and the
    /// page-rounded end of what is mapped for it.
    pub brk_start: u64,
    pub brk: u64,
    pub brk_mapped: u64,
    /// Live threads.
    pub threads: Vec<Tid>,
    /// Being ended with this status (threads leave on their way out).
    pub killed: Option<ExitStatus>,
    /// Ended: a zombie waiting for its parent's `wait4`.
    pub exited: Option<ExitStatus>,
    /// The parent thread a `vfork` suspended until this process execs or
    /// ends.
    pub vfork_parent: Option<Tid>,
    pub stats: ProcessStats,
    /// `rt_sigaction` actions by signal number - 1 (handler 0: default,
    /// 1: ignore, else a handler).
    pub sig_actions: Box<[SigAction; 64]>,
    /// Möbius share handles (`HndOpen`), by handle number.
    pub handles: Vec<Option<ShareHandle>>,
    /// Working directory (absolute, normalised) and file-creation mask.
    pub cwd: String,
    pub umask: u32,
    /// Signals sent to it and not yet delivered to a handler.
    pub pending: u64,
    /// Its `ITIMER_REAL` timer (`alarm`, `setitimer`), when armed.
    pub alarm: Option<Alarm>,
}

/// An armed `ITIMER_REAL` timer: SIGALRM at TSC `at`, then every `every`
/// cycles (0: once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    pub at: u64,
    pub every: u64,
}

impl Alarm {
    /// The timer after it fired at `now`: the next period (never in the
    /// past: missed periods are skipped, as one signal stands for them),
    /// or nothing for a one-shot timer.
    pub fn next(self, now: u64) -> Option<Alarm> {
        if self.every == 0 {
            return None;
        }
        let mut at = self.at.saturating_add(self.every);
        if at <= now {
            at = now.saturating_add(self.every);
        }
        Some(Alarm { at, ..self })
    }
}

/// One `struct sigaction` as the kernel sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// `SIG_IGN`.
pub const SIG_IGN: u64 = 1;
const SIGCHLD: u8 = 17;

impl Process {
    fn new(pid: Pid, parent: Pid, space: SpaceId, name: String, fds: FdTable) -> Process {
        Process {
            pid,
            parent,
            pgid: pid,
            sid: pid,
            space,
            name,
            cmdline: Vec::new(),
            fds: Arc::new(Mutex::new(fds)),
            brk_start: 0,
            brk: 0,
            brk_mapped: 0,
            threads: Vec::new(),
            killed: None,
            exited: None,
            vfork_parent: None,
            stats: ProcessStats::default(),
            sig_actions: Box::new([SigAction::default(); 64]),
            handles: Vec::new(),
            cwd: String::from("/"),
            umask: 0o022,
            pending: 0,
            alarm: None,
        }
    }

    /// Its statistics as the wire's process record.
    pub fn record(&self) -> ProcessRecord {
        let status = match self.exited {
            Some(s) => s.shell_status(),
            None => procstats::RUNNING,
        };
        let mut r = ProcessRecord {
            pid: self.pid,
            parent: self.parent,
            status,
            syscalls: self.stats.syscalls,
            enosys: self.stats.enosys,
            faults: self.stats.faults,
            cpu_cycles: self.stats.cpu_cycles,
            ..ProcessRecord::EMPTY
        };
        r.set_name(&self.name);
        r.set_command(&self.cmdline);
        r
    }

    /// The handler of `sig` (0: default, 1: ignored, else a handler).
    pub fn signal_disposition(&self, sig: u8) -> u64 {
        usize::from(sig)
            .checked_sub(1)
            .and_then(|i| self.sig_actions.get(i))
            .map_or(0, |a| a.handler)
    }

    fn set_brk(&mut self, brk: u64) {
        self.brk_start = brk;
        self.brk = brk;
        self.brk_mapped = brk;
    }
}

/// Processes marked to end whose threads have not all left yet: the
/// return-to-ring-3 check ([`exit_if_killed`]) looks at the table only
/// while this is non-zero.
static ENDING: AtomicUsize = AtomicUsize::new(0);

/// Mark `p` to end with `status` (once).
fn mark_killed(p: &mut Process, status: ExitStatus) {
    if p.killed.is_none() {
        p.killed = Some(status);
        ENDING.fetch_add(1, Ordering::Relaxed);
    }
}

/// Start the first process (the host's program) running `frame` in
/// `space` (already loaded). Returns its pid.
pub fn spawn_first(space: SpaceId, name: String, frame: TrapFrame, brk: u64) -> Option<Pid> {
    let mut t = task::table();
    let pid = t.alloc_id();
    let mut p = Process::new(pid, 0, space, name, FdTable::with_console());
    p.set_brk(brk);
    p.threads.push(pid);
    t.processes.insert(pid, p);
    t.first = Some(pid);
    t.add_thread(pid, pid, &frame, false, 0)?;
    Some(pid)
}

/// Run `f` on the running thread's process.
pub fn with_current<R>(f: impl FnOnce(&mut Process) -> R) -> Option<R> {
    task::table().current_process().map(f)
}

/// The running process's descriptor table.
pub fn fds() -> Option<Arc<Mutex<FdTable>>> {
    with_current(|p| p.fds.clone())
}

/// Why `clone` failed, as an errno.
pub type Errno = i64;

/// `clone` flags this kernel understands.
pub mod flags {
    pub const CSIGNAL: u64 = 0xff;
    pub const CLONE_VM: u64 = 0x100;
    pub const CLONE_FS: u64 = 0x200;
    pub const CLONE_FILES: u64 = 0x400;
    pub const CLONE_SIGHAND: u64 = 0x800;
    pub const CLONE_VFORK: u64 = 0x4000;
    pub const CLONE_PARENT: u64 = 0x8000;
    pub const CLONE_THREAD: u64 = 0x1_0000;
    pub const CLONE_SYSVSEM: u64 = 0x4_0000;
    pub const CLONE_SETTLS: u64 = 0x8_0000;
    pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
    pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
    pub const CLONE_DETACHED: u64 = 0x40_0000;
    pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
}

/// A new thread of the running process entering ring 3 with `frame`.
pub fn new_thread(frame: &TrapFrame, fs_base: u64, clear_tid: u64) -> Result<Tid, Errno> {
    let mut t = task::table();
    let pid = t.current_pid().ok_or(crate::syscall::ESRCH)?;
    let tid = t.alloc_id();
    let mask = inherited_mask(&t);
    t.add_thread(tid, pid, frame, true, fs_base)
        .ok_or(crate::syscall::EAGAIN)?;
    if let Some(th) = t.threads.get_mut(&tid) {
        th.clear_child_tid = clear_tid;
        // A thread shares the memory: not the alternate stack (Linux).
        th.blocked = mask;
    }
    if let Some(p) = t.processes.get_mut(&pid) {
        p.threads.push(tid);
    }
    Ok(tid)
}

/// A new process running `frame` in `space` (the parent's own, for
/// `CLONE_VM`), with a copy of the parent's descriptors (or the same
/// table, for `CLONE_FILES`). `vfork` records the parent thread to wake.
pub fn new_process(
    frame: &TrapFrame,
    space: SpaceId,
    share_files: bool,
    vfork: bool,
    fs_base: u64,
) -> Result<Pid, Errno> {
    let mut t = task::table();
    let parent_tid = t.current_tid().ok_or(crate::syscall::ESRCH)?;
    let parent = t.current_process().ok_or(crate::syscall::ESRCH)?;
    let fds = if share_files {
        parent.fds.clone()
    } else {
        Arc::new(Mutex::new(parent.fds.lock().clone()))
    };
    let (ppid, pgid, sid, name) = (parent.pid, parent.pgid, parent.sid, parent.name.clone());
    let cmdline = parent.cmdline.clone();
    let brk = (parent.brk_start, parent.brk, parent.brk_mapped);
    let actions = parent.sig_actions.clone();
    let (cwd, umask) = (parent.cwd.clone(), parent.umask);
    let pid = t.alloc_id();
    let mut p = Process::new(pid, ppid, space, name, FdTable::default());
    p.cmdline = cmdline;
    p.fds = fds;
    p.pgid = pgid;
    p.sid = sid;
    (p.brk_start, p.brk, p.brk_mapped) = brk;
    p.sig_actions = actions;
    p.cwd = cwd;
    p.umask = umask;
    p.threads.push(pid);
    if vfork {
        p.vfork_parent = Some(parent_tid);
    }
    let mask = inherited_mask(&t);
    let alt = t.threads.get(&parent_tid).map(|th| th.alt_stack);
    let own_memory = t.processes.get(&ppid).is_some_and(|q| q.space != space);
    if t.add_thread(pid, pid, frame, true, fs_base).is_none() {
        return Err(crate::syscall::EAGAIN);
    }
    if let Some(th) = t.threads.get_mut(&pid) {
        th.blocked = mask;
        // Linux keeps the alternate stack for fork and vfork, not for a
        // child that shares the memory and runs at once.
        if own_memory || vfork {
            th.alt_stack = alt.unwrap_or_default();
        }
    }
    t.processes.insert(pid, p);
    Ok(pid)
}

/// The running thread's signal mask, which a new thread or process starts
/// with.
fn inherited_mask(t: &Table) -> u64 {
    t.current_tid()
        .and_then(|tid| t.threads.get(&tid))
        .map_or(0, |th| th.blocked)
}

/// Block the running thread until the `vfork` child `child` has exec'd
/// or ended.
pub fn wait_vfork(child: Pid) {
    loop {
        let me = task::table().current_tid();
        let waiting = {
            let t = task::table();
            t.processes
                .get(&child)
                .is_some_and(|p| p.vfork_parent.is_some() && p.vfork_parent == me)
        };
        if !waiting || task::block(Wait::Vfork(child), None) == task::Wake::Interrupted {
            return;
        }
    }
}

/// Release a `vfork` parent waiting on `p` (it exec'd or ended).
fn release_vfork(t: &mut Table, pid: Pid) {
    let waiter = t
        .processes
        .get_mut(&pid)
        .and_then(|p| p.vfork_parent.take());
    if waiter.is_some() {
        t.wake(|w| *w == Wait::Vfork(pid), usize::MAX);
    }
}

/// Set process `pid`'s command line (`/proc/PID/cmdline`).
pub fn set_cmdline(pid: Pid, cmdline: Vec<u8>) {
    if let Some(p) = task::table().processes.get_mut(&pid) {
        p.cmdline = cmdline;
    }
}

/// After a successful `execve`: the running process now runs `name` in
/// `space` with break `brk`. Its other threads end; descriptors marked
/// close-on-exec are closed; a `vfork` parent is released. The old space
/// is destroyed unless another process still runs in it.
pub fn replace_image(space: SpaceId, name: String, brk: u64) {
    let (old, fds, others) = {
        let mut t = task::table();
        let Some(tid) = t.current_tid() else { return };
        let Some(p) = t.current_process() else { return };
        let old = core::mem::replace(&mut p.space, space);
        p.name = name;
        p.set_brk(brk);
        // Handlers do not survive the image; ignored signals stay ignored.
        for a in p.sig_actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
        let pid = p.pid;
        let others: Vec<Tid> = p.threads.iter().copied().filter(|x| *x != tid).collect();
        p.threads.retain(|x| *x == tid);
        let fds = p.fds.clone();
        // The alternate stack and what handlers left go with the image.
        if let Some(th) = t.threads.get_mut(&tid) {
            th.alt_stack = Default::default();
            crate::arch::x86_64::fpu::free_signal(th.fpu_slot());
        }
        release_vfork(&mut t, pid);
        for o in &others {
            t.remove_thread(*o);
        }
        let shared = t
            .processes
            .values()
            .any(|q| q.space == old && q.exited.is_none());
        (if shared { None } else { Some(old) }, fds, others)
    };
    let _ = others;
    let closed = fds.lock().take_cloexec();
    drop(closed);
    kernel::load_space(space);
    if let Some(old) = old {
        let _ = kernel::vmm().lock().destroy_space(old);
        crate::syscall::shm::reap();
    }
}

/// Mark process `pid` to end with `status` and interrupt its blocked
/// threads. The running thread, if it belongs to it, ends on its way out
/// of the kernel.
pub fn kill(pid: Pid, status: ExitStatus) {
    kill_locked(&mut task::table(), pid, status);
}

/// [`kill`] with the table already locked.
pub fn kill_locked(t: &mut Table, pid: Pid, status: ExitStatus) {
    if let Some(p) = t.processes.get_mut(&pid) {
        if p.exited.is_some() || p.killed.is_some() {
            return;
        }
        mark_killed(p, status);
        t.interrupt(pid);
    }
}

/// End the running process with `status` (`exit_group`, a fatal fault).
pub fn exit_current(status: ExitStatus) -> ! {
    let pid = task::table().current_pid();
    if let Some(pid) = pid {
        kill(pid, status);
    }
    exit_thread(None)
}

/// Called on every return to ring 3: a thread whose process is being
/// ended ends here.
pub fn exit_if_killed() {
    if ENDING.load(Ordering::Relaxed) == 0 {
        return;
    }
    let killed = task::table().current_process().and_then(|p| p.killed);
    if killed.is_some() {
        exit_thread(None);
    }
}

/// End the running thread (`exit`); with `code`, the process ends with it
/// when this was its last thread. The last thread out tears the process
/// down.
pub fn exit_thread(code: Option<u8>) -> ! {
    let (clear_tid, space, last) = {
        let mut t = task::table();
        let Some(tid) = t.current_tid() else {
            task::leave_for_good()
        };
        // Charge the last slice to the process before it can end.
        t.account(crate::arch::x86_64::cpu::rdtsc());
        let pid = t.current_pid().unwrap_or(0);
        let clear = t.remove_thread(tid);
        let (space, last) = match t.processes.get_mut(&pid) {
            Some(p) => {
                p.threads.retain(|x| *x != tid);
                if p.threads.is_empty() {
                    mark_killed(p, ExitStatus::Code(code.unwrap_or(0)));
                }
                (p.space, p.threads.is_empty().then_some(pid))
            }
            None => (KERNEL_SPACE, None),
        };
        (clear, space, last)
    };
    if clear_tid != 0 && last.is_none() {
        // CLONE_CHILD_CLEARTID: a joiner waits on this word.
        let _ = crate::mm::uaccess::write_u32(kernel::vmm(), space, clear_tid, 0);
        task::table().wake(|w| *w == Wait::Futex(space, clear_tid), 1);
    }
    if let Some(pid) = last {
        finish(pid);
        crate::recorder::process_ended();
    }
    task::leave_for_good()
}

/// Tear down process `pid`, whose last thread has ended: release a
/// `vfork` parent, close its descriptors, destroy its space unless another
/// process runs in it, hand its children to nobody, and leave a zombie for
/// its parent (or nothing, when no parent waits).
fn finish(pid: Pid) {
    let (fds, space, orphans) = {
        let mut t = task::table();
        let Some(p) = t.processes.get_mut(&pid) else {
            return;
        };
        let status = p.killed.unwrap_or(ExitStatus::Code(0));
        p.exited = Some(status);
        p.alarm = None;
        if p.killed.is_some() {
            ENDING.fetch_sub(1, Ordering::Relaxed);
        }
        let record = p.record();
        let fds = core::mem::take(&mut p.fds);
        let handles = core::mem::take(&mut p.handles);
        let space = p.space;
        let parent = p.parent;
        release_vfork(&mut t, pid);
        t.history.push(record);
        let mut rest = Vec::new();
        if t.first == Some(pid) {
            // The first process is the run: when it ends, so does every
            // process it left behind (as when a VM's init exits).
            t.first_exit = Some(status);
            rest = t
                .processes
                .values()
                .filter(|q| q.pid != pid)
                .map(|q| q.pid)
                .collect();
        }
        let shared = t
            .processes
            .values()
            .any(|q| q.pid != pid && q.space == space && q.exited.is_none());
        // Children: reparented to nobody; ended ones go at once.
        let mut orphans = Vec::new();
        for q in t.processes.values_mut() {
            if q.parent == pid {
                q.parent = 0;
                if q.exited.is_some() {
                    orphans.push(q.pid);
                }
            }
        }
        for o in &orphans {
            t.processes.remove(o);
        }
        let parent_alive = t.processes.get(&parent).is_some_and(|q| q.exited.is_none());
        if parent_alive {
            t.wake(|w| *w == Wait::Child, usize::MAX);
            // SIGCHLD: only to a handler (its default is to be ignored).
            let handled = t
                .processes
                .get(&parent)
                .is_some_and(|q| q.signal_disposition(SIGCHLD) > SIG_IGN);
            if handled {
                super::signal::queue_locked(&mut t, parent, SIGCHLD);
            }
        } else {
            t.processes.remove(&pid);
        }
        (fds, (!shared).then_some(space), (orphans, rest, handles))
    };
    let (orphans, rest, handles) = orphans;
    for h in handles.into_iter().flatten() {
        let _ = kernel::vmm().lock().close_handle(h);
    }
    drop(orphans);
    for other in rest {
        kill(other, ExitStatus::Signal(9));
    }
    // Closing descriptors may wake pipe peers (through the table lock).
    drop(fds);
    if let Some(space) = space {
        if kernel::current_space() == space {
            if let Ok(root) = kernel::vmm().lock().root(KERNEL_SPACE) {
                kernel::switch_space(KERNEL_SPACE, root);
            }
        }
        if let Err(e) = kernel::vmm().lock().destroy_space(space) {
            let line = format!("mobius: process {pid}: address space not freed: {e}\n");
            write_program_output(Stream::Err, line.as_bytes());
        }
        crate::syscall::shm::reap();
    }
}

/// Which children a `wait4` takes.
#[derive(Debug, Clone, Copy)]
pub enum ChildSelector {
    Any,
    Pid(Pid),
    Group(Pid),
}

/// Reap an ended child of the running process matching `which`:
/// `Ok(Some((pid, status)))`, `Ok(None)` when none has ended yet and
/// `nohang`, `Err(ECHILD)` when there is no such child, `Err(EINTR)` when
/// the waiter's process is being ended.
pub fn wait_child(which: ChildSelector, nohang: bool) -> Result<Option<(Pid, ExitStatus)>, Errno> {
    use crate::syscall::{ECHILD, EINTR};
    loop {
        {
            let mut t = task::table();
            let me = t.current_pid().ok_or(ECHILD)?;
            let matches = |q: &Process| {
                q.parent == me
                    && match which {
                        ChildSelector::Any => true,
                        ChildSelector::Pid(p) => q.pid == p,
                        ChildSelector::Group(g) => q.pgid == g,
                    }
            };
            let mut any = false;
            let mut done = None;
            for q in t.processes.values() {
                if matches(q) {
                    any = true;
                    if let Some(s) = q.exited {
                        done = Some((q.pid, s));
                        break;
                    }
                }
            }
            if let Some((pid, status)) = done {
                t.processes.remove(&pid);
                t.free_dead_stacks();
                drop(t);
                return Ok(Some((pid, status)));
            }
            if !any {
                return Err(ECHILD);
            }
            if nohang {
                return Ok(None);
            }
        }
        if task::block(Wait::Child, None) == task::Wake::Interrupted {
            return Err(EINTR);
        }
    }
}

/// Nothing can run and nothing will wake: end every process, reported.
pub fn end_deadlock() {
    let pids: Vec<Pid> = {
        let t = task::table();
        t.processes
            .values()
            .filter(|p| p.exited.is_none())
            .map(|p| p.pid)
            .collect()
    };
    let line = format!(
        "mobius: deadlock: every thread of processes {pids:?} is blocked and nothing can wake them; killing them (SIGKILL)\n"
    );
    write_program_output(Stream::Err, line.as_bytes());
    for pid in pids {
        kill(pid, ExitStatus::Signal(9));
    }
}
