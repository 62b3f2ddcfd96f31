//! The kernel proper: read the start info and command line, bring up traps,
//! heap and the Möbius VMM, run what the command line asks for, report the
//! fault statistics and exit with a status.
use core::panic::PanicInfo;
use core::sync::atomic::Ordering;

use crate::arch::x86_64::{cpu, direct, start_info, trap, tsc};
use crate::mm::frame::MemRegion;
use crate::mm::paging::PAGE_SIZE;
use crate::{println, report, workloads};
use mobius_shared::cmdline::BootOptions;
use mobius_shared::exit::GuestStatus;
use mobius_shared::layout::KERNEL_MIN_ADDR;

/// Largest heap the kernel takes (the 100,000-area benchmark needs a few tens of MiB).
const HEAP_MAX: u64 = 64 << 20;

extern "C" {
    static __kernel_end: u8;
}

/// Called by the boot code (both entries) with the PVH start-info address.
#[no_mangle]
pub extern "C" fn mobius_kernel_entry(start_info_addr: u64) -> ! {
    tsc::mark_boot();
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
    crate::arch::x86_64::fpu::use_host_xstate(info.params.is_some_and(|p| p.xstate()));
    crate::arch::x86_64::stdin::use_host_stdin(info.params.is_some_and(|p| p.stdin()));
    let options = BootOptions::from_view(line, info.params);
    tsc::init(&options);
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
    crate::mm::kernel::prepare(&info, heap, nx, options.discard);
    if info.params.is_some() {
        crate::dev::init(options.virtio_devices());
    } else {
        crate::dev::init(&crate::dev::windows_without_host(
            line,
            options.virtio_devices(),
        ));
    }
    if let Some(id) = options.run_id {
        report::set_run_id(id);
    }
    report::set_console_summary(options.summary);
    if let Some(ms) = options.stats_interval_ms {
        report::set_interval_ms(ms);
    }
    crate::recorder::init(&options, options.tsc_khz.unwrap_or(0));
    if line.split(' ').any(|w| w == "strace=1") {
        crate::syscall::TRACE.store(true, Ordering::Relaxed);
    }
    tsc::mark_ready();
    if let Some(status) = crate::proc::init::run_program() {
        crate::fs::ext4::report_errors();
        report::final_report();
        cpu::exit(mobius_shared::exit::PROGRAM_EXIT | status.shell_status())
    }
    let status = run(line, &options);
    report::final_report();
    cpu::exit(status.code())
}

/// Choose what to run from the command line.
fn run(line: &str, options: &BootOptions) -> GuestStatus {
    tsc::mark_ready();
    if let Some(suite) = options.test {
        return crate::ktest::run_suite(suite);
    }
    workloads::run(options.workload.unwrap_or("hello"), line)
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

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("\nmobius-guest: panic: {info}");
    cpu::exit(GuestStatus::Panic.code())
}
