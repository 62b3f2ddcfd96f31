/* signals: handlers run (glibc's sigaction with SA_RESTORER, rt_sigreturn).
 * 1. SIGUSR1 to itself (raise): the handler runs once, the interrupted
 *    code's registers and a double in flight survive.
 * 2. Blocked with sigprocmask: raise leaves it pending; unblocking runs it.
 * 3. SIGCHLD: a forked child exits 3; the handler sees it; waitpid says 3.
 * 4. SIGPIPE with a handler: a write to a pipe with no reader runs the
 *    handler and returns EPIPE.
 * 5. SA_RESTART: a read blocked on a pipe, cut by SIGUSR2 from a child, is
 *    made again after the handler and returns the byte the child writes.
 * Prints one line per check and "signals: all ok". */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, chld, pipes;

static void on_usr1(int sig) { usr1 += sig == SIGUSR1; }
static void on_chld(int sig) { chld += sig == SIGCHLD; }
static void on_pipe(int sig) { pipes += sig == SIGPIPE; }
static void on_usr2(int sig) { usr2 += sig == SIGUSR2; }

static void handle_with(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) != 0) {
		perror("signals: sigaction");
		_exit(1);
	}
}

static void handle(int sig, void (*fn)(int)) { handle_with(sig, fn, 0); }

int main(void)
{
	volatile double x = 1.5;
	handle(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	printf("usr1 %d, double %.2f\n", (int)usr1, x * 2);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	raise(SIGUSR1);
	printf("blocked: usr1 still %d\n", (int)usr1);
	sigprocmask(SIG_SETMASK, &old, NULL);
	printf("unblocked: usr1 %d\n", (int)usr1);

	handle_with(SIGUSR2, on_usr2, SA_RESTART);
	int q[2];
	if (pipe(q) != 0)
		return 1;
	pid_t helper = fork();
	if (helper == 0) {
		usleep(50000);
		kill(getppid(), SIGUSR2);
		usleep(50000);
		if (write(q[1], "y", 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(q[1]);
	char ch = '?';
	ssize_t got = read(q[0], &ch, 1);
	waitpid(helper, NULL, 0);
	printf("restart: read %zd '%c', usr2 %d\n", got, got == 1 ? ch : '?', (int)usr2);

	handle(SIGCHLD, on_chld);
	pid_t pid = fork();
	if (pid == 0)
		_exit(3);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	printf("chld %d, exit %d\n", (int)chld, WEXITSTATUS(status));

	handle(SIGPIPE, on_pipe);
	int p[2];
	if (pipe(p) != 0)
		return 1;
	close(p[0]);
	ssize_t n = write(p[1], "x", 1);
	int e = errno;
	printf("pipe: write %zd %s, handler %d\n", n, n < 0 && e == EPIPE ? "EPIPE" : "?", (int)pipes);
	int ok = usr1 == 2 && usr2 == 1 && got == 1 && chld == 1 && WEXITSTATUS(status) == 3 &&
		 pipes == 1;
	printf("signals: %s\n", ok ? "all ok" : "FAILED");
	return ok ? 0 : 1;
}
