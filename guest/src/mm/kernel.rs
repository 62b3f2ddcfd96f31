//! The kernel's one VMM instance (Möbius' kernel-wide VMM state): started on
//! first use, reached by every room through [`vmm`]; which address space is
//! live in CR3; and the page-fault hook that sends ring-0 faults to it.
//!
//! Boot records what the VMM will need with [`prepare`]; nothing here
//! imports `kmain`.
use core::sync::atomic::{AtomicU32, Ordering};

use alloc::boxed::Box;
use spin::Once;

use crate::arch::x86_64::paging::X86Mmu;
use crate::arch::x86_64::{cpu, start_info, trap};
use crate::mm::frame::{usable_frames, CpuZeroing, DiscardZeroing, FrameZeroing, MemRegion};
use crate::mm::paging::PAGE_SIZE;
use crate::mm::stats::CycleSource;
use crate::mm::vmm::{Access, SpaceId, Vmm, VmmConfig, VmmLock, KERNEL_SPACE};
use crate::{println, report};
use mobius_shared::exit::GuestStatus;
use mobius_shared::stats::FrameStats;

/// The kernel's VMM, started on first use ([`vmm`]).
static VMM: Once<VmmLock<X86Mmu>> = Once::new();
/// What starting the VMM needs, recorded at boot.
static VMM_BOOT: Once<VmmBoot> = Once::new();
/// The address space whose root is in CR3.
static CURRENT_SPACE: AtomicU32 = AtomicU32::new(0);

/// The kernel-half PDPT, shared by every address space (PML4 slot 256).
#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut KERNEL_PDPT: Page = Page([0; 4096]);

/// `rdtsc` as the VMM's cycle source.
struct Tsc;
impl CycleSource for Tsc {
    fn now(&self) -> u64 {
        cpu::rdtsc()
    }
}

/// The boot facts the VMM is built from, kept until it starts.
struct VmmBoot {
    ram: start_info::RamMap,
    reserved: [MemRegion; 2],
    nx: bool,
    discard: bool,
}

/// Record what the VMM will need and install the page-fault hook. The VMM
/// itself starts on first use ([`vmm`]): bringing it up (frame allocator,
/// kernel address space, node trees) is a few thousand ring-0 instructions,
/// ~2 ms where kvm_pvm emulates them, and a workload that never asks for
/// virtual memory (`hello`, `exit`) should not pay for it. Until then no area
/// exists, so every page fault is unresolved, as it would be anyway.
pub fn prepare(info: &start_info::BootInfo, heap: MemRegion, nx: bool, discard: bool) {
    // Boot structures and firmware below 1 MiB, then the kernel image (with
    // its boot page tables, stacks and the kernel PDPT in .bss) and the heap
    // right after it: one range from 0 (one range is fewer steps to count).
    // The initramfs, if any, stays where the loader put it (read in place).
    let module = info.module.map_or(MemRegion::new(0, 0), |(base, len)| {
        let start = base & !(PAGE_SIZE - 1);
        MemRegion::new(start, (base + len).next_multiple_of(PAGE_SIZE) - start)
    });
    let reserved = [MemRegion::new(0, heap.base + heap.len), module];
    VMM_BOOT.call_once(|| VmmBoot {
        ram: info.ram,
        reserved,
        nx,
        discard,
    });
    trap::set_page_fault_hook(page_fault);
}

/// The kernel's VMM, started now if this is its first use (and the kernel
/// address space loaded into CR3).
pub fn vmm() -> &'static VmmLock<X86Mmu> {
    if let Some(vmm) = VMM.get() {
        return vmm;
    }
    let Some(boot) = VMM_BOOT.get() else {
        println!("mobius-guest: the VMM was asked for before boot prepared it");
        cpu::exit(GuestStatus::Panic.code())
    };
    let lock = VMM.call_once(|| start(boot));
    let root = match lock.lock().root(KERNEL_SPACE) {
        Ok(root) => root,
        Err(e) => {
            println!("mobius-guest: no kernel address space: {e}");
            cpu::exit(GuestStatus::OutOfMemory.code())
        }
    };
    switch_space(KERNEL_SPACE, root);
    lock
}

/// The kernel's VMM if it has started.
pub fn vmm_if_started() -> Option<&'static VmmLock<X86Mmu>> {
    VMM.get()
}

/// Frame counts while the VMM has not started: every usable frame free
/// (counted when asked, not at boot).
pub fn frames_before_vmm() -> FrameStats {
    let Some(boot) = VMM_BOOT.get() else {
        return FrameStats::default();
    };
    let total = usable_frames(boot.ram.iter(), &boot.reserved);
    FrameStats {
        total,
        free: total,
        zeroed: total,
        ..FrameStats::default()
    }
}

fn start(boot: &VmmBoot) -> VmmLock<X86Mmu> {
    let zeroing: Box<dyn FrameZeroing> = if boot.discard {
        Box::new(DiscardZeroing {
            discard: cpu::discard_frame,
        })
    } else {
        Box::new(CpuZeroing)
    };
    let (ram, ram_len) = boot.ram.regions();
    let config = VmmConfig {
        ram: &ram[..ram_len],
        reserved: &boot.reserved,
        zeroing,
        clock: Box::new(Tsc),
    };
    // SAFETY: CR3 holds the boot tables and slot 256 is unused; the PDPT is
    // a zeroed, page-aligned static used for nothing else.
    let mmu = unsafe { X86Mmu::new(boot.nx, (&raw const KERNEL_PDPT) as u64) };
    match Vmm::new(config, mmu) {
        Ok(vmm) => spin::Mutex::new(vmm),
        Err(e) => {
            println!("mobius-guest: cannot start the VMM: {e}");
            cpu::exit(GuestStatus::OutOfMemory.code())
        }
    }
}

/// Load `root` into CR3 and remember which space it is.
pub fn switch_space(space: SpaceId, root: u64) {
    use x86_64::registers::control::{Cr3, Cr3Flags};
    use x86_64::structures::paging::PhysFrame;
    use x86_64::PhysAddr;
    CURRENT_SPACE.store(space.0, Ordering::Release);
    // SAFETY: every root shares the kernel-only low identity map the kernel
    // runs from, the direct map and the kernel half, so the switch keeps the
    // kernel mapped.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        )
    }
}

/// Load `space`'s root into CR3 unless it is there already.
pub fn load_space(space: SpaceId) {
    let root = vmm().lock().root(space);
    if let Ok(root) = root {
        if root != cpu::cr3() {
            switch_space(space, root);
        }
    }
}

/// The address space in CR3.
pub fn current_space() -> SpaceId {
    SpaceId(CURRENT_SPACE.load(Ordering::Acquire))
}

/// The page-fault hook for ring 0: decode the error code and ask the VMM.
/// (Ring-3 faults go to `proc::entry`; the fault benchmark installs its own
/// floor hook while it measures.)
fn page_fault(frame: &trap::TrapFrame, cr2: u64) -> bool {
    // No VMM yet: no area exists, nothing to resolve.
    let Some(vmm) = VMM.get() else { return false };
    let Some(guard) = vmm.try_lock() else {
        // The fault came from code holding the VMM lock: resolving it would
        // deadlock. Report it instead.
        println!("mobius-guest: page fault at {cr2:#x} while the VMM lock is held");
        return false;
    };
    let e = frame.error_code;
    let access = Access {
        present: e & 1 != 0,
        write: e & 2 != 0,
        user: e & 4 != 0,
        instruction: e & 16 != 0,
    };
    crate::mm::record::set_trap_rip(frame.rip);
    let outcome = crate::mm::fault::handle_locked(vmm, guard, current_space(), cr2, access);
    if !outcome.is_resolved() && !access.user {
        report::note_fault(cr2, access, outcome);
    }
    outcome.is_resolved()
}

/// Put the default page-fault hook back (after a benchmark replaced it).
pub fn restore_page_fault_hook() {
    trap::set_page_fault_hook(page_fault);
}
