"""run_forever / run_until_complete / stop / close / is_running / re-entrancy."""
import asyncio
import threading

import pytest


# ------------------------------------------------------------------ run_until_complete

def test_run_until_complete_coroutine(loop):
    async def main(x):
        await asyncio.sleep(0)
        return x * 2

    assert loop.run_until_complete(main(21)) == 42


def test_run_until_complete_future(loop):
    fut = loop.create_future()
    loop.call_later(0.01, fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_finished_future(loop):
    fut = loop.create_future()
    fut.set_result(7)
    assert loop.run_until_complete(fut) == 7


def test_run_until_complete_awaitable_object(loop):
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    assert loop.run_until_complete(Awaitable()) == "awaited"


def test_run_until_complete_raises_the_exception(loop):
    err = ValueError("boom")

    async def main():
        await asyncio.sleep(0)
        raise err

    with pytest.raises(ValueError) as exc_info:
        loop.run_until_complete(main())
    assert exc_info.value is err


def test_run_until_complete_cancelled_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(fut)


def test_run_until_complete_not_awaitable(loop):
    with pytest.raises(TypeError):
        loop.run_until_complete(42)


def test_run_until_complete_future_of_other_loop(loop, loop_factory):
    other = loop_factory()
    fut = other.create_future()
    with pytest.raises(ValueError):
        loop.run_until_complete(fut)


@pytest.mark.timeout(10)
def test_run_until_complete_stopped_before_done(loop):
    fut = loop.create_future()
    loop.call_later(0.01, loop.stop)
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed"):
        loop.run_until_complete(fut)
    assert not loop.is_running()
    # The loop is still usable and the future can still complete.
    loop.call_soon(fut.set_result, 1)
    assert loop.run_until_complete(fut) == 1


def test_run_until_complete_twice(loop):
    async def f(x):
        return x

    assert loop.run_until_complete(f(1)) == 1
    assert loop.run_until_complete(f(2)) == 2


# ------------------------------------------------------------------ run_forever / stop

def test_stop_before_run_forever_runs_one_iteration(loop):
    got = []

    def first():
        got.append("first")
        loop.call_soon(got.append, "next-iteration")

    loop.call_soon(first)
    loop.call_soon(got.append, "second")
    loop.stop()
    loop.run_forever()
    assert got == ["first", "second"]
    # The callback scheduled during that iteration waits for the next run.
    loop.stop()
    loop.run_forever()
    assert got == ["first", "second", "next-iteration"]


def test_stop_lets_already_queued_callbacks_run(loop):
    got = []
    loop.call_soon(got.append, 1)
    loop.call_soon(loop.stop)
    loop.call_soon(got.append, 2)
    loop.run_forever()
    assert got == [1, 2]


def test_stop_twice_and_rerun(loop):
    got = []
    loop.call_soon(loop.stop)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(got.append, "again")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == ["again"]


@pytest.mark.timeout(10)
def test_stop_wakes_after_timer(loop):
    got = []
    loop.call_later(0.02, lambda: (got.append(1), loop.stop()))
    loop.run_forever()
    assert got == [1]


def test_is_running(loop):
    seen = []
    assert loop.is_running() is False
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [True]
    assert loop.is_running() is False

    async def coro():
        return loop.is_running()

    assert loop.run_until_complete(coro()) is True
    assert loop.is_running() is False


def test_get_running_loop_in_coroutine(loop):
    async def main():
        return asyncio.get_running_loop(), asyncio.current_task()

    running, task = loop.run_until_complete(main())
    assert running is loop
    assert task is not None and task.get_loop() is loop
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


# ------------------------------------------------------------------ close

def test_close(loop):
    assert loop.is_closed() is False
    loop.close()
    assert loop.is_closed() is True
    loop.close()  # idempotent
    assert loop.is_closed() is True


def test_closed_attribute_reads_like_asyncio(loop):
    # asyncio.BaseEventLoop and uvloop.Loop have a `_closed` attribute that code
    # outside the loop reads (uvloop's test_base test_close); ringloop's is read-only.
    assert loop._closed is False
    loop.close()
    assert loop._closed is True


def test_closed_loop_rejects_work(loop):
    loop.close()
    for call in (lambda: loop.call_soon(print),
                 lambda: loop.call_soon_threadsafe(print),
                 lambda: loop.call_later(1, print),
                 lambda: loop.call_at(1, print),
                 loop.run_forever):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    fut_coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(fut_coro)
    fut_coro.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(coro)
    coro.close()


def test_close_while_running(loop):
    errors = []

    def cb():
        try:
            loop.close()
        except RuntimeError as e:
            errors.append(str(e))
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]
    assert loop.is_closed() is False


def test_close_drops_pending_callbacks(loop):
    got = []
    loop.call_soon(got.append, 1)
    loop.call_later(0.001, got.append, 2)
    loop.close()
    assert got == []


# ------------------------------------------------------------------ re-entrancy

CPY_3130_BUG = pytest.mark.reference_bug(
    "3.13.0 run_forever() runs its cleanup even when the already-running "
    "check fails, resetting the running loop", [(3, 13, 0)])


@pytest.mark.timeout(10)
@pytest.mark.parametrize("nested", [pytest.param("run_forever", marks=CPY_3130_BUG),
                                    "run_until_complete"])
def test_run_inside_running_loop(loop, nested):
    """The nested call fails and leaves the running loop's state intact
    (CPython 3.13.0 breaks the second half: its run_forever() cleanup runs
    even when the already-running check fails)."""
    errors = []
    state = []
    fut = loop.create_future()

    def cb():
        try:
            if nested == "run_forever":
                loop.run_forever()
            else:
                loop.run_until_complete(fut)
        except RuntimeError as e:
            errors.append(str(e))
        state.append((loop.is_running(), asyncio._get_running_loop() is loop))
        loop.stop()

    loop.call_soon(cb)
    watchdog = loop.call_later(5, loop.stop)
    loop.run_forever()
    watchdog.cancel()
    assert errors == ["This event loop is already running"]
    assert state == [(True, True)]
    assert loop.is_running() is False


def test_run_until_complete_inside_coroutine(loop):
    async def inner():
        return 1

    async def main():
        coro = inner()
        try:
            with pytest.raises(RuntimeError, match="This event loop is already running"):
                loop.run_until_complete(coro)
        finally:
            coro.close()
        return "ok"

    assert loop.run_until_complete(main()) == "ok"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("nested", [pytest.param("run_forever", marks=CPY_3130_BUG),
                                    "run_until_complete"])
def test_second_loop_in_same_thread(loop, loop_factory, nested):
    other = loop_factory()
    errors = []
    state = []

    def cb():
        other_watchdog = other.call_later(1, other.stop)  # if it did start
        try:
            if nested == "run_forever":
                other.run_forever()
            else:
                other.run_until_complete(other.create_future())
        except RuntimeError as e:
            errors.append(str(e))
        other_watchdog.cancel()
        state.append((loop.is_running(), other.is_running(),
                      asyncio._get_running_loop() is loop))
        loop.stop()

    loop.call_soon(cb)
    watchdog = loop.call_later(5, loop.stop)
    loop.run_forever()
    watchdog.cancel()
    assert errors == ["Cannot run the event loop while another loop is running"]
    assert state == [(True, False, True)]
    # Both loops are fine afterwards.
    other.call_soon(other.stop)
    other.run_forever()


@pytest.mark.timeout(10)
def test_loops_in_two_threads(loop, loop_factory):
    other = loop_factory()
    results = {}

    def thread_main():
        async def work():
            await asyncio.sleep(0.02)
            return asyncio.get_running_loop()
        results["thread"] = other.run_until_complete(work())

    t = threading.Thread(target=thread_main)
    t.start()

    async def main():
        await asyncio.sleep(0.02)
        return asyncio.get_running_loop()

    results["main"] = loop.run_until_complete(main())
    t.join(5)
    assert results == {"thread": other, "main": loop}


def _work_on(loop):
    """A timer, a reader and a thread-safe call: returns what ran."""
    import socket
    a, b = socket.socketpair()
    try:
        got = []

        async def main():
            fut = loop.create_future()
            loop.add_reader(a, lambda: (got.append(a.recv(10)), fut.set_result(None)))
            loop.call_later(0.005, b.send, b"r")
            await fut
            loop.remove_reader(a)
            done = loop.create_future()
            threading.Thread(
                target=lambda: loop.call_soon_threadsafe(done.set_result, "ts")).start()
            got.append(await done)
            await asyncio.sleep(0.002)
            return got

        return loop.run_until_complete(asyncio.wait_for(main(), 5))
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(20)
def test_loop_run_from_different_threads_in_turn(loop):
    """asyncio lets one loop be run by different threads, one at a time
    (e.g. created and warmed up in the main thread, then driven by a worker)."""
    assert _work_on(loop) == [b"r", "ts"]
    result = {}

    def worker():
        try:
            result["thread"] = _work_on(loop)
        except BaseException as e:  # noqa: BLE001
            result["thread"] = e

    # Several workers one after the other: a new thread often gets the same
    # threading.get_ident() (pthread_t) as the one that just exited, yet it is
    # a different kernel task.
    for i in range(4):
        t = threading.Thread(target=worker)
        t.start()
        t.join(10)
        assert result.pop("thread") == [b"r", "ts"], f"worker {i}"
    assert _work_on(loop) == [b"r", "ts"]
