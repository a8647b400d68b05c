"""Debug mode: get/set_debug, PYTHONASYNCIODEBUG, slow callbacks, thread checks."""
import logging
import re
import threading
import time

import pytest

THREAD_MSG = "Non-thread-safe operation invoked on an event loop other than the current one"


def test_debug_default_off_and_settable(loop):
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_duration_attribute(loop):
    assert loop.slow_callback_duration == pytest.approx(0.1)
    loop.slow_callback_duration = 0.25
    assert loop.slow_callback_duration == 0.25


@pytest.mark.timeout(30)
@pytest.mark.parametrize("env, expected", [({"PYTHONASYNCIODEBUG": "1"}, True), ({}, False)])
def test_pythonasynciodebug_env(py, loop_src, env, expected):
    code = loop_src.imports + f"""
loop = {loop_src.expr}
print("DEBUG", loop.get_debug())
async def main():
    return asyncio.get_running_loop().get_debug()
print("RUNNING", loop.run_until_complete(main()))
loop.close()
"""
    r = py.run(code, env=env)
    assert r.returncode == 0, r.stderr
    assert f"DEBUG {expected}" in r.stdout
    assert f"RUNNING {expected}" in r.stdout


@pytest.mark.timeout(30)
def test_dev_mode_enables_debug(py, loop_src):
    code = loop_src.imports + f"""
loop = {loop_src.expr}
print("DEBUG", loop.get_debug())
loop.close()
"""
    r = py.run(code, env={"PYTHONDEVMODE": "1"})
    assert r.returncode == 0, r.stderr
    assert "DEBUG True" in r.stdout


def test_slow_callback_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow():
        time.sleep(0.05)

    def fast():
        pass

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(fast)
        loop.call_soon(slow)
        loop.call_soon(loop.stop)
        loop.run_forever()
    msgs = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.levelno == logging.WARNING]
    slow_msgs = [m for m in msgs if re.search(r"Executing .* took \d+\.\d+ seconds", m)]
    assert len(slow_msgs) == 1, msgs
    assert "slow" in slow_msgs[0]


def test_no_slow_callback_warning_without_debug(loop, caplog):
    loop.slow_callback_duration = 0.01
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(time.sleep, 0.03)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert not [r for r in caplog.records if "Executing" in r.getMessage()]


@pytest.mark.timeout(10)
def test_call_soon_from_other_thread_in_debug_mode(loop):
    loop.set_debug(True)
    errors = []

    def other_thread():
        for call in (lambda: loop.call_soon(print),
                     lambda: loop.call_later(1, print),
                     lambda: loop.call_at(loop.time() + 1, print)):
            try:
                call()
            except RuntimeError as e:
                errors.append(str(e))
            else:
                errors.append("no error")
        # the thread-safe variant is fine
        loop.call_soon_threadsafe(loop.stop)

    def start_thread():
        t = threading.Thread(target=other_thread)
        t.start()
        threads.append(t)

    threads = []
    loop.call_soon(start_thread)
    watchdog = loop.call_later(5, loop.stop)
    loop.run_forever()
    watchdog.cancel()
    threads[0].join()
    assert errors == [THREAD_MSG] * 3


def test_call_soon_from_other_thread_when_loop_not_running(loop):
    """Without a running loop there is no owning thread to check against."""
    loop.set_debug(True)
    errors = []

    def other():
        try:
            loop.call_soon(lambda: None)
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors == []
    loop.call_soon(loop.stop)
    loop.run_forever()


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_debug_rejects_non_callable_and_coroutines(loop, method):
    loop.set_debug(True)
    args = {"call_soon": (), "call_later": (1,), "call_at": (1,)}[method]
    fn = getattr(loop, method)
    with pytest.raises(TypeError, match="callable"):
        fn(*args, 42)

    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used with"):
        fn(*args, coro_fn)
    coro = coro_fn()
    with pytest.raises(TypeError, match="coroutines cannot be used with"):
        fn(*args, coro)
    coro.close()


def test_debug_mode_reports_slow_task_step(loop, caplog):
    """A task step that blocks is reported too (it runs as a loop callback)."""
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    async def blocking():
        time.sleep(0.03)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(blocking())
    assert any(re.search(r"Executing .* took \d+\.\d+ seconds", r.getMessage())
               for r in caplog.records if r.name == "asyncio")
