//! The time-stamp counter: its frequency and the two moments the kernel
//! measures from (entry, and the start of the workload or program).
use core::sync::atomic::{AtomicU64, Ordering};

use super::cpu;
use crate::println;
use mobius_shared::cmdline::BootOptions;

/// TSC at kernel entry.
pub static TSC_BOOT: AtomicU64 = AtomicU64::new(0);
/// TSC when the workload or program started.
pub static TSC_READY: AtomicU64 = AtomicU64::new(0);
/// TSC frequency in kHz (0 if unknown).
pub static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Record kernel entry.
pub fn mark_boot() {
    TSC_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// Record the start of the workload.
pub fn mark_ready() {
    TSC_READY.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// TSC frequency in kHz, 0 if unknown.
pub fn khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Nanoseconds since kernel entry (cycles when the frequency is unknown).
pub fn ns_since_boot() -> u64 {
    let cycles = cpu::rdtsc().saturating_sub(TSC_BOOT.load(Ordering::Relaxed));
    cycles_to_ns(cycles)
}

/// `cycles` of the TSC in nanoseconds (the cycles themselves when the
/// frequency is unknown).
pub fn cycles_to_ns(cycles: u64) -> u64 {
    match khz() {
        0 => cycles,
        k => (u128::from(cycles) * 1_000_000 / u128::from(k)) as u64,
    }
}

/// Nanoseconds in TSC cycles (saturating; the nanoseconds when unknown).
pub fn ns_to_cycles(ns: u64) -> u64 {
    match khz() {
        0 => ns,
        k => u64::try_from(u128::from(ns) * u128::from(k) / 1_000_000).unwrap_or(u64::MAX),
    }
}

/// Find the TSC frequency and remember it: the host's `tsc_khz=`, else
/// CPUID leaves 0x40000010 (hypervisor timing leaf) or 0x15/0x16, else 0
/// with a warning.
pub fn init(options: &BootOptions) {
    TSC_KHZ.store(detect_khz(options), Ordering::Relaxed);
}

fn detect_khz(options: &BootOptions) -> u64 {
    if let Some(khz) = options.tsc_khz {
        return khz;
    }
    let hv_max = cpu::cpuid(0x4000_0000).0;
    if hv_max >= 0x4000_0010 {
        let khz = cpu::cpuid(0x4000_0010).0;
        if khz != 0 {
            return u64::from(khz);
        }
    }
    if cpu::cpuid(0).0 >= 0x15 {
        let (den, num, hz, _) = cpu::cpuid(0x15);
        if den != 0 && num != 0 && hz != 0 {
            return u64::from(hz) * u64::from(num) / u64::from(den) / 1000;
        }
    }
    if cpu::cpuid(0).0 >= 0x16 {
        let mhz = cpu::cpuid(0x16).0 & 0xffff;
        if mhz != 0 {
            return u64::from(mhz) * 1000;
        }
    }
    println!("mobius-guest: warning: TSC frequency unknown; times are reported in cycles only");
    0
}
