//! The kernel proper: read the start info and command line, bring up traps,
//! heap and the Möbius VMM, run what the command line asks for, report the
//! fault statistics and exit with a status.
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use alloc::boxed::Box;
use spin::Once;

use crate::arch::x86_64::{cpu, direct, paging::X86Mmu, start_info, trap};
use crate::mm::frame::{usable_frames, CpuZeroing, DiscardZeroing, FrameZeroing, MemRegion};
use crate::mm::paging::PAGE_SIZE;
use crate::mm::stats::CycleSource;
use crate::mm::vmm::{Access, SpaceId, Vmm, VmmConfig, VmmLock, KERNEL_SPACE};
use crate::{println, report, workloads};
use mobius_shared::cmdline::BootOptions;
use mobius_shared::exit::GuestStatus;
use mobius_shared::layout::KERNEL_MIN_ADDR;
use mobius_shared::stats::FrameStats;

/// The kernel's VMM, started on first use ([`vmm`]).
static VMM: Once<VmmLock<X86Mmu>> = Once::new();
/// What starting the VMM needs, recorded at boot.
static VMM_BOOT: Once<VmmBoot> = Once::new();
/// The address space whose root is in CR3.
static CURRENT_SPACE: AtomicU32 = AtomicU32::new(0);
/// TSC at kernel entry and when the workload started.
pub static TSC_BOOT: AtomicU64 = AtomicU64::new(0);
pub static TSC_READY: AtomicU64 = AtomicU64::new(0);
/// TSC frequency in kHz (0 if unknown).
pub static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Largest heap the kernel takes (the 100,000-area benchmark needs a few tens of MiB).
const HEAP_MAX: u64 = 64 << 20;

/// The kernel-half PDPT, shared by every address space (PML4 slot 256).
#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut KERNEL_PDPT: Page = Page([0; 4096]);

extern "C" {
    static __kernel_end: u8;
}

/// `rdtsc` as the VMM's cycle source.
struct Tsc;
impl CycleSource for Tsc {
    fn now(&self) -> u64 {
        cpu::rdtsc()
    }
}

/// Called by the boot code (both entries) with the PVH start-info address.
pub extern "C" fn kernel_entry(start_info_addr: u64) -> ! {
    TSC_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
    trap::init();
    direct::init();
    let nx = cpu::enable_protection();
    // SAFETY: the boot code passes the loader's start-info pointer unchanged.
    let info = match unsafe { start_info::read(start_info_addr) } {
        Ok(info) => info,
        Err(e) => {
            println!("mobius-guest: unusable PVH start info at {start_info_addr:#x}: {e:?}");
            cpu::exit(GuestStatus::BadCommandLine.code())
        }
    };
    let line = info.cmdline;
    if info.params.is_some_and(|p| p.console()) {
        crate::console::use_console_port();
    }
    let options = BootOptions::from_view(line, info.params);
    TSC_KHZ.store(tsc_khz(&options), Ordering::Relaxed);
    let heap = init_heap(&info);
    let initramfs_error = info.module.and_then(|(base, len)| {
        // SAFETY: the loader put `len` bytes there and nothing else uses
        // them (the frame allocator gets the range as reserved).
        let data = unsafe {
            core::slice::from_raw_parts(direct::phys_to_virt(base) as *const u8, len as usize)
        };
        crate::fs::initramfs::init(data).err()
    });
    if let Some(e) = initramfs_error {
        println!("mobius-guest: the initramfs is not a newc cpio archive: {e}");
        cpu::exit(GuestStatus::BadCommandLine.code())
    }
    prepare_vmm(&info, heap, nx, options.discard);
    crate::dev::init(options.virtio_devices());
    if let Some(id) = options.run_id {
        report::set_run_id(id);
    }
    report::set_console_summary(options.summary);
    if let Some(ms) = options.stats_interval_ms {
        report::set_interval_ms(ms);
    }
    if line.split(' ').any(|w| w == "strace=1") {
        crate::syscall::TRACE.store(true, Ordering::Relaxed);
    }
    TSC_READY.store(cpu::rdtsc(), Ordering::Relaxed);
    if let Some(status) = crate::proc::init::run_program() {
        report::final_report();
        cpu::exit(mobius_shared::exit::PROGRAM_EXIT | status.shell_status())
    }
    let status = run(line, &options);
    report::final_report();
    cpu::exit(status.code())
}

/// Choose what to run from the command line.
fn run(line: &str, options: &BootOptions) -> GuestStatus {
    TSC_READY.store(cpu::rdtsc(), Ordering::Relaxed);
    if let Some(suite) = options.test {
        return crate::ktest::run_suite(suite);
    }
    workloads::run(options.workload.unwrap_or("hello"), line)
}

/// TSC frequency: the host's `tsc_khz=`, else CPUID leaves 0x40000010
/// (hypervisor timing leaf) or 0x15/0x16, else 0 with a warning.
fn tsc_khz(options: &BootOptions) -> u64 {
    if let Some(khz) = options.tsc_khz {
        return khz;
    }
    let hv_max = cpu::cpuid(0x4000_0000).0;
    if hv_max >= 0x4000_0010 {
        let khz = cpu::cpuid(0x4000_0010).0;
        if khz != 0 {
            return u64::from(khz);
        }
    }
    if cpu::cpuid(0).0 >= 0x15 {
        let (den, num, hz, _) = cpu::cpuid(0x15);
        if den != 0 && num != 0 && hz != 0 {
            return u64::from(hz) * u64::from(num) / u64::from(den) / 1000;
        }
    }
    if cpu::cpuid(0).0 >= 0x16 {
        let mhz = cpu::cpuid(0x16).0 & 0xffff;
        if mhz != 0 {
            return u64::from(mhz) * 1000;
        }
    }
    println!("mobius-guest: warning: TSC frequency unknown; times are reported in cycles only");
    0
}

/// Put the heap right after the kernel image; returns its range.
fn init_heap(info: &start_info::BootInfo) -> MemRegion {
    let kernel_end = (&raw const __kernel_end) as u64;
    let base = kernel_end.next_multiple_of(PAGE_SIZE);
    let ram_end = info.ram.end();
    // Below the initramfs, which the host puts at the top of RAM.
    let limit = info.module.map_or(ram_end, |(m, _)| m.min(ram_end));
    let size = (ram_end.saturating_sub(KERNEL_MIN_ADDR) / 4)
        .min(HEAP_MAX)
        .min(limit.saturating_sub(base))
        & !(PAGE_SIZE - 1);
    // SAFETY: [base, base + size) is RAM after the kernel image that nothing
    // else uses (the frame allocator gets it as reserved), reached through
    // the direct map so that every address space sees it.
    unsafe { crate::heap::init(direct::phys_to_virt(base), size) };
    MemRegion::new(base, size)
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
fn prepare_vmm(info: &start_info::BootInfo, heap: MemRegion, nx: bool, discard: bool) {
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
    let lock = VMM.call_once(|| start_vmm(boot));
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

fn start_vmm(boot: &VmmBoot) -> VmmLock<X86Mmu> {
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
    // SAFETY: every root shares the identity map (slot 0) the kernel runs
    // from and the kernel half, so the switch keeps the kernel mapped.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        )
    }
}

/// The address space in CR3.
pub fn current_space() -> SpaceId {
    SpaceId(CURRENT_SPACE.load(Ordering::Acquire))
}

/// The page-fault hook: decode the error code and ask the VMM.
fn page_fault(frame: &trap::TrapFrame, cr2: u64) -> bool {
    // No VMM yet: no area exists, nothing to resolve.
    let Some(vmm) = VMM.get() else { return false };
    if crate::workloads::floor_mode() {
        // The benchmark's floor handler: map a pre-zeroed frame, nothing else.
        return vmm.lock().floor_map(current_space(), cr2);
    }
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
    let outcome = crate::mm::fault::handle_locked(vmm, guard, current_space(), cr2, access);
    if !outcome.is_resolved() && !access.user {
        report::note_fault(cr2, access, outcome);
    }
    outcome.is_resolved()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("\nmobius-guest: panic: {info}");
    cpu::exit(GuestStatus::Panic.code())
}
