//! `vmcalls MODE`: Möbius calls from a program (numbers and helpers from
//! `shared/src/vmcall.rs`, included as a module: no dependencies). Only
//! meaningful in the Möbius guest; natively every call is ENOSYS, which
//! `vmcalls probe` reports (`vmcalls: not a Möbius kernel`).
//!
//! * `alloc`: alloc 4 pages, write and read them, free; then the errors:
//!   kernel-only flags (EPERM), unknown flags (EINVAL), an unaligned or
//!   kernel-half base (EINVAL), double free and interior free (EINVAL).
//! * `reserve`: reserve 16 pages, commit 4 in the middle, use them, free.
//! * `share NAME`: share a page written "from parent" as NAME, run itself
//!   as `vmcalls child NAME` (posix_spawn), which maps NAME, checks the
//!   parent's text and writes "from child"; the parent checks that. Both
//!   ways through one named area, two processes of one run.
//! * `file PATH`: map PATH with VmmMapFile and compare with read().
//! * `cycles N PROG`: run PROG once (warm-up), read the kernel counters,
//!   run it N times, read them again: free frames and kernel heap must be
//!   exactly where they were.
//! * `probe`: whether this is a Möbius kernel.

#[path = "../../../../shared/src/vmcall.rs"]
#[allow(dead_code)]
mod vmcall;

use std::process::{Command, Stdio};

use mobius_test_programs::{args, die, parse_num};
use vmcall::call;
use vmcall::{VM_MEM_READ, VM_MEM_USER, VM_MEM_WRITE};

const PROG: &str = "vmcalls";
const RW: u64 = VM_MEM_USER | VM_MEM_READ | VM_MEM_WRITE;
const PAGE: u64 = 4096;
const EPERM: i64 = 1;
const EINVAL: i64 = 22;

fn main() {
    let a = args(PROG);
    let w: Vec<&str> = a.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["probe"] => probe(),
        ["alloc"] => alloc(),
        ["reserve"] => reserve(),
        ["share", name] => share(name),
        ["child", name] => child(name),
        ["file", path] => file(path),
        ["cycles", n, prog] => cycles(parse_num(PROG, "N", n), prog),
        _ => die(PROG, "usage: vmcalls probe|alloc|reserve|share NAME|file PATH|cycles N PROG"),
    }
}

fn ok<T>(what: &str, r: Result<T, i64>) -> T {
    r.unwrap_or_else(|e| die(PROG, &format!("{what}: errno {e}")))
}

fn expect_err(what: &str, r: Result<u64, i64>, errno: i64) {
    match r {
        Err(e) if e == errno => println!("vmcalls: {what}: errno {e} ok"),
        other => die(PROG, &format!("{what}: {other:?}, expected errno {errno}")),
    }
}

fn probe() {
    match call::counts() {
        Ok(c) => println!("vmcalls: Möbius kernel, {} processes", c.processes),
        Err(_) => println!("vmcalls: not a Möbius kernel"),
    }
}

/// Fill `pages` pages at `base` with a pattern from `seed`, then check it.
fn write_and_check(base: u64, pages: u64, seed: u8) {
    let len = (pages * PAGE) as usize;
    // SAFETY: [base, base + len) is a read-write area this process owns.
    let mem = unsafe { std::slice::from_raw_parts_mut(base as *mut u8, len) };
    for (i, b) in mem.iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(seed);
    }
    if mem.iter().enumerate().any(|(i, b)| *b != (i as u8).wrapping_add(seed)) {
        die(PROG, "memory did not keep what was written");
    }
}

fn alloc() {
    let base = ok("alloc", call::alloc(4, 0, RW));
    write_and_check(base, 4, 7);
    ok("free", call::free(base));
    println!("vmcalls: alloc 4 pages, wrote, freed ok");
    expect_err("kernel-only flags", call::alloc(1, 0, VM_MEM_READ), EPERM);
    expect_err("unknown flags", call::alloc(1, 0, RW | 0x1000), EINVAL);
    expect_err("zero pages", call::alloc(0, 0, RW), EINVAL);
    expect_err("unaligned base", call::alloc(1, 0x1000_0001, RW), EINVAL);
    expect_err("kernel-half base", call::alloc(1, 0xffff_8000_0000_0000, RW), EINVAL);
    let base = ok("alloc", call::alloc(2, 0, RW));
    expect_err("interior free", call::free(base + PAGE), EINVAL);
    ok("free", call::free(base));
    expect_err("double free", call::free(base), EINVAL);
}

fn reserve() {
    let r = ok("reserve", call::reserve(16, 0));
    let at = ok("commit", call::alloc(4, r + 6 * PAGE, RW));
    if at != r + 6 * PAGE {
        die(PROG, &format!("commit landed at {at:#x}, not {:#x}", r + 6 * PAGE));
    }
    write_and_check(at, 4, 3);
    ok("free", call::free(at));
    println!("vmcalls: reserved 16 pages at {r:#x}, committed 4 inside ok");
}

fn share(name: &str) {
    let base = ok("alloc", call::alloc(1, 0, RW));
    put(base, b"from parent");
    let h = ok("share", call::share(base, name));
    let me = std::env::current_exe().unwrap_or_else(|e| die(PROG, &format!("current_exe: {e}")));
    let s = Command::new(me)
        .args(["child", name])
        .stdout(Stdio::inherit())
        .status()
        .unwrap_or_else(|e| die(PROG, &format!("spawn: {e}")));
    if !s.success() {
        die(PROG, &format!("child: {s}"));
    }
    let got = get(base, 10);
    if got != b"from child" {
        die(PROG, &format!("parent read {:?}", String::from_utf8_lossy(&got)));
    }
    ok("close", call::close(h));
    ok("unexport", call::unexport(name));
    ok("free", call::free(base));
    println!("vmcalls: shared both ways ok");
}

fn child(name: &str) {
    let h = ok("open_shared", call::open_shared(name));
    let at = ok("map_shared", call::map_shared(h, 0, RW));
    let got = get(at, 11);
    if got != b"from parent" {
        die(PROG, &format!("child read {:?}", String::from_utf8_lossy(&got)));
    }
    put(at, b"from child\0");
    println!("vmcalls: child read the parent's text ok");
}

fn put(addr: u64, bytes: &[u8]) {
    // SAFETY: `addr` starts a mapped read-write page; `bytes` fits in it.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
}

fn get(addr: u64, n: usize) -> Vec<u8> {
    // SAFETY: `addr` starts a mapped readable page; `n` fits in it.
    unsafe { std::slice::from_raw_parts(addr as *const u8, n).to_vec() }
}

fn file(path: &str) {
    use std::os::fd::AsRawFd;
    let data = std::fs::read(path).unwrap_or_else(|e| die(PROG, &format!("read {path}: {e}")));
    let f = std::fs::File::open(path).unwrap_or_else(|e| die(PROG, &format!("open {path}: {e}")));
    let pages = (data.len() as u64).div_ceil(PAGE).max(1);
    let flags = VM_MEM_USER | VM_MEM_READ;
    let at = ok("map_file", call::map_file(f.as_raw_fd() as u64, 0, pages, 0, flags));
    if get(at, data.len()) != data {
        die(PROG, "the mapped file differs from what read() gave");
    }
    ok("free", call::free(at));
    println!("vmcalls: mapped {} bytes of {path} ok", data.len());
}

fn run_once(prog: &str) {
    let s = Command::new(prog)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| die(PROG, &format!("spawn {prog}: {e}")));
    if !s.success() {
        die(PROG, &format!("{prog}: {s}"));
    }
}

fn cycles(n: u64, prog: &str) {
    run_once(prog);
    let before = ok("counts", call::counts());
    for _ in 0..n {
        run_once(prog);
    }
    let after = ok("counts", call::counts());
    println!(
        "vmcalls: {n} spawns, free frames {} -> {}, heap {} -> {}, processes {} -> {}",
        before.frames_free,
        after.frames_free,
        before.heap_used,
        after.heap_used,
        before.processes,
        after.processes
    );
    if before != after {
        die(PROG, &format!("counters moved: {before:?} -> {after:?}"));
    }
}
