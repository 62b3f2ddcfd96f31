//! Unit tests of the frame allocator and the frame counts.

use super::*;

/// Disjoint RAM regions, as a memory map has, from (gap, length) pairs:
/// each starts after the previous one ends (a gap, often none, then a
/// length), unaligned; the first often at 0, where page 0 is reserved.
fn memory_map(spec: &[(u64, u64)]) -> Vec<MemRegion> {
    let mut at = 0;
    spec.iter()
        .map(|&(gap, len)| {
            let r = MemRegion::new(at + gap * 3001, len * 1000);
            at = r.end();
            r
        })
        .collect()
}

proptest::proptest! {
    /// The count without an allocator equals the allocator's own.
    #[test]
    fn usable_frames_agrees_with_the_allocator(
        ram in proptest::collection::vec((0u64..16, 0u64..4096), 1..4),
        reserved in proptest::collection::vec((0u64..8192, 0u64..4096), 0..5),
    ) {
        let ram = memory_map(&ram);
        let reserved: Vec<MemRegion> =
            reserved.iter().map(|&(b, l)| MemRegion::new(b * 700, l * 900)).collect();
        let fa = FrameAllocator::new(&ram, &reserved, Box::new(CpuZeroing));
        proptest::prop_assert_eq!(usable_frames(ram.iter().copied(), &reserved), fa.stats().total);
    }

    /// The same for the kernel's case, one reserved range from 0 (the
    /// short count), ending anywhere, in a page or between pages.
    #[test]
    fn usable_frames_agrees_for_a_low_reserved_range(
        ram in proptest::collection::vec((0u64..16, 0u64..4096), 1..4),
        low in 1u64..12_000_000,
    ) {
        let ram = memory_map(&ram);
        let reserved = [MemRegion::new(0, low)];
        let fa = FrameAllocator::new(&ram, &reserved, Box::new(CpuZeroing));
        proptest::prop_assert_eq!(usable_frames(ram.iter().copied(), &reserved), fa.stats().total);
    }
}
use crate::mm::soft_mmu::SoftMmu;
use alloc::boxed::Box;

/// The reserved run at the bottom of RAM (low MiB, kernel, heap) is
/// skipped in one step: the first allocation creates one record, not one
/// per reserved frame (boot runs in emulated ring 0 on kvm_pvm).
#[test]
fn leading_reserved_run_costs_no_records() {
    let mut f = FrameAllocator::new(
        &[
            MemRegion::new(0, 0x9f000),
            MemRegion::new(0x10_0000, 0x100_0000),
        ],
        &[
            MemRegion::new(0, 0x10_0000),
            MemRegion::new(0x10_0000, 0x40_0000),
        ],
        Box::new(CpuZeroing),
    );
    assert_eq!(f.alloc_known_zero(), Some(0x50_0000));
    assert_eq!(f.records.len(), 1);
    assert_eq!(f.state(0x50_0000), Some(FrameState::Used));
    assert_eq!(f.state(0x20_0000), None);
    assert_eq!(f.stats().total, (0x100_0000 - 0x40_0000) / PAGE_SIZE);
    f.check_invariants().expect("consistent");
}

fn fa(frames: u64) -> FrameAllocator {
    FrameAllocator::new(
        &[MemRegion::new(0, frames * PAGE_SIZE)],
        &[MemRegion::new(PAGE_SIZE, PAGE_SIZE)],
        Box::new(CpuZeroing),
    )
}

#[test]
fn reserved_and_page_zero_never_handed_out() {
    let mut a = fa(8);
    assert_eq!(a.stats().total, 6);
    let mut mmu = SoftMmu::new();
    let mut got = Vec::new();
    while let Some((f, hit)) = a.alloc_zeroed(&mut mmu) {
        assert!(hit);
        got.push(f);
    }
    assert_eq!(got.len(), 6);
    assert!(!got.contains(&0) && !got.contains(&PAGE_SIZE));
    assert_eq!(a.stats().exhausted, 1);
    a.check_invariants().unwrap();
}

#[test]
fn free_goes_dirty_then_zero_pool() {
    let mut a = fa(4);
    let mut mmu = SoftMmu::new();
    let (f, _) = a.alloc_zeroed(&mut mmu).unwrap();
    mmu.write_frame(f, 0, &[0xAA; 16]);
    a.free(f, &mut mmu).unwrap();
    assert_eq!(a.free(f, &mut mmu), Err(FrameError::NotUsed));
    let s = a.stats();
    assert_eq!((s.free, s.zeroed), (2, 1));
    // The double free is counted in every build (frames.free-errors), and
    // so is sharing a free frame.
    assert_eq!(s.free_errors, 1);
    assert_eq!(a.share(f), Err(FrameError::NotUsed));
    assert_eq!(a.stats().free_errors, 2);
    assert_eq!(a.zero_some(10, &mut mmu), 1);
    assert_eq!(a.stats().zeroed, 2);
    let mut buf = [1u8; 16];
    mmu.read_frame(f, 0, &mut buf);
    assert_eq!(buf, [0; 16]);
    a.check_invariants().unwrap();
}

#[test]
fn miss_zeroes_on_the_spot() {
    let mut a = fa(3); // one usable frame
    let mut mmu = SoftMmu::new();
    let (f, hit) = a.alloc_zeroed(&mut mmu).unwrap();
    assert!(hit);
    mmu.write_frame(f, 100, &[7; 8]);
    a.free(f, &mut mmu).unwrap();
    let (g, hit) = a.alloc_zeroed(&mut mmu).unwrap();
    assert_eq!((g, hit), (f, false));
    let mut buf = [1u8; 8];
    mmu.read_frame(g, 100, &mut buf);
    assert_eq!(buf, [0; 8]);
}

#[test]
fn pin_counts_are_wide() {
    // §9 row 33: pin 300 times, unpin 300 times.
    let mut a = fa(4);
    let f = a.alloc_any().unwrap();
    for i in 1..=300u32 {
        assert_eq!(a.pin(f), Ok(i));
    }
    let mut mmu = SoftMmu::new();
    assert_eq!(a.free(f, &mut mmu), Err(FrameError::Pinned));
    for i in (0..300u32).rev() {
        assert_eq!(a.unpin(f), Ok(i));
    }
    assert_eq!(a.unpin(f), Err(FrameError::PinCount));
    a.free(f, &mut mmu).unwrap();
}

#[test]
fn overlapping_reserved_ranges_counted_once() {
    let a = FrameAllocator::new(
        &[
            MemRegion::new(0, 16 * PAGE_SIZE),
            MemRegion::new(32 * PAGE_SIZE, 16 * PAGE_SIZE),
        ],
        &[
            MemRegion::new(2 * PAGE_SIZE, 4 * PAGE_SIZE),
            MemRegion::new(3 * PAGE_SIZE, 2 * PAGE_SIZE + 1),
            MemRegion::new(14 * PAGE_SIZE, 20 * PAGE_SIZE),
        ],
        Box::new(CpuZeroing),
    );
    // 32 frames; reserved: page 0, 2..6, 14..16, 32..34 → 1 + 4 + 2 + 2.
    assert_eq!(a.stats().total, 32 - 9);
    let mut a = a;
    let mut n = 0;
    while a.alloc_any().is_some() {
        n += 1;
    }
    assert_eq!(n, 23);
    a.check_invariants().unwrap();
}

#[test]
fn several_regions_and_unaligned_edges() {
    let a = FrameAllocator::new(
        &[
            MemRegion::new(0x10_0800, 0x3000),
            MemRegion::new(0x20_0000, 0x2000),
        ],
        &[],
        Box::new(CpuZeroing),
    );
    // 0x101000..0x103000 (2 frames) + 2 frames
    assert_eq!(a.stats().total, 4);
    assert_eq!(a.index_of(0x20_1000), Some(3));
    assert_eq!(a.phys_of(2), 0x20_0000);
    assert_eq!(a.index_of(0x30_0000), None);
}

struct Eager;
impl FrameZeroing for Eager {
    fn zero(&mut self, frame: PhysAddr, mmu: &mut dyn Mmu) {
        mmu.zero_frame(frame);
    }
    fn eager(&self) -> bool {
        true
    }
}

#[test]
fn eager_zeroing_refills_the_pool_on_free() {
    let mut a = FrameAllocator::new(&[MemRegion::new(0, 3 * PAGE_SIZE)], &[], Box::new(Eager));
    let mut mmu = SoftMmu::new();
    let f = a.alloc_any().unwrap();
    mmu.write_frame(f, 0, &[1]);
    a.free(f, &mut mmu).unwrap();
    assert_eq!(a.stats().zeroed, 2);
    let mut b = [9u8];
    mmu.read_frame(f, 0, &mut b);
    assert_eq!(b, [0]);
}
