//! VMM checks made with real CPU accesses: every touch below goes through the
//! x86 page-fault exception, the trap stub, `mm::fault::handle` and the real
//! page tables, and the fault counters must move exactly as expected.
use alloc::sync::Arc;

use super::Tally;
use crate::arch::x86_64::trap::{probe_read, probe_write};
use crate::kvmm::{alloc, count, ensure, free, free_frames, vmm};
use crate::mm::kernel::{current_space, switch_space};
use crate::mm::paging::{PageAttrs, PAGE_SIZE};
use crate::mm::vmm::{MemFlags, KERNEL_SPACE, PROCESS_LOW_START};
use mobius_shared::stats::FaultKind;

type Check = fn() -> Result<(), &'static str>;

const KRW: MemFlags = MemFlags::READ.union(MemFlags::WRITE);
const URW: MemFlags = MemFlags::USER.union(KRW);

/// Run every real-access check.
pub fn run(tally: &mut Tally) {
    let checks: [(&str, Check); 11] = [
        ("idt-gates-point-at-their-stubs", idt_gates),
        ("real-demand-zero-write", demand_zero_write),
        ("real-read-clean-then-upgrade", read_then_upgrade),
        ("real-write-read-only-is-protection", read_only_write),
        ("real-unmapped-is-unresolved", unmapped),
        ("real-callback", callback),
        ("real-map-area", map_area),
        ("real-cache-none-pte", cache_none),
        ("real-second-address-space", second_space),
        ("real-free-returns-frames", free_returns_frames),
        (
            "real-destroyed-space-gives-zero-tables",
            destroyed_space_tables,
        ),
    ];
    for (name, check) in checks {
        tally.record(name, check());
    }
}

/// The IDT built from one template matches the stub table gate by gate.
fn idt_gates() -> Result<(), &'static str> {
    ensure(
        crate::arch::x86_64::trap::gates_match_stubs(),
        "an IDT gate does not point at its stub",
    )
}

/// Writing N fresh pages: N demand-zero faults, the data sticks.
fn demand_zero_write() -> Result<(), &'static str> {
    const N: u64 = 8;
    let base = alloc(N, KRW)?;
    let before = count(FaultKind::DemandZero);
    for i in 0..N {
        let p = (base + i * PAGE_SIZE) as *mut u64;
        // SAFETY: the page belongs to the area just allocated; the fault
        // path maps it.
        unsafe { p.write_volatile(0x1234_0000 + i) };
    }
    for i in 0..N {
        let p = (base + i * PAGE_SIZE) as *const u64;
        // SAFETY: as above, now mapped.
        let v = unsafe { p.read_volatile() };
        ensure(v == 0x1234_0000 + i, "data written is not read back")?;
    }
    let faults = count(FaultKind::DemandZero) - before;
    free(base)?;
    ensure(
        faults == N,
        "expected exactly one demand-zero fault per page",
    )
}

/// A read maps a zeroed page read-only; the first write upgrades it.
fn read_then_upgrade() -> Result<(), &'static str> {
    let base = alloc(1, KRW)?;
    let (dz, up) = (count(FaultKind::DemandZero), count(FaultKind::Upgrade));
    // SAFETY: inside the area.
    let v = unsafe { (base as *const u64).read_volatile() };
    ensure(v == 0, "a fresh page must read as zero")?;
    let clean = vmm().lock().mmu().translate_current(base);
    ensure(
        clean.is_some_and(|a| !a.contains(PageAttrs::WRITABLE)),
        "a read fault must map the page read-only",
    )?;
    // SAFETY: inside the area.
    unsafe { (base as *mut u64).write_volatile(7) };
    let dirty = vmm().lock().mmu().translate_current(base);
    ensure(
        dirty.is_some_and(|a| a.contains(PageAttrs::WRITABLE)),
        "the write must upgrade the page to writable",
    )?;
    let counts = (
        count(FaultKind::DemandZero) - dz,
        count(FaultKind::Upgrade) - up,
    );
    free(base)?;
    ensure(
        counts == (1, 1),
        "expected one demand-zero and one upgrade fault",
    )
}

/// CR0.WP: a kernel write to a read-only area is a protection fault, counted,
/// and allocates nothing.
fn read_only_write() -> Result<(), &'static str> {
    let base = alloc(1, MemFlags::READ)?;
    ensure(
        probe_read(base) == Some(0),
        "read-only area must be readable",
    )?;
    let prot = count(FaultKind::Protection);
    let frames = free_frames();
    ensure(
        !probe_write(base, 1),
        "write to a read-only area must fault",
    )?;
    let counted = count(FaultKind::Protection) - prot;
    let frames_after = free_frames();
    free(base)?;
    ensure(counted == 1, "the protection fault must be counted once")?;
    ensure(
        frames_after == frames,
        "a protection fault must not allocate",
    )
}

fn unmapped() -> Result<(), &'static str> {
    let before = count(FaultKind::Unresolved);
    ensure(
        probe_read(0x0000_4000_0000_0000).is_none(),
        "an address no area covers must not resolve",
    )?;
    ensure(
        count(FaultKind::Unresolved) == before + 1,
        "the unresolved fault must be counted",
    )
}

fn callback() -> Result<(), &'static str> {
    let handler: Arc<crate::mm::vmm::CallbackFn> =
        Arc::new(|mapper, fault| mapper.map_new_frame(fault.write).is_ok());
    let base = vmm()
        .lock()
        .alloc_callback(KERNEL_SPACE, 2, 0, KRW, handler)
        .map_err(|_| "alloc_callback failed")?;
    let before = count(FaultKind::Callback);
    // SAFETY: inside the area; the handler maps the page.
    unsafe { ((base + PAGE_SIZE) as *mut u32).write_volatile(0xfeed) };
    // SAFETY: mapped now.
    let v = unsafe { ((base + PAGE_SIZE) as *const u32).read_volatile() };
    let counted = count(FaultKind::Callback) - before;
    free(base)?;
    ensure(v == 0xfeed, "callback page must hold the data")?;
    ensure(counted == 1, "expected exactly one callback fault")
}

/// A MAP area shows a given physical frame: what the kernel wrote through the
/// identity map is read back through the area, and freeing the area does not
/// give the frame to the allocator.
fn map_area() -> Result<(), &'static str> {
    #[repr(C, align(4096))]
    struct Target([u8; 4096]);
    static mut TARGET: Target = Target([0; 4096]);
    let phys = (&raw mut TARGET) as u64;
    // SAFETY: a static page only this test uses.
    unsafe { (phys as *mut u64).write_volatile(0x00c0_ffee) };
    let base = vmm()
        .lock()
        .map_phys(KERNEL_SPACE, 1, 0, phys, KRW)
        .map_err(|_| "map_phys failed")?;
    let before = count(FaultKind::Map);
    let frames = free_frames();
    // SAFETY: inside the MAP area.
    let v = unsafe { (base as *const u64).read_volatile() };
    let counted = count(FaultKind::Map) - before;
    free(base)?;
    ensure(v == 0x00c0_ffee, "MAP area must show the physical frame")?;
    ensure(counted == 1, "expected exactly one MAP fault")?;
    ensure(
        free_frames() == frames,
        "freeing a MAP area must not free its frames",
    )
}

fn cache_none() -> Result<(), &'static str> {
    let base = alloc(1, KRW | MemFlags::CACHE_NONE)?;
    // SAFETY: inside the area.
    unsafe { (base as *mut u8).write_volatile(1) };
    let attrs = vmm().lock().mmu().translate_current(base);
    free(base)?;
    ensure(
        attrs.is_some_and(|a| a.contains(PageAttrs::CACHE_DISABLE)),
        "VM_MEM_CACHE_NONE must set PCD",
    )
}

/// A second address space: its user area is private, the kernel half is shared.
fn second_space() -> Result<(), &'static str> {
    let (space, root) = {
        let mut v = vmm().lock();
        let space = v.create_space().map_err(|_| "create_space failed")?;
        (space, v.root(space).map_err(|_| "no root")?)
    };
    let kernel_root = vmm().lock().root(KERNEL_SPACE).map_err(|_| "no root")?;
    let shared = alloc(1, KRW)?;
    // SAFETY: inside the kernel area.
    unsafe { (shared as *mut u64).write_volatile(42) };
    let user = vmm()
        .lock()
        .alloc(space, 1, 0, URW)
        .map_err(|_| "user alloc failed")?;
    switch_space(space, root);
    // SAFETY: inside the user area of the space now in CR3 (kernel access).
    unsafe { (user as *mut u64).write_volatile(7) };
    // SAFETY: the kernel half is mapped in every space.
    let seen = unsafe { (shared as *const u64).read_volatile() };
    let in_space = current_space() == space;
    switch_space(KERNEL_SPACE, kernel_root);
    let private = probe_read(user).is_none();
    let mut v = vmm().lock();
    let freed = v.free(space, user).is_ok() && v.destroy_space(space).is_ok();
    drop(v);
    free(shared)?;
    ensure(in_space, "switch_space must record the space")?;
    ensure(seen == 42, "the kernel half must be shared")?;
    ensure(
        private,
        "a user area must not be visible from another space",
    )?;
    ensure(freed, "freeing the area and the space must succeed")
}

/// A destroyed process space gives its page tables back as zero frames and
/// keeps its hands off the low identity map every root shares. (It once
/// freed a table of that map, which was then handed out as a user page
/// table: a program that `execve`d itself hung on a spurious fault.)
fn destroyed_space_tables() -> Result<(), &'static str> {
    let kernel_root = vmm().lock().root(KERNEL_SPACE).map_err(|_| "no root")?;
    let (space, root) = {
        let mut v = vmm().lock();
        let space = v.create_process_space().map_err(|_| "no space")?;
        (space, v.root(space).map_err(|_| "no root")?)
    };
    let user = vmm()
        .lock()
        .alloc(space, 1, PROCESS_LOW_START, URW)
        .map_err(|_| "user alloc failed")?;
    switch_space(space, root);
    // SAFETY: a user page of the space now in CR3 (kernel access).
    unsafe { (user as *mut u64).write_volatile(7) };
    switch_space(KERNEL_SPACE, kernel_root);
    let mut v = vmm().lock();
    let freed = v.free(space, user).is_ok() && v.destroy_space(space).is_ok();
    let mut taken = alloc::vec::Vec::new();
    let mut all_zero = true;
    for _ in 0..8 {
        let Some(f) = v.frames_mut().alloc_known_zero() else {
            break;
        };
        let words = crate::arch::x86_64::direct::phys_to_virt(f) as *const u64;
        // SAFETY: a whole frame of RAM, reached through the direct map.
        all_zero &= (0..512).all(|i| unsafe { words.add(i).read_volatile() } == 0);
        taken.push(f);
    }
    for f in taken {
        let _ = v.frames_mut().free_zeroed(f);
    }
    drop(v);
    ensure(freed, "freeing the area and the space must succeed")?;
    ensure(all_zero, "frames of the zero pool must read as zero")
}

fn free_returns_frames() -> Result<(), &'static str> {
    let before = free_frames();
    let base = alloc(4, KRW)?;
    for i in 0..4 {
        // SAFETY: inside the area.
        unsafe { ((base + i * PAGE_SIZE) as *mut u8).write_volatile(1) };
    }
    ensure(free_frames() < before, "touching must take frames")?;
    free(base)?;
    ensure(
        free_frames() == before,
        "free must return every frame and table",
    )
}
