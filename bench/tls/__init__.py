"""The `tls` suite: a TLS echo server (bench/tls/server.py: create_server(ssl=...)
with a protocol whose data_received writes the data back) under each loop
implementation, driven by the C load generator bench/floor/tls_loadgen.c
(OpenSSL). The generator finishes its handshakes in the warm-up, then keeps one
message in flight per connection and checks every echoed byte. The C floor is
bench/floor/tls_echo_server.c: the same echo in C over OpenSSL and epoll.

asyncio runs its Python SSLProtocol (asyncio/sslproto.py); uvloop its own,
compiled; ringloop its compiled TLS layer. Each Python server first frees a
1 MiB block so that glibc's malloc serves SSLObject.read()'s 256 KiB buffers
from the heap (see settle_malloc in server.py).
"""
import os

from serve import PORT, Floor, ServerSuite, Workload

from . import certs

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")

WORKLOADS = [
    Workload("echo_1k", "msgs", (PORT, 10, 1024),
             "10 connections, one 1 KiB message in flight on each"),
    Workload("echo_100k", "msgs", (PORT, 10, 100 * 1024),
             "10 connections, one 100 KiB message in flight on each"),
]


def failure(r):
    return f"{r['bad']} echoed chunks differed from what was sent" if r["bad"] else None


def negotiated(results):
    for by_impl in results.values():
        for rounds in by_impl.values():
            for r in rounds:
                if r.get("ok"):
                    return [f"negotiated: {r['loadgen']['version']} {r['loadgen']['cipher']}"]
    return []


SUITE = ServerSuite(
    name="tls",
    workloads=WORKLOADS,
    styles={"protocol": "create_server(ssl=...), a Protocol: data_received -> transport.write"},
    floor_style="protocol",
    floors={"epoll": Floor("C floor", "tls_echo_server")},
    default_floors="epoll",
    loadgen="tls_loadgen",
    count="messages",
    python_server=lambda style, impl: [SERVER, impl, *certs.ensure()],
    floor_args=certs.ensure,
    failure=failure,
    notes=negotiated,
    warmup=(1.0, 0.5),  # the handshakes happen in the warm-up
)
