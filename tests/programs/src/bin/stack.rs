//! `stack KIB`: recurses KIB levels deep with a 1 KiB frame buffer each (so
//! about KIB KiB of stack), filling every byte of each buffer, and checks the
//! buffers are intact on the way back up. Prints `stack ok`.

use core::hint::black_box;
use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "stack";

#[inline(never)]
fn recurse(depth: u64) -> Result<u64, u64> {
    let fill = (depth as u8).wrapping_mul(13).wrapping_add(1);
    let mut buf = [0u8; 1024];
    for b in buf.iter_mut() {
        *b = fill;
    }
    black_box(&mut buf);
    let below = if depth == 0 { 0 } else { recurse(depth - 1)? };
    let buf = black_box(&buf);
    if buf.iter().any(|&b| b != fill) {
        return Err(depth);
    }
    Ok(below + u64::from(buf[0]) + u64::from(buf[1023]))
}

fn main() {
    let a = args(PROG);
    if a.len() != 1 {
        die(PROG, "usage: stack KIB");
    }
    let kib = parse_num(PROG, "KIB", &a[0]);
    if kib == 0 || kib > 1 << 20 {
        die(PROG, "KIB must be 1..=1048576");
    }
    let depth = kib - 1;
    let expected: u64 = (0..=depth)
        .map(|d| 2 * u64::from((d as u8).wrapping_mul(13).wrapping_add(1)))
        .sum();
    match recurse(depth) {
        Ok(sum) if sum == expected => println!("stack ok"),
        Ok(sum) => die(PROG, &format!("sum {sum}, expected {expected}")),
        Err(d) => die(PROG, &format!("frame buffer at depth {d} was overwritten")),
    }
}
