/* memcpy's cost by the distance from source to destination modulo 4 KiB.
 *
 *     memcpy_alias [SIZE]      (default 102400 bytes)
 *
 * Copies SIZE bytes between two buffers 1 MiB apart plus an offset, for every offset
 * 0..4095 in steps of 8, and prints the fastest of 3 x 50 copies per offset, and each
 * offset that costs more than 3x the median. On this machine (AMD EPYC, glibc 2.36,
 * memcpy by rep movsb from 2 KiB up) offsets 8-24 cost about 15x the others for
 * 100 KiB copies. ringloop's bulk reads keep their block's size so that the bytes
 * they hand out do not sit at that distance from the buffer a consumer copies them
 * into next (rl_bytes_trim in src/ringloop/_transports/sockdefs.pxi).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPAN (1L << 20)
#define STEPS (4096 / 8)

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 102400;
    char *base = aligned_alloc(4096, 2 * SPAN + size + 8192);
    double cost[STEPS], sorted[STEPS], median;
    if (base == NULL || size == 0 || size > SPAN) {
        fprintf(stderr, "usage: memcpy_alias [SIZE up to %ld]\n", SPAN);
        return 2;
    }
    memset(base, 1, 2 * SPAN + size + 8192);
    for (int k = 0; k < STEPS; k++) {
        char *src = base + 48, *dst = base + SPAN + 48 + 8 * k;
        cost[k] = 1e18;
        for (int round = 0; round < 3; round++) {
            double start = now_ns();
            for (int i = 0; i < 50; i++) {
                memcpy(dst, src, size);
                __asm__ volatile("" : : "r"(dst) : "memory");  /* keep every copy */
            }
            double each = (now_ns() - start) / 50;
            if (each < cost[k])
                cost[k] = each;
        }
    }
    memcpy(sorted, cost, sizeof(cost));
    qsort(sorted, STEPS, sizeof(double), by_value);
    median = sorted[STEPS / 2];
    printf("%zu-byte memcpy: median %.0f ns over offsets 0..4088\n", size, median);
    for (int k = 0; k < STEPS; k++)
        if (cost[k] > 3 * median)
            printf("  (dst - src) mod 4096 = %4d: %.0f ns (%.1fx)\n", 8 * k, cost[k],
                   cost[k] / median);
    return 0;
}
