//! The capability checklist (spec §9) on the host, against the software MMU.
//! Each test names its row.
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use mobius_guest::mm::paging::{Mmu, PageAttrs, PAGE_SIZE};
use mobius_guest::mm::vmm::*;
use mobius_shared::stats::FaultKind;

const RW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);
const URW: MemFlags = MemFlags::USER.union(RW);
const P: u64 = PAGE_SIZE;

fn invariants(vmm: &TestVmm) {
    vmm.lock()
        .check_invariants(&BTreeMap::new())
        .expect("invariants");
}

/// The invariants with one open handle on each of `handles`.
fn invariants_with(vmm: &TestVmm, handles: &[DescId]) {
    let mut open = BTreeMap::new();
    for d in handles {
        *open.entry(*d).or_insert(0u32) += 1;
    }
    vmm.lock().check_invariants(&open).expect("invariants");
}

#[test]
fn row01_lookup_by_interior_address() {
    let vmm = setup(256);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let a = vm.alloc(s, 2, 0, URW).unwrap();
    let b = vm.alloc(s, 3, 0, URW).unwrap();
    let c = vm.alloc(s, 1, 0, URW).unwrap();
    assert_eq!(
        (a, b, c),
        (USER_START, USER_START + 2 * P, USER_START + 5 * P)
    );
    assert_eq!(vm.lookup(s, a + 1).unwrap().base, a);
    assert_eq!(vm.lookup(s, b + 3 * P - 1).unwrap().base, b);
    assert_eq!(vm.lookup(s, b).unwrap().area, Some(AreaType::Normal));
    vm.free(s, b).unwrap();
    assert_eq!(vm.lookup(s, b + P).unwrap().kind, NodeKind::Empty);
    assert!(vm.lookup(s, 0x1000).is_none());
    vm.check_invariants(&BTreeMap::new()).unwrap();
}

#[test]
fn row02_balanced_tree_100k_areas() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let n = 100_000u64;
    for i in 0..n {
        assert_eq!(
            vm.alloc(KERNEL_SPACE, 1, 0, URW).unwrap(),
            USER_START + i * P
        );
    }
    let info = vm
        .lookup(KERNEL_SPACE, USER_START + 77_777 * P + 5)
        .unwrap();
    assert_eq!(info.base, USER_START + 77_777 * P);
    assert!(info.depth <= 2 * 17, "depth {}", info.depth);
    assert!(vm.node_stats().max_lookup_depth <= 2 * 17);
    assert_eq!(vm.node_stats().areas, n);
}

#[test]
fn row03_automatic_placement_by_half() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let user_pages = (USER_END - USER_START) / P;
    assert_eq!(vm.alloc(s, user_pages, 0, URW).unwrap(), USER_START);
    assert_eq!(vm.alloc(s, 1, 0, URW), Err(VmError::AddressSpaceExhausted));
    let k = vm.alloc(s, 1, 0, RW).unwrap();
    assert_eq!(k, KERNEL_START);
    // Nothing straddles: a request larger than the kernel half fails.
    let kernel_pages = (KERNEL_END - KERNEL_START) / P;
    assert_eq!(
        vm.alloc(s, kernel_pages, 0, RW),
        Err(VmError::AddressSpaceExhausted)
    );
    vm.check_invariants(&BTreeMap::new()).unwrap();
}

#[test]
fn row04_fixed_placement_checks_whole_range() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let a = USER_START + 10 * P;
    vm.alloc(s, 4, a, URW).unwrap();
    let before = vm.state();
    assert_eq!(vm.alloc(s, 20, USER_START, URW), Err(VmError::Overlap));
    assert_eq!(vm.alloc(s, 1, a + 3 * P, URW), Err(VmError::Overlap));
    assert_eq!(vm.alloc(s, 2, USER_END - P, URW), Err(VmError::OutOfRange));
    assert_eq!(vm.alloc(s, 1, KERNEL_END, RW), Err(VmError::OutOfRange));
    assert_eq!(vm.state(), before);
    assert_eq!(vm.alloc(s, 10, USER_START, URW).unwrap(), USER_START);
}

#[test]
fn row05_split_and_coalesce() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let initial = vm.nodes(s).unwrap().len();
    let mid = USER_START + 1000 * P;
    vm.alloc(s, 3, mid, URW).unwrap();
    assert_eq!(vm.nodes(s).unwrap().len(), initial + 2);
    vm.free(s, mid).unwrap();
    assert_eq!(vm.nodes(s).unwrap().len(), initial);
    let at_base = vm.alloc(s, 3, USER_START, URW).unwrap();
    assert_eq!(vm.nodes(s).unwrap().len(), initial + 1);
    vm.free(s, at_base).unwrap();
    assert_eq!(vm.nodes(s).unwrap().len(), initial);
}

#[test]
fn row06_reserved_ranges() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let x = vm.reserve(s, 16, 0).unwrap();
    assert_eq!(x, USER_START);
    let auto = vm.alloc(s, 4, 0, URW).unwrap();
    assert!(auto >= x + 16 * P);
    let fixed = vm.alloc(s, 2, x + 4 * P, URW).unwrap();
    assert_eq!(fixed, x + 4 * P);
    assert_eq!(vm.lookup(s, x).unwrap().kind, NodeKind::Reserved);
    assert_eq!(vm.lookup(s, x).unwrap().pages, 4);
    assert_eq!(vm.lookup(s, x + 6 * P).unwrap().kind, NodeKind::Reserved);
    assert_eq!(vm.lookup(s, x + 6 * P).unwrap().pages, 10);
    // Reserving over an area fails; a reservation can be freed.
    assert_eq!(vm.reserve(s, 1, fixed), Err(VmError::Overlap));
    vm.free(s, x + 6 * P).unwrap();
    assert_eq!(vm.lookup(s, x + 6 * P).unwrap().kind, NodeKind::Empty);
    // A 1 TiB reservation costs nothing but a node.
    let frames = vm.frames().stats();
    vm.reserve(s, 1 << 28, 0).unwrap();
    assert_eq!(vm.frames().stats(), frames);
    vm.check_invariants(&BTreeMap::new()).unwrap();
}

#[test]
fn row07_literal_and_row08_page_zero() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let lit = MemFlags::LITERAL | RW;
    assert_eq!(vm.map_phys(s, 1, 0, 0xB8000, lit), Err(VmError::OutOfRange));
    assert_eq!(vm.map_phys(s, 1, 0, 0xB8000, RW).unwrap(), KERNEL_START);
    assert_eq!(vm.alloc(s, 1, 0x1000, URW), Err(VmError::OutOfRange));
    assert_eq!(vm.alloc(s, 1, 0xFFC0_0000, URW), Err(VmError::OutOfRange));
    assert_eq!(
        vm.alloc(s, 1, 0xFFFF_FFFF_FFC0_0000, RW),
        Err(VmError::OutOfRange)
    );
}

#[test]
fn row09_demand_zero() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let a = vmm.lock().alloc(s, 4, 0, URW).unwrap();
    // Touch page 0 first so the page tables exist.
    write(&vmm, s, a, &[1, 2, 3], true).unwrap();
    let free = free_frames(&vmm);
    assert_eq!(read(&vmm, s, a + P + 10, 64, true).unwrap(), vec![0; 64]);
    assert_eq!(free_frames(&vmm), free - 1);
    let vm = vmm.lock();
    let st = vm.fault_stats();
    assert_eq!(st.get(FaultKind::DemandZero).count, 2);
    assert_eq!(st.get(FaultKind::ZeroPoolHit).count, 2);
}

#[test]
fn zero_pool_miss_then_batch_zeroing() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let a = vmm.lock().alloc(s, 300, 0, URW).unwrap();
    let mut i = 0;
    while write(&vmm, s, a + i * P, &[0xEE; 8], false).is_ok() {
        i += 1;
    }
    assert!(vmm.lock().frames().stats().exhausted > 0);
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Unresolved), 1);
    vmm.lock().free(s, a).unwrap();
    // Freed area frames are dirty (only the emptied page tables went to the
    // zero pool): touching many pages zeroes on the fault path.
    let b = vmm.lock().alloc(s, 20, 0, URW).unwrap();
    for i in 0..20 {
        assert_eq!(read(&vmm, s, b + i * P, 8, false).unwrap(), vec![0; 8]);
    }
    let misses = vmm.lock().fault_stats().count(FaultKind::ZeroPoolMiss);
    assert!(misses > 0);
    assert!(vmm.lock().zero_some(1000) > 0);
    let c = vmm.lock().alloc(s, 20, 0, URW).unwrap();
    for i in 0..20 {
        assert_eq!(read(&vmm, s, c + i * P, 8, false).unwrap(), vec![0; 8]);
    }
    assert_eq!(
        vmm.lock().fault_stats().count(FaultKind::ZeroPoolMiss),
        misses
    );
    invariants(&vmm);
}

#[test]
fn row10_clean_dirty_and_protection() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let a = vmm.lock().alloc(s, 2, 0, URW).unwrap();
    read(&vmm, s, a, 1, true).unwrap();
    let (_, attrs) = pte(&vmm, s, a).unwrap();
    assert!(
        !attrs.contains(PageAttrs::WRITABLE),
        "read fault maps clean"
    );
    write(&vmm, s, a, &[9], true).unwrap();
    assert!(pte(&vmm, s, a).unwrap().1.contains(PageAttrs::WRITABLE));
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Upgrade), 1);
    assert_eq!(read(&vmm, s, a, 1, true).unwrap(), vec![9]);

    let ro = vmm
        .lock()
        .alloc(s, 1, 0, MemFlags::USER | MemFlags::READ)
        .unwrap();
    let free = free_frames(&vmm);
    assert_eq!(
        write(&vmm, s, ro, &[1], true),
        Err(FaultOutcome::Protection)
    );
    assert_eq!(free_frames(&vmm), free, "no frame for a protection fault");
    read(&vmm, s, ro, 1, true).unwrap();
    assert_eq!(
        write(&vmm, s, ro, &[1], false),
        Err(FaultOutcome::Protection)
    );
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Protection), 2);
}

#[test]
fn row11_user_access_to_kernel_area() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let k = vmm.lock().alloc(s, 1, 0, RW).unwrap();
    let kp = vmm.lock().alloc(s, 1, USER_START, RW).unwrap(); // kernel-only page in the user half
    let free = free_frames(&vmm);
    assert_eq!(read(&vmm, s, k, 1, true), Err(FaultOutcome::Protection));
    assert_eq!(
        write(&vmm, s, kp, &[1], true),
        Err(FaultOutcome::Protection)
    );
    assert_eq!(free_frames(&vmm), free);
    write(&vmm, s, k, &[1], false).unwrap();
    // Present now, still not for user mode.
    assert_eq!(read(&vmm, s, k, 1, true), Err(FaultOutcome::Protection));
    // Kernel-half areas cannot be user areas.
    assert_eq!(
        vmm.lock().alloc(s, 1, KERNEL_START + 64 * P, URW),
        Err(VmError::InvalidFlags)
    );
}

#[test]
fn row13_map_areas_and_row14_cache_attributes() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let phys = 200 * P;
    let flags = RW | MemFlags::CACHE_NONE;
    let m = vmm.lock().map_phys(s, 2, 0, phys, flags).unwrap();
    write(&vmm, s, m + P + 4, b"hi", false).unwrap();
    let (frame, attrs) = pte(&vmm, s, m + P).unwrap();
    assert_eq!(frame, phys + P);
    assert!(attrs.contains(PageAttrs::CACHE_DISABLE | PageAttrs::NO_EXECUTE));
    assert!(!attrs.contains(PageAttrs::WRITE_THROUGH));
    let free = free_frames(&vmm);
    vmm.lock().free(s, m).unwrap();
    assert!(free_frames(&vmm) >= free, "only page tables come back");
    assert!(pte(&vmm, s, m + P).is_none());
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Map), 1);
    let wt = vmm.lock().alloc(s, 1, 0, RW | MemFlags::CACHE_WT).unwrap();
    read(&vmm, s, wt, 1, false).unwrap();
    assert!(pte(&vmm, s, wt)
        .unwrap()
        .1
        .contains(PageAttrs::WRITE_THROUGH));
    assert_eq!(
        vmm.lock().map_phys(s, 1, 0, 0x1234, RW),
        Err(VmError::Unaligned)
    );
    invariants(&vmm);
}

fn file_of(len: usize) -> (Arc<MemFile>, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
    (Arc::new(MemFile::new(data.clone())), data)
}

#[test]
fn row15_file_areas() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let (file, data) = file_of(5000);
    let f = vmm.lock().map_file(s, file.clone(), 0, 0, 2, URW).unwrap();
    assert_eq!(read(&vmm, s, f, 4096, true).unwrap(), data[..4096]);
    let page1 = read(&vmm, s, f + P, 4096, true).unwrap();
    assert_eq!(page1[..904], data[4096..]);
    assert!(page1[904..].iter().all(|b| *b == 0));
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::FileReadIn), 2);
    // With an offset of one page.
    let g = vmm.lock().map_file(s, file.clone(), P, 0, 1, URW).unwrap();
    assert_eq!(read(&vmm, s, g, 16, true).unwrap(), data[4096..4112]);
    assert_eq!(
        vmm.lock().map_file(s, file, 100, 0, 1, URW),
        Err(VmError::Unaligned)
    );
    // Writes are private to the area.
    write(&vmm, s, f, &[0], true).unwrap();
    assert_eq!(read(&vmm, s, f, 1, true).unwrap(), vec![0]);
    invariants(&vmm);
}

#[test]
fn row17_image_sections() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let (file, data) = file_of(3 * 4096);
    let text = Section {
        offset: 0,
        size: 6000,
        file_offset: 0,
        file_size: 6000,
        flags: MemFlags::READ,
        execute: true,
    };
    let bss = Section {
        offset: 2 * P,
        size: 8192,
        file_offset: 0,
        file_size: 0,
        flags: RW,
        execute: false,
    };
    let dat = Section {
        offset: 4 * P,
        size: 100,
        file_offset: 8192,
        file_size: 50,
        flags: RW,
        execute: false,
    };
    let img = vmm
        .lock()
        .map_image(s, file, &[text, bss, dat], 0, 6, URW)
        .unwrap();
    assert_eq!(read(&vmm, s, img, 8, true).unwrap(), data[..8]);
    let p1 = read(&vmm, s, img + P, 4096, true).unwrap();
    assert_eq!(p1[..6000 - 4096], data[4096..6000]);
    assert!(
        p1[6000 - 4096..].iter().all(|b| *b == 0),
        "section tail zero-filled"
    );
    assert_eq!(
        write(&vmm, s, img, &[1], true),
        Err(FaultOutcome::Protection)
    );
    assert!(!pte(&vmm, s, img).unwrap().1.contains(PageAttrs::NO_EXECUTE));
    assert_eq!(read(&vmm, s, img + 3 * P, 8, true).unwrap(), vec![0; 8]);
    write(&vmm, s, img + 2 * P, &[5], true).unwrap();
    assert!(pte(&vmm, s, img + 2 * P)
        .unwrap()
        .1
        .contains(PageAttrs::NO_EXECUTE));
    let d = read(&vmm, s, img + 4 * P, 64, true).unwrap();
    assert_eq!(d[..50], data[8192..8242]);
    assert!(d[50..].iter().all(|b| *b == 0));
    assert_eq!(
        read(&vmm, s, img + 5 * P, 1, true),
        Err(FaultOutcome::Unresolved),
        "gap between sections"
    );
    // Pages 0, 1 and 4 hold file bytes (read in); pages 2 and 3 lie past
    // their sections' file data (zero-filled: demand-zero, not a read-in).
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Image), 3);
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::DemandZero), 2);
    let bad = Section { offset: P, ..text };
    let (f2, _) = file_of(10);
    assert_eq!(
        vmm.lock().map_image(s, f2, &[text, bad], 0, 6, URW),
        Err(VmError::InvalidArea)
    );
    invariants(&vmm);
}

/// A file whose reads fail from a given offset on (a failing medium).
struct Flaky {
    inner: MemFile,
    fail_from: std::sync::atomic::AtomicU64,
}

impl FileBacking for Flaky {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        if offset >= self.fail_from.load(Ordering::SeqCst) {
            return Err(FileError);
        }
        self.inner.read_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

#[test]
fn row20_read_failure_is_terminal() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let (_, data) = file_of(4 * 4096);
    let file = Arc::new(Flaky {
        inner: MemFile::new(data),
        fail_from: u64::MAX.into(),
    });
    let f = vmm.lock().map_file(s, file.clone(), 0, 0, 4, URW).unwrap();
    read(&vmm, s, f, 1, true).unwrap();
    file.fail_from.store(P, Ordering::SeqCst);
    let free = free_frames(&vmm);
    assert_eq!(read(&vmm, s, f + P, 1, true), Err(FaultOutcome::ReadFailed));
    file.fail_from.store(u64::MAX, Ordering::SeqCst);
    assert_eq!(
        read(&vmm, s, f + P, 1, true),
        Err(FaultOutcome::ReadFailed),
        "terminal"
    );
    assert_eq!(free_frames(&vmm), free);
    // Other pages keep working.
    read(&vmm, s, f, 1, true).unwrap();
    read(&vmm, s, f + 2 * P, 1, true).unwrap();
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Unresolved), 2);
    vmm.lock().free(s, f).unwrap();
    invariants(&vmm);
}

#[test]
fn file_pages_past_the_end_read_zero() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let (file, _) = file_of(3 * 4096);
    let f = vmm.lock().map_file(s, file.clone(), 0, 0, 3, URW).unwrap();
    file.truncate(100);
    assert_eq!(read(&vmm, s, f + P, 4, true).unwrap(), vec![0; 4]);
    let head = read(&vmm, s, f, 101, true).unwrap();
    assert_eq!(head[100], 0);
}

#[test]
fn row21_callbacks() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let calls = Arc::new(AtomicUsize::new(0));
    let (vmm2, calls2) = (vmm.clone(), calls.clone());
    let handler: Arc<CallbackFn> =
        Arc::new(move |m: &mut dyn CallbackMapper, f: &CallbackFault| {
            // Called without the VMM lock: taking it here must not deadlock.
            assert!(
                vmm2.try_lock().is_some(),
                "handler called with the lock held"
            );
            calls2.fetch_add(1, Ordering::SeqCst);
            if f.page >= f.node_base + 3 * PAGE_SIZE {
                return false;
            }
            if f.page == f.node_base + 2 * PAGE_SIZE {
                return true; // lies: maps nothing
            }
            let frame = m.map_new_frame(f.write).unwrap();
            m.write(frame, 0, &[0xCB; 4]);
            true
        });
    let c = vmm.lock().alloc_callback(s, 4, 0, URW, handler).unwrap();
    assert_eq!(read(&vmm, s, c + 1, 3, true).unwrap(), vec![0xCB; 3]);
    write(&vmm, s, c + P, &[1], true).unwrap();
    assert_eq!(
        read(&vmm, s, c + 3 * P, 1, true),
        Err(FaultOutcome::Unresolved)
    );
    // Page 2: the handler says yes but maps nothing → unresolved, no loop.
    assert_eq!(
        read(&vmm, s, c + 2 * P, 1, true),
        Err(FaultOutcome::Unresolved)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(vmm.lock().fault_stats().count(FaultKind::Callback), 2);
    let free = free_frames(&vmm);
    vmm.lock().free(s, c).unwrap();
    assert!(
        pte(&vmm, s, c).is_none() && pte(&vmm, s, c + P).is_none(),
        "no stale PTE"
    );
    assert!(free_frames(&vmm) >= free + 2);
    invariants(&vmm);
}

#[test]
fn row22_23_sharing_and_refcounts() {
    let vmm = setup(256);
    let a = KERNEL_SPACE;
    let b = vmm.lock().create_space().unwrap();
    let area = vmm.lock().alloc(a, 2, 0, URW).unwrap();
    write(&vmm, a, area + 8, b"shared!", true).unwrap();
    let h = vmm.lock().share(a, area + 5, "buf").unwrap();
    assert_eq!(vmm.lock().area_refs(a, area), Some(3));
    vmm.lock().close_handle(h).unwrap();
    let h2 = vmm.lock().open_shared("buf").unwrap();
    let at = USER_START + 0x100 * P;
    assert_eq!(vmm.lock().map_shared(b, &h2, at, URW).unwrap(), at);
    assert_eq!(read(&vmm, b, at + 8, 7, true).unwrap(), b"shared!");
    write(&vmm, b, at + P, b"back", true).unwrap();
    vmm.lock().free(a, area).unwrap();
    assert_eq!(read(&vmm, b, at + P, 4, true).unwrap(), b"back");
    let mut handles = BTreeMap::new();
    handles.insert(h2.desc(), 1);
    vmm.lock().check_invariants(&handles).unwrap();
    let used_by_area = 2;
    let free = free_frames(&vmm);
    vmm.lock().close_handle(h2).unwrap();
    vmm.lock().free(b, at).unwrap();
    assert_eq!(vmm.lock().node_stats().areas, 1, "export still holds it");
    vmm.lock().unexport("buf").unwrap();
    assert_eq!(vmm.lock().node_stats().areas, 0);
    assert!(free_frames(&vmm) >= free + used_by_area);
    assert_eq!(vmm.lock().open_shared("buf"), Err(VmError::UnknownName));
    vmm.lock().destroy_space(b).unwrap();
    invariants(&vmm);
}

#[test]
fn row24_no_widening_through_sharing() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let ro = vmm
        .lock()
        .alloc(s, 1, 0, MemFlags::USER | MemFlags::READ)
        .unwrap();
    let kern = vmm.lock().alloc(s, 1, 0, RW).unwrap();
    let mut vm = vmm.lock();
    let h1 = vm.share(s, ro, "ro").unwrap();
    let h2 = vm.share(s, kern, "kern").unwrap();
    let before = vm.state();
    assert_eq!(
        vm.map_shared(s, &h1, 0, URW),
        Err(VmError::PermissionDenied)
    );
    assert_eq!(
        vm.map_shared(s, &h2, 0, URW),
        Err(VmError::PermissionDenied)
    );
    assert_eq!(vm.share(s, ro, "kern"), Err(VmError::NameExists));
    assert_eq!(vm.state(), before);
    let r = vm
        .map_shared(s, &h1, 0, MemFlags::USER | MemFlags::READ)
        .unwrap();
    let k = vm.map_shared(s, &h2, 0, MemFlags::READ).unwrap();
    drop(vm);
    // A read-only view of a writable area stays read-only.
    assert_eq!(
        write(&vmm, s, k, &[1], false),
        Err(FaultOutcome::Protection)
    );
    read(&vmm, s, r, 1, true).unwrap();
    let mut vm = vmm.lock();
    vm.close_handle(h1).unwrap();
    vm.close_handle(h2).unwrap();
}

#[test]
fn row25_free_requires_base() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let a = vm.alloc(s, 4, 0, URW).unwrap();
    let before = vm.state();
    assert_eq!(vm.free(s, a + P), Err(VmError::NotBase));
    assert_eq!(vm.free(s, a + 8 * P), Err(VmError::NotAllocated));
    assert_eq!(vm.state(), before);
    vm.free(s, a).unwrap();
    assert_eq!(vm.free(s, a), Err(VmError::NotAllocated), "double free");
    // From user mode only user areas in the user half can be freed.
    let info = vm.alloc(s, 1, 0, RW | MemFlags::READ).unwrap();
    let user_half_kernel = vm.alloc(s, 1, USER_START + 64 * P, RW).unwrap();
    let mine = vm.alloc(s, 1, 0, URW).unwrap();
    assert_eq!(vm.free_from_user(s, info), Err(VmError::PermissionDenied));
    assert_eq!(
        vm.free_from_user(s, user_half_kernel),
        Err(VmError::PermissionDenied)
    );
    vm.free_from_user(s, mine).unwrap();
}

#[test]
fn row34_page_states() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let a = vmm.lock().alloc(s, 3, 0, URW).unwrap();
    assert!(pte(&vmm, s, a).is_none(), "not committed");
    read(&vmm, s, a, 1, true).unwrap();
    let (_, clean) = pte(&vmm, s, a).unwrap();
    assert!(!clean.contains(PageAttrs::WRITABLE) && clean.contains(PageAttrs::USER));
    write(&vmm, s, a, &[1], true).unwrap();
    assert!(
        pte(&vmm, s, a).unwrap().1.contains(PageAttrs::WRITABLE),
        "dirty"
    );
    write(&vmm, s, a + P, &[1], true).unwrap();
    assert!(
        pte(&vmm, s, a + P).unwrap().1.contains(PageAttrs::WRITABLE),
        "write fault maps dirty at once"
    );
}

#[test]
fn row37_listing() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    vm.alloc(KERNEL_SPACE, 2, 0, URW).unwrap();
    vm.reserve(KERNEL_SPACE, 3, 0).unwrap();
    let lines: Vec<String> = vm
        .nodes(KERNEL_SPACE)
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(lines[0].contains("Normal"), "{lines:?}");
    assert!(lines[1].contains("reserved"));
    assert!(lines[2].contains("empty"));
}

#[test]
fn misuse_changes_nothing() {
    let vmm = setup(64);
    let mut vm = vmm.lock();
    let s = KERNEL_SPACE;
    let a = vm.alloc(s, 4, 0, URW).unwrap();
    let before = vm.state();
    let tables = vm.mmu().live_tables();
    let errors = [
        vm.alloc(s, 0, 0, URW).unwrap_err(),
        vm.alloc(s, 1, USER_START + 5, URW).unwrap_err(),
        vm.alloc(s, 1, a, URW).unwrap_err(),
        vm.alloc(s, 1, 0x1000, URW).unwrap_err(),
        vm.free(s, a + P).unwrap_err(),
        vm.free(s, a + 100 * P).unwrap_err(),
        vm.open_shared("nope").unwrap_err(),
        vm.unexport("nope").unwrap_err(),
        vm.alloc(s, 1, 0, MemFlags::from_bits_retain(1))
            .unwrap_err(),
        vm.alloc(s, 1, 0, MemFlags::RESERVED).unwrap_err(),
        vm.alloc(s, u64::MAX, 0, URW).unwrap_err(),
        vm.alloc(s, u64::MAX / 2, USER_START, URW).unwrap_err(),
        vm.alloc(SpaceId(99), 1, 0, URW).unwrap_err(),
        vm.reserve(s, 0, 0).unwrap_err(),
        vm.share(s, a + 50 * P, "x").unwrap_err(),
    ];
    use VmError::*;
    assert_eq!(
        errors,
        [
            ZeroPages,
            Unaligned,
            Overlap,
            OutOfRange,
            NotBase,
            NotAllocated,
            UnknownName,
            UnknownName,
            InvalidFlags,
            InvalidFlags,
            AddressSpaceExhausted,
            OutOfRange,
            BadHandle,
            ZeroPages,
            NotAllocated
        ]
    );
    assert_eq!(vm.state(), before);
    assert_eq!(vm.mmu().live_tables(), tables);
    assert!(!errors[0].to_string().is_empty());
}

#[test]
fn out_of_frames_is_an_error_not_a_hang() {
    let vmm = setup(20); // 4 usable frames
    let s = KERNEL_SPACE;
    let before = vmm.lock().state();
    // Roots need frames too: creating spaces runs out cleanly.
    let mut made = Vec::new();
    loop {
        match vmm.lock().create_space() {
            Ok(id) => made.push(id),
            Err(e) => {
                assert_eq!(e, VmError::OutOfFrames);
                break;
            }
        }
    }
    for id in made {
        vmm.lock().destroy_space(id).unwrap();
    }
    assert_eq!(vmm.lock().state(), before);
    let a = vmm.lock().alloc(s, 10, 0, URW).unwrap();
    let mut outcome = Ok(());
    for i in 0..10 {
        outcome = write(&vmm, s, a + i * P, &[1], true);
        if outcome.is_err() {
            break;
        }
    }
    assert_eq!(outcome, Err(FaultOutcome::OutOfFrames));
    assert!(vmm.lock().frames().stats().exhausted > 0);
    vmm.lock().free(s, a).unwrap();
    invariants(&vmm);
}

#[test]
fn page_tables_freed_when_empty_and_spaces_torn_down() {
    let vmm = setup(512);
    let baseline_tables = vmm.lock().mmu().live_tables();
    let total_free = free_frames(&vmm);
    let sp = vmm.lock().create_space().unwrap();
    let a = vmm
        .lock()
        .alloc(sp, 64, USER_START + (1 << 30), URW)
        .unwrap();
    let k = vmm.lock().alloc(sp, 4, 0, RW).unwrap();
    for i in 0..64 {
        write(&vmm, sp, a + i * P, &[1], true).unwrap();
    }
    write(&vmm, sp, k, &[1], false).unwrap();
    vmm.lock().free(sp, k).unwrap();
    vmm.lock().destroy_space(sp).unwrap();
    // The kernel half's shared level-3 table stays; everything else is back.
    let tables = vmm.lock().mmu().live_tables();
    assert!(
        tables <= baseline_tables + 1,
        "{tables} vs {baseline_tables}"
    );
    assert!(free_frames(&vmm) + 1 >= total_free);
    invariants(&vmm);
}

/// `destroy_space` frees the page tables whole, mappings still in them:
/// every table and frame comes back, whatever was mapped where (pages in
/// many tables, an area shared with another space, a reservation), and
/// the other space keeps the shared area's pages.
#[test]
fn teardown_frees_tables_whole_and_keeps_shared_areas() {
    let vmm = setup(512);
    let baseline_tables = vmm.lock().mmu().live_tables();
    let total_free = free_frames(&vmm);
    let a = vmm.lock().create_space().unwrap();
    let b = vmm.lock().create_space().unwrap();
    // Pages in three directories and two PML4 slots, one area shared.
    let spread = [USER_START, USER_START + (1 << 30) + 5 * P, 0x7f00_0000_0000];
    for base in spread {
        let at = vmm.lock().alloc(a, 3, base, URW).unwrap();
        for i in 0..3 {
            write(&vmm, a, at + i * P, &[i as u8 + 1], true).unwrap();
        }
    }
    let shared = vmm.lock().alloc(a, 2, 0x7e00_0000_0000, URW).unwrap();
    write(&vmm, a, shared + P, &[0x5A], true).unwrap();
    let h = vmm.lock().share(a, shared, "kept").unwrap();
    let in_b = vmm.lock().map_shared(b, &h, 0, URW).unwrap();
    vmm.lock().close_handle(h).unwrap();
    vmm.lock().reserve(a, 16, 0x7d00_0000_0000).unwrap();
    vmm.lock().destroy_space(a).unwrap();
    assert_eq!(read(&vmm, b, in_b + P, 1, true).unwrap(), vec![0x5A]);
    invariants_with(&vmm, &[]);
    vmm.lock().unexport("kept").unwrap();
    vmm.lock().free(b, in_b).unwrap();
    // b's root is all that is left of the two spaces.
    assert_eq!(vmm.lock().mmu().live_tables(), baseline_tables + 1);
    vmm.lock().destroy_space(b).unwrap();
    assert_eq!(vmm.lock().mmu().live_tables(), baseline_tables);
    assert_eq!(free_frames(&vmm), total_free);
    invariants(&vmm);
}

#[test]
fn million_page_area_allocates_nothing_up_front() {
    let vmm = setup(64);
    let before = vmm.lock().frames().stats();
    let a = vmm.lock().alloc(KERNEL_SPACE, 1 << 20, 0, URW).unwrap();
    assert_eq!(vmm.lock().frames().stats(), before);
    write(&vmm, KERNEL_SPACE, a + 999_999 * P, &[1], true).unwrap();
    vmm.lock().free(KERNEL_SPACE, a).unwrap();
}

#[test]
fn snapshot_fills_shared_stats() {
    let vmm = setup(128);
    let a = vmm.lock().alloc(KERNEL_SPACE, 2, 0, URW).unwrap();
    write(&vmm, KERNEL_SPACE, a, &[1], true).unwrap();
    let snap = vmm.lock().snapshot();
    assert_eq!(snap.faults[FaultKind::DemandZero.index()].count, 1);
    assert_eq!(snap.frames.total, 128 - 16);
    assert_eq!(snap.frames.free + snap.frames.used, snap.frames.total);
    assert_eq!(snap.nodes.areas, 1);
    assert!(snap.nodes.nodes >= 3);
    assert!(snap.nodes.lookups >= 1);
    assert_eq!(snap.total_faults(), 1);
}

#[test]
fn row27_kernel_half_is_global() {
    let vmm = setup(256);
    let a = vmm.lock().create_space().unwrap();
    let b = vmm.lock().create_space().unwrap();
    let k = vmm.lock().alloc(a, 1, 0, RW).unwrap();
    write(&vmm, a, k, &[0x42], false).unwrap();
    assert_eq!(read(&vmm, b, k, 1, false).unwrap(), vec![0x42]);
    let k2 = vmm.lock().alloc(b, 1, 0, RW).unwrap();
    assert_eq!(read(&vmm, a, k2, 1, false).unwrap(), vec![0]);
    vmm.lock().destroy_space(a).unwrap();
    assert_eq!(read(&vmm, b, k, 1, false).unwrap(), vec![0x42]);
    vmm.lock().free(b, k).unwrap();
    assert!(pte(&vmm, b, k).is_none());
    invariants(&vmm);
}

/// A file whose read re-enters the fault handler for the page being read,
/// as a second thread faulting the same page would.
struct Reentrant {
    inner: MemFile,
    vmm: std::sync::Mutex<Option<(TestVmm, u64)>>,
    reads: AtomicUsize,
    nested: std::sync::Mutex<Vec<FaultOutcome>>,
}

impl FileBacking for Reentrant {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if let Some((vmm, addr)) = self.vmm.lock().unwrap().clone() {
            let outcome = mobius_guest::mm::fault::handle(&vmm, KERNEL_SPACE, addr, Access::READ);
            self.nested.lock().unwrap().push(outcome);
        }
        self.inner.read_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

#[test]
fn row19_same_page_during_read_waits_and_row16_writes_private() {
    let vmm = setup(256);
    let (_, data) = file_of(4096);
    let file = Arc::new(Reentrant {
        inner: MemFile::new(data.clone()),
        vmm: std::sync::Mutex::new(None),
        reads: AtomicUsize::new(0),
        nested: std::sync::Mutex::new(Vec::new()),
    });
    let f = vmm
        .lock()
        .map_file(KERNEL_SPACE, file.clone(), 0, 0, 1, RW)
        .unwrap();
    *file.vmm.lock().unwrap() = Some((vmm.clone(), f));
    // The read runs without the VMM lock (the nested fault does not
    // deadlock) and the nested fault is told to retry, not to read again.
    assert_eq!(read(&vmm, KERNEL_SPACE, f, 8, false).unwrap(), data[..8]);
    assert_eq!(*file.nested.lock().unwrap(), vec![FaultOutcome::Retry]);
    assert_eq!(file.reads.load(Ordering::SeqCst), 1);
    // Row 16: writes to a FILE mapping are private (no write-back).
    *file.vmm.lock().unwrap() = None;
    write(&vmm, KERNEL_SPACE, f, &[0], false).unwrap();
    let mut back = [9u8; 1];
    file.inner.read_at(0, &mut back).unwrap();
    assert_eq!(back[0], data[0]);
    vmm.lock().free(KERNEL_SPACE, f).unwrap();
    invariants(&vmm);
}

#[test]
fn present_hint_from_the_error_code() {
    let vmm = setup(256);
    let s = KERNEL_SPACE;
    let a = vmm.lock().alloc(s, 1, 0, RW).unwrap();
    read(&vmm, s, a, 1, false).unwrap();
    let frames = vmm.lock().frames().stats();
    // A stale "not present" for a mapped page: retry, nothing allocated.
    let o = mobius_guest::mm::fault::handle(&vmm, s, a, Access::WRITE);
    assert_eq!(o, FaultOutcome::Spurious);
    assert_eq!(vmm.lock().frames().stats(), frames);
    let o = mobius_guest::mm::fault::handle(
        &vmm,
        s,
        a,
        Access {
            present: true,
            ..Access::WRITE
        },
    );
    assert_eq!(o, FaultOutcome::Resolved(FaultKind::Upgrade));
    invariants(&vmm);
}

/// Issue 9 item 1: `destroy_space` refuses the space the CPU runs on.
#[test]
fn destroy_space_refuses_the_live_space() {
    let vmm = setup(256);
    let a = vmm.lock().create_space().unwrap();
    let root = vmm.lock().root(a).unwrap();
    vmm.lock().mmu_mut().live_root = Some(root);
    assert_eq!(
        vmm.lock().destroy_space(a),
        Err(mobius_guest::mm::vmm::VmError::SpaceLive)
    );
    vmm.lock().mmu_mut().live_root = None;
    vmm.lock().destroy_space(a).unwrap();
    invariants(&vmm);
}

/// A file that lies in memory (like the initramfs): faults copy straight
/// from its bytes, and the part of the last page past the end reads as
/// zeroes even in a frame that held something before.
struct InMemory(Vec<u8>);

impl FileBacking for InMemory {
    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<usize, FileError> {
        panic!("an in-memory file is never read through read_at")
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        Some(&self.0)
    }
    fn id(&self) -> Option<usize> {
        Some(self.0.as_ptr() as usize)
    }
}

#[test]
fn in_memory_file_pages_are_copied_straight_and_zero_filled() {
    let vmm = setup(64);
    let s = vmm.lock().create_space().unwrap();
    // Leave garbage in free frames first.
    let junk = vmm.lock().alloc(s, 8, 0, URW).unwrap();
    for i in 0..8 {
        write(&vmm, s, junk + i * P, &[0xAA; 4096], true).unwrap();
    }
    vmm.lock().free(s, junk).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
    let file: Arc<dyn FileBacking> = Arc::new(InMemory(data.clone()));
    let at = vmm.lock().map_file(s, file, 0, 0, 2, URW).unwrap();
    assert_eq!(read(&vmm, s, at, 4096, true).unwrap(), data[..4096]);
    let second = read(&vmm, s, at + P, 4096, true).unwrap();
    assert_eq!(second[..904], data[4096..]);
    assert!(second[904..].iter().all(|b| *b == 0), "tail not zeroed");
    vmm.lock().free(s, at).unwrap();
    invariants(&vmm);
}

/// A file whose whole pages lie in place in frames no allocator hands out
/// (as the initramfs's do): page `i` of `data` is at frame `base + i * P`,
/// the last, partial page excepted.
struct InPlace {
    data: Vec<u8>,
    base: u64,
    /// Whether it answers `frames_in_place` (runs of pages) too.
    runs: bool,
}

impl InPlace {
    /// Put `data`'s whole pages into the reserved frames from `base`.
    fn new(vmm: &TestVmm, data: Vec<u8>, base: u64, runs: bool) -> Self {
        for (i, page) in data.chunks_exact(P as usize).enumerate() {
            vmm.lock()
                .mmu_mut()
                .write_frame(base + i as u64 * P, 0, page);
        }
        InPlace { data, base, runs }
    }
}

impl FileBacking for InPlace {
    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<usize, FileError> {
        panic!("an in-memory file is never read through read_at")
    }
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        Some(&self.data)
    }
    fn id(&self) -> Option<usize> {
        Some(self.data.as_ptr() as usize)
    }
    fn frame_in_place(&self, offset: u64) -> Option<u64> {
        (offset.is_multiple_of(P) && offset + P <= self.len()).then(|| self.base + offset)
    }
    fn frames_in_place(&self, offset: u64, pages: usize) -> Option<u64> {
        let whole = offset.is_multiple_of(P) && offset + pages as u64 * P <= self.len();
        (self.runs && whole).then(|| self.base + offset)
    }
}

/// Read-only image pages that lie whole in place are mapped there, read
/// only, with no frame allocated and nothing copied: a `shared` fault, and
/// the other such pages of its 16-page block come with it (fault-around),
/// uncounted. A partial last page and writable pages are still copied
/// (`image`); writes to the read-only pages are refused; tearing the
/// space down gives back every frame and frees none of the file's.
#[test]
fn read_only_image_pages_map_in_place_with_fault_around() {
    // Frames asked for page by page, and for a block at once.
    for runs in [false, true] {
        image_pages_in_place(runs);
    }
}

fn image_pages_in_place(runs: bool) {
    let vmm = setup(128);
    let free_at_start = free_frames(&vmm);
    let text_bytes = 20 * P + 100;
    let data: Vec<u8> = (0..text_bytes + 2 * P).map(|i| (i % 251) as u8).collect();
    // Frames far above the 128 frames of RAM: no allocator hands them out.
    let base = 1 << 30;
    let file = Arc::new(InPlace::new(&vmm, data.clone(), base, runs));
    let text = Section {
        offset: 0,
        size: text_bytes,
        file_offset: 0,
        file_size: text_bytes,
        flags: MemFlags::empty(),
        execute: true,
    };
    let rw = Section {
        offset: 21 * P,
        size: 2 * P,
        file_offset: 21 * P,
        file_size: 2 * P,
        flags: MemFlags::WRITE,
        execute: false,
    };
    let s = vmm.lock().create_space().unwrap();
    let file_dyn: Arc<dyn FileBacking> = file.clone();
    let at = vmm
        .lock()
        .map_image(s, file_dyn, &[text, rw], 0, 23, URW)
        .unwrap();
    let count = |k: FaultKind| vmm.lock().fault_stats().count(k);
    let bytes = |page: u64| data[(page * P) as usize..((page + 1) * P) as usize].to_vec();
    let free_before = free_frames(&vmm);
    assert_eq!(read(&vmm, s, at + 3 * P, 4096, true).unwrap(), bytes(3));
    assert_eq!((count(FaultKind::Shared), count(FaultKind::Image)), (1, 0));
    // The whole block of 16 pages is mapped in place, read-only.
    for page in 0..16 {
        let (frame, attrs) = pte(&vmm, s, at + page * P).expect("mapped around");
        assert_eq!(frame, base + page * P, "page {page}");
        assert!(!attrs.contains(PageAttrs::WRITABLE));
        assert!(attrs.contains(PageAttrs::USER));
    }
    assert!(pte(&vmm, s, at + 16 * P).is_none());
    // No frame for the data, only page tables.
    assert!(free_before - free_frames(&vmm) <= 4);
    // Reading them costs no fault.
    for page in [0, 7, 15] {
        assert_eq!(
            read(&vmm, s, at + page * P, 4096, true).unwrap(),
            bytes(page)
        );
    }
    assert_eq!(count(FaultKind::Shared), 1);
    // The next block: whole pages 16..20 around a fault at 18, not the
    // partial page 20, which a fault of its own copies and zero-fills.
    assert_eq!(read(&vmm, s, at + 18 * P, 4096, true).unwrap(), bytes(18));
    assert_eq!(count(FaultKind::Shared), 2);
    for page in 16..20 {
        assert_eq!(pte(&vmm, s, at + page * P).unwrap().0, base + page * P);
    }
    assert!(pte(&vmm, s, at + 20 * P).is_none());
    let tail = read(&vmm, s, at + 20 * P, 4096, true).unwrap();
    assert_eq!(
        tail[..100],
        data[(20 * P) as usize..(20 * P + 100) as usize]
    );
    assert!(tail[100..].iter().all(|&b| b == 0));
    assert_eq!(count(FaultKind::Image), 1);
    // Writable pages are the area's own copies.
    write(&vmm, s, at + 21 * P, &[0xEE], true).unwrap();
    assert_eq!(count(FaultKind::Image), 2);
    assert_ne!(pte(&vmm, s, at + 21 * P).unwrap().0, base + 21 * P);
    // The file's frames are never written.
    assert_eq!(
        write(&vmm, s, at + 2 * P, &[1], true),
        Err(FaultOutcome::Protection)
    );
    let mut page2 = vec![0u8; 4096];
    vmm.lock().mmu().read_frame(base + 2 * P, 0, &mut page2);
    assert_eq!(page2, bytes(2));
    invariants(&vmm);
    // A second space maps the same frames.
    let s2 = vmm.lock().create_space().unwrap();
    let file_dyn: Arc<dyn FileBacking> = file;
    let at2 = vmm
        .lock()
        .map_image(s2, file_dyn, &[text, rw], 0, 23, URW)
        .unwrap();
    assert_eq!(read(&vmm, s2, at2 + 9 * P, 4096, true).unwrap(), bytes(9));
    assert_eq!(pte(&vmm, s2, at2 + 9 * P).unwrap().0, base + 9 * P);
    assert_eq!(count(FaultKind::Shared), 3);
    for space in [s, s2] {
        vmm.lock().destroy_space(space).unwrap();
    }
    invariants(&vmm);
    vmm.lock().drop_unused_cache();
    assert_eq!(free_frames(&vmm), free_at_start);
}

/// Issue 13 item 1: fork shares private pages copy-on-write; the first
/// write copies (cow), the last owner's write takes the frame over
/// (cow-reuse), a read maps the shared frame (shared); exported areas stay
/// shared; reservations are inherited; every frame comes back.
#[test]
fn fork_copies_on_write_and_conserves_frames() {
    let vmm = setup(256);
    let free_at_start = free_frames(&vmm);
    let parent = vmm.lock().create_space().unwrap();
    let a = vmm.lock().alloc(parent, 3, 0, URW).unwrap();
    for i in 0..3 {
        write(&vmm, parent, a + i * P, &[10 + i as u8], true).unwrap();
    }
    let shared = vmm.lock().alloc(parent, 1, 0, URW).unwrap();
    write(&vmm, parent, shared, &[7], true).unwrap();
    let h = vmm.lock().share(parent, shared, "fork-shared").unwrap();
    let r = vmm.lock().reserve(parent, 4, 0x100_0000_0000).unwrap();
    let count = |k: FaultKind| vmm.lock().fault_stats().count(k);
    let used_before_fork = free_frames(&vmm);

    let child = vmm.lock().fork_space(parent).unwrap();
    // Nothing copied by the fork itself (only the child's root table).
    assert!(used_before_fork - free_frames(&vmm) <= 1);
    // The child reads the parent's data through the same frames.
    assert_eq!(read(&vmm, child, a, 1, true).unwrap(), vec![10]);
    assert_eq!(count(FaultKind::Shared), 1);
    // A write by the child copies; the parent keeps its value.
    write(&vmm, child, a, &[99], true).unwrap();
    assert_eq!(count(FaultKind::Cow), 1);
    assert_eq!(read(&vmm, parent, a, 1, true).unwrap(), vec![10]);
    assert_eq!(read(&vmm, child, a, 1, true).unwrap(), vec![99]);
    // The parent writes page 1 first (copy), then the child, the last
    // owner, takes the frame over.
    write(&vmm, parent, a + P, &[50], true).unwrap();
    assert_eq!(count(FaultKind::Cow), 2);
    write(&vmm, child, a + P, &[60], true).unwrap();
    assert_eq!(count(FaultKind::CowReuse), 1);
    assert_eq!(read(&vmm, parent, a + P, 1, true).unwrap(), vec![50]);
    assert_eq!(read(&vmm, child, a + P, 1, true).unwrap(), vec![60]);
    // The exported area is the same memory on both sides.
    write(&vmm, child, shared, &[8], true).unwrap();
    assert_eq!(read(&vmm, parent, shared, 1, true).unwrap(), vec![8]);
    // The reservation is there in the child too.
    assert_eq!(
        vmm.lock().lookup(child, r).map(|n| n.kind),
        Some(NodeKind::Reserved)
    );
    invariants_with(&vmm, &[h.desc()]);

    // The child exits: its copies go, the shared frames stay the parent's.
    vmm.lock().destroy_space(child).unwrap();
    assert_eq!(read(&vmm, parent, a + 2 * P, 1, true).unwrap(), vec![12]);
    write(&vmm, parent, a + 2 * P, &[13], true).unwrap();
    assert_eq!(count(FaultKind::CowReuse), 2);
    vmm.lock().close_handle(h).unwrap();
    vmm.lock().unexport("fork-shared").unwrap();
    vmm.lock().destroy_space(parent).unwrap();
    invariants(&vmm);
    assert_eq!(free_frames(&vmm), free_at_start);
}

/// Issue 9 item 6: the read-only pages of one program image are read once
/// and shared by every space that maps it; writable sections stay private;
/// unused cached frames all come back.
#[test]
fn read_only_image_pages_are_read_once_and_shared() {
    let vmm = setup(128);
    let free_at_start = free_frames(&vmm);
    let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 253) as u8).collect();
    let file: Arc<dyn FileBacking> = Arc::new(InMemory(data.clone()));
    let text = Section {
        offset: 0,
        size: 2 * P,
        file_offset: 0,
        file_size: 2 * P,
        flags: MemFlags::empty(),
        execute: true,
    };
    let rw = Section {
        offset: 2 * P,
        size: P,
        file_offset: 2 * P,
        file_size: P,
        flags: MemFlags::WRITE,
        execute: false,
    };
    let spaces: Vec<SpaceId> = (0..2).map(|_| vmm.lock().create_space().unwrap()).collect();
    let mut bases = Vec::new();
    for &s in &spaces {
        let at = vmm
            .lock()
            .map_image(s, file.clone(), &[text, rw], 0, 3, URW)
            .unwrap();
        bases.push(at);
    }
    let count = |k: FaultKind| vmm.lock().fault_stats().count(k);
    for (i, &s) in spaces.iter().enumerate() {
        for page in 0..3 {
            let got = read(&vmm, s, bases[i] + page * P, 4096, true).unwrap();
            assert_eq!(
                got[..],
                data[(page * P) as usize..((page + 1) * P) as usize]
            );
        }
    }
    // Two text pages read once, then shared; the data page read per space.
    assert_eq!(count(FaultKind::Image), 2 + 2);
    assert_eq!(count(FaultKind::Shared), 2);
    let frame = |i: usize, page: u64| pte(&vmm, spaces[i], bases[i] + page * P).unwrap().0;
    assert_eq!(frame(0, 0), frame(1, 0));
    assert_ne!(frame(0, 2), frame(1, 2));
    write(&vmm, spaces[1], bases[1] + 2 * P, &[9], true).unwrap();
    assert_eq!(
        read(&vmm, spaces[0], bases[0] + 2 * P, 1, true).unwrap(),
        vec![data[8192]]
    );
    invariants(&vmm);
    for s in spaces {
        vmm.lock().destroy_space(s).unwrap();
    }
    invariants(&vmm);
    assert_eq!(vmm.lock().drop_unused_cache(), 2);
    assert_eq!(free_frames(&vmm), free_at_start);
}
