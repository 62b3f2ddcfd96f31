/* forkwait N: fork N children that each wait on a pipe (blocked in read),
 * then close the pipe so they all see end of file, exit, and are reaped.
 * Many live processes at once: the scheduler must stay responsive.
 * forkwait max: fork until fork fails, then the same; prints the errno.
 * Prints one line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: forkwait N|max\n");
        return 2;
    }
    int max = strcmp(argv[1], "max") == 0;
    long n = max ? 1000000 : atol(argv[1]);
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        return 1;
    }
    long forked = 0;
    int err = 0;
    for (; forked < n; forked++) {
        pid_t c = fork();
        if (c == 0) {
            close(p[1]);
            char b;
            _exit(read(p[0], &b, 1) == 0 ? 0 : 3);
        }
        if (c < 0) {
            err = errno;
            break;
        }
    }
    close(p[1]);
    long reaped = 0, clean = 0;
    int status;
    while (wait(&status) > 0) {
        reaped++;
        clean += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (max)
        printf("forkwait: fork failed with %s after %s children; %s reaped cleanly\n",
               err == EAGAIN ? "EAGAIN" : err == ENOMEM ? "ENOMEM" : strerror(err),
               forked >= 100 ? "100+" : "fewer than 100", clean == forked ? "all" : "NOT all");
    else
        printf("forkwait: %ld children, %ld reaped, %ld cleanly\n", forked, reaped, clean);
    return !(reaped == forked && clean == forked && (max ? err != 0 : forked == n));
}
