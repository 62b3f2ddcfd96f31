//! The fault recorder on the software MMU: with recording on, the real fault
//! path (`mm::fault::handle`, short and long ways) appends one record per
//! counted fault to the ring, with its kind, address, access, area, process
//! and instruction pointer; a full ring drops and counts; sampling keeps one
//! in N. One test: the recorder is a kernel-wide static.
mod common;

use common::*;
use mobius_guest::mm::fault::handle;
use mobius_guest::mm::paging::PAGE_SIZE;
use mobius_guest::mm::record;
use mobius_guest::mm::vmm::*;
use mobius_shared::record::{access, area_flags, AreaType, FaultRecord, RECORD_LEN};
use mobius_shared::stats::FaultKind;

const RW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);
const P: u64 = PAGE_SIZE;

/// The waiting records, oldest first, and the next frame's header.
fn drain_all() -> (Vec<FaultRecord>, mobius_shared::record::FrameHeader) {
    let mut guard = record::try_ring().expect("not busy");
    let ring = guard.as_mut().expect("started");
    let mut out = Vec::new();
    while !ring.is_empty() {
        let n = ring.oldest(usize::MAX).len();
        let bytes = record::slot_bytes(ring.oldest(usize::MAX));
        out.extend(
            bytes
                .chunks(RECORD_LEN)
                .map(|r| FaultRecord::read(r).expect("valid")),
        );
        ring.consume(n);
    }
    let header = ring.next_header(0, false);
    (out, header)
}

#[test]
fn the_fault_path_records_what_it_counts() {
    let vmm = setup(512);
    let base = vmm.lock().alloc(KERNEL_SPACE, 64, 0, RW).unwrap();
    let ro = vmm
        .lock()
        .alloc(KERNEL_SPACE, 1, 0, MemFlags::READ)
        .unwrap();
    // Off: the fault is counted, nothing is recorded.
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, base, Access::WRITE).kind(),
        Some(FaultKind::DemandZero)
    );
    assert!(!record::on());

    assert!(record::start(1, 16, 2_000_000));
    record::set_pid(7);
    record::set_trap_rip(0x1234);
    for i in 1..=20 {
        handle(&vmm, KERNEL_SPACE, base + i * P + 8, Access::WRITE);
    }
    assert!(record::drain_wanted(), "half full asks for a drain");
    let (recs, header) = drain_all();
    assert!(!record::drain_wanted());
    // 16 fit, 4 dropped and counted; all 20 seen.
    assert_eq!(recs.len(), 16);
    assert_eq!((header.dropped, header.seen, header.ring), (4, 20, 16));
    for (i, r) in (1u64..).zip(&recs) {
        assert_eq!(r.addr, base + i * P + 8);
        assert_eq!(r.fault_kind(), FaultKind::DemandZero);
        assert_eq!(r.access, access::WRITE | access::TRAP | access::POOL_HIT);
        assert_eq!((r.pid, r.rip, r.area_base), (7, 0x1234, base));
        assert_eq!(r.area(), AreaType::Normal);
        assert_eq!(r.area_flags & area_flags::WRITE, area_flags::WRITE);
        assert!(r.cycles > 0);
    }
    assert!(recs.windows(2).all(|w| w[0].tsc < w[1].tsc), "in order");

    // The long way: a protection fault (write to a read-only area) and an
    // address no area covers; a user copy has no instruction pointer.
    record::set_trap_rip(0);
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, ro, Access::WRITE),
        FaultOutcome::Protection
    );
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, 0x10_0000_0000, Access::READ),
        FaultOutcome::Unresolved
    );
    // A read maps the page clean, the write after it upgrades it.
    let page = base + 40 * P;
    handle(&vmm, KERNEL_SPACE, page, Access::READ);
    let present = Access {
        present: true,
        ..Access::WRITE
    };
    assert_eq!(
        handle(&vmm, KERNEL_SPACE, page, present),
        FaultOutcome::Resolved(FaultKind::Upgrade)
    );
    let (recs, header) = drain_all();
    let kinds: Vec<FaultKind> = recs.iter().map(FaultRecord::fault_kind).collect();
    assert_eq!(
        kinds,
        [
            FaultKind::Protection,
            FaultKind::Unresolved,
            FaultKind::DemandZero,
            FaultKind::Upgrade
        ]
    );
    assert_eq!((recs[0].area(), recs[0].area_base), (AreaType::Normal, ro));
    assert_eq!(recs[0].area_flags & area_flags::WRITE, 0, "read-only");
    assert_eq!((recs[1].area(), recs[1].area_base), (AreaType::None, 0));
    assert_eq!(recs[3].access, access::WRITE | access::PRESENT);
    assert!(recs
        .iter()
        .all(|r| r.rip == 0 && r.access & access::TRAP == 0));
    assert_eq!((header.dropped, header.seen), (4, 24));

    // One in four: the first, then every fourth.
    assert!(record::start(4, 16, 0));
    for i in 41..=50 {
        handle(&vmm, KERNEL_SPACE, base + i * P, Access::WRITE);
    }
    let (recs, header) = drain_all();
    let pages: Vec<u64> = recs.iter().map(|r| (r.addr - base) / P).collect();
    assert_eq!(pages, [41, 45, 49]);
    assert_eq!((header.sample, header.seen), (4, 34));
}
