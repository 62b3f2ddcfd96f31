/*
 * Linux doing the same page-fault work as the Möbius guest workloads, on the
 * same machine, so BENCHMARKS.md can put the numbers side by side.
 *
 *   linux_faults demand-zero PAGES      first touch (write) of PAGES fresh pages
 *   linux_faults read-then-write PAGES  read every page, then write every page
 *   linux_faults areas AREAS PAGES      AREAS separate mappings present, then
 *                                       demand-zero faults on PAGES fresh pages
 *
 * Prints one line: "<case> pages=<n> areas=<n> ns_per_fault=<x> faults=<minflt>"
 * (faults from getrusage, so a reader can check each touch was one fault).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile uint8_t *map_pages(size_t pages)
{
    void *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    /* Keep Linux from backing the range with transparent huge pages: we
     * measure 4 KiB faults, as the guest takes. */
    madvise(p, pages * 4096, MADV_NOHUGEPAGE);
    return p;
}

/* Touch every page once; returns ns per touch and the faults it took. */
static double touch(volatile uint8_t *p, size_t pages, int write, long *faults)
{
    long f0 = minflt();
    double t0 = now_ns();
    for (size_t i = 0; i < pages; i++) {
        if (write)
            p[i * 4096] = 1;
        else
            (void)p[i * 4096];
    }
    double t1 = now_ns();
    *faults = minflt() - f0;
    return (t1 - t0) / (double)pages;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s demand-zero|read-then-write PAGES | areas AREAS PAGES\n", argv[0]);
        return 2;
    }
    const char *which = argv[1];
    long faults = 0;
    if (strcmp(which, "demand-zero") == 0) {
        size_t pages = strtoul(argv[2], NULL, 0);
        double ns = touch(map_pages(pages), pages, 1, &faults);
        printf("demand-zero pages=%zu areas=1 ns_per_fault=%.0f faults=%ld\n", pages, ns, faults);
    } else if (strcmp(which, "read-then-write") == 0) {
        size_t pages = strtoul(argv[2], NULL, 0);
        volatile uint8_t *p = map_pages(pages);
        long rf, wf;
        double rns = touch(p, pages, 0, &rf);
        double wns = touch(p, pages, 1, &wf);
        /* Linux maps the shared zero page on a read and copies on the write. */
        printf("read pages=%zu areas=1 ns_per_fault=%.0f faults=%ld\n", pages, rns, rf);
        printf("upgrade pages=%zu areas=1 ns_per_fault=%.0f faults=%ld\n", pages, wns, wf);
    } else if (strcmp(which, "areas") == 0 && argc >= 4) {
        size_t areas = strtoul(argv[2], NULL, 0);
        size_t pages = strtoul(argv[3], NULL, 0);
        /* vm.max_map_count caps the VMAs a process may have (65530 by
         * default); stay below it and report how many areas we really got. */
        FILE *mc = fopen("/proc/sys/vm/max_map_count", "r");
        size_t max_maps = 65530;
        if (mc) {
            if (fscanf(mc, "%zu", &max_maps) != 1)
                max_maps = 65530;
            fclose(mc);
        }
        if (areas + 256 > max_maps)
            areas = max_maps - 256;
        /* One-page mappings with alternating protection so Linux cannot merge
         * them into one VMA. */
        for (size_t i = 0; i < areas; i++) {
            void *a = mmap(NULL, 4096, (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (a == MAP_FAILED) {
                areas = i;
                break;
            }
        }
        double ns = touch(map_pages(pages), pages, 1, &faults);
        printf("areas pages=%zu areas=%zu ns_per_fault=%.0f faults=%ld\n", pages, areas, ns, faults);
    } else {
        fprintf(stderr, "unknown case %s\n", which);
        return 2;
    }
    return 0;
}
