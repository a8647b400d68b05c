"""An accepted connection's transport over its whole life: the socket in its extra
info (the loop may make the socket object only when asked for it), bulk reads and
their transitions, EOF and resets in either read mode, and the close the peer sees.
asyncio semantics throughout."""
import asyncio
import gc
import hashlib
import os
import socket
import struct

import pytest

from netutil import WAIT_CLOSED_WAITS_FOR_CLIENTS, Factory, Proto, settle, shutdown

pytestmark = pytest.mark.timeout(30)


async def serve(loop, proto_cls=Proto, **kwargs):
    """A server on 127.0.0.1 and one blocking client socket connected to it;
    returns (server, factory, client, server-side protocol)."""
    f = Factory(loop, proto_cls, **kwargs)
    server = await loop.create_server(f, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    sp = await f.get(0)
    return server, f, client, sp


def test_extra_socket(loop, run):
    """extra['socket'] is the connection's socket: its fd, addresses and kind,
    and TCP_NODELAY is on."""
    async def main():
        server, f, client, sp = await serve(loop)
        sock = sp.transport.get_extra_info("socket")
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert sock is sp.transport.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert sock.getpeername() == client.getsockname()
        assert sock.getsockname() == client.getpeername()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.gettimeout() == 0
        client.close()
        await sp.lost
        await shutdown(server, f)
    run(main())


def test_extra_socket_after_close(loop, run):
    """Asked for only after connection_lost, extra['socket'] is a closed socket
    (fileno -1), as asyncio's transports keep it; asked for before, the same
    object ends up closed."""
    async def main():
        server, f, client, sp = await serve(loop)
        client2 = socket.create_connection(server.sockets[0].getsockname())
        sp2 = await f.get(1)
        early = sp2.transport.get_extra_info("socket")
        assert early.fileno() >= 0
        for c in (client, client2):
            c.close()
        await sp.lost
        await sp2.lost
        late = sp.transport.get_extra_info("socket")
        assert late is not None and late.fileno() == -1
        assert late.family == socket.AF_INET
        assert early.fileno() == -1
        assert sp.transport.get_extra_info("socket") is late
        await shutdown(server, f)
    run(main())


def test_closed_fd_number_reused(loop, run):
    """Once a transport closed its fd, nothing of it closes that fd number again
    (the number is then free for another socket): not its socket object, made
    before the close or never, and not the transport's own finalizer."""
    async def main():
        server, f, client, sp = await serve(loop)
        client2 = socket.create_connection(server.sockets[0].getsockname())
        sp2 = await f.get(1)
        made_before = sp2.transport.get_extra_info("socket")
        client.close()
        client2.close()
        await sp.lost
        await sp2.lost
        # The lowest free numbers are the two just closed.
        pairs = [socket.socketpair() for _ in range(2)]
        try:
            for p in (sp, sp2):
                p.transport = None
            f.protos.clear()
            made_before = None
            del sp, sp2
            gc.collect()
            for a, b in pairs:
                os.fstat(a.fileno())
                os.fstat(b.fileno())
                a.send(b"x")
                assert b.recv(1) == b"x"
        finally:
            for a, b in pairs:
                a.close()
                b.close()
        await shutdown(server, f)
    run(main())


def test_bulk_then_small_reads(loop, run):
    """Large and small writes, alternating, arrive whole and in order (the
    transport switches between reading into a new bytes object and reading
    through the loop's buffer)."""
    sizes = [300_000, 7, 1, 100_000, 2048, 5_000_000, 3, 40_000, 1]

    async def main():
        server, f, client, sp = await serve(loop)
        blob = b"".join(struct.pack(">I", i) * (n // 4 + 1) for i, n in enumerate(sizes))
        digest = hashlib.sha256()
        sent = 0
        for i, n in enumerate(sizes):
            chunk = blob[sent:sent + n]
            await loop.run_in_executor(None, client.sendall, chunk)
            digest.update(chunk)
            sent += n
            await sp.wait_bytes(sent)
        assert hashlib.sha256(bytes(sp.data)).digest() == digest.digest()
        client.close()
        await sp.lost
        sp.check(eof=True)
        await shutdown(server, f)
    run(main())


def test_eof_after_bulk_read(loop, run):
    """EOF right behind a large read reaches eof_received once, then the
    transport closes (eof_received returned None) and the peer sees the close."""
    async def main():
        server, f, client, sp = await serve(loop)
        payload = bytes(range(256)) * 1024       # 256 KiB
        await loop.run_in_executor(None, client.sendall, payload)
        client.shutdown(socket.SHUT_WR)
        await sp.lost
        assert bytes(sp.data) == payload
        sp.check(eof=True)
        client.settimeout(5)
        assert client.recv(1) == b""
        client.close()
        await shutdown(server, f)
    run(main())


def test_reset_after_bulk_read(loop, run):
    """A reset after a large read reaches connection_lost as ConnectionResetError
    (or a clean EOF if the data was read first), never eof_received after it."""
    async def main():
        server, f, client, sp = await serve(loop)
        await loop.run_in_executor(None, client.sendall, b"y" * 200_000)
        await sp.wait_bytes(200_000)
        sp.transport.pause_reading()
        client.sendall(b"z" * 1000)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()                           # RST
        await settle()
        sp.transport.resume_reading()
        await sp.lost
        assert sp.lost_exc is None or isinstance(sp.lost_exc, ConnectionResetError)
        sp.check(eof=None)
        await shutdown(server, f)
    run(main())


def test_peer_sees_close_at_once(loop, run):
    """transport.close() from data_received: the peer reads EOF while the loop
    keeps running, and again when the loop stops right after."""
    class CloseOnData(Proto):
        def data_received(self, data):
            super().data_received(data)
            self.transport.close()

    async def main():
        server, f, client, sp = await serve(loop, CloseOnData)
        client.sendall(b"bye")
        await sp.lost
        client.settimeout(5)
        assert await loop.run_in_executor(None, client.recv, 10) == b""
        client.close()
        await shutdown(server, f)
    run(main())

    async def stop_after_close():
        server, f, client, sp = await serve(loop, CloseOnData)
        client.sendall(b"bye")
        await sp.lost
        return server, f, client
    server, f, client = run(stop_after_close())
    # The loop is stopped: the close must already have reached the peer.
    client.settimeout(5)
    assert client.recv(10) == b""
    client.close()
    run(shutdown(server, f))


def test_server_clients_tracked(loop, run):
    """Accepted transports are the Server's clients until their connection is
    lost; the last one going wakes wait_closed() (3.12.1+) after close()."""
    async def main():
        server, f, client, sp = await serve(loop)
        client2 = socket.create_connection(server.sockets[0].getsockname())
        sp2 = await f.get(1)
        server.close()
        waiter = asyncio.ensure_future(server.wait_closed())
        client.close()
        await sp.lost
        await settle()
        assert waiter.done() != WAIT_CLOSED_WAITS_FOR_CLIENTS
        client2.close()
        await sp2.lost
        await asyncio.wait_for(waiter, 5)
    run(main())
