//! COM1: vm-superio's 16550A model with its output going to a writer (stdout by
//! default). Output is written out a line at a time (or every 1 KiB, and when
//! the run ends) rather than one syscall per byte. No interrupt line: the guest polls.

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

/// Output is written out when a line ends or this much is pending.
const FLUSH_AT: usize = 1024;

/// The serial output: the destination writer, pending bytes, and when the
/// first byte came.
pub struct SerialOut {
    out: Box<dyn Write + Send>,
    pending: Vec<u8>,
    first_byte: Option<Instant>,
    failed: bool,
}

impl SerialOut {
    /// Write out everything pending, whatever it ends with.
    pub fn flush_all(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if !self.failed {
            let result = self
                .out
                .write_all(&self.pending)
                .and_then(|_| self.out.flush());
            if let Err(e) = result {
                // The reader went away (closed pipe): drop the output, keep running.
                self.failed = true;
                eprintln!("mobius: warning: serial output lost: {e}");
            }
        }
        self.pending.clear();
    }
}

impl Write for SerialOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.first_byte.is_none() && !buf.is_empty() {
            self.first_byte = Some(Instant::now());
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// vm-superio flushes after every byte; only pass complete lines on.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.last() == Some(&b'\n') || self.pending.len() >= FLUSH_AT {
            self.flush_all();
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
            pending: Vec::with_capacity(FLUSH_AT),
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

    /// Bytes the guest printed through the console-write port: the same
    /// output, in order with the UART's (a complete line goes out at once).
    pub fn write_text(&mut self, bytes: &[u8]) {
        let out = self.uart.writer_mut();
        // SerialOut only buffers; its errors surface (once) in flush_all.
        let _ = out.write(bytes);
        let _ = out.flush();
    }

    /// Write out any pending partial line (the run loop does this when it stops).
    pub fn flush(&mut self) {
        self.uart.writer_mut().flush_all();
    }

    /// When the guest wrote its first byte to the transmit register.
    pub fn first_byte(&self) -> Option<Instant> {
        self.uart.writer().first_byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn passes_whole_lines_and_flushes_the_rest_on_demand() {
        let sink = Shared::default();
        let mut port = SerialPort::new(Box::new(sink.clone()));
        assert!(port.first_byte().is_none());
        for &b in b"ab" {
            port.write(0, b);
        }
        assert!(port.first_byte().is_some());
        assert!(sink.0.lock().unwrap().is_empty());
        for &b in b"\ncd" {
            port.write(0, b);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"ab\n");
        port.flush();
        assert_eq!(&*sink.0.lock().unwrap(), b"ab\ncd");
    }
}
