/* The load generator of the TLS echo benchmark (the `tls` suite, bench/tls/): TLS clients in C
 * (OpenSSL, non-blocking sockets, epoll).
 *
 *   tls_loadgen PORT CONNECTIONS SIZE WARMUP DURATION SERVER_PID
 *
 * CONNECTIONS TLS connections to 127.0.0.1:PORT (handshakes in the warm-up, no
 * certificate check: the server's certificate is the benchmark's own), each with one
 * message of SIZE bytes in flight: it writes the message, reads the echo, checks every
 * byte against what it sent (each message starts with its connection's number and its
 * own sequence number; the rest is the connection's pseudo-random bytes), and sends the
 * next. Checking is a memcmp per chunk, so the generator's own cost is little more
 * than OpenSSL's (it must not be the bottleneck).
 *
 * After WARMUP seconds it measures for DURATION seconds, then prints one JSON object:
 * messages echoed in the window (and before it, in the warm-up), echoed chunks that differed from what was sent ("bad"),
 * and over exactly the window the CPU time
 * of the server (sum of /proc/PID/task/TID/schedstat over its threads: user + system
 * ns, and the time it was runnable but kept off its CPU) and the same for this process,
 * so a reader can see the generator was not the bottleneck. Exits 1 with
 * {"ok": false, "error": ...} when it cannot start or a connection fails. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

struct conn {
    int fd;
    SSL *ssl;
    int handshaking;
    unsigned events;        /* epoll interest now registered */
    uint64_t seq;           /* message in flight */
    size_t sent, got;
    unsigned char *msg;     /* its bytes */
};

static struct conn *conns;
static int nconns;
static size_t size;
static long long counted, bad;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what, const char *detail) {
    printf("{\"ok\": false, \"error\": \"%s: %s\"}\n", what, detail);
    exit(1);
}

static void fail_ssl(const char *what) {
    char buf[200];
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%s", strerror(errno));
    fail(what, buf);
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

/* Message c->seq of connection idx: header (connection, sequence number), then the
 * connection's fixed pseudo-random bytes. */
static void new_message(struct conn *c, int idx) {
    uint64_t header[2] = {(uint64_t)idx, c->seq};
    memcpy(c->msg, header, size < sizeof header ? size : sizeof header);
    c->sent = c->got = 0;
}

static void set_interest(int ep, struct conn *c, int idx, unsigned events) {
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fail("epoll_ctl", strerror(errno));
    c->events = events;
}

/* Advance connection idx as far as it goes without blocking. */
static void drive(int ep, int idx) {
    static unsigned char rbuf[READ_CHUNK];
    struct conn *c = &conns[idx];
    unsigned want = EPOLLIN;
    if (c->handshaking) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_READ) {
                set_interest(ep, c, idx, EPOLLIN);
                return;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                set_interest(ep, c, idx, EPOLLIN | EPOLLOUT);
                return;
            }
            fail_ssl("handshake");
        }
        c->handshaking = 0;
    }
    for (;;) {
        int progress = 0;
        while (c->sent < size) {
            int w = SSL_write(c->ssl, c->msg + c->sent, (int)(size - c->sent));
            if (w > 0) {
                c->sent += (size_t)w;
                progress = 1;
                continue;
            }
            int err = SSL_get_error(c->ssl, w);
            if (err == SSL_ERROR_WANT_WRITE)
                want |= EPOLLOUT;
            else if (err != SSL_ERROR_WANT_READ)
                fail_ssl("SSL_write");
            break;
        }
        for (;;) {
            int r = SSL_read(c->ssl, rbuf, sizeof rbuf);
            if (r > 0) {
                if (c->got + (size_t)r > size)
                    fail("protocol", "echo longer than the message");
                if (memcmp(rbuf, c->msg + c->got, (size_t)r) != 0)
                    bad++;
                c->got += (size_t)r;
                progress = 1;
                if (c->got == size) {
                    counted++;
                    c->seq++;
                    new_message(c, idx);
                    break;  /* write the next message first */
                }
                continue;
            }
            int err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_WRITE)
                want |= EPOLLOUT;
            else if (err != SSL_ERROR_WANT_READ)
                fail_ssl("SSL_read");
            break;
        }
        if (!progress)
            break;
    }
    set_interest(ep, c, idx, want);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT CONNECTIONS SIZE WARMUP DURATION SERVER_PID\n",
                argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    nconns = atoi(argv[2]);
    size = (size_t)atol(argv[3]);
    double warmup = atof(argv[4]), duration = atof(argv[5]);
    int server_pid = atoi(argv[6]);
    if (size < 1 || nconns < 1) {
        printf("{\"ok\": false, \"error\": \"bad arguments\"}\n");
        return 1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        fail_ssl("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* SSL_write may take part of a buffer, and be retried with another pointer. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ep = epoll_create1(0);
    if (ep < 0)
        fail("epoll_create1", strerror(errno));
    conns = calloc(nconns, sizeof *conns);
    long long start = now_ns();
    for (int i = 0; i < nconns; i++) {
        int one = 1;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
            fail("socket/connect", strerror(errno));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
            fail("fcntl", strerror(errno));
        struct conn *c = &conns[i];
        c->fd = fd;
        c->handshaking = 1;
        c->msg = malloc(size);
        for (size_t k = 0; k < size; k++)
            c->msg[k] = (unsigned char)(rand() >> 7);
        new_message(c, i);
        if (!(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, fd))
            fail_ssl("SSL_new");
        SSL_set_connect_state(c->ssl);
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            fail("epoll_ctl", strerror(errno));
        drive(ep, i);
    }

    long long window_start = start + (long long)(warmup * 1e9);
    long long window_end = window_start + (long long)(duration * 1e9);
    long long s_cpu0 = 0, s_wait0 = 0, s_cpu1, s_wait1, my_cpu0 = 0, my_wait0 = 0;
    long long my_cpu1, my_wait1, counted0 = 0;
    int measuring = 0;
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, 10);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait", strerror(errno));
        for (int i = 0; i < n; i++)
            drive(ep, (int)events[i].data.u32);
        long long now = now_ns();
        if (!measuring && now >= window_start) {
            for (int i = 0; i < nconns; i++)
                if (conns[i].handshaking)
                    fail("warm-up", "a handshake did not finish in the warm-up");
            measuring = 1;
            usage_of(server_pid, &s_cpu0, &s_wait0);
            usage_of(getpid(), &my_cpu0, &my_wait0);
            counted0 = counted;
            /* measure for DURATION from here, even when the warm-up ran late */
            window_start = now;
            window_end = now + (long long)(duration * 1e9);
        }
        if (measuring && now >= window_end) {
            usage_of(server_pid, &s_cpu1, &s_wait1);
            usage_of(getpid(), &my_cpu1, &my_wait1);
            printf("{\"ok\": true, \"messages\": %lld, \"warmup_messages\": %lld, "
                   "\"bad\": %lld, \"window_ns\": %lld, "
                   "\"server_cpu_ns\": %lld, \"server_wait_ns\": %lld, "
                   "\"loadgen_cpu_ns\": %lld, \"loadgen_wait_ns\": %lld, \"cipher\": \"%s\", "
                   "\"version\": \"%s\"}\n",
                   counted - counted0, counted0, bad, now - window_start, s_cpu1 - s_cpu0,
                   s_wait1 - s_wait0, my_cpu1 - my_cpu0, my_wait1 - my_wait0,
                   SSL_get_cipher(conns[0].ssl), SSL_get_version(conns[0].ssl));
            return 0;
        }
    }
}
