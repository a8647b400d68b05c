/* The floor of the UDP echo benchmark: a UDP echo server with no event loop at
 * all, one blocking recvfrom(2) and one sendto(2) per datagram, the least a
 * one-datagram-at-a-time server can ask of the kernel.
 *
 *   udp_echo_server      (binds 127.0.0.1, port 0; prints {"port": N, "pid": N})
 *
 * Runs until killed. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    static char buf[65536];
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        perror("udp_echo_server");
        return 1;
    }
    printf("{\"ok\": true, \"port\": %d, \"pid\": %d}\n", ntohs(addr.sin_port), getpid());
    fflush(stdout);
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
        if (n >= 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
    }
}
