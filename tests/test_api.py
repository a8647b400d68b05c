"""Public API of the ringloop package and loop.stats()."""
import asyncio
import re
import sys
import threading
import time
import warnings

import pytest

pytestmark = pytest.mark.ringloop_only("ringloop package API")

STATS_KEYS = ("iterations", "callbacks", "timers_scheduled", "timers_fired",
              "timers_cancelled", "io_waits", "io_events", "wait_ns", "run_ns",
              "threadsafe_wakeups")


@pytest.fixture
def rl():
    import ringloop
    return ringloop


def test_version(rl):
    from importlib import metadata
    assert isinstance(rl.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", rl.__version__)
    try:
        assert metadata.version("ringloop") == rl.__version__
    except metadata.PackageNotFoundError:
        pass


def test_public_names(rl):
    for name in ("run", "new_event_loop", "Loop", "install", "backend_info", "__version__"):
        assert hasattr(rl, name), name
    # Where asyncio's policies are deprecated, ringloop's policy is left out of `import *`.
    assert ("EventLoopPolicy" in rl.__all__) == (sys.version_info < (3, 14))


def _policy_api(rl, what):
    """ringloop.EventLoopPolicy / ringloop.install(), with the DeprecationWarning that
    asyncio's policy API gives from Python 3.14 on (and none before)."""
    def get():
        return rl.EventLoopPolicy if what == "class" else rl.install()
    if sys.version_info < (3, 14):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            return get()
    with pytest.warns(DeprecationWarning, match="slated for removal in Python 3.16") as rec:
        got = get()
    assert [w.filename for w in rec] == [__file__]      # points at the caller
    return got


def test_event_loop_policy(rl):
    cls = _policy_api(rl, "class")
    policy = cls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # asyncio's own name warns
        assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    lp = policy.new_event_loop()
    try:
        assert isinstance(lp, rl.Loop)
    finally:
        lp.close()


def test_install(rl):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
        cls = rl.EventLoopPolicy
    try:
        _policy_api(rl, "install")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert isinstance(asyncio.get_event_loop_policy(), cls)
        lp = asyncio.new_event_loop()
        try:
            assert isinstance(lp, rl.Loop)
        finally:
            lp.close()

        async def main():
            return type(asyncio.get_running_loop())

        assert asyncio.run(main()) is rl.Loop
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(old)
    lp = asyncio.new_event_loop()
    try:
        assert not isinstance(lp, rl.Loop)
    finally:
        lp.close()


# ------------------------------------------------------------------ run()

@pytest.mark.timeout(10)
def test_run_returns_result_on_ringloop(rl):
    async def main(x):
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop()), x

    loop_type, x = rl.run(main(5))
    assert loop_type is rl.Loop and x == 5


@pytest.mark.timeout(10)
@pytest.mark.parametrize("backend", ["io_uring", "epoll"])
def test_run_backend_and_debug(rl, backend):
    async def main():
        lp = asyncio.get_running_loop()
        return lp.backend_name, lp.get_debug()

    assert rl.run(main(), backend=backend) == (backend, False)
    assert rl.run(main(), backend=backend, debug=True) == (backend, True)


@pytest.mark.timeout(10)
def test_run_closes_loop_and_cancels_leftovers(rl):
    state = {}

    async def background():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            state["bg"] = "cancelled"
            raise

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            state["agen"] = "closed"

    async def main():
        state["loop"] = asyncio.get_running_loop()
        asyncio.get_running_loop().create_task(background())
        g = agen()
        state["g"] = g
        await g.__anext__()
        await asyncio.sleep(0)

    rl.run(main())
    assert state["bg"] == "cancelled"
    assert state["agen"] == "closed"
    assert state["loop"].is_closed()


def test_run_raises_main_exception(rl):
    async def main():
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        rl.run(main())


def test_run_rejects_non_coroutine(rl):
    with pytest.raises((ValueError, TypeError)):
        rl.run(lambda: None)


def test_run_inside_running_loop(rl, loop):
    async def inner():
        return 1

    async def outer():
        coro = inner()
        try:
            with pytest.raises(RuntimeError):
                rl.run(coro)
        finally:
            coro.close()

    loop.run_until_complete(outer())


@pytest.mark.timeout(10)
def test_asyncio_runner_with_loop_factory(rl):
    async def main():
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=rl.new_event_loop) as runner:
        assert runner.run(main()) is rl.Loop


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_loop_factory(rl):
    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=rl.new_event_loop) is rl.Loop


# ------------------------------------------------------------------ stats()

def test_stats_keys(loop):
    stats = loop.stats()
    assert isinstance(stats, dict)
    for key in STATS_KEYS:
        assert key in stats, key
        assert isinstance(stats[key], int) and stats[key] >= 0, (key, stats[key])
    # a snapshot, not a live view
    stats["callbacks"] = -1
    assert loop.stats()["callbacks"] >= 0


def test_stats_callbacks_and_iterations(loop):
    s0 = loop.stats()
    for _ in range(10):
        loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    s1 = loop.stats()
    assert s1["callbacks"] - s0["callbacks"] >= 11
    assert s1["iterations"] > s0["iterations"]
    assert s1["run_ns"] > s0["run_ns"]


def test_stats_timers(loop):
    s0 = loop.stats()
    loop.call_later(0.001, lambda: None)
    loop.call_later(0.002, lambda: None)
    loop.call_later(10, lambda: None).cancel()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    s1 = loop.stats()
    assert s1["timers_scheduled"] - s0["timers_scheduled"] == 4
    assert s1["timers_cancelled"] - s0["timers_cancelled"] == 1
    assert s1["timers_fired"] - s0["timers_fired"] == 3


@pytest.mark.timeout(10)
def test_stats_wait(loop):
    s0 = loop.stats()
    loop.run_until_complete(asyncio.sleep(0.05))
    s1 = loop.stats()
    assert s1["io_waits"] > s0["io_waits"]
    assert s1["wait_ns"] - s0["wait_ns"] >= 40_000_000
    assert s1["iterations"] > s0["iterations"]


@pytest.mark.timeout(10)
def test_stats_io_events(loop):
    import socket
    a, b = socket.socketpair()
    try:
        s0 = loop.stats()
        loop.add_reader(a, lambda: (a.recv(10), loop.stop()))
        b.send(b"x")
        w = loop.call_later(5, loop.stop)
        loop.run_forever()
        w.cancel()
        loop.remove_reader(a)
        s1 = loop.stats()
        assert s1["io_events"] > s0["io_events"]
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(10)
def test_stats_threadsafe_wakeups(loop):
    s0 = loop.stats()

    def poke():
        time.sleep(0.05)
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=poke)
    t.start()
    w = loop.call_later(5, loop.stop)
    loop.run_forever()
    w.cancel()
    t.join()
    assert loop.stats()["threadsafe_wakeups"] > s0["threadsafe_wakeups"]
