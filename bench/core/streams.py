"""asyncio's streams code without a socket: the `read -> write -> drain` cycle of
the net suite's `streams` echo server, over a transport whose write() hands the
bytes back to the protocol on the next loop pass, as an echo peer would. What it
costs is asyncio's StreamReader/StreamWriter (Python in every loop) plus the
loop's scheduling of it (a future, a task wake-up, one callback), and no kernel
work; added to the C floor's kernel cost per echo, it bounds what any loop can
reach in the `streams` rows (docs/performance-notes.md, "Bounds")."""
import asyncio

PAYLOAD = b"x" * 1024


class LoopbackTransport(asyncio.Transport):
    """write() gives the bytes back to the protocol on the next loop pass."""

    def __init__(self, loop, protocol):
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._closing = False

    def write(self, data):
        self._loop.call_soon(self._protocol.data_received, data)

    def is_closing(self):
        return self._closing

    def close(self):
        self._closing = True

    def get_extra_info(self, name, default=None):
        return default


def prepare(loop, n, env):
    async def cycle():
        reader = asyncio.StreamReader(limit=2 ** 16, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport = LoopbackTransport(loop, protocol)
        protocol.connection_made(transport)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        protocol.data_received(PAYLOAD)
        for _ in range(n):
            data = await reader.read(65536)
            writer.write(data)
            await writer.drain()
        writer.close()
        return n

    def go():
        return loop.run_until_complete(cycle())

    def cleanup():
        pass

    return go, cleanup
