//! `print!`/`println!` on the serial console.
use core::fmt::{self, Write};

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    #[cfg(target_os = "none")]
    {
        let _ = crate::arch::x86_64::serial::Serial.write_fmt(args);
    }
    #[cfg(not(target_os = "none"))]
    {
        std::print!("{args}");
    }
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
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}

/// A `fmt::Write` sink on the console.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        _print(format_args!("{s}"));
        Ok(())
    }
}
