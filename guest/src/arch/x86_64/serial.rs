//! COM1, a 16550 UART, polled (no interrupts). The guest's console.
use core::fmt;

use super::cpu::{inb, outb};
use mobius_shared::ports::COM1;

const THR: u16 = 0;
const LSR: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// The serial port as a `fmt::Write` sink.
pub struct Serial;

impl Serial {
    /// Send one byte once the transmitter can take it. A UART that never
    /// reports empty (LSR all ones: nothing there) is written anyway after a
    /// bounded wait, so the kernel never hangs on its console.
    pub fn write_byte(byte: u8) {
        for _ in 0..1000 {
            if inb(COM1 + LSR) & LSR_THR_EMPTY != 0 {
                break;
            }
        }
        outb(COM1 + THR, byte);
    }
}

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(Serial::write_byte);
        Ok(())
    }
}
