//! `enosys [NR [COUNT]]`: makes system call NR COUNT times (default: 400
//! twice) with no arguments, and prints `enosys: NR returned -38 COUNT
//! times` when every call failed with ENOSYS (exit 0); otherwise prints the
//! results and exits 1.
//!
//! 400 is in the range x86-64 Linux keeps unassigned for good (387..=423,
//! "don't use" in its syscall_64.tbl), so it is ENOSYS natively too. (335,
//! unassigned once, is `uretprobe` since Linux 6.11: SIGILL outside a
//! uretprobe trampoline.)

use mobius_test_programs::sys::syscall0;
use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "enosys";
const ENOSYS: isize = 38;

fn main() {
    let a = args(PROG);
    let (nr, count) = match a.as_slice() {
        [] => (400, 2),
        [nr] => (parse_num(PROG, "NR", nr), 2),
        [nr, count] => (parse_num(PROG, "NR", nr), parse_num(PROG, "COUNT", count)),
        _ => die(PROG, "usage: enosys [NR [COUNT]]"),
    };
    let results: Vec<isize> = (0..count)
        // SAFETY: an unassigned number (the caller's choice) does nothing.
        .map(|_| unsafe { syscall0(nr as usize) })
        .collect();
    if results.iter().all(|&r| r == -ENOSYS) {
        println!("{PROG}: {nr} returned -{ENOSYS} {count} times");
    } else {
        die(PROG, &format!("{nr} returned {results:?}"));
    }
}
