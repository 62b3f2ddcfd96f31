//! Hostile-guest floods for the host's bounds (issue 12's measurements,
//! `make bench-floods`): for `ms=` milliseconds of guest time, send the host
//! as much of one thing as the guest can. The host must stay within its
//! documented memory, output and CPU bounds whatever comes.
use crate::arch::x86_64::{cpu, identity, tsc};
use crate::println;
use crate::report;
use mobius_shared::stats::SnapshotReason;

/// Unknown ports the port flood walks (nothing answers there).
const PORT_BASE: u16 = 0x200;
/// An MMIO window no device claims, below 4 GiB.
const MMIO_BASE: u64 = 0xE000_0000;
const MMIO_PAGES: u64 = 16;

/// Run flood workload `name` for `ms` milliseconds; how many actions.
pub fn run(name: &str, ms: u64) -> Option<u64> {
    let deadline = cpu::rdtsc().saturating_add(tsc::ns_to_cycles(ms.saturating_mul(1_000_000)));
    let mut n = 0u64;
    let until = |n: &mut u64, mut step: Box<dyn FnMut(u64)>| {
        while cpu::rdtsc() < deadline {
            step(*n);
            *n += 1;
        }
    };
    match name {
        "flood-stats" => until(
            &mut n,
            Box::new(|_| {
                report::send_snapshot(SnapshotReason::Interval);
            }),
        ),
        "flood-ports" => until(
            &mut n,
            Box::new(|i| cpu::outb(PORT_BASE + (i % 0x100) as u16, i as u8)),
        ),
        "flood-mmio" => {
            for p in 0..MMIO_PAGES {
                if !identity::map_device(MMIO_BASE + p * 4096) {
                    println!("flood-mmio: cannot map the MMIO window");
                    return None;
                }
            }
            until(
                &mut n,
                Box::new(|i| {
                    let at = MMIO_BASE + (i % (MMIO_PAGES * 1024)) * 4;
                    // SAFETY: an identity-mapped device window no device
                    // claims: the write exits to the host, which ignores it.
                    unsafe {
                        (crate::arch::x86_64::direct::phys_to_virt(at) as *mut u32)
                            .write_volatile(i as u32)
                    }
                }),
            )
        }
        "flood-console" => until(
            &mut n,
            Box::new(|i| println!("flood-console: line {i} of a guest that will not stop talking")),
        ),
        "flood-descriptors" => until(
            &mut n,
            Box::new(|_| {
                crate::dev::send_bogus_descriptors();
            }),
        ),
        "flood-disk" => return super::flood_disk::run(deadline),
        _ => return None,
    }
    Some(n)
}

use alloc::boxed::Box;
