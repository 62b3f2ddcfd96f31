/* cflags: -D_GNU_SOURCE */
/* harness: what real C test harnesses ask of the kernel (issue 13 item 4).
 * 1. mremap (grow in place, move with contents, shrink, FIXED, errors),
 *    msync and the mlock family (checks and errors), a thread (glibc tries
 *    clone3 first and falls back to clone).
 * 2. ITIMER_REAL: setitimer/getitimer, alarm, pause, a periodic timer, and
 *    SIGALRM's default action ending a child.
 * 3. Faults to handlers: SIGSEGV (SEGV_ACCERR/SEGV_MAPERR with si_addr), a
 *    handler that fixes the page and returns, SIGFPE, SIGILL; a fault in
 *    its own handler kills; sigaltstack (a stack overflow caught on the
 *    alternate stack, SS_ONSTACK, EPERM/ENOMEM/EINVAL); nested handlers.
 * 4. wait4 cut by a SIGCHLD handler with SA_RESTART is made again;
 *    sigpending, sigsuspend (a blocked signal, a child's SIGCHLD).
 * 5. SysV shared memory: shmget/shmat/shmdt/shmctl, shared with a fork
 *    child and with an exec'd (unrelated) process, errors, frames back.
 * 6. MAP_SHARED|MAP_ANONYMOUS stays shared across fork; getppid.
 * Prints one line per check and "harness: all ok"; the same natively. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096L

static const char *err(long r)
{
	if (r != -1)
		return "ok";
	switch (errno) {
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EPERM: return "EPERM";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case ENOSYS: return "ENOSYS";
	default: return "other";
	}
}

static void on(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = flags | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0) {
		perror("harness: sigaction");
		exit(1);
	}
}

static char *map(long pages, int prot, int flags)
{
	char *p = mmap(NULL, pages * PAGE, prot, flags | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("harness: mmap");
		exit(1);
	}
	return p;
}

/* An address nothing is mapped at. */
static char *hole(void)
{
	char *p = map(1, PROT_READ, MAP_PRIVATE);
	munmap(p, PAGE);
	return p;
}

static int wait_status(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

static void describe(const char *what, int st)
{
	if (WIFSIGNALED(st))
		printf("%s: killed by signal %d\n", what, WTERMSIG(st));
	else
		printf("%s: exit %d\n", what, WEXITSTATUS(st));
}

/* ---- 1. memory calls ---------------------------------------------- */

static int pattern_ok(const char *p, long pages)
{
	for (long i = 0; i < pages; i++)
		if (p[i * PAGE] != (char)('a' + i) || p[i * PAGE + PAGE - 1] != (char)('A' + i))
			return 0;
	return 1;
}

static void fill(char *p, long pages)
{
	for (long i = 0; i < pages; i++) {
		p[i * PAGE] = (char)('a' + i);
		p[i * PAGE + PAGE - 1] = (char)('A' + i);
	}
}

static void *thread_main(void *arg) { return (char *)arg + 1; }

static void memory_calls(void)
{
	/* Grow with MAYMOVE: the contents come along. */
	char *p = map(2, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(p, 2);
	char *blocker = mmap(p + 2 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	char *q = mremap(p, 2 * PAGE, 6 * PAGE, MREMAP_MAYMOVE);
	int moved = q != MAP_FAILED && q != p;
	printf("mremap grow: %s, moved %d, contents %s, new pages zero %d\n", err(q == MAP_FAILED ? -1 : 0),
	       blocker != MAP_FAILED ? moved : 1, q != MAP_FAILED && pattern_ok(q, 2) ? "kept" : "lost",
	       q != MAP_FAILED && q[5 * PAGE] == 0);
	if (blocker != MAP_FAILED)
		munmap(blocker, PAGE);
	fill(q, 6);
	/* Shrink in place. */
	char *r = mremap(q, 6 * PAGE, 3 * PAGE, 0);
	printf("mremap shrink: same %d, contents %s\n", r == q, pattern_ok(r, 3) ? "kept" : "lost");
	/* Grow in place into a hole made for it. */
	char *g = map(4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(g, 2);
	munmap(g + 2 * PAGE, 2 * PAGE);
	char *g2 = mremap(g, 2 * PAGE, 4 * PAGE, 0);
	printf("mremap in place: same %d, contents %s\n", g2 == g, pattern_ok(g2, 2) ? "kept" : "lost");
	/* The first page of a longer mapping cannot grow without moving. */
	errno = 0;
	char *n = mremap(g2, PAGE, 2 * PAGE, 0);
	printf("mremap blocked: %s\n", err(n == MAP_FAILED ? -1 : 0));
	/* MREMAP_FIXED into a reserved range. */
	char *dst = map(8, PROT_NONE, MAP_PRIVATE);
	char *f = mremap(r, 3 * PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst + 4 * PAGE);
	printf("mremap fixed: at target %d, contents %s\n", f == dst + 4 * PAGE,
	       f != MAP_FAILED && pattern_ok(f, 3) ? "kept" : "lost");
	printf("mremap errors: unaligned %s, zero %s, unmapped %s, fixed-without-maymove %s\n",
	       err((long)mremap(f + 1, PAGE, PAGE, 0)), err((long)mremap(f, PAGE, 0, 0)),
	       err((long)mremap(hole(), PAGE, 2 * PAGE, MREMAP_MAYMOVE)),
	       err((long)mremap(f, PAGE, PAGE, MREMAP_FIXED, dst)));
	/* msync and the mlock family. */
	printf("msync: ok %s, async %s, unaligned %s, both %s, unmapped %s\n", err(msync(f, PAGE, MS_SYNC)),
	       err(msync(f, 3 * PAGE, MS_ASYNC)), err(msync(f + 1, PAGE, MS_SYNC)),
	       err(msync(f, PAGE, MS_SYNC | MS_ASYNC)), err(msync(hole(), PAGE, MS_SYNC)));
	printf("mlock: %s, munlock %s, unmapped %s, mlockall(0) %s, munlockall %s\n", err(mlock(f + 5, 100)),
	       err(munlock(f, PAGE)), err(mlock(hole(), PAGE)), err(mlockall(0)), err(munlockall()));
	munmap(f, 3 * PAGE);
	munmap(g2, 4 * PAGE);
	pthread_t t;
	void *ret = NULL;
	char token = 0;
	if (pthread_create(&t, NULL, thread_main, &token) == 0 && pthread_join(t, &ret) == 0)
		printf("thread: joined %d\n", ret == &token + 1);
	else
		printf("thread: failed\n");
}

/* ---- 2. timers ----------------------------------------------------- */

static volatile sig_atomic_t alarms;

static void on_alrm(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	alarms += sig == SIGALRM;
}

static int arm(long value_us, long interval_us)
{
	struct itimerval it = {{interval_us / 1000000, interval_us % 1000000},
			       {value_us / 1000000, value_us % 1000000}};
	return setitimer(ITIMER_REAL, &it, NULL);
}

static void timers(void)
{
	on(SIGALRM, on_alrm, 0);
	arm(30000, 0);
	int r = pause();
	printf("alarm: pause %s, handler ran %d\n", err(r), (int)alarms);
	alarms = 0;
	arm(20000, 20000);
	while (alarms < 3)
		pause();
	arm(0, 0);
	printf("itimer: periodic fired 3, disarmed\n");
	arm(2000000, 0);
	struct itimerval cur;
	getitimer(ITIMER_REAL, &cur);
	int armed = cur.it_value.tv_sec * 1000000L + cur.it_value.tv_usec > 0 &&
		    cur.it_value.tv_sec * 1000000L + cur.it_value.tv_usec <= 2000000;
	printf("getitimer: armed %d, interval %ld\n", armed, (long)cur.it_interval.tv_sec);
	unsigned left = alarm(5);
	unsigned left2 = alarm(0);
	printf("alarm: previous %u then %u\n", left, left2);
	struct itimerval bad = {{0, 0}, {0, 1000000}};
	printf("itimer errors: usec %s, which %s\n", err(setitimer(ITIMER_REAL, &bad, NULL)),
	       err(getitimer(99, &cur)));
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		alarm(1);
		for (;;)
			pause();
	}
	describe("alarm child", wait_status(pid));
}

/* ---- 3. faults, alternate stack, nesting --------------------------- */

static sigjmp_buf jump;
static volatile int seen_code;
static void *volatile seen_addr;
static volatile int fixes;
static char *volatile fix_page;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	(void)sig;
	seen_code = si->si_code;
	seen_addr = si->si_addr;
	siglongjmp(jump, 1);
}

static void on_fix(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((char *)si->si_addr == fix_page && mprotect(fix_page, PAGE, PROT_READ | PROT_WRITE) == 0)
		fixes++;
	else
		_exit(9);
}

/* Faults again, with SIGSEGV blocked: the process is killed. */
static void on_fault_again(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	*(volatile char *)si->si_addr = 2;
	_exit(8);
}

static const char *segv_code(int c)
{
	return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
}

/* Both volatile: gcc turns 1 / x into compares, and a known numerator
 * may let it do so again. */
static volatile int zero, seven = 7;

static void fault_handlers(void)
{
	on(SIGSEGV, on_fault, 0);
	char *ro = map(1, PROT_READ, MAP_PRIVATE);
	if (sigsetjmp(jump, 1) == 0)
		*(volatile char *)(ro + 8) = 1;
	printf("segv write: %s, addr-ok %d\n", segv_code(seen_code), seen_addr == ro + 8);
	char *gone = hole();
	if (sigsetjmp(jump, 1) == 0)
		(void)*(volatile char *)(gone + 16);
	printf("segv read: %s, addr-ok %d\n", segv_code(seen_code), seen_addr == gone + 16);
	/* Handlers left by siglongjmp, many times over: delivery goes on. */
	int caught = 0;
	for (int i = 0; i < 300; i++) {
		if (sigsetjmp(jump, 1) == 0)
			*(volatile char *)(ro + i) = 1;
		else
			caught++;
	}
	printf("segv: %d of 300 faults caught by siglongjmp\n", caught);
	/* A handler that makes the page writable and returns: the write is made again. */
	on(SIGSEGV, on_fix, 0);
	fix_page = map(1, PROT_READ, MAP_PRIVATE);
	*(volatile char *)fix_page = 42;
	printf("segv fixed: handler %d, value %d\n", (int)fixes, fix_page[0]);
	on(SIGFPE, on_fault, 0);
	if (sigsetjmp(jump, 1) == 0)
		zero = seven / zero;
	if (seen_code == FPE_INTDIV)
		printf("sigfpe: code FPE_INTDIV, addr-set %d\n", seen_addr != NULL);
	else
		printf("sigfpe: code %d, addr %p\n", seen_code, seen_addr);
	on(SIGILL, on_fault, 0);
	if (sigsetjmp(jump, 1) == 0)
		__builtin_trap();
	printf("sigill: code %s\n", seen_code == ILL_ILLOPN ? "ILL_ILLOPN" : "other");
	/* A fault inside the handler (its signal blocked) kills. */
	pid_t pid = fork();
	if (pid == 0) {
		on(SIGSEGV, on_fault_again, 0);
		*(volatile char *)(ro + 1) = 1;
		_exit(0);
	}
	describe("fault in handler", wait_status(pid));
	pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*(volatile char *)ro = 1;
		_exit(0);
	}
	describe("no handler", wait_status(pid));
	signal(SIGSEGV, SIG_DFL);
	signal(SIGFPE, SIG_DFL);
	signal(SIGILL, SIG_DFL);
}

static char *alt_base;
static volatile int on_alt, alt_flags, alt_eperm;
static volatile long depth;

#define ALT_SIZE (256 * 1024L)

static void on_overflow(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	char here;
	on_alt = &here >= alt_base && &here < alt_base + ALT_SIZE;
	stack_t cur, other = {.ss_sp = alt_base, .ss_size = ALT_SIZE, .ss_flags = 0};
	sigaltstack(NULL, &cur);
	alt_flags = cur.ss_flags;
	alt_eperm = sigaltstack(&other, NULL) == -1 && errno == EPERM;
	siglongjmp(jump, 1);
}

static long recurse(long n)
{
	volatile char pad[16384];
	pad[0] = (char)n;
	pad[sizeof pad - 1] = (char)n;
	depth = n;
	if (n > 1000000)
		return pad[0];
	return recurse(n + 1) + pad[0];
}

static volatile int order[8], norder;
static volatile double outer_value;

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	volatile double junk = 7.25 * sig;
	(void)junk;
	order[norder++] = 2;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	volatile double mine = 1.5;
	order[norder++] = 1;
	raise(SIGUSR2);
	outer_value = mine * 2;
	order[norder++] = 3;
}

static void alt_stack_and_nesting(void)
{
	stack_t ss = {.ss_sp = NULL, .ss_size = 100, .ss_flags = 0};
	char buf[4096];
	ss.ss_sp = buf;
	const char *small = err(sigaltstack(&ss, NULL));
	ss.ss_size = sizeof buf;
	ss.ss_flags = 0x40;
	printf("sigaltstack errors: small %s, flags %s\n", small, err(sigaltstack(&ss, NULL)));
	alt_base = malloc(ALT_SIZE);
	ss.ss_sp = alt_base;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	stack_t old;
	int r = sigaltstack(&ss, &old);
	printf("sigaltstack: %s, old disabled %d\n", err(r), (old.ss_flags & SS_DISABLE) != 0);
	on(SIGSEGV, on_overflow, SA_ONSTACK);
	if (sigsetjmp(jump, 1) == 0)
		recurse(0);
	printf("stack overflow: caught on alternate stack %d, SS_ONSTACK %d, EPERM %d, deep %d\n", on_alt,
	       (alt_flags & SS_ONSTACK) != 0, alt_eperm, depth > 100);
	signal(SIGSEGV, SIG_DFL);
	on(SIGUSR1, on_usr1, 0);
	on(SIGUSR2, on_usr2, 0);
	raise(SIGUSR1);
	printf("nested: order %d%d%d, outer double %.2f\n", order[0], order[1], order[2], outer_value);
}

/* ---- 4. wait4 restarted -------------------------------------------- */

static volatile sig_atomic_t chlds;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	chlds += sig == SIGCHLD;
}

static void wait_restart(void)
{
	on(SIGCHLD, on_chld, SA_RESTART);
	pid_t slow = fork();
	if (slow == 0) {
		usleep(200000);
		_exit(7);
	}
	pid_t quick = fork();
	if (quick == 0)
		_exit(0);
	int st = 0;
	pid_t got = waitpid(slow, &st, 0);
	int e = errno;
	printf("wait4 restart: got slow %d, %s, status %d, sigchld seen %d\n", got == slow,
	       got == -1 ? (e == EINTR ? "EINTR" : "error") : "ok", WEXITSTATUS(st), chlds >= 1);
	waitpid(quick, NULL, 0);
	signal(SIGCHLD, SIG_DFL);
}

static volatile sig_atomic_t usr1s;

static void on_usr1_count(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	usr1s += sig == SIGUSR1;
}

/* sigpending and sigsuspend: a blocked signal is pending; sigsuspend lets
 * it through, runs its handler, returns EINTR and puts the mask back; a
 * child's SIGCHLD ends a sigsuspend too. */
static void suspend_and_pending(void)
{
	sigset_t block, old, pend, wait, now;
	on(SIGUSR1, on_usr1_count, 0);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	raise(SIGUSR1);
	sigpending(&pend);
	int was = sigismember(&pend, SIGUSR1);
	wait = old;
	sigdelset(&wait, SIGUSR1);
	int r = sigsuspend(&wait);
	sigprocmask(SIG_SETMASK, NULL, &now);
	printf("sigsuspend: pending %d, %s, handler %d, mask back %d\n", was, err(r), (int)usr1s,
	       sigismember(&now, SIGUSR1) && sigismember(&now, SIGCHLD));
	on(SIGCHLD, on_chld, 0);
	chlds = 0;
	pid_t pid = fork();
	if (pid == 0) {
		usleep(50000);
		_exit(0);
	}
	wait = old;
	sigdelset(&wait, SIGCHLD);
	r = sigsuspend(&wait);
	printf("sigsuspend for SIGCHLD: %s, handler %d\n", err(r), (int)chlds);
	waitpid(pid, NULL, 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
}

/* ---- 5. SysV shared memory ----------------------------------------- */

/* Free frames from the Möbius kernel's counters; -1 natively (ENOSYS). */
static long free_frames(void)
{
	uint64_t c[7];
	if (syscall(0x4D09, c, sizeof c) != (long)sizeof c)
		return -1;
	return (long)c[1];
}

static int shm_child(const char *keytext)
{
	key_t key = (key_t)strtol(keytext, NULL, 0);
	int id = shmget(key, 0, 0);
	char *p = id < 0 ? (char *)-1 : shmat(id, NULL, 0);
	if (p == (char *)-1)
		return 3;
	strcpy(p + 100, "from exec");
	return shmdt(p) == 0 ? 0 : 4;
}

static void shm_stranger(const char *self, int key)
{
	char arg[32];
	snprintf(arg, sizeof arg, "%#x", key);
	pid_t pid = fork();
	if (pid == 0) {
		execl(self, self, "shm-child", arg, (char *)NULL);
		execl("/bin/c-harness", "c-harness", "shm-child", arg, (char *)NULL);
		_exit(127);
	}
	describe("shm exec child", wait_status(pid));
}

static void sysv_shm(const char *self)
{
	long before = free_frames();
	int id = shmget(IPC_PRIVATE, 64 * PAGE, IPC_CREAT | 0600);
	char *p = shmat(id, NULL, 0);
	if (id < 0 || p == (char *)-1) {
		printf("shm: create/attach failed\n");
		return;
	}
	memset(p, 'x', 64 * PAGE);
	long during = free_frames();
	pid_t pid = fork();
	if (pid == 0) {
		strcpy(p, "from child");
		_exit(0);
	}
	wait_status(pid);
	struct shmid_ds ds;
	shmctl(id, IPC_STAT, &ds);
	printf("shm: fork child wrote '%s', nattch %lu, size %lu\n", p, (unsigned long)ds.shm_nattch,
	       (unsigned long)ds.shm_segsz);
	/* A read-only attachment faults on a write. */
	char *ro = shmat(id, NULL, SHM_RDONLY);
	pid = fork();
	if (pid == 0) {
		*(volatile char *)ro = 1;
		_exit(0);
	}
	describe("shm read-only write", wait_status(pid));
	printf("shm: read-only sees '%.10s'\n", ro);
	shmdt(ro);
	/* By key, from an exec'd process. */
	key_t key = 0x4d000000 | (getpid() & 0xffff);
	int kid = shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600);
	char *k = shmat(kid, NULL, 0);
	shm_stranger(self, key);
	printf("shm key: stranger wrote '%s', again %s, bigger %s, missing %s\n", k + 100,
	       err(shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600)), err(shmget(key, 2 * PAGE, 0)),
	       err(shmget(key ^ 0x00ff0000, PAGE, 0)));
	printf("shm errors: size 0 %s, bad id %s, unaligned %s, shmdt %s\n", err(shmget(IPC_PRIVATE, 0, 0600)),
	       err((long)shmat(-5, NULL, 0)), err((long)shmat(kid, (char *)k + 1, 0)), err(shmdt(k + PAGE)));
	shmctl(kid, IPC_RMID, NULL);
	shmdt(k);
	/* Removed while attached: still there, marked; gone after the detach. */
	shmctl(id, IPC_RMID, NULL);
	int st = shmctl(id, IPC_STAT, &ds);
	printf("shm rmid: stat %s, dest %d\n", err(st), (ds.shm_perm.mode & 01000) != 0);
	shmdt(p);
	printf("shm detached: stat %s\n", err(shmctl(id, IPC_STAT, &ds)));
	long after = free_frames();
	int ok = before < 0 || (during <= before - 64 && after >= before - 8 && after <= before + 8);
	printf("shm frames: %s\n", ok ? "back where they were" : "NOT back");
	if (!ok)
		fprintf(stderr, "frames before %ld during %ld after %ld\n", before, during, after);
}

/* ---- 6. MAP_SHARED across fork ------------------------------------- */

static void shared_anon(void)
{
	volatile int *shared = (volatile int *)map(1, PROT_READ | PROT_WRITE, MAP_SHARED);
	volatile int *private = (volatile int *)map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	*shared = 1;
	*private = 1;
	pid_t me = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		*shared = 1234;
		*private = 5678;
		_exit(getppid() == me ? 0 : 1);
	}
	int st = wait_status(pid);
	printf("map shared: parent sees %d, private %d, getppid %s\n", *shared, *private,
	       WEXITSTATUS(st) == 0 ? "the parent" : "wrong");
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "shm-child") == 0)
		return shm_child(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	memory_calls();
	timers();
	fault_handlers();
	alt_stack_and_nesting();
	wait_restart();
	suspend_and_pending();
	sysv_shm(argv[0]);
	shared_anon();
	printf("harness: all ok\n");
	return 0;
}
