"""loop.create_connection() and loop.connect_accepted_socket()."""
import asyncio
import errno
import gc
import socket

import pytest

from netutil import (PY312, Echo, Factory, Peer, Proto, accept, fake_resolver,
                     free_port, needs_ipv6, roundtrip, shutdown, tcp_listener,
                     tcp_nodelay)

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def echo_server(loop, run):
    """(host, port) of an echo server on 127.0.0.1; shut down at teardown."""
    f = Factory(loop, Echo)
    server = run(loop.create_server(f, "127.0.0.1", 0))
    yield server.sockets[0].getsockname()
    run(shutdown(server, f))


def test_connect_numeric(loop, run, echo_server):
    host, port = echo_server

    async def main():
        tr, p = await loop.create_connection(lambda: Proto(loop), host, port)
        # connection_made has run by the time create_connection returns
        assert p.calls["made"] == 1
        assert p.transport is tr
        assert isinstance(tr, asyncio.Transport)
        assert tr.get_extra_info("peername") == (host, port)
        assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
        assert tcp_nodelay(tr) != 0
        tr.write(b"hello")
        assert await p.wait_bytes(5) == b"hello"
        tr.close()
        assert tr.is_closing()
        assert await p.lost is None
        p.check()
    run(main())


def test_returns_factory_result(loop, run, echo_server):
    async def main():
        made = []

        def factory():
            made.append(Proto(loop))
            return made[-1]
        tr, p = await loop.create_connection(factory, *echo_server)
        assert made == [p]
        assert tr.get_protocol() is p
        await p.close_and_wait()
    run(main())


def test_connect_localhost_name(loop, run, echo_server):
    _, port = echo_server

    async def main():
        tr, p = await loop.create_connection(lambda: Proto(loop), "localhost", port,
                                             family=socket.AF_INET)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        await p.close_and_wait()
    run(main())


def test_port_as_string(loop, run, echo_server):
    host, port = echo_server
    assert run(roundtrip(loop, host, str(port))) == (host, port)


@needs_ipv6
def test_connect_ipv6(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "::1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), "::1", port)
        assert tr.get_extra_info("peername")[:2] == ("::1", port)
        assert tr.get_extra_info("socket").family == socket.AF_INET6
        assert tcp_nodelay(tr) != 0
        tr.write(b"six")
        assert await p.wait_bytes(3) == b"six"
        await p.close_and_wait()
        await shutdown(server, f)
    run(main())


def test_sock_argument(loop, run):
    lsock = tcp_listener()
    sock = socket.create_connection(lsock.getsockname())
    peer = Peer(accept(lsock))
    lsock.close()

    async def main():
        tr, p = await loop.create_connection(lambda: Proto(loop), sock=sock)
        assert sock.gettimeout() == 0  # made non-blocking
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        assert tr.get_extra_info("peername") == peer.sock.getsockname()
        assert tr.get_extra_info("sockname") == peer.sock.getpeername()
        tr.write(b"via sock")
        assert await peer.arecv(8) == b"via sock"
        peer.sock.sendall(b"back")
        assert await p.wait_bytes(4) == b"back"
        await p.close_and_wait()
        assert sock.fileno() == -1  # the transport closed it
        assert await peer.arecv_eof() == b""
    try:
        run(main())
    finally:
        sock.close()
        peer.close()


def test_local_addr_any_port(loop, run, echo_server):
    async def main():
        tr, p = await loop.create_connection(lambda: Proto(loop), *echo_server,
                                             local_addr=("127.0.0.1", 0))
        host, port = tr.get_extra_info("sockname")
        assert host == "127.0.0.1" and port != 0
        await p.close_and_wait()
    run(main())


def test_local_addr_fixed_port(loop, run, echo_server):
    async def main():
        lport = free_port()
        tr, p = await loop.create_connection(lambda: Proto(loop), *echo_server,
                                             local_addr=("127.0.0.1", lport))
        assert tr.get_extra_info("sockname") == ("127.0.0.1", lport)
        await p.close_and_wait()
    run(main())


def test_local_addr_in_use(loop, run, echo_server):
    busy = tcp_listener()
    try:
        with pytest.raises(OSError) as ei:
            run(loop.create_connection(asyncio.Protocol, *echo_server,
                                       local_addr=busy.getsockname()))
        assert ei.value.errno == errno.EADDRINUSE
    finally:
        busy.close()


def test_refused(loop, run):
    port = free_port()
    with pytest.raises(ConnectionRefusedError) as ei:
        run(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
    assert isinstance(ei.value, OSError)
    assert ei.value.errno == errno.ECONNREFUSED


def test_refused_by_name(loop, run):
    port = free_port()
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_connection(asyncio.Protocol, "localhost", port,
                                   family=socket.AF_INET))


def test_unresolvable_name_is_gaierror(loop, run):
    with pytest.raises(socket.gaierror):
        run(loop.create_connection(asyncio.Protocol, "localhost", 80,
                                   flags=socket.AI_NUMERICHOST))


# ---------------------------------------------------------------- several addresses

def test_first_address_refused_tries_next(loop, run, echo_server, monkeypatch):
    host, port = echo_server
    # 127.0.0.2 is loopback too, but nothing listens there
    fake_resolver(monkeypatch, {"multi.test": [
        (socket.AF_INET, ("127.0.0.2", port)),
        (socket.AF_INET, ("127.0.0.1", port))]})
    assert run(roundtrip(loop, "multi.test", port)) == ("127.0.0.1", port)


def test_all_addresses_refused_default_error(loop, run, monkeypatch):
    """Without all_errors: different messages -> a plain OSError listing
    them ("Multiple exceptions: ..."); one address -> that error itself."""
    p1, p2 = free_port(), free_port("127.0.0.2")
    fake_resolver(monkeypatch, {
        "two.test": [(socket.AF_INET, ("127.0.0.1", p1)),
                     (socket.AF_INET, ("127.0.0.2", p2))],
        "one.test": [(socket.AF_INET, ("127.0.0.1", p1))]})
    with pytest.raises(OSError) as ei:
        run(loop.create_connection(asyncio.Protocol, "two.test", 1))
    assert type(ei.value) is OSError
    assert str(ei.value).startswith("Multiple exceptions: ")
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_connection(asyncio.Protocol, "one.test", 1))


@pytest.mark.skipif(not PY312, reason="all_errors is new in 3.12")
def test_all_errors_exception_group(loop, run, monkeypatch):
    p1, p2 = free_port(), free_port("127.0.0.2")
    fake_resolver(monkeypatch, {
        "two.test": [(socket.AF_INET, ("127.0.0.1", p1)),
                     (socket.AF_INET, ("127.0.0.2", p2))],
        "one.test": [(socket.AF_INET, ("127.0.0.1", p1))]})
    with pytest.raises(ExceptionGroup) as ei:
        run(loop.create_connection(asyncio.Protocol, "two.test", 1,
                                   all_errors=True))
    excs = ei.value.exceptions
    assert len(excs) == 2
    assert all(type(e) is ConnectionRefusedError for e in excs)
    with pytest.raises(ExceptionGroup) as ei:
        run(loop.create_connection(asyncio.Protocol, "one.test", 1,
                                   all_errors=True))
    assert [type(e) for e in ei.value.exceptions] == [ConnectionRefusedError]


@pytest.mark.skipif(not PY312, reason="all_errors is new in 3.12")
def test_all_errors_success_is_normal(loop, run, echo_server):
    async def main():
        tr, p = await loop.create_connection(lambda: Proto(loop), *echo_server,
                                             all_errors=True)
        await p.close_and_wait()
    run(main())


@pytest.fixture
def two_servers(loop, run):
    """An IPv4 and an IPv6 echo server: ((v4host, v4port), (v6host, v6port))."""
    f = Factory(loop, Echo)
    s4 = run(loop.create_server(f, "127.0.0.1", 0))
    s6 = run(loop.create_server(f, "::1", 0))
    yield s4.sockets[0].getsockname()[:2], s6.sockets[0].getsockname()[:2]
    run(shutdown(s4))
    run(shutdown(s6, f))


def _interleave_names(monkeypatch, two_servers):
    (h4, p4), (h6, p6) = two_servers
    refused = free_port("127.0.0.2")
    # v4 (refused), v4 (ok), v6 (ok): in this order, the second v4 wins;
    # interleaved by family (v4, v6, v4), the v6 one does.
    fake_resolver(monkeypatch, {"mixed.test": [
        (socket.AF_INET, ("127.0.0.2", refused)),
        (socket.AF_INET, (h4, p4)),
        (socket.AF_INET6, (h6, p6, 0, 0))]})


@needs_ipv6
def test_no_interleave_tries_in_order(loop, run, two_servers, monkeypatch):
    _interleave_names(monkeypatch, two_servers)
    peer = run(roundtrip(loop, "mixed.test", 1))
    assert peer[:2] == two_servers[0]


@needs_ipv6
def test_interleave_1(loop, run, two_servers, monkeypatch):
    _interleave_names(monkeypatch, two_servers)
    peer = run(roundtrip(loop, "mixed.test", 1, interleave=1))
    assert peer[:2] == two_servers[1]


@needs_ipv6
def test_interleave_2(loop, run, two_servers, monkeypatch):
    """interleave=2: two addresses of the first family come first."""
    _interleave_names(monkeypatch, two_servers)
    peer = run(roundtrip(loop, "mixed.test", 1, interleave=2))
    assert peer[:2] == two_servers[0]


@needs_ipv6
def test_happy_eyeballs_defaults_to_interleave_1(loop, run, two_servers,
                                                 monkeypatch):
    """happy_eyeballs_delay without interleave interleaves by family; a
    refused attempt starts the next one at once (no need to wait for the
    delay)."""
    _interleave_names(monkeypatch, two_servers)
    t0 = loop.time()
    peer = run(roundtrip(loop, "mixed.test", 1, happy_eyeballs_delay=30))
    assert peer[:2] == two_servers[1]
    assert loop.time() - t0 < 10


def test_happy_eyeballs_first_refused(loop, run, echo_server, monkeypatch):
    host, port = echo_server
    fake_resolver(monkeypatch, {"multi.test": [
        (socket.AF_INET, ("127.0.0.2", port)),
        (socket.AF_INET, ("127.0.0.1", port))]})
    peer = run(roundtrip(loop, "multi.test", port, happy_eyeballs_delay=0.25))
    assert peer == ("127.0.0.1", port)


def test_happy_eyeballs_all_refused(loop, run, monkeypatch):
    fake_resolver(monkeypatch, {"two.test": [
        (socket.AF_INET, ("127.0.0.1", free_port())),
        (socket.AF_INET, ("127.0.0.2", free_port("127.0.0.2")))]})
    with pytest.raises(OSError):
        run(loop.create_connection(asyncio.Protocol, "two.test", 1,
                                   happy_eyeballs_delay=0.1))


# ---------------------------------------------------------------- factory

def test_factory_returning_non_protocol_fails(loop, run):
    """asyncio does not type-check the factory result: using it fails
    (AttributeError on connection_made in the stdlib)."""
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises((AttributeError, TypeError)):
            await loop.create_connection(lambda: None, "127.0.0.1", port)
        await f.get(0)
        await shutdown(server, f)
    run(main())
    gc.collect()  # the stdlib leaves the socket to its transport's __del__


def test_factory_exception_propagates(loop, run, echo_server):
    class Boom(Exception):
        pass

    def factory():
        raise Boom

    with pytest.raises(Boom):
        run(loop.create_connection(factory, *echo_server))


# ---------------------------------------------------------------- bad arguments

def test_host_and_sock_is_valueerror(loop, run, echo_server):
    with socket.socket() as s:
        with pytest.raises(ValueError):
            run(loop.create_connection(asyncio.Protocol, *echo_server, sock=s))


def test_nothing_given_is_valueerror(loop, run):
    with pytest.raises(ValueError):
        run(loop.create_connection(asyncio.Protocol))


def test_sock_dgram_is_valueerror(loop, run):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(ValueError):
            run(loop.create_connection(asyncio.Protocol, sock=s))


@pytest.mark.parametrize("kw", [
    {"server_hostname": "example.com"},
    {"ssl_handshake_timeout": 1.0},
    {"ssl_shutdown_timeout": 1.0},
], ids=["server_hostname", "ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_ssl_only_arguments_without_ssl_are_valueerror(loop, run, echo_server, kw):
    with pytest.raises(ValueError):
        run(loop.create_connection(asyncio.Protocol, *echo_server, **kw))


# ---------------------------------------------------------------- connect_accepted_socket

def test_connect_accepted_socket(loop, run):
    lsock = tcp_listener()
    client = Peer(socket.create_connection(lsock.getsockname()))
    conn = accept(lsock)
    lsock.close()

    async def main():
        tr, p = await loop.connect_accepted_socket(lambda: Proto(loop), conn)
        assert p.calls["made"] == 1
        assert isinstance(tr, asyncio.Transport)
        assert conn.gettimeout() == 0
        assert tr.get_extra_info("peername") == client.sock.getsockname()
        assert tr.get_extra_info("sockname") == client.sock.getpeername()
        tr.write(b"accepted")
        assert await client.arecv(8) == b"accepted"
        client.sock.sendall(b"ok")
        assert await p.wait_bytes(2) == b"ok"
        client.sock.shutdown(socket.SHUT_WR)
        await p.eof
        await p.lost  # eof_received returned None: the transport closed
        p.check(eof=True)
        assert await client.arecv_eof() == b""
    try:
        run(main())
    finally:
        client.close()
        conn.close()


def test_connect_accepted_socket_dgram_is_valueerror(loop, run):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(ValueError):
            run(loop.connect_accepted_socket(asyncio.Protocol, s))


def test_connect_accepted_socket_ssl_timeout_without_ssl(loop, run):
    a, b = socket.socketpair()
    try:
        with pytest.raises(ValueError):
            run(loop.connect_accepted_socket(asyncio.Protocol, a,
                                             ssl_handshake_timeout=1.0))
    finally:
        a.close()
        b.close()


def test_connect_accepted_socketpair(loop, run):
    """Any connected stream socket works (here an AF_UNIX socketpair)."""
    a, b = socket.socketpair()

    async def main():
        tr, p = await loop.connect_accepted_socket(lambda: Proto(loop), a)
        with Peer(b) as peer:
            peer.sock.sendall(b"pair")
            assert await p.wait_bytes(4) == b"pair"
            tr.write(b"back")
            assert await peer.arecv(4) == b"back"
            await p.close_and_wait()
            assert await peer.arecv_eof() == b""
    try:
        run(main())
    finally:
        a.close()
        b.close()
