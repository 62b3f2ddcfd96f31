//! The SIGSYS handler: a call outside the filter is trapped
//! (`SECCOMP_RET_TRAP`), and the handler writes one line to stderr and ends
//! the process with [`SECCOMP_VIOLATION`]. It uses only `write` and
//! `exit_group`, which every list allows.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::Once;

use libc::{c_int, c_uint, c_void, siginfo_t};
use mobius_shared::exit::host::SECCOMP_VIOLATION;

/// `si_code` of a SIGSYS sent by seccomp.
const SYS_SECCOMP: c_int = 1;

static INSTALL: Once = Once::new();

thread_local! {
    /// The role of this thread, for the report; set when its filter is.
    static LABEL: Cell<&'static str> = const { Cell::new("main") };
}

/// The head of a SIGSYS `siginfo_t` (Linux's `_sigsys` member of the union).
#[repr(C)]
struct SigsysInfo {
    _signo: c_int,
    _errno: c_int,
    code: c_int,
    _pad: c_int,
    _call_addr: *mut c_void,
    syscall: c_int,
    _arch: c_uint,
}

/// Name this thread in reports.
pub fn set_label(label: &'static str) {
    LABEL.with(|l| l.set(label));
}

/// Install the handler (once per process).
pub fn install() -> std::io::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        // SAFETY: all-zero is a valid sigaction; the fields used are set.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigsys as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        // SAFETY: `action` is valid; the handler is async-signal-safe.
        if unsafe { libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()) } != 0 {
            result = Err(std::io::Error::last_os_error());
        }
    });
    result
}

/// A line in a stack buffer: formatting without allocating.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The report for system call `nr` (or for a SIGSYS seccomp did not send).
fn report(nr: Option<i64>, thread: &str) -> Line {
    let mut line = Line {
        buf: [0; 160],
        len: 0,
    };
    let _ = match nr {
        Some(nr) => writeln!(
            line,
            "mobius: error: seccomp: forbidden system call {nr} ({}) in thread {thread}",
            crate::syscalls::name(nr)
        ),
        None => writeln!(line, "mobius: error: SIGSYS in thread {thread}"),
    };
    line
}

extern "C" fn on_sigsys(_: c_int, info: *mut siginfo_t, _: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo; a seccomp SIGSYS fills the
    // `_sigsys` member, whose layout `SigsysInfo` repeats.
    let info = unsafe { &*info.cast::<SigsysInfo>() };
    let nr = (info.code == SYS_SECCOMP).then_some(i64::from(info.syscall));
    let line = report(nr, LABEL.with(Cell::get));
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is valid.
    unsafe {
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        libc::_exit(SECCOMP_VIOLATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_one_line() {
        let line = report(Some(libc::SYS_getppid), "vcpu");
        assert_eq!(
            std::str::from_utf8(&line.buf[..line.len]),
            Ok("mobius: error: seccomp: forbidden system call 110 (getppid) in thread vcpu\n")
        );
        let line = report(None, "vcpu");
        assert!(line.buf[..line.len].ends_with(b"SIGSYS in thread vcpu\n"));
    }

    #[test]
    fn sigsys_layout_matches_linux() {
        assert_eq!(std::mem::offset_of!(SigsysInfo, syscall), 24);
        assert_eq!(std::mem::offset_of!(SigsysInfo, _arch), 28);
        assert!(std::mem::size_of::<SigsysInfo>() <= std::mem::size_of::<siginfo_t>());
    }
}
