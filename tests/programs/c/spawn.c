/* spawn PROG [ARGS...]: glibc's posix_spawn (clone(CLONE_VM|CLONE_VFORK))
 * runs PROG with its stdout on a pipe (posix_spawn_file_actions_adddup2);
 * the parent reads the pipe to end of file, prints each byte count line
 * "read N bytes", echoes the text prefixed "child: ", then waitpid()s and
 * prints "exit N" or "signal N". Then two pthreads add to a shared counter
 * under a mutex and are joined: prints "threads 2 counter 20000". */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *work(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000; i++) {
		pthread_mutex_lock(&lock);
		counter++;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int p[2];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	int status;
	pthread_t t[2];

	if (argc < 2) {
		fprintf(stderr, "usage: spawn PROG [ARGS...]\n");
		return 2;
	}
	if (pipe(p) != 0) {
		perror("spawn: pipe");
		return 1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	posix_spawn_file_actions_addclose(&fa, p[1]);
	int e = posix_spawn(&pid, argv[1], &fa, NULL, argv + 1, environ);
	if (e != 0) {
		fprintf(stderr, "spawn: posix_spawn %s: %s\n", argv[1], strerror(e));
		return 1;
	}
	close(p[1]);
	while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	printf("read %zu bytes\n", got);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		printf("child: %s\n", line);
	if (waitpid(pid, &status, 0) != pid) {
		perror("spawn: waitpid");
		return 1;
	}
	if (WIFEXITED(status))
		printf("exit %d\n", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf("signal %d\n", WTERMSIG(status));
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, work, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("threads 2 counter %ld\n", counter);
	return 0;
}
