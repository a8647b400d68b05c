"""Faults that happen inside the serving process, each a check that can fail.

* cancel: operations cancelled while in flight (sock_recv, sock_accept, sock_sendall,
  a StreamReader read, connects, a TLS handshake, executor jobs), often racing the
  data that would complete them: whatever a cancelled operation did not return must
  still be there for the next one (asyncio's contract: a cancelled read consumed
  nothing);
* loop_close: in another thread, a second loop with a server, connections (plain,
  TLS, UDP) and operations all still open is close()d; close() must return, and
  once the objects are garbage, none of their sockets may remain open;
* fork: the serving process forks from inside a running task; the child runs a
  fresh loop that talks to the parent's endpoints while the parent keeps serving.
Each returns a dict of what it saw; a failed check raises ChaosFailed.
"""
import asyncio
import gc
import os
import random
import socket
import ssl
import sys
import threading
import time

import ringloop
from ringloop._soak import frames

STEP_TIMEOUT = 30.0


class ChaosFailed(AssertionError):
    pass


def expect(condition, what):
    if not condition:
        raise ChaosFailed(what)


def client_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the soak's own certificate
    return ctx


async def round_trip(reader, writer, stream_id, seq, size):
    """Send one message on an open stream connection and check its echo."""
    message = frames.frame(stream_id, seq, random.randbytes(size))
    writer.write(message)
    got = await asyncio.wait_for(reader.readexactly(len(message)), STEP_TIMEOUT)
    expect(got == message, f"echo of a {size}-byte message differs")


async def settle(task):
    """Cancel a task and wait for it: its result, or None if the cancel won."""
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return None


# ---------------------------------------------------------------- cancel

async def _recv_race(loop, rounds):
    completed = 0
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        for i in range(rounds):
            sent = random.randbytes(random.randint(1, 3000))
            task = loop.create_task(loop.sock_recv(a, 65536))
            await asyncio.sleep(0)
            if i % 2:
                b.send(sent)  # the data and the cancel race
            got = await settle(task) or b""
            completed += bool(got)
            if not i % 2:
                b.send(sent)
            while len(got) < len(sent):
                more = await asyncio.wait_for(loop.sock_recv(a, 65536), STEP_TIMEOUT)
                expect(more, "EOF on a socketpair that is still open")
                got += more
            expect(got == sent, "bytes lost or changed around a cancelled sock_recv")
    finally:
        a.close()
        b.close()
    return completed


async def _accept_race(loop, rounds):
    completed = 0
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        for i in range(rounds):
            task = loop.create_task(loop.sock_accept(listener))
            await asyncio.sleep(0)
            client = socket.create_connection(listener.getsockname(), timeout=STEP_TIMEOUT)
            with client:
                if i % 2:
                    await asyncio.sleep(0)
                accepted = await settle(task)
                completed += accepted is not None
                if accepted is None:  # cancelled: the connection waits for the next accept
                    accepted = await asyncio.wait_for(loop.sock_accept(listener), STEP_TIMEOUT)
                conn = accepted[0]
                with conn:
                    client.sendall(b"x")
                    got = await asyncio.wait_for(loop.sock_recv(conn, 1), STEP_TIMEOUT)
                    expect(got == b"x", "the accepted socket is not the client's")
    return completed


async def _sendall_cancelled(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    data = random.randbytes(4 * 1024 * 1024)
    try:
        task = loop.create_task(loop.sock_sendall(a, data))
        await asyncio.sleep(random.choice([0, 0.001, 0.01]))
        await settle(task)
        a.close()
        got = bytearray()
        b.settimeout(STEP_TIMEOUT)
        while chunk := b.recv(1 << 20):
            got += chunk
        expect(got == data[:len(got)], "a cancelled sock_sendall sent bytes out of order")
        return len(got)
    finally:
        a.close()
        b.close()


async def _stream_read_cancelled(ports, seq):
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["stream"])
    try:
        message = frames.frame(0xC0DE, seq, random.randbytes(200_000))
        writer.write(message)
        task = asyncio.ensure_future(reader.readexactly(len(message)))
        await asyncio.sleep(random.choice([0, 0.0005, 0.005]))
        got = await settle(task)
        if got is None:  # cancelled: what arrived stays in the reader's buffer
            got = await asyncio.wait_for(reader.readexactly(len(message)), STEP_TIMEOUT)
        expect(got == message, "a cancelled readexactly lost or changed bytes")
        # a timed-out read leaves the connection usable
        try:
            await asyncio.wait_for(reader.read(1), 0.01)
            raise ChaosFailed("bytes after the echo")
        except asyncio.TimeoutError:
            pass
        await round_trip(reader, writer, 0xC0DE, seq + 1, 1000)
    finally:
        writer.close()
        await writer.wait_closed()


async def _connects_cancelled(loop, ports):
    for delay in (0, 0.0001, 0.001):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await settle(asyncio.ensure_future(loop.sock_connect(sock, ("127.0.0.1", ports["stream"]))))
        finally:
            sock.close()
        task = asyncio.ensure_future(asyncio.open_connection(
            "127.0.0.1", ports["tls"], ssl=client_tls_context()))
        await asyncio.sleep(delay)
        opened = await settle(task)
        if opened is not None:
            opened[1].close()
            await opened[1].wait_closed()


async def _others_cancelled(loop):
    await settle(loop.create_task(asyncio.sleep(3600)))
    await settle(asyncio.ensure_future(loop.run_in_executor(None, time.sleep, 0.01)))
    await settle(asyncio.ensure_future(loop.getaddrinfo("localhost", 80)))
    handle = loop.call_later(3600, print)
    handle.cancel()


async def cancel(ports, rounds=20, **_):
    loop = asyncio.get_running_loop()
    seq = random.randrange(1 << 40)
    return {"recv_races_completed": await _recv_race(loop, rounds),
            "accept_races_completed": await _accept_race(loop, rounds),
            "sendall_bytes_before_cancel": await _sendall_cancelled(loop),
            "stream_read": await _stream_read_cancelled(ports, seq) or "ok",
            "connects": await _connects_cancelled(loop, ports) or "ok",
            "others": await _others_cancelled(loop) or "ok"}


# ---------------------------------------------------------------- loop_close

def _socket_targets(sockets):
    return {os.readlink(f"/proc/self/fd/{s.fileno()}") for s in sockets}


def _open_targets():
    """What this process's fds point to, one entry per fd."""
    targets = []
    for name in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            pass
    return targets


async def _open_everything(loop, ports):
    """Servers, connections, pending operations; returns the sockets involved."""
    async def stall(reader, writer):
        await reader.read()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    own = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    plain = await asyncio.open_connection("127.0.0.1", ports["stream"])
    tls = await asyncio.open_connection("127.0.0.1", ports["tls"], ssl=client_tls_context())
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                 remote_addr=("127.0.0.1", ports["udp"]))
    for reader, writer in (own, plain, tls):
        loop.create_task(reader.read())
        writer.write(frames.frame(0xC105E, 0, random.randbytes(70_000))[:50_000])
    udp.sendto(b"x" * 100)
    pair = socket.socketpair()
    for s in pair:
        s.setblocking(False)
    loop.create_task(loop.sock_recv(pair[0], 100))
    loop.call_later(3600, print)
    await asyncio.sleep(0.05)
    sockets = [*server.sockets, udp.get_extra_info("socket")]
    sockets += [w.get_extra_info("socket") for _, w in (own, plain, tls)]
    return _socket_targets(sockets), pair


def _close_with_everything_open(backend, ports, result):
    try:
        loop = ringloop.new_event_loop(backend=backend)
        loop.set_exception_handler(lambda lp, ctx: result.setdefault("handler", []).append(
            ctx.get("message")))
        targets, pair = loop.run_until_complete(_open_everything(loop, ports))
        for s in pair:
            s.close()
        rings_before = _open_targets().count("anon_inode:[io_uring]")
        loop.close()
        rings_after = _open_targets().count("anon_inode:[io_uring]")
        result["ring_closed"] = rings_after == rings_before - (backend == "io_uring")
        del loop
        gc.collect()
        result["still_open"] = sorted(targets.intersection(_open_targets()))
    except BaseException as exc:  # reported, not raised: this is a thread
        result["error"] = repr(exc)


async def loop_close(backend, ports, **_):
    result = {}
    thread = threading.Thread(target=_close_with_everything_open,
                              args=(backend, ports, result), daemon=True)
    thread.start()
    deadline = time.monotonic() + 2 * STEP_TIMEOUT
    while thread.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    expect(not thread.is_alive(), "setting up or closing the second loop hung")
    expect("error" not in result, f"the second loop failed: {result.get('error')}")
    expect(result["ring_closed"], "loop.close() left its io_uring open")
    expect(not result["still_open"],
           f"sockets still open after close() and gc: {result['still_open']}")
    return {"handler_messages": sorted(set(result.get("handler", [])))}


# ---------------------------------------------------------------- fork

async def _child_main(ports):
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["stream"])
    await round_trip(reader, writer, 0xF0F0, 0, 5000)
    writer.close()
    await writer.wait_closed()
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["tls"],
                                                   ssl=client_tls_context())
    await round_trip(reader, writer, 0xF0F1, 0, 5000)
    writer.close()
    await writer.wait_closed()


def _child(backend, ports):
    try:
        # The parent's loop was running in this thread when it forked; the child's
        # own loop needs the slot (Python 3.12+ clears it at fork by itself).
        asyncio.events._set_running_loop(None)
        ringloop.run(asyncio.wait_for(_child_main(ports), STEP_TIMEOUT), backend=backend)
        code = 0
    except BaseException as exc:
        print(f"soak fork child: {exc!r}", file=sys.stderr, flush=True)
        code = 1
    os._exit(code)


async def fork(backend, ports, **_):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: wanted here
        pid = os.fork()
    if pid == 0:
        _child(backend, ports)
    deadline = time.monotonic() + 2 * STEP_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            expect(code == 0, f"the forked child failed (exit {code})")
            return {"child": "ok"}
        await asyncio.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise ChaosFailed("the forked child hung")


STEPS = {"cancel": cancel, "loop_close": loop_close, "fork": fork}
