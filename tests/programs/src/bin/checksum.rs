//! `checksum MB`: fills MB MiB with xorshift64 output (fixed seed) in a Vec
//! and prints `checksum HEX16`, the 64-bit FNV-1a hash of those bytes (the
//! u64 words little-endian). A compute- and memory-bound benchmark.

use std::io::Write;

use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "checksum";

fn main() {
    let a = args(PROG);
    if a.len() != 1 {
        die(PROG, "usage: checksum MB");
    }
    let mb = parse_num(PROG, "MB", &a[0]);
    if mb > 1 << 16 {
        die(PROG, "MB must be at most 65536");
    }
    let words = (mb as usize) << 17;
    let mut data = Vec::with_capacity(words);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.push(x);
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in &data {
        for byte in w.to_le_bytes() {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "checksum {h:016x}") {
        die(PROG, &format!("write to stdout: {e}"));
    }
}
