//! `threads N ITER`: N threads (`std::thread`: `clone(CLONE_THREAD |
//! CLONE_SETTLS | CLONE_CHILD_CLEARTID ...)`) each add 1 to a shared
//! counter ITER times under a `Mutex` (futex wait/wake when contended),
//! hand a result back through a channel, and are joined (the futex on the
//! cleared thread id). Prints `threads: N threads, counter C, sum S` where
//! C must be N*ITER and S the sum of each thread's own arithmetic.
//! `threads sleep MS`: sleeps MS milliseconds, prints `threads: slept`.

use std::sync::{mpsc, Arc, Mutex};

use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "threads";

fn main() {
    let a = args(PROG);
    if a.len() == 2 && a[0] == "sleep" {
        let ms = parse_num(PROG, "MS", &a[1]);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        println!("threads: slept");
        return;
    }
    if a.len() != 2 {
        die(PROG, "usage: threads N ITER | threads sleep MS");
    }
    let n = parse_num(PROG, "N", &a[0]);
    let iter = parse_num(PROG, "ITER", &a[1]);
    let counter = Arc::new(Mutex::new(0u64));
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..n)
        .map(|t| {
            let counter = counter.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut own = 0u64;
                for i in 0..iter {
                    *counter.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    own = own.wrapping_add(i * (t + 1));
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
                let _ = tx.send(own);
            })
        })
        .collect();
    drop(tx);
    for h in handles {
        if h.join().is_err() {
            die(PROG, "a thread panicked");
        }
    }
    let sum: u64 = rx.iter().fold(0u64, |s, x| s.wrapping_add(x));
    let c = *counter.lock().unwrap_or_else(|e| e.into_inner());
    if c != n * iter {
        die(PROG, &format!("counter {c}, expected {}", n * iter));
    }
    println!("threads: {n} threads, counter {c}, sum {sum}");
}
