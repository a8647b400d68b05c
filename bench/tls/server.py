"""The TLS echo server of the `tls` suite (bench/tls/__init__.py), run in a fresh process:

    python bench/tls/server.py IMPL CERT KEY

Creates a loop of implementation IMPL (bench/loops.py) and a TLS server
(loop.create_server(..., ssl=context)) on 127.0.0.1 port 0 whose protocol writes
back every chunk it gets (data_received -> transport.write), prints one JSON line
{"ok": true, "port": ..., "pid": ..., ...} and serves until killed. If it cannot,
it prints {"ok": false, "error": ...} and exits 1.

asyncio and ringloop run asyncio's SSLProtocol (Python) over their transport;
uvloop runs its own SSLProtocol (Cython, uvloop/sslproto.pyx).
"""
import asyncio
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import serverproc  # noqa: E402


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def settle_malloc():
    """Allocate and free 1 MiB, so that glibc's malloc serves blocks up to that size
    from the heap from now on (its mmap threshold rises to the size of a freed
    mmap()ed block, once). Without this, a process may keep serving every
    ssl.SSLObject.read(256 KiB) with mmap + mremap + munmap and the page faults that
    go with them (the block shrinks to the data's size before it is freed, which
    never raises the threshold): 3 syscalls per read and twice the CPU per message,
    in whichever process happened not to free a large block before (uvloop's,
    on this machine). Long-running servers are past this; so is the benchmark.
    BENCH_TLS_RAW_MALLOC=1 leaves malloc as it starts, to show the effect."""
    if os.environ.get("BENCH_TLS_RAW_MALLOC") != "1":
        block = bytearray(1 << 20)
        del block


def main(impl, cert, key):
    settle_malloc()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def start(loop):
        server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=ctx, backlog=128)
        return server.sockets[0].getsockname()[1], None

    return serverproc.serve(impl, start, openssl=ssl.OPENSSL_VERSION)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
