"""run_in_executor, set_default_executor, shutdown_default_executor."""
import asyncio
import concurrent.futures
import threading
import time

import pytest


@pytest.mark.timeout(10)
def test_run_in_default_executor(loop, run):
    main_thread = threading.get_ident()

    def work(a, b):
        time.sleep(0.05)  # the loop idles meanwhile; the result must wake it
        return a + b, threading.get_ident()

    async def main():
        fut = loop.run_in_executor(None, work, 2, 3)
        assert isinstance(fut, asyncio.Future)
        return await fut

    result, tid = run(main())
    assert result == 5
    assert tid != main_thread


@pytest.mark.timeout(10)
def test_run_in_custom_executor(loop, run):
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="custom-exec") as ex:
        async def main():
            return await loop.run_in_executor(ex, lambda: threading.current_thread().name)

        assert run(main()).startswith("custom-exec")


@pytest.mark.timeout(10)
def test_run_in_executor_exception(loop, run):
    def fail():
        raise KeyError("from thread")

    async def main():
        with pytest.raises(KeyError):
            await loop.run_in_executor(None, fail)
        return "ok"

    assert run(main()) == "ok"


@pytest.mark.timeout(10)
def test_run_in_executor_many(loop, run):
    async def main():
        futs = [loop.run_in_executor(None, pow, i, 2) for i in range(100)]
        return await asyncio.gather(*futs)

    assert run(main()) == [i * i for i in range(100)]


@pytest.mark.timeout(10)
def test_to_thread(loop, run):
    async def main():
        return await asyncio.to_thread(lambda: threading.get_ident())

    assert run(main()) != threading.get_ident()


def test_set_default_executor(loop, run):
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="my-default") as ex:
        loop.set_default_executor(ex)

        async def main():
            return await loop.run_in_executor(None, lambda: threading.current_thread().name)

        assert run(main()).startswith("my-default")


@pytest.mark.parametrize("bad", [None, object(), "executor"])
def test_set_default_executor_type_error(loop, bad):
    with pytest.raises(TypeError):
        loop.set_default_executor(bad)


def test_set_default_executor_requires_thread_pool(loop):
    class NotAThreadPool(concurrent.futures.Executor):
        def submit(self, fn, /, *args, **kwargs):
            raise AssertionError("must not be used")

    with pytest.raises(TypeError):
        loop.set_default_executor(NotAThreadPool())


@pytest.mark.timeout(10)
def test_shutdown_default_executor_waits_for_work(loop, run):
    finished = []

    def slow():
        time.sleep(0.1)
        finished.append(True)

    async def main():
        loop.run_in_executor(None, slow)
        await asyncio.sleep(0.01)
        await loop.shutdown_default_executor()
        return list(finished)

    assert run(main()) == [True]


@pytest.mark.timeout(10)
def test_run_in_default_executor_after_shutdown(loop, run):
    async def main():
        await loop.run_in_executor(None, lambda: None)
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
            loop.run_in_executor(None, lambda: None)
        # an explicit executor still works
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
            return await loop.run_in_executor(ex, lambda: "explicit")

    assert run(main()) == "explicit"


@pytest.mark.timeout(10)
def test_shutdown_default_executor_without_executor(loop, run):
    async def main():
        await loop.shutdown_default_executor()
        return "ok"

    assert run(main()) == "ok"


def test_close_shuts_down_default_executor(loop):
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(ex)
    loop.close()
    with pytest.raises(RuntimeError):
        ex.submit(lambda: None)
    ex.shutdown(wait=True)


def test_run_in_executor_on_closed_loop(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_in_executor(None, lambda: None)


def test_run_in_executor_debug_rejects_coroutine_function(loop):
    loop.set_debug(True)

    async def coro_fn():
        pass

    with pytest.raises(TypeError):
        loop.run_in_executor(None, coro_fn)
