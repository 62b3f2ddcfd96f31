//! Small CPU primitives: ports, TSC, CPUID, control registers, stopping.
use core::arch::asm;

use mobius_shared::ports::{DEBUG_EXIT, DISCARD_FRAME};

/// Write a byte to an I/O port.
#[inline]
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O has no memory effects; the ports we use are ours.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Read a byte from an I/O port.
#[inline]
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Write a 32-bit value to an I/O port.
#[inline]
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Read the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the TSC.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// CPUID leaf `leaf`, subleaf 0: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Read CR2, the faulting address of the last page fault.
pub fn cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Read CR3 (physical address of the current root table, flags masked).
pub fn cr3() -> u64 {
    let (frame, _) = x86_64::registers::control::Cr3::read_raw();
    frame.start_address().as_u64()
}

/// Set CR0.WP (read-only pages hold in ring 0 too) and EFER.NXE when the CPU
/// has NX. Returns whether NX is usable.
pub fn enable_protection() -> bool {
    use x86_64::registers::control::{Cr0, Cr0Flags};
    use x86_64::registers::model_specific::{Efer, EferFlags};
    // The direct long-mode entry arrives with both set by the host: then
    // skip the CPUID probes and register writes (each one emulated on
    // kvm_pvm); the PVH entry arrives without.
    let cr0 = Cr0::read();
    if !cr0.contains(Cr0Flags::WRITE_PROTECT) {
        // SAFETY: setting WP only makes the kernel stricter.
        unsafe { Cr0::write(cr0 | Cr0Flags::WRITE_PROTECT) };
    }
    if Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE) {
        return true;
    }
    let max_ext = cpuid(0x8000_0000).0;
    let nx = max_ext >= 0x8000_0001 && cpuid(0x8000_0001).3 & (1 << 20) != 0;
    if nx {
        // SAFETY: NXE is supported (checked above); no mapping uses NX yet.
        unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    nx
}

/// Ask the host to drop frame `pfn` so it reads as zeroes (only when the
/// command line says the host offers it).
pub fn discard_frame(pfn: u64) {
    outl(DISCARD_FRAME, pfn as u32);
}

/// End the run with `status` (debug-exit port). Never returns: if no one
/// listens on the port (bare QEMU without isa-debug-exit), halt forever.
pub fn exit(status: u32) -> ! {
    outl(DEBUG_EXIT, status);
    halt_forever()
}

/// Disable interrupts and halt for ever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this CPU.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}

/// 64 random bits: RDRAND (retried a few times) where CPUID says the CPU
/// has it, else the TSC run through a mixing function (splitmix64).
pub fn random_u64() -> u64 {
    if cpuid(1).2 & (1 << 30) != 0 {
        for _ in 0..10 {
            let (v, ok): (u64, u8);
            // SAFETY: rdrand only writes its operand and CF.
            unsafe {
                asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok,
                     options(nomem, nostack))
            };
            if ok != 0 {
                return v;
            }
        }
    }
    let mut z = rdtsc().wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
