//! `roundtrip MODE N`: microbenchmarks timed inside the program
//! (`std::time::Instant`), for `make bench`:
//! * `syscall N`: N `getppid` calls; prints `roundtrip: syscall NS ns`.
//! * `fault N`: touch N fresh pages of an anonymous mapping (one
//!   demand-zero fault each); prints `roundtrip: fault NS ns`.
//! * `compute MB`: the `checksum MB` work (xorshift fill, FNV-1a) on a
//!   buffer whose pages were touched first; prints `roundtrip: compute MS
//!   ms touch MS ms checksum HEX` (the compute alone, then the first touch
//!   of every page: the faults).

use std::time::Instant;

use mobius_test_programs::sys::*;
use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "roundtrip";
const SYS_GETPPID: usize = 110;

fn main() {
    let a = args(PROG);
    if a.len() != 2 {
        die(PROG, "usage: roundtrip syscall|fault|compute N");
    }
    let n = parse_num(PROG, "N", &a[1]).max(1);
    match a[0].as_str() {
        "syscall" => {
            let t = Instant::now();
            for _ in 0..n {
                // SAFETY: getppid has no effects.
                unsafe { syscall0(SYS_GETPPID) };
            }
            println!("roundtrip: syscall {} ns", t.elapsed().as_nanos() / u128::from(n));
        }
        "fault" => {
            let len = n as usize * PAGE_SIZE;
            let p = mmap_anon(len, PROT_READ | PROT_WRITE);
            if is_err(p) {
                die(PROG, "mmap failed");
            }
            let t = Instant::now();
            for i in 0..n as usize {
                // SAFETY: inside the fresh read-write mapping.
                unsafe { ((p as usize + i * PAGE_SIZE) as *mut u8).write_volatile(1) };
            }
            println!("roundtrip: fault {} ns", t.elapsed().as_nanos() / u128::from(n));
        }
        "compute" => {
            let words = (n as usize) << 17;
            let mut v = vec![0u64; words];
            let touch = Instant::now();
            for i in (0..words).step_by(PAGE_SIZE / 8) {
                v[i] = 1;
            }
            let touch = touch.elapsed().as_millis();
            let t = Instant::now();
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            for w in v.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *w = x;
            }
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for w in &v {
                for b in w.to_le_bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x100_0000_01b3);
                }
            }
            println!(
                "roundtrip: compute {} ms touch {touch} ms checksum {h:016x}",
                t.elapsed().as_millis()
            );
        }
        _ => die(PROG, "usage: roundtrip syscall|fault|compute N"),
    }
}
