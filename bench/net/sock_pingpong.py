"""sock_recv + sock_sendall in a ping-pong over a socketpair, inside one loop:

    python bench/net/sock_pingpong.py N IMPL      (IMPL: a bench/loops.py name)

Two tasks pass a 128-byte message back and forth N times each and print the wall
time per sock_recv + sock_sendall. Every sock_recv waits, so this is the sock_*
wait path without the kernel's TCP work. Under valgrind (cachegrind, Ir of 2N runs
minus N runs, divided by 2N) it gives instructions per operation, which this host's
noise does not move.
"""
import asyncio
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import loops  # noqa: E402


async def side(loop, sock, rounds, first):
    if first:
        await loop.sock_sendall(sock, b"x" * 128)
    for _ in range(rounds):
        data = await loop.sock_recv(sock, 65536)
        await loop.sock_sendall(sock, data)


async def main(rounds):
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        start = time.perf_counter()
        await asyncio.gather(side(loop, a, rounds, True), side(loop, b, rounds, False))
        return time.perf_counter() - start


if __name__ == "__main__":
    rounds, impl = int(sys.argv[1]), sys.argv[2]
    loop = loops.factory(impl)()
    try:
        elapsed = loop.run_until_complete(main(rounds))
    finally:
        loop.close()
    print(f"{impl}: {elapsed / (2 * rounds) * 1e6:.2f} us per sock_recv + sock_sendall")
