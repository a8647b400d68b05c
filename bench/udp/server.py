"""The UDP echo server of bench/udp/run.py, run in a fresh process:

    python bench/udp/server.py IMPL

Creates a loop of implementation IMPL (bench/loops.py), a datagram endpoint on
127.0.0.1 port 0 whose protocol sends every datagram back to its sender
(datagram_received -> transport.sendto(data, addr)), prints one JSON line
{"ok": true, "port": ..., "pid": ..., ...} and serves until killed. If it cannot,
it prints {"ok": false, "error": ...} and exits 1.
"""
import asyncio
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import loops  # noqa: E402


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def main(impl):
    try:
        loop = loops.factory(impl)()
        asyncio.set_event_loop(loop)
        transport, _ = loop.run_until_complete(
            loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0)))
        port = transport.get_extra_info("sockname")[1]
        print(json.dumps({"ok": True, "port": port, "pid": os.getpid(),
                          **loops.describe(impl, loop)}), flush=True)
        loop.run_forever()
    except BaseException as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}",
                          "traceback": traceback.format_exc()}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
