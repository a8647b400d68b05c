"""Operations by completion (io_uring: multishot accept, sock_recv / sock_sendall as
IORING_OP_RECV / IORING_OP_SEND) and the cases where they could lose, leak or
duplicate something: cancellation with data in flight, a server closed while
connections arrive, loop.close() with operations in flight, fork. Every test also
runs on epoll (readiness) and, in reference mode, on the stdlib loop."""
import asyncio
import socket
import threading

import pytest

from netutil import pattern, tcp_listener
from test_net_sock_api import socks  # noqa: F401  (fixture: a connected TCP pair)

pytestmark = pytest.mark.timeout(30)


async def _drain(loop, sock, got):
    while True:
        data = await loop.sock_recv(sock, 4096)
        if not data:
            return
        got += data


@pytest.mark.parametrize("into", [False, True], ids=["recv", "recv_into"])
def test_cancelled_recvs_lose_nothing(loop, run, socks, into):
    # A recv cancelled while it waits, right as data arrives: the data (on io_uring
    # maybe already received by the cancelled operation) must reach the next recv,
    # whole and in order, also when that recv asks for less than arrived.
    a, b = socks
    stream = pattern(300 * 40)
    sizes = [1, 7, 100, 4096]

    async def recv(n):
        if not into:
            return await loop.sock_recv(a, n)
        buf = bytearray(n)
        k = await loop.sock_recv_into(a, buf)
        return bytes(buf[:k])

    async def main():
        got = bytearray()
        sent = 0
        for i in range(300):
            t = loop.create_task(recv(sizes[i % len(sizes)]))
            await asyncio.sleep(0)          # t waits for data
            if i % 3:
                chunk = stream[sent:sent + 40]
                b.send(chunk)
                sent += len(chunk)
            t.cancel()
            try:
                got += await t
            except asyncio.CancelledError:
                pass
            if i % 5 == 0 and len(got) < sent:
                got += await asyncio.wait_for(recv(sizes[(i // 5) % len(sizes)]), 5)
                assert bytes(got) == stream[:len(got)]
        b.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(_drain(loop, a, got), 5)
        assert len(got) == sent
        assert bytes(got) == stream[:sent]

    run(main(), timeout=20)


def test_cancelled_recv_then_eof(loop, run, socks):
    # The peer's EOF while a cancelled recv is in flight is still seen afterwards.
    a, b = socks

    async def main():
        t = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        b.shutdown(socket.SHUT_WR)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert await asyncio.wait_for(loop.sock_recv(a, 100), 5) == b""

    run(main())


def test_sendall_waits_and_completes(loop, run, socks):
    # More than the socket buffers hold: sock_sendall waits (io_uring: an
    # IORING_OP_SEND of the rest) and every byte arrives in order.
    a, b = socks
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = pattern(4 * 1024 * 1024)

    async def main():
        got = bytearray()
        reader = loop.create_task(_drain(loop, b, got))
        await loop.sock_sendall(a, data)
        a.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(reader, 10)
        assert len(got) == len(data) and bytes(got) == data

    run(main(), timeout=20)


def test_sendall_to_reset_peer_raises(loop, run, socks):
    a, b = socks
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    async def main():
        t = loop.create_task(loop.sock_sendall(a, b"x" * (8 * 1024 * 1024)))
        await asyncio.sleep(0.05)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        b.close()
        with pytest.raises(OSError):
            await asyncio.wait_for(t, 5)

    run(main())


class _Echo(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr

    def data_received(self, data):
        self.tr.write(data)


def test_server_close_while_connections_arrive(loop, run):
    # Connections the kernel accepts after server.close() are closed, never leaked
    # (the fd-hygiene check) and never left hanging: every client sees its echo or
    # the connection end.
    results = []

    def clients(port, n):
        for i in range(n):
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                results.append("refused")
                continue
            with c:
                try:
                    c.sendall(b"ping%d" % i)
                    data = c.recv(100)
                    results.append("echo" if data == b"ping%d" % i else
                                   "closed" if not data else data)
                except (ConnectionError, socket.timeout) as exc:
                    results.append(type(exc).__name__)

    async def main():
        server = await loop.create_server(_Echo, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        th = threading.Thread(target=clients, args=(port, 200))
        th.start()
        while len(results) < 20:
            await asyncio.sleep(0.001)
        server.close()
        await server.wait_closed()
        while th.is_alive():
            await asyncio.sleep(0.01)
        th.join()

    run(main(), timeout=25)
    assert len(results) == 200
    assert "echo" in results
    assert set(results) <= {"echo", "closed", "refused", "ConnectionResetError",
                            "ConnectionRefusedError"}, set(results)


def test_loop_close_with_operations_in_flight(loop_factory, socks):
    # loop.close() with a listening server, a waiting sock_recv and a waiting
    # sock_sendall: the ring goes without leaking fds or touching freed buffers.
    a, b = socks
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    lp = loop_factory()

    async def main():
        # host/port, not sock=: a server on a socket of its own accepts by multishot
        server = await lp.create_server(_Echo, "127.0.0.1", 0)
        recv = lp.create_task(lp.sock_recv(a, 100))
        send = lp.create_task(lp.sock_sendall(a, b"y" * (8 * 1024 * 1024)))
        await asyncio.sleep(0.05)
        return server, recv, send

    server, recv, send = lp.run_until_complete(main())
    assert not recv.done() and not send.done()
    # a connection the kernel may accept while the loop closes: closed, not leaked
    c = socket.create_connection(server.sockets[0].getsockname())
    lp.close()
    # the tasks are abandoned with the loop (as asyncio does); the sockets close
    server._sockets[0].close()     # the listening socket itself (sockets has wrappers)
    c.close()
    del recv, send, server


def _run_forking_script(py, code, backend):
    # code: a script that leaves the parent with `server` and `loop`; they are closed
    # here, and the script must get that far.
    code += """
server.close()
loop.run_until_complete(server.wait_closed())
loop.close()
print("OK")
"""
    r = py.run(code, backend, timeout=25)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr


@pytest.mark.ringloop_only("pre-fork workers: io_uring accept wake-ups are exclusive")
def test_prefork_workers_on_inherited_socket(py, backend):
    # Workers forked before any loop exists, each with its own server on the inherited
    # socket (sock=), as gunicorn runs them. The parent's server is armed first and
    # then does not run its loop; the child's must still get its own connection.
    code = r"""
import asyncio, os, socket, sys, time
import ringloop

class Echo(asyncio.Protocol):
    def connection_made(self, tr): self.tr = tr
    def data_received(self, data): self.tr.write(data)

lsock = socket.create_server(("127.0.0.1", 0))
port = lsock.getsockname()[1]
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(ready_r, 1)                 # the parent's server is armed
    loop = ringloop.new_event_loop(backend=sys.argv[1])
    async def child():
        await loop.create_server(Echo, sock=lsock)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"ping")
        got = await asyncio.wait_for(r.readexactly(4), 3)
        w.close()
        return got
    try:
        ok = loop.run_until_complete(child()) == b"ping"
    except BaseException as exc:
        print("child:", repr(exc), flush=True)
        ok = False
    os._exit(0 if ok else 1)
loop = ringloop.new_event_loop(backend=sys.argv[1])
server = loop.run_until_complete(loop.create_server(Echo, sock=lsock))
loop.run_until_complete(asyncio.sleep(0.05))
os.write(ready_w, b"x")
_, status = os.waitpid(pid, 0)          # not running the loop meanwhile
assert os.waitstatus_to_exitcode(status) == 0, status
"""
    _run_forking_script(py, code, backend)


@pytest.mark.ringloop_only("fork re-creates the ring: the child's accepts and recvs")
def test_fork_child_serves_and_receives(py, backend):
    code = r"""
import asyncio, os, socket, sys
import ringloop

loop = ringloop.new_event_loop(backend=sys.argv[1])

class Echo(asyncio.Protocol):
    def connection_made(self, tr): self.tr = tr
    def data_received(self, data): self.tr.write(data)

async def setup():
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    pending = loop.create_task(loop.sock_recv(a, 100))   # in flight across fork
    await asyncio.sleep(0.01)
    return server, a, b, pending

server, a, b, pending = loop.run_until_complete(setup())
port = server.sockets[0].getsockname()[1]

async def check(tag):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(tag)
    assert await asyncio.wait_for(r.readexactly(len(tag)), 5) == tag
    w.close()

pid = os.fork()
if pid == 0:
    try:
        b.send(b"to-child")
        got = loop.run_until_complete(asyncio.wait_for(pending, 5))
        assert got == b"to-child", got
        loop.run_until_complete(check(b"child"))
        os._exit(0)
    except BaseException as exc:
        print("child:", repr(exc), flush=True)
        os._exit(1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
pending.cancel()
loop.run_until_complete(check(b"parent"))
"""
    _run_forking_script(py, code, backend)
