"""The UDP echo server of the `udp` suite (bench/udp/__init__.py), run in a fresh process:

    python bench/udp/server.py IMPL

Creates a loop of implementation IMPL (bench/loops.py), a datagram endpoint on
127.0.0.1 port 0 whose protocol sends every datagram back to its sender
(datagram_received -> transport.sendto(data, addr)), prints one JSON line
{"ok": true, "port": ..., "pid": ..., ...} and serves until killed. If it cannot,
it prints {"ok": false, "error": ...} and exits 1.
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import serverproc  # noqa: E402


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def main(impl):
    async def start(loop):
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        return transport.get_extra_info("sockname")[1], None

    return serverproc.serve(impl, start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
