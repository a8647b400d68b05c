/* The net suite's C floor over io_uring: the echo server of echo_server.c (same
 * command line, stdout line and behaviour), with a choice of io_uring strategy,
 * to measure which one a loop should use for sockets.
 *
 *   uring_echo_server [-m PRESET] [-a ACCEPT] [-r RECV] [-s SEND] [-c]
 *                     [-b BUFSIZE] [-n NBUFS] [-v] [PORT]
 *
 * ACCEPT  poll       one-shot IORING_OP_POLL_ADD on the listener, accept4(2) until EAGAIN
 *         multishot  one multishot IORING_OP_ACCEPT: one CQE per new connection
 * RECV    poll       one-shot POLL_ADD per connection, re-armed after each event, then
 *                    recv(2) of up to 256 KiB into a buffer shared by all connections and
 *                    send(2) straight back; what the socket does not take is copied aside
 *                    and flushed on POLLOUT (echo_server.c with POLL_ADD for epoll)
 *         pollms     the same with one multishot POLL_ADD (IORING_POLL_ADD_MULTI) per
 *                    connection, armed once: edge-triggered, so a read that fills the
 *                    buffer is followed by another
 *         oneshot    IORING_OP_RECV of up to 256 KiB into a per-connection buffer; the next
 *                    one is queued once its echo has gone out
 *         multishot  one multishot IORING_OP_RECV per connection, picking NBUFS buffers of
 *                    BUFSIZE bytes (default 64 x 256 KiB) from a provided-buffer ring
 * SEND    syscall    send(2) (MSG_DONTWAIT); with RECV oneshot/multishot, what it does not
 *                    take goes out by IORING_OP_SEND
 *         op         IORING_OP_SEND, one in flight per connection; with RECV multishot what
 *                    arrives meanwhile is queued. A ring buffer goes back to the ring when its
 *                    send completed, or, with -c, the data is copied aside and the buffer goes
 *                    back at once
 * PRESET  poll        -a poll -r poll -s syscall (what ringloop's io_uring backend does)
 *         pollms      -a poll -r pollms -s syscall
 *         recv        -a multishot -r oneshot -s op
 *         hybrid      -a multishot -r multishot -s syscall
 *         completion  -a multishot -r multishot -s op
 *
 * Ring set-up as ringloop's: SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN (| SUBMIT_ALL),
 * fewer flags on EINVAL; one io_uring_submit_and_wait(1) per iteration, then every CQE
 * that is there is handled before the CQ head moves. The stdout line adds "strategy" and
 * "setup_flags" to echo_server.c's {"port": N, "pid": P}. With -v, SIGTERM prints counts
 * (iterations, CQEs, ENOBUFS, re-arms, short sends) on stderr before it exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define SQ_ENTRIES 1024
#define CQ_ENTRIES 8192
#define BGID 0

enum { POLL, MULTISHOT, ONESHOT, POLLMS };   /* accept and recv strategies */
enum { SYSCALL, OP };                        /* send strategies */
/* user_data = conn pointer (16-byte aligned) | tag */
enum { T_LISTEN, T_POLL, T_POLLOUT, T_RECV, T_SEND, T_CANCEL };
#define TAG_MASK 7
#define READINESS (recv_mode == POLL || recv_mode == POLLMS) /* recv(2) reads the sockets */

static int acc_mode = POLL, recv_mode = POLL, send_mode = SYSCALL, copy_mode;
static unsigned pbuf_size = 256 * 1024, pbuf_count = 64;
static unsigned long long n_iter, n_cqe, n_enobufs, n_rearm, n_short;

struct conn {
    int fd;
    unsigned char armed;    /* a POLLIN poll or a recv (one-shot or multishot) is in flight */
    unsigned char sending;  /* an IORING_OP_SEND or a POLLOUT poll is in flight */
    unsigned char closing;  /* close once nothing is in flight */
    unsigned char starved;  /* multishot recv ended with ENOBUFS: on the starved list */
    char *data;             /* RECV poll: what send(2) did not take; oneshot: the recv
                               buffer; -c: the copy being sent */
    size_t cap, off, len;   /* data's size; the unsent part data[off, len) (multishot
                               without -c: off is the sent part of the head buffer) */
    int qhead, qtail;       /* multishot without -c: ring buffers received and not sent
                               yet, oldest (the one being sent) first; -1: none */
    char *more;             /* -c: what arrived while data was being sent */
    size_t more_cap, more_len;
    size_t asked;           /* bytes of the IORING_OP_SEND in flight */
    struct conn *next;      /* free list or starved list */
    /* (malloc's 16-byte alignment leaves user_data 4 low bits for a tag) */
};

static struct io_uring ring;
static int lfd;
static char buf[BUF_SIZE];  /* RECV poll: shared by all connections, as in echo_server.c */
static struct conn *free_conns, *starved, **starved_tail = &starved;

/* The provided-buffer ring: pbuf_count buffers of pbuf_size bytes at pbufs. */
static struct io_uring_buf_ring *br;
static char *pbufs;
static int *bnext;          /* the next buffer in a connection's send queue */
static unsigned *blen;      /* bytes received into each buffer */
static int breturned;       /* buffers added to the ring since the tail was published */
static int bfree;           /* buffers the kernel can pick */

static void die(const char *what) { perror(what); exit(1); }
static void die_err(const char *what, int err) { errno = err; die(what); }

static struct io_uring_sqe *sqe_get(void *p, int tag) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) { /* the SQ is full: submit what is there */
        io_uring_submit(&ring);
        if (!(sqe = io_uring_get_sqe(&ring))) die_err("io_uring_get_sqe", EBUSY);
    }
    io_uring_sqe_set_data(sqe, (void *)((uintptr_t)p | tag));
    return sqe;
}

static void buf_return(int bid) {
    io_uring_buf_ring_add(br, pbufs + (size_t)bid * pbuf_size, pbuf_size, bid,
                          io_uring_buf_ring_mask(pbuf_count), breturned++);
    bfree++;
}

static void arm_accept(void) {
    if (acc_mode == POLL) {
        io_uring_prep_poll_add(sqe_get(NULL, T_LISTEN), lfd, POLLIN);
    } else { /* blocking accepted sockets unless recv(2) reads them: io_uring polls itself */
        io_uring_prep_multishot_accept(sqe_get(NULL, T_LISTEN), lfd, NULL, NULL,
                                       SOCK_CLOEXEC | (READINESS ? SOCK_NONBLOCK : 0));
    }
}

static void arm_pollout(struct conn *c) {
    io_uring_prep_poll_add(sqe_get(c, T_POLLOUT), c->fd, POLLOUT);
    c->sending = 1;
}

static void arm_recv(struct conn *c) {
    c->armed = 1;
    if (recv_mode == POLL) {
        io_uring_prep_poll_add(sqe_get(c, T_POLL), c->fd, POLLIN);
        return;
    }
    if (recv_mode == POLLMS) {
        io_uring_prep_poll_multishot(sqe_get(c, T_POLL), c->fd, POLLIN);
        return;
    }
    struct io_uring_sqe *sqe = sqe_get(c, T_RECV);
    if (recv_mode == ONESHOT) {
        io_uring_prep_recv(sqe, c->fd, c->data, BUF_SIZE, 0);
    } else { /* len 0: up to the picked buffer's size */
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
    }
}

/* MSG_WAITALL makes io_uring itself finish a partial send on a stream socket (it waits
 * for POLLOUT and sends the rest) before it posts the CQE; a short count is still
 * handled below. */
static void send_op(struct conn *c, const char *p, size_t n) {
    io_uring_prep_send(sqe_get(c, T_SEND), c->fd, p, n, MSG_WAITALL | MSG_NOSIGNAL);
    c->sending = 1;
    c->asked = n;
}

/* send(2) without blocking: bytes taken, 0 when the socket is full, -1 on error. */
static ssize_t send_now(int fd, const char *p, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = send(fd, p + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? (ssize_t)done : -1;
        }
        done += k;
    }
    return done;
}

/* Ring buffer bid holds n bytes for c: send it (or queue it behind the one in flight). */
static int queue_buf(struct conn *c, int bid, size_t n) {
    blen[bid] = n;
    bnext[bid] = -1;
    if (c->qhead >= 0) {
        bnext[c->qtail] = bid;
        c->qtail = bid;
        return 0;
    }
    const char *p = pbufs + (size_t)bid * pbuf_size;
    ssize_t k = 0;
    if (send_mode == SYSCALL && (k = send_now(c->fd, p, n)) == (ssize_t)n) {
        buf_return(bid);
        return 0;
    }
    if (k < 0) {
        buf_return(bid);
        return -1;
    }
    c->qhead = c->qtail = bid;
    c->off = k;
    send_op(c, p + k, n - k);
    return 0;
}

static void grow(char **p, size_t *cap, size_t need) {
    if (*cap >= need) return;
    while (*cap < need) *cap = *cap ? *cap * 2 : 64 * 1024;
    if (!(*p = realloc(*p, *cap))) die("realloc");
}

/* -c: copy n bytes aside for c and send them, or add them to what waits for the send. */
static void queue_copy(struct conn *c, const char *p, size_t n) {
    if (c->sending) {
        grow(&c->more, &c->more_cap, c->more_len + n);
        memcpy(c->more + c->more_len, p, n);
        c->more_len += n;
        return;
    }
    grow(&c->data, &c->cap, n);
    memcpy(c->data, p, n);
    c->off = 0;
    c->len = n;
    send_op(c, c->data, n);
}

static void conn_new(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = free_conns;
    if (c) {
        free_conns = c->next;
    } else if (!(c = calloc(1, sizeof *c))) {
        die("calloc");
    }
    if (recv_mode == ONESHOT && !c->data) {
        c->cap = BUF_SIZE;
        if (!(c->data = malloc(BUF_SIZE))) die("malloc");
    }
    c->fd = fd;
    c->armed = c->sending = c->closing = c->starved = 0;
    c->off = c->len = c->more_len = 0;
    c->qhead = c->qtail = -1;
    arm_recv(c);
}

/* The kernel holds the file and our user_data until every request on it has completed,
 * so a connection is closed and reused only once nothing is in flight. */
static void conn_done(struct conn *c) {
    if (c->armed || c->sending || c->starved) return;
    close(c->fd);
    for (int bid = c->qhead; bid >= 0; bid = bnext[bid]) buf_return(bid);
    c->next = free_conns;
    free_conns = c;
}

static void conn_close(struct conn *c) {
    if (!c->closing) {
        c->closing = 1;
        /* A multishot poll or recv would never end by itself: cancel what is in flight
         * (its CQE then comes with -ECANCELED or what it got meanwhile). */
        if (c->armed || c->sending)
            io_uring_prep_cancel_fd(sqe_get(NULL, T_CANCEL), c->fd, IORING_ASYNC_CANCEL_ALL);
    }
    conn_done(c);
}

/* RECV poll, pollms: read what is there and send it straight back; what the socket does
 * not take is kept, and reading stops until POLLOUT has flushed it. */
static void read_echo(struct conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n < 0) return;
        ssize_t k = send_now(c->fd, buf, n);
        if (k < 0) {
            conn_close(c);
            return;
        }
        if (k < n) {
            grow(&c->data, &c->cap, n - k);
            memcpy(c->data, buf + k, n - k);
            c->off = 0;
            c->len = n - k;
            arm_pollout(c);
            return;
        }
        /* One read per event, as echo_server.c (level-triggered); a multishot poll only
         * fires again on new data, so after a read that filled the buffer read again. */
        if (recv_mode == POLL || n < BUF_SIZE) return;
    }
}

static void on_poll(struct conn *c, int res, unsigned flags) {
    if (!(flags & IORING_CQE_F_MORE)) c->armed = 0; /* one-shot, or the multishot ended */
    if (c->closing || res < 0) {
        conn_close(c);
        return;
    }
    if (!c->len) read_echo(c); /* (pollms: with a flush pending, read once it is done) */
    if (!c->closing && !c->len && !c->armed) arm_recv(c);
}

static void on_pollout(struct conn *c, int res) {
    c->sending = 0;
    if (c->closing || res < 0) {
        conn_close(c);
        return;
    }
    ssize_t k = send_now(c->fd, c->data + c->off, c->len - c->off);
    if (k < 0) {
        conn_close(c);
        return;
    }
    if ((c->off += k) < c->len) {
        arm_pollout(c);
        return;
    }
    c->off = c->len = 0;
    if (recv_mode == POLLMS) read_echo(c); /* what arrived while POLLIN was ignored */
    if (!c->closing && !c->len && !c->armed) arm_recv(c);
}

static void on_recv(struct conn *c, int res, unsigned flags) {
    int bid = (flags & IORING_CQE_F_BUFFER) ? (int)(flags >> IORING_CQE_BUFFER_SHIFT) : -1;
    if (bid >= 0) bfree--;
    /* A multishot recv stays armed while its CQEs carry F_MORE. Without it, it has ended:
     * on EOF, an error, ENOBUFS (the ring was empty), or when the kernel chose to stop
     * (e.g. the CQ overflowed) -- then it must be armed again. */
    if (!(flags & IORING_CQE_F_MORE)) c->armed = 0;
    if (c->closing) {
        if (bid >= 0) buf_return(bid);
        conn_done(c);
        return;
    }
    if (res == -ENOBUFS) { /* re-armed by the main loop once buffers came back */
        n_enobufs++;
        c->starved = 1;
        c->next = NULL;
        *starved_tail = c;
        starved_tail = &c->next;
        return;
    }
    if (res <= 0 && res != -EAGAIN && res != -EINTR) { /* EOF or error */
        if (bid >= 0) buf_return(bid);
        conn_close(c);
        return;
    }
    if (res > 0 && recv_mode == ONESHOT) {
        ssize_t k = send_mode == SYSCALL ? send_now(c->fd, c->data, res) : 0;
        if (k < 0) {
            conn_close(c);
        } else if (k < res) {
            c->off = k;
            c->len = res;
            send_op(c, c->data + k, res - k);
        } else {
            arm_recv(c);
        }
        return;
    }
    if (res > 0) {
        if (copy_mode) {
            queue_copy(c, pbufs + (size_t)bid * pbuf_size, res);
            buf_return(bid);
        } else if (queue_buf(c, bid, res) < 0) {
            conn_close(c);
            return;
        }
    }
    if (!c->armed) {
        n_rearm += recv_mode == MULTISHOT;
        arm_recv(c);
    }
}

static void on_send(struct conn *c, int res) {
    c->sending = 0;
    if (c->closing || res < 0) {
        conn_close(c);
        return;
    }
    c->off += res;
    n_short += (size_t)res < c->asked;
    if (recv_mode == ONESHOT || copy_mode) {
        if (c->off < c->len) {
            send_op(c, c->data + c->off, c->len - c->off);
        } else if (recv_mode == ONESHOT) {
            arm_recv(c);
        } else if (c->more_len) { /* -c: send what arrived meanwhile */
            char *p = c->data;
            size_t cap = c->cap;
            c->data = c->more, c->cap = c->more_cap, c->len = c->more_len;
            c->more = p, c->more_cap = cap, c->more_len = 0;
            c->off = 0;
            send_op(c, c->data, c->len);
        }
        return;
    }
    int bid = c->qhead; /* ring buffers: the head one was being sent */
    if (c->off < blen[bid]) {
        send_op(c, pbufs + (size_t)bid * pbuf_size + c->off, blen[bid] - c->off);
        return;
    }
    c->qhead = bnext[bid];
    buf_return(bid);
    c->off = 0;
    if (c->qhead >= 0) send_op(c, pbufs + (size_t)c->qhead * pbuf_size, blen[c->qhead]);
}

static void on_listener(int res, unsigned flags) {
    if (acc_mode == MULTISHOT) {
        if (res >= 0) conn_new(res);
        if (!(flags & IORING_CQE_F_MORE)) arm_accept(); /* ended (e.g. EMFILE): again */
        return;
    }
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | (READINESS ? SOCK_NONBLOCK : 0));
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EMFILE || errno == ENFILE) break;
            die("accept4");
        }
        conn_new(fd);
    }
    arm_accept();
}

static void setup_ring(void) {
    /* Best first, as ringloop: DEFER_TASKRUN (6.1, needs SINGLE_ISSUER) runs completion
     * work only inside our own io_uring_enter; COOP_TASKRUN (5.19) is the fallback. */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
            IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0] && ret == -EINVAL; i++) {
        struct io_uring_params p = {.flags = flag_sets[i] | IORING_SETUP_CQSIZE,
                                    .cq_entries = CQ_ENTRIES};
        ret = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
    }
    if (ret < 0) die_err("io_uring_queue_init_params", -ret);
    if (recv_mode != MULTISHOT) return;

    /* liburing 2.3 has no io_uring_setup_buf_ring: the ring of buffer descriptors is our
     * own page-aligned memory (mmap), registered with IORING_REGISTER_PBUF_RING. Its
     * entry count must be a power of two; the tail overlays bufs[0].resv. */
    size_t ring_bytes = pbuf_count * sizeof(struct io_uring_buf);
    br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pbufs = mmap(NULL, (size_t)pbuf_count * pbuf_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED || pbufs == MAP_FAILED) die("mmap");
    bnext = calloc(pbuf_count, sizeof *bnext);
    blen = calloc(pbuf_count, sizeof *blen);
    if (!bnext || !blen) die("calloc");
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = pbuf_count,
                                   .bgid = BGID};
    if ((ret = io_uring_register_buf_ring(&ring, &reg, 0)) < 0)
        die_err("io_uring_register_buf_ring", -ret);
    for (unsigned i = 0; i < pbuf_count; i++) buf_return(i);
    io_uring_buf_ring_advance(br, breturned);
    breturned = 0;
}

/* -v: the counts, straight from the handler (the loop may be blocked in io_uring_enter). */
static void on_sigterm(int sig) {
    char msg[200];
    int n = snprintf(msg, sizeof msg,
                     "iterations %llu cqes %llu enobufs %llu rearms %llu short_sends %llu\n",
                     n_iter, n_cqe, n_enobufs, n_rearm, n_short);
    if (write(2, msg, n) < 0) sig = 1;
    _exit(sig == SIGTERM ? 0 : 1);
}

static int parse(const char *s, const char *const names[], int values[]) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) return values[i];
    fprintf(stderr, "uring_echo_server: unknown strategy %s\n", s);
    exit(2);
}

int main(int argc, char **argv) {
    static const char *const ar_names[] = {"poll", "multishot", "oneshot", "pollms", NULL};
    static const char *const s_names[] = {"syscall", "op", NULL};
    static const char *const presets[] = {"poll", "pollms", "recv", "hybrid", "completion", NULL};
    static int ar_values[] = {POLL, MULTISHOT, ONESHOT, POLLMS}, s_values[] = {SYSCALL, OP};
    static int preset_values[] = {0, 1, 2, 3, 4};
    int opt;
    while ((opt = getopt(argc, argv, "m:a:r:s:cb:n:v")) != -1) {
        switch (opt) {
        case 'm': {
            int p = parse(optarg, presets, preset_values);
            acc_mode = p >= 2 ? MULTISHOT : POLL;
            recv_mode = (int[]){POLL, POLLMS, ONESHOT, MULTISHOT, MULTISHOT}[p];
            send_mode = (int[]){SYSCALL, SYSCALL, OP, SYSCALL, OP}[p];
            break;
        }
        case 'a': acc_mode = parse(optarg, ar_names, ar_values); break;
        case 'r': recv_mode = parse(optarg, ar_names, ar_values); break;
        case 's': send_mode = parse(optarg, s_names, s_values); break;
        case 'c': copy_mode = 1; break;
        case 'b': pbuf_size = strtoul(optarg, NULL, 0); break;
        case 'n': pbuf_count = strtoul(optarg, NULL, 0); break;
        case 'v': signal(SIGTERM, on_sigterm); break;
        default: return 2;
        }
    }
    if (acc_mode == ONESHOT || acc_mode == POLLMS || (READINESS && send_mode == OP) ||
        (copy_mode && (recv_mode != MULTISHOT || send_mode != OP)) ||
        (pbuf_count & (pbuf_count - 1)) || pbuf_count > 32768 || !pbuf_size) {
        fprintf(stderr, "uring_echo_server: unsupported combination of strategies\n");
        return 2;
    }
    int port = optind < argc ? atoi(argv[optind]) : 0;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (acc_mode == POLL ? SOCK_NONBLOCK : 0), 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(lfd, 1024) < 0) die("listen");
    socklen_t alen = sizeof addr;
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) die("getsockname");
    setup_ring();
    arm_accept();
    int submitted = io_uring_submit(&ring);
    if (submitted < 0) die_err("io_uring_submit", -submitted);
    printf("{\"port\": %d, \"pid\": %d, \"strategy\": \"accept=%s recv=%s send=%s%s",
           ntohs(addr.sin_port), (int)getpid(), ar_names[acc_mode], ar_names[recv_mode],
           s_names[send_mode], copy_mode ? " copy" : "");
    if (recv_mode == MULTISHOT) printf(" bufs=%ux%u", pbuf_count, pbuf_size);
    printf("\", \"setup_flags\": %u}\n", ring.flags);
    fflush(stdout);

    for (;;) {
        if (breturned) { /* publish the buffers given back during the last batch */
            io_uring_buf_ring_advance(br, breturned);
            breturned = 0;
        }
        /* ENOBUFS ended these multishot recvs: re-arm, oldest first, as many as there are
         * free buffers (re-arming them all would mostly buy more ENOBUFS). */
        for (int k = bfree; starved && k > 0; k--) {
            struct conn *c = starved;
            if (!(starved = c->next)) starved_tail = &starved;
            c->starved = 0;
            if (c->closing) conn_done(c);
            else arm_recv(c);
        }
        int ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            die_err("io_uring_submit_and_wait", -ret);
        n_iter++;
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            n++;
            struct conn *c = (struct conn *)(uintptr_t)(cqe->user_data & ~(uint64_t)TAG_MASK);
            switch (cqe->user_data & TAG_MASK) {
            case T_LISTEN: on_listener(cqe->res, cqe->flags); break;
            case T_POLL: on_poll(c, cqe->res, cqe->flags); break;
            case T_POLLOUT: on_pollout(c, cqe->res); break;
            case T_RECV: on_recv(c, cqe->res, cqe->flags); break;
            case T_SEND: on_send(c, cqe->res); break;
            }
        }
        io_uring_cq_advance(&ring, n);
        n_cqe += n;
    }
}
