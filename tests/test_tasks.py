"""create_future, create_task, task factories, eager tasks."""
import asyncio
import contextvars
import inspect
import sys

import pytest

var = contextvars.ContextVar("var", default="unset")


def test_create_future(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, "r")
    assert loop.run_until_complete(fut) == "r"


def test_future_callbacks_scheduled_on_loop(loop):
    fut = loop.create_future()
    got = []
    fut.add_done_callback(lambda f: got.append((f.result(), asyncio.get_running_loop())))
    fut.set_result(3)
    assert got == []  # done callbacks are scheduled, not called synchronously
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == [(3, loop)]


def test_create_task(loop):
    async def coro():
        return asyncio.current_task()

    task = loop.create_task(coro())
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert not task.done()  # first step is scheduled, not run synchronously
    assert loop.run_until_complete(task) is task
    assert task.get_name().startswith("Task-")


def test_create_task_name(loop):
    async def coro():
        return asyncio.current_task().get_name()

    task = loop.create_task(coro(), name="my-task")
    assert task.get_name() == "my-task"
    assert loop.run_until_complete(task) == "my-task"


def test_create_task_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task-ctx")

    async def coro():
        seen = var.get()
        var.set("changed")
        return seen

    task = loop.create_task(coro(), context=ctx)
    assert loop.run_until_complete(task) == "task-ctx"
    assert ctx[var] == "changed"
    assert var.get() == "unset"


def test_create_task_not_a_coroutine(loop):
    with pytest.raises(TypeError):
        loop.create_task(lambda: None)


def test_task_cancel(loop):
    started = []

    async def sleeper():
        started.append(1)
        await asyncio.sleep(10)

    task = loop.create_task(sleeper())
    loop.call_later(0.01, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert started == [1] and task.cancelled()


def test_all_tasks_and_gather(loop):
    async def child(i):
        await asyncio.sleep(0.001 * i)
        return i

    async def main():
        tasks = [asyncio.create_task(child(i)) for i in range(5)]
        assert set(tasks) <= asyncio.all_tasks()
        return await asyncio.gather(*tasks)

    assert loop.run_until_complete(main()) == [0, 1, 2, 3, 4]


def test_wait_for_timeout(loop):
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 0.02)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"


# ------------------------------------------------------------------ task factory

def test_task_factory(loop):
    calls = []

    def factory(lp, coro, **kwargs):
        calls.append((lp, kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def coro():
        return 5

    task = loop.create_task(coro(), name="factory-made")
    assert calls and calls[0][0] is loop
    assert task.get_name() == "factory-made"
    assert loop.run_until_complete(task) == 5

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    n = len(calls)
    loop.run_until_complete(loop.create_task(coro()))
    assert len(calls) == n


def test_task_factory_used_by_run_until_complete(loop):
    made = []

    def factory(lp, coro, **kwargs):
        t = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(t)
        return t

    loop.set_task_factory(factory)

    async def main():
        return 1

    assert loop.run_until_complete(main()) == 1
    assert len(made) == 1


@pytest.mark.parametrize("bad", [1, "factory", object()])
def test_task_factory_not_callable(loop, bad):
    with pytest.raises(TypeError):
        loop.set_task_factory(bad)
    assert loop.get_task_factory() is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is 3.12+")
def test_eager_task_factory(loop):
    order = []

    async def no_suspend():
        order.append("ran")
        return "eager"

    async def suspends():
        order.append("started")
        await asyncio.sleep(0)
        order.append("resumed")
        return "later"

    async def main():
        t1 = loop.create_task(no_suspend())
        order.append("after-create-1")
        assert t1.done() and t1.result() == "eager"
        t2 = loop.create_task(suspends())
        order.append("after-create-2")
        assert not t2.done()
        return await t2

    loop.set_task_factory(asyncio.eager_task_factory)
    assert loop.run_until_complete(main()) == "later"
    assert order == ["ran", "after-create-1", "started", "after-create-2", "resumed"]


@pytest.mark.skipif("eager_start" not in inspect.signature(asyncio.Task).parameters,
                    reason="asyncio.Task has no eager_start on this Python")
def test_task_eager_start(loop):
    order = []

    async def child():
        order.append("child")
        assert asyncio.current_task() is not None
        return 1

    async def main():
        t = asyncio.Task(child(), loop=loop, eager_start=True)
        order.append("after")
        assert t.done()
        return t.result()

    assert loop.run_until_complete(main()) == 1
    assert order == ["child", "after"]


def test_task_exception_never_retrieved_reported(loop):
    import gc
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ZeroDivisionError

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert task.done()
    del task
    gc.collect()
    assert any(c.get("message") == "Task exception was never retrieved" and
               isinstance(c.get("exception"), ZeroDivisionError)
               for c in contexts), contexts
