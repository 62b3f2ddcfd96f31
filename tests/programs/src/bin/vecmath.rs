//! `vecmath N`: N iterations of f64 (sqrt, divide, multiply-add) and u64
//! vector arithmetic over 64-element arrays, folded into a checksum. Prints
//! `vecmath: N iterations, checksum HEX16`. Pure computation with no system
//! calls in the loop: any FPU/SSE register or MXCSR state a kernel fails to
//! keep across interrupts and context switches changes the result, so two
//! copies running at once must print what one alone prints. Built for
//! baseline x86-64 (SSE2, no AVX); no fast-math, so the result is exact IEEE.

use core::hint::black_box;
use std::io::Write;

use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "vecmath";
const LEN: usize = 64;

fn run(n: u64) -> u64 {
    let mut a = [0f64; LEN];
    let mut b = [0f64; LEN];
    let mut c = [0f64; LEN];
    let mut v = [0u64; LEN];
    for i in 0..LEN {
        a[i] = 1.0 + i as f64 / 64.0;
        b[i] = 0.5 + (i as f64).sqrt() / 8.0;
        v[i] = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let mut acc = 0u64;
    for it in 0..n {
        for i in 0..LEN {
            let x = a[i] * b[i] + c[i] * 0.25;
            c[i] = x / (1.0 + x.abs()) + (x * x + 1.0).sqrt() * 1e-3;
            a[i] = a[i] * 0.999 + c[i] * 0.001 + 1e-3;
            v[i] = v[i]
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(c[i].to_bits());
        }
        b.rotate_left(1);
        let k = it as usize;
        acc = acc.rotate_left(5) ^ c[k % LEN].to_bits() ^ v[(k * 7) % LEN];
        black_box(&mut a);
    }
    acc ^ a.iter().fold(0u64, |h, x| h.rotate_left(7) ^ x.to_bits())
}

fn main() {
    let a = args(PROG);
    if a.len() != 1 {
        die(PROG, "usage: vecmath N");
    }
    let n = parse_num(PROG, "N", &a[0]);
    let sum = run(n);
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "vecmath: {n} iterations, checksum {sum:016x}") {
        die(PROG, &format!("write to stdout: {e}"));
    }
}
