//! Each thread's floating-point and vector registers, kept apart.
//!
//! Two ways, chosen at boot:
//! * **fxsave** (`fxsave64`/`fxrstor64` into the thread's [`FpuState`]):
//!   x87 and SSE only. Enough where programs cannot use more (hardware KVM,
//!   where the kernel leaves XCR0 and CR4.OSXSAVE alone, so AVX is off and
//!   CPUID says so).
//! * **the host's extended-state port** (`mobius_shared::ports::XSTATE`),
//!   when the host offers it: the host saves and loads the vCPU's whole
//!   XSAVE state per thread slot. Needed on kvm_pvm, where ring 3 runs with
//!   the host's XCR0 (AVX, AVX-512 usable whatever the guest says) and
//!   ring-0 `xsave` kills the VM: `fxsave` there would let two preempted
//!   processes see each other's upper vector registers.
use core::sync::atomic::{AtomicBool, Ordering};

use super::cpu::outl;
use super::user::FpuState;
use mobius_shared::ports::{
    xstate_value, XSTATE, XSTATE_COPY, XSTATE_FREE, XSTATE_LOAD, XSTATE_RESET, XSTATE_SAVE,
    XSTATE_SLOTS,
};

static HOST_XSTATE: AtomicBool = AtomicBool::new(false);

/// Use the host's extended-state port (the boot parameters offer it).
pub fn use_host_xstate(on: bool) {
    HOST_XSTATE.store(on, Ordering::Relaxed);
}

fn host() -> bool {
    HOST_XSTATE.load(Ordering::Relaxed)
}

/// Slots a thread's state may live in (one per live thread).
pub const SLOTS: usize = XSTATE_SLOTS as usize;

/// Save the running thread's registers (its area `fx`, its slot `slot`).
pub fn save(fx: &mut FpuState, slot: u16) {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_SAVE, u32::from(slot), 0));
    } else {
        fx.save();
    }
}

/// Load a thread's registers.
pub fn restore(fx: &FpuState, slot: u16) {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_LOAD, u32::from(slot), 0));
    } else {
        fx.restore();
    }
}

/// The state a new thread starts with, copied from the running thread
/// (its slot `from`) into the new thread's slot `to`; returns the area for
/// the fxsave way.
pub fn inherit(from: Option<u16>, to: u16) -> FpuState {
    let mut fx = FpuState::initial();
    if host() {
        match from {
            Some(from) => {
                outl(XSTATE, xstate_value(XSTATE_SAVE, u32::from(from), 0));
                outl(
                    XSTATE,
                    xstate_value(XSTATE_COPY, u32::from(from), u32::from(to)),
                );
            }
            None => outl(XSTATE, xstate_value(XSTATE_FREE, u32::from(to), 0)),
        }
    } else if from.is_some() {
        fx.save();
    }
    fx
}

/// The running thread starts a new program: reset registers.
pub fn reset() {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_RESET, 0, 0));
    } else {
        FpuState::initial().restore();
    }
}

/// A thread ended: its slot is free.
pub fn free(slot: u16) {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_FREE, u32::from(slot), 0));
    }
}

/// Where the kernel keeps a thread's vector state while it runs a signal
/// handler: the host slot past the threads' own (slot + `SLOTS / 2`), or a
/// saved area in the fxsave way.
static SIGNAL_FX: spin::Mutex<alloc::collections::BTreeMap<u16, alloc::boxed::Box<FpuState>>> =
    spin::Mutex::new(alloc::collections::BTreeMap::new());

fn signal_slot(slot: u16) -> u32 {
    u32::from(slot) + XSTATE_SLOTS / 2
}

/// Keep the running thread's registers for its `rt_sigreturn`.
pub fn save_for_signal(slot: u16) {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_SAVE, signal_slot(slot), 0));
    } else {
        let mut fx = alloc::boxed::Box::new(FpuState::initial());
        fx.save();
        SIGNAL_FX.lock().insert(slot, fx);
    }
}

/// Put back what [`save_for_signal`] kept.
pub fn restore_after_signal(slot: u16) {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_LOAD, signal_slot(slot), 0));
    } else if let Some(fx) = SIGNAL_FX.lock().remove(&slot) {
        fx.restore();
    }
}

/// A thread ended: drop what a handler left.
pub fn free_signal(slot: u16) {
    if host() {
        outl(XSTATE, xstate_value(XSTATE_FREE, signal_slot(slot), 0));
    } else {
        SIGNAL_FX.lock().remove(&slot);
    }
}
