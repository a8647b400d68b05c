"""What asyncio's streams code costs per echoed message without any socket.

    python bench/net/streams_python.py [--loops asyncio,uvloop,ringloop] [--rounds 5]

The `streams` server of the net suite (servers.py) runs asyncio's StreamReader /
StreamWriter (pure Python in asyncio) over the loop's transport. Here the same
read -> write -> drain cycle runs over a transport that hands every write back to
the protocol on the next loop pass, so the figure is that Python code plus the
loop's own scheduling (a future, a task wake-up, one callback) and no kernel work.
Adding it to the C floor's kernel cost per echo bounds what any loop can reach in
the `streams` rows (BENCHMARKS.md, "streams: the bound").
"""
import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import loops  # noqa: E402

PAYLOAD = b"x" * 1024
MESSAGES = 200_000


class LoopbackTransport(asyncio.Transport):
    """write() gives the bytes back to the protocol on the next loop pass, as an
    echo peer would; nothing touches the kernel."""

    def __init__(self, loop, protocol):
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._closing = False

    def write(self, data):
        self._loop.call_soon(self._protocol.data_received, PAYLOAD)

    def is_closing(self):
        return self._closing

    def close(self):
        self._closing = True

    def get_extra_info(self, name, default=None):
        return default


async def echo_cycle():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2 ** 16, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport = LoopbackTransport(loop, protocol)
    protocol.connection_made(transport)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    protocol.data_received(PAYLOAD)
    start = time.process_time_ns()
    for _ in range(MESSAGES):
        data = await reader.read(65536)
        writer.write(data)
        await writer.drain()
    elapsed = time.process_time_ns() - start
    writer.close()
    return elapsed / MESSAGES / 1000


def measure(impl):
    """CPU µs per message on loop `impl`, in this process."""
    os.sched_setaffinity(0, {0})
    loop = loops.factory(impl)()
    try:
        return loop.run_until_complete(echo_cycle())
    finally:
        loop.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default="asyncio,uvloop,ringloop")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(measure(args.one))
        return
    impls = loops.expand(args.loops.split(","))
    results = {impl: [] for impl in impls}
    for _ in range(args.rounds):         # interleaved: one process per measurement
        for impl in impls:
            out = subprocess.run([sys.executable, __file__, "--one", impl],
                                 capture_output=True, text=True, check=True)
            results[impl].append(float(out.stdout))
    print("| loop | CPU µs/message (median) | spread |")
    print("|---|---:|---:|")
    for impl, values in results.items():
        med = statistics.median(values)
        print(f"| {impl} | {med:.2f} | {(max(values) - min(values)) / med:.0%} |")


if __name__ == "__main__":
    main()
