//! `efault`: raw write(1, bad, 10), read(0, bad, 10) and
//! openat(AT_FDCWD, bad, O_RDONLY) for each bad pointer (1, the kernel half
//! 0xffff800000000000, and 0x7ffffffff000, the unmappable last user page):
//! each must fail with -14 (EFAULT). Prints one line per check, e.g.
//! `write(bad=0x1) = -14 ok`, and exits 0 only if all were EFAULT.
//!
//! read(0, ...) needs a stdin with data or it may block or return 0 (as
//! /dev/null does without looking at the buffer): run it as `efault < FILE`.

use std::io::Write;

use mobius_test_programs::die;
use mobius_test_programs::sys::*;

const PROG: &str = "efault";
const BAD: [usize; 3] = [1, 0xffff_8000_0000_0000, 0x7fff_ffff_f000];

fn main() {
    if std::env::args_os().len() != 1 {
        die(PROG, "usage: efault < FILE");
    }
    let mut failures = 0;
    let mut out = std::io::stdout().lock();
    for (name, call) in [
        ("write", SYS_WRITE),
        ("read", SYS_READ),
        ("openat", SYS_OPENAT),
    ] {
        for bad in BAD {
            // SAFETY: each pointer is unmapped or not a user address: the
            // kernel must refuse it without touching anything of ours.
            let r = unsafe {
                match call {
                    SYS_WRITE => syscall3(SYS_WRITE, 1, bad, 10),
                    SYS_READ => syscall3(SYS_READ, 0, bad, 10),
                    _ => syscall4(SYS_OPENAT, AT_FDCWD as usize, bad, O_RDONLY, 0),
                }
            };
            if r == -EFAULT {
                let _ = writeln!(out, "{name}(bad={bad:#x}) = {r} ok");
            } else {
                failures += 1;
                let _ = writeln!(out, "{name}(bad={bad:#x}) = {r} FAIL (expected -14)");
            }
            if call == SYS_OPENAT && !is_err(r) {
                close(r);
            }
        }
    }
    let _ = out.flush();
    if failures > 0 {
        die(
            PROG,
            &format!("{failures} of 9 checks did not return EFAULT"),
        );
    }
}
