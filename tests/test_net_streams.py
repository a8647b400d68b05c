"""asyncio streams (start_server/open_connection, Unix variants) on the
loop under test."""
import asyncio
import hashlib
import socket

import pytest

from netutil import free_port, pattern, settle

pytestmark = pytest.mark.timeout(20)


class EchoLines:
    """Stream handler: echoes each line; records how each session ended."""

    def __init__(self):
        self.sessions = []
        self.done = []

    async def __call__(self, reader, writer):
        lines = []
        self.sessions.append(lines)
        try:
            while line := await reader.readline():
                lines.append(line)
                writer.write(line)
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()
            self.done.append(True)


async def _close(writer):
    writer.close()
    await writer.wait_closed()


def test_echo(loop, run):
    async def main():
        handler = EchoLines()
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(host, port)
        assert writer.get_extra_info("peername") == (host, port)
        assert writer.transport.get_extra_info("socket") is not None
        for i in range(10):
            writer.write(f"line {i}\n".encode())
            await writer.drain()
            assert await reader.readline() == f"line {i}\n".encode()
        await _close(writer)
        server.close()
        await server.wait_closed()
        while not handler.done:
            await asyncio.sleep(0.01)
        assert handler.sessions == [[f"line {i}\n".encode() for i in range(10)]]
    run(main())


def test_readline_splits_and_partial(loop, run):
    async def handler(reader, writer):
        writer.write(b"one\ntwo\nthr")
        await writer.drain()
        writer.write(b"ee\nno newline")
        await _close(writer)

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname())
        assert await reader.readline() == b"one\n"
        assert await reader.readline() == b"two\n"
        assert await reader.readline() == b"three\n"
        assert await reader.readline() == b"no newline"  # partial at EOF
        assert await reader.readline() == b""
        assert reader.at_eof()
        await _close(writer)
        server.close()
        await server.wait_closed()
    run(main())


def test_readexactly_and_incomplete(loop, run):
    async def handler(reader, writer):
        writer.write(b"0123456789abc")
        await _close(writer)

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname())
        assert await reader.readexactly(4) == b"0123"
        assert await reader.readexactly(6) == b"456789"
        with pytest.raises(asyncio.IncompleteReadError) as ei:
            await reader.readexactly(10)
        assert ei.value.partial == b"abc"
        assert ei.value.expected == 10
        assert isinstance(ei.value, EOFError)
        await _close(writer)
        server.close()
        await server.wait_closed()
    run(main())


def test_readuntil_and_read(loop, run):
    async def handler(reader, writer):
        writer.write(b"HEAD\r\nbody bytes")
        await _close(writer)

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname())
        assert await reader.readuntil(b"\r\n") == b"HEAD\r\n"
        assert await reader.read(4) == b"body"
        assert await reader.read() == b" bytes"
        assert await reader.read() == b""
        await _close(writer)
        server.close()
        await server.wait_closed()
    run(main())


@pytest.mark.timeout(40)
def test_drain_waits_for_slow_peer(loop, run):
    """drain() blocks while the transport's buffer is above the high-water
    mark, and returns once the peer has read enough; all bytes arrive."""
    data = pattern(16 * 1024 * 1024)

    async def main():
        go = asyncio.Event()
        result = loop.create_future()

        async def handler(reader, writer):
            await go.wait()
            h = hashlib.sha256()
            n = 0
            while chunk := await reader.read(65536):
                h.update(chunk)
                n += len(chunk)
            result.set_result((n, h.hexdigest()))
            await _close(writer)

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname())
        writer.write(data)
        drain = loop.create_task(writer.drain())
        await settle()
        assert not drain.done()  # nobody reads: drain waits
        go.set()
        await asyncio.wait_for(drain, 20)
        assert writer.can_write_eof()
        writer.write_eof()
        assert await result == (len(data), hashlib.sha256(data).hexdigest())
        assert await reader.read() == b""
        await _close(writer)
        server.close()
        await server.wait_closed()
    run(main(), timeout=35)


def test_write_eof_half_close(loop, run):
    async def handler(reader, writer):
        request = await reader.read()  # until EOF
        writer.write(b"got " + request)
        await _close(writer)

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname())
        writer.write(b"the request")
        writer.write_eof()
        assert await reader.read() == b"got the request"
        await _close(writer)
        server.close()
        await server.wait_closed()
    run(main())


def test_open_connection_refused(loop, run):
    with pytest.raises(ConnectionRefusedError):
        run(asyncio.open_connection("127.0.0.1", free_port()))


def test_open_connection_with_sock(loop, run):
    async def main():
        handler = EchoLines()
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        sock = socket.create_connection(server.sockets[0].getsockname())
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"via sock\n")
        assert await reader.readline() == b"via sock\n"
        await _close(writer)
        assert sock.fileno() == -1
        server.close()
        await server.wait_closed()
        while not handler.done:
            await asyncio.sleep(0.01)
    run(main())


def test_many_stream_clients(loop, run):
    async def main():
        handler = EchoLines()
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()

        async def client(i):
            reader, writer = await asyncio.open_connection(*addr)
            msg = f"client {i}\n".encode()
            writer.write(msg)
            got = await reader.readline()
            await _close(writer)
            return got == msg
        assert all(await asyncio.gather(*(client(i) for i in range(50))))
        server.close()
        await server.wait_closed()
        while len(handler.done) < 50:
            await asyncio.sleep(0.01)
    run(main())


def test_start_server_serve_forever_cancel(loop, run):
    async def main():
        handler = EchoLines()
        server = await asyncio.start_server(handler, "127.0.0.1", 0,
                                            start_serving=False)
        assert not server.is_serving()
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname())
        writer.write(b"x\n")
        assert await reader.readline() == b"x\n"
        await _close(writer)
        while not handler.done:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()
    run(main())


# ---------------------------------------------------------------- unix

def test_unix_echo(loop, run, tmp_path):
    path = str(tmp_path / "streams.sock")

    async def main():
        handler = EchoLines()
        server = await asyncio.start_unix_server(handler, path)
        assert server.sockets[0].getsockname() == path
        reader, writer = await asyncio.open_unix_connection(path)
        assert writer.get_extra_info("peername") == path
        writer.write(b"over unix\nsecond\n")
        assert await reader.readline() == b"over unix\n"
        assert await reader.readline() == b"second\n"
        writer.write_eof()
        assert await reader.read() == b""
        await _close(writer)
        server.close()
        await server.wait_closed()
        while not handler.done:
            await asyncio.sleep(0.01)
        assert handler.sessions == [[b"over unix\n", b"second\n"]]
    run(main())


def test_unix_open_missing_path(loop, run, tmp_path):
    with pytest.raises(FileNotFoundError):
        run(asyncio.open_unix_connection(str(tmp_path / "missing.sock")))
