//! The KVM ioctl request numbers the filters name, computed as Linux's
//! `_IO`/`_IOR`/`_IOW`/`_IOWR` macros do (`include/uapi/linux/kvm.h`); the
//! tests pin them to the numbers `strace -X raw` shows.

use std::mem::size_of;

use kvm_bindings::{
    kvm_cpuid2, kvm_enable_cap, kvm_lapic_state, kvm_mp_state, kvm_msi, kvm_msrs, kvm_regs,
    kvm_sregs, kvm_userspace_memory_region,
};

const KVMIO: u64 = 0xae;
const WRITE: u64 = 1;
const READ: u64 = 2;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(0, nr, 0)
}
const fn ior(nr: u64, size: usize) -> u64 {
    ioc(READ, nr, size)
}
const fn iow(nr: u64, size: usize) -> u64 {
    ioc(WRITE, nr, size)
}
const fn iowr(nr: u64, size: usize) -> u64 {
    ioc(READ | WRITE, nr, size)
}

// On /dev/kvm.
pub const KVM_GET_API_VERSION: u64 = io(0x00);
pub const KVM_CREATE_VM: u64 = io(0x01);
pub const KVM_GET_VCPU_MMAP_SIZE: u64 = io(0x04);
pub const KVM_GET_SUPPORTED_CPUID: u64 = iowr(0x05, size_of::<kvm_cpuid2>());

// On the VM.
pub const KVM_CREATE_VCPU: u64 = io(0x41);
pub const KVM_SET_USER_MEMORY_REGION: u64 = iow(0x46, size_of::<kvm_userspace_memory_region>());
pub const KVM_SET_TSS_ADDR: u64 = io(0x47);
pub const KVM_ENABLE_CAP: u64 = iow(0xa3, size_of::<kvm_enable_cap>());
pub const KVM_SIGNAL_MSI: u64 = iow(0xa5, size_of::<kvm_msi>());

// On the vCPU.
pub const KVM_RUN: u64 = io(0x80);
pub const KVM_GET_REGS: u64 = ior(0x81, size_of::<kvm_regs>());
pub const KVM_SET_REGS: u64 = iow(0x82, size_of::<kvm_regs>());
pub const KVM_GET_SREGS: u64 = ior(0x83, size_of::<kvm_sregs>());
pub const KVM_SET_SREGS: u64 = iow(0x84, size_of::<kvm_sregs>());
pub const KVM_GET_MSRS: u64 = iowr(0x88, size_of::<kvm_msrs>());
pub const KVM_GET_LAPIC: u64 = ior(0x8e, size_of::<kvm_lapic_state>());
pub const KVM_SET_CPUID2: u64 = iow(0x90, size_of::<kvm_cpuid2>());
pub const KVM_GET_MP_STATE: u64 = ior(0x98, size_of::<kvm_mp_state>());
pub const KVM_GET_TSC_KHZ: u64 = io(0xa3);
pub const KVM_GET_STATS_FD: u64 = io(0xce);
pub const KVM_GET_XSAVE: u64 = ior(0xa4, size_of::<kvm_bindings::kvm_xsave>());
pub const KVM_SET_XSAVE: u64 = iow(0xa5, size_of::<kvm_bindings::kvm_xsave>());

/// Not used by mobius; the forbidden ioctl the self-test makes
/// ([`super::probe`]): reads the vCPU's FPU state.
pub const KVM_GET_FPU: u64 = ior(0x8c, size_of::<kvm_bindings::kvm_fpu>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_ones_strace_shows() {
        for (got, want) in [
            (KVM_GET_API_VERSION, 0xae00),
            (KVM_CREATE_VM, 0xae01),
            (KVM_GET_VCPU_MMAP_SIZE, 0xae04),
            (KVM_GET_SUPPORTED_CPUID, 0xc008_ae05),
            (KVM_CREATE_VCPU, 0xae41),
            (KVM_SET_USER_MEMORY_REGION, 0x4020_ae46),
            (KVM_SET_TSS_ADDR, 0xae47),
            (KVM_ENABLE_CAP, 0x4068_aea3),
            (KVM_SIGNAL_MSI, 0x4020_aea5),
            (KVM_RUN, 0xae80),
            (KVM_GET_REGS, 0x8090_ae81),
            (KVM_SET_REGS, 0x4090_ae82),
            (KVM_GET_SREGS, 0x8138_ae83),
            (KVM_SET_SREGS, 0x4138_ae84),
            (KVM_GET_MSRS, 0xc008_ae88),
            (KVM_GET_FPU, 0x81a0_ae8c),
            (KVM_GET_LAPIC, 0x8400_ae8e),
            (KVM_SET_CPUID2, 0x4008_ae90),
            (KVM_GET_MP_STATE, 0x8004_ae98),
            (KVM_GET_TSC_KHZ, 0xaea3),
            (KVM_GET_STATS_FD, 0xaece),
            (KVM_GET_XSAVE, 0x9000_aea4),
            (KVM_SET_XSAVE, 0x5000_aea5),
        ] {
            assert_eq!(got, want, "{got:#x} != {want:#x}");
        }
    }
}
