//! The Möbius VMM fault workloads (`mobius list`): each exercises one kind of
//! area through real CPU accesses (every first touch is a real #PF through
//! the trap stub into `mm::fault::handle`), then checks that the fault
//! counters moved exactly as `mobius_shared::workloads` says they must. The
//! host checks the same numbers again from the decoded statistics.
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::arch::x86_64::trap::probe_write;
use crate::kvmm::{alloc, counts, ensure, free, free_frames, vmm, Outcome};
use crate::mm::kernel::switch_space;
use crate::mm::paging::PAGE_SIZE;
use crate::mm::vmm::{CallbackFn, MemFile, MemFlags, KERNEL_SPACE};
use crate::{println, report};
use mobius_shared::exit::GuestStatus;
use mobius_shared::stats::FaultKind;
use mobius_shared::workloads::{self, Workload};

mod bench;

const KRW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);
const URW: MemFlags = MemFlags::USER.union(KRW);

/// Run fault workload `name`, or `None` if there is no such workload.
pub fn run(name: &str, line: &str) -> Option<GuestStatus> {
    let workload = workloads::find(name)?;
    if let Err(e) = workload.check(line) {
        println!("mobius-guest: workload {name}: {e}");
        return Some(GuestStatus::BadCommandLine);
    }
    let before = counts();
    let result = match name {
        "seq-touch" => seq_touch(workload, line),
        "random-touch" => random_touch(workload, line),
        "read-then-write" => read_then_write(workload, line),
        "callback" => callback(workload, line),
        "map" => map(workload, line),
        "reserve-commit" => reserve_commit(workload, line),
        "share-map" => share_map(workload, line),
        "churn" => churn(workload, line),
        "file" => file(),
        "protection" => protection(workload, line),
        "exhaustion" => exhaustion(),
        "fault-bench" => bench::run(workload, line),
        "hello" => Ok(()),
        "bad-frames" => {
            report::send_bad_frames();
            Ok(())
        }
        _ => Err("listed but not implemented"),
    };
    let after = counts();
    Some(verdict(workload, line, result, &before, &after))
}

/// Compare the counter deltas with the catalogue's expected counts.
fn verdict(
    workload: &'static Workload,
    line: &str,
    result: Outcome,
    before: &[u64; FaultKind::COUNT],
    after: &[u64; FaultKind::COUNT],
) -> GuestStatus {
    let name = workload.name;
    if let Err(why) = result {
        println!("workload {name}: FAILED: {why}");
        return GuestStatus::Failure;
    }
    let Ok(expected) = workload.expected(line) else {
        return GuestStatus::BadCommandLine;
    };
    let mut ok = true;
    for kind in FaultKind::ALL {
        let got = after[kind.index()] - before[kind.index()];
        if let Some(want) = expected[kind.index()] {
            if got != want {
                println!(
                    "workload {name}: FAILED: {} = {got}, expected {want}",
                    kind.name()
                );
                ok = false;
            }
        }
    }
    if ok {
        println!("workload {name}: ok");
        GuestStatus::Success
    } else {
        GuestStatus::Failure
    }
}

fn param(w: &'static Workload, line: &str, name: &str) -> u64 {
    // Parameters were checked by `run` before the workload started.
    w.param(line, name).unwrap_or(0)
}

/// Write one byte per page (a real CPU store: faults go through the trap).
fn write_page(addr: u64, value: u8) {
    // SAFETY: callers pass addresses inside areas they allocated; the fault
    // path maps the page.
    unsafe { (addr as *mut u8).write_volatile(value) };
    report::maybe_periodic();
}

fn read_page(addr: u64) -> u8 {
    // SAFETY: as for `write_page`.
    let v = unsafe { (addr as *const u8).read_volatile() };
    report::maybe_periodic();
    v
}

/// `pages` fresh pages written once each: `pages` demand-zero faults.
fn seq_touch(w: &'static Workload, line: &str) -> Outcome {
    let pages = param(w, line, "pages");
    let base = alloc(pages, KRW)?;
    (0..pages).for_each(|i| write_page(base + i * PAGE_SIZE, 1));
    free(base)
}

/// `pages` distinct pages of a `span`-page area, in the order
/// `(a·i + b) mod span` with `a` coprime to `span` (a permutation).
fn random_touch(w: &'static Workload, line: &str) -> Outcome {
    let (pages, span, seed) = (
        param(w, line, "pages"),
        param(w, line, "span"),
        param(w, line, "seed"),
    );
    ensure(span >= pages, "span= must be at least pages=")?;
    let mut a = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1) % span.max(2);
    while gcd(a.max(1), span) != 1 {
        a += 1;
    }
    let b = seed % span;
    let base = alloc(span, KRW)?;
    for i in 0..pages {
        let page = (a.max(1) as u128 * i as u128 + b as u128) % span as u128;
        write_page(base + page as u64 * PAGE_SIZE, 1);
    }
    free(base)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reads map every page clean (read-only), writes upgrade them.
fn read_then_write(w: &'static Workload, line: &str) -> Outcome {
    let pages = param(w, line, "pages");
    let base = alloc(pages, KRW)?;
    let zeros = (0..pages).all(|i| read_page(base + i * PAGE_SIZE) == 0);
    (0..pages).for_each(|i| write_page(base + i * PAGE_SIZE, 2));
    free(base)?;
    ensure(zeros, "fresh pages must read as zero")
}

/// A CALLBACK area whose handler maps a fresh frame for each fault.
fn callback(w: &'static Workload, line: &str) -> Outcome {
    let pages = param(w, line, "pages");
    let handler: Arc<CallbackFn> =
        Arc::new(|mapper, fault| mapper.map_new_frame(fault.write).is_ok());
    let base = vmm()
        .lock()
        .alloc_callback(KERNEL_SPACE, pages, 0, KRW, handler)
        .map_err(|_| "alloc_callback failed")?;
    (0..pages).for_each(|i| write_page(base + i * PAGE_SIZE, 3));
    free(base)
}

/// A MAP area over 16 kernel-owned pages: reads see what the kernel wrote
/// through the identity map, and freeing gives no frame to the allocator.
fn map(w: &'static Workload, line: &str) -> Outcome {
    #[repr(C, align(4096))]
    struct Range([u8; 16 * 4096]);
    static mut RANGE: Range = Range([0; 16 * 4096]);
    let pages = param(w, line, "pages");
    let phys = (&raw mut RANGE) as u64;
    for i in 0..pages {
        // SAFETY: a static range only this workload uses.
        unsafe { ((phys + i * PAGE_SIZE) as *mut u8).write_volatile(i as u8 + 1) };
    }
    let base = vmm()
        .lock()
        .map_phys(KERNEL_SPACE, pages, 0, phys, KRW)
        .map_err(|_| "map_phys failed")?;
    let frames = free_frames();
    let seen = (0..pages).all(|i| read_page(base + i * PAGE_SIZE) == i as u8 + 1);
    free(base)?;
    ensure(seen, "MAP area must show the physical range")?;
    ensure(
        free_frames() == frames,
        "freeing a MAP area must not free its frames",
    )
}

/// Reserve, carve a fixed allocation out of the reservation, touch it; an
/// automatic allocation must land outside the reservation.
fn reserve_commit(w: &'static Workload, line: &str) -> Outcome {
    let (reserve, commit) = (param(w, line, "reserve"), param(w, line, "commit"));
    ensure(commit < reserve, "commit= must be smaller than reserve=")?;
    let mut v = vmm().lock();
    let base = v
        .reserve(KERNEL_SPACE, reserve, 0)
        .map_err(|_| "reserve failed")?;
    let at = base + PAGE_SIZE;
    let got = v
        .alloc(KERNEL_SPACE, commit, at, URW)
        .map_err(|_| "fixed alloc in reservation failed")?;
    let auto = v
        .alloc(KERNEL_SPACE, 1, 0, URW)
        .map_err(|_| "automatic alloc failed")?;
    drop(v);
    (0..commit).for_each(|i| write_page(at + i * PAGE_SIZE, 4));
    let outside = auto < base || auto >= base + reserve * PAGE_SIZE;
    free(auto)?;
    free(got)?;
    ensure(got == at, "fixed allocation must land where asked")?;
    ensure(outside, "automatic placement must skip the reservation")
}

/// Write an area, share it by name, open it and map it in a second address
/// space at another base; the second space reads what the first wrote.
fn share_map(w: &'static Workload, line: &str) -> Outcome {
    let pages = param(w, line, "pages");
    let base = alloc(pages, URW)?;
    (0..pages).for_each(|i| write_page(base + i * PAGE_SIZE, (i % 250) as u8 + 1));
    let (space, root, other, kernel_root) = {
        let mut v = vmm().lock();
        let owner = v
            .share(KERNEL_SPACE, base, "workload-share")
            .map_err(|_| "share failed")?;
        let _ = v.close_handle(owner);
        let handle = v
            .open_shared("workload-share")
            .map_err(|_| "open by name failed")?;
        let space = v.create_space().map_err(|_| "create_space failed")?;
        let other = v
            .map_shared(space, &handle, 0, URW)
            .map_err(|_| "map_shared failed")?;
        let _ = v.close_handle(handle);
        let _ = v.unexport("workload-share");
        let root = v.root(space).map_err(|_| "no root")?;
        (
            space,
            root,
            other,
            v.root(KERNEL_SPACE).map_err(|_| "no root")?,
        )
    };
    switch_space(space, root);
    let same = (0..pages).all(|i| read_page(other + i * PAGE_SIZE) == (i % 250) as u8 + 1);
    switch_space(KERNEL_SPACE, kernel_root);
    let mut v = vmm().lock();
    let freed = v.destroy_space(space).is_ok() && v.free(KERNEL_SPACE, base).is_ok();
    drop(v);
    ensure(
        other != base || space != KERNEL_SPACE,
        "mapped at a distinct place",
    )?;
    ensure(same, "the second space must see the first space's bytes")?;
    ensure(freed, "teardown failed")
}

/// Allocate, touch and free repeatedly: the free-frame count comes back.
fn churn(w: &'static Workload, line: &str) -> Outcome {
    let (rounds, pages) = (param(w, line, "rounds"), param(w, line, "pages"));
    let before = free_frames();
    for _ in 0..rounds {
        let base = alloc(pages, KRW)?;
        (0..pages).for_each(|i| write_page(base + i * PAGE_SIZE, 5));
        free(base)?;
    }
    ensure(free_frames() == before, "frames not conserved across churn")
}

/// A FILE area over 5000 bytes: two read-in faults, the tail of page 1 zero.
fn file() -> Outcome {
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
    let file = Arc::new(MemFile::new(data));
    let base = vmm()
        .lock()
        .map_file(KERNEL_SPACE, file, 0, 0, 2, MemFlags::READ)
        .map_err(|_| "map_file failed")?;
    let head = (0..4096u64)
        .step_by(512)
        .all(|o| read_page(base + o) == (o % 251) as u8 + 1);
    let last = read_page(base + 4999) == (4999 % 251) as u8 + 1;
    let tail = (5000..8192u64)
        .step_by(64)
        .all(|o| read_page(base + o) == 0);
    free(base)?;
    ensure(head && last, "file contents must match")?;
    ensure(tail, "the partial last page must be zero-filled")
}

/// Writes to a read-only area: protection faults, no frame allocated.
fn protection(w: &'static Workload, line: &str) -> Outcome {
    let count = param(w, line, "count");
    let base = alloc(1, MemFlags::READ)?;
    let _ = read_page(base);
    let frames = free_frames();
    let refused = (0..count).all(|_| !probe_write(base, 1));
    let same = free_frames() == frames;
    free(base)?;
    ensure(refused, "a write to a read-only area must fault")?;
    ensure(same, "a protection fault must not allocate")
}

/// Touch pages until no frame is left: exactly one unresolved fault, then
/// everything is given back.
fn exhaustion() -> Outcome {
    let before = free_frames();
    let pages = before + 1024;
    let base = alloc(pages, KRW)?;
    let mut touched = 0;
    while touched < pages && probe_write(base + touched * PAGE_SIZE, 1) {
        touched += 1;
        report::maybe_periodic();
    }
    let empty = free_frames() == 0 || touched < pages;
    free(base)?;
    println!("workload exhaustion: {touched} pages touched of {before} free frames");
    ensure(touched < pages, "ran out of area before frames")?;
    ensure(empty, "stopped before the frames ran out")?;
    ensure(
        free_frames() == before,
        "frames not conserved after exhaustion",
    )
}
