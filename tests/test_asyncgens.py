"""Async generator hooks and shutdown_asyncgens."""
import asyncio
import gc
import sys

import pytest


def make_agen(log, name="agen"):
    async def agen():
        try:
            for i in range(100):
                yield i
                await asyncio.sleep(0)
        finally:
            log.append(f"{name} finally")
    return agen()


def test_shutdown_asyncgens_runs_finally(loop, run):
    log = []
    holder = []

    async def main():
        g = make_agen(log)
        holder.append(g)  # keep it alive: only shutdown_asyncgens may close it
        assert await g.__anext__() == 0
        assert await g.__anext__() == 1

    run(main())
    assert log == []
    run(loop.shutdown_asyncgens())
    assert log == ["agen finally"]


def test_shutdown_asyncgens_several(loop, run):
    log = []
    holder = []

    async def main():
        for n in ("a", "b", "c"):
            g = make_agen(log, n)
            holder.append(g)
            await g.__anext__()

    run(main())
    run(loop.shutdown_asyncgens())
    assert sorted(log) == ["a finally", "b finally", "c finally"]


def test_shutdown_asyncgens_ignores_finished(loop, run):
    log = []

    async def main():
        g = make_agen(log)
        async for i in g:
            if i == 2:
                break
        await g.aclose()

    run(main())
    assert log == ["agen finally"]
    run(loop.shutdown_asyncgens())
    assert log == ["agen finally"]


def test_shutdown_asyncgens_error_goes_to_exception_handler(loop, run):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    holder = []

    async def bad_agen():
        try:
            yield 1
        finally:
            raise ValueError("in finally")

    async def main():
        g = bad_agen()
        holder.append(g)
        await g.__anext__()

    run(main())
    run(loop.shutdown_asyncgens())
    assert len(contexts) == 1
    ctx = contexts[0]
    assert "an error occurred during closing of asynchronous generator" in ctx["message"]
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["asyncgen"] is holder[0]


def test_garbage_collected_asyncgen_is_finalized_on_loop(loop, run):
    log = []

    async def main():
        g = make_agen(log)
        await g.__anext__()
        del g
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)
        return list(log)

    assert run(main()) == ["agen finally"]


def test_asyncgen_finalizer_runs_in_loop_thread_as_task(loop, run):
    seen = []

    async def agen():
        try:
            yield 1
        finally:
            seen.append((asyncio.get_running_loop(), asyncio.current_task() is not None))

    async def main():
        g = agen()
        await g.__anext__()
        del g
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)

    run(main())
    assert seen == [(loop, True)]


def test_asyncgen_hooks_installed_only_while_running(loop):
    before = sys.get_asyncgen_hooks()
    inside = []

    def cb():
        inside.append(sys.get_asyncgen_hooks())
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert inside[0].firstiter is not None and inside[0].finalizer is not None
    assert inside[0] != before
    assert sys.get_asyncgen_hooks() == before


def test_asyncgen_after_shutdown_warns(loop, run):
    run(loop.shutdown_asyncgens())
    log = []

    async def main():
        g = make_agen(log)
        with pytest.warns(ResourceWarning, match="shutdown_asyncgens"):
            await g.__anext__()
        await g.aclose()

    run(main())
    assert log == ["agen finally"]
