/* files DIR: the file calls test harnesses use, in the writable scratch
 * directory DIR (the guest's /tmp; natively a temporary directory).
 * 1. open O_CREAT|O_EXCL (twice: EEXIST), write, pwrite past the end (a
 *    hole reads as zeroes), pread, lseek SEEK_END, fstat size.
 * 2. O_APPEND writes at the end whatever the offset.
 * 3. ftruncate shorter and longer; truncate by path.
 * 4. mkdir, getdents64 lists . .. and the entries, rename over a file,
 *    unlinkat of a file and (AT_REMOVEDIR) a directory, ENOTEMPTY.
 * 5. symlink/readlink, link (st_nlink 2), an unlinked open file still reads.
 * 6. statfs reports blocks and a writable file system.
 * 7. mmap MAP_PRIVATE of a file sees its bytes; writes stay private.
 *    MAP_SHARED: stores reach read(2) and another mapping, write(2)
 *    reaches the mapping, a fork child's stores reach the parent, the data
 *    outlives the mapping; past the end of the file is SIGBUS; a writable
 *    shared mapping of a read-only descriptor is EACCES.
 * 8. /proc: MemAvailable in meminfo, self/exe names this program,
 *    sys/kernel/pid_max is at least 32768.
 * Prints one line per check and "files: all ok". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

static int failed;

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAILED: %s (errno %d)\n", what, errno);
        failed = 1;
    }
}

static char path_buf[4096];
static const char *at(const char *dir, const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}

static void basics(const char *dir) {
    int fd = open(at(dir, "a"), O_CREAT | O_EXCL | O_RDWR, 0644);
    check(fd >= 0, "create a");
    check(open(at(dir, "a"), O_CREAT | O_EXCL | O_RDWR, 0644) < 0 && errno == EEXIST, "EEXIST");
    check(write(fd, "hello", 5) == 5, "write");
    check(pwrite(fd, "end", 3, 8192) == 3, "pwrite past the end");
    char buf[16] = {0};
    check(pread(fd, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0, "pread");
    check(pread(fd, buf, 4, 100) == 4 && memcmp(buf, "\0\0\0\0", 4) == 0, "hole");
    check(lseek(fd, 0, SEEK_END) == 8195, "SEEK_END");
    struct stat st;
    check(fstat(fd, &st) == 0 && st.st_size == 8195 && S_ISREG(st.st_mode), "fstat");
    close(fd);
    printf("basics: size %ld\n", (long)st.st_size);
}

static void append(const char *dir) {
    int fd = open(at(dir, "log"), O_CREAT | O_WRONLY | O_APPEND, 0644);
    check(fd >= 0, "open append");
    check(write(fd, "one\n", 4) == 4, "append 1");
    lseek(fd, 0, SEEK_SET);
    check(write(fd, "two\n", 4) == 4, "append 2");
    close(fd);
    char buf[16] = {0};
    fd = open(at(dir, "log"), O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    check(n == 8 && strcmp(buf, "one\ntwo\n") == 0, "append content");
    printf("append: %zd bytes\n", n);
}

static void truncation(const char *dir) {
    int fd = open(at(dir, "a"), O_RDWR);
    check(ftruncate(fd, 3) == 0, "ftruncate shorter");
    struct stat st;
    fstat(fd, &st);
    long shorter = (long)st.st_size;
    check(ftruncate(fd, 10) == 0, "ftruncate longer");
    char buf[10];
    check(pread(fd, buf, 10, 0) == 10 && memcmp(buf, "hel\0\0\0\0\0\0\0", 10) == 0, "zero fill");
    close(fd);
    check(truncate(at(dir, "a"), 1) == 0, "truncate");
    stat(at(dir, "a"), &st);
    printf("truncate: %ld then %ld\n", shorter, (long)st.st_size);
}

static int count_entries(const char *dir, int *dots) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    char buf[4096];
    int n = 0;
    *dots = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got <= 0) break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                (*dots)++;
            else
                n++;
            off += d->d_reclen;
        }
    }
    close(fd);
    return n;
}

static void directories(const char *dir) {
    check(mkdir(at(dir, "d"), 0755) == 0, "mkdir");
    check(mkdir(at(dir, "d"), 0755) < 0 && errno == EEXIST, "mkdir EEXIST");
    int fd = open(at(dir, "d/x"), O_CREAT | O_WRONLY, 0600);
    close(fd);
    check(rmdir(at(dir, "d")) < 0 && errno == ENOTEMPTY, "ENOTEMPTY");
    int dots;
    int before = count_entries(dir, &dots);
    char from[4096];
    snprintf(from, sizeof from, "%s", at(dir, "d/x"));
    check(rename(from, at(dir, "log")) == 0, "rename over a file");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    check(unlinkat(dfd, "d", AT_REMOVEDIR) == 0, "unlinkat dir");
    check(unlinkat(dfd, "log", 0) == 0, "unlinkat file");
    check(unlinkat(dfd, "nothing", 0) < 0 && errno == ENOENT, "unlinkat ENOENT");
    close(dfd);
    int after = count_entries(dir, &dots);
    printf("dirs: %d entries then %d, %d dots\n", before, after, dots);
}

static void links(const char *dir) {
    check(symlink("a", at(dir, "sl")) == 0, "symlink");
    char buf[64] = {0};
    check(readlink(at(dir, "sl"), buf, sizeof buf) == 1 && buf[0] == 'a', "readlink");
    char target[4096];
    snprintf(target, sizeof target, "%s", at(dir, "a"));
    check(link(target, at(dir, "hard")) == 0, "link");
    struct stat st;
    check(stat(at(dir, "hard"), &st) == 0 && st.st_nlink == 2, "nlink 2");
    struct stat lst;
    check(lstat(at(dir, "sl"), &lst) == 0 && S_ISLNK(lst.st_mode), "lstat");
    int fd = open(at(dir, "hard"), O_RDONLY);
    unlink(at(dir, "hard"));
    unlink(at(dir, "a"));
    check(read(fd, buf, 1) == 1 && buf[0] == 'h', "unlinked file reads");
    close(fd);
    check(stat(at(dir, "sl"), &st) < 0 && errno == ENOENT, "dangling link");
    unlink(at(dir, "sl"));
    printf("links: ok\n");
}

static void fs_stats(const char *dir) {
    struct statfs s;
    check(statfs(dir, &s) == 0, "statfs");
    check(s.f_blocks > 0 && s.f_bfree <= s.f_blocks && s.f_bsize > 0, "statfs figures");
    check((s.f_flags & ST_RDONLY) == 0, "writable");
    printf("statfs: ok\n");
}

static void mapping(const char *dir) {
    int fd = open(at(dir, "m"), O_CREAT | O_RDWR, 0644);
    char page[4096];
    memset(page, 'm', sizeof page);
    check(write(fd, page, sizeof page) == 4096, "write page");
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check(p != MAP_FAILED, "mmap");
    if (p != MAP_FAILED) {
        check(p[0] == 'm' && p[4095] == 'm', "mapped bytes");
        p[0] = 'x';
        char c;
        check(pread(fd, &c, 1, 0) == 1 && c == 'm', "private write stays private");
        munmap(p, 4096);
    }
    close(fd);
    unlink(at(dir, "m"));
    printf("mmap: ok\n");
}

static void shared_mapping(const char *dir) {
    int fd = open(at(dir, "s"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    check(fd >= 0 && ftruncate(fd, 8192) == 0, "create s");
    /* Three pages over a two-page file: the third is past its end. */
    char *p = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *q = mmap(0, 8192, PROT_READ, MAP_SHARED, fd, 0);
    check(p != MAP_FAILED && q != MAP_FAILED, "mmap shared");
    if (p == MAP_FAILED || q == MAP_FAILED) return;
    char buf[8] = {0};
    memcpy(p + 4096 + 10, "store", 5);
    check(pread(fd, buf, 5, 4096 + 10) == 5 && memcmp(buf, "store", 5) == 0, "store reaches read");
    check(memcmp(q + 4096 + 10, "store", 5) == 0, "store reaches another mapping");
    check(pwrite(fd, "write", 5, 100) == 5 && memcmp(p + 100, "write", 5) == 0, "write reaches the mapping");
    pid_t child = fork();
    if (child == 0) {
        memcpy(p + 200, "child", 5);
        _exit(0);
    }
    int status = 0;
    check(waitpid(child, &status, 0) == child && WIFEXITED(status), "child");
    check(memcmp(p + 200, "child", 5) == 0, "a child's store reaches the parent");
    child = fork();
    if (child == 0) {
        p[2 * 4096] = 1; /* past the end of the file */
        _exit(0);
    }
    check(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
          "past the end is SIGBUS");
    check(msync(p, 8192, MS_SYNC) == 0, "msync");
    munmap(p, 3 * 4096);
    munmap(q, 8192);
    close(fd);
    fd = open(at(dir, "s"), O_RDONLY);
    check(pread(fd, buf, 5, 200) == 5 && memcmp(buf, "child", 5) == 0, "the data outlives the mapping");
    errno = 0;
    check(mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES,
          "EACCES for a read-only descriptor");
    close(fd);
    unlink(at(dir, "s"));
    printf("mmap shared: ok\n");
}

static void proc_files(const char *argv0) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    int avail = 0;
    while (f && fgets(line, sizeof line, f))
        avail += strncmp(line, "MemAvailable:", 13) == 0;
    if (f) fclose(f);
    check(avail == 1, "MemAvailable");
    char exe[4096] = {0};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    check(n > 0 && strstr(exe, base) != 0, "/proc/self/exe");
    f = fopen("/proc/sys/kernel/pid_max", "r");
    long pid_max = 0;
    check(f && fscanf(f, "%ld", &pid_max) == 1 && pid_max >= 32768, "pid_max");
    if (f) fclose(f);
    printf("proc: ok\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: files DIR\n");
        return 2;
    }
    basics(argv[1]);
    append(argv[1]);
    truncation(argv[1]);
    directories(argv[1]);
    links(argv[1]);
    fs_stats(argv[1]);
    mapping(argv[1]);
    shared_mapping(argv[1]);
    proc_files(argv[0]);
    printf(failed ? "files: FAILED\n" : "files: all ok\n");
    return failed;
}
