//! The portable in-guest self-test suite, run on the host's soft MMU.
mod common;

use common::setup;
use mobius_guest::mm::selftest;

#[test]
fn selftest_passes_on_soft_mmu() {
    let vmm = setup(2048);
    let mut failures = Vec::new();
    let summary = selftest::run(&vmm, &mut |name, result| {
        if let Err(why) = result {
            failures.push(format!("{name}: {why}"));
        }
    });
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.passed, 22);
    // The suite gives back everything it took.
    vmm.lock().check_invariants(&Default::default()).unwrap();
    assert_eq!(vmm.lock().node_stats().areas, 0);
}

#[test]
fn vmm_is_send() {
    fn send<T: Send>() {}
    send::<mobius_guest::mm::vmm::Vmm<mobius_guest::mm::soft_mmu::SoftMmu>>();
}
