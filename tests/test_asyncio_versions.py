"""What newer asyncio releases do on top of a loop, on ringloop: eager tasks, the task
registry (asyncio.all_tasks from another thread), asyncio.capture_call_graph, task
factories that get the task's name (3.14), and the pure-Python implementations that
code may swap in (asyncio.tasks._PyTask, events._py__set_running_loop)."""
import asyncio
import io
import subprocess
import sys
import textwrap
import threading

import pytest

PY312 = sys.version_info >= (3, 12)
PY314 = sys.version_info >= (3, 14)


@pytest.fixture
def swap_in(monkeypatch):
    """swap_in(module, name, value): replace a module attribute for the test."""
    def swap(module, name, value):
        monkeypatch.setattr(module, name, value)
    return swap


def _use_pure_python_tasks(swap_in):
    # asyncio's pure-Python tasks and futures, swapped in together as CPython's tests
    # do (Task, Future, current_task, all_tasks).
    t = asyncio.tasks
    for name, py_name in (("Task", "_PyTask"), ("current_task", "_py_current_task"),
                          ("all_tasks", "_py_all_tasks")):
        value = getattr(t, py_name, None)
        if value is None:       # 3.11: current_task and all_tasks are Python only
            continue
        swap_in(t, name, value)
        swap_in(asyncio, name, value)
    swap_in(asyncio.futures, "Future", asyncio.futures._PyFuture)
    swap_in(asyncio, "Future", asyncio.futures._PyFuture)


@pytest.fixture(params=["C", "Python"])
def impl(request, swap_in):
    """asyncio's C tasks and futures, or its pure-Python ones."""
    if request.param == "Python":
        _use_pure_python_tasks(swap_in)
    return request.param


@pytest.mark.skipif(not PY312, reason="asyncio.eager_task_factory is 3.12+")
def test_eager_task_runs_its_first_step_in_create_task(loop, run):
    steps = []

    async def child():
        steps.append("child starts")
        await asyncio.sleep(0)
        steps.append("child ends")
        return 7

    async def main():
        loop.set_task_factory(asyncio.eager_task_factory)
        t = loop.create_task(child())
        steps.append("after create_task")
        assert await t == 7
        loop.set_task_factory(None)

    run(main())
    assert steps == ["child starts", "after create_task", "child ends"]


@pytest.mark.skipif(not PY314, reason="the task factory gets name= from Python 3.14 on")
def test_eager_task_has_its_name_during_its_first_step(loop, run):
    seen = []

    async def child():
        seen.append(asyncio.current_task().get_name())

    async def main():
        loop.set_task_factory(asyncio.eager_task_factory)
        try:
            await loop.create_task(child(), name="example name")
            async with asyncio.TaskGroup() as tg:
                tg.create_task(child(), name="in a group")
        finally:
            loop.set_task_factory(None)

    run(main())
    assert seen == ["example name", "in a group"]


@pytest.mark.timeout(20)
def test_all_tasks_from_another_thread(loop):
    # asyncio.all_tasks(loop), called from another thread, sees the loop's pending tasks,
    # eager ones included, with asyncio's C or pure-Python task implementation.
    task_cls = asyncio.tasks.Task

    async def forever():
        await asyncio.Event().wait()

    async def setup():
        tasks = [loop.create_task(forever(), name="NORMAL")]
        if PY312:
            loop.set_task_factory(
                lambda lp, coro, **kw: task_cls(coro, loop=lp, eager_start=True, **kw))
            tasks.append(loop.create_task(forever(), name="EAGER"))
            loop.set_task_factory(None)
        return tasks

    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        held = asyncio.run_coroutine_threadsafe(setup(), loop).result(10)
        assert all(type(t) is task_cls for t in held)
        names = {t.get_name() for t in asyncio.all_tasks(loop)}
        assert names == ({"NORMAL", "EAGER"} if PY312 else {"NORMAL"})
    finally:
        async def teardown():
            for t in held:
                t.cancel()
            await asyncio.gather(*held, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(teardown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_create_future_and_task_follow_asyncio_classes(loop, impl):
    # The classes asyncio.futures.Future / asyncio.tasks.Task name at the time of the
    # call, as asyncio's own loop does.

    fut = loop.create_future()
    task = loop.create_task(asyncio.sleep(0))
    loop.run_until_complete(task)
    assert (type(fut), type(task)) == (asyncio.futures.Future, asyncio.tasks.Task)
    fut.cancel()


def test_running_loop_functions_swapped_for_pure_python(loop, run, swap_in):
    # asyncio.events has C and pure-Python running-loop functions, with separate state
    # from 3.14 on; whichever asyncio.events names is the one the loop must use.
    _use_pure_python_tasks(swap_in)     # the C ones read the C state
    ev = asyncio.events
    swap_in(ev, "_get_running_loop", ev._py__get_running_loop)
    swap_in(ev, "_set_running_loop", ev._py__set_running_loop)
    swap_in(ev, "get_running_loop", ev._py_get_running_loop)
    swap_in(asyncio, "get_running_loop", ev._py_get_running_loop)

    async def main():
        return asyncio.get_running_loop()

    assert run(main()) is loop
    assert ev._py__get_running_loop() is None


@pytest.mark.skipif(not PY314, reason="asyncio.capture_call_graph is 3.14+")
def test_capture_call_graph(loop, run):
    graphs = []

    async def leaf():
        graphs.append(asyncio.capture_call_graph())
        buf = io.StringIO()
        asyncio.print_call_graph(file=buf)
        graphs.append(buf.getvalue())

    async def middle():
        await leaf()

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(middle(), name="worker")
        return asyncio.current_task()

    main_task = run(main())
    graph, text = graphs
    assert type(graph.future) is asyncio.tasks.Task
    assert graph.future.get_name() == "worker"
    names = [f.frame.f_code.co_name for f in graph.call_stack]
    assert names[:2] == ["leaf", "middle"]
    # The worker is awaited by the task that runs main() (through its TaskGroup).
    assert [a.future for a in graph.awaited_by] == [main_task]
    assert "worker" in text and "leaf" in text and "middle" in text


PS_SCRIPT = textwrap.dedent("""
    import asyncio, os, sys, ringloop

    async def sleeper():
        await asyncio.sleep(60)

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper(), name="ringloop-sleeper")
            await asyncio.sleep(0)
            print(os.getpid(), type(asyncio.get_running_loop()).__module__, flush=True)
            sys.stdin.readline()
            raise SystemExit(0)

    ringloop.run(main())
""")


@pytest.mark.skipif(not PY314, reason="python -m asyncio ps/pstree is 3.14+")
@pytest.mark.timeout(60)
@pytest.mark.ringloop_only("a ringloop program seen by python -m asyncio ps")
@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_python_m_asyncio_ps_sees_ringloop_tasks(command):
    proc = subprocess.Popen([sys.executable, "-c", PS_SCRIPT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        pid, module = proc.stdout.readline().split()
        assert module.startswith("ringloop")
        r = subprocess.run([sys.executable, "-m", "asyncio", command, pid],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 and ("Permission" in r.stderr or "ptrace" in r.stderr.lower()):
            pytest.skip(f"this machine forbids reading another process's memory: {r.stderr.strip()}")
        assert r.returncode == 0, r.stderr
        assert "ringloop-sleeper" in r.stdout
        assert "sleeper" in r.stdout
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()
