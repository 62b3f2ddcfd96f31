//! The fault path's short way (`Vmm::fault_fast`: the node hint, zero-pool
//! frames, in-place page records, the one-walk upgrade) against the software
//! MMU: it must give exactly what the full path gives, and hand over to it
//! whenever the short way does not apply.
mod common;

use std::collections::BTreeMap;

use common::*;
use mobius_guest::mm::fault::handle;
use mobius_guest::mm::paging::{Mmu, PageAttrs, PAGE_SIZE};
use mobius_guest::mm::vmm::*;
use mobius_shared::stats::FaultKind;

const RW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);
const URW: MemFlags = MemFlags::USER.union(RW);
const P: u64 = PAGE_SIZE;
const DZ: FaultOutcome = FaultOutcome::Resolved(FaultKind::DemandZero);

fn count(vmm: &TestVmm, kind: FaultKind) -> u64 {
    vmm.lock().fault_stats().get(kind).count
}

fn mapping(vmm: &TestVmm, space: SpaceId, page: u64) -> Option<(u64, PageAttrs)> {
    let vm = vmm.lock();
    let root = vm.root(space).ok()?;
    vm.mmu().translate(root, page)
}

fn invariants(vmm: &TestVmm, handles: &BTreeMap<DescId, u32>) {
    vmm.lock().check_invariants(handles).expect("invariants");
}

/// Runs of faults across several record chunks: every page gets its own
/// zero frame, recorded in the area, counted once with one lookup each.
#[test]
fn runs_of_demand_zero_faults_map_record_and_count() {
    let vmm = setup(512);
    let base = vmm.lock().alloc(KERNEL_SPACE, 200, 0, RW).unwrap();
    // Out of order, so the chunk the records remember changes.
    let order: Vec<u64> = (100..200).chain(0..100).collect();
    for &i in &order {
        assert_eq!(
            handle(&vmm, KERNEL_SPACE, base + i * P + 8, Access::WRITE),
            DZ
        );
    }
    let mut frames = std::collections::BTreeSet::new();
    for i in 0..200 {
        let (frame, attrs) = mapping(&vmm, KERNEL_SPACE, base + i * P).expect("mapped");
        assert!(attrs.contains(PageAttrs::WRITABLE));
        assert!(frames.insert(frame), "frame mapped twice");
    }
    let mut vm = vmm.lock();
    let NodeKind::Mapped { desc, .. } = vm.lookup(KERNEL_SPACE, base).unwrap().kind else {
        panic!("not mapped");
    };
    let records = &vm.area(desc).unwrap().records;
    assert_eq!(records.frames(), 200);
    for i in 0..200 {
        let (frame, _) = vm
            .mmu()
            .translate(vm.root(KERNEL_SPACE).unwrap(), base + i * P)
            .unwrap();
        assert_eq!(records.get(i) & rec::ADDR, frame);
    }
    let s = vm.fault_stats();
    assert_eq!(s.get(FaultKind::DemandZero).count, 200);
    assert_eq!(s.get(FaultKind::ZeroPoolHit).count, 200);
    // 200 faults plus the lookup above.
    assert_eq!(vm.node_stats().lookups, 201);
    drop(vm);
    invariants(&vmm, &BTreeMap::new());
}

/// A read maps a clean page; the write upgrades that same mapping.
#[test]
fn upgrade_keeps_the_frame_and_sets_writable() {
    let vmm = setup(64);
    let base = vmm.lock().alloc(KERNEL_SPACE, 4, 0, RW).unwrap();
    for i in 0..4 {
        assert_eq!(handle(&vmm, KERNEL_SPACE, base + i * P, Access::READ), DZ);
    }
    for i in 0..4 {
        let (frame, attrs) = mapping(&vmm, KERNEL_SPACE, base + i * P).unwrap();
        assert!(!attrs.contains(PageAttrs::WRITABLE));
        let present = Access {
            present: true,
            ..Access::WRITE
        };
        assert_eq!(
            handle(&vmm, KERNEL_SPACE, base + i * P, present),
            FaultOutcome::Resolved(FaultKind::Upgrade)
        );
        let (again, attrs) = mapping(&vmm, KERNEL_SPACE, base + i * P).unwrap();
        assert_eq!(again, frame);
        assert!(attrs.contains(PageAttrs::WRITABLE));
        // A second write fault on it is spurious (stale TLB entry).
        assert_eq!(
            handle(&vmm, KERNEL_SPACE, base + i * P, present),
            FaultOutcome::Spurious
        );
    }
    assert_eq!(count(&vmm, FaultKind::Upgrade), 4);
    invariants(&vmm, &BTreeMap::new());
}

/// Freeing an area forgets the hint: a new read-only area at the same
/// address refuses writes, and a fault on the freed range is unresolved.
#[test]
fn hint_does_not_outlive_its_node() {
    let vmm = setup(64);
    let a = vmm.lock().alloc(KERNEL_SPACE, 4, 0, RW).unwrap();
    assert_eq!(handle(&vmm, KERNEL_SPACE, a, Access::WRITE), DZ);
    assert_eq!(handle(&vmm, KERNEL_SPACE, a + P, Access::WRITE), DZ);
    vmm.lock().free(KERNEL_SPACE, a).unwrap();
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, a + 2 * P, Access::WRITE),
        FaultOutcome::Unresolved
    );
    let b = vmm
        .lock()
        .alloc(KERNEL_SPACE, 2, 0, MemFlags::READ)
        .unwrap();
    assert_eq!(b, a);
    assert_eq!(handle(&vmm, KERNEL_SPACE, b, Access::READ), DZ);
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, b + P, Access::WRITE),
        FaultOutcome::Protection
    );
    // Past the new, shorter area: nothing there any more.
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, a + 3 * P, Access::WRITE),
        FaultOutcome::Unresolved
    );
    invariants(&vmm, &BTreeMap::new());
}

/// A user-half hint belongs to its address space.
#[test]
fn hint_is_per_space() {
    let vmm = setup(64);
    let (s1, s2) = {
        let mut vm = vmm.lock();
        (vm.create_space().unwrap(), vm.create_space().unwrap())
    };
    let a = vmm.lock().alloc(s1, 4, 0, URW).unwrap();
    assert_eq!(handle(&vmm, s1, a, Access::USER_WRITE), DZ);
    assert_eq!(
        handle(&vmm, s2, a + P, Access::USER_WRITE),
        FaultOutcome::Unresolved
    );
    assert_eq!(handle(&vmm, s1, a + P, Access::USER_WRITE), DZ);
    assert!(mapping(&vmm, s2, a + P).is_none());
    // Kernel-mode access to a user page is fine, user access to a kernel one is not.
    let k = vmm.lock().alloc(s1, 1, 0, RW).unwrap();
    assert_eq!(handle(&vmm, s1, k, Access::WRITE), DZ);
    let n = vmm.lock().alloc(s1, 2, 0, RW).unwrap();
    assert_eq!(handle(&vmm, s1, n, Access::WRITE), DZ);
    assert_eq!(
        handle(&vmm, s1, n + P, Access::USER_WRITE),
        FaultOutcome::Protection
    );
    invariants(&vmm, &BTreeMap::new());
}

/// A page another mapping of a shared area has materialised is mapped to
/// the same frame, also when the hint covers the faulting node.
#[test]
fn shared_pages_come_from_the_records() {
    let vmm = setup(64);
    let a = vmm.lock().alloc(KERNEL_SPACE, 3, 0, RW).unwrap();
    assert_eq!(handle(&vmm, KERNEL_SPACE, a, Access::WRITE), DZ);
    assert_eq!(handle(&vmm, KERNEL_SPACE, a + P, Access::WRITE), DZ);
    let h = vmm.lock().share(KERNEL_SPACE, a, "shared").unwrap();
    let b = vmm.lock().map_shared(KERNEL_SPACE, &h, 0, RW).unwrap();
    // Fills the hint with b's node, then b's pages 0 and 1 take it.
    assert_eq!(handle(&vmm, KERNEL_SPACE, b + 2 * P, Access::WRITE), DZ);
    for i in 0..3 {
        if i < 2 {
            // The frame exists already: mapped, not zeroed (shared).
            assert_eq!(
                handle(&vmm, KERNEL_SPACE, b + i * P, Access::WRITE),
                FaultOutcome::Resolved(FaultKind::Shared)
            );
        }
        let fa = mapping(&vmm, KERNEL_SPACE, a + i * P).map(|m| m.0);
        let fb = mapping(&vmm, KERNEL_SPACE, b + i * P).map(|m| m.0);
        if i < 2 {
            assert_eq!(fa, fb, "page {i} not shared");
        } else {
            assert!(fa.is_none() && fb.is_some());
        }
    }
    let handles = BTreeMap::from([(h.desc(), 1)]);
    invariants(&vmm, &handles);
    vmm.lock().close_handle(h).unwrap();
}

/// With the zero pool and fresh frames gone, the short path steps aside and
/// the full path zeroes dirty frames: every page still reads zero.
#[test]
fn no_dirty_frame_on_the_short_path() {
    let vmm = setup(16 + 40);
    let a = vmm.lock().alloc(KERNEL_SPACE, 64, 0, RW).unwrap();
    let mut mapped = 0;
    while handle(&vmm, KERNEL_SPACE, a + mapped * P, Access::WRITE) == DZ {
        let frame = mapping(&vmm, KERNEL_SPACE, a + mapped * P).unwrap().0;
        vmm.lock().mmu_mut().write_frame(frame, 0, &[0xAB; 64]);
        mapped += 1;
    }
    assert!(mapped > 4);
    vmm.lock().free(KERNEL_SPACE, a).unwrap();
    let b = vmm.lock().alloc(KERNEL_SPACE, 64, 0, RW).unwrap();
    for i in 0..mapped {
        assert_eq!(handle(&vmm, KERNEL_SPACE, b + i * P, Access::WRITE), DZ);
        let frame = mapping(&vmm, KERNEL_SPACE, b + i * P).unwrap().0;
        let mut bytes = [1u8; 64];
        vmm.lock().mmu().read_frame(frame, 0, &mut bytes);
        assert_eq!(bytes, [0; 64], "page {i} not zero");
    }
    assert_eq!(
        count(&vmm, FaultKind::ZeroPoolHit) + count(&vmm, FaultKind::ZeroPoolMiss),
        count(&vmm, FaultKind::DemandZero)
    );
    invariants(&vmm, &BTreeMap::new());
}
