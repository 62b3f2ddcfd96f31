/* forkbench: what fork costs (issue 13's benchmarks), timed inside the
 * program with CLOCK_MONOTONIC so the guest and Linux are measured alike.
 *   forkbench fork MIB N   touch MIB MiB, then N times fork + _exit(0) in
 *                          the child + wait4; prints the mean per cycle.
 *   forkbench cow MIB      touch MIB MiB, fork; the child writes one byte
 *                          in every page (copy-on-write faults), then
 *                          touches MIB MiB of fresh memory (demand-zero
 *                          faults); prints the mean of each per page.
 * Output: "forkbench: fork 16 MiB: 123.4 us per fork+exit+wait" or
 * "forkbench: cow 16 MiB: cow 1.2 us/page, demand-zero 0.8 us/page". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char *touched(size_t bytes) {
    char *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("forkbench: mmap");
        exit(1);
    }
    for (size_t i = 0; i < bytes; i += 4096) p[i] = (char)i;
    return p;
}

static int fork_cycles(size_t mib, int n) {
    touched(mib << 20);
    double t = now_us();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0) {
            fprintf(stderr, "forkbench: fork/wait failed\n");
            return 1;
        }
    }
    printf("forkbench: fork %zu MiB: %.1f us per fork+exit+wait\n", mib, (now_us() - t) / n);
    return 0;
}

static int cow_vs_zero(size_t mib) {
    size_t bytes = mib << 20, pages = bytes / 4096;
    char *p = touched(bytes);
    pid_t pid = fork();
    if (pid == 0) {
        double t = now_us();
        for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
        double cow = (now_us() - t) / pages;
        char *q = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        t = now_us();
        for (size_t i = 0; i < bytes; i += 4096) q[i] = 1;
        double zero = (now_us() - t) / pages;
        printf("forkbench: cow %zu MiB: cow %.1f us/page, demand-zero %.1f us/page\n", mib, cow,
               zero);
        fflush(stdout);
        _exit(0);
    }
    int status;
    return waitpid(pid, &status, 0) == pid && status == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "fork") == 0)
        return fork_cycles(strtoul(argv[2], 0, 10), atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "cow") == 0) return cow_vs_zero(strtoul(argv[2], 0, 10));
    fprintf(stderr, "usage: forkbench fork MIB N | forkbench cow MIB\n");
    return 2;
}
