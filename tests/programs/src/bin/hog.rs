//! `hog MODE`: a program that tries to exhaust what the kernel gives it.
//! Each limit must stop only this program, with an error or a kill, and
//! everything must come back when it ends.
//!
//! * `fds`: open `/dev/null` until it fails; prints `hog: fds N then errno E`.
//! * `maps`: map one page after another (with gaps, so none merge) until it
//!   fails; prints `hog: maps N then errno E`.
//! * `space`: reserve 1 TiB ranges (`PROT_NONE`) until the address space
//!   is full; prints `hog: space N TiB then errno E`.
//! * `handles` (Möbius only): open one shared area again and again;
//!   prints `hog: handles N then errno E`.
//! * `memory`: map 64 GiB and touch every page: the kernel must kill it
//!   when frames run out (do not run natively).
//! * `all` (Möbius only): three rounds of running itself as each of the
//!   above, the kernel's counters read before and after the third (the
//!   first two size the kernel's tables and settle this parent's own
//!   memory):
//!   prints each child's line, then `hog: killed by signal S` for
//!   `memory`, then `hog: frames back where they were`.

#[path = "../../../../shared/src/vmcall.rs"]
#[allow(dead_code)]
mod vmcall;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use mobius_test_programs::sys::*;
use mobius_test_programs::{args, die};
use vmcall::call;

const PROG: &str = "hog";
const TIB: usize = 1 << 40;

fn main() {
    let a = args(PROG);
    match a.first().map(String::as_str) {
        Some("fds") => fds(),
        Some("maps") => maps(),
        Some("space") => space(),
        Some("handles") => handles(),
        Some("memory") => memory(),
        Some("all") => all(),
        _ => die(PROG, "usage: hog fds|maps|space|handles|memory|all"),
    }
}

fn fds() {
    let mut n = 0;
    let errno = loop {
        let fd = open(b"/dev/null\0", O_RDONLY);
        if is_err(fd) {
            break -fd;
        }
        n += 1;
    };
    println!("hog: fds {n} then errno {errno}");
}

fn maps() {
    let mut n = 0usize;
    let start = 0x100_0000_0000usize;
    let mut at = start;
    let errno = loop {
        // SAFETY: a fixed-noreplace anonymous mapping at an address this
        // program does not use.
        let p = unsafe {
            syscall6(SYS_MMAP, at, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | 0x10_0000, usize::MAX, 0)
        };
        if is_err(p) {
            break -p;
        }
        n += 1;
        at += 2 * PAGE_SIZE;
    };
    // Give the mappings back before printing: the allocator needs some.
    for i in 0..n {
        // SAFETY: unmapping pages this function mapped.
        unsafe { syscall2(SYS_MUNMAP, start + 2 * i * PAGE_SIZE, PAGE_SIZE) };
    }
    println!("hog: maps {n} then errno {errno}");
}

fn space() {
    let mut n = 0;
    let errno = loop {
        let p = mmap_anon(TIB, PROT_NONE);
        if is_err(p) {
            break -p;
        }
        n += 1;
    };
    println!("hog: space {n} TiB then errno {errno}");
}

fn handles() {
    let page = call::alloc(1, 0, vmcall::VM_MEM_USER | vmcall::VM_MEM_READ)
        .unwrap_or_else(|e| die(PROG, &format!("alloc: errno {e}")));
    let first = call::share(page, "hog").unwrap_or_else(|e| die(PROG, &format!("share: errno {e}")));
    let _ = first;
    let mut n = 1;
    let errno = loop {
        match call::open_shared("hog") {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    let _ = call::unexport("hog");
    println!("hog: handles {n} then errno {errno}");
}

fn memory() {
    let len = 64usize << 30;
    let p = mmap_anon(len, PROT_READ | PROT_WRITE);
    if is_err(p) {
        die(PROG, "mmap of 64 GiB failed");
    }
    for i in (0..len).step_by(PAGE_SIZE) {
        // SAFETY: inside the fresh mapping.
        unsafe { ((p as usize + i) as *mut u8).write_volatile(1) };
    }
    die(PROG, "touched 64 GiB without being stopped");
}

fn child(mode: &str) -> std::process::ExitStatus {
    let me = std::env::current_exe().unwrap_or_else(|e| die(PROG, &format!("current_exe: {e}")));
    Command::new(me)
        .arg(mode)
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| die(PROG, &format!("spawn {mode}: {e}")))
}

fn round() {
    for mode in ["fds", "maps", "space", "handles"] {
        let s = child(mode);
        if !s.success() {
            die(PROG, &format!("{mode}: {s}"));
        }
    }
    match child("memory").signal() {
        Some(sig) => println!("hog: killed by signal {sig}"),
        None => die(PROG, "memory: not killed"),
    }
}

fn counts() -> vmcall::KernelCounts {
    call::counts().unwrap_or_else(|e| die(PROG, &format!("counts: errno {e}")))
}

fn all() {
    // Two warm-up rounds: the kernel sizes its tables once (a record per
    // frame the first time every frame is handed out, the descriptor
    // table's slots, the page cache of this program), and this parent's
    // own allocations settle.
    round();
    round();
    let before = counts();
    round();
    let after = counts();
    // Frames and processes exactly; the heap is only reported: the page
    // cache's B-tree takes a few hundred bytes more or less depending on
    // what was evicted and read again (vmcalls' spawn cycles assert the
    // heap exactly on a steady workload).
    if (before.frames_free, before.processes) != (after.frames_free, after.processes) {
        die(PROG, &format!("counters moved: {before:?} -> {after:?}"));
    }
    println!("hog: frames back where they were");
    eprintln!("hog: kernel heap {} -> {} bytes", before.heap_used, after.heap_used);
}
