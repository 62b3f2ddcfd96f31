//! A program's standard input: the host's (the console-read port,
//! `mobius_shared::ports::CONSOLE_READ`), when the host offers it; empty
//! otherwise (QEMU).
use core::sync::atomic::{AtomicBool, Ordering};

use alloc::vec;
use alloc::vec::Vec;

use mobius_shared::ports::{CONSOLE_READ, CONSOLE_READ_MAX};

static OFFERED: AtomicBool = AtomicBool::new(false);

/// The host offers its standard input (boot parameters).
pub fn use_host_stdin(on: bool) {
    OFFERED.store(on, Ordering::Relaxed);
}

/// Up to `max` bytes of the host's standard input, waiting for them (the
/// whole guest waits: one vCPU); empty at its end, or when not offered.
pub fn read(max: usize) -> Vec<u8> {
    if !OFFERED.load(Ordering::Relaxed) || max == 0 {
        return Vec::new();
    }
    let cap = max.min(CONSOLE_READ_MAX as usize);
    // `{cap, len, bytes}` on the heap, which the direct map reaches.
    let mut buf = vec![0u8; 8 + cap];
    buf[..4].copy_from_slice(&(cap as u32).to_le_bytes());
    let Some(addr) =
        super::direct::virt_to_phys(buf.as_ptr() as u64).and_then(|a| u32::try_from(a).ok())
    else {
        return Vec::new();
    };
    // SAFETY: the host writes only inside the buffer it was given (and
    // checks it lies in RAM); no `nomem`: the buffer is read after.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") CONSOLE_READ, in("eax") addr,
                         options(nostack, preserves_flags));
    }
    let n = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    buf.drain(..8);
    buf.truncate(n.min(cap));
    buf
}
