"""The loop.sock_*() API on non-blocking sockets, sock_sendfile() and
loop.sendfile()."""
import asyncio
import errno
import io
import socket

import pytest

from netutil import (Peer, accept, free_port, pattern, rst_close, settle,
                     tcp_listener)

pytestmark = pytest.mark.timeout(20)


def _tcp_socks():
    lsock = tcp_listener()
    a = socket.create_connection(lsock.getsockname())
    b = accept(lsock)
    lsock.close()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


@pytest.fixture
def socks():
    """Two connected non-blocking TCP sockets (a, b)."""
    a, b = _tcp_socks()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def udp():
    """Two bound non-blocking UDP sockets on 127.0.0.1."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def listener():
    s = tcp_listener()
    s.setblocking(False)
    yield s
    s.close()


@pytest.fixture
def datafile(tmp_path):
    data = pattern(1024 * 1024 + 123)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


# ---------------------------------------------------------------- recv

def test_sock_recv_ready(loop, run, socks):
    a, b = socks
    b.send(b"already here")

    async def main():
        return await loop.sock_recv(a, 100)
    assert run(main()) == b"already here"


def test_sock_recv_waits(loop, run, socks):
    a, b = socks

    async def main():
        loop.call_later(0.05, b.send, b"later")
        return await loop.sock_recv(a, 100)
    assert run(main()) == b"later"


def test_sock_recv_at_most_n(loop, run, socks):
    a, b = socks
    b.send(b"0123456789")

    async def main():
        first = await loop.sock_recv(a, 4)
        rest = await loop.sock_recv(a, 100)
        return first, rest
    assert run(main()) == (b"0123", b"456789")


@pytest.mark.parametrize("size", [1, 32767, 32768, 32769, 65535, 65536])
@pytest.mark.parametrize("wait", [False, True], ids=["ready", "waited"])
def test_sock_recv_result_is_exact_bytes(loop, run, socks, size, wait):
    # Results of half the request and more keep their block (rl_bytes_trim); the
    # bytes object must still be exactly what arrived, and behave as any other.
    a, b = socks
    payload = bytes(i * 7 % 251 for i in range(size))

    async def main():
        if wait:
            loop.call_later(0.02, b.sendall, payload)
        else:
            b.sendall(payload)
            await asyncio.sleep(0.02)
        parts = []
        while sum(map(len, parts)) < size:
            parts.append(await loop.sock_recv(a, 65536))
        return parts
    parts = run(main())
    data = b"".join(parts)
    assert data == payload
    for part in parts:
        assert type(part) is bytes
        assert hash(part) == hash(bytes(bytearray(part)))
        assert part + b"!" == bytes(bytearray(part)) + b"!"


def test_sock_recv_eof(loop, run, socks):
    a, b = socks

    async def main():
        loop.call_later(0.02, b.shutdown, socket.SHUT_WR)
        assert await loop.sock_recv(a, 100) == b""
        assert await loop.sock_recv(a, 100) == b""
    run(main())


def test_sock_recv_reset(loop, run):
    a, b = _tcp_socks()
    try:
        async def main():
            loop.call_later(0.02, rst_close, b)
            with pytest.raises(ConnectionResetError):
                await loop.sock_recv(a, 100)
        run(main())
    finally:
        a.close()
        b.close()


def test_sock_recv_into(loop, run, socks):
    a, b = socks

    async def main():
        buf = bytearray(100)
        loop.call_later(0.02, b.send, b"into the buffer")
        n = await loop.sock_recv_into(a, buf)
        assert n == 15
        assert buf[:n] == b"into the buffer"
        # a memoryview slice as the target, fewer bytes than available
        b.send(b"abcdefgh")
        target = bytearray(b"..........")
        n = await loop.sock_recv_into(a, memoryview(target)[2:6])
        assert n == 4
        assert target == b"..abcd...."
        assert await loop.sock_recv(a, 100) == b"efgh"
        b.shutdown(socket.SHUT_WR)
        assert await loop.sock_recv_into(a, buf) == 0
    run(main())


def test_sock_recv_cancel_loses_nothing(loop, run, socks):
    a, b = socks

    async def main():
        task = loop.create_task(loop.sock_recv(a, 100))
        await settle()
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        b.send(b"after cancel")
        await settle()
        # the cancelled receive consumed nothing; the socket still works
        assert await loop.sock_recv(a, 100) == b"after cancel"
        b.send(b"again")
        assert await loop.sock_recv(a, 100) == b"again"
    run(main())


def test_sock_recv_into_cancel_loses_nothing(loop, run, socks):
    a, b = socks

    async def main():
        buf = bytearray(100)
        task = loop.create_task(loop.sock_recv_into(a, buf))
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        b.send(b"kept")
        await settle()
        n = await loop.sock_recv_into(a, buf)
        assert buf[:n] == b"kept"
    run(main())


def test_sock_recv_wait_for_timeout(loop, run, socks):
    a, b = socks

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.sock_recv(a, 10), 0.05)
        b.send(b"x")
        assert await loop.sock_recv(a, 10) == b"x"
    run(main())


def test_concurrent_recv_on_two_sockets(loop, run):
    pairs = [_tcp_socks() for _ in range(2)]
    try:
        async def main():
            t1 = loop.create_task(loop.sock_recv(pairs[0][0], 10))
            t2 = loop.create_task(loop.sock_recv(pairs[1][0], 10))
            await settle()
            pairs[1][1].send(b"two")
            assert await t2 == b"two"
            assert not t1.done()
            pairs[0][1].send(b"one")
            assert await t1 == b"one"
        run(main())
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# ---------------------------------------------------------------- UDP

def test_sock_sendto_recvfrom(loop, run, udp):
    a, b = udp

    async def main():
        task = loop.create_task(loop.sock_recvfrom(b, 100))
        await settle()
        assert not task.done()
        n = await loop.sock_sendto(a, b"datagram", b.getsockname())
        assert n == 8
        data, addr = await task
        assert data == b"datagram"
        assert addr == a.getsockname()
        # a datagram larger than bufsize is truncated
        await loop.sock_sendto(a, b"0123456789", b.getsockname())
        data, addr = await loop.sock_recvfrom(b, 4)
        assert data == b"0123"
    run(main())


def test_sock_recvfrom_into(loop, run, udp):
    a, b = udp

    async def main():
        buf = bytearray(64)
        loop.call_later(0.02, a.sendto, b"hello udp", b.getsockname())
        n, addr = await loop.sock_recvfrom_into(b, buf)
        assert (n, bytes(buf[:n]), addr) == (9, b"hello udp", a.getsockname())
        # nbytes limits the read (0 means len(buf))
        a.sendto(b"abcdefgh", b.getsockname())
        n, addr = await loop.sock_recvfrom_into(b, buf, 3)
        assert (n, bytes(buf[:3])) == (3, b"abc")
    run(main())


def test_sock_recvfrom_cancel(loop, run, udp):
    a, b = udp

    async def main():
        task = loop.create_task(loop.sock_recvfrom(b, 100))
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        a.sendto(b"kept", b.getsockname())
        assert (await loop.sock_recvfrom(b, 100))[0] == b"kept"
    run(main())


def test_sock_sendto_empty_datagram(loop, run, udp):
    a, b = udp

    async def main():
        assert await loop.sock_sendto(a, b"", b.getsockname()) == 0
        data, addr = await loop.sock_recvfrom(b, 100)
        assert data == b"" and addr == a.getsockname()
    run(main())


# ---------------------------------------------------------------- sendall

@pytest.mark.timeout(60)
def test_sock_sendall_large_to_slow_reader(loop, run):
    a, b = _tcp_socks()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    data = pattern(8 * 1024 * 1024)
    peer = Peer(b)
    try:
        async def main():
            peer.start_reader(chunk=64 * 1024, delay=0.001)
            assert await loop.sock_sendall(a, data) is None
            a.shutdown(socket.SHUT_WR)
            return await peer.wait_done()
        assert run(main(), timeout=50) == data
    finally:
        a.close()
        peer.close()


def test_sock_sendall_bytes_like(loop, run, socks):
    a, b = socks

    async def main():
        await loop.sock_sendall(a, b"")
        await loop.sock_sendall(a, bytearray(b"ba|"))
        await loop.sock_sendall(a, memoryview(b"xmv|x")[1:-1])
        await loop.sock_sendall(a, b"by")
        got = b""
        while len(got) < 8:
            got += await loop.sock_recv(b, 100)
        assert got == b"ba|mv|by"
    run(main())


def test_sock_sendall_to_closed_peer(loop, run):
    a, b = _tcp_socks()
    rst_close(b)
    try:
        async def main():
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                for _ in range(100):
                    await loop.sock_sendall(a, b"x" * 65536)
                    await asyncio.sleep(0.01)
        run(main())
    finally:
        a.close()


# ---------------------------------------------------------------- connect / accept

def test_sock_connect(loop, run, listener):
    c = socket.socket()
    c.setblocking(False)
    try:
        async def main():
            assert await loop.sock_connect(c, listener.getsockname()) is None
            assert c.getpeername() == listener.getsockname()
            conn, addr = await loop.sock_accept(listener)
            with conn:
                assert addr == c.getsockname()
                await loop.sock_sendall(c, b"hi")
                assert await loop.sock_recv(conn, 10) == b"hi"
        run(main())
    finally:
        c.close()


def test_sock_connect_refused(loop, run):
    c = socket.socket()
    c.setblocking(False)
    try:
        with pytest.raises(ConnectionRefusedError) as ei:
            run(loop.sock_connect(c, ("127.0.0.1", free_port())))
        assert ei.value.errno == errno.ECONNREFUSED
    finally:
        c.close()


def test_sock_connect_resolves_localhost(loop, run, listener):
    c = socket.socket(socket.AF_INET)
    c.setblocking(False)
    port = listener.getsockname()[1]
    try:
        async def main():
            await loop.sock_connect(c, ("localhost", port))
            assert c.getpeername() == ("127.0.0.1", port)
            conn, _ = await loop.sock_accept(listener)
            conn.close()
        run(main())
    finally:
        c.close()


def test_sock_connect_unix(loop, run, tmp_path):
    path = str(tmp_path / "s.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(5)
    srv.setblocking(False)
    c = socket.socket(socket.AF_UNIX)
    c.setblocking(False)
    try:
        async def main():
            await loop.sock_connect(c, path)
            conn, addr = await loop.sock_accept(srv)
            with conn:
                assert c.getpeername() == path
                await loop.sock_sendall(conn, b"unix")
                assert await loop.sock_recv(c, 10) == b"unix"
        run(main())
    finally:
        c.close()
        srv.close()


def test_sock_connect_unix_missing_path(loop, run, tmp_path):
    c = socket.socket(socket.AF_UNIX)
    c.setblocking(False)
    try:
        with pytest.raises(FileNotFoundError):
            run(loop.sock_connect(c, str(tmp_path / "nope.sock")))
    finally:
        c.close()


def test_sock_accept_waits(loop, run, listener):
    c = socket.socket()
    c.setblocking(False)
    try:
        async def main():
            task = loop.create_task(loop.sock_accept(listener))
            await settle()
            assert not task.done()
            await loop.sock_connect(c, listener.getsockname())
            conn, addr = await task
            with conn:
                assert conn.gettimeout() == 0  # non-blocking
                assert addr == c.getsockname()
                assert conn.getpeername() == c.getsockname()
        run(main())
    finally:
        c.close()


def test_sock_accept_cancel(loop, run, listener):
    c = socket.socket()
    c.setblocking(False)
    try:
        async def main():
            task = loop.create_task(loop.sock_accept(listener))
            await settle()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await loop.sock_connect(c, listener.getsockname())
            await settle()
            # the cancelled accept took nothing: the connection is accepted now
            conn, addr = await loop.sock_accept(listener)
            conn.close()
            assert addr == c.getsockname()
        run(main())
    finally:
        c.close()


# ---------------------------------------------------------------- blocking sockets

@pytest.mark.parametrize("op", ["recv", "recv_into", "sendall", "connect",
                                "accept", "recvfrom", "sendto"])
def test_blocking_socket_valueerror_in_debug(loop, run, op):
    """asyncio checks sock.gettimeout() == 0 in debug mode only."""
    kind = socket.SOCK_DGRAM if op in ("recvfrom", "sendto") else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    loop.set_debug(True)
    try:
        calls = {
            "recv": lambda: loop.sock_recv(s, 10),
            "recv_into": lambda: loop.sock_recv_into(s, bytearray(10)),
            "sendall": lambda: loop.sock_sendall(s, b"x"),
            "connect": lambda: loop.sock_connect(s, ("127.0.0.1", 1)),
            "accept": lambda: loop.sock_accept(s),
            "recvfrom": lambda: loop.sock_recvfrom(s, 10),
            "sendto": lambda: loop.sock_sendto(s, b"x", ("127.0.0.1", 1)),
        }
        with pytest.raises(ValueError):
            run(calls[op]())
    finally:
        loop.set_debug(False)
        s.close()


def test_blocking_socket_accepted_without_debug(loop, run, socks):
    """Outside debug mode a blocking socket is not rejected (it works when
    the operation can complete at once)."""
    a, b = socks
    a.setblocking(True)
    b.send(b"ready")

    async def main():
        assert not loop.get_debug()
        return await loop.sock_recv(a, 100)
    assert run(main()) == b"ready"


# ---------------------------------------------------------------- sendfile

def test_sock_sendfile_offset_count(loop, run, socks, datafile):
    a, b = socks
    f, data = datafile
    peer = Peer(b)
    try:
        async def main():
            peer.start_reader()
            sent = await loop.sock_sendfile(a, f, 1000, 300000)
            assert sent == 300000
            assert f.tell() == 301000
            a.shutdown(socket.SHUT_WR)
            assert await peer.wait_done() == data[1000:301000]
        run(main())
    finally:
        peer.close()


def test_sock_sendfile_whole_file(loop, run, socks, datafile):
    a, b = socks
    f, data = datafile
    peer = Peer(b)
    try:
        async def main():
            peer.start_reader()
            assert await loop.sock_sendfile(a, f) == len(data)
            assert f.tell() == len(data)
            # from an offset to the end
            assert await loop.sock_sendfile(a, f, len(data) - 10) == 10
            a.shutdown(socket.SHUT_WR)
            assert await peer.wait_done() == data + data[-10:]
        run(main())
    finally:
        peer.close()


@pytest.mark.reference_bug("the fallback seeks only to a non-zero offset, and the "
                           "position stays put when nothing was sent (changed in "
                           "later releases)", [(3, 11, 7), (3, 12, 1), (3, 13, 0)])
def test_sock_sendfile_offset_starts_from_offset_not_position(loop, run, socks, datafile):
    # offset= is where reading starts, wherever the file's position was; afterwards the
    # position is just after what was sent, also when that is nothing.
    a, b = socks
    f, data = datafile
    memfile = io.BytesIO(data)          # no fileno(): the read + send fallback
    memfile.seek(0, io.SEEK_END)
    peer = Peer(b)
    try:
        async def main():
            peer.start_reader()
            f.seek(123)
            assert await loop.sock_sendfile(a, f, len(data)) == 0        # sendfile(2)
            assert f.tell() == len(data)
            assert await loop.sock_sendfile(a, memfile, 0, 1000) == 1000  # fallback
            assert memfile.tell() == 1000
            memfile.seek(77)
            assert await loop.sock_sendfile(a, memfile, len(data)) == 0
            assert memfile.tell() == len(data)
            a.shutdown(socket.SHUT_WR)
            assert await peer.wait_done() == data[:1000]
        run(main())
    finally:
        peer.close()


def test_sock_sendfile_empty_file(loop, run, socks, tmp_path):
    a, b = socks
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        assert run(loop.sock_sendfile(a, f)) == 0


@pytest.mark.parametrize("kw, exc", [
    ({"count": 0}, ValueError),
    ({"count": -1}, ValueError),
    ({"count": "10"}, TypeError),
    ({"count": 1.5}, TypeError),
    ({"offset": -1}, ValueError),
    ({"offset": 1.5}, TypeError),
], ids=["count0", "count-1", "count-str", "count-float", "offset-1", "offset-float"])
def test_sock_sendfile_bad_params(loop, run, socks, datafile, kw, exc):
    a, b = socks
    f, _ = datafile
    with pytest.raises(exc):
        run(loop.sock_sendfile(a, f, **kw))


def test_sock_sendfile_text_file_is_valueerror(loop, run, socks, tmp_path):
    a, b = socks
    path = tmp_path / "t.txt"
    path.write_text("text")
    with open(path, "r") as f:
        with pytest.raises(ValueError):
            run(loop.sock_sendfile(a, f))


def test_sock_sendfile_dgram_is_valueerror(loop, run, udp, datafile):
    a, b = udp
    f, _ = datafile
    with pytest.raises(ValueError):
        run(loop.sock_sendfile(a, f))


def test_loop_sendfile_transport(loop, run, tcp_pair, datafile):
    f, data = datafile

    async def main():
        tr, p, peer = await tcp_pair()
        peer.start_reader()
        tr.write(b"head|")
        sent = await loop.sendfile(tr, f, 5, 200000)
        assert sent == 200000
        assert f.tell() == 200005
        tr.write(b"|tail")  # the transport works on after sendfile
        f.seek(0)
        assert await loop.sendfile(tr, f) == len(data)
        tr.close()
        got = await peer.wait_done()
        assert got == b"head|" + data[5:200005] + b"|tail" + data
        assert await p.lost is None
        p.check()
    run(main())


def test_loop_sendfile_reading_continues(loop, run, tcp_pair, datafile):
    """Data from the peer during sendfile is delivered (nothing lost)."""
    f, data = datafile

    async def main():
        tr, p, peer = await tcp_pair()
        peer.start_reader()
        peer.sock.sendall(b"during")
        await loop.sendfile(tr, f)
        peer.sock.sendall(b"+after")
        assert await p.wait_bytes(12) == b"during+after"
        tr.close()
        assert await peer.wait_done() == data
        await p.lost
        p.check()
    run(main())


def test_loop_sendfile_closing_transport_is_runtimeerror(loop, run, tcp_pair, datafile):
    f, _ = datafile

    async def main():
        tr, p, peer = await tcp_pair()
        tr.close()
        with pytest.raises(RuntimeError):
            await loop.sendfile(tr, f)
        await p.lost
    run(main())
