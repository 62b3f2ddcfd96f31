//! `fuzz N SEED [-v]`: N raw system calls with random numbers in 0..=450 and
//! random arguments (xorshift64* from SEED). Prints
//! `fuzz: N calls, M returned errors` and exits 0: the point is that the
//! kernel survives and so does the process. `-v` first prints each call on
//! stderr (`fuzz: #i nr(a1, ..., a6)` then `= ret`).
//!
//! Excluded: calls that end, block, replace or reshape the process (exit,
//! signals, exec, fork, waits, sleeps, blocking reads and receives, memory
//! map changes, TLS), that would close or replace fds 0-2, and (this also
//! runs natively, often as root) that would change the system or other
//! processes: time, hostname, mounts, modules, SysV IPC, keys, scheduling of
//! other pids, ownership and modes, fanotify... See EXCLUDED.
//!
//! Arguments: 0, small integers 0..=8, single bits below 1 << 16, 0..0xffff,
//! -1, random u64, bad pointers, and pointers into a 64 KiB scratch buffer
//! that is zeroed before every call (so strings there are "", structs all
//! zero) and followed by PROT_NONE guard pages (so long writes stop there).
//! ioctl never gets fds 0-2 (terminal ioctls could upset a terminal).

use std::io::Write;

use mobius_test_programs::sys::*;
use mobius_test_programs::{args, die, parse_num};

const PROG: &str = "fuzz";
const MAX_NR: u64 = 450;
const SCRATCH: usize = 64 * 1024;
const GUARD: usize = 16 * PAGE_SIZE;
const SYS_IOCTL: usize = 16;

#[rustfmt::skip]
const EXCLUDED: &[usize] = &[
    // Ending, replacing or duplicating the process; signals to anyone.
    60, 231, 59, 322, 56, 57, 58, 435, 62, 200, 234, 129, 297, 424, 15,
    // Blocking: sleeps, waits, reads, receives, locks, polls.
    0, 19, 327, 34, 35, 230, 61, 247, 130, 128, 202, 449, 23, 270, 7, 271,
    232, 281, 441, 24, 43, 288, 45, 47, 299, 73, 72, 206, 207, 208, 209, 210,
    333, 40, 275, 276, 278,
    // Pipes and socket pairs: writes to them block once they are full.
    22, 293, 53,
    // Memory map changes, TLS, rseq, uretprobe (SIGILL), prctl, seccomp.
    9, 10, 11, 12, 25, 28, 216, 329, 440, 448, 158, 157, 317, 334, 335, 101,
    // Closing or replacing fds (0-2 must survive).
    3, 33, 292, 436,
    // Timers that signal.
    37, 38, 222, 223, 224, 225, 226,
    // The system: time, hostname, mounts, swap, modules, reboot, kexec,
    // accounting, quotas, syslog, sync, vhangup.
    159, 164, 227, 305, 170, 171, 165, 166, 155, 428, 429, 430, 431, 432, 433,
    442, 167, 168, 169, 246, 320, 175, 176, 313, 163, 179, 443, 103, 162,
    306, 153, 156,
    // Other processes: scheduling, priorities, memory, fds, process groups.
    141, 142, 144, 203, 251, 314, 256, 279, 311, 434, 438, 109, 160, 302,
    // Shared state that outlives the process: SysV IPC, POSIX queues, keys.
    29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 220, 240, 241, 242, 243,
    244, 245, 248, 249, 250,
    // Owners, modes, sizes and xattrs of whatever fds 0-2 are; fanotify.
    90, 91, 92, 93, 94, 260, 268, 77, 285, 190, 199, 326, 300, 301,
    // io_uring.
    425, 426, 427,
];

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed: any seed (0 too) gives a good state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const BAD_POINTERS: [u64; 4] = [
    1,
    0xffff_8000_0000_0000,
    0x7fff_ffff_f000,
    0xffff_ffff_ffff_f000,
];

fn arg(rng: &mut Rng, scratch: usize) -> usize {
    (match rng.below(10) {
        0 => 0,
        1 | 2 => rng.below(9),
        3 => scratch as u64,
        4 => scratch as u64 + rng.below(SCRATCH as u64),
        5 => BAD_POINTERS[rng.below(BAD_POINTERS.len() as u64) as usize],
        6 => u64::MAX,
        7 => 1 << rng.below(16),
        8 => rng.below(0x1_0000),
        _ => rng.next(),
    }) as usize
}

fn raw_stderr(text: &str) {
    // SAFETY: writing our own buffer to fd 2.
    unsafe { syscall3(SYS_WRITE, 2, text.as_ptr() as usize, text.len()) };
}

fn main() {
    let a = args(PROG);
    if !(2..=3).contains(&a.len()) || (a.len() == 3 && a[2] != "-v") {
        die(PROG, "usage: fuzz N SEED [-v]");
    }
    let n = parse_num(PROG, "N", &a[0]);
    let seed = parse_num(PROG, "SEED", &a[1]);
    let verbose = a.len() == 3;

    // The scratch buffer, then guard pages that fault any access.
    let base = mmap_anon(SCRATCH + GUARD, PROT_NONE);
    if is_err(base) {
        die(PROG, &format!("mmap(scratch) = {base}"));
    }
    let scratch = base as usize;
    // SAFETY: opening the first part of our own fresh mapping.
    let r = unsafe { syscall3(SYS_MPROTECT, scratch, SCRATCH, PROT_READ | PROT_WRITE) };
    if r != 0 {
        die(PROG, &format!("mprotect(scratch) = {r}"));
    }

    let mut rng = Rng::new(seed);
    let mut errors = 0u64;
    for i in 0..n {
        let nr = loop {
            let nr = rng.below(MAX_NR + 1) as usize;
            if !EXCLUDED.contains(&nr) {
                break nr;
            }
        };
        let mut args = [0usize; 6];
        for x in args.iter_mut() {
            *x = arg(&mut rng, scratch);
        }
        if nr == SYS_IOCTL && args[0] <= 2 {
            args[0] += 3;
        }
        // SAFETY: the scratch buffer is ours, read-write.
        unsafe { core::ptr::write_bytes(scratch as *mut u8, 0, SCRATCH) };
        if verbose {
            raw_stderr(&format!(
                "fuzz: #{i} {nr}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x})",
                args[0], args[1], args[2], args[3], args[4], args[5]
            ));
        }
        // SAFETY: see EXCLUDED: nothing left can unmap, reprotect or
        // overwrite this program's memory other than the scratch buffer,
        // or end or stop it.
        let ret = unsafe { syscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
        if verbose {
            raw_stderr(&format!(" = {ret}\n"));
        }
        if is_err(ret) {
            errors += 1;
        }
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) =
        writeln!(out, "fuzz: {n} calls, {errors} returned errors").and_then(|()| out.flush())
    {
        die(PROG, &format!("write to stdout: {e}"));
    }
}
