"""The `net` suite: TCP echo servers in each style (bench/net/servers.py), under
each loop implementation, driven by the C load generator bench/floor/loadgen.c.

A workload is what the load generator does: "echo" keeps CONNS connections open
and one SIZE-byte message in flight on each (write it, read until all of it came
back, compare, repeat); "churn" runs CONNS connections at a time, each connect,
one SIZE-byte exchange, close. The unit counted is one message echoed in full,
or one connection.
"""
import os
import socket

from serve import PORT, Floor, ServerSuite, Workload

SERVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers.py")
CHECK_TIMEOUT = 5.0    # seconds for the first echo


def workload(name, mode, conns, size, unit, description):
    return Workload(name, unit, (mode, PORT, conns, size), description)


WORKLOADS = [
    workload("echo_1k", "echo", 10, 1024, "msgs",
             "1 KiB messages, 10 connections, one message in flight on each"),
    workload("echo_10k", "echo", 10, 10 * 1024, "msgs",
             "10 KiB messages, 10 connections, one message in flight on each"),
    workload("echo_100k", "echo", 10, 100 * 1024, "msgs",
             "100 KiB messages, 10 connections, one message in flight on each"),
    workload("echo_128b_x1000", "echo", 1000, 128, "msgs",
             "128-byte messages, 1000 connections, one message in flight on each"),
    workload("churn", "churn", 10, 128, "conns",
             "10 at a time: connect, one 128-byte echo, shutdown, wait for the server's "
             "close, close"),
]

STYLES = {
    "protocol": "asyncio.Protocol: data_received -> transport.write",
    "streams": "asyncio.start_server: await reader.read(65536) -> writer.write, "
               "await writer.drain()",
    "sock": "loop.sock_accept, a task per connection: await loop.sock_recv(sock, 65536) -> "
            "await loop.sock_sendall(sock, data)",
}

# The C echo servers of the `protocol` rows, by --floors key. "epoll" is the C floor
# (level-triggered epoll); the others are the same server over io_uring, one
# strategy each (see the head of bench/floor/uring_echo_server.c).
FLOORS = {
    "epoll": Floor("C floor", "echo_server"),
    "uring-poll": Floor("C io_uring poll", "uring_echo_server", ("-m", "poll")),
    "uring-pollms": Floor("C io_uring ms poll", "uring_echo_server", ("-m", "pollms")),
    "uring-poll-msaccept": Floor("C io_uring poll+ms accept", "uring_echo_server",
                                 ("-m", "poll", "-a", "multishot")),
    "uring-recv": Floor("C io_uring recv", "uring_echo_server", ("-m", "recv")),
    "uring-recv-send2": Floor("C io_uring recv+send(2)", "uring_echo_server",
                              ("-m", "recv", "-s", "syscall")),
    "uring-hybrid": Floor("C io_uring ms recv+send(2)", "uring_echo_server", ("-m", "hybrid")),
    "uring-completion": Floor("C io_uring completion", "uring_echo_server",
                              ("-m", "completion")),
    "uring-completion-1024": Floor("C io_uring completion 1024 bufs", "uring_echo_server",
                                   ("-m", "completion", "-n", "1024")),
    "uring-completion-copy": Floor("C io_uring completion copy", "uring_echo_server",
                                   ("-m", "completion", "-c")),
}


def check_echo(port):
    """One 128-byte round trip on a fresh connection (raises if it fails)."""
    msg = bytes(range(128))
    with socket.create_connection(("127.0.0.1", port), timeout=CHECK_TIMEOUT) as s:
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(len(msg) - len(got))
            if not chunk:
                raise ConnectionError("server closed the connection")
            got += chunk
    if got != msg:
        raise ValueError("echo differs from the message sent")


def failure(r):
    if r["errors"]:
        return f"{r['errors']} errors (first: {r['first_error']})"
    if not r["messages"]:
        st = r["at_end"]
        return (f"nothing completed in the measured window; at its end {st['connecting']} "
                f"connecting, {st['waiting_echo']} waiting for an echo, "
                f"{st['waiting_close']} waiting for the server to close")
    return None


SUITE = ServerSuite(
    name="net",
    workloads=WORKLOADS,
    styles=STYLES,
    floor_style="protocol",
    floors=FLOORS,
    default_floors="epoll,uring-poll,uring-recv",  # the floor, ringloop's reads, the pick
    loadgen="loadgen",
    count="messages",
    python_server=lambda style, impl: [SERVERS, style, impl],
    check=check_echo,
    failure=failure,
)
