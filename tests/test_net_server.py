"""loop.create_server() and the Server object (asyncio semantics)."""
import asyncio
import errno
import itertools
import select
import socket

import pytest

from netutil import (PY313, WAIT_CLOSED_WAITS_FOR_CLIENTS, Echo,
                     Factory, Proto, free_port, needs_ipv6, roundtrip,
                     settle, shutdown, tcp_nodelay, until)

pytestmark = pytest.mark.timeout(20)


def expected_infos(hosts, family=socket.AF_UNSPEC):
    """What create_server binds for these hosts and port 0: one socket per
    distinct getaddrinfo() result."""
    infos = set(itertools.chain.from_iterable(
        socket.getaddrinfo(h, 0, family, socket.SOCK_STREAM, 0,
                           socket.AI_PASSIVE) for h in hosts))
    return sorted((fam, sa[0]) for fam, _, _, _, sa in infos)


def bound(server):
    return sorted((s.family, s.getsockname()[0]) for s in server.sockets)


def v4_port(server):
    return next(s.getsockname()[1] for s in server.sockets
                if s.family == socket.AF_INET)


# ---------------------------------------------------------------- hosts

def test_host_ipv4(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", 0)
        assert isinstance(server, asyncio.AbstractServer)
        socks = server.sockets
        assert isinstance(socks, tuple)
        assert len(socks) == 1
        s = socks[0]
        assert s.family == socket.AF_INET
        assert s.type == socket.SOCK_STREAM
        host, port = s.getsockname()
        assert host == "127.0.0.1" and port != 0
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert server.is_serving()
        assert await roundtrip(loop, "127.0.0.1", port) == ("127.0.0.1", port)
        await (await f.get(0)).lost  # the client's EOF closed it
        await shutdown(server, f)
        assert len(f.protos) == 1
        f.protos[0].check(eof=True)
    run(main())


@pytest.mark.parametrize("host", [None, ""], ids=["None", "empty"])
def test_host_all_interfaces(loop, run, host):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, host, 0)
        assert bound(server) == expected_infos([None])
        wildcard = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}
        for s in server.sockets:
            assert s.getsockname()[0] == wildcard[s.family]
            assert s.getsockname()[1] != 0
            if s.family == socket.AF_INET6:
                # asyncio disables dual-stack on the v6 socket
                assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        await roundtrip(loop, "127.0.0.1", v4_port(server))
        await shutdown(server, f)
    run(main())


def test_host_list_deduplicated(loop, run):
    """Hosts resolving to the same address are bound once."""
    hosts = ["127.0.0.1", "localhost", "127.0.0.1"]

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, hosts, 0)
        assert bound(server) == expected_infos(hosts)
        assert sum(s.getsockname()[0] == "127.0.0.1" for s in server.sockets) == 1
        await roundtrip(loop, "127.0.0.1", v4_port(server))
        await shutdown(server, f)
    run(main())


@needs_ipv6
def test_host_list_v4_v6(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, ["127.0.0.1", "::1"], 0)
        assert bound(server) == sorted([(socket.AF_INET, "127.0.0.1"),
                                        (socket.AF_INET6, "::1")])
        for s in server.sockets:
            host, port = s.getsockname()[:2]
            await roundtrip(loop, host, port)
        await shutdown(server, f)
        assert len(f.protos) == 2
    run(main())


@needs_ipv6
def test_host_ipv6(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "::1", 0)
        (s,) = server.sockets
        assert s.family == socket.AF_INET6
        host, port = s.getsockname()[:2]
        assert host == "::1"
        assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        peer = await roundtrip(loop, "::1", port)
        assert peer[:2] == ("::1", port)
        await shutdown(server, f)
    run(main())


def test_family_inet_only(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, None, 0,
                                          family=socket.AF_INET)
        assert bound(server) == [(socket.AF_INET, "0.0.0.0")]
        await shutdown(server)
    run(main())


def test_flags_passed_to_getaddrinfo(loop, run):
    """flags go to getaddrinfo: AI_NUMERICHOST makes a name fail to resolve."""
    async def main():
        with pytest.raises(socket.gaierror):
            await loop.create_server(asyncio.Protocol, "localhost", 0,
                                     flags=socket.AI_NUMERICHOST)
    run(main())


def test_fixed_port(loop, run):
    async def main():
        port = free_port()
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", port)
        assert server.sockets[0].getsockname() == ("127.0.0.1", port)
        await roundtrip(loop, "127.0.0.1", port)
        await shutdown(server, f)
    run(main())


def test_port_in_use_is_oserror(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(OSError) as ei:
            await loop.create_server(asyncio.Protocol, "127.0.0.1", port)
        assert ei.value.errno == errno.EADDRINUSE
        await shutdown(server)
    run(main())


# ---------------------------------------------------------------- sock=

@pytest.mark.parametrize("listening", [False, True], ids=["bound", "listening"])
def test_sock_argument(loop, run, listening):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    if listening:
        lsock.listen(5)
    addr = lsock.getsockname()

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, sock=lsock)
        (s,) = server.sockets
        assert s.getsockname() == addr
        assert s.fileno() == lsock.fileno()
        assert lsock.gettimeout() == 0  # made non-blocking
        assert lsock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        await roundtrip(loop, *addr)
        await shutdown(server, f)
        # the server owns the socket: closing the server closed it
        assert lsock.fileno() == -1
    try:
        run(main())
    finally:
        lsock.close()


def test_sock_argument_dgram_is_valueerror(loop, run):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError):
            run(loop.create_server(asyncio.Protocol, sock=s))


# ---------------------------------------------------------------- options

def _connect_nonblocking(addr, n):
    clients = []
    for _ in range(n):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(addr)
        except BlockingIOError:
            pass
        clients.append(c)
    return clients


def _count_connected(clients, wait=0.5):
    """Connections that completed within ``wait`` seconds (a SYN dropped by a
    full accept queue is only retried after 1s, and dropped again)."""
    _, w, _ = select.select([], clients, [], wait)
    done = set(w)
    # give stragglers a little more time, without waiting for SYN retries
    _, w, _ = select.select([], [c for c in clients if c not in done], [], 0.2)
    done |= set(w)
    return sum(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
               for c in done)


def test_backlog_passed_to_listen(loop, run):
    """backlog goes to listen(): while the loop does not run (nothing
    accepts), a backlog of 1 queues at most 2 connections (Linux keeps
    backlog+1), the default backlog (100) queues all 6."""
    small = run(loop.create_server(asyncio.Protocol, "127.0.0.1", 0, backlog=1))
    big = run(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
    clients = []
    try:
        c_small = _connect_nonblocking(small.sockets[0].getsockname(), 6)
        clients += c_small
        c_big = _connect_nonblocking(big.sockets[0].getsockname(), 6)
        clients += c_big
        n_small = _count_connected(c_small)
        n_big = _count_connected(c_big)
        assert 1 <= n_small <= 2
        assert n_big == 6
    finally:
        for c in clients:
            c.close()
        small.close()
        big.close()
        run(small.wait_closed())
        run(big.wait_closed())
        run(settle())  # let the server side see the aborted connections


@pytest.mark.parametrize("reuse", [None, True, False])
def test_reuse_address(loop, run, reuse):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                          reuse_address=reuse)
        val = server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        # default on POSIX: True
        assert bool(val) == (reuse is not False)
        await shutdown(server)
    run(main())


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port(loop, run):
    async def main():
        f = Factory(loop, Echo)
        s1 = await loop.create_server(f, "127.0.0.1", 0, reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        assert s1.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        s2 = await loop.create_server(f, "127.0.0.1", port, reuse_port=True)
        assert s2.sockets[0].getsockname() == ("127.0.0.1", port)
        await roundtrip(loop, "127.0.0.1", port)
        await shutdown(s1)
        await shutdown(s2, f)
    run(main())


def test_reuse_port_default_off(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert server.sockets[0].getsockopt(socket.SOL_SOCKET,
                                            socket.SO_REUSEPORT) == 0
        await shutdown(server)
    run(main())


@pytest.mark.parametrize("bind,connect", [
    ("127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", "127.0.0.1"),
    pytest.param("::1", "::1", marks=needs_ipv6),
    pytest.param("::", "::1", marks=needs_ipv6),
])
def test_accepted_addresses(loop, run, bind, connect):
    """An accepted transport's sockname/peername are what its socket says, for
    listeners on one address and on the wildcard address (which the loop may know
    without asking the socket)."""
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, bind, 0, reuse_address=True)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), connect, port)
        st = (await f.get(0)).transport
        sock = st.get_extra_info("socket")
        assert st.get_extra_info("sockname") == sock.getsockname()
        assert st.get_extra_info("peername") == sock.getpeername()
        assert st.get_extra_info("peername") == tr.get_extra_info("sockname")
        tr.close()
        await shutdown(server, f)
    run(main())


def test_server_side_transport(loop, run):
    """The accepted connection: one protocol per connection, peername is the
    client's address, TCP_NODELAY set, it is an asyncio.Transport."""
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        sp = await f.get(0)
        st = sp.transport
        assert isinstance(st, asyncio.Transport)
        assert st.get_extra_info("peername") == tr.get_extra_info("sockname")
        assert st.get_extra_info("sockname") == ("127.0.0.1", port)
        assert tcp_nodelay(st) != 0
        assert len(f.protos) == 1
        st.write(b"from server")
        assert await p.wait_bytes(11) == b"from server"
        tr.close()
        await p.lost
        await sp.lost  # EOF from the client closes the server side
        sp.check(eof=True)
        assert sp.lost_exc is None
        await shutdown(server, f)
    run(main())


# ---------------------------------------------------------------- serving state

def test_start_serving_false(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        (s,) = server.sockets
        port = s.getsockname()[1]
        # asyncio calls listen() only when serving starts
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await server.start_serving()
        assert server.is_serving()
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        await roundtrip(loop, "127.0.0.1", port)
        await server.start_serving()  # again: a no-op
        assert server.is_serving()
        await shutdown(server, f)
        assert len(f.protos) == 1
    run(main())


def test_serve_forever_cancel_closes(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", 0, start_serving=False)
        port = server.sockets[0].getsockname()[1]
        task = loop.create_task(server.serve_forever())
        await until(server.is_serving)
        await roundtrip(loop, "127.0.0.1", port)
        await f.get(0)
        await f.protos[0].lost
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()
        assert server.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await shutdown(server, f)
    run(main())


@pytest.mark.reference_bug("a cancelled serve_forever() leaves its clients open, so "
                           "wait_closed() waits for them (fixed in later 3.13 releases)",
                           [(3, 11, 7), (3, 12, 1), (3, 13, 0)])
def test_serve_forever_cancel_closes_hanging_clients(loop, run):
    # Ctrl+C while a client is connected and silent: serve_forever() ends, and the
    # server's wait_closed() with it, because the client's connection is closed.
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        client = socket.create_connection(server.sockets[0].getsockname(), timeout=5)
        try:
            proto = await f.get(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), 2)
            await asyncio.wait_for(server.wait_closed(), 2)
            assert proto.transport.is_closing()
            assert client.recv(1) == b""            # the server closed it
        finally:
            client.close()
    run(main())


def test_serve_forever_ends_when_closed(loop, run):
    """close() cancels a pending serve_forever()."""
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.wait_closed()
    run(main())


def test_serve_forever_twice_and_closed_raise(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            await server.serve_forever()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(RuntimeError):
            await server.serve_forever()  # closed
    run(main())


def test_close(loop, run):
    """close(): stops listening, is_serving() False, sockets (), idempotent;
    connections already accepted stay open."""
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        await f.get(0)
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        server.close()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tr.write(b"still there")
        assert await p.wait_bytes(11) == b"still there"
        assert not f.protos[0].transport.is_closing()
        tr.close()
        await p.lost
        await f.protos[0].lost
        await server.wait_closed()
    run(main())


def test_wait_closed_registered_while_open(loop, run):
    """A wait_closed() started while the server is open returns only once
    the server is closed and its connections are gone (every version)."""
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        sp = await f.get(0)
        waiter = loop.create_task(server.wait_closed())
        await settle()
        assert not waiter.done()  # server still open
        server.close()
        await settle()
        assert not waiter.done()  # a connection is still open
        tr.close()
        await p.lost
        await sp.lost
        await asyncio.wait_for(waiter, 5)
        # closed with no connections: wait_closed() returns at once
        await asyncio.wait_for(server.wait_closed(), 5)
    run(main())


def test_wait_closed_after_close_with_live_connection(loop, run):
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        sp = await f.get(0)
        server.close()
        waiter = loop.create_task(server.wait_closed())
        await settle()
        # 3.11 returns at once once the server is closed, even with live
        # connections; 3.12.1+ waits for them
        assert waiter.done() == (not WAIT_CLOSED_WAITS_FOR_CLIENTS)
        tr.close()
        await p.lost
        await sp.lost
        await asyncio.wait_for(waiter, 5)
    run(main())


def test_get_loop(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert server.get_loop() is loop
        await shutdown(server)
    run(main())


def test_async_with(loop, run):
    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", 0)
        async with server as s:
            assert s is server
            assert server.is_serving()
            await roundtrip(loop, "127.0.0.1", server.sockets[0].getsockname()[1])
            await f.get(0)
            await f.protos[0].lost
        assert not server.is_serving()
        assert server.sockets == ()
    run(main())


def test_repr_does_not_fail(loop, run):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert isinstance(repr(server), str)
        await shutdown(server)
        assert isinstance(repr(server), str)
    run(main())


@pytest.mark.skipif(not PY313, reason="Server.close_clients() is new in 3.13")
def test_close_clients(loop, run):
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
                   for _ in range(3)]
        for i in range(3):
            await f.get(i)
        # a buffered write is flushed by close()
        f.protos[0].transport.write(b"bye")
        server.close()
        server.close_clients()
        for sp in f.protos:
            assert sp.transport.is_closing()
            assert await sp.lost is None
        for tr, p in clients:
            await p.lost  # client side saw EOF and closed
            p.check(eof=True)
        assert bytes(clients[0][1].data) == b"bye"
        await asyncio.wait_for(server.wait_closed(), 5)
    run(main())


@pytest.mark.skipif(not PY313, reason="Server.abort_clients() is new in 3.13")
def test_abort_clients(loop, run):
    async def main():
        f = Factory(loop)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
                   for _ in range(3)]
        for i in range(3):
            await f.get(i)
        server.close()
        server.abort_clients()
        for sp in f.protos:
            assert await sp.lost is None
            sp.check()
        for tr, p in clients:
            await p.lost
            p.check()
        await asyncio.wait_for(server.wait_closed(), 5)
    run(main())


def test_server_serves_on_after_loop_moves_to_another_thread(loop):
    # Connections that queue while no thread runs the loop are served once another
    # thread runs it: on io_uring that thread gets a ring of its own (SINGLE_ISSUER)
    # and the old ring's accept must neither take them nor leak their fds.
    import threading
    factory = Factory(loop, Echo)
    servers = []

    def in_thread(coro):
        thread = threading.Thread(target=loop.run_until_complete, args=(coro,))
        thread.start()
        thread.join(10)
        assert not thread.is_alive()

    async def start():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        servers.append(server)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"first")
        assert await reader.readexactly(5) == b"first"
        writer.close()
        await writer.wait_closed()
    in_thread(start())
    port = servers[0].sockets[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for i, c in enumerate(clients):
            c.sendall(b"ping%02d" % i)
        in_thread(until(lambda: len(factory.protos) == 21
                        and all(len(p.data) == 6 for p in factory.protos[1:]), timeout=5))
        for i, c in enumerate(clients):
            c.settimeout(5)
            assert c.recv(16) == b"ping%02d" % i
    finally:
        for c in clients:
            c.close()
    in_thread(shutdown(servers[0], factory))


# ---------------------------------------------------------------- bad arguments

def test_host_and_sock_is_valueerror(loop, run):
    with socket.socket() as s:
        with pytest.raises(ValueError):
            run(loop.create_server(asyncio.Protocol, "127.0.0.1", 0, sock=s))
        with pytest.raises(ValueError):
            run(loop.create_server(asyncio.Protocol, port=0, sock=s))


def test_no_host_port_sock_is_valueerror(loop, run):
    with pytest.raises(ValueError):
        run(loop.create_server(asyncio.Protocol))


@pytest.mark.parametrize("kw", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_ssl_timeouts_without_ssl_are_valueerror(loop, run, kw):
    with pytest.raises(ValueError):
        run(loop.create_server(asyncio.Protocol, "127.0.0.1", 0, **{kw: 1.0}))


def test_ssl_bool_is_typeerror(loop, run):
    with pytest.raises(TypeError):
        run(loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True))


def test_unknown_keyword_is_typeerror(loop, run):
    with pytest.raises(TypeError):
        run(loop.create_server(asyncio.Protocol, "127.0.0.1", 0, bogus=1))
