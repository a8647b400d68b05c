"""connect_read_pipe / connect_write_pipe: asyncio's pipe transports' semantics
(unix_events._UnixReadPipeTransport/_UnixWritePipeTransport) on pipes, FIFOs,
sockets and ptys; flow control; the peer going away; closing and aborting."""
import asyncio
import gc
import os
import socket
import tempfile
import threading
import warnings

import pytest

from netutil import Proto, pattern, settle, until

pytestmark = pytest.mark.timeout(20)


def pipe_files():
    """(read file, write file) of a new pipe, unbuffered, as asyncio users pass them."""
    r, w = os.pipe()
    return open(r, "rb", buffering=0), open(w, "wb", buffering=0)


def drain(fileobj, n):
    """Read up to n bytes from a (possibly non-blocking) fd; b'' when none."""
    try:
        return os.read(fileobj.fileno(), n)
    except BlockingIOError:
        return b""


class Reader(threading.Thread):
    """Reads a blocking fd to EOF in a thread (a peer independent of the loop)."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd = fd
        self.data = bytearray()

    def run(self):
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return
            self.data += chunk


# ---------------------------------------------------------------- read pipes

def test_read_pipe_data_eof_then_lost(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), rf)
        assert p.transport is tr and p.events == ["made"]
        assert isinstance(tr, asyncio.ReadTransport)
        assert tr.get_extra_info("pipe") is rf
        assert tr.is_reading() and not tr.is_closing()
        assert not os.get_blocking(rf.fileno())
        os.write(wf.fileno(), b"hello ")
        os.write(wf.fileno(), b"world")
        assert await p.wait_bytes(11) == b"hello world"
        wf.close()
        assert await p.lost is None
        assert p.events == ["made", "data", "eof", "lost"]
        assert tr.is_closing()
        assert rf.closed, "the transport closes the pipe it was given"
        p.check(eof=True)
    run(main())


def test_read_pipe_pause_resume(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), rf)
        tr.pause_reading()
        assert not tr.is_reading()
        tr.pause_reading()              # idempotent
        os.write(wf.fileno(), b"while paused")
        await settle(10)
        assert p.data == b""
        tr.resume_reading()
        assert tr.is_reading()
        tr.resume_reading()
        assert await p.wait_bytes(12) == b"while paused"
        wf.close()
        await p.lost
        assert not tr.is_reading()
        tr.pause_reading()              # no-ops once closed
        tr.resume_reading()
        p.check(eof=True)
    run(main())


def test_read_pipe_close_is_connection_lost_none(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), rf)
        tr.close()
        assert tr.is_closing() and not tr.is_reading()
        tr.close()
        assert await p.lost is None
        assert rf.closed
        p.check(eof=False)
        wf.close()
    run(main())


def test_read_pipe_large_stream(loop, run):
    payload = pattern(3 * 1024 * 1024 + 7)

    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), rf)

        def writer():
            with wf:
                wf.write(payload)
        t = threading.Thread(target=writer)
        t.start()
        await p.lost
        t.join()
        assert bytes(p.data) == payload
        p.check(eof=True)
    run(main(), timeout=15)


def test_read_pipe_stream_reader(loop, run):
    """The usual way: a StreamReader over connect_read_pipe."""
    async def main():
        rf, wf = pipe_files()
        reader = asyncio.StreamReader()
        tr, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), rf)
        with wf:
            wf.write(b"one\ntwo\nrest")
        assert await reader.readline() == b"one\n"
        assert await reader.readline() == b"two\n"
        assert await reader.read() == b"rest"
        assert reader.at_eof()
        await settle()
        assert tr.is_closing()
    run(main())


def test_read_pipe_socket_and_fifo(loop, run, tmp_path):
    async def main():
        a, b = socket.socketpair()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), a)
        b.sendall(b"over a socket")
        await p.wait_bytes(13)
        b.close()
        await p.lost
        p.check(eof=True)

        path = tmp_path / "fifo"
        os.mkfifo(path)
        rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        wfd = os.open(path, os.O_WRONLY)
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), open(rfd, "rb", 0))
        os.write(wfd, b"through a fifo")
        await p.wait_bytes(14)
        os.close(wfd)
        await p.lost
        p.check(eof=True)
    run(main())


def test_read_pipe_pty_eio_ends_quietly(loop, run):
    """A pty master reads EIO once the slave is closed: connection_lost(OSError)
    without a report to the exception handler (asyncio's rule for EIO)."""
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main():
        master, slave = os.openpty()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), open(master, "rb", 0))
        os.write(slave, b"tty output\n")
        await p.wait_bytes(5)
        os.close(slave)
        exc = await p.lost
        assert isinstance(exc, OSError), exc
        assert reports == []
    run(main())


def test_read_pipe_regular_file_refused(loop, run, tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"data")

    async def main():
        with open(path, "rb") as f:
            with pytest.raises(ValueError, match="Pipe transport is for pipes/sockets only"):
                await loop.connect_read_pipe(lambda: Proto(loop), f)
            assert not f.closed
    run(main())


def test_read_pipe_data_received_error_reported_pipe_stays(loop, run):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    class Boom(Proto):
        def data_received(self, data):
            super().data_received(data)
            if len(self.data) < 6:
                raise ZeroDivisionError

    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_read_pipe(lambda: Boom(loop), rf)
        os.write(wf.fileno(), b"boom")
        await until(lambda: reports)
        assert isinstance(reports[0]["exception"], ZeroDivisionError)
        assert not tr.is_closing()
        os.write(wf.fileno(), b"more")
        await p.wait_bytes(8)
        tr.close()
        await p.lost
        wf.close()
    run(main())


def test_read_pipe_repr(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_read_pipe(lambda: Proto(loop), rf)
        fd = rf.fileno()
        assert f"fd={fd}" in repr(tr) and "polling" in repr(tr)
        tr.pause_reading()
        assert "idle" in repr(tr)
        tr.close()
        assert "closing" in repr(tr)
        await p.lost
        assert "closed" in repr(tr)
        wf.close()
    run(main())


# ---------------------------------------------------------------- write pipes

def test_write_pipe_is_a_transport_whose_read_side_is_not_implemented(loop, run):
    # asyncio's _UnixWritePipeTransport is an asyncio.Transport (via
    # _FlowControlMixin): pause_reading() and friends raise NotImplementedError, not
    # AttributeError (uvloop's test_process_streams_basic_1, on a subprocess's stdin).
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        assert isinstance(tr, asyncio.Transport)
        for method in (tr.pause_reading, tr.resume_reading, tr.is_reading):
            with pytest.raises(NotImplementedError):
                method()
        tr.close()
        assert await p.lost is None
        rf.close()
    run(main())


def test_write_pipe_write_and_close(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        assert isinstance(tr, asyncio.WriteTransport)
        assert tr.get_extra_info("pipe") is wf
        assert not os.get_blocking(wf.fileno())
        assert tr.can_write_eof()
        tr.write(b"bytes ")
        tr.write(bytearray(b"bytearray "))
        tr.write(memoryview(b"memoryview "))
        tr.write(b"")
        tr.writelines([b"line1 ", b"line2"])
        assert tr.get_write_buffer_size() == 0
        tr.close()
        assert tr.is_closing()
        assert await p.lost is None
        assert wf.closed
        assert rf.read() == b"bytes bytearray memoryview line1 line2"
        rf.close()
        p.check(eof=False)
    run(main())


def test_write_pipe_type_checked(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        # asyncio asserts (AssertionError), ringloop raises TypeError.
        with pytest.raises((TypeError, AssertionError)):
            tr.write("text")
        tr.close()
        await p.lost
        rf.close()
    run(main())


def test_write_pipe_buffer_flow_control_and_close_flushes(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        payload = pattern(1024 * 1024)
        tr.write(payload)               # a pipe takes 64 KiB: the rest is queued
        assert tr.get_write_buffer_size() > 0
        assert p.paused and p.calls["pause_writing"] == 1
        tr.close()                      # flushes what is queued, then connection_lost
        assert tr.is_closing()
        tr.write(b"dropped")            # after close: ignored, never raises
        reader = Reader(os.dup(rf.fileno()))
        rf.close()
        os.set_blocking(reader.fd, True)
        reader.start()
        assert await p.lost is None
        await loop.run_in_executor(None, reader.join)
        os.close(reader.fd)
        assert bytes(reader.data) == payload
        assert p.calls["resume_writing"] == 1
        assert tr.get_write_buffer_size() == 0
        p.check(eof=False)
    run(main())


def test_write_pipe_resume_writing_once_drained(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        tr.write(pattern(200 * 1024))
        assert p.paused
        got = bytearray()
        while p.paused:
            got += drain(rf, 65536)
            await asyncio.sleep(0.001)
        assert tr.get_write_buffer_size() <= tr.get_write_buffer_limits()[0]
        tr.close()
        while not p.lost.done():
            got += drain(rf, 65536)
            await asyncio.sleep(0.001)
        got += drain(rf, 1 << 20)
        assert bytes(got) == pattern(200 * 1024)
        rf.close()
        p.check(eof=False)
    run(main())


def test_write_pipe_limits_validated(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=-1)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        tr.close()
        await p.lost
        rf.close()
    run(main())


def test_write_pipe_write_eof_closes(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        tr.write(b"last")
        tr.write_eof()
        assert tr.is_closing()
        tr.write_eof()
        assert await p.lost is None
        assert rf.read() == b"last"
        rf.close()
    run(main())


def test_write_pipe_abort_drops_queue(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        tr.write(pattern(256 * 1024))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        tr.abort()
        tr.close()
        assert await p.lost is None
        assert len(rf.read()) < 256 * 1024
        rf.close()
        p.check(eof=False)
    run(main())


def test_write_pipe_reader_gone_idle(loop, run):
    """Nothing queued: the read watch sees the reader go, connection_lost(None)."""
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        rf.close()
        assert await p.lost is None
        assert tr.is_closing()
        p.check(eof=False)
    run(main())


def test_write_pipe_reader_gone_with_data_queued(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        tr.write(pattern(256 * 1024))
        rf.close()
        exc = await p.lost
        assert isinstance(exc, BrokenPipeError), exc
        tr.write(b"after lost")         # ignored
        p.check(eof=False)
    run(main())


def test_write_pipe_epipe_on_write_goes_to_connection_lost(loop, run):
    """A write that meets EPIPE does not raise: connection_lost(BrokenPipeError)."""
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        rf.close()
        tr.write(b"nobody reads this")  # before the loop saw the reader go
        exc = await p.lost
        assert isinstance(exc, BrokenPipeError), exc
        p.check(eof=False)
    run(main())


def test_write_pipe_socket_peer_close(loop, run):
    async def main():
        a, b = socket.socketpair()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), a)
        tr.write(b"1")
        assert b.recv(10) == b"1"
        b.close()
        assert await p.lost is None
        p.check(eof=False)
    run(main())


def test_write_pipe_fifo_and_char_device(loop, run, tmp_path):
    async def main():
        path = tmp_path / "fifo"
        os.mkfifo(path)
        rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        wfd = os.open(path, os.O_WRONLY)
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), open(wfd, "wb", 0))
        tr.write(b"fifo")
        await until(lambda: drain(open(rfd, "rb", 0, closefd=False), 10) == b"fifo")
        os.close(rfd)
        assert await p.lost is None

        # A character device: no peer watch, writes go straight through.
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), open(os.devnull, "wb", 0))
        tr.write(pattern(1 << 20))
        assert tr.get_write_buffer_size() == 0
        tr.close()
        assert await p.lost is None
    run(main())


def test_write_pipe_pty(loop, run):
    async def main():
        master, slave = os.openpty()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), open(slave, "wb", 0))
        tr.write(b"to the terminal\n")
        got = b""
        while b"terminal" not in got:
            await asyncio.sleep(0.005)
            got += os.read(master, 100)
        tr.close()
        await p.lost
        os.close(master)
    run(main())


def test_write_pipe_regular_file_refused(loop, run):
    async def main():
        with tempfile.TemporaryFile() as f:
            with pytest.raises(ValueError, match="Pipe transport is only for"):
                await loop.connect_write_pipe(lambda: Proto(loop), f)
            assert not f.closed
    run(main())


def test_write_pipe_repr(loop, run):
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        assert f"fd={wf.fileno()}" in repr(tr) and "idle" in repr(tr)
        tr.write(pattern(200 * 1024))
        assert "polling" in repr(tr) and "bufsize=" in repr(tr)
        tr.abort()
        await p.lost
        assert "closed" in repr(tr)
        rf.close()
    run(main())


# ---------------------------------------------------------------- both ends, leaks

def test_pipe_pair_on_one_loop(loop, run):
    """A write transport feeding a read transport on the same loop."""
    payload = pattern(2 * 1024 * 1024 + 3)

    async def main():
        rf, wf = pipe_files()
        rtr, rp = await loop.connect_read_pipe(lambda: Proto(loop), rf)
        wtr, wp = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        for i in range(0, len(payload), 100_000):
            wtr.write(payload[i:i + 100_000])
        wtr.close()
        await wp.lost
        await rp.lost
        assert bytes(rp.data) == payload
        rp.check(eof=True)
        wp.check(eof=False)
    run(main(), timeout=15)


def test_unclosed_pipe_transport_warns(loop_factory):
    lp = loop_factory()
    rf, wf = pipe_files()

    async def connect():
        rtr, _ = await lp.connect_read_pipe(lambda: Proto(lp), rf)
        wtr, _ = await lp.connect_write_pipe(lambda: Proto(lp), wf)
        return rtr, wtr

    rtr, wtr = lp.run_until_complete(connect())
    lp.close()
    assert "open" in repr(rtr) and "open" in repr(wtr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del rtr, wtr
        gc.collect()
    assert sum(issubclass(w.category, ResourceWarning) for w in caught) == 2
    assert rf.closed and wf.closed


def test_no_fd_leak_many_pipes(loop, run, fds):
    async def main():
        for _ in range(200):
            rf, wf = pipe_files()
            rtr, rp = await loop.connect_read_pipe(lambda: Proto(loop), rf)
            wtr, wp = await loop.connect_write_pipe(lambda: Proto(loop), wf)
            wtr.write(b"x")
            wtr.close()
            await rp.lost
            await wp.lost
    before = fds()
    run(main(), timeout=15)
    assert fds() == before


def test_write_pipe_closed_at_once_then_reader_gone(loop, run):
    """close() right after connecting, with data queued: the reader going away
    still ends the transport (BrokenPipeError), it does not wait forever."""
    async def main():
        rf, wf = pipe_files()
        tr, p = await loop.connect_write_pipe(lambda: Proto(loop), wf)
        tr.write(pattern(256 * 1024))
        tr.close()
        await settle()
        assert not p.lost.done()
        rf.close()
        exc = await p.lost
        assert isinstance(exc, BrokenPipeError), exc
        p.check(eof=False)
    run(main())


def test_write_pipe_close_before_connection_made_with_data(loop, run):
    async def main():
        rf, wf = pipe_files()
        p = Proto(loop)
        tr = loop._make_write_pipe_transport(wf, p)
        tr.set_write_buffer_limits(high=1 << 20)
        tr.write(pattern(256 * 1024))
        tr.close()
        rf.close()
        exc = await p.lost
        assert isinstance(exc, BrokenPipeError), exc
        assert p.events[0] == "made"
    run(main())
