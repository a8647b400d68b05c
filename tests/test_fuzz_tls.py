"""Fuzzing the TLS layer's input path against asyncio's.

A TLS server runs on the loop under test and, for the same input, on asyncio's
own loop. Its client is a plain socket in a thread driving TLS through memory
BIOs, so the test decides how the ciphertext is cut: every write of the
handshake and of the records goes out in pieces of fuzzed sizes. The server's
protocol must see the same callbacks and the same plaintext on both loops, and
the client must get the same bytes back. Garbage instead of a handshake (random
bytes, or random bytes behind a plausible record header) must end the same way
on both loops: no application callback, the same bytes (an alert, or nothing)
back, the same calls of the exception handler.
"""
import asyncio
import os
import itertools
import socket
import ssl
import struct
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_fuzz_transports import Recorder
from test_tls import _make_pki

pytestmark = pytest.mark.ringloop_only("compares ringloop's behaviour with asyncio's")

# RINGLOOP_FUZZ_EXAMPLES: more examples, for a longer campaign than the suite\'s.
FUZZ = settings(max_examples=int(os.environ.get("RINGLOOP_FUZZ_EXAMPLES", 30)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return _make_pki(str(tmp_path_factory.mktemp("pki")))


def send_in_pieces(sock, data, sizes):
    at = 0
    while at < len(data):
        n = next(sizes)
        sock.sendall(data[at:at + n])
        at += n


def read_to_end(sock):
    got = bytearray()
    try:
        while chunk := sock.recv(1 << 16):
            got += chunk
    except ConnectionResetError:
        got += b"<reset>"
    return bytes(got)


def tls_client(sock, ctx, sizes, pieces, ending):
    """Handshake, send the pieces, end; returns the plaintext the server sent back."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    sizes = itertools.cycle(sizes)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            send_in_pieces(sock, outgoing.read(), sizes)
            data = sock.recv(1 << 16)
            assert data, "the server closed during the handshake"
            incoming.write(data)
    send_in_pieces(sock, outgoing.read(), sizes)
    for piece in pieces:
        tls.write(piece)
        send_in_pieces(sock, outgoing.read(), sizes)
    if ending == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return b""
    if ending == "close_notify":
        try:
            tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        send_in_pieces(sock, outgoing.read(), sizes)
    sock.shutdown(socket.SHUT_WR)
    return tls_read_to_end(sock, tls, incoming)


def tls_read_to_end(sock, tls, incoming):
    """The plaintext the server sent, and how its side ended (close_notify or not)."""
    got = bytearray()
    while True:
        try:
            data = sock.recv(1 << 16)
        except ConnectionResetError:
            return bytes(got), "reset"
        if not data:
            return bytes(got), "EOF without close_notify"
        incoming.write(data)
        try:
            while chunk := tls.read(1 << 16):
                got += chunk
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            return bytes(got), "close_notify"


async def serve_one(ctx, client, *args):
    """A TLS server on the running loop; one client in a thread; (its Recorder, the
    client's result, the exception handler's messages)."""
    loop = asyncio.get_running_loop()
    handler = []
    loop.set_exception_handler(lambda lp, context: handler.append(context.get("message")))
    recorder = Recorder()
    server = await loop.create_server(lambda: recorder, "127.0.0.1", 0, ssl=ctx)
    result = {}

    def run():
        with socket.create_connection(server.sockets[0].getsockname(), timeout=TIMEOUT) as s:
            result["value"] = client(s, *args)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            await asyncio.sleep(0.005)
        if recorder.events:  # the handshake completed: wait for the end of the connection
            await asyncio.wait_for(asyncio.shield(recorder.done), TIMEOUT)
        else:
            await asyncio.sleep(0.05)
    finally:
        server.close()
        await server.wait_closed()
    return recorder, result.get("value"), handler


def run_on(loop, coro):
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, 4 * TIMEOUT))
    finally:
        loop.close()


def client_context(pki, version):
    ctx = pki.client_context()
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


tls_scripts = st.tuples(
    st.lists(st.integers(1, 700), min_size=1, max_size=8),         # sizes of the pieces sent
    st.lists(st.binary(min_size=1, max_size=20000), max_size=6),   # plaintext, by write
    st.sampled_from(["close_notify", "fin", "reset"]),
    st.sampled_from([ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2]),
)


@FUZZ
@given(script=tls_scripts)
def test_tls_records_in_any_pieces_as_asyncio(loop_factory, pki, script):
    sizes, pieces, ending, version = script
    args = (client_context(pki, version), sizes, pieces, ending)
    ours = run_on(loop_factory(), serve_one(pki.server_context(), tls_client, *args))
    theirs = run_on(asyncio.new_event_loop(), serve_one(pki.server_context(), tls_client, *args))
    our_data, our_events = bytes(ours[0].data), ours[0].events
    their_data, their_events = bytes(theirs[0].data), theirs[0].events
    if ending == "reset":
        # What was still unread may go with the reset, on either loop; the handshake
        # too, when the reset overtakes the client's Finished.
        assert our_data == b"".join(pieces)[:len(our_data)]
        if our_events:
            assert our_events[0] == "made"
            assert our_events[-1].startswith("lost:")
    else:
        assert our_data == b"".join(pieces) == their_data
        assert our_events == their_events
        assert ours[1] == theirs[1]
    assert ours[2] == theirs[2]


def garbage_client(sock, sizes, garbage):
    send_in_pieces(sock, garbage, itertools.cycle(sizes))
    sock.shutdown(socket.SHUT_WR)
    return read_to_end(sock)


garbage = st.one_of(
    st.binary(min_size=1, max_size=3000),
    # a handshake record header announcing what follows, then anything
    st.binary(min_size=0, max_size=3000).map(
        lambda b: b"\x16\x03\x01" + len(b).to_bytes(2, "big") + b),
)


@FUZZ
@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8), data=garbage)
def test_tls_garbage_handshake_as_asyncio(loop_factory, pki, sizes, data):
    ours = run_on(loop_factory(), serve_one(pki.server_context(), garbage_client, sizes, data))
    theirs = run_on(asyncio.new_event_loop(),
                    serve_one(pki.server_context(), garbage_client, sizes, data))
    assert ours[0].events == theirs[0].events == []  # never a connection for the application
    assert ours[1] == theirs[1]        # the same alert back, or nothing
    assert ours[2] == theirs[2]
