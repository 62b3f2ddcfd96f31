//! Signals: SIGINT/SIGTERM set a flag the supervising thread polls; a
//! real-time "kick" signal, sent to the vCPU thread, makes KVM_RUN return EINTR
//! so the run loop can see that it was asked to stop.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_stop_signal(num: c_int, _: *mut siginfo_t, _: *mut c_void) {
    // Async-signal-safe: one atomic store.
    STOP_SIGNAL.store(num, Ordering::SeqCst);
}

extern "C" fn on_kick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    // Nothing: the point is the EINTR from KVM_RUN.
}

/// The signal used to kick the vCPU thread out of KVM_RUN.
pub fn kick_signal() -> c_int {
    SIGRTMIN()
}

/// Install the handlers (once per process). Errors are returned as text.
pub fn install() -> Result<(), String> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        for (num, handler) in [
            (
                kick_signal(),
                on_kick as vmm_sys_util::signal::SignalHandler,
            ),
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
