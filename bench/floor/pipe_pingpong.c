/* The floor for add_reader_pipe: the same ping-pong in C over epoll.
 *
 *   pipe_pingpong PAIRS SECONDS
 *
 * For each of PAIRS pairs, one byte bounces between two pipes: when one pipe's
 * read end is readable, read the byte and write it into the other pipe. One
 * operation is one readiness event handled (read + write). Runs for about
 * SECONDS after a short warm-up and prints one JSON object, like bench/worker.py.
 * Level-triggered epoll, one epoll_wait per iteration, as a Python loop does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
    int pairs = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    if (pairs < 1 || pairs > 4096 || seconds <= 0) {
        fprintf(stderr, "usage: pipe_pingpong PAIRS SECONDS\n");
        return 2;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    int *peer = calloc(2 * pairs * 2 + 64, sizeof(int)); /* read fd -> write fd of the other pipe */
    int maxfd = 2 * pairs * 2 + 64;
    int (*fds)[2] = calloc(2 * pairs, sizeof *fds);
    for (int i = 0; i < 2 * pairs; i++)
        if (pipe2(fds[i], O_NONBLOCK | O_CLOEXEC) < 0) die("pipe2");
    for (int p = 0; p < pairs; p++) {
        int *a = fds[2 * p], *b = fds[2 * p + 1];
        if (a[0] >= maxfd || b[0] >= maxfd) { fprintf(stderr, "fd too large\n"); return 1; }
        peer[a[0]] = b[1];
        peer[b[0]] = a[1];
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.fd = a[0];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev) < 0) die("epoll_ctl");
        ev.data.fd = b[0];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev) < 0) die("epoll_ctl");
        if (write(a[1], "x", 1) != 1) die("write");
    }
    struct epoll_event events[256];
    char buf[64];
    long long ops = 0, counted = 0, t0 = 0, c0 = 0;
    long long warm_end = ns(CLOCK_MONOTONIC) + (long long)(seconds * 0.1e9);
    long long end = 0;
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (read(fd, buf, sizeof buf) < 0 && errno != EAGAIN) die("read");
            if (write(peer[fd], "x", 1) != 1) die("write");
        }
        ops += n;
        if ((ops & 0xff) < (unsigned)n) { /* about every 256 events */
            long long now = ns(CLOCK_MONOTONIC);
            if (!t0 && now >= warm_end) {
                t0 = now;
                c0 = ns(CLOCK_THREAD_CPUTIME_ID);
                counted = ops;
                end = now + (long long)(seconds * 1e9);
            } else if (t0 && now >= end) {
                long long c1 = ns(CLOCK_THREAD_CPUTIME_ID);
                long long done = ops - counted;
                printf("{\"ok\": true, \"impl\": \"C floor (epoll)\", \"ops\": %lld, "
                       "\"count\": %lld, \"wall_ns\": %lld, \"loop_cpu_ns\": %lld, "
                       "\"process_cpu_ns\": %lld, \"ops_per_s\": %.1f, \"loop_stats\": null}\n",
                       done, done, now - t0, c1 - c0, c1 - c0, done / ((now - t0) / 1e9));
                return 0;
            }
        }
    }
}
