//! Test harness: a VMM over the software MMU and a tiny "CPU" that performs
//! accesses the way the hardware would, faulting into `mm::fault::handle`.
#![allow(dead_code)]

use std::sync::Arc;

use mobius_guest::mm::fault;
use mobius_guest::mm::frame::{CpuZeroing, MemRegion};
use mobius_guest::mm::paging::{Mmu, PageAttrs, PhysAddr, VirtAddr, PAGE_SIZE};
use mobius_guest::mm::soft_mmu::SoftMmu;
use mobius_guest::mm::stats::TickCounter;
use mobius_guest::mm::vmm::{Access, FaultOutcome, SpaceId, Vmm, VmmConfig, VmmLock};

pub type TestVmm = Arc<VmmLock<SoftMmu>>;

/// A VMM with `frames` frames of RAM; the first 16 are reserved.
pub fn setup(frames: u64) -> TestVmm {
    let ram = [MemRegion::new(0, frames * PAGE_SIZE)];
    let reserved = [MemRegion::new(0, 16 * PAGE_SIZE)];
    let config = VmmConfig {
        ram: &ram,
        reserved: &reserved,
        zeroing: Box::new(CpuZeroing),
        clock: Box::new(TickCounter::default()),
    };
    Arc::new(spin::Mutex::new(
        Vmm::new(config, SoftMmu::new()).expect("init"),
    ))
}

/// The current mapping, if any, and whether it allows the access.
fn check(
    vmm: &TestVmm,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
) -> Option<(PhysAddr, bool)> {
    let vm = vmm.lock();
    let root = vm.root(space).ok()?;
    let (frame, attrs) = vm.mmu().translate(root, addr)?;
    let ok = (!access.write || attrs.contains(PageAttrs::WRITABLE))
        && (!access.user || attrs.contains(PageAttrs::USER))
        && (!access.instruction || !attrs.contains(PageAttrs::NO_EXECUTE));
    Some((frame, ok))
}

/// Perform an access like the CPU: fault until the mapping allows it.
/// Returns the frame, or the outcome of the fault that could not resolve it.
pub fn access(
    vmm: &TestVmm,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
) -> Result<PhysAddr, FaultOutcome> {
    for _ in 0..4 {
        let mapping = check(vmm, space, addr, access);
        if let Some((frame, true)) = mapping {
            return Ok(frame);
        }
        let present = mapping.is_some();
        let outcome = fault::handle(vmm, space, addr, Access { present, ..access });
        if !outcome.is_resolved() {
            return Err(outcome);
        }
    }
    panic!("fault at {addr:#x} resolved but access still not allowed");
}

pub fn read(
    vmm: &TestVmm,
    space: SpaceId,
    addr: VirtAddr,
    len: usize,
    user: bool,
) -> Result<Vec<u8>, FaultOutcome> {
    let a = Access {
        user,
        ..Access::READ
    };
    let frame = access(vmm, space, addr, a)?;
    let mut out = vec![0u8; len];
    vmm.lock()
        .mmu()
        .read_frame(frame, (addr % PAGE_SIZE) as usize, &mut out);
    Ok(out)
}

pub fn write(
    vmm: &TestVmm,
    space: SpaceId,
    addr: VirtAddr,
    data: &[u8],
    user: bool,
) -> Result<(), FaultOutcome> {
    let a = Access {
        user,
        ..Access::WRITE
    };
    let frame = access(vmm, space, addr, a)?;
    vmm.lock()
        .mmu_mut()
        .write_frame(frame, (addr % PAGE_SIZE) as usize, data);
    Ok(())
}

pub fn free_frames(vmm: &TestVmm) -> u64 {
    vmm.lock().frames().stats().free
}

pub fn pte(vmm: &TestVmm, space: SpaceId, addr: VirtAddr) -> Option<(PhysAddr, PageAttrs)> {
    let vm = vmm.lock();
    vm.mmu().translate(vm.root(space).unwrap(), addr)
}
