//! `vecpair`: two processes doing vector floating point at once must not see
//! each other's FPU/SSE/AVX registers.
//!
//! Every mode but `work` first prints what runtime feature detection says:
//! `vecpair: avx=B avx2=B xsave=B` (all false under Möbius, whose host hides
//! AVX and XSAVE from CPUID because the guest kernel switches only the
//! x87/SSE state of its processes).
//!
//! * `vecpair`: only that line.
//! * `vecpair run N [sse]`: start `vecpair work 1 N` and `vecpair work 2 N`
//!   (this program, as `std::env::current_exe`), compute the same two
//!   checksums in-process while they run, then wait for both and compare;
//!   the children must also have run at the same time (their TSC windows
//!   overlap). Prints `vecpair: both results correct`, or explains on
//!   stderr and exits 1. With `sse`, every process uses the SSE2 code.
//! * `vecpair work SEED N [sse]`: N iterations of the logistic map over 16
//!   f64 lanes (parameters and start values from SEED), plus running sums
//!   of square roots, all held in vector registers; prints
//!   `vecpair: seed SEED, N iterations, checksum HEX16, TSC A..B` (when it
//!   started and ended). With `sse`, the SSE2 code even where AVX is
//!   available (the checksum must be the same).
//!
//! The work uses 256-bit AVX when runtime detection reports it and SSE2
//! otherwise, with the same IEEE operations in the same order, so both
//! give the same bits. The map is chaotic: a single register value lost or
//! taken from the other process in a context switch changes the checksum.

use std::arch::x86_64::*;
use std::io::Write;
use std::process::{Child, Command, Stdio};

use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "vecpair";
const LANES: usize = 16;

fn main() {
    let a = args(PROG);
    let words: Vec<&str> = a.iter().map(String::as_str).collect();
    let avx_unless = |rest: &[&str]| rest.is_empty() && is_x86_feature_detected!("avx");
    match words.as_slice() {
        [] => features(),
        ["run", n, rest @ ..] if rest.is_empty() || rest == ["sse"] => {
            features();
            run(parse_num(PROG, "N", n), avx_unless(rest));
        }
        ["work", seed, n, rest @ ..] if rest.is_empty() || rest == ["sse"] => {
            let (seed, n) = (parse_num(PROG, "SEED", seed), parse_num(PROG, "N", n));
            let t0 = tsc();
            let sum = work(seed, n, avx_unless(rest));
            let t1 = tsc();
            say(&format!("{}, TSC {t0}..{t1}", result_line(seed, n, sum)));
        }
        _ => die(PROG, "usage: vecpair [run N [sse] | work SEED N [sse]]"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}") {
        die(PROG, &format!("write to stdout: {e}"));
    }
}

fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions (CR4.TSD is clear on Linux and
    // under Möbius).
    unsafe { _rdtsc() }
}

fn result_line(seed: u64, n: u64, sum: u64) -> String {
    format!("vecpair: seed {seed}, {n} iterations, checksum {sum:016x}")
}

fn features() {
    say(&format!(
        "vecpair: avx={} avx2={} xsave={}",
        is_x86_feature_detected!("avx"),
        is_x86_feature_detected!("avx2"),
        is_x86_feature_detected!("xsave")
    ));
}

fn run(n: u64, avx: bool) {
    let me = std::env::current_exe().unwrap_or_else(|e| die(PROG, &format!("current_exe: {e}")));
    let start = |seed: u64| -> Child {
        let mut cmd = Command::new(&me);
        cmd.args(["work", &seed.to_string(), &n.to_string()]);
        if !avx {
            cmd.arg("sse");
        }
        cmd.stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(PROG, &format!("spawn work {seed}: {e}")))
    };
    let children = [(1, start(1)), (2, start(2))];
    // The expected results, computed while both children run: three
    // processes doing vector arithmetic at once.
    let want = [1, 2].map(|seed| result_line(seed, n, work(seed, n, avx)));
    let mut bad = false;
    let mut windows = Vec::new();
    for ((seed, child), want) in children.into_iter().zip(want) {
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| die(PROG, &format!("wait for work {seed}: {e}")));
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed = text
            .strip_suffix('\n')
            .and_then(|t| t.split_once(", TSC "))
            .and_then(|(line, w)| Some((line, w.split_once("..")?)))
            .and_then(|(line, (a, b))| {
                Some((line, a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
            });
        match parsed {
            Some((line, t0, t1)) if out.status.success() && line == want => windows.push((t0, t1)),
            _ => {
                let _ = writeln!(
                    std::io::stderr(),
                    "vecpair: work {seed}: {}, printed {text:?}, expected {want:?}",
                    out.status
                );
                bad = true;
            }
        }
    }
    if bad {
        std::process::exit(1);
    }
    if let [(a0, a1), (b0, b1)] = windows[..] {
        if b0 >= a1 || a0 >= b1 {
            die(
                PROG,
                &format!(
                    "the children did not run at the same time: TSC {a0}..{a1} and {b0}..{b1}"
                ),
            );
        }
    }
    say("vecpair: both results correct");
}

/// Start values and map parameters of the lanes for `seed`.
fn setup(seed: u64) -> ([f64; LANES], [f64; LANES]) {
    let mut x = [0f64; LANES];
    let mut r = [0f64; LANES];
    let mut h = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    for i in 0..LANES {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        // In (0.05, 0.95) and (3.7, 3.99): the chaotic range of the map.
        x[i] = 0.05 + 0.9 * ((h >> 11) as f64 / (1u64 << 53) as f64);
        r[i] = 3.7 + 0.29 * ((h & 0xffff) as f64 / 65536.0);
    }
    (x, r)
}

/// The checksum of `n` iterations for `seed`, with AVX code if `avx` (which
/// the caller checked is available), else SSE2.
fn work(seed: u64, n: u64, avx: bool) -> u64 {
    let (x, r) = setup(seed);
    let (x, s) = if avx {
        // SAFETY: the caller checked that AVX is available.
        unsafe { work_avx(x, r, n) }
    } else {
        work_sse(x, r, n)
    };
    x.iter()
        .chain(s.iter())
        .fold(0u64, |h, v| h.rotate_left(7) ^ v.to_bits())
}

/// x = (r * x) * (1 - x); s = s + sqrt(x), two lanes per register.
#[inline(never)]
fn work_sse(x0: [f64; LANES], r0: [f64; LANES], n: u64) -> ([f64; LANES], [f64; LANES]) {
    // SAFETY: SSE2 is part of x86-64; loads and stores stay inside the
    // arrays (2 lanes at 2k for k < LANES / 2).
    unsafe {
        let one = _mm_set1_pd(1.0);
        let mut x = [_mm_setzero_pd(); LANES / 2];
        let mut r = [_mm_setzero_pd(); LANES / 2];
        let mut s = [_mm_setzero_pd(); LANES / 2];
        for k in 0..LANES / 2 {
            x[k] = _mm_loadu_pd(x0.as_ptr().add(2 * k));
            r[k] = _mm_loadu_pd(r0.as_ptr().add(2 * k));
        }
        for _ in 0..n {
            for k in 0..LANES / 2 {
                x[k] = _mm_mul_pd(_mm_mul_pd(r[k], x[k]), _mm_sub_pd(one, x[k]));
                s[k] = _mm_add_pd(s[k], _mm_sqrt_pd(x[k]));
            }
        }
        let (mut xo, mut so) = ([0f64; LANES], [0f64; LANES]);
        for k in 0..LANES / 2 {
            _mm_storeu_pd(xo.as_mut_ptr().add(2 * k), x[k]);
            _mm_storeu_pd(so.as_mut_ptr().add(2 * k), s[k]);
        }
        (xo, so)
    }
}

/// The same as `work_sse`, four lanes per register.
#[inline(never)]
#[target_feature(enable = "avx")]
unsafe fn work_avx(x0: [f64; LANES], r0: [f64; LANES], n: u64) -> ([f64; LANES], [f64; LANES]) {
    // SAFETY: the caller checked AVX; loads and stores stay inside the
    // arrays (4 lanes at 4k for k < LANES / 4).
    unsafe {
        let one = _mm256_set1_pd(1.0);
        let mut x = [_mm256_setzero_pd(); LANES / 4];
        let mut r = [_mm256_setzero_pd(); LANES / 4];
        let mut s = [_mm256_setzero_pd(); LANES / 4];
        for k in 0..LANES / 4 {
            x[k] = _mm256_loadu_pd(x0.as_ptr().add(4 * k));
            r[k] = _mm256_loadu_pd(r0.as_ptr().add(4 * k));
        }
        for _ in 0..n {
            for k in 0..LANES / 4 {
                x[k] = _mm256_mul_pd(_mm256_mul_pd(r[k], x[k]), _mm256_sub_pd(one, x[k]));
                s[k] = _mm256_add_pd(s[k], _mm256_sqrt_pd(x[k]));
            }
        }
        let (mut xo, mut so) = ([0f64; LANES], [0f64; LANES]);
        for k in 0..LANES / 4 {
            _mm256_storeu_pd(xo.as_mut_ptr().add(4 * k), x[k]);
            _mm256_storeu_pd(so.as_mut_ptr().add(4 * k), s[k]);
        }
        (xo, so)
    }
}
