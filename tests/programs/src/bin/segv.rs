//! `segv mprotect|kernel|null`: a fatal user access, expected to kill the
//! process with SIGSEGV (status 139 under a shell). Before it, prints (and
//! flushes) one line saying what it is about to do.
//!
//! - `mprotect`: maps a page read-write, writes it, mprotects it PROT_READ,
//!   then writes it again.
//! - `kernel`: writes to 0xffff_8000_0000_1000 (kernel half).
//! - `null`: reads address 0.
//!
//! If the access survives, says so on stderr and exits 1.

use core::arch::asm;
use mobius_test_programs::sys::*;
use mobius_test_programs::{args, die, say_now};

const PROG: &str = "segv";

/// A one-byte store at `addr`, in assembly so the compiler cannot drop it.
unsafe fn store(addr: usize, v: u8) {
    asm!("mov byte ptr [{a}], {v}", a = in(reg) addr, v = in(reg_byte) v, options(nostack));
}

/// A one-byte load from `addr`, in assembly so the compiler cannot drop it.
unsafe fn load(addr: usize) -> u8 {
    let v: u8;
    asm!("mov {v}, byte ptr [{a}]", a = in(reg) addr, v = out(reg_byte) v, options(nostack));
    v
}

fn main() {
    let a = args(PROG);
    if a.len() != 1 {
        die(PROG, "usage: segv mprotect|kernel|null");
    }
    match a[0].as_str() {
        "mprotect" => {
            let page = mmap_anon(PAGE_SIZE, PROT_READ | PROT_WRITE);
            if is_err(page) {
                die(PROG, &format!("mmap = {page}"));
            }
            let page = page as usize;
            // SAFETY: our fresh read-write page.
            unsafe { store(page, 0x5a) };
            // SAFETY: reading it back.
            let v = unsafe { load(page) };
            if v != 0x5a {
                die(
                    PROG,
                    &format!("page {page:#x} reads {v:#x} after writing 0x5a"),
                );
            }
            // SAFETY: changing the protection of our own page.
            let r = unsafe { syscall3(SYS_MPROTECT, page, PAGE_SIZE, PROT_READ) };
            if r != 0 {
                die(PROG, &format!("mprotect(PROT_READ) = {r}"));
            }
            // SAFETY: reading is still allowed.
            let v = unsafe { load(page) };
            if v != 0x5a {
                die(PROG, &format!("page {page:#x} reads {v:#x} after mprotect"));
            }
            say_now(&format!("segv: writing to read-only page {page:#x}\n"));
            // SAFETY: deliberately fatal.
            unsafe { store(page, 0xa5) };
        }
        "kernel" => {
            say_now("segv: writing to kernel address 0xffff800000001000\n");
            // SAFETY: deliberately fatal.
            unsafe { store(0xffff_8000_0000_1000, 1) };
        }
        "null" => {
            say_now("segv: reading address 0\n");
            // SAFETY: deliberately fatal.
            let v = unsafe { load(0) };
            die(PROG, &format!("survived reading address 0 (read {v:#x})"));
        }
        m => die(
            PROG,
            &format!("unknown mode {m:?} (mprotect, kernel or null)"),
        ),
    }
    die(PROG, &format!("survived the {} access", a[0]));
}
