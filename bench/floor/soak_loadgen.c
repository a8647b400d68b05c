/* The load generator of the soak (python -m ringloop soak): checksummed echo traffic
 * in C over epoll, against a server's four endpoints at once.
 *
 *   soak_loadgen STREAM_PORT PROTOCOL_PORT TLS_PORT UDP_PORT CONNS UDP_SOCKETS DEPTH DURATION [DRAIN]
 *
 * CONNS connections to each TCP endpoint of 127.0.0.1 (plain streams, plain
 * Protocol, TLS) and UDP_SOCKETS connected UDP sockets, each keeping DEPTH messages
 * in flight; an endpoint whose port is 0 gets none. A message is a 24-byte header -- magic, total length, stream id,
 * CRC-32 of the payload, sequence number (little-endian) -- then a payload of
 * 1 byte to 256 KiB (UDP: to 8 KiB) cut from a fixed pseudo-random pattern at a
 * place that depends on the stream and sequence, so no two neighbours are alike.
 * Every echoed byte is compared with what was sent: a message whose header names
 * an earlier sequence number is duplicated, one skipped over is lost, any other
 * difference is corrupted. Stream connections are not forever: after a random
 * number of messages a connection drains what it has in flight, half-closes
 * (TLS: close_notify, then shutdown(SHUT_WR)), expects the server's EOF and
 * nothing else, and is replaced by a new one.
 *
 * Each second it prints one JSON line of progress (messages verified so far);
 * after DURATION seconds, or on SIGUSR1 if that comes first, it stops sending, waits up to DRAIN seconds (default 60)
 * for what is in flight (anything still missing then is lost), and prints one final JSON object:
 * by endpoint, messages and bytes sent and verified, lost, duplicated, corrupted,
 * connection errors (a reset, an early EOF, a failed handshake: the load's
 * connections get no fault injected, so any is a failure), connections opened and
 * closed cleanly, and the latency of a message (first byte sent to last byte
 * verified) at p50/p99/max in microseconds. For UDP, the kernel's own drop counts
 * of this process's sockets (/proc/net/udp) are reported beside "lost".
 * A failure to set up exits 1 with {"ok": false, "error": ...}. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x4b534c52u /* "RLSK" */
#define HEADER 24
#define MAX_PAYLOAD (256 * 1024)
#define MAX_UDP_PAYLOAD (8 * 1024)
#define PATTERN_SIZE (MAX_PAYLOAD + 65536)
#define SCRATCH (256 * 1024)
#define MAX_DEPTH 64
#define HIST_BUCKETS (64 * 8)

enum endpoint { STREAM, PROTOCOL, TLS, UDP, NENDPOINTS };
static const char *endpoint_names[] = {"stream", "protocol", "tls", "udp"};

/* connection states */
enum { CONNECTING, HANDSHAKING, RUNNING, DRAINING, WAIT_EOF, CLOSED };

struct message { uint64_t seq; uint32_t size, offset, crc; long long sent_ns; };

struct stats {
    long long sent, sent_bytes, verified, verified_bytes, lost, duplicated, corrupted;
    long long errors, opened, closed_cleanly, kernel_drops;
    long long hist[HIST_BUCKETS], max_us;
};

struct conn {
    int fd, kind, id, state;
    SSL *ssl;
    unsigned events;
    uint64_t rng, next_seq;
    long long budget;                 /* messages left before the half-close */
    struct message q[MAX_DEPTH];      /* in flight, oldest first (a ring) */
    int q_head, q_len;
    /* sending: the message at q[(q_head + q_len - 1)], from sendbuf */
    unsigned char *sendbuf;
    size_t send_len, send_pos;
    /* receiving (streams): the header so far, then how much of the payload */
    unsigned char rhdr[HEADER];
    size_t rhdr_got, rbody_got, skip;
    int tls_want_write;
};

static struct stats stats[NENDPOINTS];
static struct conn *conns;
static int nconns, depth, ep, stopping;
static unsigned char *pattern, scratch[SCRATCH];
static uint32_t crc_table[256];
static struct sockaddr_in addrs[NENDPOINTS];
static SSL_CTX *tls_ctx;
static char first_error[256];
static volatile sig_atomic_t stop_requested;

static void on_sigusr1(int sig) {
    (void)sig;
    stop_requested = 1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Give up: one JSON line saying why (printf-style), exit 1. */
static void fail(const char *fmt, ...) {
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("{\"ok\": false, \"error\": \"%s\"}\n", why);
    exit(1);
}

static void note_error(struct conn *c, const char *what, const char *detail) {
    stats[c->kind].errors++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s connection %d: %s%s%s",
                 endpoint_names[c->kind], c->id, what, detail ? ": " : "", detail ? detail : "");
}

static uint64_t xorshift(uint64_t *x) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* ---- CRC-32 (IEEE 802.3, as zlib.crc32) ---- */

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ---- latency histogram: 8 sub-buckets per power of two of microseconds ---- */

static void record_latency(struct stats *s, long long us) {
    if (us < 1) us = 1;
    int exp = 63 - __builtin_clzll((unsigned long long)us);
    int sub = exp >= 3 ? (int)((us >> (exp - 3)) & 7) : (int)((us << (3 - exp)) & 7);
    s->hist[exp * 8 + sub]++;
    if (us > s->max_us) s->max_us = us;
}

static long long percentile(const struct stats *s, double p) {
    long long total = 0, seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) total += s->hist[i];
    if (!total) return 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += s->hist[i];
        if (seen >= p * total) { /* the bucket's upper edge */
            int exp = i / 8, sub = i % 8;
            long long lo = exp >= 3 ? (8LL + sub) << (exp - 3) : (8LL + sub) >> (3 - exp);
            long long edge = exp >= 3 ? lo + (1LL << (exp - 3)) : lo + 1;
            return edge < s->max_us ? edge : s->max_us;
        }
    }
    return s->max_us;
}

/* ---- messages ---- */

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }
static uint32_t get32(const unsigned char *p) {
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void header_of(const struct conn *c, const struct message *m, unsigned char *h) {
    put32(h, MAGIC);
    put32(h + 4, HEADER + m->size);
    put32(h + 8, (uint32_t)c->id);
    put32(h + 12, m->crc);
    put64(h + 16, m->seq);
}

/* Mostly small messages, some of tens of KiB, a few up to the maximum. */
static uint32_t pick_size(struct conn *c) {
    uint64_t r = xorshift(&c->rng);
    uint32_t max = c->kind == UDP ? MAX_UDP_PAYLOAD : MAX_PAYLOAD;
    unsigned roll = r % 100;
    uint32_t cap = roll < 70 ? 512 : roll < 97 ? 32768 : max;
    if (cap > max) cap = max;
    return 1 + (uint32_t)((r >> 8) % cap);
}

static struct message *front(struct conn *c) { return &c->q[c->q_head]; }

static void pop_front(struct conn *c) {
    c->q_head = (c->q_head + 1) % MAX_DEPTH;
    c->q_len--;
}

/* Put the next message in the queue and into the send buffer. */
static void new_message(struct conn *c) {
    struct message *m = &c->q[(c->q_head + c->q_len) % MAX_DEPTH];
    m->seq = c->next_seq++;
    m->size = pick_size(c);
    m->offset = (uint32_t)((c->id * 7919ULL + m->seq * 104729ULL) % (PATTERN_SIZE - MAX_PAYLOAD));
    m->crc = crc32_of(pattern + m->offset, m->size);
    m->sent_ns = now_ns();
    c->q_len++;
    header_of(c, m, c->sendbuf);
    memcpy(c->sendbuf + HEADER, pattern + m->offset, m->size);
    c->send_len = HEADER + m->size;
    c->send_pos = 0;
    stats[c->kind].sent++;
    stats[c->kind].sent_bytes += c->send_len;
    if (c->budget > 0) c->budget--;
}

static void verified(struct conn *c) {
    struct message *m = front(c);
    struct stats *s = &stats[c->kind];
    s->verified++;
    s->verified_bytes += HEADER + m->size;
    record_latency(s, (now_ns() - m->sent_ns) / 1000);
    pop_front(c);
}

/* ---- connections ---- */

static void watch(struct conn *c, unsigned events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

/* The kernel's count of datagrams dropped at a UDP socket: the last column of its
 * line in /proc/net/udp (found by local port). */
static long long udp_drops(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    char line[512];
    long long drops = 0;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) return 0;
    FILE *f = fopen("/proc/net/udp", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned port;
        char *colon = strchr(line, ':'), *last = strrchr(line, ' ');
        if (colon && last && sscanf(colon + 1, " %*x:%x", &port) == 1 &&
            port == ntohs(a.sin_port))
            drops = atoll(last);
    }
    fclose(f);
    return drops;
}

static void close_conn(struct conn *c) {
    if (c->kind == UDP) stats[UDP].kernel_drops += udp_drops(c->fd);
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    c->state = CLOSED;
}

/* A connection failed: what it had in flight is lost, and counted as such. */
static void abandon(struct conn *c, const char *what, const char *detail) {
    note_error(c, what, detail);
    stats[c->kind].lost += c->q_len;
    c->q_len = 0;
    close_conn(c);
}

static void open_conn(struct conn *c) {
    int udp = c->kind == UDP;
    c->fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) fail("socket: %s", strerror(errno));
    if (!udp) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->q_head = c->q_len = 0;
    c->rhdr_got = c->rbody_got = c->skip = 0;
    c->tls_want_write = 0;
    c->budget = udp ? -1 : 200 + (long long)(xorshift(&c->rng) % 3000);
    c->state = CONNECTING;
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
    stats[c->kind].opened++;
    if (connect(c->fd, (struct sockaddr *)&addrs[c->kind], sizeof addrs[c->kind]) < 0 &&
        errno != EINPROGRESS)
        abandon(c, "connect", strerror(errno));
}

static const char *ssl_error_text(void) {
    static char buf[160];
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    else snprintf(buf, sizeof buf, "%s", errno ? strerror(errno) : "unexpected EOF");
    ERR_clear_error();
    return buf;
}

/* Read up to n bytes: > 0 bytes, 0 a clean EOF, -1 nothing now, -2 failed (conn closed). */
static ssize_t conn_read(struct conn *c, unsigned char *buf, size_t n) {
    if (!c->ssl) {
        for (;;) {
            ssize_t got = read(c->fd, buf, n);
            if (got >= 0) return got;
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return -1;
            abandon(c, "read", strerror(errno));
            return -2;
        }
    }
    ERR_clear_error();
    errno = 0;
    int got = SSL_read(c->ssl, buf, (int)n);
    if (got > 0) return got;
    switch (SSL_get_error(c->ssl, got)) {
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_WANT_READ: return -1;
    case SSL_ERROR_WANT_WRITE: c->tls_want_write = 1; return -1;
    default: abandon(c, "TLS read", ssl_error_text()); return -2;
    }
}

/* Write: > 0 bytes written, -1 not now, -2 failed (conn closed). */
static ssize_t conn_write(struct conn *c, const unsigned char *buf, size_t n) {
    if (!c->ssl) {
        for (;;) {
            ssize_t put = c->kind == UDP ? send(c->fd, buf, n, 0) : write(c->fd, buf, n);
            if (put >= 0) return put;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == ENOBUFS) return -1;
            abandon(c, "write", strerror(errno));
            return -2;
        }
    }
    ERR_clear_error();
    int put = SSL_write(c->ssl, buf, (int)n);
    if (put > 0) return put;
    switch (SSL_get_error(c->ssl, put)) {
    case SSL_ERROR_WANT_READ: return -1;
    case SSL_ERROR_WANT_WRITE: c->tls_want_write = 1; return -1;
    default: abandon(c, "TLS write", ssl_error_text()); return -2;
    }
}

/* The epoll interest a running connection needs now. */
static unsigned interest(struct conn *c) {
    int pending = c->send_pos < c->send_len || c->tls_want_write;
    return EPOLLIN | (pending ? EPOLLOUT : 0);
}

static void half_close(struct conn *c) {
    if (c->ssl) {
        ERR_clear_error();
        if (SSL_shutdown(c->ssl) < 0 && SSL_get_error(c->ssl, -1) != SSL_ERROR_WANT_WRITE) {
            abandon(c, "TLS close_notify", ssl_error_text());
            return;
        }
    }
    shutdown(c->fd, SHUT_WR);
    c->state = WAIT_EOF;
    watch(c, EPOLLIN);
}

/* Send until the socket is full, DEPTH messages are in flight, or the budget is spent. */
static void pump(struct conn *c) {
    c->tls_want_write = 0;
    for (;;) {
        if (c->send_pos == c->send_len) {
            int more = !stopping && c->budget != 0 && c->state == RUNNING;
            if (!more || c->q_len >= depth) break;
            new_message(c);
        }
        ssize_t put = conn_write(c, c->sendbuf + c->send_pos, c->send_len - c->send_pos);
        if (put == -2) return;
        if (put == -1) break;
        c->send_pos += put;
    }
    if (c->state == RUNNING && (c->budget == 0 || stopping) && c->send_pos == c->send_len)
        c->state = DRAINING;
    if (c->state == DRAINING && c->q_len == 0) {
        if (stopping || c->kind == UDP) {
            close_conn(c);
            return;
        }
        half_close(c);
        return;
    }
    watch(c, interest(c));
}

/* Check echoed stream bytes against the queue; 0, or -1 when the connection was closed. */
static int check_stream(struct conn *c, const unsigned char *p, size_t n) {
    while (n > 0) {
        if (c->skip) { /* the rest of a duplicated message */
            size_t k = n < c->skip ? n : c->skip;
            c->skip -= k, p += k, n -= k;
            continue;
        }
        if (c->rhdr_got < HEADER) {
            size_t k = HEADER - c->rhdr_got < n ? HEADER - c->rhdr_got : n;
            memcpy(c->rhdr + c->rhdr_got, p, k);
            c->rhdr_got += k, p += k, n -= k;
            if (c->rhdr_got < HEADER) break;
            uint32_t len = get32(c->rhdr + 4);
            uint64_t seq = get64(c->rhdr + 16);
            if (get32(c->rhdr) != MAGIC || get32(c->rhdr + 8) != (uint32_t)c->id ||
                len < HEADER || len > HEADER + MAX_PAYLOAD || c->q_len == 0) {
                stats[c->kind].corrupted++;
                abandon(c, "echo", "a message header that was never sent");
                return -1;
            }
            if (seq < front(c)->seq) {
                stats[c->kind].duplicated++;
                c->skip = len - HEADER;
                c->rhdr_got = 0;
                continue;
            }
            while (c->q_len > 0 && seq > front(c)->seq) {
                stats[c->kind].lost++;
                pop_front(c);
            }
            unsigned char want[HEADER];
            if (c->q_len == 0 || (header_of(c, front(c), want), memcmp(want, c->rhdr, HEADER))) {
                stats[c->kind].corrupted++;
                abandon(c, "echo", "a message header that differs from the one sent");
                return -1;
            }
            c->rbody_got = 0;
        }
        struct message *m = front(c);
        size_t k = m->size - c->rbody_got < n ? m->size - c->rbody_got : n;
        if (memcmp(p, pattern + m->offset + c->rbody_got, k)) {
            stats[c->kind].corrupted++;
            abandon(c, "echo", "payload bytes that differ from the ones sent");
            return -1;
        }
        c->rbody_got += k, p += k, n -= k;
        if (c->rbody_got == m->size) {
            verified(c);
            c->rhdr_got = 0;
        }
    }
    return 0;
}

/* One echoed datagram: a message in flight, checked whole, in any order. */
static void check_datagram(struct conn *c, const unsigned char *p, size_t n) {
    struct stats *s = &stats[UDP];
    if (n < HEADER || get32(p) != MAGIC || get32(p + 8) != (uint32_t)c->id ||
        get32(p + 4) != n) {
        s->corrupted++;
        return;
    }
    uint64_t seq = get64(p + 16);
    for (int i = 0; i < c->q_len; i++) {
        int at = (c->q_head + i) % MAX_DEPTH;
        struct message *m = &c->q[at];
        if (m->seq != seq) continue;
        unsigned char want[HEADER];
        header_of(c, m, want);
        if (n != HEADER + m->size || memcmp(p, want, HEADER) ||
            memcmp(p + HEADER, pattern + m->offset, m->size)) {
            s->corrupted++;
            return;
        }
        /* verified: move it to the front, then pop it */
        struct message tmp = *m;
        *m = *front(c);
        *front(c) = tmp;
        verified(c);
        return;
    }
    if (seq < c->next_seq) s->duplicated++;
    else s->corrupted++;
}

static void on_readable(struct conn *c) {
    for (;;) {
        ssize_t got = conn_read(c, scratch, SCRATCH);
        if (got == -2) return;
        if (got == -1) break;
        if (c->kind == UDP) {
            check_datagram(c, scratch, got);
            continue;
        }
        if (got == 0) {
            if (c->state == WAIT_EOF && c->q_len == 0) {
                stats[c->kind].closed_cleanly++;
                close_conn(c);
            } else {
                abandon(c, "EOF", "the server closed before the echoes were all back");
            }
            return;
        }
        if (c->state == WAIT_EOF && c->q_len == 0) {
            stats[c->kind].corrupted++;
            abandon(c, "echo", "bytes after the last message's echo");
            return;
        }
        if (check_stream(c, scratch, got) < 0) return;
    }
    if (c->state != WAIT_EOF) pump(c);
}

static void start_tls(struct conn *c) {
    c->ssl = SSL_new(tls_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) fail("SSL_new: %s", ssl_error_text());
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->state = HANDSHAKING;
}

static void handshake(struct conn *c) {
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->state = RUNNING;
        pump(c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: watch(c, EPOLLIN); break;
    case SSL_ERROR_WANT_WRITE: watch(c, EPOLLOUT); break;
    default: abandon(c, "TLS handshake", ssl_error_text());
    }
}

static void on_connected(struct conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        abandon(c, "connect", strerror(err));
        return;
    }
    if (c->kind == TLS) {
        start_tls(c);
        handshake(c);
        return;
    }
    c->state = RUNNING;
    pump(c);
}

static void on_event(struct conn *c, unsigned events) {
    switch (c->state) {
    case CONNECTING: on_connected(c); break;
    case HANDSHAKING: handshake(c); break;
    case WAIT_EOF: on_readable(c); break;
    case RUNNING:
    case DRAINING:
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        if (c->state != CLOSED && (events & EPOLLOUT)) pump(c);
        break;
    }
}

/* ---- report ---- */

static long long total_verified(void) {
    long long n = 0;
    for (int k = 0; k < NENDPOINTS; k++) n += stats[k].verified;
    return n;
}

static void print_progress(double t) {
    printf("{\"progress\": true, \"t\": %.1f, \"verified\": %lld", t, total_verified());
    for (int k = 0; k < NENDPOINTS; k++)
        printf(", \"%s\": %lld", endpoint_names[k], stats[k].verified);
    printf("}\n");
    fflush(stdout);
}

static void print_final(double seconds, int drained) {
    printf("{\"ok\": true, \"final\": true, \"seconds\": %.1f, \"drained\": %s, "
           "\"first_error\": \"%s\", \"endpoints\": {", seconds, drained ? "true" : "false",
           first_error);
    for (int k = 0; k < NENDPOINTS; k++) {
        struct stats *s = &stats[k];
        printf("%s\"%s\": {\"sent\": %lld, \"sent_bytes\": %lld, \"verified\": %lld, "
               "\"verified_bytes\": %lld, \"lost\": %lld, \"duplicated\": %lld, "
               "\"corrupted\": %lld, \"errors\": %lld, \"opened\": %lld, "
               "\"closed_cleanly\": %lld, \"kernel_drops\": %lld, \"p50_us\": %lld, "
               "\"p99_us\": %lld, \"max_us\": %lld}",
               k ? ", " : "", endpoint_names[k], s->sent, s->sent_bytes, s->verified,
               s->verified_bytes, s->lost, s->duplicated, s->corrupted, s->errors, s->opened,
               s->closed_cleanly, s->kernel_drops, percentile(s, 0.50), percentile(s, 0.99),
               s->max_us);
    }
    printf("}}\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 9 && argc != 10) {
        fprintf(stderr, "usage: soak_loadgen STREAM_PORT PROTOCOL_PORT TLS_PORT UDP_PORT "
                        "CONNS UDP_SOCKETS DEPTH DURATION [DRAIN]\n");
        return 2;
    }
    int per_tcp = atoi(argv[5]), udp_sockets = atoi(argv[6]);
    depth = atoi(argv[7]);
    double duration = atof(argv[8]), drain = argc == 10 ? atof(argv[9]) : 60;
    if (per_tcp < 1 || udp_sockets < 0 || depth < 1 || depth > MAX_DEPTH || duration <= 0 ||
        drain < 0)
        fail("arguments out of range");
    for (int k = 0; k < NENDPOINTS; k++) {
        addrs[k].sin_family = AF_INET;
        addrs[k].sin_port = htons(atoi(argv[1 + k]));
        addrs[k].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_sigusr1);
    crc_init();
    pattern = malloc(PATTERN_SIZE);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < PATTERN_SIZE; i++) pattern[i] = (unsigned char)(xorshift(&x) >> 56);

    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) fail("SSL_CTX_new: %s", ssl_error_text());
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL); /* the soak's own certificate */

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) fail("epoll_create1: %s", strerror(errno));
    int count[NENDPOINTS];
    nconns = 0;
    for (int k = 0; k < NENDPOINTS; k++) {
        count[k] = addrs[k].sin_port == 0 ? 0 : k == UDP ? udp_sockets : per_tcp;
        nconns += count[k];
    }
    conns = calloc(nconns, sizeof *conns);
    for (int i = 0, k = 0, of_kind = 0; i < nconns; i++, of_kind++) {
        struct conn *c = &conns[i];
        while (of_kind == count[k]) k++, of_kind = 0;
        c->id = i;
        c->kind = k;
        c->rng = 0x2545F4914F6CDD1DULL ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL);
        c->sendbuf = malloc(HEADER + MAX_PAYLOAD);
        c->fd = -1;
        open_conn(c);
    }

    long long t_start = now_ns(), t_stop = t_start + (long long)(duration * 1e9);
    long long t_drain_end = 0, next_progress = t_start + 1000000000LL;
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->state != CLOSED) on_event(c, events[i].events);
        }
        long long now = now_ns();
        if (!stopping && (now >= t_stop || stop_requested)) {
            stopping = 1;
            t_drain_end = now + (long long)(drain * 1e9);
            for (int i = 0; i < nconns; i++)
                if (conns[i].state == RUNNING) pump(&conns[i]);
        }
        int live = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            if (c->state == CLOSED && !stopping) open_conn(c); /* the slot's next connection */
            live += c->state != CLOSED && !(stopping && c->state == WAIT_EOF);
        }
        if (now >= next_progress) {
            print_progress((now - t_start) / 1e9);
            next_progress += 1000000000LL;
        }
        if (stopping && (live == 0 || now >= t_drain_end)) {
            for (int i = 0; i < nconns; i++) {
                stats[conns[i].kind].lost += conns[i].q_len;
                if (conns[i].state != CLOSED) close_conn(&conns[i]);
            }
            print_final((now - t_start) / 1e9, live == 0);
            return 0;
        }
    }
}
