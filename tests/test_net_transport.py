"""Stream (TCP) transports: the asyncio.Transport API and the protocol
callback contract."""
import asyncio
import socket

import pytest

from netutil import (BufProto, Factory, Proto, collect_exceptions, pattern,
                     settle, shutdown, tcp_nodelay, until)

pytestmark = pytest.mark.timeout(20)

BIG = 4 * 1024 * 1024  # far more than the kernel buffers with small_buffers


def test_isinstance_transport(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        assert isinstance(tr, asyncio.Transport)
        assert isinstance(tr, asyncio.ReadTransport)
        assert isinstance(tr, asyncio.WriteTransport)
        assert isinstance(tr, asyncio.BaseTransport)
        assert isinstance(repr(tr), str)
        await p.close_and_wait()
        assert isinstance(repr(tr), str)
    run(main())


def test_paused_and_closing_attributes_read_like_asyncio(loop, run, tcp_pair):
    # asyncio's socket transports have _paused and _closing attributes that code
    # outside them reads (uvloop's test_transport_get_extra_info); read-only here.
    async def main():
        tr, p, peer = await tcp_pair()
        assert tr._paused is False and tr._closing is False
        tr.pause_reading()
        assert tr._paused is True
        tr.resume_reading()
        assert tr._paused is False
        tr.abort()
        assert tr._closing is True
        await p.lost
    run(main())


def test_write_bytes_like(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.write(b"bytes|")
        tr.write(bytearray(b"bytearray|"))
        tr.write(memoryview(b"memoryview|"))
        tr.write(memoryview(b"xxsliced|xx")[2:-2])
        tr.write(b"")  # no-op
        want = b"bytes|bytearray|memoryview|sliced|"
        assert await peer.arecv(len(want)) == want
        await p.close_and_wait()
        assert await peer.arecv_eof() == b""
        p.check()
    run(main())


@pytest.mark.parametrize("bad", ["text", 42, None, [b"x"]],
                         ids=["str", "int", "None", "list"])
def test_write_non_bytes_is_typeerror(loop, run, tcp_pair, bad):
    async def main():
        tr, p, peer = await tcp_pair()
        with pytest.raises(TypeError):
            tr.write(bad)
        # the transport is still fine
        assert not tr.is_closing()
        tr.write(b"ok")
        assert await peer.arecv(2) == b"ok"
        await p.close_and_wait()
    run(main())


def test_writelines(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.writelines([b"a", bytearray(b"bc"), memoryview(b"def"), b""])
        tr.writelines([])
        tr.writelines((b"g", b"h"))
        assert await peer.arecv(8) == b"abcdefgh"
        await p.close_and_wait()
    run(main())


def test_writelines_str_is_typeerror(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        with pytest.raises(TypeError):
            tr.writelines(["text"])
        await p.close_and_wait()
    run(main())


def test_write_order_preserved_when_buffering(loop, run, tcp_pair):
    """Many writes, some buffered: the peer gets them in order."""
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        data = pattern(2 * 1024 * 1024)
        peer.start_reader()
        for i in range(0, len(data), 7919):
            tr.write(data[i:i + 7919])
        tr.close()
        assert await peer.wait_done() == data
        assert await p.lost is None
        p.check()
    run(main())


# ---------------------------------------------------------------- write_eof

def test_write_eof_half_close(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        assert tr.can_write_eof() is True
        tr.write(b"request")
        tr.write_eof()
        tr.write_eof()  # again: a no-op
        assert await peer.arecv_eof() == b"request"
        assert not tr.is_closing()
        # the other direction still works
        peer.sock.sendall(b"response")
        assert await p.wait_bytes(8) == b"response"
        peer.sock.shutdown(socket.SHUT_WR)
        await p.eof
        # eof_received returned None: the transport closes itself
        assert await p.lost is None
        p.check(eof=True)
        assert bytes(p.data) == b"response"
    run(main())


def test_write_after_write_eof_is_runtimeerror(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.write_eof()
        with pytest.raises(RuntimeError):
            tr.write(b"late")
        with pytest.raises(RuntimeError):
            tr.writelines([b"late"])
        await p.close_and_wait()
        assert await peer.arecv_eof() == b""
    run(main())


def test_write_eof_flushes_buffer_first(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        data = pattern(BIG)
        tr.write(data)
        assert tr.get_write_buffer_size() > 0
        tr.write_eof()
        assert not tr.is_closing()
        peer.start_reader()
        assert await peer.wait_done() == data
        assert peer.eof
        await until(lambda: tr.get_write_buffer_size() == 0)
        await p.close_and_wait()
    run(main())


# ---------------------------------------------------------------- close / abort

def test_close_flushes_then_connection_lost(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        data = pattern(BIG)
        tr.write(data)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        assert tr.is_closing()
        tr.close()  # again: a no-op
        await settle()
        # the buffer is not flushed (the peer does not read): not lost yet
        assert p.calls["lost"] == 0
        assert not tr.is_reading()
        peer.start_reader()
        assert await peer.wait_done() == data
        assert peer.eof
        assert await p.lost is None
        await settle()
        p.check()
    run(main())


def test_close_idle_calls_connection_lost_soon(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.close()
        # connection_lost is called soon, not synchronously
        assert p.calls["lost"] == 0
        assert await p.lost is None
        assert await peer.arecv_eof() == b""
        p.check()
    run(main())


def test_abort_discards_buffer(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        data = pattern(BIG)
        tr.write(data)
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert p.calls["lost"] == 0  # called soon, not synchronously
        assert await p.lost is None
        assert tr.get_write_buffer_size() == 0
        peer.start_reader()
        got = await peer.wait_done()
        assert len(got) < len(data)
        assert data.startswith(got)
        await settle()
        p.check()
    run(main())


def test_abort_after_close_single_connection_lost(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        tr.write(pattern(BIG))
        tr.close()
        await settle()
        assert p.calls["lost"] == 0
        tr.abort()
        assert await p.lost is None
        tr.abort()
        tr.close()
        await settle()
        p.check()
    run(main())


def test_write_after_close_is_ignored(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.write(b"before")
        tr.close()
        await p.lost
        for _ in range(10):  # asyncio logs a warning after a few; no raise
            tr.write(b"after")
        tr.writelines([])
        assert await peer.arecv_eof() == b"before"
        p.check()
    run(main())


def test_write_after_close_warns_after_a_few(loop, run, tcp_pair, caplog):
    """Writes to a closed transport are dropped silently at first; after a
    few (asyncio: LOG_THRESHOLD_FOR_CONNLOST_WRITES) a warning is logged on
    the "asyncio" logger (not raised)."""
    async def main():
        tr, p, peer = await tcp_pair()
        tr.close()
        await p.lost
        with caplog.at_level("WARNING", logger="asyncio"):
            tr.write(b"1")
            assert not [r for r in caplog.records if r.name == "asyncio"]
            for _ in range(10):
                tr.write(b"more")
        warnings = [r for r in caplog.records
                    if r.name == "asyncio" and r.levelname == "WARNING"]
        assert warnings
    run(main())


def test_write_after_close_while_flushing_is_sent(loop, run, tcp_pair):
    """asyncio quirk: close() with data still buffered does not stop later
    write()s from being queued behind it (they are sent before the FIN);
    only once the connection is lost are writes dropped."""
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        data = pattern(BIG)
        tr.write(data)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        tr.write(b"TAIL")
        peer.start_reader()
        assert await peer.wait_done() == data + b"TAIL"
        assert await p.lost is None
        p.check()
    run(main())


def test_close_from_data_received(loop, run, tcp_pair):
    class CloseOnData(Proto):
        def data_received(self, data):
            super().data_received(data)
            self.transport.close()

    async def main():
        tr, p, peer = await tcp_pair(lambda: CloseOnData(loop))
        peer.sock.sendall(b"x" * 100)
        await p.lost
        peer.sock.sendall(b"y" * 100)
        await settle()
        assert p.calls["data"] == 1
        p.check()
    run(main())


# ---------------------------------------------------------------- reading

def test_pause_resume_reading(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        tr.pause_reading()  # again: a no-op
        assert not tr.is_reading()
        peer.sock.sendall(b"while paused")
        await settle()
        assert p.calls["data"] == 0
        tr.resume_reading()
        assert tr.is_reading()
        tr.resume_reading()  # again: a no-op
        assert await p.wait_bytes(12) == b"while paused"
        peer.sock.sendall(b"+more")
        assert await p.wait_bytes(17) == b"while paused+more"
        await p.close_and_wait()
        assert not tr.is_reading()
        p.check()
    run(main())


def test_pause_reading_in_connection_made(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(lambda: Proto(loop, pause_in_made=True))
        assert not tr.is_reading()
        peer.sock.sendall(b"early")
        await settle()
        assert p.calls["data"] == 0
        tr.resume_reading()
        assert await p.wait_bytes(5) == b"early"
        await p.close_and_wait()
    run(main())


def test_eof_held_while_paused(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.pause_reading()
        peer.sock.sendall(b"last words")
        peer.sock.shutdown(socket.SHUT_WR)
        await settle()
        assert p.calls["data"] == 0 and p.calls["eof"] == 0
        tr.resume_reading()
        await p.eof
        assert bytes(p.data) == b"last words"
        await p.lost
        p.check(eof=True)
    run(main())


def test_pause_reading_no_data_lost(loop, run, tcp_pair):
    """A reader that pauses after every chunk and resumes later still gets
    every byte exactly once."""
    class Pauser(Proto):
        def data_received(self, data):
            super().data_received(data)
            self.transport.pause_reading()
            self.loop.call_later(0.001, self.transport.resume_reading)

    async def main():
        tr, p, peer = await tcp_pair(lambda: Pauser(loop))
        data = pattern(1024 * 1024)
        peer.sock.sendall(data)
        peer.sock.shutdown(socket.SHUT_WR)
        await p.eof
        assert bytes(p.data) == data
        await p.lost
        p.check(eof=True)
    run(main())


def test_data_received_gets_bytes(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        peer.sock.sendall(b"abc")
        await p.wait_bytes(3)
        assert p.violations == []  # bytes (not bytearray/memoryview), non-empty
        await p.close_and_wait()
    run(main())


def test_pause_resume_reading_after_close_are_noops(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        tr.close()
        assert not tr.is_reading()
        tr.pause_reading()
        tr.resume_reading()
        assert not tr.is_reading()
        await p.lost
        tr.pause_reading()
        tr.resume_reading()
        assert not tr.is_reading()
        p.check()
    run(main())


# ---------------------------------------------------------------- eof_received

def test_eof_received_true_keeps_open(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(lambda: Proto(loop, eof_return=True))
        peer.sock.sendall(b"question")
        peer.sock.shutdown(socket.SHUT_WR)
        await p.eof
        await settle()
        assert not tr.is_closing()
        assert p.calls["lost"] == 0
        tr.write(b"answer")
        tr.close()
        assert await peer.arecv_eof() == b"answer"
        assert await p.lost is None
        p.check(eof=True)
    run(main())


@pytest.mark.parametrize("ret", [None, False, 0, ""], ids=repr)
def test_eof_received_falsy_closes(loop, run, tcp_pair, ret):
    async def main():
        tr, p, peer = await tcp_pair(lambda: Proto(loop, eof_return=ret))
        peer.sock.shutdown(socket.SHUT_WR)
        await p.eof
        assert await p.lost is None
        assert tr.is_closing()
        assert await peer.arecv_eof() == b""
        p.check(eof=True)
    run(main())


# ---------------------------------------------------------------- buffer limits

def test_write_buffer_limits(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        low, high = tr.get_write_buffer_limits()
        assert 0 <= low <= high
        tr.set_write_buffer_limits(high=1000, low=100)
        assert tr.get_write_buffer_limits() == (100, 1000)
        tr.set_write_buffer_limits(high=4000)
        assert tr.get_write_buffer_limits() == (1000, 4000)  # low = high // 4
        tr.set_write_buffer_limits(low=300)
        assert tr.get_write_buffer_limits() == (300, 1200)   # high = 4 * low
        tr.set_write_buffer_limits(high=0)
        assert tr.get_write_buffer_limits() == (0, 0)
        tr.set_write_buffer_limits(high=500, low=500)
        assert tr.get_write_buffer_limits() == (500, 500)
        tr.set_write_buffer_limits()
        assert tr.get_write_buffer_limits() == (low, high)   # the defaults
        await p.close_and_wait()
    run(main())


@pytest.mark.parametrize("high, low", [(10, 100), (100, -1), (-4, None)])
def test_write_buffer_limits_invalid(loop, run, tcp_pair, high, low):
    async def main():
        tr, p, peer = await tcp_pair()
        before = tr.get_write_buffer_limits()
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=high, low=low)
        assert tr.get_write_buffer_limits() == before
        await p.close_and_wait()
    run(main())


def test_write_buffer_size(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair(small_buffers=True)
        assert tr.get_write_buffer_size() == 0
        data = pattern(BIG)
        tr.write(data)
        size = tr.get_write_buffer_size()
        assert 0 < size <= len(data)
        tr.write(b"tail")
        assert tr.get_write_buffer_size() == size + 4
        peer.start_reader()
        await until(lambda: tr.get_write_buffer_size() == 0)
        await p.close_and_wait()
        assert await peer.wait_done() == data + b"tail"
    run(main())


# ---------------------------------------------------------------- extra info, protocol

def test_get_extra_info(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_STREAM
        assert sock.fileno() >= 0
        assert sock.getsockname() == tr.get_extra_info("sockname")
        assert sock.getpeername() == tr.get_extra_info("peername")
        assert tr.get_extra_info("sockname") == peer.sock.getpeername()
        assert tr.get_extra_info("peername") == peer.sock.getsockname()
        assert tr.get_extra_info("no such key") is None
        marker = object()
        assert tr.get_extra_info("no such key", marker) is marker
        assert tr.get_extra_info("peername", marker) == peer.sock.getsockname()
        await p.close_and_wait()
    run(main())


def test_tcp_nodelay_set(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        assert tcp_nodelay(tr) != 0
        await p.close_and_wait()
    run(main())


def test_get_set_protocol(loop, run, tcp_pair):
    async def main():
        tr, p1, peer = await tcp_pair()
        assert tr.get_protocol() is p1
        peer.sock.sendall(b"one")
        await p1.wait_bytes(3)
        p2 = Proto(loop)
        tr.set_protocol(p2)
        assert tr.get_protocol() is p2
        peer.sock.sendall(b"two")
        # set_protocol does not call connection_made on the new protocol;
        # record data directly
        await until(lambda: len(p2.data) == 3)
        assert bytes(p1.data) == b"one"
        tr.close()
        await p2.lost
        assert p1.calls["lost"] == 0
        assert p2.calls["made"] == 0
    run(main())


def test_set_protocol_to_buffered_protocol(loop, run, tcp_pair):
    """Switching to a BufferedProtocol switches the transport to
    get_buffer()/buffer_updated() reads."""
    async def main():
        tr, p1, peer = await tcp_pair()
        peer.sock.sendall(b"first")
        await p1.wait_bytes(5)
        bp = BufProto(loop, bufsize=64)
        tr.set_protocol(bp)
        peer.sock.sendall(b"second, buffered")
        await until(lambda: len(bp.data) == 16)
        assert bytes(bp.data) == b"second, buffered"
        assert bp.calls["get_buffer"] >= 1
        assert bytes(p1.data) == b"first"
        peer.sock.shutdown(socket.SHUT_WR)
        await bp.eof
        assert await bp.lost is None
        assert p1.calls["lost"] == 0
    run(main())


def test_write_in_connection_made(loop, run):
    """Both ends may write from connection_made; nothing is lost, even data
    that arrives before create_connection() returns."""
    class Greeter(Proto):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.write(b"hello from " + self.name)

    class ServerGreeter(Greeter):
        name = b"server"

    class ClientGreeter(Greeter):
        name = b"client"

    async def main():
        f = Factory(loop, ServerGreeter)
        server = await loop.create_server(f, "127.0.0.1", 0)
        tr, p = await loop.create_connection(lambda: ClientGreeter(loop),
                                             *server.sockets[0].getsockname())
        sp = await f.get(0)
        assert await p.wait_bytes(17) == b"hello from server"
        assert await sp.wait_bytes(17) == b"hello from client"
        tr.close()
        await p.lost
        await sp.lost
        p.check()
        sp.check(eof=True)
        await shutdown(server, f)
    run(main())


def test_server_protocol_closes_in_connection_made(loop, run):
    """A server protocol may refuse a connection by closing it at once; the
    client sees EOF, the server keeps serving."""
    class Refuse(Proto):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.close()

    async def main():
        f = Factory(loop, Refuse)
        server = await loop.create_server(f, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        for i in range(3):
            tr, p = await loop.create_connection(lambda: Proto(loop), *addr)
            await p.eof
            assert await p.lost is None
            p.check(eof=True)
            sp = await f.get(i)
            assert await sp.lost is None
            sp.check(eof=False)
        assert server.is_serving()
        await shutdown(server, f)
    run(main())


def test_add_reader_on_transport_fd_is_runtimeerror(loop, run, tcp_pair):
    async def main():
        tr, p, peer = await tcp_pair()
        fd = tr.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError):
            loop.add_reader(fd, lambda: None)
        with pytest.raises(RuntimeError):
            loop.add_writer(fd, lambda: None)
        await p.close_and_wait()
    run(main())


# ---------------------------------------------------------------- callback errors

def test_data_received_exception_is_fatal(loop, run, tcp_pair):
    class Boom(Exception):
        pass

    class Raiser(Proto):
        def data_received(self, data):
            super().data_received(data)
            raise Boom("from data_received")

    async def main():
        errors = collect_exceptions(loop)
        tr, p, peer = await tcp_pair(lambda: Raiser(loop))
        peer.sock.sendall(b"x")
        exc = await p.lost
        assert isinstance(exc, Boom)
        assert tr.is_closing()
        assert [type(c.get("exception")) for c in errors] == [Boom]
        assert errors[0].get("protocol") is p
        assert errors[0].get("transport") is tr
        assert await peer.arecv_eof() == b""
        p.check()
    run(main())


def test_eof_received_exception_is_fatal(loop, run, tcp_pair):
    class Raiser(Proto):
        def eof_received(self):
            super().eof_received()
            raise ZeroDivisionError

    async def main():
        errors = collect_exceptions(loop)
        tr, p, peer = await tcp_pair(lambda: Raiser(loop))
        peer.sock.shutdown(socket.SHUT_WR)
        exc = await p.lost
        assert isinstance(exc, ZeroDivisionError)
        assert [type(c.get("exception")) for c in errors] == [ZeroDivisionError]
        p.check(eof=True)
    run(main())


def test_connection_made_exception_goes_to_handler(loop, run, tcp_pair):
    """An exception from connection_made() goes to the loop's exception
    handler; the connection is not closed and works on."""
    class Raiser(Proto):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise ValueError("from connection_made")

    async def main():
        errors = collect_exceptions(loop)
        tr, p, peer = await tcp_pair(lambda: Raiser(loop))
        assert [type(c.get("exception")) for c in errors] == [ValueError]
        assert not tr.is_closing()
        peer.sock.sendall(b"still open")
        assert await p.wait_bytes(10) == b"still open"
        await p.close_and_wait()
        p.check()
    run(main())


# ---------------------------------------------------------------- BufferedProtocol

def test_buffered_protocol_gets_all_bytes(loop, run, tcp_pair):
    async def main():
        tr, bp, peer = await tcp_pair(lambda: BufProto(loop, bufsize=1000))
        await bp.made
        data = pattern(1024 * 1024 + 17)
        peer.sock.sendall(data)
        peer.sock.shutdown(socket.SHUT_WR)
        await bp.eof
        assert bytes(bp.data) == data
        assert bp.violations == []
        assert bp.calls["buffer_updated"] >= len(data) // 1000
        assert bp.calls["get_buffer"] >= bp.calls["buffer_updated"]
        assert all(isinstance(h, int) for h in bp.sizehints)
        assert await bp.lost is None  # eof_received returned None
        assert bp.calls["made"] == 1 and bp.calls["lost"] == 1
        assert bp.calls["eof"] == 1
    run(main())


def test_buffered_protocol_memoryview_buffer(loop, run, tcp_pair):
    class MVProto(BufProto):
        def get_buffer(self, sizehint):
            super().get_buffer(sizehint)
            return memoryview(self.buf)[:10]

        def buffer_updated(self, nbytes):
            self.calls["buffer_updated"] += 1
            assert nbytes <= 10
            self.data += self.buf[:nbytes]

    async def main():
        tr, bp, peer = await tcp_pair(lambda: MVProto(loop, bufsize=100))
        peer.sock.sendall(b"0123456789abcdefghij!")
        await until(lambda: len(bp.data) == 21)
        assert bytes(bp.data) == b"0123456789abcdefghij!"
        assert bp.calls["buffer_updated"] >= 3
        tr.close()
        await bp.lost
    run(main())


def test_buffered_protocol_empty_buffer_is_fatal(loop, run, tcp_pair):
    async def main():
        errors = collect_exceptions(loop)
        tr, bp, peer = await tcp_pair(lambda: BufProto(loop, empty=True))
        peer.sock.sendall(b"data")
        exc = await bp.lost
        assert isinstance(exc, RuntimeError)
        assert [type(c.get("exception")) for c in errors] == [RuntimeError]
        assert bp.calls["buffer_updated"] == 0
        assert bp.calls["lost"] == 1
        # (the unread data makes the close a reset for the peer)
    run(main())


def test_buffered_protocol_get_buffer_exception_is_fatal(loop, run, tcp_pair):
    class Raiser(BufProto):
        def get_buffer(self, sizehint):
            raise KeyError("nope")

    async def main():
        errors = collect_exceptions(loop)
        tr, bp, peer = await tcp_pair(lambda: Raiser(loop))
        peer.sock.sendall(b"data")
        exc = await bp.lost
        assert isinstance(exc, KeyError)
        assert [type(c.get("exception")) for c in errors] == [KeyError]
        assert bp.calls["lost"] == 1
    run(main())


def test_buffered_protocol_write_and_eof_true(loop, run, tcp_pair):
    class KeepOpen(BufProto):
        def eof_received(self):
            super().eof_received()
            return True

    async def main():
        tr, bp, peer = await tcp_pair(lambda: KeepOpen(loop))
        peer.sock.sendall(b"ping")
        peer.sock.shutdown(socket.SHUT_WR)
        await bp.eof
        await settle()
        assert not tr.is_closing()
        assert bytes(bp.data) == b"ping"
        tr.write(b"pong")
        tr.close()
        assert await peer.arecv_eof() == b"pong"
        assert await bp.lost is None
    run(main())
