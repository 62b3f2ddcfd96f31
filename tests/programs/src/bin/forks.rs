//! `forks N KIB`: fork N children one after another (raw `fork`, copy-on-
//! write); each writes its own pattern over its copy of a KIB KiB buffer
//! the parent filled, checks every byte, and exits 0 (or 1 on a wrong
//! byte); the parent waits for each, then checks that its own buffer still
//! holds its pattern. Prints `forks: N children, KIB KiB each, all bytes
//! right`.

use mobius_test_programs::sys::*;
use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "forks";
const SYS_FORK: usize = 57;
const SYS_WAIT4: usize = 61;

fn fill(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
}

fn holds(buf: &[u8], seed: u8) -> bool {
    buf.iter()
        .enumerate()
        .all(|(i, b)| *b == (i as u8).wrapping_mul(31).wrapping_add(seed))
}

fn main() {
    let a = args(PROG);
    if a.len() != 2 {
        die(PROG, "usage: forks N KIB");
    }
    let n = parse_num(PROG, "N", &a[0]);
    let kib = parse_num(PROG, "KIB", &a[1]) as usize;
    let mut buf = vec![0u8; kib * 1024];
    fill(&mut buf, 0);
    for child in 0..n {
        // SAFETY: fork in a single-threaded program; the child only touches
        // its own copy of memory and leaves with exit_group.
        let pid = unsafe { syscall0(SYS_FORK) };
        if pid < 0 {
            die(PROG, &format!("fork {child}: errno {}", -pid));
        }
        if pid == 0 {
            let seed = (child % 250) as u8 + 1;
            let code = if holds(&buf, 0) {
                fill(&mut buf, seed);
                if holds(&buf, seed) { 0 } else { 1 }
            } else {
                2
            };
            // SAFETY: ends this (child) process.
            unsafe { syscall1(SYS_EXIT_GROUP, code) };
            unreachable!();
        }
        let mut status: i32 = 0;
        // SAFETY: status is a valid i32 for the kernel to write.
        let got = unsafe { syscall4(SYS_WAIT4, pid as usize, &mut status as *mut i32 as usize, 0, 0) };
        if got != pid {
            die(PROG, &format!("wait4 for {pid}: {got}"));
        }
        if status != 0 {
            die(PROG, &format!("child {child} (pid {pid}) ended with status {status:#x}"));
        }
    }
    if !holds(&buf, 0) {
        die(PROG, "the parent's buffer changed");
    }
    println!("forks: {n} children, {kib} KiB each, all bytes right");
}
