"""The `net` suite: TCP echo servers in each style (bench/net/servers.py), under
each loop implementation, driven by the C load generator bench/floor/loadgen.c.

A workload is what the load generator does: `mode` "echo" keeps `conns`
connections open and one `size`-byte message in flight on each (write it, read
until all of it came back, compare, repeat); "churn" runs `conns` connections at
a time, each connect, one `size`-byte exchange, close. The unit counted is one
message echoed in full, or one connection.
"""
from typing import NamedTuple


class Workload(NamedTuple):
    name: str
    mode: str  # "echo" or "churn" (bench/floor/loadgen.c)
    conns: int
    size: int
    unit: str
    description: str


WORKLOADS = [
    Workload("echo_1k", "echo", 10, 1024, "msgs",
             "1 KiB messages, 10 connections, one message in flight on each"),
    Workload("echo_10k", "echo", 10, 10 * 1024, "msgs",
             "10 KiB messages, 10 connections, one message in flight on each"),
    Workload("echo_100k", "echo", 10, 100 * 1024, "msgs",
             "100 KiB messages, 10 connections, one message in flight on each"),
    Workload("echo_128b_x1000", "echo", 1000, 128, "msgs",
             "128-byte messages, 1000 connections, one message in flight on each"),
    Workload("churn", "churn", 10, 128, "conns",
             "10 at a time: connect, one 128-byte echo, shutdown, wait for the server's "
             "close, close"),
]

BY_NAME = {w.name: w for w in WORKLOADS}

# Server styles (bench/net/servers.py). The C floors (FLOORS) do the work of
# FLOOR_STYLE.
STYLES = {
    "protocol": "asyncio.Protocol: data_received -> transport.write",
    "streams": "asyncio.start_server: await reader.read(65536) -> writer.write, "
               "await writer.drain()",
    "sock": "loop.sock_accept, a task per connection: await loop.sock_recv(sock, 65536) -> "
            "await loop.sock_sendall(sock, data)",
}
FLOOR_STYLE = "protocol"

# The C echo servers of the FLOOR_STYLE rows, by --floors key: (column name, program
# in bench/floor/, arguments). "epoll" is the C floor; the others are the same server
# over io_uring, one strategy each (see the head of bench/floor/uring_echo_server.c).
FLOORS = {
    "epoll": ("C floor", "echo_server", []),
    "uring-poll": ("C io_uring poll", "uring_echo_server", ["-m", "poll"]),
    "uring-pollms": ("C io_uring ms poll", "uring_echo_server", ["-m", "pollms"]),
    "uring-poll-msaccept": ("C io_uring poll+ms accept", "uring_echo_server",
                            ["-m", "poll", "-a", "multishot"]),
    "uring-recv": ("C io_uring recv", "uring_echo_server", ["-m", "recv"]),
    "uring-recv-send2": ("C io_uring recv+send(2)", "uring_echo_server",
                         ["-m", "recv", "-s", "syscall"]),
    "uring-hybrid": ("C io_uring ms recv+send(2)", "uring_echo_server", ["-m", "hybrid"]),
    "uring-completion": ("C io_uring completion", "uring_echo_server", ["-m", "completion"]),
    "uring-completion-1024": ("C io_uring completion 1024 bufs", "uring_echo_server",
                              ["-m", "completion", "-n", "1024"]),
    "uring-completion-copy": ("C io_uring completion copy", "uring_echo_server",
                              ["-m", "completion", "-c"]),
}
DEFAULT_FLOORS = "epoll,uring-poll,uring-recv"  # the floor, ringloop today, the pick
FLOOR_BY_NAME = {name: (program, args) for name, program, args in FLOORS.values()}
