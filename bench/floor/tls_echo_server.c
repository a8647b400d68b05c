/* The floor of the TLS echo benchmark (the `tls` suite, bench/tls/): a TLS echo server in C
 * (OpenSSL, one thread, non-blocking sockets, level-triggered epoll), no Python.
 *
 *   tls_echo_server CERT KEY
 *
 * Listens on 127.0.0.1 port 0, prints {"ok": true, "port": ..., "pid": ...} and
 * serves until killed: every byte read from a connection is written back. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)

struct conn {
    int fd;
    SSL *ssl;
    int handshaking;
    unsigned events;
    unsigned char *pending;     /* read but not yet written back */
    size_t pending_len, pending_off;
};

static void die(const char *what) {
    char buf[200];
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%s", strerror(errno));
    printf("{\"ok\": false, \"error\": \"%s: %s\"}\n", what, buf);
    exit(1);
}

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    SSL_free(c->ssl);
    free(c->pending);
    free(c);
}

static void set_interest(int ep, struct conn *c, unsigned events) {
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

/* Returns 0 when the connection is gone. */
static int drive(int ep, struct conn *c) {
    if (c->handshaking) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                set_interest(ep, c, err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLIN | EPOLLOUT);
                return 1;
            }
            return 0;
        }
        c->handshaking = 0;
    }
    for (;;) {
        /* Write back what is pending first; read more only when all went out. */
        while (c->pending_off < c->pending_len) {
            int w = SSL_write(c->ssl, c->pending + c->pending_off,
                              (int)(c->pending_len - c->pending_off));
            if (w > 0) {
                c->pending_off += (size_t)w;
                continue;
            }
            int err = SSL_get_error(c->ssl, w);
            if (err == SSL_ERROR_WANT_WRITE) {
                set_interest(ep, c, EPOLLOUT);
                return 1;
            }
            if (err == SSL_ERROR_WANT_READ) {
                set_interest(ep, c, EPOLLIN);
                return 1;
            }
            return 0;
        }
        int r = SSL_read(c->ssl, c->pending, BUF);
        if (r > 0) {
            c->pending_len = (size_t)r;
            c->pending_off = 0;
            continue;
        }
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ) {
            set_interest(ep, c, EPOLLIN);
            return 1;
        }
        if (err == SSL_ERROR_WANT_WRITE) {
            set_interest(ep, c, EPOLLIN | EPOLLOUT);
            return 1;
        }
        return 0;  /* close_notify, EOF or error */
    }
}

int main(int argc, char **argv) {
    /* a client that closes while an echo is being written must not kill the server */
    signal(SIGPIPE, SIG_IGN);
    if (argc != 3) {
        fprintf(stderr, "usage: %s CERT KEY\n", argv[0]);
        return 2;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1)
        die("certificate");
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 128) < 0 ||
        getsockname(ls, (struct sockaddr *)&addr, &alen) < 0)
        die("listen");
    int ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    printf("{\"ok\": true, \"port\": %d, \"pid\": %d, \"impl\": \"C floor\"}\n",
           ntohs(addr.sin_port), getpid());
    fflush(stdout);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                int fd, one = 1;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    c->ssl = SSL_new(ctx);
                    c->pending = malloc(BUF);
                    c->handshaking = 1;
                    SSL_set_fd(c->ssl, fd);
                    SSL_set_accept_state(c->ssl);
                    c->events = EPOLLIN;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (!drive(ep, c))
                drop(ep, c);
        }
    }
}
