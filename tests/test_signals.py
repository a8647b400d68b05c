"""add_signal_handler / remove_signal_handler, SIGINT behaviour."""
import asyncio
import os
import signal
import threading
import time

import pytest


@pytest.fixture(autouse=True)
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(wakeup)


@pytest.mark.timeout(10)
def test_signal_handler_runs_in_loop(loop):
    seen = []

    def handler(arg):
        seen.append((arg, threading.get_ident(), asyncio.get_running_loop()))
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler, "arg")
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    w = loop.call_later(5, loop.stop)
    loop.run_forever()
    w.cancel()
    assert seen == [("arg", threading.get_ident(), loop)]
    assert loop.remove_signal_handler(signal.SIGUSR1) is True


@pytest.mark.timeout(10)
def test_signal_wakes_idle_loop(loop):
    """The signal arrives while the loop blocks in the kernel with nothing
    else to do."""
    seen = []
    loop.add_signal_handler(signal.SIGUSR1, lambda: (seen.append(1), loop.stop()))

    def sender():
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGUSR1)

    t = threading.Thread(target=sender)
    w = loop.call_later(5, loop.stop)
    t0 = time.monotonic()
    t.start()
    loop.run_forever()
    t.join()
    w.cancel()
    assert seen == [1]
    assert time.monotonic() - t0 < 2.0
    loop.remove_signal_handler(signal.SIGUSR1)


@pytest.mark.timeout(10)
def test_signal_handler_repeated(loop):
    count = []
    loop.add_signal_handler(signal.SIGUSR1, count.append, 1)

    async def main():
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(20):
                await asyncio.sleep(0.005)
        return len(count)

    assert loop.run_until_complete(main()) == 3
    loop.remove_signal_handler(signal.SIGUSR1)


@pytest.mark.timeout(10)
def test_replacing_signal_handler(loop):
    seen = []
    loop.add_signal_handler(signal.SIGUSR1, seen.append, "old")
    loop.add_signal_handler(signal.SIGUSR1, lambda: (seen.append("new"), loop.stop()))
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    w = loop.call_later(5, loop.stop)
    loop.run_forever()
    w.cancel()
    assert seen == ["new"]
    loop.remove_signal_handler(signal.SIGUSR1)


def test_signal_handler_coroutine_rejected(loop):
    async def coro_fn():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro_fn)
    coro = coro_fn()
    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    coro.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@pytest.mark.parametrize("sig", [0, -1, 1000, signal.NSIG])
def test_invalid_signal_number(loop, sig):
    with pytest.raises(ValueError):
        loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(ValueError):
        loop.remove_signal_handler(sig)


@pytest.mark.parametrize("sig", ["SIGUSR1", 1.5, None])
def test_signal_not_an_int(loop, sig):
    with pytest.raises(TypeError):
        loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(TypeError):
        loop.remove_signal_handler(sig)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signal(loop, sig):
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(sig, lambda: None)
    assert loop.remove_signal_handler(sig) is False


def test_add_signal_handler_off_main_thread(loop):
    errors = []

    def other():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except RuntimeError as e:
            errors.append(e)
        except BaseException as e:  # wrong type: report it
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and type(errors[0]) is RuntimeError, errors
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_remove_signal_handler_restores_default(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_sigint_handler_restores_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_close_removes_signal_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGUSR2, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


def test_add_signal_handler_on_closed_loop(loop):
    loop.close()
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


# ------------------------------------------------------------------ SIGINT (subprocesses)

# A child started from a non-interactive shell's background job may inherit
# SIGINT as ignored; a real program run from a terminal has Python's default.
SIGINT_DEFAULT = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"

def _wait_ready(proc):
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"child did not get ready: {line!r} {out!r} {err!r}")


def _finish(proc, timeout=10):
    try:
        out, err = proc.communicate(timeout=timeout)
    except Exception:
        proc.kill()
        proc.communicate()
        raise
    return out, err


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["run_forever", "run_until_complete"])
def test_sigint_while_idle_raises_keyboardinterrupt(py, loop_src, how):
    call = {"run_forever": "loop.run_forever()",
            "run_until_complete": "loop.run_until_complete(loop.create_future())"}[how]
    code = loop_src.imports + SIGINT_DEFAULT + f"""
import sys, time
loop = {loop_src.expr}
loop.call_later(30, loop.stop)   # an idle loop with a far timer
loop.call_soon(lambda: print("ready", flush=True))
try:
    {call}
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    print("running", loop.is_running(), flush=True)
    loop.close()
    sys.exit(0)
print("no exception", flush=True)
sys.exit(3)
"""
    proc = py.spawn(code)
    _wait_ready(proc)
    time.sleep(0.2)  # let it block in the kernel
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, (out, err)
    assert "KeyboardInterrupt" in out and "running False" in out
    assert elapsed < 5.0


@pytest.mark.timeout(30)
def test_run_cancels_main_on_sigint(py, loop_src):
    code = loop_src.imports + SIGINT_DEFAULT + f"""
import asyncio, sys
async def main():
    print("ready", flush=True)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        print("main cancelled", flush=True)
        raise
try:
    ({loop_src.runner})(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(0)
sys.exit(3)
"""
    proc = py.spawn(code)
    _wait_ready(proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc)
    assert proc.returncode == 0, (out, err)
    assert "main cancelled" in out
    assert "KeyboardInterrupt" in out


# ------------------------------------------------------------------ Python-level handlers

class SignalArrived(Exception):
    pass


def _raise_signal_arrived(signum, frame):
    raise SignalArrived(signum)


IDLE_SETUPS = ["first_wait", "after_ready_callback", "new_reader_then_idle"]


def _prepare_idle(loop, how, pair):
    """Arrange for the loop to block in the kernel, in one of several states
    (the very first wait; a wait after a non-blocking pass; a wait that also
    has to hand a new fd registration to the kernel)."""
    if how == "after_ready_callback":
        loop.call_soon(lambda: None)
    elif how == "new_reader_then_idle":
        loop.call_soon(loop.add_reader, pair[0], lambda: None)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("how", IDLE_SETUPS)
def test_python_signal_handler_runs_while_loop_idles(loop, how):
    """A handler installed with signal.signal() that raises (as
    KeyboardInterrupt does, and as pytest-timeout does) interrupts an idle
    loop promptly: the exception comes out of run_forever()."""
    import socket
    pair = socket.socketpair()
    signal.signal(signal.SIGUSR1, _raise_signal_arrived)
    try:
        _prepare_idle(loop, how, pair)
        t = threading.Thread(target=lambda: (time.sleep(0.2),
                                             os.kill(os.getpid(), signal.SIGUSR1)))
        watchdog = loop.call_later(5, loop.stop)
        t0 = time.monotonic()
        t.start()
        try:
            with pytest.raises(SignalArrived):
                loop.run_forever()
            elapsed = time.monotonic() - t0
        finally:
            t.join()
            watchdog.cancel()
        assert elapsed < 1.5, f"signal handler ran only after {elapsed:.2f}s"
        assert not loop.is_running()
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        loop.remove_reader(pair[0])
        pair[0].close()
        pair[1].close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", IDLE_SETUPS)
def test_sigint_interrupts_idle_loop_promptly(py, loop_src, how):
    """SIGINT (default handler) while the loop blocks in the kernel, in each
    idle state: KeyboardInterrupt comes out of run_forever() within ~1 s,
    not when the next timer (10 s away) is due."""
    code = loop_src.imports + SIGINT_DEFAULT + f"""
import socket, sys, time
loop = {loop_src.expr}
pair = socket.socketpair()
how = {how!r}
if how == "after_ready_callback":
    loop.call_soon(lambda: None)
elif how == "new_reader_then_idle":
    loop.call_soon(loop.add_reader, pair[0], lambda: None)
loop.call_later(10, loop.stop)
print("ready", flush=True)
t0 = time.monotonic()
try:
    loop.run_forever()
except KeyboardInterrupt:
    print("KeyboardInterrupt after %.3f" % (time.monotonic() - t0), flush=True)
    sys.exit(0)
print("no exception", flush=True)
sys.exit(3)
"""
    proc = py.spawn(code)
    _wait_ready(proc)
    time.sleep(0.3)  # the child is blocked in the loop's first wait by now
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc, timeout=20)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, (out, err)
    assert "KeyboardInterrupt" in out
    assert elapsed < 1.5, f"KeyboardInterrupt only after {elapsed:.2f}s: {out}"
