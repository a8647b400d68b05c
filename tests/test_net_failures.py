"""Failure paths: resets, broken pipes, EMFILE on accept, connect
timeouts, closing with buffered data and pending reads."""
import asyncio
import select
import socket
import time

import pytest

from netutil import (Echo, Factory, Proto, pattern, roundtrip, rst_close,
                     settle, shutdown)

pytestmark = pytest.mark.timeout(20)

CONN_ERRORS = (BrokenPipeError, ConnectionResetError)


def test_peer_reset_connection_lost_with_reset_error(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        rst_close(peer.sock)
        exc = await p.lost
        assert isinstance(exc, ConnectionResetError)
        assert tr.is_closing()
        p.check(eof=False)
    run(main())


def test_peer_reset_server_side(loop, run):
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        sock = socket.create_connection(server.sockets[0].getsockname())
        sp = await f.get(0)
        rst_close(sock)
        assert isinstance(await sp.lost, ConnectionResetError)
        sp.check(eof=False)
        await shutdown(server, f)
    run(main())


def test_peer_reset_after_data(loop, run, tcp_pair):
    """Data delivered before the reset stays delivered; the reset ends the
    connection with one connection_lost(ConnectionResetError), no EOF."""
    async def main():
        tr, p, peer = await tcp_pair()
        peer.sock.sendall(b"last words")
        await p.wait_bytes(10)
        rst_close(peer.sock)
        assert isinstance(await p.lost, ConnectionResetError)
        assert bytes(p.data) == b"last words"
        p.check(eof=False)
    run(main())


@pytest.mark.parametrize("how", ["eof-kept-open", "paused-reading"])
def test_write_to_closed_peer_reports_via_connection_lost(loop, run, tcp_pair, how):
    """Writing to a peer that went away never raises from write(): the error
    (EPIPE/ECONNRESET) ends the connection through connection_lost(exc)."""
    async def main():
        eof_return = True if how == "eof-kept-open" else None
        tr, p, peer = await tcp_pair(lambda: Proto(loop, eof_return=eof_return))
        if how == "paused-reading":
            tr.pause_reading()
        peer.close()
        if how == "eof-kept-open":
            await p.eof
            assert not tr.is_closing()
        for _ in range(500):
            if p.lost.done():
                break
            tr.write(b"x" * 4096)  # must not raise
            await asyncio.sleep(0.005)
        exc = await asyncio.wait_for(p.lost, 5)
        assert isinstance(exc, CONN_ERRORS), exc
        tr.write(b"after lost")  # ignored
        p.check()
    run(main())


def test_close_with_buffered_write_and_pending_reads(loop, run, tcp_pair):
    """close() while the write buffer is full and unread data waits; then
    the peer goes away: connection_lost exactly once, no fd left."""
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        tr.pause_reading()
        peer.sock.sendall(b"unread" * 1000)
        tr.write(pattern(4 * 1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        tr.close()
        await settle()
        assert p.calls["lost"] == 0
        rst_close(peer.sock)
        exc = await p.lost
        assert exc is None or isinstance(exc, CONN_ERRORS)
        await settle()
        p.check()
        assert p.calls["data"] == 0
    run(main())


def test_abort_with_buffered_write_and_pending_reads(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        tr.pause_reading()
        peer.sock.sendall(b"unread" * 1000)
        tr.write(pattern(4 * 1024 * 1024))
        tr.abort()
        assert await p.lost is None
        await settle()
        p.check()
    run(main())


def test_server_survives_clients_reset_before_accept(loop, run):
    """Connections reset while still in the accept queue do not stop the
    server."""
    f = Factory(loop, Echo)
    server = run(loop.create_server(f, "127.0.0.1", 0))
    addr = server.sockets[0].getsockname()
    # the loop is not running: these sit in the accept queue, then reset
    for _ in range(5):
        rst_close(socket.create_connection(addr))

    async def main():
        await roundtrip(loop, *addr)
        await shutdown(server, f)
        for sp in f.protos:
            assert sp.lost_exc is None or isinstance(sp.lost_exc, CONN_ERRORS)
            sp.check()
    run(main())


def test_server_survives_factory_error(loop, run):
    """An exception from the protocol factory of an accepted connection is
    not fatal to the server (asyncio only logs it in debug mode)."""
    made = []

    def factory():
        if not made:
            made.append(None)
            raise RuntimeError("factory failed")
        p = Echo(loop)
        made.append(p)
        return p

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        # the failed connection is closed by the server side
        exc = await asyncio.wait_for(p.lost, 5)
        assert exc is None or isinstance(exc, CONN_ERRORS)
        await roundtrip(loop, "127.0.0.1", port)
        await made[1].lost
        await shutdown(server)
    run(main())


# ---------------------------------------------------------------- timeouts

def _full_listener():
    """A listener whose accept queue is full: further SYNs are dropped, so a
    connect neither succeeds nor fails (until TCP gives up, minutes later)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(lsock.getsockname())
        except BlockingIOError:
            pass
        fillers.append(c)
    # one of them completes and fills the queue (backlog 0 holds one)
    _, w, _ = select.select([], fillers, [], 5)
    assert w, "no connection completed"
    time.sleep(0.05)
    return lsock, fillers


@pytest.fixture
def full_listener():
    lsock, fillers = _full_listener()
    yield lsock.getsockname()
    for c in fillers:
        c.close()
    lsock.close()


def test_create_connection_timeout(loop, run, full_listener):
    async def main():
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                loop.create_connection(asyncio.Protocol, *full_listener), 0.3)
        assert time.monotonic() - t0 < 5
    run(main())


def test_create_connection_cancelled(loop, run, full_listener):
    async def main():
        task = loop.create_task(
            loop.create_connection(asyncio.Protocol, *full_listener))
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run(main())


def test_sock_connect_timeout(loop, run, full_listener):
    s = socket.socket()
    s.setblocking(False)
    try:
        with pytest.raises(TimeoutError):
            run(asyncio.wait_for(loop.sock_connect(s, full_listener), 0.3))
    finally:
        s.close()


def test_open_connection_timeout(loop, run, full_listener):
    with pytest.raises(TimeoutError):
        run(asyncio.wait_for(asyncio.open_connection(*full_listener), 0.3))


# ---------------------------------------------------------------- EMFILE

EMFILE_SCRIPT = r"""
import asyncio, errno, os, resource, socket, sys

backend = os.environ["RINGLOOP_NET_TEST_BACKEND"]
if backend == "asyncio":
    loop = asyncio.new_event_loop()
else:
    import ringloop
    loop = ringloop.new_event_loop(backend=backend)

contexts = []
loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))


class Echo(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr
    def data_received(self, data):
        self.tr.write(data)


class Client(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.got = loop.create_future()
    def data_received(self, data):
        self.data += data
        if len(self.data) >= 5 and not self.got.done():
            self.got.set_result(bytes(self.data))


async def main():
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    # client sockets first (they need fds), then fill the fd table
    socks = [socket.socket() for _ in range(3)]
    fillers = []
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        assert exc.errno == errno.EMFILE, exc
    # connect: the kernel completes the handshakes (the accept queue holds
    # them); the loop takes over the connected sockets
    clients = []
    for s in socks:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        clients.append(await loop.create_connection(Client, sock=s))
    # the server tries to accept and hits EMFILE; that is reported to the
    # exception handler, and nothing gets lost
    for _ in range(200):
        if contexts:
            break
        await asyncio.sleep(0.01)
    for ctx in contexts:
        exc = ctx.get("exception")
        assert isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE), ctx
    assert contexts, "no EMFILE report"
    await asyncio.sleep(0.3)
    for fd in fillers:
        os.close(fd)
    # the server serves again: the queued clients and a new one
    clients.append(await loop.create_connection(Client, "127.0.0.1", port))
    for i, (tr, p) in enumerate(clients):
        tr.write(b"echo%d" % i)
    for i, (tr, p) in enumerate(clients):
        got = await asyncio.wait_for(p.got, 10)
        assert got == b"echo%d" % i, got
        tr.close()
    assert server.is_serving()
    server.close()
    await asyncio.sleep(0.1)
    print("OK", len(contexts))

loop.run_until_complete(asyncio.wait_for(main(), 30))
loop.close()
"""


@pytest.mark.timeout(60)
def test_emfile_on_accept_server_keeps_serving(backend, py):
    r = py.run(EMFILE_SCRIPT, env={"RINGLOOP_NET_TEST_BACKEND": backend},
               timeout=45)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK"), r.stdout + r.stderr
