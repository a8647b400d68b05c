"""The `udp` suite: a UDP echo server (bench/udp/server.py: a datagram endpoint
whose protocol sends every datagram back with transport.sendto) under each loop
implementation, driven by the C load generator bench/floor/udp_loadgen.c, which
keeps DEPTH datagrams in flight per connected socket and checks every echo.

The C floor is bench/floor/udp_echo_server.c (blocking recvfrom/sendto, no event
loop); the other floors are bench/floor/udp_uring_echo_server.c, one wait
strategy each (`--loops none --floors all` compares them alone).

Datagrams per second of a ping-pong are bound by the round trip (both processes
sleep and wake per datagram); the server's CPU per datagram is what to compare.
"""
import os

from serve import PORT, Floor, ServerSuite, Workload

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")


def workload(name, sockets, depth, size, description):
    return Workload(name, "dgrams", (PORT, sockets, depth, size), description)


WORKLOADS = [
    workload("pingpong_64", 1, 1, 64, "1 socket, 1 datagram of 64 B in flight"),
    workload("clients10_256", 10, 1, 256, "10 sockets, 1 datagram of 256 B in flight on each"),
    workload("burst_256", 4, 16, 256, "4 sockets, 16 datagrams of 256 B in flight on each"),
    workload("large_8k", 4, 2, 8192, "4 sockets, 2 datagrams of 8 KiB in flight on each"),
]

FLOORS = {
    "blocking": Floor("C floor", "udp_echo_server"),
    "epoll": Floor("C epoll", "udp_uring_echo_server", ("epoll",)),
    "uring-poll": Floor("C io_uring poll", "udp_uring_echo_server", ("poll",)),
    "uring-multishot": Floor("C io_uring ms poll", "udp_uring_echo_server", ("multishot",)),
    "uring-recvmsg": Floor("C io_uring recvmsg", "udp_uring_echo_server", ("recvmsg",)),
    "uring-ring": Floor("C io_uring recvmsg+sendmsg", "udp_uring_echo_server", ("ring",)),
}


def failure(r):
    return f"{r['bad']} echoes differed from what was sent" if r["bad"] else None


def losses(results):
    lost = sum(r["loadgen"]["lost"] for by_impl in results.values()
               for rounds in by_impl.values() for r in rounds if r.get("ok"))
    return [f"{lost} datagrams were lost (re-sent after 100 ms of silence)"] if lost else []


SUITE = ServerSuite(
    name="udp",
    workloads=WORKLOADS,
    styles={"protocol": "create_datagram_endpoint, a DatagramProtocol: datagram_received -> "
                        "transport.sendto(data, addr)"},
    floor_style="protocol",
    floors=FLOORS,
    default_floors="blocking",
    loadgen="udp_loadgen",
    count="datagrams",
    python_server=lambda style, impl: [SERVER, impl],
    failure=failure,
    notes=losses,
)
