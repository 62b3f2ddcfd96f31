//! Signals, for a vCPU run on the calling thread:
//!
//! * SIGINT/SIGTERM record the signal for the run loop.
//! * The timeout is a POSIX timer aimed at the vCPU thread itself
//!   (`SIGEV_THREAD_ID`) that delivers the real-time "kick" signal.
//! * The halt watch is a periodic timer of the same kind, with its own
//!   signal: with an in-kernel local APIC, KVM keeps a halted vCPU inside
//!   KVM_RUN instead of exiting with KVM_EXIT_HLT, so the run loop looks at
//!   the vCPU on each tick ([`super::run`]).
//!
//! Both handlers set `immediate_exit` in the running vCPU's `kvm_run`, so
//! that KVM_RUN returns EINTR even when the signal lands just before it is
//! entered (the race a plain flag check leaves open; KVM's documented answer,
//! as Firecracker and Cloud Hypervisor use it). No supervising thread: that
//! thread cost a clone, a stack and a malloc arena on every run.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Duration;

use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

thread_local! {
    /// `kvm_run.immediate_exit` of the vCPU this thread is running, if any.
    /// Const-initialised and without a destructor: reading it is a plain
    /// thread-pointer load, safe in a signal handler.
    static IMMEDIATE_EXIT: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
    /// Whether this thread's timeout timer fired.
    static TIMED_OUT: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread's halt-watch timer ticked since the last look.
    static WATCH_TICK: Cell<bool> = const { Cell::new(false) };
}

/// Make the vCPU on this thread leave (or not enter) KVM_RUN.
fn exit_vcpu_now() {
    IMMEDIATE_EXIT.with(|p| {
        let p = p.get();
        if !p.is_null() {
            // SAFETY: set by `VcpuGuard` to the `immediate_exit` byte of the
            // kvm_run mapping of the vCPU this thread runs, and cleared
            // before that mapping goes away.
            unsafe { p.write_volatile(1) };
        }
    });
}

extern "C" fn on_stop_signal(num: c_int, _: *mut siginfo_t, _: *mut c_void) {
    // Async-signal-safe: an atomic store and a thread-local byte write.
    STOP_SIGNAL.store(num, Ordering::SeqCst);
    exit_vcpu_now();
}

extern "C" fn on_timeout(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    TIMED_OUT.with(|t| t.set(true));
    exit_vcpu_now();
}

extern "C" fn on_watch_tick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    WATCH_TICK.with(|t| t.set(true));
    exit_vcpu_now();
}

/// The signal the timeout timer delivers.
pub fn timeout_signal() -> c_int {
    SIGRTMIN()
}

/// The signal the halt-watch timer delivers.
pub fn watch_signal() -> c_int {
    SIGRTMIN() + 1
}

/// Install the handlers (once per process). Errors are returned as text.
pub fn install() -> Result<(), String> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        for (num, handler) in [
            (
                timeout_signal(),
                on_timeout as vmm_sys_util::signal::SignalHandler,
            ),
            (watch_signal(), on_watch_tick),
            (libc::SIGINT, on_stop_signal),
            (libc::SIGTERM, on_stop_signal),
        ] {
            if let Err(e) = register_signal_handler(num, handler) {
                result = Err(format!("cannot install handler for signal {num}: {e}"));
            }
        }
    });
    result
}

/// The SIGINT/SIGTERM received so far, if any.
pub fn stop_requested() -> Option<c_int> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// Whether this thread's timeout has fired.
pub fn timed_out() -> bool {
    TIMED_OUT.with(Cell::get)
}

/// Whether this thread's halt watch ticked since the last call (and forget it).
pub fn take_watch_tick() -> bool {
    WATCH_TICK.with(|t| t.replace(false))
}

/// While alive, signals to this thread make its vCPU leave KVM_RUN through
/// `immediate_exit` (a pointer into the vCPU's kvm_run mapping).
pub struct VcpuGuard(());

impl VcpuGuard {
    /// # Safety
    /// `immediate_exit` must point into the kvm_run mapping of a vCPU that
    /// outlives the guard, run by this thread.
    pub unsafe fn new(immediate_exit: *mut u8) -> Self {
        IMMEDIATE_EXIT.with(|p| p.set(immediate_exit));
        VcpuGuard(())
    }
}

impl Drop for VcpuGuard {
    fn drop(&mut self) {
        IMMEDIATE_EXIT.with(|p| p.set(std::ptr::null_mut()));
    }
}

/// A POSIX timer that sends a signal to the thread that started it.
pub struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    /// Arm a one-shot [`timeout_signal`] firing after `after` (at once if
    /// zero). Resets this thread's timed-out flag.
    pub fn timeout(after: Duration) -> std::io::Result<ThreadTimer> {
        TIMED_OUT.with(|t| t.set(false));
        Self::arm(timeout_signal(), after, Duration::ZERO)
    }

    /// Arm the halt watch: [`watch_signal`] every `period`.
    pub fn halt_watch(period: Duration) -> std::io::Result<ThreadTimer> {
        WATCH_TICK.with(|t| t.set(false));
        Self::arm(watch_signal(), period, period)
    }

    fn arm(signal: c_int, first: Duration, interval: Duration) -> std::io::Result<ThreadTimer> {
        // SAFETY: all-zero is a valid sigevent; the fields used are set below.
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = signal;
        // SAFETY: gettid has no preconditions.
        ev.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `ev` and `id` are valid for the call.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut id) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let timer = ThreadTimer(id);
        // A zero it_value would disarm the timer: fire after 1 ns instead.
        let spec = libc::itimerspec {
            it_interval: timespec(interval),
            it_value: timespec(first.max(Duration::from_nanos(1))),
        };
        // SAFETY: `id` is the timer just created; `spec` is valid.
        if unsafe { libc::timer_settime(id, 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(timer)
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the timer was created by `arm` and is deleted once.
        unsafe { libc::timer_delete(self.0) };
    }
}
