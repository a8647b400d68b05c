"""Helpers for the networking tests (tests/test_net_*.py).

Everything here asserts or records asyncio's documented protocol/transport
semantics; nothing is ringloop-specific.

* ``Proto``: an ``asyncio.Protocol`` that records every callback (counts,
  order, received bytes, the exception given to connection_lost) and flags
  protocol-contract violations (data after EOF, callbacks after
  connection_lost, ...).  ``await p.wait_bytes(n)``, ``await p.lost``, ...
* ``Factory``: a protocol factory for servers that keeps the protocols it
  made, so a test can wait for the server side of a connection.
* ``Peer``: a plain blocking socket at the other end of a connection, read in
  a background thread (so the peer does not depend on the loop under test).
* ``tcp_listener()``/``free_port()``/``until()`` and friends.
"""
import asyncio
import collections
import contextlib
import os
import socket
import struct
import sys
import threading
import time

import pytest

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
# Server.wait_closed() waits for the connections only from 3.12.1 on (it
# returned at once after close() before, see its docstring).
WAIT_CLOSED_WAITS_FOR_CLIENTS = sys.version_info >= (3, 12, 1)


def _has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")


def free_port(host="127.0.0.1"):
    """A TCP port on which (right now) nothing listens: connects to it are
    refused."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tcp_listener(host="127.0.0.1", backlog=128, rcvbuf=None):
    """A plain (blocking) listening socket; the caller closes it."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((host, 0))
    s.listen(backlog)
    return s


def accept(lsock, timeout=5.0):
    """Blocking accept with a timeout (the connection is already complete
    on the client side, so this returns at once)."""
    lsock.settimeout(timeout)
    try:
        conn, _ = lsock.accept()
    finally:
        lsock.settimeout(None)
    conn.settimeout(timeout)
    return conn


async def until(pred, timeout=5.0, interval=0.005, what=None):
    """Poll ``pred()`` on the running loop until it is true."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(interval)


async def settle(n=5):
    """Let the loop run a few iterations (for asserting something does NOT
    happen; never used to wait for something that must happen)."""
    for _ in range(n):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


def _set(fut, value):
    if not fut.done():
        fut.set_result(value)


def pattern(n, seed=0):
    """n deterministic, non-repeating-looking bytes (lost/duplicated/reordered
    chunks change the content, not just the length)."""
    out = bytearray()
    i = seed
    while len(out) < n:
        out += i.to_bytes(8, "little") * 8
        i += 1
    return bytes(out[:n])


class Proto(asyncio.Protocol):
    """Records everything; see the module docstring."""

    def __init__(self, loop, *, eof_return=None, pause_in_made=False):
        self.loop = loop
        self.transport = None
        self.events = []          # callback names in order ("data" collapsed)
        self.calls = collections.Counter()
        self.data = bytearray()
        self.chunks = 0
        self.lost_exc = None
        self.violations = []
        self.eof_return = eof_return
        self.pause_in_made = pause_in_made
        self.paused = False       # write flow control state
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self._waiters = []        # (nbytes, future)

    # -- bookkeeping
    def _event(self, name):
        self.calls[name] += 1
        if name != "data" or not self.events or self.events[-1] != "data":
            self.events.append(name)
        if name != "made" and not self.calls["made"]:
            self.violations.append(f"{name} before connection_made")
        if self.calls["lost"] and not (name == "lost" and self.calls["lost"] == 1):
            self.violations.append(f"{name} after connection_lost")

    def _wake(self, everything=False):
        keep = []
        for n, fut in self._waiters:
            if fut.done():
                continue
            if len(self.data) >= n:
                fut.set_result(bytes(self.data))
            elif everything:
                fut.set_exception(AssertionError(
                    f"connection ended ({self.events}) with {len(self.data)} "
                    f"bytes received, waited for {n}"))
            else:
                keep.append((n, fut))
        self._waiters = keep

    # -- protocol callbacks
    def connection_made(self, transport):
        self._event("made")
        if self.calls["made"] > 1:
            self.violations.append("connection_made called twice")
        self.transport = transport
        if self.pause_in_made:
            transport.pause_reading()
        _set(self.made, transport)

    def data_received(self, data):
        self._event("data")
        if type(data) is not bytes:
            self.violations.append(f"data_received got {type(data).__name__}")
        if not data:
            self.violations.append("data_received got empty data")
        if self.calls["eof"]:
            self.violations.append("data_received after eof_received")
        self.chunks += 1
        self.data += data
        self._wake()

    def eof_received(self):
        self._event("eof")
        if self.calls["eof"] > 1:
            self.violations.append("eof_received called twice")
        _set(self.eof, None)
        self._wake(everything=True)
        return self.eof_return

    def connection_lost(self, exc):
        self._event("lost")
        if self.calls["lost"] > 1:
            self.violations.append("connection_lost called twice")
        self.lost_exc = exc
        _set(self.lost, exc)
        self._wake(everything=True)

    def pause_writing(self):
        self._event("pause_writing")
        if self.paused:
            self.violations.append("pause_writing while paused")
        self.paused = True

    def resume_writing(self):
        self._event("resume_writing")
        if not self.paused:
            self.violations.append("resume_writing while not paused")
        self.paused = False

    # -- helpers for tests
    async def wait_bytes(self, n):
        """Wait until at least n bytes were received; returns them all."""
        if len(self.data) >= n:
            return bytes(self.data)
        if self.calls["eof"] or self.calls["lost"]:
            raise AssertionError(f"connection already ended with "
                                 f"{len(self.data)} of {n} bytes")
        fut = self.loop.create_future()
        self._waiters.append((n, fut))
        return await fut

    async def close_and_wait(self):
        self.transport.close()
        return await self.lost

    def check(self, *, lost=True, eof=None):
        """Assert a clean lifecycle: made once, lost once (or not yet), eof
        at most once (exactly once / never if ``eof`` is True/False)."""
        assert self.violations == []
        assert self.calls["made"] == 1
        assert self.calls["lost"] == (1 if lost else 0)
        assert self.calls["eof"] <= 1
        if eof is not None:
            assert self.calls["eof"] == (1 if eof else 0)
        if lost:
            assert self.events[-1] == "lost"


class BufProto(asyncio.BufferedProtocol):
    """BufferedProtocol recorder: get_buffer/buffer_updated/eof/lost."""

    def __init__(self, loop, bufsize=1024, empty=False):
        self.loop = loop
        self.transport = None
        self.buf = bytearray(bufsize)
        self.empty = empty
        self.data = bytearray()
        self.calls = collections.Counter()
        self.sizehints = []
        self.violations = []
        self.lost_exc = None
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.calls["made"] += 1
        self.transport = transport
        _set(self.made, transport)

    def get_buffer(self, sizehint):
        self.calls["get_buffer"] += 1
        self.sizehints.append(sizehint)
        if self.calls["lost"]:
            self.violations.append("get_buffer after connection_lost")
        if self.empty:
            return bytearray()
        return self.buf

    def buffer_updated(self, nbytes):
        self.calls["buffer_updated"] += 1
        if not 0 < nbytes <= len(self.buf):
            self.violations.append(f"buffer_updated({nbytes})")
        if self.calls["eof"]:
            self.violations.append("buffer_updated after eof_received")
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.calls["eof"] += 1
        _set(self.eof, None)

    def connection_lost(self, exc):
        self.calls["lost"] += 1
        self.lost_exc = exc
        _set(self.lost, exc)


class Factory:
    """Protocol factory that keeps what it made (server side)."""

    def __init__(self, loop, cls=Proto, **kwargs):
        self.loop = loop
        self.cls = cls
        self.kwargs = kwargs
        self.protos = []

    def __call__(self):
        p = self.cls(self.loop, **self.kwargs)
        self.protos.append(p)
        return p

    async def get(self, i=0, timeout=5.0):
        """The i-th protocol made, once its connection_made has run."""
        await until(lambda: len(self.protos) > i, timeout,
                    what=f"server protocol #{i}")
        p = self.protos[i]
        await p.made
        return p

    async def close_all(self):
        for p in self.protos:
            if p.transport is not None:
                p.transport.close()
        for p in self.protos:
            if p.calls["made"]:
                await p.lost


class Echo(Proto):
    """Server-side echo (a recording Proto that writes back what it gets);
    as every Proto with the default eof_return, it closes (after flushing)
    when the client's EOF arrives."""

    def data_received(self, data):
        super().data_received(data)
        self.transport.write(data)


async def shutdown(server, factory=None):
    """Close the server and every connection it made; wait until all
    connection_lost callbacks ran."""
    server.close()
    if factory is not None:
        await factory.close_all()
    await server.wait_closed()


class Peer:
    """The far end of a connection as a plain blocking socket.

    ``start_reader()`` reads everything until EOF (or an error) in a thread;
    ``await peer.wait_done()`` waits for that.  ``close()`` closes the
    socket and joins the thread."""

    def __init__(self, sock, timeout=30.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.data = bytearray()
        self.error = None
        self.eof = False
        self.done = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def start_reader(self, chunk=65536, delay=0.0):
        def reader():
            try:
                while True:
                    b = self.sock.recv(chunk)
                    if not b:
                        self.eof = True
                        return
                    with self._lock:
                        self.data += b
                    if delay:
                        time.sleep(delay)
            except OSError as exc:
                self.error = exc
            finally:
                self.done.set()

        self._thread = threading.Thread(target=reader, daemon=True)
        self._thread.start()

    def received(self):
        with self._lock:
            return len(self.data)

    async def wait_done(self, timeout=30.0):
        await until(self.done.is_set, timeout, what="peer reader to finish")
        return bytes(self.data)

    def recv_exactly(self, n):
        out = bytearray()
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise AssertionError(f"EOF after {len(out)} of {n} bytes")
            out += b
        return bytes(out)

    def recv_eof(self):
        """Read until EOF; returns what came before it."""
        out = bytearray()
        while True:
            b = self.sock.recv(65536)
            if not b:
                return bytes(out)
            out += b

    # The loop under test may send a transport's data only on its next
    # iteration, so never block the loop's thread on the peer socket: these
    # run the blocking call in the default executor.
    async def arecv(self, n):
        return await asyncio.get_running_loop().run_in_executor(
            None, self.recv_exactly, n)

    async def arecv_eof(self):
        return await asyncio.get_running_loop().run_in_executor(
            None, self.recv_eof)

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


async def open_tcp_pair(loop, factory=None, *, small_buffers=False, **kw):
    """create_connection() to a plain listener; returns (transport,
    protocol, Peer).  small_buffers: 64 KiB SO_RCVBUF on the peer and
    SO_SNDBUF on the transport's socket, so that a few hundred KiB fill the
    kernel and the rest stays in the transport's buffer."""
    lsock = tcp_listener(rcvbuf=65536 if small_buffers else None)
    try:
        tr, p = await loop.create_connection(factory or (lambda: Proto(loop)),
                                             *lsock.getsockname(), **kw)
        peer = Peer(accept(lsock))
    finally:
        lsock.close()
    if small_buffers:
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET,
                                               socket.SO_SNDBUF, 65536)
    return tr, p, peer


def tcp_pair_fixture(loop):
    """Body of the ``tcp_pair`` fixture (tests/conftest.py):
    ``await tcp_pair(**kw)`` -> (transport, protocol, Peer), see
    open_tcp_pair().  Teardown closes the peers (and, if a failed test left
    one open, aborts the transport so the next tests are not disturbed)."""
    made = []

    async def make(factory=None, **kw):
        tr, p, peer = await open_tcp_pair(loop, factory, **kw)
        made.append((tr, p, peer))
        return tr, p, peer

    yield make
    for tr, p, peer in made:
        peer.close()
        if not tr.is_closing() and not loop.is_closed():
            with contextlib.suppress(Exception):
                tr.abort()
                loop.run_until_complete(asyncio.sleep(0.05))


def rst_close(sock):
    """Close with SO_LINGER {on, 0}: the peer gets a RST, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def tcp_nodelay(transport):
    return transport.get_extra_info("socket").getsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY)


def collect_exceptions(loop):
    """Install an exception handler that records the contexts; returns the
    list."""
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    return seen


async def roundtrip(loop, host, port, payload=b"ping", **kwargs):
    """Connect (create_connection), send ``payload`` to an echo server,
    check the echo, close; returns the client transport's peername."""
    tr, p = await loop.create_connection(lambda: Proto(loop), host, port,
                                         **kwargs)
    try:
        peer = tr.get_extra_info("peername")
        tr.write(payload)
        assert await p.wait_bytes(len(payload)) == payload
    finally:
        tr.close()
    await p.lost
    p.check()
    return peer


def fake_resolver(monkeypatch, names):
    """Make socket.getaddrinfo() resolve the made-up host names in ``names``
    ({name: [(family, sockaddr), ...]}, in that order; the port given to
    getaddrinfo is ignored); every other name resolves as usual.  asyncio's
    loop.getaddrinfo() runs socket.getaddrinfo in the executor, so the loop
    sees these names too."""
    real = socket.getaddrinfo

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):
            host = host.decode()
        if host in names:
            out = [(fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sa)
                   for fam, sa in names[host] if family in (0, fam)]
            if not out:
                raise socket.gaierror(socket.EAI_NONAME,
                                      "Name or service not known")
            return out
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def fds_count():
    return len(os.listdir("/proc/self/fd"))
