/* mapthreads FILE N: N threads read the first byte of every page of FILE
 * through one shared read-only mapping, all in the same page order, so
 * they fault on the same pages at the same time (on a disk file, while
 * the first fault's read is in flight: the others wait for it). Even
 * threads load the bytes; odd threads hand the mapped byte to write(2)
 * on a pipe of their own and read it back, so the kernel's copy from
 * user memory meets the page being read (it must wait, not fail with
 * EFAULT). Each thread's sum must equal a sum made with pread(2).
 * Prints "mapthreads: N threads, P pages, sums agree". */
/* cflags: -pthread */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char *map;
static long pages;

static void *loader(void *out) {
    unsigned long sum = 0;
    for (long p = 0; p < pages; p++) sum += map[p * 4096];
    *(unsigned long *)out = sum;
    return 0;
}

static void *copier(void *out) {
    int fds[2];
    unsigned long sum = 0;
    if (pipe(fds) != 0) return 0;
    for (long p = 0; p < pages; p++) {
        unsigned char c;
        if (write(fds[1], map + p * 4096, 1) != 1 || read(fds[0], &c, 1) != 1) {
            sum = ~0UL; /* the copy failed (EFAULT) */
            break;
        }
        sum += c;
    }
    close(fds[0]);
    close(fds[1]);
    *(unsigned long *)out = sum;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: mapthreads FILE N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (n < 1 || n > 64 || fd < 0 || fstat(fd, &st) != 0 || st.st_size < 4096) {
        fprintf(stderr, "mapthreads: bad arguments\n");
        return 2;
    }
    pages = st.st_size / 4096;
    unsigned long want = 0;
    for (long p = 0; p < pages; p++) {
        unsigned char c;
        if (pread(fd, &c, 1, p * 4096) != 1) return 1;
        want += c;
    }
    map = mmap(0, pages * 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        perror("mapthreads: mmap");
        return 1;
    }
    pthread_t t[64];
    unsigned long sums[64];
    for (int i = 0; i < n; i++) pthread_create(&t[i], 0, i % 2 ? copier : loader, &sums[i]);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], 0);
        bad |= sums[i] != want;
    }
    if (bad) {
        printf("mapthreads: sums differ\n");
        return 1;
    }
    printf("mapthreads: %d threads, %ld pages, sums agree\n", n, pages);
    return 0;
}
