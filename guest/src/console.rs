//! `print!`/`println!` on the console: the `mobius` host's console-write
//! port when the boot parameters offer it (one exit per call), else COM1.
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

/// Whether the host's console-write port is used.
static CONSOLE_PORT: AtomicBool = AtomicBool::new(false);

/// Print through the host's console-write port from now on.
pub fn use_console_port() {
    CONSOLE_PORT.store(true, Ordering::Relaxed);
}

/// Which stream a program's bytes go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Write a program's raw bytes to the host's standard output or error (the
/// console-write ports), or to COM1 where the host offers no ports (QEMU).
pub fn write_program_output(stream: Stream, bytes: &[u8]) {
    #[cfg(target_os = "none")]
    {
        use crate::arch::x86_64::{console_port, serial::Serial};
        use mobius_shared::ports::{CONSOLE_WRITE, CONSOLE_WRITE_ERR};
        if CONSOLE_PORT.load(Ordering::Relaxed) {
            let port = match stream {
                Stream::Out => CONSOLE_WRITE,
                Stream::Err => CONSOLE_WRITE_ERR,
            };
            console_port::write_stream(port, bytes);
        } else {
            Serial::write_bytes(bytes);
        }
    }
    #[cfg(not(target_os = "none"))]
    {
        let _ = (stream, bytes);
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    print_with_end(args, "");
}

#[doc(hidden)]
pub fn _println(args: fmt::Arguments) {
    print_with_end(args, "\n");
}

/// `args`, then `end`, as one console write.
fn print_with_end(args: fmt::Arguments, end: &str) {
    #[cfg(target_os = "none")]
    {
        use crate::arch::x86_64::{console_port::LineBuffer, serial::Serial};
        if CONSOLE_PORT.load(Ordering::Relaxed) {
            let mut line = LineBuffer::new();
            write_to(&mut line, args, end);
            line.flush();
        } else {
            write_to(&mut Serial, args, end);
        }
    }
    #[cfg(not(target_os = "none"))]
    {
        std::print!("{args}{end}");
    }
}

/// A plain string (a format string without arguments) goes straight to the
/// sink: the formatting machinery is ~130 emulated instructions even then.
#[cfg(target_os = "none")]
fn write_to(out: &mut impl Write, args: fmt::Arguments, end: &str) {
    let _ = match args.as_str() {
        Some(s) => out.write_str(s),
        None => out.write_fmt(args),
    };
    let _ = out.write_str(end);
}

/// Print to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

/// Print a line to the console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_println(format_args!($($arg)*)));
}

/// A `fmt::Write` sink on the console.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        _print(format_args!("{s}"));
        Ok(())
    }
}
