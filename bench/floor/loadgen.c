/* The load generator of the net suite: TCP echo clients in C over epoll.
 *
 *   loadgen echo  PORT CONNS SIZE WARMUP DURATION [SERVER_PID]
 *   loadgen churn PORT CONNS SIZE WARMUP DURATION [SERVER_PID]
 *
 * echo:  CONNS connections to 127.0.0.1:PORT are opened first (not timed).
 *        Then each keeps one message in flight: write SIZE bytes, read until
 *        all SIZE bytes came back, compare them with what was sent, repeat.
 *        One counted operation is one message echoed in full.
 * churn: CONNS connections at a time, each: connect, write SIZE bytes, read
 *        them back and compare, shutdown(SHUT_WR), wait for the server's EOF,
 *        close, and start the next one. One operation is one connection.
 *
 * Every message is a different slice of a pseudo-random byte stream, so the
 * comparison catches short, long, stale, reordered or corrupted echoes.
 *
 * After WARMUP seconds it measures for DURATION seconds, then prints one JSON
 * object: messages and bytes completed in the window, errors, and over exactly
 * that window the CPU time of the server process (SERVER_PID: the sum over its
 * threads of /proc/PID/task/TID/schedstat, i.e. user + system time in ns, plus
 * the tick-based utime/stime split of /proc/PID/stat) and the time it waited
 * for a CPU while runnable (schedstat's run_delay: another process had its CPU),
 * and the same two figures for the load generator itself, so the harness can
 * show the load generator was not the bottleneck. Exits 1 with
 * {"ok": false, "error": ...} when it cannot set up or the server stalls.
 * One thread, non-blocking sockets, level-triggered epoll, TCP_NODELAY. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH (256 * 1024)
#define MAX_EVENTS 1024
#define MAX_CHURN_ERRORS 100

enum { CONNECTING, ACTIVE, WAIT_EOF, DEAD };

struct conn {
    int fd, state, id;
    unsigned events;       /* what epoll watches now */
    long long msgno;
    const char *msg;       /* the message in flight */
    size_t sent, recvd;
};

static int ep, churn, server_pid;
static size_t size;
static struct sockaddr_in addr;
static char *pattern, scratch[SCRATCH];
static long long now, last_progress;
static int measuring;
static long long messages, bytes, errors, connects_failed, closed;
static char first_error[200];

static long long ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("{\"ok\": false, \"error\": \"%s\"}\n", msg);
    exit(1);
}

static void error(struct conn *c, const char *what, int err) {
    errors++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "connection %d: %s%s%s", c->id, what,
                 err ? ": " : "", err ? strerror(err) : "");
}

/* ---- CPU time of a process, from /proc ---- */

struct usage { long long cpu_ns, wait_ns, utime, stime; };

static void schedstat(const char *path, struct usage *u) {
    FILE *f = fopen(path, "r");
    long long cpu, wait;
    if (!f) return;
    if (fscanf(f, "%lld %lld", &cpu, &wait) == 2) {
        u->cpu_ns += cpu;
        u->wait_ns += wait;
    }
    fclose(f);
}

static struct usage usage_of(int pid) {
    struct usage u = {0, 0, -1, -1};
    char path[320];
    if (pid == 0) { /* this process: one thread */
        schedstat("/proc/self/schedstat", &u);
        u.cpu_ns = ns(CLOCK_PROCESS_CPUTIME_ID);
        return u;
    }
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return u;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
            schedstat(path, &u);
        }
    closedir(d);
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        char *p = strrchr(buf, ')'); /* fields after the command name; utime is field 14 */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
                        &u.utime, &u.stime) != 2)
            u.utime = u.stime = -1;
        fclose(f);
    }
    return u;
}

/* ---- connections ---- */

static void watch(struct conn *c, unsigned events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

static void close_conn(struct conn *c) {
    close(c->fd);
    c->fd = -1;
    c->state = DEAD;
    closed++;
}

static void open_conn(struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CONNECTING;
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        int err = errno;
        if (!churn) fail("connect: %s", strerror(err));
        connects_failed++;
        error(c, "connect", err);
        close_conn(c);
    }
}

/* Churn: open the slot's next connection (errors are counted, up to a limit). */
static void open_slot(struct conn *c) {
    do {
        if (errors > MAX_CHURN_ERRORS)
            fail("more than %d errors; first: %s", MAX_CHURN_ERRORS, first_error);
        open_conn(c);
    } while (c->state == DEAD);
}

/* Write the rest of the message; watch EPOLLOUT only while some is left. */
static void send_more(struct conn *c) {
    while (c->sent < size) {
        ssize_t n = write(c->fd, c->msg + c->sent, size - c->sent);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            error(c, "write", errno);
            close_conn(c);
            return;
        }
        c->sent += n;
    }
    watch(c, c->sent < size ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void start_message(struct conn *c) {
    c->msgno++;
    c->msg = pattern + (unsigned long long)(c->id * 7919LL + c->msgno * 104729LL) % 251;
    c->sent = c->recvd = 0;
    c->state = ACTIVE;
    send_more(c);
}

static void done_one(void) {
    last_progress = now;
    if (measuring) {
        messages++;
        bytes += size;
    }
}

static void on_connected(struct conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        if (!churn) fail("connect: %s", strerror(err));
        connects_failed++;
        error(c, "connect", err);
        close_conn(c);
        return;
    }
    if (churn) start_message(c);
    else {
        c->state = ACTIVE;
        watch(c, EPOLLIN);
    }
}

static void on_readable(struct conn *c) {
    for (;;) {
        size_t want = c->state == WAIT_EOF ? 1 : size - c->recvd;
        ssize_t n = read(c->fd, scratch, want < SCRATCH ? want : SCRATCH);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            error(c, "read", errno);
            close_conn(c);
            return;
        }
        if (c->state == WAIT_EOF) {
            if (n > 0) error(c, "bytes after the echo", 0);
            close_conn(c);
            if (n == 0) done_one();
            return;
        }
        if (n == 0) {
            error(c, "server closed the connection", 0);
            close_conn(c);
            return;
        }
        if (c->recvd + n > c->sent || memcmp(scratch, c->msg + c->recvd, n) != 0) {
            error(c, "echo differs from the message sent", 0);
            close_conn(c);
            return;
        }
        c->recvd += n;
        if (c->recvd < size) continue;
        if (churn) {
            shutdown(c->fd, SHUT_WR);
            c->state = WAIT_EOF;
            watch(c, EPOLLIN);
        } else {
            done_one();
            start_message(c);
        }
        return;
    }
}

int main(int argc, char **argv) {
    if (argc < 7 || (strcmp(argv[1], "echo") && strcmp(argv[1], "churn"))) {
        fprintf(stderr, "usage: loadgen echo|churn PORT CONNS SIZE WARMUP DURATION [SERVER_PID]\n");
        return 2;
    }
    churn = strcmp(argv[1], "churn") == 0;
    int port = atoi(argv[2]), nconns = atoi(argv[3]);
    size = strtoul(argv[4], NULL, 10);
    double warmup = atof(argv[5]), duration = atof(argv[6]);
    server_pid = argc > 7 ? atoi(argv[7]) : 0;
    if (port <= 0 || nconns < 1 || size < 1 || duration <= 0 || warmup < 0)
        fail("bad arguments");
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    pattern = malloc(size + 256);
    unsigned long long x = 0x9E3779B97F4A7C15ULL; /* xorshift64 */
    for (size_t i = 0; i < size + 256; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        pattern[i] = (char)(x >> 56);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) fail("epoll_create1: %s", strerror(errno));
    struct conn *conns = calloc(nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) conns[i].id = i;

    /* Echo: open every connection before the clock starts. */
    long long t_setup = ns(CLOCK_MONOTONIC);
    now = t_setup;
    for (int i = 0; i < nconns; i++) {
        if (churn) open_slot(&conns[i]);
        else open_conn(&conns[i]);
    }
    struct epoll_event events[MAX_EVENTS];
    if (!churn) {
        int pending = nconns;
        while (pending > 0) {
            int n = epoll_wait(ep, events, MAX_EVENTS, 100);
            if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
            for (int i = 0; i < n; i++) {
                struct conn *c = events[i].data.ptr;
                if (c->state == CONNECTING) {
                    on_connected(c);
                    pending--;
                }
            }
            if (ns(CLOCK_MONOTONIC) - t_setup > 30000000000LL)
                fail("%d of %d connections not established after 30 s", pending, nconns);
        }
        for (int i = 0; i < nconns; i++) start_message(&conns[i]);
    }
    long long t_start = ns(CLOCK_MONOTONIC);
    long long t0 = t_start + (long long)(warmup * 1e9), t1 = t0 + (long long)(duration * 1e9);
    long long stall = (long long)((duration > 5 ? duration : 5) * 1e9);
    struct usage srv0 = {0}, me0 = {0}, srv1, me1;
    now = last_progress = t_start;

    for (;;) {
        long long until = (measuring ? t1 : t0) - now;
        int timeout = until > 100000000 ? 100 : (int)(until / 1000000) + 1;
        int n = epoll_wait(ep, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        now = ns(CLOCK_MONOTONIC);
        if (!measuring && now >= t0) {
            srv0 = usage_of(server_pid);
            me0 = usage_of(0);
            t0 = now;
            t1 = t0 + (long long)(duration * 1e9);
            measuring = 1;
            messages = bytes = 0;
        } else if (measuring && now >= t1) {
            srv1 = usage_of(server_pid);
            me1 = usage_of(0);
            t1 = now;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->state == DEAD) continue;
            if (c->state == CONNECTING) on_connected(c);
            else {
                if ((events[i].events & EPOLLOUT) && c->sent < size) send_more(c);
                if (c->state != DEAD && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    on_readable(c);
            }
            if (churn && c->state == DEAD) open_slot(c); /* the slot's next connection */
        }
        if (now - last_progress > stall) {
            int st[DEAD + 1] = {0};
            for (int i = 0; i < nconns; i++) st[conns[i].state]++;
            fail("stalled: nothing completed for %.0f s; %d connecting, %d waiting for an echo, "
                 "%d waiting for the server to close (%lld errors%s%s)", stall / 1e9,
                 st[CONNECTING], st[ACTIVE], st[WAIT_EOF], errors,
                 first_error[0] ? "; first: " : "", first_error);
        }
        if (!churn && closed == nconns) fail("every connection failed; first: %s", first_error);
    }
    int state_count[DEAD + 1] = {0};
    for (int i = 0; i < nconns; i++) state_count[conns[i].state]++;
    int has_srv = server_pid && srv0.utime >= 0 && srv1.utime >= 0;
    printf("{\"ok\": true, \"mode\": \"%s\", \"conns\": %d, \"size\": %zu, "
           "\"messages\": %lld, \"bytes\": %lld, \"errors\": %lld, \"first_error\": \"%s\", "
           "\"connect_errors\": %lld, \"window_ns\": %lld, \"setup_ns\": %lld, "
           "\"at_end\": {\"connecting\": %d, \"waiting_echo\": %d, \"waiting_close\": %d}, ",
           churn ? "churn" : "echo", nconns, size, messages, bytes, errors, first_error,
           connects_failed, t1 - t0, t_start - t_setup, state_count[CONNECTING],
           state_count[ACTIVE], state_count[WAIT_EOF]);
    if (has_srv)
        printf("\"server_cpu_ns\": %lld, \"server_wait_ns\": %lld, \"server_utime_ticks\": %lld, "
               "\"server_stime_ticks\": %lld, ", srv1.cpu_ns - srv0.cpu_ns,
               srv1.wait_ns - srv0.wait_ns, srv1.utime - srv0.utime, srv1.stime - srv0.stime);
    printf("\"loadgen_cpu_ns\": %lld, \"loadgen_wait_ns\": %lld}\n", me1.cpu_ns - me0.cpu_ns,
           me1.wait_ns - me0.wait_ns);
    return 0;
}
