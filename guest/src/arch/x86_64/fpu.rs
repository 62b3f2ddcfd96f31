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

/// Most interrupted vector states one thread keeps at once (nested
/// handlers, and handlers left by `siglongjmp` that never return): past it
/// the oldest is forgotten, and an `rt_sigreturn` to that frame keeps the
/// registers it finds.
const SIGNAL_DEPTH: usize = 8;

/// Where one interrupted state is kept: a host slot, or a saved area in
/// the fxsave way.
enum Kept {
    Host(u32),
    Fx(alloc::boxed::Box<FpuState>),
}

/// The states a thread's handlers interrupted, oldest first, each under
/// the user address of its signal frame's `ucontext`, by thread slot.
type Saves = alloc::vec::Vec<(u64, Kept)>;
static SIGNAL_SAVES: spin::Mutex<alloc::collections::BTreeMap<u16, Saves>> =
    spin::Mutex::new(alloc::collections::BTreeMap::new());

/// Thread slots lent to nested handlers' states (the host way): no thread
/// may take one until it is given back.
static LENT: spin::Mutex<alloc::collections::BTreeSet<u16>> =
    spin::Mutex::new(alloc::collections::BTreeSet::new());

/// Whether thread slot `slot` is lent to a handler's saved state.
pub fn lent(slot: u16) -> bool {
    LENT.lock().contains(&slot)
}

/// A thread's own signal slot: the host slot past the threads' own.
fn signal_slot(slot: u16) -> u32 {
    u32::from(slot) + XSTATE_SLOTS / 2
}

fn release(kept: Kept) {
    if let Kept::Host(s) = kept {
        if let Ok(s16) = u16::try_from(s) {
            LENT.lock().remove(&s16);
        }
        outl(XSTATE, xstate_value(XSTATE_FREE, s, 0));
    }
}

/// A host slot for one more saved state of the thread in `slot`: its own
/// signal slot, else a thread slot no thread uses (`in_use`), else the
/// oldest saved state's.
fn host_slot(slot: u16, saves: &mut Saves, in_use: &dyn Fn(u16) -> bool) -> u32 {
    let own = signal_slot(slot);
    if !saves
        .iter()
        .any(|(_, k)| matches!(k, Kept::Host(s) if *s == own))
    {
        return own;
    }
    let mut lent = LENT.lock();
    let free = (0..(XSTATE_SLOTS / 2) as u16).find(|s| !in_use(*s) && !lent.contains(s));
    if let Some(s) = free {
        lent.insert(s);
        return u32::from(s);
    }
    drop(lent);
    match saves.remove(0) {
        (_, Kept::Host(s)) => s,
        (_, fx) => {
            release(fx);
            own
        }
    }
}

/// Keep the running thread's registers (its slot `slot`) for the
/// `rt_sigreturn` of the signal frame whose `ucontext` is at `frame`.
/// `in_use` says which thread slots live threads hold.
pub fn save_for_signal(slot: u16, frame: u64, in_use: &dyn Fn(u16) -> bool) {
    let mut all = SIGNAL_SAVES.lock();
    let saves = all.entry(slot).or_default();
    // A new frame where an old one was: that handler was left for good.
    if let Some(i) = saves.iter().position(|(f, _)| *f == frame) {
        release(saves.remove(i).1);
    }
    if saves.len() >= SIGNAL_DEPTH {
        release(saves.remove(0).1);
    }
    let kept = if host() {
        let s = host_slot(slot, saves, in_use);
        outl(XSTATE, xstate_value(XSTATE_SAVE, s, 0));
        Kept::Host(s)
    } else {
        let mut fx = alloc::boxed::Box::new(FpuState::initial());
        fx.save();
        Kept::Fx(fx)
    };
    saves.push((frame, kept));
}

/// Put back what [`save_for_signal`] kept for the frame at `frame`, and
/// forget it and every state kept after it (handlers it interrupted that
/// were left without returning). A frame the kernel does not know (made
/// up, or forgotten) leaves the registers as they are.
pub fn restore_after_signal(slot: u16, frame: u64) {
    let mut all = SIGNAL_SAVES.lock();
    let Some(saves) = all.get_mut(&slot) else {
        return;
    };
    let Some(i) = saves.iter().position(|(f, _)| *f == frame) else {
        return;
    };
    let mut newer = saves.split_off(i);
    let (_, kept) = newer.remove(0);
    match &kept {
        Kept::Host(s) => outl(XSTATE, xstate_value(XSTATE_LOAD, *s, 0)),
        Kept::Fx(fx) => fx.restore(),
    }
    release(kept);
    for (_, k) in newer {
        release(k);
    }
}

/// A thread ended: drop what its handlers left.
pub fn free_signal(slot: u16) {
    let saves = SIGNAL_SAVES.lock().remove(&slot).unwrap_or_default();
    for (_, k) in saves {
        release(k);
    }
}
