//! vCPU creation and initial register state for the two entries.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::VcpuFd;
use mobius_shared::layout::{BOOT_GDT_ADDR, BOOT_PML4_ADDR, START_INFO_ADDR};

use super::{Vm, VmError};
use crate::boot::params::{CODE32_SELECTOR, CODE64_SELECTOR, DATA_SELECTOR, GDT};
use crate::boot::BootMode;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// CPUID leaf 0x8000_0001 EDX bit 20: NX.
const CPUID_EXT_FEATURES: u32 = 0x8000_0001;
const CPUID_NX: u32 = 1 << 20;

/// Create vCPU 0 and give it the host-supported CPUID without the features
/// the guest kernel cannot keep per process ([`super::cpuid`]); also says
/// whether NX (EFER.NXE) is available.
pub fn create(vm: &Vm) -> Result<(VcpuFd, bool), VmError> {
    let vcpu = vm
        .fd()
        .create_vcpu(0)
        .map_err(VmError::kvm("create vCPU"))?;
    let mut cpuid = vm
        .kvm()
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(VmError::kvm("get supported CPUID"))?;
    let nx = cpuid
        .as_slice()
        .iter()
        .any(|e| e.function == CPUID_EXT_FEATURES && e.edx & CPUID_NX != 0);
    super::cpuid::hide_extended_state(&mut cpuid);
    vcpu.set_cpuid2(&cpuid).map_err(VmError::kvm("set CPUID"))?;
    Ok((vcpu, nx))
}

fn segment(selector: u16, code: bool, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: 0,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Registers for `mode` entering at `entry`.
pub fn set_boot_state(vcpu: &VcpuFd, mode: BootMode, entry: u64, nx: bool) -> Result<(), VmError> {
    let mut sregs: kvm_sregs = vcpu.get_sregs().map_err(VmError::kvm("get sregs"))?;
    sregs.gdt.base = BOOT_GDT_ADDR;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    // No IDT: any exception before the kernel loads its own is a triple fault,
    // which the run loop reports.
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    let data = segment(DATA_SELECTOR, false, false);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    match mode {
        BootMode::Long => {
            sregs.cs = segment(CODE64_SELECTOR, true, true);
            sregs.cr3 = BOOT_PML4_ADDR;
            sregs.cr4 = CR4_PAE;
            sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
            sregs.efer = EFER_LME | EFER_LMA | if nx { EFER_NXE } else { 0 };
        }
        BootMode::Pvh => {
            // PVH ABI: flat 32-bit protected mode, paging off.
            sregs.cs = segment(CODE32_SELECTOR, true, false);
            sregs.cr3 = 0;
            sregs.cr4 = 0;
            sregs.cr0 = CR0_PE | CR0_ET;
            sregs.efer = 0;
        }
    }
    vcpu.set_sregs(&sregs).map_err(VmError::kvm("set sregs"))?;

    let regs = kvm_regs {
        rip: entry,
        rflags: 2,
        rbx: START_INFO_ADDR,
        rsi: START_INFO_ADDR,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(VmError::kvm("set regs"))?;
    Ok(())
}

/// `KVM_GET_TSC_KHZ` of the vCPU, if available and non-zero.
pub fn tsc_khz(vcpu: &VcpuFd) -> Option<u32> {
    vcpu.get_tsc_khz().ok().filter(|&k| k > 0)
}
