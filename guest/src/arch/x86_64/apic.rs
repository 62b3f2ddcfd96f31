//! The local APIC (xAPIC registers at 0xFEE0_0000, reached through the
//! direct map): the one-shot timer that preempts ring 3, and EOI.
//!
//! The timer is armed only while more than one thread can run, so a lone
//! program is never interrupted (each interrupt is a trip through the
//! emulated ring 0 on kvm_pvm).
use core::sync::atomic::{AtomicBool, Ordering};

use super::direct::phys_to_virt;
use super::trap::{SPURIOUS_VECTOR, TIMER_VECTOR};

const APIC_BASE: u64 = 0xFEE0_0000;
const REG_EOI: u64 = 0xB0;
const REG_SVR: u64 = 0xF0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_DIVIDE: u64 = 0x3E0;
const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
/// Divide the bus clock by 16.
const DIVIDE_BY_16: u32 = 0b0011;

static READY: AtomicBool = AtomicBool::new(false);

fn write(reg: u64, value: u32) {
    // SAFETY: the xAPIC page is mapped (uncached) by `init`; registers are
    // 32-bit, 16-byte aligned.
    unsafe { (phys_to_virt(APIC_BASE + reg) as *mut u32).write_volatile(value) }
}

/// Map the APIC page and enable the APIC with the spurious vector; the
/// timer stays masked. `false` if the page cannot be mapped.
pub fn init() -> bool {
    if READY.load(Ordering::Relaxed) {
        return true;
    }
    if !super::identity::map_device(APIC_BASE) {
        return false;
    }
    write(REG_SVR, SVR_ENABLE | SPURIOUS_VECTOR as u32);
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    READY.store(true, Ordering::Relaxed);
    true
}

/// Fire the timer once after `ticks` APIC-timer ticks (bus clock / 16).
pub fn arm_oneshot(ticks: u32) {
    if !READY.load(Ordering::Relaxed) {
        return;
    }
    write(REG_LVT_TIMER, TIMER_VECTOR as u32);
    write(REG_TIMER_INITIAL, ticks.max(1));
}

/// Stop the timer.
pub fn disarm() {
    if READY.load(Ordering::Relaxed) {
        write(REG_TIMER_INITIAL, 0);
    }
}

/// End of interrupt.
pub fn eoi() {
    if READY.load(Ordering::Relaxed) {
        write(REG_EOI, 0);
    }
}
