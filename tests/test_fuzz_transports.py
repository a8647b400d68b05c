"""Fuzzing the input paths of the socket transports against asyncio's.

Each example is a script -- what a plain-socket peer sends and in which pieces, how
many loop iterations pass between pieces, when the loop's side pauses and resumes
reading, what it writes back, and how the peer ends (a FIN, or a reset) -- played
once on the loop under test and once on asyncio's own loop. What the protocol saw
(its callbacks in order, the bytes, the exception given to connection_lost) and
what reached the peer must be the same on both. UDP: a burst of datagrams of any
size, interleaved with replies; every datagram must arrive whole, in order, once,
on both loops.
"""
import asyncio
import os
import random
import socket
import struct
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytestmark = pytest.mark.ringloop_only("compares ringloop's behaviour with asyncio's")

# RINGLOOP_FUZZ_EXAMPLES: more examples, for a longer campaign than the suite\'s.
FUZZ = settings(max_examples=int(os.environ.get("RINGLOOP_FUZZ_EXAMPLES", 40)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
TIMEOUT = 10.0


def big(n_kib):
    """n KiB of bytes no two runs of which are alike."""
    return random.Random(n_kib).randbytes(n_kib * 1024)


peer_ops = st.one_of(
    st.tuples(st.just("send"), st.binary(min_size=1, max_size=3000)),
    st.tuples(st.just("send"), st.integers(1, 256).map(big)),
    st.tuples(st.just("yield"), st.integers(0, 3)),
    st.tuples(st.just("pause"), st.none()),
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("write"), st.binary(min_size=1, max_size=3000)),
    st.tuples(st.just("write"), st.integers(1, 256).map(big)),
)
stream_scripts = st.tuples(st.lists(peer_ops, max_size=25), st.sampled_from(["eof", "reset"]))


class Recorder(asyncio.Protocol):
    """Records callbacks; consecutive data_received calls count as one event (how
    bytes are split between calls is not part of the contract)."""

    def __init__(self):
        self.events, self.data = [], bytearray()
        self.done = asyncio.get_running_loop().create_future()

    def _event(self, name):
        if not self.events or self.events[-1] != name or name != "data":
            self.events.append(name)

    def connection_made(self, transport):
        self._event("made")

    def data_received(self, data):
        self._event("data")
        self.data += data

    def eof_received(self):
        self._event("eof")

    def connection_lost(self, exc):
        self._event(f"lost:{type(exc).__name__ if exc else None}")
        self.done.set_result(None)


class Peer:
    """The far end: a blocking TCP socket, written and read by threads in order."""

    def __init__(self, sock):
        self.sock, self.received = sock, bytearray()
        self.sends = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            while chunk := self.sock.recv(1 << 16):
                self.received += chunk
        except OSError:
            pass

    def send(self, data):
        # One thread per send, each waiting for the one before: order kept, loop free.
        before = self.sends[-1] if self.sends else None

        def run():
            if before is not None:
                before.join()
            self.sock.sendall(data)

        self.sends.append(threading.Thread(target=run, daemon=True))
        self.sends[-1].start()

    def end(self, how):
        for t in self.sends:
            t.join(TIMEOUT)
        if how == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The reader thread's recv() holds the socket: the RST would wait for it.
            # SHUT_RD wakes that recv without sending anything.
            self.sock.shutdown(socket.SHUT_RD)
            self.reader.join(TIMEOUT)
            self.sock.close()
        else:
            self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.reader.join(TIMEOUT)
        self.sock.close()


async def play_stream(ops, ending):
    loop = asyncio.get_running_loop()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = Peer(socket.create_connection(listener.getsockname()))
        conn, _ = listener.accept()
    rec = Recorder()
    transport, _ = await loop.connect_accepted_socket(lambda: rec, conn)
    sent, written = bytearray(), bytearray()
    try:
        for op, arg in ops:
            if op == "send":
                peer.send(arg)
                sent += arg
            elif op == "yield":
                for _ in range(arg):
                    await asyncio.sleep(0)
            elif op == "pause":
                transport.pause_reading()
            elif op == "resume":
                transport.resume_reading()
            else:
                transport.write(arg)
                written += arg
        transport.resume_reading()
        await loop.run_in_executor(None, peer.end, ending)
        await asyncio.wait_for(asyncio.shield(rec.done), TIMEOUT)
    finally:
        transport.close()
        await loop.run_in_executor(None, peer.close)
    return rec, bytes(sent), bytes(written), bytes(peer.received)


def run_on(loop, coro):
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, 4 * TIMEOUT))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@FUZZ
@given(script=stream_scripts)
def test_stream_input_as_asyncio(loop_factory, script):
    ops, ending = script
    ours, sent, written, peer_got = run_on(loop_factory(), play_stream(ops, ending))
    theirs, _, _, their_peer_got = run_on(asyncio.new_event_loop(), play_stream(ops, ending))
    if ending == "eof":
        # Everything the peer sent arrives, then EOF; the loop's writes reach the peer.
        assert ours.events == theirs.events
        assert bytes(ours.data) == sent == bytes(theirs.data)
        assert peer_got == written == their_peer_got
    else:
        # A reset may discard what was still unread, on either loop: what did arrive
        # is a prefix of what was sent, and the end is the same.
        assert bytes(ours.data) == sent[:len(ours.data)]
        assert ours.events[0] == theirs.events[0] == "made"
        assert ours.events[-1] == theirs.events[-1]


# ---------------------------------------------------------------- datagrams

datagram_scripts = st.lists(st.one_of(
    st.tuples(st.just("send"), st.binary(max_size=2000)),
    st.tuples(st.just("send"), st.integers(2, 63).map(lambda k: big(k)[:k * 1024 - 1])),
    # (an empty reply is left out: asyncio on Python 3.11 sends nothing for it)
    st.tuples(st.just("reply"), st.binary(min_size=1, max_size=2000)),
    st.tuples(st.just("yield"), st.integers(0, 2)),
), max_size=30)


class DatagramRecorder(asyncio.DatagramProtocol):
    def __init__(self):
        self.received, self.errors = [], []

    def datagram_received(self, data, addr):
        self.received.append(data)

    def error_received(self, exc):
        self.errors.append(type(exc).__name__)


async def play_datagrams(ops):
    loop = asyncio.get_running_loop()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    peer.bind(("127.0.0.1", 0))
    transport, rec = await loop.create_datagram_endpoint(
        DatagramRecorder, local_addr=("127.0.0.1", 0), remote_addr=peer.getsockname())
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    addr = transport.get_extra_info("sockname")
    sent, replies = [], []
    try:
        for op, arg in ops:
            if op == "send":
                peer.sendto(arg, addr)
                sent.append(arg)
            elif op == "reply":
                transport.sendto(arg)
                replies.append(arg)
            else:
                for _ in range(arg):
                    await asyncio.sleep(0)
        deadline = loop.time() + TIMEOUT
        while len(rec.received) < len(sent) and loop.time() < deadline:
            await asyncio.sleep(0.005)
        peer.settimeout(TIMEOUT)
        got_replies = [peer.recv(1 << 16) for _ in replies]
    finally:
        transport.close()
        peer.close()
    return rec, sent, replies, got_replies


@FUZZ
@given(ops=datagram_scripts)
def test_datagram_input_as_asyncio(loop_factory, ops):
    ours, sent, replies, got_replies = run_on(loop_factory(), play_datagrams(ops))
    theirs, _, _, their_replies = run_on(asyncio.new_event_loop(), play_datagrams(ops))
    assert ours.received == sent == theirs.received
    assert got_replies == replies == their_replies
    assert ours.errors == theirs.errors == []
