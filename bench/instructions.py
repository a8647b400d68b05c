"""Instructions per operation on the hot paths, counted by valgrind:

    python bench/instructions.py [--loops ringloop] [--bench NAME,...] [--n N]

Each cell runs the workload twice under `valgrind --tool=cachegrind --cache-sim=no`,
with N and with 2N operations, and prints (Ir(2N) - Ir(N)) / N: the cost of one
operation with interpreter start-up, imports and set-up cancelled out. Instruction
counts do not move with the load of a shared host, so a change to the hot path can be
judged by them where wall-clock runs are too noisy. User space only (valgrind does not
see the kernel).

Workloads (the core ones are bench/core's, run through the same prepare/go/cleanup):
  call_soon         one callback re-scheduling itself with call_soon
  call_soon_x1000   1000 callbacks queued at once, each re-scheduling itself
  task_switch_x2    2 tasks looping `await asyncio.sleep(0)` (one operation: a switch)
  call_later_cancel call_later then cancel, 1000 pending; every 50th timer fires
  protocol_echo     128 bytes ping-pong over a socketpair between two Protocols on
                    create_connection(sock=...) transports (one operation: one
                    data_received + write)
  sock_pingpong     bench/net/sock_pingpong.py: sock_recv + sock_sendall
"""
import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import loops  # noqa: E402

# name -> operations in the smaller run (the larger one does twice as many)
WORKLOADS = {
    "call_soon": 100_000,
    "call_soon_x1000": 100_000,
    "task_switch_x2": 50_000,
    "call_later_cancel": 50_000,
    "protocol_echo": 20_000,
    "sock_pingpong": 6_000,
}


class _Env:
    timeout = 600.0
    producer_cpu = None


def _run_core(loop, name, n):
    from core import BY_NAME

    workload = BY_NAME[name]
    go, cleanup = workload.prepare(loop, n, _Env(), **workload.params)
    done = go()
    cleanup()
    if done != n:
        raise RuntimeError(f"{name}: {done} of {n} operations")


class _Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class _Pinger(asyncio.Protocol):
    def __init__(self, rounds, done):
        self.left = rounds
        self.done = done

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"x" * 128)

    def data_received(self, data):
        self.left -= 1
        if self.left > 0:
            self.transport.write(data)
        elif not self.done.done():
            self.done.set_result(None)


async def _protocol_echo(rounds):
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    done = loop.create_future()
    ta, _ = await loop.create_connection(lambda: _Pinger(rounds, done), sock=a)
    tb, _ = await loop.create_connection(_Echo, sock=b)
    await done
    ta.close()
    tb.close()
    await asyncio.sleep(0)


def child(name, impl, n):
    loop = loops.factory(impl)()
    try:
        if name == "protocol_echo":
            # n operations: each round is one data_received on each side.
            loop.run_until_complete(_protocol_echo(n // 2))
        elif name == "sock_pingpong":
            sys.path.insert(0, os.path.join(HERE, "net"))
            import sock_pingpong

            loop.run_until_complete(sock_pingpong.main(n // 2))
        else:
            _run_core(loop, name, n)
    finally:
        loop.close()


def instructions(name, impl, n):
    with tempfile.NamedTemporaryFile(prefix="cg.", suffix=".out") as out:
        proc = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no",
             f"--cachegrind-out-file={out.name}",
             sys.executable, os.path.abspath(__file__), "--child", name, impl, str(n)],
            capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {impl} {n}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    return int(match.group(1).replace(",", ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", default="ringloop",
                    help="comma-separated bench/loops.py names (default: ringloop, both backends)")
    ap.add_argument("--bench", default=",".join(WORKLOADS),
                    help="comma-separated workloads (default: all)")
    ap.add_argument("--n", type=float, default=1.0,
                    help="scale the operation counts by this factor")
    ap.add_argument("--child", nargs=3, metavar=("NAME", "IMPL", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        name, impl, n = args.child
        child(name, impl, int(n))
        return
    impls = loops.expand(args.loops.split(","))
    names = [b.strip() for b in args.bench.split(",") if b.strip()]
    for name in names:
        if name not in WORKLOADS:
            ap.error(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
    print("Instructions per operation (valgrind cachegrind, Ir(2N) - Ir(N) over N)\n")
    print("| workload | N | " + " | ".join(impls) + " |")
    print("|---|---:|" + "---:|" * len(impls))
    for name in names:
        n = max(2, int(WORKLOADS[name] * args.n)) // 2 * 2
        cells = []
        for impl in impls:
            cost = (instructions(name, impl, 2 * n) - instructions(name, impl, n)) / n
            cells.append(f"{cost:.0f}")
        print(f"| {name} | {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
