//! System calls: the Linux x86-64 table a static musl or glibc program
//! needs. Arguments arrive in rdi, rsi, rdx, r10, r8, r9 with the number in
//! rax; the result (or `-errno`) goes back in rax. Every pointer goes
//! through `mm::uaccess` (`EFAULT`, never a kernel fault). A number the
//! kernel does not implement answers `ENOSYS` and is counted per number
//! (`mobius stat` shows them; `strace=1` traces every call).
use crate::arch::x86_64::trap::TrapFrame;

mod fd;
mod file;
mod memory;
mod misc;
mod path;
mod poll;
mod process;
pub mod shm;
mod timer;
mod vmcall;

pub use crate::errno::*;

/// The arguments of one call.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    pub a: [u64; 6],
}

/// Handle the system call in `frame` and put its result in `rax`.
pub fn dispatch(frame: &mut TrapFrame) {
    let nr = frame.rax;
    let args = Args {
        a: [
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ],
    };
    crate::proc::task::note_syscall();
    // The number stays in the frame (its error-code word, unused for a
    // system call): a handler with SA_RESTART makes the call again.
    frame.error_code = nr;
    let result = match nr {
        22 => fd::pipe(args),
        32 => fd::dup(args),
        33 => fd::dup2(args),
        56 => process::clone(frame, args),
        57 => process::fork(frame),
        58 => process::vfork(frame),
        59 => process::execve(frame, args),
        15 => crate::proc::signal::sigreturn(frame),
        34 => timer::pause(),
        35 => process::nanosleep(args),
        36 => timer::getitimer(args),
        37 => timer::alarm(args),
        38 => timer::setitimer(args),
        61 => process::wait4(args),
        247 => process::waitid(args),
        109 => process::setpgid(args),
        111 => process::getpgid(Args { a: [0; 6] }),
        112 => process::setsid(),
        121 => process::getpgid(args),
        124 => process::getsid(args),
        202 => process::futex(args),
        230 => process::clock_nanosleep(args),
        292 => fd::dup3(args),
        293 => fd::pipe2(args),
        0 => file::read(args),
        1 => file::write(args),
        2 => path::open(args),
        3 => file::close(args),
        4 => path::stat(args),
        5 => path::fstat(args),
        6 => path::lstat(args),
        7 => poll::poll(args),
        8 => file::lseek(args),
        9 => memory::mmap(args),
        10 => memory::mprotect(args),
        11 => memory::munmap(args),
        12 => memory::brk(args),
        13 => misc::rt_sigaction(args),
        14 => misc::rt_sigprocmask(args),
        16 => file::ioctl(args),
        17 => file::pread64(args),
        18 => file::pwrite64(args),
        19 => file::readv(args),
        20 => file::writev(args),
        21 => path::access(args),
        24 => misc::sched_yield(),
        25 => memory::mremap(args),
        26 => memory::msync(args),
        28 => memory::madvise(args),
        29 => shm::shmget(args),
        30 => shm::shmat(args),
        31 => shm::shmctl(args),
        67 => shm::shmdt(args),
        149 | 150 => memory::mlock(args),
        151 => memory::mlockall(args),
        152 => 0, // munlockall
        325 => memory::mlock2(args),
        // clone3: answered on purpose (not counted as unimplemented):
        // glibc falls back to clone, which does everything it asks for.
        435 => -ENOSYS,
        39 => process::getpid(),
        60 => process::exit(args),
        231 => process::exit_group(args),
        62 => process::kill(args),
        63 => misc::uname(args),
        72 => fd::fcntl(args),
        79 => path::getcwd(args),
        80 => path::chdir(args),
        81 => path::fchdir(args),
        95 => path::umask(args),
        89 => path::readlink(args),
        96 => misc::gettimeofday(args),
        102 | 104 | 107 | 108 => 0,
        110 => process::getppid(),
        127 => crate::proc::signal::sigpending(args.a[0], args.a[1]),
        130 => crate::proc::signal::sigsuspend(frame, args.a[0], args.a[1]),
        131 => crate::proc::signal::sigaltstack(frame.rsp, args.a[0], args.a[1]),
        158 => misc::arch_prctl(args),
        186 => process::gettid(),
        200 => process::tkill(args.a[0], args.a[1]),
        201 => misc::time(args),
        217 => path::getdents64(args),
        218 => process::set_tid_address(args),
        228 => misc::clock_gettime(args),
        234 => process::tkill(args.a[1], args.a[2]),
        257 => path::openat(args),
        262 => path::newfstatat(args),
        267 => path::readlinkat(args),
        271 => poll::ppoll(args),
        40 => file::sendfile(args),
        74 | 75 => file::fsync(args),
        76 => path::truncate(args),
        77 => file::ftruncate(args),
        82 => path::rename(args),
        83 => path::mkdir(args),
        84 => path::rmdir(args),
        85 => path::creat(args),
        86 => path::link(args),
        87 => path::unlink(args),
        88 => path::symlink(args),
        90 => path::chmod(args),
        91 => path::fchmod(args),
        92 => path::chown(args),
        93 => path::fchown(args),
        94 => path::lchown(args),
        137 => path::statfs(args),
        138 => path::fstatfs(args),
        // sync: every file system is in memory or read-only.
        162 => 0,
        258 => path::mkdirat(args),
        260 => path::fchownat(args),
        263 => path::unlinkat(args),
        264 => path::renameat(args),
        265 => path::linkat(args),
        266 => path::symlinkat(args),
        268 => path::fchmodat(args),
        269 => path::faccessat(args),
        280 => path::utimensat(args),
        316 => path::renameat2(args),
        439 => path::faccessat2(args),
        // set_robust_list: accepted; a thread that dies holding a robust
        // mutex does not mark it (only matters across processes).
        273 => 0,
        318 => misc::getrandom(args),
        mobius_shared::vmcall::BASE..mobius_shared::vmcall::END => vmcall::dispatch(nr, args),
        _ => {
            crate::proc::task::note_enosys(nr);
            -ENOSYS
        }
    };
    if TRACE.load(core::sync::atomic::Ordering::Relaxed) {
        let who = crate::proc::task::current().map_or((0, 0), |(t, p, _)| (p, t));
        let line = alloc::format!(
            "mobius-strace: [{}/{}] {nr}({:#x}, {:#x}, {:#x}, {:#x}) = {result}\n",
            who.0,
            who.1,
            args.a[0],
            args.a[1],
            args.a[2],
            args.a[3]
        );
        crate::console::write_program_output(crate::console::Stream::Err, line.as_bytes());
    }
    frame.rax = result as u64;
}

/// Whether every system call is reported on standard error (`strace=1` on
/// the kernel command line).
pub static TRACE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
