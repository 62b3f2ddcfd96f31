//! The page-fault entry point (Möbius `VmmPageFault`).
//!
//! The arch trap handler reads CR2 and the error code and calls [`handle`].
//! Demand-zero faults in NORMAL areas and clean → dirty upgrades first try
//! [`Vmm::fault_fast`](super::vmm::Vmm::fault_fast) (hinted node, zero-pool
//! frame, one page-table walk); everything else, and whatever that declines,
//! goes through `fault_resolve`.
//! The common paths (demand-zero, clean → dirty upgrade, MAP) run entirely
//! under the VMM lock without heap allocation, except for the first touch of
//! each 64-page chunk of an area, which allocates that chunk's page records.
//! FILE/IMAGE reads and CALLBACK handlers run with the lock dropped.
//!
//! What the caller does with the outcome: [`FaultOutcome::is_resolved`] →
//! return from the exception and retry. Otherwise a user-mode fault ends the
//! process; a kernel-mode fault stops the guest with a diagnostic (address,
//! access, outcome).
use alloc::vec;

use super::paging::{Mmu, PhysAddr, VirtAddr, PAGE_SIZE};
use super::vmm::{
    Access, CallbackMapper, CallbackPlan, FaultOutcome, ReadPlan, SpaceId, Step, VmError, VmmLock,
};
use mobius_shared::stats::FaultKind;

/// Resolve a page fault at `addr` in `space` (`VmmPageFault(proc, addr,
/// is_writing)`), counting it with its cycles in the fault statistics.
///
/// A fault on a page another thread is reading (`Retry`) sleeps until a
/// read completes and tries again (spec rows 18–19), where the kernel has
/// set [`ReadWaits`]; without them (host tests) `Retry` comes back at once.
pub fn handle<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
) -> FaultOutcome {
    let mut outcome = handle_locked(vmm, vmm.lock(), space, addr, access);
    if let Some(w) = READ_WAITS.get() {
        let mut waits = 0;
        while outcome == FaultOutcome::Retry && waits < MAX_READ_WAITS {
            // Other threads trap while this one sleeps: keep its fault's
            // instruction pointer for the fault recorder.
            let rip = super::record::trap_rip();
            (w.wait)();
            super::record::set_trap_rip(rip);
            outcome = handle_locked(vmm, vmm.lock(), space, addr, access);
            waits += 1;
        }
    }
    outcome
}

/// How a faulting thread waits for a page being read by another, and how
/// the reader wakes such waiters: the scheduler's, set once by the kernel.
pub struct ReadWaits {
    /// Sleep until some read completes (or a short deadline passes: a
    /// wake-up may be missed by a thread that has not slept yet).
    pub wait: fn(),
    /// A read completed: wake every waiter (each checks its own page).
    pub woken: fn(),
}

static READ_WAITS: spin::Once<ReadWaits> = spin::Once::new();

/// Most waits of one fault before `Retry` goes back to the caller (which
/// faults again): bounds a fault whose reader never finishes.
const MAX_READ_WAITS: usize = 1000;

/// Install the scheduler's waits (once, at boot).
pub fn set_read_waits(waits: ReadWaits) {
    READ_WAITS.call_once(|| waits);
}

/// [`handle`] with the lock already taken (`vm` is `vmm`'s guard): the
/// kernel's hook takes it with `try_lock`, which both refuses a fault taken
/// with the lock held and locks, in one atomic operation.
#[inline]
pub fn handle_locked<'a, M: Mmu>(
    vmm: &'a VmmLock<M>,
    mut vm: spin::MutexGuard<'a, super::vmm::Vmm<M>>,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
) -> FaultOutcome {
    let t0 = vm.now();
    if let Some(outcome) = vm.fault_fast(space, addr, access, t0) {
        if super::record::on() && super::record::sampled() {
            record_fast(&vm, space, addr, access, outcome, t0);
        }
        return outcome;
    }
    handle_slow(vmm, vm, space, addr, access, t0)
}

/// Record a fault the short path resolved (only while recording): its
/// cycles are taken again here, a few instructions after the statistics'.
#[cold]
#[inline(never)]
fn record_fast<M: Mmu>(
    vm: &super::vmm::Vmm<M>,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
    outcome: FaultOutcome,
    t0: u64,
) {
    let Some(kind) = outcome.kind() else { return };
    let pool = (kind == FaultKind::DemandZero).then_some(FaultKind::ZeroPoolHit);
    let cycles = vm.now().saturating_sub(t0);
    vm.record_fault_event(space, addr, access, kind, pool, t0, cycles);
}

/// Record a fault the long path resolved (only while recording).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn record_slow<M: Mmu>(
    vm: &super::vmm::Vmm<M>,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
    kind: FaultKind,
    pool: Option<FaultKind>,
    t0: u64,
    cycles: u64,
) {
    vm.record_fault_event(space, addr, access, kind, pool, t0, cycles);
}

/// Everything [`Vmm::fault_fast`](super::vmm::Vmm::fault_fast) declines,
/// kept out of line so that the short path pays for none of it.
#[inline(never)]
fn handle_slow<'a, M: Mmu>(
    vmm: &'a VmmLock<M>,
    mut vm: spin::MutexGuard<'a, super::vmm::Vmm<M>>,
    space: SpaceId,
    addr: VirtAddr,
    access: Access,
    t0: u64,
) -> FaultOutcome {
    let step = vm.fault_resolve(space, addr, access);
    let (outcome, pool) = match step {
        Step::Done(outcome, pool) => (outcome, pool),
        Step::Read(plan) => {
            drop(vm);
            let outcome = read_in(vmm, plan);
            if let Some(w) = READ_WAITS.get() {
                (w.woken)();
            }
            vm = vmm.lock();
            (outcome, None)
        }
        Step::Callback(plan) => {
            drop(vm);
            let outcome = run_callback(vmm, &plan);
            vm = vmm.lock();
            (outcome, None)
        }
    };
    let cycles = vm.record_fault(outcome, pool, t0);
    if let (true, Some(kind)) = (super::record::on(), outcome.kind()) {
        if super::record::sampled() {
            record_slow(&vm, space, addr, access, kind, pool, t0, cycles);
        }
    }
    outcome
}

/// Read a FILE/IMAGE page without the lock, then install it with the lock
/// (files in memory never get here: `fault_resolve` copies them at once).
fn read_in<M: Mmu>(vmm: &VmmLock<M>, plan: ReadPlan) -> FaultOutcome {
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    let ok = read_fully(&*plan.file, plan.offset, &mut buf[..plan.bytes]);
    vmm.lock().read_done(plan, ok.then_some(&buf[..]))
}

/// Fill `buf` completely; a short read (the file shrank) is a failure.
fn read_fully(file: &dyn super::vmm::FileBacking, offset: u64, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => done += n,
        }
    }
    true
}

fn run_callback<M: Mmu>(vmm: &VmmLock<M>, plan: &CallbackPlan) -> FaultOutcome {
    let mut mapper = Mapper { vmm, plan };
    let handled = (plan.handler)(&mut mapper, &plan.fault);
    // A handler that claims success without mapping the page would make the
    // CPU fault for ever (B39): count that as unresolved instead.
    if handled && vmm.lock().is_mapped(plan.fault.space, plan.fault.page) {
        FaultOutcome::Resolved(FaultKind::Callback)
    } else {
        FaultOutcome::Unresolved
    }
}

/// The [`CallbackMapper`] a handler gets: each call takes the VMM lock.
struct Mapper<'a, M: Mmu> {
    vmm: &'a VmmLock<M>,
    plan: &'a CallbackPlan,
}

impl<M: Mmu> CallbackMapper for Mapper<'_, M> {
    fn map_new_frame(&mut self, writable: bool) -> Result<PhysAddr, VmError> {
        self.vmm.lock().callback_map(self.plan, None, writable)
    }

    fn map_phys(&mut self, phys: PhysAddr, writable: bool) -> Result<(), VmError> {
        if phys & (PAGE_SIZE - 1) != 0 {
            return Err(VmError::Unaligned);
        }
        self.vmm
            .lock()
            .callback_map(self.plan, Some(phys), writable)
            .map(|_| ())
    }

    fn write(&mut self, frame: PhysAddr, offset: usize, data: &[u8]) {
        self.vmm.lock().mmu_mut().write_frame(frame, offset, data);
    }
}
