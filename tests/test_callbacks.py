"""call_soon / call_soon_threadsafe, Handle API, contextvars."""
import asyncio
import concurrent.futures
import contextvars
import sys
import gc
import threading
import time
import weakref

import pytest

var = contextvars.ContextVar("var", default="unset")


def test_call_soon_runs_with_args(loop):
    got = []
    loop.call_soon(got.append, 42)
    loop.call_soon(lambda *a: got.append(a), 1, "two", None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == [42, (1, "two", None)]


def test_call_soon_fifo(loop):
    got = []
    for i in range(2000):
        loop.call_soon(got.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == list(range(2000))


def test_call_soon_from_callback_runs_after_already_queued(loop):
    got = []

    def a():
        got.append("a")
        loop.call_soon(got.append, "c")
        loop.call_soon(loop.stop)

    loop.call_soon(a)
    loop.call_soon(got.append, "b")
    loop.run_forever()
    assert got == ["a", "b", "c"]


def test_call_soon_returns_handle_with_api(loop, reference):
    h = loop.call_soon(lambda: None)
    names = ["cancel", "cancelled"]
    if not reference or hasattr(h, "get_context"):
        names.append("get_context")
    for name in names:
        assert callable(getattr(h, name))
    assert h.cancelled() is False
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_handle_cancel_prevents_run(loop):
    got = []
    h1 = loop.call_soon(got.append, 1)
    h2 = loop.call_soon(got.append, 2)
    loop.call_soon(got.append, 3)
    h2.cancel()
    h2.cancel()  # idempotent
    assert h2.cancelled() is True
    assert h1.cancelled() is False
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == [1, 3]


def test_handle_cancel_from_earlier_callback_same_iteration(loop):
    got = []
    handles = {}
    loop.call_soon(lambda: handles["b"].cancel())
    handles["b"] = loop.call_soon(got.append, "b")
    loop.call_soon(got.append, "c")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == ["c"]


def test_callback_sees_context_at_schedule_time(loop):
    seen = []
    token = var.set("scheduled")
    try:
        loop.call_soon(lambda: seen.append(var.get()))
    finally:
        var.reset(token)
    var_before = var.get()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["scheduled"]
    assert var_before == "unset"


def test_callback_context_changes_do_not_leak(loop):
    def setter():
        var.set("inside")

    seen = []
    loop.call_soon(setter)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    # Each call_soon without context= gets its own copy of the context.
    assert seen == ["unset"]
    assert var.get() == "unset"


def test_call_soon_explicit_context(loop, handle_ctx):
    ctx = contextvars.copy_context()
    h = loop.call_soon(var.set, "in-ctx", context=ctx)
    assert handle_ctx(h) is ctx
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ctx[var] == "in-ctx"
    assert seen == ["in-ctx", "unset"]
    assert var.get() == "unset"


def test_default_handle_context_is_a_copy(loop, handle_ctx):
    token = var.set("x")
    try:
        h = loop.call_soon(lambda: None)
    finally:
        var.reset(token)
    ctx = handle_ctx(h)
    assert isinstance(ctx, contextvars.Context)
    assert ctx[var] == "x"
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_get_running_loop_inside_callback(loop):
    seen = []

    def cb():
        seen.append(asyncio.get_running_loop())
        seen.append(asyncio.get_event_loop())
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert seen[0] is loop and seen[1] is loop
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


# ------------------------------------------------------------ threadsafe

@pytest.mark.timeout(10)
def test_call_soon_threadsafe_wakes_idle_loop(loop):
    """The loop has nothing to do but block in the kernel; a call from
    another thread must wake it (not wait for the 5 s watchdog)."""
    ran_in = []

    def from_thread():
        time.sleep(0.1)
        loop.call_soon_threadsafe(
            lambda: (ran_in.append(threading.get_ident()), loop.stop()))

    t = threading.Thread(target=from_thread)
    watchdog = loop.call_later(5, loop.stop)
    t0 = time.monotonic()
    t.start()
    try:
        loop.run_forever()
    finally:
        t.join()
        watchdog.cancel()
    elapsed = time.monotonic() - t0
    assert ran_in == [threading.get_ident()]
    assert elapsed < 2.0, f"idle loop woke only after {elapsed:.3f}s"


@pytest.mark.timeout(10)
def test_call_soon_threadsafe_wakes_loop_blocked_on_long_timer(loop):
    got = []
    loop.call_later(30, got.append, "late")

    def from_thread():
        time.sleep(0.05)
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=from_thread)
    t0 = time.monotonic()
    t.start()
    loop.run_forever()
    t.join()
    assert time.monotonic() - t0 < 2.0
    assert got == []


@pytest.mark.timeout(20)
def test_call_soon_threadsafe_many_threads(loop):
    n_threads, per_thread = 4, 2000
    got = {i: [] for i in range(n_threads)}
    done = []
    start = threading.Barrier(n_threads)

    def worker(i):
        start.wait()
        for j in range(per_thread):
            loop.call_soon_threadsafe(got[i].append, j)
        loop.call_soon_threadsafe(done.append, i)

    def check():
        if len(done) == n_threads:
            loop.stop()
        else:
            loop.call_later(0.001, check)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    watchdog = loop.call_later(10, loop.stop)
    loop.call_soon(check)
    loop.run_forever()
    watchdog.cancel()
    for t in threads:
        t.join()
    for i in range(n_threads):
        assert got[i] == list(range(per_thread)), f"thread {i} lost or reordered calls"


def test_call_soon_threadsafe_context_and_cancel(loop):
    ctx = contextvars.Context()
    seen = []
    loop.call_soon_threadsafe(lambda: seen.append(var.get()), context=ctx)
    ctx.run(var.set, "ts")
    h = loop.call_soon_threadsafe(seen.append, "cancelled")
    h.cancel()
    assert h.cancelled()
    loop.call_soon_threadsafe(loop.stop)
    loop.run_forever()
    assert seen == ["ts"]


# A call_soon_threadsafe handle (asyncio.events._ThreadSafeHandle, Python 3.14): while
# its callback runs, cancel()/cancelled() from another thread wait for it to return;
# from the callback's own thread they do not. asyncio's loop does so from 3.14 on.
@pytest.fixture
def threadsafe_handles_wait(reference):
    if reference and sys.version_info < (3, 14):
        pytest.skip("asyncio's handles wait for a running callback from Python 3.14 on")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("call", ["cancel", "cancelled"])
def test_threadsafe_handle_other_thread_waits_for_running_callback(loop, threadsafe_handles_wait, call):
    started, finished = threading.Event(), threading.Event()
    seen = {}

    def callback():
        started.set()
        time.sleep(0.3)         # the other thread's call comes meanwhile
        finished.set()

    def other_thread():
        h = loop.call_soon_threadsafe(callback)
        started.wait(5)
        seen["result"] = getattr(h, call)()
        seen["finished_first"] = finished.is_set()
        seen["cancelled"] = h.cancelled()
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=other_thread)
    t.start()
    loop.run_forever()
    t.join(5)
    assert seen["finished_first"] is True
    assert seen["cancelled"] is (call == "cancel")
    if call == "cancelled":
        assert seen["result"] is False


@pytest.mark.timeout(10)
def test_threadsafe_handle_cancel_from_own_callback_does_not_wait(loop, threadsafe_handles_wait):
    handle = concurrent.futures.Future()
    seen = []

    def callback():
        h = handle.result(5)
        h.cancel()                      # would deadlock if it waited for itself
        seen.append(h.cancelled())
        loop.stop()

    handle.set_result(loop.call_soon_threadsafe(callback))
    loop.run_forever()
    assert seen == [True]


@pytest.mark.timeout(10)
def test_threadsafe_handle_cancelled_from_other_thread_before_running(loop):
    ran, ready = [], threading.Event()

    def other_thread():
        h = loop.call_soon_threadsafe(ran.append, "no")
        h.cancel()
        ready.set()
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(ready.wait, 5)        # the loop is busy until the cancel is done
    t = threading.Thread(target=other_thread)
    t.start()
    loop.run_forever()
    t.join(5)
    assert ran == []


@pytest.mark.timeout(10)
def test_threadsafe_handle_cancel_waits_only_for_its_own_callback(loop):
    # A thread cancelling a pending handle is not held up by another running callback
    # that waits for that very thread (a per-handle wait, not a loop-wide lock).
    out = []

    def long_callback(t):
        t.start()
        t.join(5)                      # waits for the cancelling thread
        out.append(("joined", not t.is_alive()))
        loop.stop()

    def other_thread():
        pending.cancel()
        out.append(("cancelled", pending.cancelled()))

    t = threading.Thread(target=other_thread)
    loop.call_soon_threadsafe(long_callback, t)          # runs first: FIFO
    pending = loop.call_soon_threadsafe(out.append, "must not run")
    loop.run_forever()
    assert ("cancelled", True) in out and ("joined", True) in out
    assert "must not run" not in out


@pytest.mark.timeout(10)
def test_call_soon_threadsafe_from_thread_while_loop_busy(loop):
    """Calls posted while the loop is running callbacks (not blocked) are
    not lost either."""
    got = []
    ev = threading.Event()

    def busy():
        t = threading.Thread(target=lambda: (loop.call_soon_threadsafe(got.append, 1), ev.set()))
        t.start()
        ev.wait(5)
        t.join()
        loop.call_later(0.05, loop.stop)

    loop.call_soon(busy)
    loop.run_forever()
    assert got == [1]


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_call_soon_on_closed_loop(loop, method):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        getattr(loop, method)(lambda: None)


# ------------------------------------------------------------------ repr and references

def my_named_callback(*args):
    pass


def test_handle_repr(loop):
    h = loop.call_soon(my_named_callback)
    assert "my_named_callback" in repr(h)
    t = loop.call_later(10, my_named_callback)
    assert "my_named_callback" in repr(t)
    assert "when=" in repr(t)
    h.cancel()
    t.cancel()
    assert "cancelled" in repr(h)
    assert "cancelled" in repr(t)


class Token:
    pass


def _alive_after_gc(ref):
    gc.collect()
    return ref() is not None


def test_run_callback_args_released(loop):
    tok = Token()
    ref = weakref.ref(tok)
    loop.call_soon(my_named_callback, tok)
    loop.call_later(0.001, my_named_callback, tok)
    del tok
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert not _alive_after_gc(ref), "loop keeps a callback argument alive after running it"


def test_cancel_releases_args_even_if_handle_kept(loop):
    tok1, tok2 = Token(), Token()
    r1, r2 = weakref.ref(tok1), weakref.ref(tok2)
    h1 = loop.call_soon(my_named_callback, tok1)
    h2 = loop.call_later(3600, my_named_callback, tok2)
    del tok1, tok2
    h1.cancel()
    h2.cancel()
    assert not _alive_after_gc(r1), "cancelled Handle keeps its arguments"
    assert not _alive_after_gc(r2), "cancelled TimerHandle keeps its arguments"
    assert h1.cancelled() and h2.cancelled()


def test_close_releases_pending_callbacks(loop):
    tok1, tok2 = Token(), Token()
    r1, r2 = weakref.ref(tok1), weakref.ref(tok2)
    loop.call_soon(my_named_callback, tok1)
    loop.call_later(3600, my_named_callback, tok2)
    del tok1, tok2
    loop.close()
    assert not _alive_after_gc(r1)
    assert not _alive_after_gc(r2)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("busy", [False, True])
def test_call_soon_threadsafe_ping_pong_no_lost_wakeup(loop, busy):
    """A thread and the loop hand a token back and forth; the loop has no
    timers to fall back on, so a single lost wake-up stalls it until the
    watchdog fires.  With busy=True the loop also does a little work per
    iteration, so posts race with non-blocking passes too."""
    import queue
    n = 3000
    to_thread = queue.SimpleQueue()
    seen = []

    def on_loop(i):
        seen.append(i)
        if busy and i % 3 == 0:
            loop.call_soon(lambda: None)
        if i == n:
            to_thread.put(None)
            loop.stop()
        else:
            to_thread.put(i + 1)

    def thread_main():
        while True:
            i = to_thread.get()
            if i is None:
                return
            loop.call_soon_threadsafe(on_loop, i)

    t = threading.Thread(target=thread_main)
    to_thread.put(0)
    t.start()
    watchdog = loop.call_later(20, loop.stop)
    t0 = time.monotonic()
    loop.run_forever()
    elapsed = time.monotonic() - t0
    watchdog.cancel()
    to_thread.put(None)
    t.join(5)
    assert seen == list(range(n + 1)), f"stalled after {len(seen)} round trips"
    assert elapsed < 15


# Queued handles and the garbage collector. ringloop keeps timers, and callbacks
# queued behind more than 4096 others, out of the collector's lists (with the
# contexts copied for them) until they leave the queue; these check that nothing
# queued is collected, that a handle that left the queue can be part of a
# collectable cycle again, and that freeing them is safe.

QUEUE_DEPTH = 5000      # deeper than the Handle freelist: the rest are parked


def _schedule_behind_full_queue(loop, schedule, obj, delay):
    # obj.handle: obj.method scheduled with `schedule`, queued behind QUEUE_DEPTH others.
    for _ in range(QUEUE_DEPTH):
        loop.call_soon(int)
    if schedule == "call_later":
        obj.handle = loop.call_later(delay, obj.method)
    else:
        obj.handle = getattr(loop, schedule)(obj.method)

class _Owner:
    # obj.handle -> handle -> bound method -> obj: a cycle only the collector frees.
    def __init__(self, log):
        self.log = log

    def method(self):
        self.log.append("ran")


def _collected(ref):
    for _ in range(3):
        gc.collect()
    return ref() is None


def test_queued_callbacks_survive_collection(loop):
    log = []
    for _ in range(QUEUE_DEPTH):
        loop.call_soon(_Owner(log).method)
    loop.call_later(0, _Owner(log).method)
    gc.collect()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert log == ["ran"] * (QUEUE_DEPTH + 1)


@pytest.mark.parametrize("schedule", ["call_soon", "call_soon_threadsafe", "call_later"])
def test_handle_cycle_collectable_after_run(loop, schedule):
    log = []
    obj = _Owner(log)
    _schedule_behind_full_queue(loop, schedule, obj, 0)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert log == ["ran"]
    ref = weakref.ref(obj)
    del obj
    assert _collected(ref)


@pytest.mark.parametrize("schedule", ["call_soon", "call_later"])
def test_handle_cycle_collectable_after_close(loop, schedule, handle_ctx):
    # Never ran: the loop's close() drops the queue and the timer heap.
    log = []
    obj = _Owner(log)
    _schedule_behind_full_queue(loop, schedule, obj, 3600)
    ctx = handle_ctx(obj.handle)
    loop.close()
    assert log == []
    ref = weakref.ref(obj)
    del obj
    assert _collected(ref)
    assert ctx.run(lambda: 1) == 1      # the copied context outlives the handle intact


def test_cancelled_timers_dropped_then_collectable(loop, handle_ctx):
    # Many cancelled timers: the loop drops them from its heap in bulk.
    objs = [_Owner([]) for _ in range(2000)]
    for obj in objs:
        obj.handle = loop.call_later(3600, obj.method)
        obj.handle.cancel()
        obj.keep = handle_ctx(obj.handle)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    refs = [weakref.ref(obj) for obj in objs]
    del objs, obj
    gc.collect()
    assert all(r() is None for r in refs)
