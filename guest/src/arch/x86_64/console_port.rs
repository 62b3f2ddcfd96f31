//! The `mobius` host's console-write port
//! ([`mobius_shared::ports::CONSOLE_WRITE`]): a line is gathered in a buffer
//! on the stack and handed over with one `out` of the buffer's address.
//!
//! On kvm_pvm a string `out` to COM1 exits to the host once per byte (~7 µs
//! each, ~30 for the greeting); this is one exit per line, and no UART
//! polling. The buffer lives on the caller's stack, so printing stays
//! reentrant (an exception handler may print in the middle of a line) and
//! needs no lock.
use core::arch::asm;
use core::fmt;
use core::mem::MaybeUninit;

use mobius_shared::ports::CONSOLE_WRITE;

use super::serial::Serial;

/// Bytes a buffer holds before it is handed over.
const CAPACITY: usize = 252;

/// `{ len: u32, bytes }`, the layout the host reads.
#[repr(C)]
pub struct LineBuffer {
    len: u32,
    bytes: [MaybeUninit<u8>; CAPACITY],
}

impl LineBuffer {
    pub fn new() -> Self {
        // Uninitialised bytes: nothing to zero (every byte is emulated work).
        LineBuffer {
            len: 0,
            bytes: [MaybeUninit::uninit(); CAPACITY],
        }
    }

    /// Hand the buffered bytes to the host.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        // The host reads the buffer by its physical address: kernel stacks
        // are in the low identity map or the direct map. A buffer elsewhere
        // (never) goes out through COM1 instead.
        let addr = super::direct::virt_to_phys(self as *const Self as u64);
        match addr.and_then(|a| u32::try_from(a).ok()) {
            // SAFETY: `out` has no memory effects for the guest; `readonly`
            // keeps the buffer's stores ahead of it, for the host to read.
            Some(addr) => unsafe {
                asm!("out dx, eax", in("dx") CONSOLE_WRITE, in("eax") addr,
                     options(nostack, preserves_flags, readonly));
            },
            None => Serial::write_bytes(self.filled()),
        }
        self.len = 0;
    }

    fn filled(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written by `write_str`.
        unsafe { core::slice::from_raw_parts(self.bytes.as_ptr().cast(), self.len as usize) }
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            let at = self.len as usize;
            let n = rest.len().min(CAPACITY - at);
            // SAFETY: `at + n <= CAPACITY`; source and buffer do not overlap.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    rest.as_ptr(),
                    self.bytes.as_mut_ptr().add(at).cast::<u8>(),
                    n,
                )
            };
            self.len += n as u32;
            rest = &rest[n..];
            if self.len as usize == CAPACITY {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Hand `bytes` to the host on console-write port `port` (standard output
/// or error), in buffers of at most the port's limit, each one exit.
pub fn write_stream(port: u16, bytes: &[u8]) {
    let max = mobius_shared::ports::CONSOLE_WRITE_MAX as usize;
    let mut buf: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(4 + max.min(bytes.len()));
    for chunk in bytes.chunks(max) {
        buf.clear();
        buf.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        buf.extend_from_slice(chunk);
        let addr = super::direct::virt_to_phys(buf.as_ptr() as u64);
        match addr.and_then(|a| u32::try_from(a).ok()) {
            // SAFETY: `out` has no memory effects for the guest; `readonly`
            // keeps the buffer's stores ahead of it, for the host to read.
            Some(addr) => unsafe {
                asm!("out dx, eax", in("dx") port, in("eax") addr,
                     options(nostack, preserves_flags, readonly));
            },
            None => Serial::write_bytes(chunk),
        }
    }
}
