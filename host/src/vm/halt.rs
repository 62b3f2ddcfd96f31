//! Is a halted vCPU halted for good?
//!
//! With the local APIC in KVM (split irqchip, see [`super::Vm`]), HLT does
//! not leave KVM_RUN: KVM blocks the vCPU until an interrupt arrives. No
//! device of ours raises interrupts, so the only thing that can ever wake it
//! is the APIC's own timer (an NMI or INIT would have to come from us). The
//! run loop asks this module on every halt-watch tick ([`super::signal`]);
//! a halt with interrupts off, or with no armed timer, is the same ending as
//! KVM_EXIT_HLT without an in-kernel APIC.

use kvm_bindings::{kvm_msr_entry, Msrs, KVM_MP_STATE_HALTED};
use kvm_ioctls::VcpuFd;

/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// IA32_APIC_BASE: global enable.
const APIC_BASE_ENABLE: u64 = 1 << 11;
/// IA32_TSC_DEADLINE.
const MSR_TSC_DEADLINE: u32 = 0x6e0;

/// APIC register offsets (in the 1 KiB KVM_GET_LAPIC image) and bits.
const APIC_SPIV: usize = 0xf0;
const APIC_SPIV_ENABLE: u32 = 1 << 8;
const APIC_LVTT: usize = 0x320;
const APIC_LVT_MASKED: u32 = 1 << 16;
const APIC_TMICT: usize = 0x380;
const APIC_TMCCT: usize = 0x390;
/// The interrupt request register: 8 words of 32 vectors, 16 bytes apart.
const APIC_IRR: usize = 0x200;

/// Whether the vCPU is halted and nothing can wake it. Any error reading
/// its state counts as "not proven halted": the loop keeps running it.
pub fn halted_for_good(vcpu: &VcpuFd) -> bool {
    match vcpu.get_mp_state() {
        Ok(mp) if mp.mp_state == KVM_MP_STATE_HALTED => {}
        _ => return false,
    }
    let Ok(regs) = vcpu.get_regs() else {
        return false;
    };
    if regs.rflags & RFLAGS_IF == 0 {
        return true;
    }
    match timer_state(vcpu) {
        Some((apic_base, lapic, deadline)) => !can_wake(apic_base, &lapic, deadline),
        None => false,
    }
}

/// IA32_APIC_BASE, the APIC register image and IA32_TSC_DEADLINE.
fn timer_state(vcpu: &VcpuFd) -> Option<(u64, [u8; 1024], u64)> {
    let apic_base = vcpu.get_sregs().ok()?.apic_base;
    let lapic = vcpu.get_lapic().ok()?;
    let image: [u8; 1024] = lapic.regs.map(|b| b as u8);
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_TSC_DEADLINE,
        ..Default::default()
    }])
    .ok()?;
    let deadline = match vcpu.get_msrs(&mut msrs) {
        Ok(1) => msrs.as_slice()[0].data,
        _ => 0,
    };
    Some((apic_base, image, deadline))
}

fn reg(image: &[u8; 1024], offset: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&image[offset..offset + 4]);
    u32::from_le_bytes(b)
}

/// Whether the APIC can still wake the vCPU: an interrupt is waiting in
/// the IRR, or its timer will fire.
pub fn can_wake(apic_base: u64, image: &[u8; 1024], tsc_deadline: u64) -> bool {
    let requested = (0..8).any(|i| reg(image, APIC_IRR + 0x10 * i) != 0);
    (apic_base & APIC_BASE_ENABLE != 0 && requested) || timer_armed(apic_base, image, tsc_deadline)
}

/// Whether the APIC timer will fire: APIC enabled (globally and in SPIV),
/// timer LVT unmasked, and a count running (one-shot), a period set
/// (periodic) or a deadline set (TSC-deadline).
pub fn timer_armed(apic_base: u64, image: &[u8; 1024], tsc_deadline: u64) -> bool {
    if apic_base & APIC_BASE_ENABLE == 0 || reg(image, APIC_SPIV) & APIC_SPIV_ENABLE == 0 {
        return false;
    }
    let lvtt = reg(image, APIC_LVTT);
    if lvtt & APIC_LVT_MASKED != 0 {
        return false;
    }
    match (lvtt >> 17) & 3 {
        0 => reg(image, APIC_TMCCT) != 0,
        1 => reg(image, APIC_TMICT) != 0,
        2 => tsc_deadline != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(spiv: u32, lvtt: u32, tmict: u32, tmcct: u32) -> [u8; 1024] {
        let mut img = [0u8; 1024];
        for (off, v) in [
            (APIC_SPIV, spiv),
            (APIC_LVTT, lvtt),
            (APIC_TMICT, tmict),
            (APIC_TMCCT, tmcct),
        ] {
            img[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        img
    }

    const ON: u64 = 0xfee0_0000 | APIC_BASE_ENABLE;
    const SPIV_ON: u32 = APIC_SPIV_ENABLE | 0xff;

    #[test]
    fn a_running_one_shot_count_is_armed() {
        assert!(timer_armed(ON, &image(SPIV_ON, 0x20, 1000, 500), 0));
        // Expired: nothing left to count.
        assert!(!timer_armed(ON, &image(SPIV_ON, 0x20, 1000, 0), 0));
    }

    #[test]
    fn periodic_needs_a_period_and_deadline_a_deadline() {
        let periodic = 0x20 | (1 << 17);
        assert!(timer_armed(ON, &image(SPIV_ON, periodic, 1000, 0), 0));
        assert!(!timer_armed(ON, &image(SPIV_ON, periodic, 0, 0), 0));
        let deadline = 0x20 | (2 << 17);
        assert!(timer_armed(ON, &image(SPIV_ON, deadline, 0, 0), 12345));
        assert!(!timer_armed(ON, &image(SPIV_ON, deadline, 0, 0), 0));
    }

    #[test]
    fn a_requested_interrupt_can_wake() {
        let mut img = image(SPIV_ON, 0x20 | APIC_LVT_MASKED, 0, 0);
        assert!(!can_wake(ON, &img, 0));
        // Vector 0x20 waiting: IRR word 1, bit 0.
        img[APIC_IRR + 0x10..APIC_IRR + 0x14].copy_from_slice(&1u32.to_le_bytes());
        assert!(can_wake(ON, &img, 0));
        assert!(!can_wake(0xfee0_0000, &img, 0), "not with the APIC off");
        // An armed timer alone is enough.
        assert!(can_wake(ON, &image(SPIV_ON, 0x20, 10, 5), 0));
    }

    #[test]
    fn masked_or_disabled_apics_never_fire() {
        assert!(!timer_armed(
            ON,
            &image(SPIV_ON, 0x20 | APIC_LVT_MASKED, 1000, 500),
            0
        ));
        assert!(!timer_armed(ON, &image(0xff, 0x20, 1000, 500), 0));
        assert!(!timer_armed(
            0xfee0_0000,
            &image(SPIV_ON, 0x20, 1000, 500),
            0
        ));
        // The reset state: SPIV 0xff (disabled), LVTT masked.
        assert!(!timer_armed(ON, &image(0xff, APIC_LVT_MASKED, 0, 0), 0));
    }
}
