/* The load generator of the UDP echo benchmark (the `udp` suite, bench/udp/): UDP clients in C
 * over epoll.
 *
 *   udp_loadgen PORT SOCKETS DEPTH SIZE WARMUP DURATION SERVER_PID
 *
 * SOCKETS UDP sockets, each connected to 127.0.0.1:PORT, each keeping DEPTH
 * datagrams of SIZE bytes in flight: a datagram that comes back is checked (its
 * socket, sequence number and every byte) and answered with the next one. UDP may
 * drop a datagram (a full receive queue): a socket that hears nothing for LOSS_MS
 * counts what it had in flight as lost and starts DEPTH new ones; echoes of the
 * abandoned ones are counted as late and otherwise ignored.
 *
 * After WARMUP seconds it measures for DURATION seconds, then prints one JSON
 * object: datagrams echoed in the window, lost, late and bad ones, and over exactly
 * the window the CPU time of the server (sum of /proc/PID/task/TID/schedstat over
 * its threads: user + system ns, and the time it was runnable but kept off its CPU;
 * and its user-mode time alone, from /proc/PID/stat)
 * and the same for this process, so a reader can see the generator was not the
 * bottleneck. Exits 1 with {"ok": false, "error": ...} when it cannot start. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOSS_MS 100
#define MAX_SIZE 65000
#define HEADER 12 /* u32 socket index, u64 sequence number */

struct client {
    int fd;
    uint64_t next_seq;     /* sequence number of the next datagram sent */
    uint64_t first_live;   /* echoes below this were abandoned as lost */
    int in_flight;
    long long last_heard;  /* ns */
};

static struct client *clients;
static int nclients, depth;
static size_t size;
static long long counted, lost, late, bad, send_errors;
static char first_error[160];

static long long now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what) {
    printf("{\"ok\": false, \"error\": \"%s: %s\"}\n", what, strerror(errno));
    exit(1);
}

/* User-mode CPU time (ns) of a process, all threads: utime of /proc/PID/stat, in
 * clock ticks (sampled by the kernel's tick, so a share of the exact total above). */
static long long user_ns_of(int pid) {
    char path[64], line[1024], *p;
    unsigned long long utime = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fgets(line, sizeof line, f) && (p = strrchr(line, ')')))
        /* after "(comm)": state and fields 4..13, then utime (field 14) */
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu", &utime);
    fclose(f);
    return (long long)(utime * (1000000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

/* CPU time and run delay (ns) of a process: the sum over its threads. */
static void usage_of(int pid, long long *cpu, long long *wait) {
    char path[300];
    struct dirent *e;
    DIR *d;
    *cpu = *wait = 0;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    if (!(d = opendir(path)))
        return;
    while ((e = readdir(d))) {
        long long c, w;
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%lld %lld", &c, &w) == 2) {
                *cpu += c;
                *wait += w;
            }
            fclose(f);
        }
    }
    closedir(d);
}

/* Byte i of datagram `seq` of socket `idx`: a cheap pattern every datagram has its own. */
static inline unsigned char pat(uint32_t idx, uint64_t seq, size_t i) {
    return (unsigned char)(seq * 131 + idx * 7 + i);
}

static void send_one(uint32_t idx) {
    static unsigned char buf[MAX_SIZE];
    struct client *c = &clients[idx];
    uint64_t seq = c->next_seq++;
    memcpy(buf, &idx, 4);
    memcpy(buf + 4, &seq, 8);
    for (size_t i = HEADER; i < size; i++)
        buf[i] = pat(idx, seq, i);
    if (send(c->fd, buf, size, 0) != (ssize_t)size) {
        /* ECONNREFUSED (the server is gone) or a full buffer: counted, not fatal */
        send_errors++;
        if (!first_error[0])
            snprintf(first_error, sizeof first_error, "send: %s", strerror(errno));
        return;
    }
    c->in_flight++;
}

static void on_readable(uint32_t idx, long long now) {
    static unsigned char buf[MAX_SIZE + 1];
    struct client *c = &clients[idx];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        uint32_t got_idx;
        uint64_t seq;
        if (n < 0)
            return;
        if ((size_t)n != size) {
            bad++;
            continue;
        }
        memcpy(&got_idx, buf, 4);
        memcpy(&seq, buf + 4, 8);
        int ok = got_idx == idx && seq < c->next_seq;
        for (size_t i = HEADER; ok && i < size; i++)
            ok = buf[i] == pat(idx, seq, i);
        if (!ok) {
            bad++;
            continue;
        }
        if (seq < c->first_live) {
            late++;
            continue;
        }
        c->in_flight--;
        c->last_heard = now;
        counted++;
        send_one(idx);
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s PORT SOCKETS DEPTH SIZE WARMUP DURATION SERVER_PID\n",
                argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    nclients = atoi(argv[2]);
    depth = atoi(argv[3]);
    size = (size_t)atol(argv[4]);
    double warmup = atof(argv[5]), duration = atof(argv[6]);
    int server_pid = atoi(argv[7]);
    if (size < HEADER || size > MAX_SIZE || nclients < 1 || depth < 1) {
        printf("{\"ok\": false, \"error\": \"bad arguments\"}\n");
        return 1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ep = epoll_create1(0);
    if (ep < 0)
        fail("epoll_create1");
    clients = calloc(nclients, sizeof *clients);
    long long start = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < nclients; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
            fail("socket/connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            fail("epoll_ctl");
        clients[i].fd = fd;
        clients[i].last_heard = start;
    }
    for (int i = 0; i < nclients; i++)
        for (int k = 0; k < depth; k++)
            send_one(i);

    long long window_start = start + (long long)(warmup * 1e9);
    long long window_end = window_start + (long long)(duration * 1e9);
    long long s_cpu0 = 0, s_wait0 = 0, s_cpu1, s_wait1, my_cpu0 = 0, my_wait0 = 0;
    long long s_user0 = 0, s_user1;
    long long my_cpu1, my_wait1, counted0 = 0, lost0 = 0, late0 = 0;
    int measuring = 0;
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, 10);
        long long now = now_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < n; i++)
            on_readable(events[i].data.u32, now);
        for (int i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            if (now - c->last_heard > LOSS_MS * 1000000LL) {
                lost += c->in_flight;
                c->in_flight = 0;
                c->first_live = c->next_seq;
                c->last_heard = now;
                for (int k = 0; k < depth; k++)
                    send_one(i);
            }
        }
        if (!measuring && now >= window_start) {
            measuring = 1;
            usage_of(server_pid, &s_cpu0, &s_wait0);
            s_user0 = user_ns_of(server_pid);
            usage_of(getpid(), &my_cpu0, &my_wait0);
            counted0 = counted;
            lost0 = lost;
            late0 = late;
            /* measure for DURATION from here, even when the warm-up ran late */
            window_start = now;
            window_end = now + (long long)(duration * 1e9);
        }
        if (measuring && now >= window_end) {
            usage_of(server_pid, &s_cpu1, &s_wait1);
            s_user1 = user_ns_of(server_pid);
            usage_of(getpid(), &my_cpu1, &my_wait1);
            printf("{\"ok\": true, \"datagrams\": %lld, \"lost\": %lld, \"late\": %lld, "
                   "\"bad\": %lld, \"send_errors\": %lld, \"first_error\": \"%s\", "
                   "\"window_ns\": %lld, \"server_cpu_ns\": %lld, \"server_wait_ns\": %lld, "
                   "\"server_user_ns\": %lld, "
                   "\"loadgen_cpu_ns\": %lld, \"loadgen_wait_ns\": %lld}\n",
                   counted - counted0, lost - lost0, late - late0, bad, send_errors,
                   first_error, now - window_start, s_cpu1 - s_cpu0, s_wait1 - s_wait0,
                   s_user1 - s_user0,
                   my_cpu1 - my_cpu0, my_wait1 - my_wait0);
            return 0;
        }
    }
}
