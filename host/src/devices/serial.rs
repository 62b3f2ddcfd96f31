//! COM1: vm-superio's 16550A model with its output going to a writer (stdout by
//! default), flushed after every byte. No interrupt line: the guest polls.

use std::io::{self, Write};
use std::time::Instant;

use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};

/// Number of registers (ports) of a 16550.
pub const SERIAL_PORTS: u16 = 8;

/// The interrupt trigger of a UART without an interrupt controller: nothing.
pub struct NoInterrupt;

impl Trigger for NoInterrupt {
    type E = io::Error;
    fn trigger(&self) -> io::Result<()> {
        Ok(())
    }
}

/// The serial output: the destination writer, and when the first byte came.
pub struct SerialOut {
    out: Box<dyn Write + Send>,
    first_byte: Option<Instant>,
    failed: bool,
}

impl Write for SerialOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.first_byte.is_none() && !buf.is_empty() {
            self.first_byte = Some(Instant::now());
        }
        if self.failed {
            // The reader went away (closed pipe): drop the output, keep running.
            return Ok(buf.len());
        }
        match self.out.write(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.failed = true;
                eprintln!("mobius: warning: serial output lost: {e}");
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.failed {
            if let Err(e) = self.out.flush() {
                self.failed = true;
                eprintln!("mobius: warning: serial output lost: {e}");
            }
        }
        Ok(())
    }
}

/// The COM1 device.
pub struct SerialPort {
    uart: Serial<NoInterrupt, NoEvents, SerialOut>,
}

impl SerialPort {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        let out = SerialOut {
            out,
            first_byte: None,
            failed: false,
        };
        SerialPort {
            uart: Serial::new(NoInterrupt, out),
        }
    }

    /// A port read at register `offset` (0..8).
    pub fn read(&mut self, offset: u8) -> u8 {
        self.uart.read(offset)
    }

    /// A port write at register `offset` (0..8).
    pub fn write(&mut self, offset: u8, value: u8) {
        // Output errors are absorbed by SerialOut; the trigger cannot fail.
        let _ = self.uart.write(offset, value);
    }

    /// When the guest wrote its first byte to the transmit register.
    pub fn first_byte(&self) -> Option<Instant> {
        self.uart.writer().first_byte
    }
}
