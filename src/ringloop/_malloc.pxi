# glibc malloc's heap trimming, set once per process when the first loop is made.
#
# Why: a server that moves large messages through asyncio's streams frees blocks of
# about 100 KiB at the top of the heap on every message (the StreamReader's
# bytearray, the bytes objects it copies out). glibc's default trim threshold is
# 128 KiB, so each free shrinks the heap with brk(2) and the next message faults the
# same pages back in: 25-29 page faults and about one brk per 100 KiB streams echo,
# half the server's CPU on this machine, on every loop (BENCHMARKS.md, "Heap
# trimming"). Protocol and sock_* servers do not free that way and are unaffected.
#
# How: glibc adjusts its thresholds itself. When a block it served with mmap(2) is
# freed, its mmap threshold rises to that block's size and its trim threshold to
# twice that (mallopt(3), M_MMAP_THRESHOLD: "dynamic"). Freeing one 4 MiB block
# therefore leaves the process as a program that had once handled a 4 MiB block:
# blocks under 4 MiB come from the heap, and up to 8 MiB of free heap top is kept.
# The adjustment stays dynamic, and glibc makes none once the user has set any of
# these (mallopt, MALLOC_*_ or GLIBC_TUNABLES), so an explicit choice wins.
# RINGLOOP_TUNE_MALLOC=0 leaves malloc alone.

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    #define RL_MALLOC_THRESHOLD_BLOCK (4u << 20)
    static int rl_malloc_tuned = -1;  /* -1: not decided yet; 0: left alone; 1: done */

    static int rl_tune_malloc(void) {
        if (rl_malloc_tuned < 0) {
            const char *opt = getenv("RINGLOOP_TUNE_MALLOC");
            rl_malloc_tuned = 0;
    #ifdef __GLIBC__
            if (opt == NULL || strcmp(opt, "0") != 0) {
                /* volatile: a malloc whose result is unused may be optimised away. */
                void *volatile block = malloc(RL_MALLOC_THRESHOLD_BLOCK);
                free(block);
                rl_malloc_tuned = 1;
            }
    #else
            (void)opt;
    #endif
        }
        return rl_malloc_tuned;
    }
    """
    int rl_tune_malloc()
