/* UDP echo servers in C, one per way an event loop can wait for a datagram, to price
 * the wait strategy alone (no Python): what would ringloop's io_uring backend gain
 * from a receive operation instead of readiness + recvmmsg(2)?
 *
 *   udp_uring_echo_server MODE      (binds 127.0.0.1, port 0; prints {"port": N, "pid": N})
 *
 * MODE, per datagram:
 *   epoll      epoll_wait (level-triggered) + recvmmsg + sendto          (ringloop-epoll)
 *   poll       io_uring_enter waiting on a one-shot POLL_ADD, re-armed with the
 *              next enter, + recvmmsg + sendto
 *   multishot  io_uring_enter on a multishot POLL_ADD + recvmmsg + sendto (ringloop-io_uring)
 *   recvmsg    io_uring_enter on an IORING_OP_RECVMSG (re-armed with the next enter)
 *              + sendto: the datagram comes with the wake-up
 *   ring       IORING_OP_RECVMSG and IORING_OP_SENDMSG, both through the ring: one
 *              io_uring_enter per datagram
 * The io_uring modes set up the ring as ringloop does (SINGLE_ISSUER, DEFER_TASKRUN,
 * COOP_TASKRUN when the kernel has them). recvmmsg returning fewer than its 4 slots
 * is taken as "queue empty", as ringloop does. Runs until killed. Build:
 * cc -O2 -o udp_uring_echo_server udp_uring_echo_server.c -luring */
#define _GNU_SOURCE
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOTS 4
#define SLOT 65536

static char buf[SLOTS][SLOT];
static struct sockaddr_storage names[SLOTS];

/* Echo what one recvmmsg gets; returns how many datagrams it got. */
static int drain(int fd) {
    struct mmsghdr msgs[SLOTS];
    struct iovec iov[SLOTS];
    int n;
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < SLOTS; i++) {
        iov[i] = (struct iovec){buf[i], SLOT};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &names[i];
        msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    n = recvmmsg(fd, msgs, SLOTS, MSG_DONTWAIT, NULL);
    for (int i = 0; i < n; i++)
        sendto(fd, buf[i], msgs[i].msg_len, MSG_DONTWAIT, (struct sockaddr *)&names[i],
               msgs[i].msg_hdr.msg_namelen);
    return n;
}

static void drain_all(int fd) {
    while (drain(fd) == SLOTS)
        ;
}

static void ring_init(struct io_uring *ring) {
    unsigned flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                     IORING_SETUP_COOP_TASKRUN;
    if (io_uring_queue_init(64, ring, flags) < 0 && io_uring_queue_init(64, ring, 0) < 0) {
        perror("io_uring_queue_init");
        _exit(1);
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "epoll";
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct io_uring ring;
    struct io_uring_cqe *cqe;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        perror("udp_uring_echo_server");
        return 1;
    }
    printf("{\"ok\": true, \"port\": %d, \"pid\": %d}\n", ntohs(addr.sin_port), getpid());
    fflush(stdout);
    if (!strcmp(mode, "epoll")) {
        struct epoll_event ev = {.events = EPOLLIN}, out[8];
        int ep = epoll_create1(0);
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        for (;;)
            if (epoll_wait(ep, out, 8, -1) > 0)
                drain_all(fd);
    }
    ring_init(&ring);
    if (!strcmp(mode, "poll") || !strcmp(mode, "multishot")) {
        int multi = !strcmp(mode, "multishot"), armed = 0;
        for (;;) {
            if (!armed) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                if (multi)
                    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
                else
                    io_uring_prep_poll_add(sqe, fd, POLLIN);
                armed = 1;
            }
            if (io_uring_submit_and_wait(&ring, 1) < 0)
                continue;
            while (io_uring_peek_cqe(&ring, &cqe) == 0) {
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    armed = 0;
                io_uring_cqe_seen(&ring, cqe);
                drain_all(fd);
            }
        }
    }
    if (!strcmp(mode, "recvmsg") || !strcmp(mode, "ring")) {
        int via_ring = !strcmp(mode, "ring");
        struct iovec iov = {buf[0], SLOT}, siov = {buf[0], 0};
        struct msghdr msg = {.msg_name = &names[0], .msg_iov = &iov, .msg_iovlen = 1};
        struct msghdr smsg = {.msg_name = &names[0], .msg_iov = &siov, .msg_iovlen = 1};
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        msg.msg_namelen = sizeof names[0];
        io_uring_prep_recvmsg(sqe, fd, &msg, 0);
        io_uring_sqe_set_data64(sqe, 1);
        for (;;) {
            if (io_uring_submit_and_wait(&ring, 1) < 0)
                continue;
            while (io_uring_peek_cqe(&ring, &cqe) == 0) {
                int res = cqe->res;
                int is_recv = cqe->user_data == 1;
                io_uring_cqe_seen(&ring, cqe);
                if (!is_recv)
                    continue;   /* a SENDMSG done: msg and buf[0] are free again */
                if (res >= 0) {
                    if (via_ring) {
                        /* The send goes with the next enter; the receive after it
                         * waits until the send has completed (IOSQE_IO_LINK), as the
                         * buffer is shared. */
                        siov.iov_len = (size_t)res;
                        smsg.msg_namelen = msg.msg_namelen;
                        sqe = io_uring_get_sqe(&ring);
                        io_uring_prep_sendmsg(sqe, fd, &smsg, 0);
                        io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
                        io_uring_sqe_set_data64(sqe, 2);
                    } else {
                        sendto(fd, buf[0], (size_t)res, MSG_DONTWAIT,
                               (struct sockaddr *)&names[0], msg.msg_namelen);
                    }
                }
                msg.msg_namelen = sizeof names[0];
                sqe = io_uring_get_sqe(&ring);
                io_uring_prep_recvmsg(sqe, fd, &msg, 0);
                io_uring_sqe_set_data64(sqe, 1);
            }
        }
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
