/* The floor for the net suite: a minimal TCP echo server in C over epoll.
 *
 *   echo_server [PORT]
 *
 * Listens on 127.0.0.1:PORT (default 0: any free port), prints one JSON line
 * {"port": N, "pid": P} on stdout once it accepts connections, and serves until
 * killed. The same protocol as the Python servers of bench/net/servers.py:
 * every byte read from a connection is written back; EOF from the client closes
 * the connection. It does the `protocol` style's work with no Python at all.
 *
 * Level-triggered epoll, one epoll_wait per iteration, as a Python loop does:
 * the listening socket is non-blocking and accepts until EAGAIN; a readable
 * connection gets one read of up to 256 KiB (about what asyncio's and uvloop's
 * transports read at once) into a buffer shared by all connections, written
 * straight back; what the socket does not take is copied aside and the
 * connection waits for EPOLLOUT (and stops reading) until it is flushed.
 * TCP_NODELAY on every connection, as asyncio and uvloop set it on their TCP
 * transports. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define MAX_EVENTS 256

struct conn {
    int fd;
    char *pending;     /* what the socket did not take yet: pending[off, len) */
    size_t off, len;
};

static int ep;
static char buf[BUF_SIZE];

static void die(const char *what) { perror(what); exit(1); }

static void conn_close(struct conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->pending);
    free(c);
}

static void set_events(struct conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
}

/* Write data[*off, len); 1 when all of it went out, 0 when the socket is full,
 * -1 on error. */
static int send_all(int fd, const char *data, size_t *off, size_t len) {
    while (*off < len) {
        ssize_t n = write(fd, data + *off, len - *off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        *off += n;
    }
    return 1;
}

static void on_readable(struct conn *c) {
    ssize_t n = read(c->fd, buf, BUF_SIZE);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0) return;
    size_t off = 0;
    int r = send_all(c->fd, buf, &off, n);
    if (r < 0) {
        conn_close(c);
    } else if (r == 0) { /* keep the rest and stop reading until it is flushed */
        c->len = n - off;
        c->off = 0;
        c->pending = malloc(c->len);
        if (!c->pending) die("malloc");
        memcpy(c->pending, buf + off, c->len);
        set_events(c, EPOLLOUT);
    }
}

static void on_writable(struct conn *c) {
    int r = send_all(c->fd, c->pending, &c->off, c->len);
    if (r < 0) {
        conn_close(c);
    } else if (r == 1) {
        free(c->pending);
        c->pending = NULL;
        c->len = 0;
        set_events(c, EPOLLIN);
    }
}

static void on_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN) return;
            if (errno == EMFILE || errno == ENFILE) return; /* try again on the next event */
            die("accept4");
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        if (!c) die("malloc");
        c->fd = fd;
        c->pending = NULL;
        c->off = c->len = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(lfd, 1024) < 0) die("listen");
    socklen_t alen = sizeof addr;
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) die("getsockname");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
    printf("{\"port\": %d, \"pid\": %d}\n", ntohs(addr.sin_port), (int)getpid());
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) on_accept(lfd);
            else if (c->pending) on_writable(c); /* waiting for EPOLLOUT (or an error) */
            else on_readable(c);             /* EPOLLIN, EPOLLHUP, EPOLLERR: read says which */
        }
    }
}
