//! COM1, a 16550 UART, polled (no interrupts). The guest's console.
use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use super::cpu::{inb, outb};
use mobius_shared::ports::COM1;

const THR: u16 = 0;
const FCR: u16 = 2;
const LSR: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;
/// Depth of the 16550A transmit FIFO.
const FIFO_DEPTH: usize = 16;
/// FCR: enable and clear both FIFOs.
const FCR_ENABLE_CLEAR: u8 = 0x07;

/// Whether the FIFOs are on (done before the first byte is sent).
static FIFO_ON: AtomicBool = AtomicBool::new(false);

/// The serial port as a `fmt::Write` sink.
pub struct Serial;

impl Serial {
    /// Enable the FIFOs, so that one "transmitter empty" check covers 16
    /// bytes: every port access is a VM exit, the dominant cost of output.
    /// On first use, not at boot: a kernel printing through the host's
    /// console-write port never touches the UART.
    fn init_once() {
        if !FIFO_ON.swap(true, Ordering::Relaxed) {
            outb(COM1 + FCR, FCR_ENABLE_CLEAR);
        }
    }

    /// Wait (bounded) until the transmitter and its FIFO are empty. A UART
    /// that never reports empty (nothing there) is written anyway, so the
    /// kernel never hangs on its console.
    fn wait_empty() {
        for _ in 0..1000 {
            if inb(COM1 + LSR) & LSR_THR_EMPTY != 0 {
                return;
            }
        }
    }

    /// Send bytes, one emptiness check per FIFO-full, each FIFO-full with
    /// one `rep outsb` (on hardware, the same byte-by-byte writes to the
    /// transmit register). KVM may hand a string OUT to the host as one
    /// exit; kvm_pvm still exits once per byte.
    pub fn write_bytes(bytes: &[u8]) {
        Self::init_once();
        for chunk in bytes.chunks(FIFO_DEPTH) {
            Self::wait_empty();
            // SAFETY: reads `chunk.len()` bytes from `chunk` and writes them
            // to the UART's transmit register; no other memory is touched.
            unsafe {
                asm!("rep outsb", in("dx") COM1 + THR, inout("rsi") chunk.as_ptr() => _,
                     inout("rcx") chunk.len() => _, options(nostack, preserves_flags, readonly));
            }
        }
    }
}

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Serial::write_bytes(s.as_bytes());
        Ok(())
    }
}
