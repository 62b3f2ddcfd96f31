//! Host-side timing of the fault paths on the soft MMU (not the guest
//! benchmark, which runs under KVM). Ignored by default; run with
//! `cargo test -p mobius-guest --release --test bench -- --ignored --nocapture`.
mod common;

use std::time::Instant;

use common::setup;
use mobius_guest::mm::fault;
use mobius_guest::mm::paging::PAGE_SIZE;
use mobius_guest::mm::vmm::{Access, MemFlags, KERNEL_SPACE, USER_START};

const N: u64 = 20_000;
const RW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);

/// Nanoseconds per demand-zero fault with `areas` areas present.
fn demand_zero_ns(areas: u64) -> f64 {
    let vmm = setup(N + 4096);
    let big = vmm.lock().alloc(KERNEL_SPACE, N, 0, RW).unwrap();
    for _ in 0..areas {
        vmm.lock().alloc(KERNEL_SPACE, 1, 0, RW).unwrap();
    }
    let t = Instant::now();
    for i in 0..N {
        let o = fault::handle(&vmm, KERNEL_SPACE, big + i * PAGE_SIZE, Access::WRITE);
        assert!(o.is_resolved());
    }
    t.elapsed().as_nanos() as f64 / N as f64
}

fn floor_ns() -> f64 {
    let vmm = setup(N + 4096);
    let t = Instant::now();
    for i in 0..N {
        assert!(vmm
            .lock()
            .floor_map(KERNEL_SPACE, USER_START + i * PAGE_SIZE));
    }
    t.elapsed().as_nanos() as f64 / N as f64
}

#[test]
#[ignore]
fn fault_costs() {
    let floor = floor_ns();
    let ten = demand_zero_ns(10);
    let many = demand_zero_ns(100_000);
    println!("floor (map one pre-zeroed frame): {floor:.0} ns");
    println!(
        "demand-zero, 10 areas:           {ten:.0} ns ({:.2}x floor)",
        ten / floor
    );
    println!(
        "demand-zero, 100000 areas:       {many:.0} ns ({:.2}x 10 areas)",
        many / ten
    );
}
