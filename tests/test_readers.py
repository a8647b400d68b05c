"""add_reader / remove_reader / add_writer / remove_writer."""
import os
import socket
import tempfile

import pytest


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    fds = {"r": r, "w": w}
    yield fds
    for fd in fds.values():
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def stop_after(loop, seconds):
    return loop.call_later(seconds, loop.stop)


@pytest.mark.timeout(10)
def test_reader_on_socketpair(loop, sockpair):
    a, b = sockpair
    got = []

    def on_read(tag):
        got.append((tag, a.recv(100)))
        loop.stop()

    loop.add_reader(a.fileno(), on_read, "tag")
    b.send(b"hello")
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [("tag", b"hello")]
    assert loop.remove_reader(a.fileno()) is True


@pytest.mark.timeout(10)
def test_reader_on_pipe_added_before_data(loop, pipe):
    got = []

    def on_read():
        got.append(os.read(pipe["r"], 100))
        loop.stop()

    loop.add_reader(pipe["r"], on_read)
    loop.call_later(0.02, os.write, pipe["w"], b"later")
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [b"later"]
    assert loop.remove_reader(pipe["r"]) is True


@pytest.mark.timeout(10)
def test_reader_is_level_triggered(loop, sockpair):
    a, b = sockpair
    calls = []

    def on_read():
        calls.append(1)  # does not drain
        if len(calls) == 5:
            loop.stop()

    loop.add_reader(a, on_read)
    b.send(b"x")
    w = stop_after(loop, 3)
    loop.run_forever()
    w.cancel()
    assert len(calls) == 5
    loop.remove_reader(a)


@pytest.mark.timeout(10)
def test_drained_reader_not_called_again(loop, sockpair):
    a, b = sockpair
    calls = []

    def on_read():
        calls.append(a.recv(100))

    loop.add_reader(a, on_read)
    b.send(b"one")
    loop.call_later(0.1, loop.stop)
    loop.run_forever()
    assert calls == [b"one"]
    # New data: called again.
    b.send(b"two")
    loop.call_later(0.1, loop.stop)
    loop.run_forever()
    assert calls == [b"one", b"two"]
    loop.remove_reader(a)


@pytest.mark.timeout(10)
def test_reader_one_call_per_iteration(loop, sockpair):
    """Level-triggered means once per loop iteration while ready, not a
    tight inner loop: a call_soon chain interleaves with the reader."""
    a, b = sockpair
    order = []

    def on_read():
        order.append("r")
        if order.count("r") == 3:
            loop.remove_reader(a)
            loop.stop()

    def tick():
        order.append("t")
        loop.call_soon(tick)

    b.send(b"x")
    loop.add_reader(a, on_read)
    loop.call_soon(tick)
    w = stop_after(loop, 3)
    loop.run_forever()
    w.cancel()
    # between two reader calls at least one tick ran
    idx = [i for i, x in enumerate(order) if x == "r"]
    assert len(idx) == 3
    assert all(any(order[j] == "t" for j in range(i1 + 1, i2)) for i1, i2 in zip(idx, idx[1:]))


def test_remove_reader_writer_return_values(loop, sockpair):
    a, _ = sockpair
    assert loop.remove_reader(a.fileno()) is False
    assert loop.remove_writer(a.fileno()) is False
    loop.add_reader(a.fileno(), lambda: None)
    assert loop.remove_writer(a.fileno()) is False
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False
    loop.add_writer(a.fileno(), lambda: None)
    assert loop.remove_reader(a.fileno()) is False
    assert loop.remove_writer(a.fileno()) is True
    assert loop.remove_writer(a.fileno()) is False


@pytest.mark.timeout(10)
def test_replacing_reader(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_reader(a, lambda: got.append("old"))
    loop.add_reader(a, lambda: (got.append("new"), a.recv(10), loop.stop()))
    b.send(b"x")
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == ["new"]
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


@pytest.mark.timeout(10)
def test_replacing_writer(loop, sockpair):
    a, _ = sockpair
    got = []
    loop.add_writer(a, lambda: got.append("old"))
    loop.add_writer(a, lambda: (got.append("new"), loop.remove_writer(a), loop.stop()))
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == ["new"]


@pytest.mark.timeout(10)
def test_writer_called_when_writable_and_level_triggered(loop, pipe):
    calls = []

    def on_write():
        calls.append(1)
        if len(calls) == 3:
            loop.remove_writer(pipe["w"])
            loop.stop()

    loop.add_writer(pipe["w"], on_write)
    w = stop_after(loop, 3)
    loop.run_forever()
    w.cancel()
    assert len(calls) == 3


@pytest.mark.timeout(10)
def test_writer_waits_for_buffer_space(loop, sockpair):
    a, b = sockpair
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    calls = []
    loop.add_writer(a, lambda: (calls.append(1), loop.remove_writer(a), loop.stop()))
    loop.call_later(0.05, lambda: calls.append("not yet"))

    def drain():
        try:
            while b.recv(1 << 20):
                pass
        except BlockingIOError:
            pass

    loop.call_later(0.1, drain)
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert calls == ["not yet", 1]


@pytest.mark.timeout(10)
def test_reader_and_writer_on_same_fd(loop, sockpair):
    a, b = sockpair
    events = []

    def on_write():
        events.append("w")
        loop.remove_writer(a)
        b.send(b"ping")  # makes `a` readable

    def on_read():
        events.append(("r", a.recv(10)))
        loop.stop()

    loop.add_reader(a, on_read)
    loop.add_writer(a, on_write)
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert events == ["w", ("r", b"ping")]
    # reader still registered after the writer was removed
    assert loop.remove_reader(a) is True


@pytest.mark.timeout(10)
def test_remove_reader_keeps_writer(loop, sockpair):
    a, b = sockpair
    events = []
    loop.add_reader(a, lambda: events.append("r"))
    loop.add_writer(a, lambda: (events.append("w"), loop.stop()))
    assert loop.remove_reader(a) is True
    b.send(b"data")  # would trigger the removed reader
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert "r" not in events and "w" in events
    assert loop.remove_writer(a) is True


@pytest.mark.timeout(10)
def test_reader_removed_by_other_callback_in_same_iteration(loop):
    """Two fds ready in the same iteration; the first callback to run
    removes the other reader: the removed one must not be called."""
    p1, p2 = socket.socketpair(), socket.socketpair()
    try:
        called = []

        def make(me, other):
            def cb():
                called.append(me)
                loop.remove_reader(other[0])
                loop.remove_reader(me[0])
            return cb

        loop.add_reader(p1[0], make(p1, p2))
        loop.add_reader(p2[0], make(p2, p1))
        p1[1].send(b"x")
        p2[1].send(b"x")
        loop.call_later(0.1, loop.stop)
        loop.run_forever()
        assert len(called) == 1
    finally:
        for s in (*p1, *p2):
            s.close()


@pytest.mark.timeout(10)
def test_reader_sees_eof(loop, pipe):
    got = []

    def on_read():
        got.append(os.read(pipe["r"], 100))
        loop.remove_reader(pipe["r"])
        loop.stop()

    loop.add_reader(pipe["r"], on_read)
    os.close(pipe["w"])
    pipe["w"] = None
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [b""]


@pytest.mark.timeout(10)
def test_reader_on_fd_closed_after_remove(loop):
    """remove_reader, then the user closes the fd; the loop keeps working and
    a new fd that reuses the same number works as a fresh registration."""
    r1, w1 = os.pipe()
    loop.add_reader(r1, lambda: None)
    assert loop.remove_reader(r1) is True
    os.close(r1)
    os.close(w1)
    loop.call_soon(loop.stop)
    loop.run_forever()

    r2, w2 = os.pipe()  # very likely reuses r1's number
    try:
        got = []
        loop.add_reader(r2, lambda: (got.append(os.read(r2, 10)), loop.stop()))
        os.write(w2, b"again")
        w = stop_after(loop, 5)
        loop.run_forever()
        w.cancel()
        assert got == [b"again"]
        assert loop.remove_reader(r2) is True
    finally:
        os.close(r2)
        os.close(w2)


@pytest.mark.timeout(10)
def test_many_readers(loop):
    pairs = [socket.socketpair() for _ in range(64)]
    try:
        seen = set()

        def on_read(i, s):
            s.recv(10)
            seen.add(i)
            loop.remove_reader(s)
            if len(seen) == len(pairs):
                loop.stop()

        for i, (a, b) in enumerate(pairs):
            loop.add_reader(a, on_read, i, a)
        for a, b in pairs:
            b.send(b"x")
        w = stop_after(loop, 5)
        loop.run_forever()
        w.cancel()
        assert seen == set(range(len(pairs)))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.timeout(10)
def test_fileno_object_accepted(loop, sockpair):
    a, b = sockpair

    class Wrapper:
        def fileno(self):
            return a.fileno()

    got = []
    loop.add_reader(Wrapper(), lambda: (got.append(a.recv(10)), loop.stop()))
    b.send(b"obj")
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [b"obj"]
    # registered under the fd number: removable by int or by another object
    assert loop.remove_reader(a.fileno()) is True
    loop.add_writer(a, lambda: None)
    assert loop.remove_writer(Wrapper()) is True


def test_add_reader_invalid_fd_values(loop):
    with pytest.raises(ValueError):
        loop.add_reader(-1, lambda: None)
    with pytest.raises(ValueError):
        loop.add_writer(-1, lambda: None)
    with pytest.raises(ValueError):
        loop.add_reader("not a file", lambda: None)
    with pytest.raises(ValueError):
        loop.add_reader(object(), lambda: None)


def test_add_reader_closed_fd(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        loop.add_reader(r, lambda: None)
    with pytest.raises(OSError):
        loop.add_writer(r, lambda: None)
    assert loop.remove_reader(r) is False
    assert loop.remove_writer(r) is False
    # the failed registration left no trace: the loop still runs
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_add_reader_regular_file(loop):
    """asyncio (epoll) cannot watch regular files: PermissionError."""
    with tempfile.TemporaryFile() as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f.fileno(), lambda: None)
        assert loop.remove_reader(f.fileno()) is False


def test_reader_api_on_closed_loop(loop, sockpair):
    a, _ = sockpair
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.add_reader(a, lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.add_writer(a, lambda: None)
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False


def test_close_unregisters_but_does_not_close_user_fds(loop, sockpair):
    a, b = sockpair
    loop.add_reader(a, lambda: None)
    loop.add_writer(b, lambda: None)
    loop.close()
    os.fstat(a.fileno())  # still open
    os.fstat(b.fileno())
    b.send(b"still works")
    assert a.recv(100) == b"still works"


@pytest.mark.timeout(10)
def test_reader_added_from_callback_while_running(loop, sockpair):
    a, b = sockpair
    got = []

    def setup():
        loop.add_reader(a, lambda: (got.append(a.recv(10)), loop.stop()))
        loop.call_later(0.02, b.send, b"late")

    loop.call_soon(setup)
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [b"late"]
    loop.remove_reader(a)


@pytest.mark.timeout(10)
def test_remove_and_readd_reader_repeatedly_same_iteration(loop, sockpair):
    """Pause/resume reading as transports do: many remove/add cycles before
    the loop waits; only the last callback is called, exactly when data
    arrives, and no stale registration fires."""
    a, b = sockpair
    got = []

    def make(i):
        return lambda: (got.append((i, a.recv(100))), loop.stop())

    for i in range(100):
        loop.add_reader(a, make(i))
        assert loop.remove_reader(a) is True
    loop.add_reader(a, make("last"))
    loop.call_later(0.05, b.send, b"data")
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [("last", b"data")]
    assert loop.remove_reader(a) is True


@pytest.mark.timeout(10)
def test_reader_removed_and_readded_inside_its_callback(loop, sockpair):
    a, b = sockpair
    got = []

    def first():
        got.append(("first", a.recv(1)))
        loop.remove_reader(a)
        loop.add_reader(a, second)

    def second():
        got.append(("second", a.recv(100)))
        loop.remove_reader(a)
        loop.stop()

    loop.add_reader(a, first)
    b.send(b"xyz")  # first reads one byte, the rest stays readable
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert got == [("first", b"x"), ("second", b"yz")]


@pytest.mark.timeout(10)
def test_exception_in_reader_goes_to_handler(loop, sockpair):
    a, b = sockpair
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        a.recv(100)
        loop.remove_reader(a)
        loop.call_soon(loop.stop)
        raise ZeroDivisionError

    h = loop.add_reader(a, bad)
    b.send(b"x")
    w = stop_after(loop, 5)
    loop.run_forever()
    w.cancel()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert contexts[0]["message"].startswith("Exception in callback")
    if h is not None:  # a loop that returns a Handle reports that same Handle
        assert contexts[0]["handle"] is h


@pytest.mark.timeout(30)
def test_thousand_readers_registered_at_once(loop):
    """More registrations in one iteration than a small submission queue
    holds; every reader is still called."""
    pairs = [socket.socketpair() for _ in range(1000)]
    try:
        seen = set()

        def on_read(i, s):
            s.recv(10)
            seen.add(i)
            loop.remove_reader(s)
            if len(seen) == len(pairs):
                loop.stop()

        for i, (a, b) in enumerate(pairs):
            loop.add_reader(a, on_read, i, a)
            b.send(b"x")
        w = stop_after(loop, 10)
        loop.run_forever()
        w.cancel()
        assert len(seen) == len(pairs)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.timeout(10)
def test_writer_called_when_peer_closes(loop):
    """A writer waiting for buffer space is woken when the peer goes away
    (error/hang-up), it is not left waiting forever."""
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        try:
            while True:
                a.send(b"x" * 65536)
        except BlockingIOError:
            pass
        calls = []
        loop.add_writer(a, lambda: (calls.append(1), loop.remove_writer(a), loop.stop()))
        loop.call_later(0.05, b.close)
        w = stop_after(loop, 5)
        loop.run_forever()
        w.cancel()
        assert calls == [1]
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("loop_running", [False, True])
def test_peer_sees_eof_after_remove_reader_and_close(loop, loop_running):
    """Once a reader is removed and the socket closed, the socket is really
    closed (the loop keeps no reference to it in the kernel): the peer sees
    EOF at once, whether or not the loop runs meanwhile."""
    import asyncio
    a, peer = socket.socketpair()
    peer.setblocking(False)
    try:
        loop.add_reader(a, lambda: None)
        loop.add_writer(a, lambda: None)
        loop.run_until_complete(asyncio.sleep(0.01))  # registrations are live

        def close_it():
            loop.remove_reader(a)
            loop.remove_writer(a)
            a.close()
            return peer.recv(1)

        if loop_running:
            async def main():
                return close_it()
            assert loop.run_until_complete(main()) == b""
        else:
            assert close_it() == b""
    finally:
        a.close()
        peer.close()
