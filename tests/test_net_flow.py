"""Write flow control (pause_writing/resume_writing), a large checksummed
transfer through a slow reader, and many concurrent connections."""
import asyncio
import hashlib
import os

import pytest

from netutil import (Echo, Factory, Proto, pattern, settle, shutdown,
                     until)

HIGH = 256 * 1024
LOW = 64 * 1024
CHUNK = 16 * 1024


class FlowProto(Proto):
    """Records the transport's buffer size at each pause/resume call."""

    def __init__(self, loop, **kw):
        super().__init__(loop, **kw)
        self.sizes = []

    def pause_writing(self):
        super().pause_writing()
        self.sizes.append(("pause", self.transport.get_write_buffer_size()))

    def resume_writing(self):
        super().resume_writing()
        self.sizes.append(("resume", self.transport.get_write_buffer_size()))


class Producer(FlowProto):
    """can_write: an Event cleared by pause_writing, set by resume_writing."""

    def __init__(self, loop):
        super().__init__(loop)
        self.can_write = asyncio.Event()
        self.can_write.set()

    def pause_writing(self):
        super().pause_writing()
        self.can_write.clear()

    def resume_writing(self):
        super().resume_writing()
        self.can_write.set()


@pytest.mark.timeout(30)
def test_pause_and_resume_writing(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(lambda: FlowProto(loop), small_buffers=True)
        tr.set_write_buffer_limits(high=HIGH, low=LOW)
        sent = bytearray()
        i = 0
        # the peer does not read: writes keep buffering; pause_writing comes
        # from the write that takes the buffer above the high-water mark
        while not p.paused:
            assert tr.get_write_buffer_size() <= HIGH
            chunk = pattern(CHUNK, seed=i)
            i += 1
            tr.write(chunk)
            sent += chunk
            assert p.paused == (tr.get_write_buffer_size() > HIGH)
            assert len(sent) < 64 * 1024 * 1024, "pause_writing never came"
        assert p.calls["pause_writing"] == 1
        # writing on while paused is allowed: it just buffers more
        size = tr.get_write_buffer_size()
        for _ in range(20):
            chunk = pattern(CHUNK, seed=i)
            i += 1
            tr.write(chunk)
            sent += chunk
        assert tr.get_write_buffer_size() == size + 20 * CHUNK
        await settle()
        assert p.calls["pause_writing"] == 1
        assert p.calls["resume_writing"] == 0
        assert p.paused
        # the peer reads: the buffer drains, resume_writing once at <= low
        peer.start_reader()
        await until(lambda: not p.paused, timeout=15, what="resume_writing")
        assert p.calls["resume_writing"] == 1
        kind, at = p.sizes[-1]
        assert kind == "resume" and at <= LOW
        assert p.sizes[0][0] == "pause" and p.sizes[0][1] > HIGH
        await until(lambda: tr.get_write_buffer_size() == 0, timeout=15)
        tr.close()
        assert await peer.wait_done() == bytes(sent)  # nothing lost or doubled
        await p.lost
        p.check()
        assert p.calls["pause_writing"] == 1 and p.calls["resume_writing"] == 1
    run(main(), timeout=25)


@pytest.mark.timeout(20)
def test_lowering_limits_pauses(loop, run, tcp_pair):
    """set_write_buffer_limits() below the current buffer size calls
    pause_writing at once."""
    async def main():
        tr, p, peer = await tcp_pair(lambda: FlowProto(loop), small_buffers=True)
        tr.set_write_buffer_limits(high=64 * 1024 * 1024)
        data = pattern(4 * 1024 * 1024)
        tr.write(data)
        size = tr.get_write_buffer_size()
        assert size > 1024
        assert not p.paused
        tr.set_write_buffer_limits(high=size // 2)
        assert p.paused
        assert p.calls["pause_writing"] == 1
        peer.start_reader()
        await until(lambda: not p.paused, timeout=15)
        tr.close()
        assert await peer.wait_done() == data
        await p.lost
        p.check()
    run(main(), timeout=15)


@pytest.mark.timeout(20)
def test_zero_limits_pause_on_any_buffering(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(lambda: FlowProto(loop), small_buffers=True)
        tr.set_write_buffer_limits(high=0)
        data = pattern(2 * 1024 * 1024)
        tr.write(data)
        # something must be buffered (the kernel takes < 1 MiB here)
        assert tr.get_write_buffer_size() > 0
        assert p.paused
        peer.start_reader()
        await until(lambda: not p.paused, timeout=15)
        assert tr.get_write_buffer_size() == 0  # resume only at <= low == 0
        tr.close()
        assert await peer.wait_done() == data
        await p.lost
        p.check()
    run(main(), timeout=15)


@pytest.mark.timeout(40)
def test_producer_driven_by_flow_control(loop, run, tcp_pair):
    """A producer that writes while not paused and waits for resume_writing
    otherwise; a slow peer; many pause/resume cycles, strictly alternating;
    every byte arrives once, in order."""
    async def main():
        tr, p, peer = await tcp_pair(lambda: Producer(loop), small_buffers=True)
        tr.set_write_buffer_limits(high=128 * 1024, low=32 * 1024)
        peer.start_reader(chunk=32 * 1024, delay=0.0005)
        total = 12 * 1024 * 1024
        data = pattern(total)
        pos = 0
        while pos < total:
            await p.can_write.wait()
            tr.write(data[pos:pos + CHUNK])
            pos += CHUNK
        tr.close()
        assert await peer.wait_done(timeout=30) == data
        await p.lost
        p.check()
        assert p.calls["pause_writing"] >= 2
        assert p.calls["resume_writing"] in (p.calls["pause_writing"],
                                            p.calls["pause_writing"] - 1)
        kinds = [k for k, _ in p.sizes]
        assert kinds == ["pause", "resume"] * (len(kinds) // 2) + \
            ["pause"] * (len(kinds) % 2)
    run(main(), timeout=35)


# ---------------------------------------------------------------- 100 MB

class HashingReceiver(asyncio.Protocol):
    """Slow reader: pauses reading every few chunks for a moment."""

    def __init__(self, loop):
        self.loop = loop
        self.hash = hashlib.sha256()
        self.nbytes = 0
        self.chunks = 0
        self.pauses = 0
        self.done = loop.create_future()
        self.calls = []

    def connection_made(self, transport):
        self.calls.append("made")
        self.transport = transport

    def data_received(self, data):
        self.hash.update(data)
        self.nbytes += len(data)
        self.chunks += 1
        if self.chunks % 16 == 0:
            self.pauses += 1
            self.transport.pause_reading()
            self.loop.call_later(0.005, self.transport.resume_reading)

    def eof_received(self):
        self.calls.append("eof")
        self.transport.write(self.hash.hexdigest().encode())
        return None  # close after sending the digest

    def connection_lost(self, exc):
        self.calls.append("lost")
        if not self.done.done():
            self.done.set_result(exc)


@pytest.mark.timeout(150)
def test_100mb_through_slow_reader(loop, run):
    total = 100 * 1024 * 1024
    block = os.urandom(1024 * 1024)

    async def main():
        f = Factory(loop, HashingReceiver)
        server = await loop.create_server(f, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, p = await loop.create_connection(lambda: Producer(loop),
                                             "127.0.0.1", port)
        h = hashlib.sha256()
        sent = 0
        i = 0
        while sent < total:
            chunk = i.to_bytes(8, "little") + block[8:]
            i += 1
            await p.can_write.wait()
            tr.write(chunk)
            h.update(chunk)
            sent += len(chunk)
        tr.write_eof()
        digest = await p.wait_bytes(64)
        await p.lost  # the server closed after the digest
        assert len(f.protos) == 1
        rp = f.protos[0]
        assert await rp.done is None
        assert rp.nbytes == total
        assert digest.decode() == h.hexdigest()
        assert rp.pauses > 0
        assert rp.calls == ["made", "eof", "lost"]
        p.check(eof=True)
        assert p.calls["pause_writing"] >= 1
        await shutdown(server)
    run(main(), timeout=140)


# ---------------------------------------------------------------- many connections

@pytest.mark.timeout(90)
def test_1000_concurrent_connections(loop, run):
    n = 1000

    async def client(port, i):
        tr, p = await loop.create_connection(lambda: Proto(loop), "127.0.0.1", port)
        return tr, p

    async def main():
        f = Factory(loop, Echo)
        server = await loop.create_server(f, "127.0.0.1", 0, backlog=2048)
        port = server.sockets[0].getsockname()[1]
        conns = await asyncio.gather(*(client(port, i) for i in range(n)))
        assert len({tr.get_extra_info("sockname") for tr, _ in conns}) == n
        # all connected at once: now every client does its echo exchange
        payloads = [f"client {i} ".encode() * (1 + i % 50) for i in range(n)]
        for (tr, p), data in zip(conns, payloads):
            tr.write(data)
        got = await asyncio.gather(*(p.wait_bytes(len(data))
                                     for (tr, p), data in zip(conns, payloads)))
        assert got == payloads
        await until(lambda: len(f.protos) == n)
        assert sorted(bytes(sp.data) for sp in f.protos) == sorted(payloads)
        for tr, p in conns:
            tr.close()
        for tr, p in conns:
            assert await p.lost is None
            p.check()
        for sp in f.protos:
            await sp.lost  # the client's EOF closed it
            sp.check(eof=True)
        await shutdown(server, f)
    run(main(), timeout=80)
