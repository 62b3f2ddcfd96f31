//! `fault-bench`: what a page fault costs in this guest, measured from the
//! faulting code (`rdtsc` around each touch: exception entry, handler,
//! return), each case beside the bare floor handler measured in the same
//! boot: exception entry, map one pre-zeroed frame, return.
//!
//! Prints `bench: <case> cycles_per_fault=<n> n=<faults>` lines and the
//! ratios; `make bench-faults` collects them into BENCHMARKS.md. With many
//! areas present there are two cases: faults in one fresh area (served by
//! the VMM's node hint) and faults each in another area (`spread`: every
//! one searches the node tree).
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{param, KRW};
use crate::arch::x86_64::cpu::rdtsc;
use crate::arch::x86_64::trap;
use crate::kvmm::{alloc, free, vmm, Outcome};
use crate::mm::paging::{Mmu, PAGE_SIZE};
use crate::mm::vmm::{CallbackFn, KERNEL_SPACE};
use crate::println;
use mobius_shared::workloads::Workload;

/// Scratch range for the floor handler: kernel half, outside every area the
/// VMM hands out in this run (the top of the kernel half).
const FLOOR_BASE: u64 = 0xFFFF_807F_0000_0000;

/// Cycles per touch of `pages` consecutive pages from `base` (writes).
fn touch_cycles(base: u64, pages: u64, write: bool) -> u64 {
    let t0 = rdtsc();
    for i in 0..pages {
        let p = (base + i * PAGE_SIZE) as *mut u8;
        // SAFETY: `base` is an area (or the floor range) of `pages` pages the
        // caller set up; the fault path maps each page.
        unsafe {
            if write {
                p.write_volatile(1);
            } else {
                p.read_volatile();
            }
        }
    }
    (rdtsc() - t0) / pages
}

/// `a / b` printed with two decimals.
struct Ratio(u64, u64);

impl core::fmt::Display for Ratio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let x100 = self.0 * 100 / self.1.max(1);
        write!(f, "{}.{:02}", x100 / 100, x100 % 100)
    }
}

fn report(case: &str, cycles: u64, n: u64, floor: u64) {
    println!(
        "bench: {case} cycles_per_fault={cycles} n={n} vs_floor={}",
        Ratio(cycles, floor)
    );
}

/// The floor: a page-fault hook of its own, installed only while it
/// measures, maps a pre-zeroed frame and returns (the production fault
/// path never checks for it).
fn floor(n: u64) -> u64 {
    trap::set_page_fault_hook(floor_hook);
    let cycles = touch_cycles(FLOOR_BASE, n, true);
    crate::mm::kernel::restore_page_fault_hook();
    let mut v = vmm().lock();
    for i in 0..n {
        v.floor_unmap(KERNEL_SPACE, FLOOR_BASE + i * PAGE_SIZE);
    }
    cycles
}

fn demand_zero(n: u64) -> Result<u64, &'static str> {
    let base = alloc(n, KRW)?;
    let c = touch_cycles(base, n, true);
    free(base)?;
    Ok(c)
}

/// Rounds in which the floor and demand-zero faults are measured in turn.
const ROUNDS: u64 = 10;

/// The floor and demand-zero cycles per fault, measured in [`ROUNDS`]
/// alternating rounds of `n / ROUNDS` faults each. What a fault costs under
/// kvm_pvm drifts, within a boot and between boots, by up to a third (the
/// floor alone was 0.89 M or 1.1-1.2 M cycles from run to run); measured
/// back to back, the two cases see the same conditions and their ratio is
/// the VMM's, not the drift's.
fn floor_and_demand_zero(n: u64) -> Result<(u64, u64, u64), &'static str> {
    let per = (n / ROUNDS).max(1);
    let (mut fl, mut dz) = (0, 0);
    for _ in 0..ROUNDS {
        fl += floor(per);
        dz += demand_zero(per)?;
    }
    Ok((fl / ROUNDS, dz / ROUNDS, per * ROUNDS))
}

fn upgrade(n: u64) -> Result<u64, &'static str> {
    let base = alloc(n, KRW)?;
    touch_cycles(base, n, false);
    let c = touch_cycles(base, n, true);
    free(base)?;
    Ok(c)
}

fn callback(n: u64) -> Result<u64, &'static str> {
    let handler: Arc<CallbackFn> =
        Arc::new(|mapper, fault| mapper.map_new_frame(fault.write).is_ok());
    let base = vmm()
        .lock()
        .alloc_callback(KERNEL_SPACE, n, 0, KRW, handler)
        .map_err(|_| "alloc_callback failed")?;
    let c = touch_cycles(base, n, true);
    free(base)?;
    Ok(c)
}

fn map(n: u64) -> Result<u64, &'static str> {
    // MAP areas never own their frames: map the low megabyte, which is
    // reserved RAM the allocator never hands out, and only read it.
    let n = n.min(255);
    let base = vmm()
        .lock()
        .map_phys(KERNEL_SPACE, n, 0, 0x1000, KRW)
        .map_err(|_| "map_phys failed")?;
    let c = touch_cycles(base, n, false);
    free(base)?;
    Ok(c)
}

/// What the cases with `areas` areas present cost, per fault.
struct AreaCosts {
    /// Demand-zero faults in one fresh area (the node hint serves them).
    one_area: u64,
    /// Demand-zero faults each in a different area than the last (every
    /// one misses the hint and searches the node tree).
    spread: u64,
    /// Cycles to create one of the areas.
    alloc: u64,
}

/// Demand-zero costs with `areas` areas present, untouched: each of
/// `ceil(n / areas)` pages, so that `n` faults can go to different areas.
fn with_areas(areas: u64, n: u64) -> Result<AreaCosts, &'static str> {
    let pages = n.div_ceil(areas).max(1);
    let t0 = rdtsc();
    let mut bases = Vec::with_capacity(areas as usize);
    for _ in 0..areas {
        bases.push(alloc(pages, KRW)?);
    }
    let alloc_cycles = (rdtsc() - t0) / areas;
    let one_area = demand_zero(n)?;
    let spread = spread(&bases, n);
    for b in bases {
        free(b)?;
    }
    Ok(AreaCosts {
        one_area,
        spread,
        alloc: alloc_cycles,
    })
}

/// Cycles per write fault, `n` faults going round `min(n, areas)`
/// neighbouring areas from the middle of `bases` (fault `i`: area `i mod
/// used`, page `i / used`): the same `n` pages of address space whatever
/// the number of areas, each fault in another area than the one before.
fn spread(bases: &[u64], n: u64) -> u64 {
    let used = n.min(bases.len() as u64).max(1);
    let first = (bases.len() as u64 - used) / 2;
    let t0 = rdtsc();
    for i in 0..n {
        let area = bases[(first + i % used) as usize];
        let p = (area + (i / used) * PAGE_SIZE) as *mut u8;
        // SAFETY: `area` is an area of at least `ceil(n / areas)` pages
        // (`with_areas`), so page `i / used` lies inside it.
        unsafe { p.write_volatile(1) };
    }
    (rdtsc() - t0) / n
}

/// What making one frame zero costs each way: `rep stosq` in guest ring 0
/// (emulated on kvm_pvm) against one port write asking the host to discard
/// the frame (`madvise(MADV_DONTNEED)`; it reads as zero afterwards).
fn zeroing(n: u64) -> (u64, u64) {
    #[repr(C, align(4096))]
    struct Scratch([u8; 4096]);
    static mut SCRATCH: Scratch = Scratch([0; 4096]);
    let phys = (&raw mut SCRATCH) as u64;
    let t0 = rdtsc();
    for _ in 0..n {
        vmm().lock().mmu_mut().zero_frame(phys);
    }
    let cpu = (rdtsc() - t0) / n;
    let t0 = rdtsc();
    for _ in 0..n {
        crate::arch::x86_64::cpu::discard_frame(phys / PAGE_SIZE);
    }
    (cpu, (rdtsc() - t0) / n)
}

pub fn run(w: &'static Workload, line: &str) -> Outcome {
    let n = param(w, line, "faults");
    let areas = param(w, line, "areas");
    // Warm up: page tables for the ranges, the heap, caches.
    let _ = demand_zero(n.min(64))?;
    let _ = floor(n.min(64));
    let (fl, dz, paired) = floor_and_demand_zero(n)?;
    report("floor", fl, paired, fl);
    report("demand-zero", dz, paired, fl);
    report("upgrade", upgrade(n)?, n, fl);
    report("callback", callback(n)?, n, fl);
    let mn = n.min(255);
    report("map", map(mn)?, mn, fl);
    let (cpu, discard) = zeroing(n.min(200));
    println!(
        "bench: zero-frame-cpu cycles_per_frame={cpu} n={}",
        n.min(200)
    );
    println!(
        "bench: zero-frame-discard cycles_per_frame={discard} n={}",
        n.min(200)
    );
    let few = with_areas(10, n)?;
    report("demand-zero-10-areas", few.one_area, n, fl);
    let many = with_areas(areas, n)?;
    println!(
        "bench: demand-zero-{areas}-areas cycles_per_fault={} n={n} vs_10_areas={} alloc_cycles={}",
        many.one_area,
        Ratio(many.one_area, few.one_area),
        many.alloc
    );
    // Every fault in another area than the one before: the node hint
    // misses each time, so these show the node tree's own scaling.
    report("demand-zero-spread-10-areas", few.spread, n, fl);
    println!(
        "bench: demand-zero-spread-{areas}-areas cycles_per_fault={} n={n} vs_10_areas={}",
        many.spread,
        Ratio(many.spread, few.spread)
    );
    Ok(())
}

/// The floor's page-fault hook: map a pre-zeroed frame at `cr2`.
fn floor_hook(_: &trap::TrapFrame, cr2: u64) -> bool {
    vmm()
        .lock()
        .floor_map(crate::mm::kernel::current_space(), cr2)
}
