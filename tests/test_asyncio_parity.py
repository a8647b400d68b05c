"""Behaviours where real libraries rely on the stdlib loop's exact semantics.

Each test asserts what asyncio does (it passes with RINGLOOP_TEST_REFERENCE=asyncio):
watches of a file closed behind the loop's back (add_reader/add_writer, sock_*
operations), exceptions of failed operations not kept alive by the frames that
collected them, TimerHandle.when() of an int, and timers that follow a patched
loop.time(). Where ringloop knowingly differs, the test says so with a marker
(docs/api-contract.md, "Differences from asyncio").
"""
import asyncio
import errno
import gc
import socket
import ssl
import sys
from unittest import mock

import pytest

from test_tls import pki  # noqa: F401  (the fixture)


def spin(loop, passes=3):
    """Run a few loop iterations."""
    for _ in range(passes):
        loop.run_until_complete(asyncio.sleep(0))


def closed_port():
    """A loopback TCP port nothing listens on (bound, never listened, closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- watches of closed files

def add_watch(loop, direction, sock, callback, *args):
    getattr(loop, f"add_{direction}")(sock, callback, *args)


def remove_watch(loop, direction, sock):
    return getattr(loop, f"remove_{direction}")(sock)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_remove_watch_of_socket_closed_after_add(loop, direction):
    # anyio's Unix socket streams: add_reader(sock, ...), sock.close(), then
    # remove_reader(sock) from a done-callback. asyncio finds the watch by the object.
    a, b = socket.socketpair()
    with b:
        b.send(b"x")                     # a is readable and writable
        calls = []
        add_watch(loop, direction, a, calls.append, 1)
        a.close()
        assert remove_watch(loop, direction, a) is True
        spin(loop)
        assert calls == []
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            remove_watch(loop, direction, a)     # no watch holds the object any more


@pytest.mark.timeout(10)
@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_remove_watch_of_socket_closed_while_loop_ran(loop, direction):
    a, b = socket.socketpair()
    with b:
        calls = []
        add_watch(loop, direction, a, calls.append, 1)
        spin(loop)                       # the watch is in the kernel, and fired
        if direction == "reader":
            assert calls == []
            b.send(b"x")
            spin(loop)
        assert calls
        a.close()
        del calls[:]
        spin(loop)
        assert calls == []               # the closed socket's watch is gone
        assert remove_watch(loop, direction, a) is True


@pytest.mark.timeout(10)
@pytest.mark.parametrize("method", ["add_reader", "add_writer", "remove_reader", "remove_writer"])
def test_watch_calls_on_closed_socket_never_watched(loop, method):
    a, b = socket.socketpair()
    a.close()
    b.close()
    args = (lambda: None,) if method.startswith("add") else ()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        getattr(loop, method)(a, *args)


@pytest.mark.timeout(10)
def test_remove_reader_of_closed_socket_beside_a_transport(loop):
    # With a transport open the loop checks that the fd is not a transport's first
    # (asyncio's _ensure_fd_no_transport): a closed socket's -1 is no transport's.
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    with b, d:
        transport, _ = loop.run_until_complete(
            loop.connect_accepted_socket(asyncio.Protocol, c))
        try:
            loop.add_reader(a, lambda: None)
            a.close()
            assert loop.remove_reader(a) is True
        finally:
            transport.close()
            spin(loop)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_socket_closed_while_watched_is_closed_for_the_peer(loop, direction):
    # A user who forgets remove_reader() must not leak the connection: with asyncio
    # (epoll) the peer reads EOF as soon as the socket is closed.
    a, b = socket.socketpair()
    with b:
        b.settimeout(5)
        add_watch(loop, direction, a, lambda: None)
        spin(loop)                       # armed in the kernel
        a.close()
        assert b.recv(1) == b""          # EOF, not a timeout
        assert remove_watch(loop, direction, a) is True


@pytest.mark.timeout(10)
def test_reader_of_closed_tcp_socket_lets_the_peer_see_eof(loop):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with server:
            server.settimeout(5)
            client.setblocking(False)
            loop.add_reader(client, lambda: None)
            spin(loop)
            client.close()
            assert server.recv(1) == b""
            assert loop.remove_reader(client) is True


@pytest.mark.timeout(10)
@pytest.mark.ringloop_only("asyncio's selector keeps the closed socket's key; add_reader "
                           "of the new socket only swaps the callback, never watching it")
def test_fd_reused_after_close_is_watched_afresh(loop):
    # The old socket is closed without remove_reader(); a new socket gets its fd
    # number and add_reader() takes over the watch: the new socket's data wakes it.
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(a, lambda: None)
    spin(loop)
    a.close()
    b.close()
    c, d = socket.socketpair()
    with c, d:
        assert c.fileno() == fd
        got = loop.create_future()
        loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
        d.send(b"new")
        loop.run_until_complete(asyncio.wait_for(got, 5))
        assert got.result() == b"new"
        assert loop.remove_reader(c) is True


@pytest.mark.timeout(10)
@pytest.mark.ringloop_only("asyncio's selector finds the closed socket's key, which the "
                           "transport's reader took over, and removes that reader")
@pytest.mark.parametrize("by", ["object", "fd"])
def test_remove_reader_of_closed_socket_leaves_a_transport_on_its_fd(loop, by):
    a, b = socket.socketpair()
    loop.add_reader(a if by == "object" else a.fileno(), lambda: None)
    spin(loop)                           # registered in the kernel
    a.close()                            # without remove_reader()
    b.close()
    c, d = socket.socketpair()
    with d:
        got = loop.create_future()

        class Receiver(asyncio.Protocol):
            def data_received(self, data):
                got.set_result(data)

        transport, _ = loop.run_until_complete(loop.connect_accepted_socket(Receiver, c))
        try:
            if by == "object":
                with pytest.raises(ValueError):
                    loop.remove_reader(a)    # a's watch is gone: the fd is the transport's
            d.send(b"still read")
            assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"still read"
        finally:
            transport.close()
            spin(loop)


# ---------------------------------------------------------------- sock_* on a socket closed meanwhile

@pytest.fixture
def op_holds_the_file(request, backend):
    """On io_uring a sock_* operation in flight (IORING_OP_RECV/SEND/ACCEPT or a
    poll) holds a reference to the file until it completes or is cancelled, so a
    socket closed under it stays open in the kernel until then
    (docs/api-contract.md, "Differences from asyncio")."""
    request.applymarker(pytest.mark.xfail(
        backend == "io_uring", strict=True,
        reason="io_uring: an operation in flight keeps the closed socket's file"))


def start(loop, coro):
    task = loop.create_task(coro)
    spin(loop)                           # waiting in the kernel
    assert not task.done()
    return task


def cancel(loop, task):
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("op", ["sock_recv", "sock_recv_into"])
def test_socket_closed_during_sock_recv_is_closed_for_the_peer(loop, op_holds_the_file, op):
    a, b = socket.socketpair()
    with b:
        a.setblocking(False)
        b.settimeout(2)
        arg = 10 if op == "sock_recv" else bytearray(10)
        task = start(loop, getattr(loop, op)(a, arg))
        a.close()
        assert b.recv(1) == b""
        cancel(loop, task)


@pytest.mark.timeout(10)
def test_socket_closed_during_sock_sendall_is_closed_for_the_peer(loop, op_holds_the_file):
    a, b = socket.socketpair()
    with b:
        a.setblocking(False)
        task = start(loop, loop.sock_sendall(a, b"x" * (16 << 20)))
        a.close()
        b.settimeout(2)
        while b.recv(1 << 20):           # what was sent, then EOF
            pass
        cancel(loop, task)


@pytest.mark.timeout(10)
def test_listener_closed_during_sock_accept_refuses_connections(loop, op_holds_the_file):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    address = listener.getsockname()
    task = start(loop, loop.sock_accept(listener))
    listener.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2).close()
    cancel(loop, task)


# ---------------------------------------------------------------- exceptions of failures

def failure(loop, make_coro, timeout=10):
    """The exception that awaiting make_coro() raised, caught inside the loop."""
    box = []

    async def main():
        try:
            await asyncio.wait_for(make_coro(), timeout)
        except (OSError, ssl.SSLError, ExceptionGroup) as exc:
            box.append(exc)
        else:
            raise AssertionError("no exception")

    loop.run_until_complete(main())
    return box.pop()


def assert_not_kept_alive(exc):
    """Nothing but the test refers to exc: no list that collected it, no frame
    local left in its traceback (anyio checks this with gc.get_referrers)."""
    gc.collect()
    assert gc.get_referrers(exc) == []


def two_refused_addresses(loop):
    """Make loop.getaddrinfo resolve any host to two loopback addresses that both
    refuse connections (a host with several addresses, without DNS)."""
    port = closed_port()
    infos = [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
             for ip in ("127.0.0.1", "127.0.0.2")]

    resolve = loop.getaddrinfo

    async def getaddrinfo(host, *args, **kwargs):
        if host == "several.test":
            return list(infos)
        return await resolve(host, *args, **kwargs)     # sock_connect's own look-up

    return mock.patch.object(loop, "getaddrinfo", getaddrinfo)


@pytest.mark.timeout(20)
def test_refused_create_connection_exception_not_kept_alive(loop):
    port = closed_port()
    exc = failure(loop, lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
    assert isinstance(exc, ConnectionRefusedError)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("all_errors", [False, True])
@pytest.mark.parametrize("happy_eyeballs_delay", [None, 0.05])
def test_create_connection_to_several_addresses_exception_not_kept_alive(
        loop, reference, happy_eyeballs_delay, all_errors):
    if all_errors and reference and sys.version_info < (3, 12):
        pytest.skip("asyncio has create_connection(all_errors=) since 3.12")
    extra = {"all_errors": True} if all_errors else {}
    with two_refused_addresses(loop):
        exc = failure(loop, lambda: loop.create_connection(
            asyncio.Protocol, "several.test", 80, happy_eyeballs_delay=happy_eyeballs_delay,
            **extra))
    if all_errors:
        assert isinstance(exc, ExceptionGroup)
        assert [type(e) for e in exc.exceptions] == [ConnectionRefusedError] * 2
    else:
        assert "Multiple exceptions" in str(exc)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_create_connection_bind_failure_exception_not_kept_alive(loop):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        exc = failure(loop, lambda: loop.create_connection(
            asyncio.Protocol, "127.0.0.1", taken.getsockname()[1],
            local_addr=taken.getsockname()))
    assert exc.errno == errno.EADDRINUSE
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_resolution_failure_exception_not_kept_alive(loop):
    # An IPv6 literal asked for as IPv4: getaddrinfo fails without any DNS query.
    exc = failure(loop, lambda: loop.create_connection(
        asyncio.Protocol, "::1", 80, family=socket.AF_INET))
    assert isinstance(exc, socket.gaierror)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_create_server_bind_failure_exception_not_kept_alive(loop):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        exc = failure(loop, lambda: loop.create_server(
            asyncio.Protocol, ["127.0.0.2", "127.0.0.1"], taken.getsockname()[1]))
    assert exc.errno == errno.EADDRINUSE
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_sock_connect_refused_exception_not_kept_alive(loop):
    port = closed_port()
    with socket.socket() as sock:
        sock.setblocking(False)
        exc = failure(loop, lambda: loop.sock_connect(sock, ("127.0.0.1", port)))
    assert isinstance(exc, ConnectionRefusedError)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_create_unix_connection_failure_exception_not_kept_alive(loop, tmp_path):
    exc = failure(loop, lambda: loop.create_unix_connection(
        asyncio.Protocol, str(tmp_path / "nobody.sock")))
    assert isinstance(exc, FileNotFoundError)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_open_connection_refused_exception_not_kept_alive(loop):
    port = closed_port()
    exc = failure(loop, lambda: asyncio.open_connection("127.0.0.1", port))
    assert isinstance(exc, ConnectionRefusedError)
    assert_not_kept_alive(exc)


# asyncio (3.11 to 3.13) keeps these exceptions alive itself: create_datagram_endpoint
# raises exceptions[0] of a list its frame keeps, sock_recv awaits a future its frame keeps.
STDLIB_KEEPS_EXC = pytest.mark.reference_bug(
    "the raising frame keeps a list or future holding the exception",
    [(3, minor, patch) for minor in (11, 12, 13) for patch in range(30)])

# asyncio before 3.13: the frame of sslproto's _on_handshake_complete, in the
# traceback, still refers to the handshake's exception.
SSLPROTO_FRAME_KEEPS_EXC = pytest.mark.reference_bug(
    "sslproto._on_handshake_complete's frame keeps the exception",
    [(3, minor, patch) for minor in (11, 12) for patch in range(30)])


def failed_tls_handshake(loop, pki, connect):
    """The exception of connect(port, untrusting_context) to a TLS server whose
    certificate the client cannot verify."""
    server = loop.run_until_complete(loop.create_server(
        asyncio.Protocol, "127.0.0.1", 0, ssl=pki.server_context()))
    try:
        port = server.sockets[0].getsockname()[1]
        untrusting = ssl.create_default_context()     # does not know the test CA
        return failure(loop, lambda: connect(port, untrusting))
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())


@pytest.mark.timeout(30)
@SSLPROTO_FRAME_KEEPS_EXC
def test_tls_handshake_failure_exception_not_kept_alive(loop, pki):
    exc = failed_tls_handshake(loop, pki, lambda port, ctx: loop.create_connection(
        asyncio.Protocol, "127.0.0.1", port, ssl=ctx, server_hostname="localhost"))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(30)
@SSLPROTO_FRAME_KEEPS_EXC
def test_start_tls_failure_exception_not_kept_alive(loop, pki):
    transports = []

    async def upgrade(port, ctx):
        transport, protocol = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port)
        transports.append(transport)
        await loop.start_tls(transport, protocol, ctx, server_hostname="localhost")

    exc = failed_tls_handshake(loop, pki, upgrade)
    transports.pop().close()
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert_not_kept_alive(exc)


def reset_pair():
    """A connected TCP pair whose server side was reset (RST sent on close)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    server.close()
    client.setblocking(False)
    return client


@pytest.mark.timeout(20)
@pytest.mark.parametrize("op", ["sock_recv", "sock_sendall"])
def test_sock_op_on_reset_connection_exception_not_kept_alive(loop, op):
    with reset_pair() as client:
        if op == "sock_recv":
            exc = failure(loop, lambda: loop.sock_recv(client, 10))
        else:
            exc = failure(loop, lambda: loop.sock_sendall(client, b"x" * 100))
    assert isinstance(exc, ConnectionResetError)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
@pytest.mark.reference_bug(
    "asyncio's sock_recv keeps the exception of a wait ended by a reset",
    [(3, minor, patch) for minor in (11, 12, 13, 14, 15) for patch in range(30)])
def test_sock_recv_waiting_then_reset_exception_not_kept_alive(loop):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client:
        client.setblocking(False)

        async def recv_then_reset():
            task = loop.create_task(loop.sock_recv(client, 10))
            await asyncio.sleep(0.05)                    # waiting in the kernel
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              b"\x01\x00\x00\x00\x00\x00\x00\x00")
            server.close()
            try:
                return await task
            finally:
                # The test's own reference: from 3.14 on, the raising frame in the
                # traceback keeps its locals, so `task` (holding exc) would be the
                # test's cycle, not the loop's.
                del task

        exc = failure(loop, recv_then_reset)
    assert isinstance(exc, ConnectionResetError)
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
@STDLIB_KEEPS_EXC
def test_datagram_bind_failure_exception_not_kept_alive(loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        exc = failure(loop, lambda: loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=taken.getsockname()))
    assert exc.errno == errno.EADDRINUSE
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_unix_server_bind_failure_exception_not_kept_alive(loop, tmp_path):
    path = tmp_path / "taken"
    path.write_text("")                  # not a socket: left in place, bind fails
    exc = failure(loop, lambda: loop.create_unix_server(asyncio.Protocol, str(path)))
    assert exc.errno == errno.EADDRINUSE
    assert_not_kept_alive(exc)


@pytest.mark.timeout(20)
def test_subprocess_exec_failure_exception_not_kept_alive(loop, tmp_path):
    exc = failure(loop, lambda: asyncio.create_subprocess_exec(str(tmp_path / "missing")))
    assert isinstance(exc, FileNotFoundError)
    assert_not_kept_alive(exc)


# ---------------------------------------------------------------- TimerHandle.when()

def test_call_at_int_when_stays_int(loop):
    h = loop.call_at(8018, lambda: None)
    try:
        assert h.when() == 8018
        assert type(h.when()) is int
        assert "when=8018 " in repr(h)
    finally:
        h.cancel()


def test_call_at_float_and_call_later_when_are_floats(loop):
    handles = [loop.call_at(8018.5, lambda: None), loop.call_later(10, lambda: None)]
    try:
        assert handles[0].when() == 8018.5
        assert all(type(h.when()) is float for h in handles)
    finally:
        for h in handles:
            h.cancel()


def test_timer_handle_when_hash_and_order_with_int(loop):
    a = loop.call_at(100, lambda: None)
    b = loop.call_at(100.0, lambda: None)
    try:
        assert a.when() == b.when() and hash(a) == hash(b)
        assert not a < b and not b < a
    finally:
        a.cancel()
        b.cancel()


# ---------------------------------------------------------------- a patched loop.time

@pytest.mark.timeout(10)
def test_timers_follow_a_patched_loop_time(loop):
    fired = []

    async def main():
        real_now = loop.time()
        loop.call_later(1000, fired.append, "due")
        with mock.patch.object(loop, "time", return_value=real_now + 2000):
            late = loop.call_later(10, fired.append, "late")
            assert late.when() == real_now + 2010
            for _ in range(3):
                await asyncio.sleep(0)
            assert fired == ["due"]
            late.cancel()
        # The real clock again: a timer 1000 s ahead waits.
        loop.call_later(1000, fired.append, "never")
        for _ in range(3):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert fired == ["due"]


@pytest.mark.timeout(10)
def test_patched_loop_time_makes_an_idle_loop_run_its_timer(loop):
    # Nothing but the timer is pending: the loop must not block for the 1000 s the
    # real clock says are left, since the patched clock says the timer is due.
    fired = loop.create_future()
    loop.call_later(1000, fired.set_result, "due")
    with mock.patch.object(loop, "time", return_value=loop.time() + 2000):
        assert loop.run_until_complete(fired) == "due"
