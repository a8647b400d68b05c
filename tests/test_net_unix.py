"""create_unix_server() / create_unix_connection(): filesystem and abstract
paths, socket-file cleanup (3.13+), Unix stream transports."""
import asyncio
import errno
import os
import pathlib
import socket
import stat
import uuid

import pytest

from netutil import PY313, Echo, Factory, Proto, Peer, settle, shutdown

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "srv.sock")


def abstract_name():
    return "\0ringloop-test-" + uuid.uuid4().hex


async def unix_roundtrip(loop, path, payload=b"ping"):
    tr, p = await loop.create_unix_connection(lambda: Proto(loop), path)
    tr.write(payload)
    assert await p.wait_bytes(len(payload)) == payload
    tr.close()
    await p.lost
    p.check()
    return tr


def test_server_and_connection(loop, run, sock_path):
    async def main():
        f = Factory(loop)
        server = await loop.create_unix_server(f, sock_path)
        assert isinstance(server, asyncio.AbstractServer)
        (s,) = server.sockets
        assert s.family == socket.AF_UNIX
        assert s.type == socket.SOCK_STREAM
        assert s.getsockname() == sock_path
        assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
        assert server.is_serving()
        tr, p = await loop.create_unix_connection(lambda: Proto(loop), sock_path)
        assert isinstance(tr, asyncio.Transport)
        assert p.calls["made"] == 1
        assert tr.get_extra_info("peername") == sock_path
        assert tr.get_extra_info("sockname") == ""  # unnamed client socket
        assert tr.get_extra_info("socket").family == socket.AF_UNIX
        sp = await f.get(0)
        assert sp.transport.get_extra_info("sockname") == sock_path
        assert sp.transport.get_extra_info("peername") == ""
        tr.write(b"to server")
        assert await sp.wait_bytes(9) == b"to server"
        sp.transport.write(b"to client")
        assert await p.wait_bytes(9) == b"to client"
        tr.close()
        await p.lost
        await sp.lost  # EOF closed the server side
        p.check()
        sp.check(eof=True)
        await shutdown(server, f)
    run(main())


def test_pathlike(loop, run, tmp_path):
    path = tmp_path / "pathlike.sock"

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_unix_server(f, path)
        assert server.sockets[0].getsockname() == str(path)
        await unix_roundtrip(loop, pathlib.Path(path))
        await shutdown(server, f)
    run(main())


def test_socket_file_after_close(loop, run, sock_path):
    """3.13+: closing the server removes its socket file; 3.11: it stays."""
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path)
        assert os.path.exists(sock_path)
        await shutdown(server)
        assert os.path.exists(sock_path) == (not PY313)
    run(main())


@pytest.mark.skipif(not PY313, reason="cleanup_socket is new in 3.13")
def test_cleanup_socket_false_keeps_file(loop, run, sock_path):
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path,
                                               cleanup_socket=False)
        await shutdown(server)
        assert os.path.exists(sock_path)
    run(main())


@pytest.mark.skipif(not PY313, reason="socket-file cleanup is new in 3.13")
def test_cleanup_spares_replaced_file(loop, run, sock_path):
    """The file is removed only if it is still the server's socket."""
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path)
        os.unlink(sock_path)
        with open(sock_path, "w") as fh:
            fh.write("someone else's")
        await shutdown(server)
        assert os.path.exists(sock_path)
    run(main())


def test_sock_argument_file_after_close(loop, run, sock_path):
    """sock=: the server uses (and on close closes) the socket; 3.13+ also
    removes its file, 3.11 does not."""
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(sock_path)

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_unix_server(f, sock=lsock)
        assert server.sockets[0].getsockname() == sock_path
        await unix_roundtrip(loop, sock_path)
        await shutdown(server, f)
        assert lsock.fileno() == -1
        assert os.path.exists(sock_path) == (not PY313)
    try:
        run(main())
    finally:
        lsock.close()


def test_stale_socket_file_replaced(loop, run, sock_path):
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(sock_path)
    old.close()  # leaves the socket file behind
    assert os.path.exists(sock_path)

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_unix_server(f, sock_path)
        await unix_roundtrip(loop, sock_path)
        await shutdown(server, f)
    run(main())


def test_regular_file_in_the_way(loop, run, sock_path):
    with open(sock_path, "w") as fh:
        fh.write("not a socket")
    with pytest.raises(OSError) as ei:
        run(loop.create_unix_server(asyncio.Protocol, sock_path))
    assert ei.value.errno == errno.EADDRINUSE
    with open(sock_path) as fh:
        assert fh.read() == "not a socket"  # left alone


def test_abstract_namespace(loop, run):
    name = abstract_name()

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_unix_server(f, name)
        # Linux reports an abstract address as bytes
        assert server.sockets[0].getsockname() == name.encode()
        tr = await unix_roundtrip(loop, name)
        assert tr.get_extra_info("peername") == name.encode()
        await shutdown(server, f)
        # the name is free again
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(name)
    run(main())


def test_abstract_bytes_name(loop, run):
    name = abstract_name().encode()

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_unix_server(f, name)
        assert server.sockets[0].getsockname() == name
        await unix_roundtrip(loop, name)
        await shutdown(server, f)
    run(main())


def test_connect_missing_path(loop, run, tmp_path):
    with pytest.raises(FileNotFoundError):
        run(loop.create_unix_connection(asyncio.Protocol, str(tmp_path / "none")))


def test_connect_no_listener(loop, run, sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)  # bound, never listening
    try:
        with pytest.raises(ConnectionRefusedError):
            run(loop.create_unix_connection(asyncio.Protocol, sock_path))
    finally:
        s.close()


def test_connect_abstract_no_listener(loop, run):
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_unix_connection(asyncio.Protocol, abstract_name()))


def test_connection_sock_argument(loop, run):
    a, b = socket.socketpair()

    async def main():
        tr, p = await loop.create_unix_connection(lambda: Proto(loop), sock=a)
        assert a.gettimeout() == 0
        with Peer(b) as peer:
            tr.write(b"pair")
            assert await peer.arecv(4) == b"pair"
            peer.sock.sendall(b"back")
            assert await p.wait_bytes(4) == b"back"
            await p.close_and_wait()
            assert await peer.arecv_eof() == b""
        p.check()
    try:
        run(main())
    finally:
        a.close()
        b.close()


def test_unix_half_close(loop, run, sock_path):
    async def main():
        f = Factory(loop, eof_return=True)
        server = await loop.create_unix_server(f, sock_path)
        tr, p = await loop.create_unix_connection(lambda: Proto(loop), sock_path)
        sp = await f.get(0)
        assert tr.can_write_eof()
        tr.write(b"question")
        tr.write_eof()
        await sp.eof
        assert bytes(sp.data) == b"question"
        assert not sp.transport.is_closing()  # eof_received returned True
        sp.transport.write(b"answer")
        sp.transport.close()
        await p.eof
        assert bytes(p.data) == b"answer"
        await p.lost
        await sp.lost
        p.check(eof=True)
        sp.check(eof=True)
        await shutdown(server, f)
    run(main())


def test_unix_flow_control_and_close_flush(loop, run, sock_path):
    async def main():
        f = Factory(loop, pause_in_made=True)
        server = await loop.create_unix_server(f, sock_path)
        tr, p = await loop.create_unix_connection(lambda: Proto(loop), sock_path)
        sp = await f.get(0)
        tr.set_write_buffer_limits(high=64 * 1024)
        data = os.urandom(8 * 1024 * 1024)
        tr.write(data)
        assert p.paused  # the server side does not read
        tr.close()
        await settle()
        assert p.calls["lost"] == 0  # still flushing
        sp.transport.resume_reading()
        await sp.eof
        assert bytes(sp.data) == data
        assert await p.lost is None
        assert p.calls["resume_writing"] == 1
        await sp.lost
        await shutdown(server, f)
    run(main())


def test_unix_start_serving_false(loop, run, sock_path):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_unix_server(f, sock_path, start_serving=False)
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(asyncio.Protocol, sock_path)
        await server.start_serving()
        assert server.is_serving()
        await unix_roundtrip(loop, sock_path)
        await shutdown(server, f)
    run(main())


# ---------------------------------------------------------------- bad arguments

def test_server_path_and_sock(loop, run, sock_path):
    with socket.socket(socket.AF_UNIX) as s:
        with pytest.raises(ValueError):
            run(loop.create_unix_server(asyncio.Protocol, sock_path, sock=s))


def test_server_no_path_no_sock(loop, run):
    with pytest.raises(ValueError):
        run(loop.create_unix_server(asyncio.Protocol))


@pytest.mark.parametrize("family, kind", [
    (socket.AF_INET, socket.SOCK_STREAM),
    (socket.AF_UNIX, socket.SOCK_DGRAM),
], ids=["inet", "unix-dgram"])
def test_server_wrong_sock(loop, run, family, kind):
    with socket.socket(family, kind) as s:
        with pytest.raises(ValueError):
            run(loop.create_unix_server(asyncio.Protocol, sock=s))


def test_server_ssl_bool_is_typeerror(loop, run, sock_path):
    with pytest.raises(TypeError):
        run(loop.create_unix_server(asyncio.Protocol, sock_path, ssl=True))


def test_server_ssl_timeout_without_ssl(loop, run, sock_path):
    with pytest.raises(ValueError):
        run(loop.create_unix_server(asyncio.Protocol, sock_path,
                                    ssl_handshake_timeout=1.0))


def test_connection_path_and_sock(loop, run, sock_path):
    with socket.socket(socket.AF_UNIX) as s:
        with pytest.raises(ValueError):
            run(loop.create_unix_connection(asyncio.Protocol, sock_path, sock=s))


def test_connection_no_path_no_sock(loop, run):
    with pytest.raises(ValueError):
        run(loop.create_unix_connection(asyncio.Protocol))


def test_connection_wrong_sock(loop, run):
    with socket.socket(socket.AF_INET) as s:
        with pytest.raises(ValueError):
            run(loop.create_unix_connection(asyncio.Protocol, sock=s))


@pytest.mark.parametrize("kw", [{"server_hostname": "x"},
                                {"ssl_handshake_timeout": 1.0}],
                         ids=["server_hostname", "ssl_handshake_timeout"])
def test_connection_ssl_only_args(loop, run, sock_path, kw):
    with pytest.raises(ValueError):
        run(loop.create_unix_connection(asyncio.Protocol, sock_path, **kw))
