//! A portable self-test of the VMM for the in-guest test runner: the rows of
//! spec §9 that need neither user mode nor real files, run against whatever
//! [`Mmu`] the VMM has (real page tables in the guest, the soft MMU on the
//! host, where `cargo test` runs it too).
//!
//! Accesses are simulated the way the CPU would do them: check the
//! translation, and call [`fault::handle`] when it does not allow the access.
//! Data goes through [`Mmu::read_frame`]/[`Mmu::write_frame`]. Every check
//! frees what it allocated, so the suite can run in a live kernel.
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::fault;
use super::paging::{Mmu, PageAttrs, PhysAddr, VirtAddr, PAGE_SIZE};
use super::vmm::*;
use mobius_shared::stats::FaultKind;

type Check<M> = fn(&VmmLock<M>) -> Result<(), &'static str>;

const P: u64 = PAGE_SIZE;
const KRW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);
const URW: MemFlags = MemFlags::USER.union(KRW);

/// Pass and fail counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

/// Run every check; `report(name, result)` is called after each one.
pub fn run<M: Mmu>(
    vmm: &VmmLock<M>,
    report: &mut dyn FnMut(&'static str, Result<(), &'static str>),
) -> Summary {
    let checks: [(&'static str, Check<M>); 22] = [
        ("row01-lookup-interior", row01_lookup),
        ("row02-balanced-2k", row02_many_areas),
        ("row03-placement-halves", row03_halves),
        ("row04-fixed-whole-range", row04_fixed),
        ("row05-split-coalesce", row05_coalesce),
        ("row06-reserve", row06_reserve),
        ("row07-literal", row07_literal),
        ("row08-page-zero", row08_page_zero),
        ("row09-demand-zero", row09_demand_zero),
        ("row10-clean-dirty-protection", row10_upgrade),
        ("row11-user-vs-kernel", row11_privilege),
        ("row13-map-area", row13_map),
        ("row14-cache-attributes", row14_cache),
        ("row15-file-area", row15_file),
        ("row17-image-sections", row17_image),
        ("row20-read-failed-terminal", row20_read_failed),
        ("row21-callback", row21_callback),
        ("row22-24-sharing", row22_sharing),
        ("row25-free-base-only", row25_free),
        ("row33-wide-pins", row33_pins),
        ("row34-page-states", row34_states),
        ("misuse-changes-nothing", misuse),
    ];
    let mut summary = Summary::default();
    for (name, check) in checks {
        let result = check(vmm);
        if result.is_ok() {
            summary.passed += 1;
        } else {
            summary.failed += 1;
        }
        report(name, result);
    }
    summary
}

fn ensure(cond: bool, why: &'static str) -> Result<(), &'static str> {
    if cond {
        Ok(())
    } else {
        Err(why)
    }
}

fn ok<T>(r: Result<T, VmError>, why: &'static str) -> Result<T, &'static str> {
    r.map_err(|_| why)
}

/// Perform an access like the CPU; returns the frame.
fn access<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    a: Access,
) -> Result<PhysAddr, FaultOutcome> {
    for _ in 0..4 {
        let mut present = false;
        {
            let vm = vmm.lock();
            let root = vm.root(space).map_err(|_| FaultOutcome::Unresolved)?;
            if let Some((frame, attrs)) = vm.mmu().translate(root, addr) {
                let allowed = (!a.write || attrs.contains(PageAttrs::WRITABLE))
                    && (!a.user || attrs.contains(PageAttrs::USER));
                if allowed {
                    return Ok(frame);
                }
                present = true;
            }
        }
        let outcome = fault::handle(vmm, space, addr, Access { present, ..a });
        if !outcome.is_resolved() {
            return Err(outcome);
        }
    }
    Err(FaultOutcome::Unresolved)
}

fn read_byte<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    user: bool,
) -> Result<u8, FaultOutcome> {
    let frame = access(
        vmm,
        space,
        addr,
        Access {
            user,
            ..Access::READ
        },
    )?;
    let mut b = [0u8];
    vmm.lock()
        .mmu()
        .read_frame(frame, (addr % P) as usize, &mut b);
    Ok(b[0])
}

fn write_byte<M: Mmu>(
    vmm: &VmmLock<M>,
    space: SpaceId,
    addr: VirtAddr,
    v: u8,
    user: bool,
) -> Result<(), FaultOutcome> {
    let frame = access(
        vmm,
        space,
        addr,
        Access {
            user,
            ..Access::WRITE
        },
    )?;
    vmm.lock()
        .mmu_mut()
        .write_frame(frame, (addr % P) as usize, &[v]);
    Ok(())
}

fn pte<M: Mmu>(vmm: &VmmLock<M>, space: SpaceId, addr: VirtAddr) -> Option<(PhysAddr, PageAttrs)> {
    let vm = vmm.lock();
    vm.mmu().translate(vm.root(space).ok()?, addr)
}

fn count<M: Mmu>(vmm: &VmmLock<M>, kind: FaultKind) -> u64 {
    vmm.lock().fault_stats().count(kind)
}

fn free_frames<M: Mmu>(vmm: &VmmLock<M>) -> u64 {
    vmm.lock().frames().stats().free
}

const K: SpaceId = KERNEL_SPACE;

fn row01_lookup<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let a = ok(vm.alloc(K, 2, 0, URW), "alloc a")?;
    let b = ok(vm.alloc(K, 3, 0, URW), "alloc b")?;
    let found = vm.lookup(K, b + 3 * P - 1).map(|n| n.base);
    let first = vm.lookup(K, a + 1).map(|n| n.base);
    ok(vm.free(K, b), "free b")?;
    let gap = vm.lookup(K, b + P).map(|n| n.kind);
    ok(vm.free(K, a), "free a")?;
    ensure(found == Some(b) && first == Some(a), "interior lookup")?;
    ensure(gap == Some(NodeKind::Empty), "gap is empty")
}

fn row02_many_areas<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let mut bases = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        bases.push(ok(vm.alloc(K, 1, 0, URW), "alloc")?);
    }
    let depth = vm
        .lookup(K, bases[1777] + 5)
        .map(|n| n.depth)
        .unwrap_or(u64::MAX);
    for b in bases {
        ok(vm.free(K, b), "free")?;
    }
    ensure(depth <= 2 * 11, "depth within 2 log2 n")
}

fn row03_halves<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let s = ok(vm.create_space(), "space")?;
    let all = ok(
        vm.alloc(s, (USER_END - USER_START) / P, 0, URW),
        "fill user half",
    )?;
    let more = vm.alloc(s, 1, 0, URW);
    let k = ok(vm.alloc(s, 1, 0, KRW), "kernel alloc")?;
    ok(vm.free(s, k), "free k")?;
    ok(vm.free(s, all), "free all")?;
    ok(vm.destroy_space(s), "destroy")?;
    ensure(
        more == Err(VmError::AddressSpaceExhausted),
        "user half full",
    )?;
    ensure(k >= KERNEL_START, "kernel half")
}

fn row04_fixed<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let s = ok(vm.create_space(), "space")?;
    let a = ok(vm.alloc(s, 4, USER_START + 10 * P, URW), "alloc")?;
    let before = vm.state();
    let over = vm.alloc(s, 20, USER_START, URW);
    let out = vm.alloc(s, 2, USER_END - P, URW);
    let same = vm.state() == before;
    ok(vm.free(s, a), "free")?;
    ok(vm.destroy_space(s), "destroy")?;
    ensure(
        over == Err(VmError::Overlap) && out == Err(VmError::OutOfRange),
        "errors",
    )?;
    ensure(same, "state unchanged")
}

fn row05_coalesce<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let s = ok(vm.create_space(), "space")?;
    let n0 = ok(vm.nodes(s), "nodes")?.len();
    let a = ok(vm.alloc(s, 3, USER_START + 100 * P, URW), "alloc")?;
    let n1 = ok(vm.nodes(s), "nodes")?.len();
    ok(vm.free(s, a), "free")?;
    let n2 = ok(vm.nodes(s), "nodes")?.len();
    ok(vm.destroy_space(s), "destroy")?;
    ensure(n1 == n0 + 2 && n2 == n0, "split and coalesce")
}

fn row06_reserve<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let s = ok(vm.create_space(), "space")?;
    let x = ok(vm.reserve(s, 16, 0), "reserve")?;
    let auto = ok(vm.alloc(s, 4, 0, URW), "auto")?;
    let fixed = ok(vm.alloc(s, 2, x + 4 * P, URW), "fixed in reservation")?;
    let rest = vm.lookup(s, x + 6 * P).map(|n| (n.kind, n.pages));
    let frames = vm.frames().stats();
    let huge = ok(vm.reserve(s, 1 << 28, 0), "1 TiB reservation")?;
    let cheap = vm.frames().stats() == frames;
    ok(vm.destroy_space(s), "destroy")?;
    ensure(
        auto >= x + 16 * P && fixed == x + 4 * P && huge > x,
        "placement",
    )?;
    ensure(rest == Some((NodeKind::Reserved, 10)), "rest reserved")?;
    ensure(cheap, "reservation allocates nothing")
}

fn row07_literal<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let lit = vm.alloc(K, 1, 0, KRW | MemFlags::LITERAL);
    let chosen = ok(vm.alloc(K, 1, 0, KRW), "without LITERAL 0 means choose")?;
    ok(vm.free(K, chosen), "free")?;
    ensure(
        lit == Err(VmError::OutOfRange),
        "LITERAL 0 is page 0, never mappable",
    )
}

fn row08_page_zero<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let zero = vm.alloc(K, 1, P, URW);
    let high = vm.alloc(K, 1, 0xFFC0_0000, URW);
    ensure(
        zero == Err(VmError::OutOfRange) && high == Err(VmError::OutOfRange),
        "rejected",
    )
}

fn row09_demand_zero<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let a = ok(vmm.lock().alloc(K, 2, 0, URW), "alloc")?;
    let before = count(vmm, FaultKind::DemandZero);
    let r = (|| {
        write_byte(vmm, K, a, 1, true).map_err(|_| "first touch")?;
        let free = free_frames(vmm);
        let v = read_byte(vmm, K, a + P + 77, true).map_err(|_| "read")?;
        ensure(v == 0, "reads zero")?;
        ensure(free_frames(vmm) == free - 1, "one frame on touch")?;
        ensure(count(vmm, FaultKind::DemandZero) == before + 2, "counted")
    })();
    ok(vmm.lock().free(K, a), "free")?;
    r
}

fn row10_upgrade<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let a = ok(vmm.lock().alloc(K, 1, 0, URW), "alloc")?;
    let ro = ok(
        vmm.lock().alloc(K, 1, 0, MemFlags::USER | MemFlags::READ),
        "alloc ro",
    )?;
    let r = (|| {
        read_byte(vmm, K, a, true).map_err(|_| "read")?;
        let clean = pte(vmm, K, a).map(|p| p.1.contains(PageAttrs::WRITABLE));
        ensure(clean == Some(false), "read fault maps clean")?;
        let ups = count(vmm, FaultKind::Upgrade);
        write_byte(vmm, K, a, 5, true).map_err(|_| "write")?;
        ensure(count(vmm, FaultKind::Upgrade) == ups + 1, "upgrade counted")?;
        let free = free_frames(vmm);
        let w = write_byte(vmm, K, ro, 1, true);
        ensure(w == Err(FaultOutcome::Protection), "write to read-only")?;
        ensure(free_frames(vmm) == free, "no frame on protection fault")
    })();
    ok(vmm.lock().free(K, a), "free")?;
    ok(vmm.lock().free(K, ro), "free")?;
    r
}

fn row11_privilege<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let k = ok(vmm.lock().alloc(K, 1, 0, KRW), "alloc")?;
    let free = free_frames(vmm);
    let r = read_byte(vmm, K, k, true);
    let same = free_frames(vmm) == free;
    ok(vmm.lock().free(K, k), "free")?;
    ensure(
        r == Err(FaultOutcome::Protection) && same,
        "user access to kernel area",
    )
}

fn row13_map<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let a = ok(vmm.lock().alloc(K, 1, 0, KRW), "alloc")?;
    let r = (|| {
        write_byte(vmm, K, a + 9, 0x5A, false).map_err(|_| "write")?;
        let frame = pte(vmm, K, a).ok_or("no pte")?.0;
        let m = ok(vmm.lock().map_phys(K, 1, 0, frame, KRW), "map")?;
        let v = read_byte(vmm, K, m + 9, false).map_err(|_| "read map");
        ok(vmm.lock().free(K, m), "free map")?;
        ensure(v == Ok(0x5A), "same memory")?;
        // Freeing the MAP area left the frame it mapped alone: still in use,
        // still the other area's (exact, whatever page tables went with it).
        let state = vmm.lock().frames().state(frame);
        ensure(
            state == Some(crate::mm::frame::FrameState::Used)
                && pte(vmm, K, a).map(|p| p.0) == Some(frame),
            "frame not freed",
        )
    })();
    ok(vmm.lock().free(K, a), "free")?;
    r
}

fn row14_cache<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let a = ok(
        vmm.lock().alloc(K, 1, 0, KRW | MemFlags::CACHE_NONE),
        "alloc",
    )?;
    let b = ok(vmm.lock().alloc(K, 1, 0, KRW | MemFlags::CACHE_WT), "alloc")?;
    let _ = read_byte(vmm, K, a, false);
    let _ = read_byte(vmm, K, b, false);
    let pcd = pte(vmm, K, a).is_some_and(|p| p.1.contains(PageAttrs::CACHE_DISABLE));
    let pwt = pte(vmm, K, b).is_some_and(|p| p.1.contains(PageAttrs::WRITE_THROUGH));
    ok(vmm.lock().free(K, a), "free")?;
    ok(vmm.lock().free(K, b), "free")?;
    ensure(pcd && pwt, "PCD/PWT set")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

fn row15_file<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let data = pattern(5000);
    let file = Arc::new(MemFile::new(data.clone()));
    let f = ok(vmm.lock().map_file(K, file, 0, 0, 2, URW), "map file")?;
    let r = (|| {
        for off in [0u64, 4095, 4096, 4999] {
            let v = read_byte(vmm, K, f + off, true).map_err(|_| "read")?;
            ensure(v == data[off as usize], "content")?;
        }
        for off in [5000u64, 6000, 8191] {
            ensure(read_byte(vmm, K, f + off, true) == Ok(0), "tail zero")?;
        }
        Ok(())
    })();
    ok(vmm.lock().free(K, f), "free")?;
    r
}

fn row17_image<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let data = pattern(2 * 4096);
    let file = Arc::new(MemFile::new(data.clone()));
    let text = Section {
        offset: 0,
        size: 5000,
        file_offset: 0,
        file_size: 5000,
        flags: MemFlags::READ,
        execute: true,
    };
    let bss = Section {
        offset: 2 * P,
        size: P,
        file_offset: 0,
        file_size: 0,
        flags: KRW,
        execute: false,
    };
    let img = ok(
        vmm.lock().map_image(K, file, &[text, bss], 0, 3, URW),
        "map image",
    )?;
    let r = (|| {
        ensure(
            read_byte(vmm, K, img + 4999, true) == Ok(data[4999]),
            "text content",
        )?;
        ensure(
            read_byte(vmm, K, img + 5000, true) == Ok(0),
            "section tail zero",
        )?;
        ensure(
            write_byte(vmm, K, img, 1, true) == Err(FaultOutcome::Protection),
            "text read-only",
        )?;
        ensure(read_byte(vmm, K, img + 2 * P, true) == Ok(0), "bss zero")?;
        write_byte(vmm, K, img + 2 * P, 1, true).map_err(|_| "bss writable")?;
        let nx = pte(vmm, K, img + 2 * P).is_some_and(|p| p.1.contains(PageAttrs::NO_EXECUTE));
        ensure(nx, "data not executable")
    })();
    ok(vmm.lock().free(K, img), "free")?;
    r
}

struct Flaky {
    inner: MemFile,
    fail_from: AtomicU64,
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

fn row20_read_failed<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let file = Arc::new(Flaky {
        inner: MemFile::new(pattern(3 * 4096)),
        fail_from: AtomicU64::new(P),
    });
    let f = ok(vmm.lock().map_file(K, file.clone(), 0, 0, 3, URW), "map")?;
    let r = (|| {
        ensure(
            read_byte(vmm, K, f + P, true) == Err(FaultOutcome::ReadFailed),
            "fails",
        )?;
        file.fail_from.store(u64::MAX, Ordering::SeqCst);
        ensure(
            read_byte(vmm, K, f + P, true) == Err(FaultOutcome::ReadFailed),
            "terminal",
        )?;
        ensure(
            read_byte(vmm, K, f + 2 * P, true).is_ok(),
            "other pages work",
        )
    })();
    ok(vmm.lock().free(K, f), "free")?;
    r
}

fn row21_callback<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let handler: Arc<CallbackFn> =
        Arc::new(move |m: &mut dyn CallbackMapper, f: &CallbackFault| {
            c2.fetch_add(1, Ordering::SeqCst);
            match m.map_new_frame(f.write) {
                Ok(frame) => {
                    m.write(frame, 0, &[0xCB]);
                    true
                }
                Err(_) => false,
            }
        });
    let c = ok(vmm.lock().alloc_callback(K, 2, 0, URW, handler), "alloc")?;
    let v = read_byte(vmm, K, c, true);
    let mapped = pte(vmm, K, c).is_some();
    ok(vmm.lock().free(K, c), "free")?;
    ensure(v == Ok(0xCB) && mapped, "handler mapped the page")?;
    ensure(calls.load(Ordering::SeqCst) == 1, "called once")?;
    ensure(pte(vmm, K, c).is_none(), "no stale PTE after free")
}

fn row22_sharing<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let b = ok(vmm.lock().create_space(), "space")?;
    let a = ok(vmm.lock().alloc(K, 1, 0, URW), "alloc")?;
    let ro = ok(
        vmm.lock().alloc(K, 1, 0, MemFlags::USER | MemFlags::READ),
        "alloc ro",
    )?;
    let r = (|| {
        write_byte(vmm, K, a, 0x77, true).map_err(|_| "write")?;
        let h = ok(vmm.lock().share(K, a, "selftest-share"), "share")?;
        let hro = ok(vmm.lock().share(K, ro, "selftest-ro"), "share ro")?;
        let widen = vmm.lock().map_shared(b, &hro, 0, URW);
        let at = ok(
            vmm.lock().map_shared(b, &h, USER_START + 0x40 * P, URW),
            "map shared",
        )?;
        let v = read_byte(vmm, b, at, true);
        let mut vm = vmm.lock();
        let refs = vm.area_refs(K, a);
        ok(vm.close_handle(h), "close")?;
        ok(vm.close_handle(hro), "close")?;
        ok(vm.unexport("selftest-share"), "unexport")?;
        ok(vm.unexport("selftest-ro"), "unexport")?;
        drop(vm);
        ensure(widen == Err(VmError::PermissionDenied), "no widening")?;
        ensure(v == Ok(0x77), "same bytes in the other space")?;
        ensure(refs == Some(4), "node + node + export + handle")
    })();
    ok(vmm.lock().free(K, a), "free")?;
    ok(vmm.lock().free(K, ro), "free")?;
    ok(vmm.lock().destroy_space(b), "destroy")?;
    r
}

fn row25_free<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let a = ok(vm.alloc(K, 2, 0, URW), "alloc")?;
    let interior = vm.free(K, a + P);
    ok(vm.free(K, a), "free")?;
    let double = vm.free(K, a);
    ensure(
        interior == Err(VmError::NotBase) && double == Err(VmError::NotAllocated),
        "errors",
    )
}

fn row33_pins<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let a = ok(vmm.lock().alloc(K, 1, 0, KRW), "alloc")?;
    let r = (|| {
        let frame = access(vmm, K, a, Access::WRITE).map_err(|_| "touch")?;
        let mut vm = vmm.lock();
        for _ in 0..300 {
            vm.pin_frame(frame).map_err(|_| "pin")?;
        }
        let pinned = vm.frames().pins(frame);
        for _ in 0..300 {
            vm.unpin_frame(frame).map_err(|_| "unpin")?;
        }
        ensure(pinned == 300 && vm.frames().pins(frame) == 0, "300 pins")
    })();
    ok(vmm.lock().free(K, a), "free")?;
    r
}

fn row34_states<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let a = ok(vmm.lock().alloc(K, 2, 0, URW), "alloc")?;
    let r = (|| {
        ensure(pte(vmm, K, a).is_none(), "not committed")?;
        read_byte(vmm, K, a, true).map_err(|_| "read")?;
        ensure(
            pte(vmm, K, a).is_some_and(|p| !p.1.contains(PageAttrs::WRITABLE)),
            "clean",
        )?;
        write_byte(vmm, K, a, 1, true).map_err(|_| "write")?;
        ensure(
            pte(vmm, K, a).is_some_and(|p| p.1.contains(PageAttrs::WRITABLE)),
            "dirty",
        )?;
        write_byte(vmm, K, a + P, 1, true).map_err(|_| "write")?;
        ensure(
            pte(vmm, K, a + P).is_some_and(|p| p.1.contains(PageAttrs::WRITABLE)),
            "dirty at once",
        )
    })();
    ok(vmm.lock().free(K, a), "free")?;
    r
}

fn misuse<M: Mmu>(vmm: &VmmLock<M>) -> Result<(), &'static str> {
    let mut vm = vmm.lock();
    let a = ok(vm.alloc(K, 4, 0, URW), "alloc")?;
    let before = vm.state();
    let errors = [
        vm.alloc(K, 0, 0, URW).err(),
        vm.alloc(K, 1, USER_START + 5, URW).err(),
        vm.alloc(K, 1, a, URW).err(),
        vm.free(K, a + P).err(),
        vm.open_shared("selftest-none").err(),
        vm.alloc(K, 1, 0, MemFlags::RESERVED).err(),
        vm.alloc(K, u64::MAX, 0, URW).err(),
    ];
    let same = vm.state() == before;
    ok(vm.free(K, a), "free")?;
    use VmError::*;
    let want = [
        ZeroPages,
        Unaligned,
        Overlap,
        NotBase,
        UnknownName,
        InvalidFlags,
        AddressSpaceExhausted,
    ];
    ensure(
        errors.iter().zip(want).all(|(e, w)| *e == Some(w)),
        "error kinds",
    )?;
    ensure(same, "state unchanged")
}
