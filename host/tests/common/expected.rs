//! What the test programs print when they behave, natively and in the
//! guest alike (one text, checked by both sides).

/// What `c-files` prints when every file call behaved (natively in a
/// scratch directory and in the guest's `/tmp`).
pub const FILES: &str = "basics: size 8195\nappend: 8 bytes\ntruncate: 3 then 1\n\
dirs: 3 entries then 1, 2 dots\nlinks: ok\nstatfs: ok\nmmap: ok\nmmap shared: ok\nproc: ok\nfiles: all ok\n";

/// What `c-harness` prints (natively and in the guest).
pub const HARNESS: &str = "mremap grow: ok, moved 1, contents kept, new pages zero 1\n\
mremap shrink: same 1, contents kept\n\
mremap in place: same 1, contents kept\n\
mremap blocked: ENOMEM\n\
mremap fixed: at target 1, contents kept\n\
mremap errors: unaligned EINVAL, zero EINVAL, unmapped EFAULT, fixed-without-maymove EINVAL\n\
msync: ok ok, async ok, unaligned EINVAL, both EINVAL, unmapped ENOMEM\n\
mlock: ok, munlock ok, unmapped ENOMEM, mlockall(0) EINVAL, munlockall ok\n\
thread: joined 1\n\
alarm: pause EINTR, handler ran 1\n\
itimer: periodic fired 3, disarmed\n\
getitimer: armed 1, interval 0\n\
alarm: previous 2 then 5\n\
itimer errors: usec EINVAL, which EINVAL\n\
alarm child: killed by signal 14\n\
segv write: SEGV_ACCERR, addr-ok 1\n\
segv read: SEGV_MAPERR, addr-ok 1\n\
segv: 300 of 300 faults caught by siglongjmp\n\
segv fixed: handler 1, value 42\n\
sigfpe: code FPE_INTDIV, addr-set 1\n\
sigill: code ILL_ILLOPN\n\
fault in handler: killed by signal 11\n\
no handler: killed by signal 11\n\
sigaltstack errors: small ENOMEM, flags EINVAL\n\
sigaltstack: ok, old disabled 1\n\
stack overflow: caught on alternate stack 1, SS_ONSTACK 1, EPERM 1, deep 1\n\
nested: order 123, outer double 3.00\n\
wait4 restart: got slow 1, ok, status 7, sigchld seen 1\n\
sigsuspend: pending 1, EINTR, handler 1, mask back 1\n\
sigsuspend for SIGCHLD: EINTR, handler 1\n\
shm: fork child wrote 'from child', nattch 1, size 262144\n\
shm read-only write: killed by signal 11\n\
shm: read-only sees 'from child'\n\
shm exec child: exit 0\n\
shm key: stranger wrote 'from exec', again EEXIST, bigger EINVAL, missing ENOENT\n\
shm errors: size 0 EINVAL, bad id EINVAL, unaligned EINVAL, shmdt EINVAL\n\
shm rmid: stat ok, dest 1\n\
shm detached: stat EINVAL\n\
shm frames: back where they were\n\
map shared: parent sees 1234, private 1, getppid the parent\n\
harness: all ok\n";
