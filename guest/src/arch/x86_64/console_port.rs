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
        // Kernel memory (stacks included) is identity-mapped: the virtual
        // address is the physical one the host reads. A buffer beyond 4 GiB
        // (never, with a low-loaded kernel) goes out through COM1 instead.
        let addr = self as *const Self as u64;
        match u32::try_from(addr) {
            // SAFETY: `out` has no memory effects for the guest; `readonly`
            // keeps the buffer's stores ahead of it, for the host to read.
            Ok(addr) => unsafe {
                asm!("out dx, eax", in("dx") CONSOLE_WRITE, in("eax") addr,
                     options(nostack, preserves_flags, readonly));
            },
            Err(_) => Serial::write_bytes(self.filled()),
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
