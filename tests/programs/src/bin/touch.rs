//! `touch mmap N` / `touch brk N`: get N fresh pages from raw mmap (anonymous,
//! private) or raw brk, check each reads as zero, write one byte per page,
//! read them all back; then give the memory back (munmap / brk shrink) and,
//! for brk, grow again and check the pages are zero-filled again.
//! `touch read N`: the mmap case, but the pages are first filled by one
//! `read` of `/dev/zero` into all N (the kernel faults them in, inside one
//! system call).
//! Prints `touched N pages`.

use mobius_test_programs::sys::*;
use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "touch";

fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(7) | 1 // never 0
}

/// Check `pages` pages from `base` read zero at the touched offset, write the
/// pattern, then read it back. Allocates nothing (the brk test needs that).
///
/// # Safety
/// `[base, base + pages * PAGE_SIZE)` must be mapped read-write and unused.
///
/// Never inlined: `mobius report` names it as the function whose faults
/// these are.
#[inline(never)]
unsafe fn touch(base: usize, pages: usize) -> Result<(), (usize, u8, u8)> {
    for i in 0..pages {
        let p = (base + i * PAGE_SIZE) as *mut u8;
        let v = p.read_volatile();
        if v != 0 {
            return Err((i, 0, v));
        }
        p.write_volatile(pattern(i));
    }
    for i in 0..pages {
        let p = (base + i * PAGE_SIZE) as *const u8;
        let v = p.read_volatile();
        if v != pattern(i) {
            return Err((i, pattern(i), v));
        }
    }
    Ok(())
}

fn report(what: &str, base: usize, r: Result<(), (usize, u8, u8)>) {
    if let Err((i, want, got)) = r {
        die(
            PROG,
            &format!(
                "{what}: page {i} at {:#x}: read {got:#04x}, expected {want:#04x}",
                base + i * PAGE_SIZE
            ),
        );
    }
}

fn with_mmap(pages: usize, read_first: bool) {
    let len = pages * PAGE_SIZE;
    let base = mmap_anon(len, PROT_READ | PROT_WRITE);
    if is_err(base) {
        die(PROG, &format!("mmap({len}) = {base}"));
    }
    let base = base as usize;
    if read_first {
        fill_from_dev_zero(base, len);
    }
    // SAFETY: the fresh mapping is ours and read-write.
    report("mmap", base, unsafe { touch(base, pages) });
    // SAFETY: unmapping our own mapping, no longer referenced.
    let r = unsafe { syscall2(SYS_MUNMAP, base, len) };
    if r != 0 {
        die(PROG, &format!("munmap({base:#x}, {len}) = {r}"));
    }
}

/// One `read` of `/dev/zero` into `[base, base + len)`.
fn fill_from_dev_zero(base: usize, len: usize) {
    let fd = open(b"/dev/zero", O_RDONLY | O_CLOEXEC);
    if is_err(fd) {
        die(PROG, &format!("open /dev/zero = {fd}"));
    }
    // SAFETY: the buffer is our fresh read-write mapping of `len` bytes.
    let n = unsafe { syscall3(SYS_READ, fd as usize, base, len) };
    if n != len as isize {
        die(PROG, &format!("read /dev/zero into {len} bytes = {n}"));
    }
    close(fd);
}

fn with_brk(pages: usize) {
    let len = pages * PAGE_SIZE;
    // Nothing here may allocate between growing and shrinking the break:
    // musl's malloc may use brk too, and must not find its heap cut off.
    // SAFETY: brk(0) only queries the break.
    let cur = unsafe { syscall1(SYS_BRK, 0) } as usize;
    let mut failure = None;
    for round in 0..2 {
        // SAFETY: growing the break maps fresh memory above it.
        let grown = unsafe { syscall1(SYS_BRK, cur + len) } as usize;
        if grown != cur + len {
            failure = Some((round, "grow", grown, Ok(())));
            break;
        }
        // SAFETY: [cur, cur + len) was just added to the break.
        let r = unsafe { touch(cur, pages) };
        if r.is_err() {
            failure = Some((round, "touch", grown, r));
            break;
        }
        // SAFETY: shrinking back to where the break was; nothing uses it.
        let shrunk = unsafe { syscall1(SYS_BRK, cur) } as usize;
        if shrunk != cur {
            failure = Some((round, "shrink", shrunk, Ok(())));
            break;
        }
    }
    match failure {
        None => {}
        Some((round, "touch", _, r)) => report(&format!("brk round {round}"), cur, r),
        Some((round, step, got, _)) => die(
            PROG,
            &format!("brk round {round}: {step}: break {got:#x}, initial break {cur:#x}, length {len:#x}"),
        ),
    }
}

fn main() {
    let a = args(PROG);
    if a.len() != 2 {
        die(PROG, "usage: touch mmap|brk|read PAGES");
    }
    let pages = parse_num(PROG, "PAGES", &a[1]) as usize;
    if pages == 0 || pages > (1 << 20) {
        die(PROG, "PAGES must be 1..=1048576");
    }
    match a[0].as_str() {
        "mmap" => with_mmap(pages, false),
        "read" => with_mmap(pages, true),
        "brk" => with_brk(pages),
        m => die(PROG, &format!("unknown mode {m:?} (mmap, brk or read)")),
    }
    println!("touched {pages} pages");
}
