"""Behaviours where real libraries rely on the stdlib loop's exact semantics.

Each test asserts what asyncio does (it passes with RINGLOOP_TEST_REFERENCE=asyncio):
watches of a file closed behind the loop's back, exceptions of failed operations
not kept alive by the frames that collected them, TimerHandle.when() of an int, and
timers that follow a patched loop.time().
"""
import asyncio
import gc
import socket
import ssl
import sys
from unittest import mock

import pytest


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
def test_remove_reader_of_closed_socket_never_watched(loop):
    a, b = socket.socketpair()
    a.close()
    b.close()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)


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


