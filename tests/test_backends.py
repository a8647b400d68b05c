"""Backend selection (backend_info, RINGLOOP_BACKEND, backend=) and fork()."""
import asyncio
import json
import os
import time

import pytest

ringloop_only = pytest.mark.ringloop_only("backend selection is ringloop's")


@ringloop_only
def test_loop_backend_name(loop, backend):
    assert loop.backend_name == backend


@ringloop_only
def test_backend_info_keys():
    import ringloop
    info = ringloop.backend_info()
    assert info["backend"] in ("io_uring", "epoll")
    assert info["requested"] in ("auto", "io_uring", "epoll")
    assert isinstance(info["reason"], str) and info["reason"]
    io = info["io_uring"]
    assert isinstance(io["available"], bool)
    assert isinstance(io["setup_flags"], list)
    assert all(isinstance(x, str) for x in io["setup_flags"])
    assert isinstance(io["features"], list)
    assert all(isinstance(x, str) for x in io["features"])
    assert io["error"] is None or isinstance(io["error"], str)
    if info["backend"] == "io_uring":
        assert io["available"] is True
    if not io["available"]:
        assert io["error"], "io_uring unavailable but no error recorded"
    # JSON-serializable (doctor / bug reports print it)
    json.dumps(info)


@ringloop_only
def test_backend_info_free_threading():
    # ringloop keeps the GIL on a free-threaded Python and says why.
    import sys
    import sysconfig
    import ringloop
    ft = ringloop.backend_info()["free_threading"]
    assert ft["gil_required"] is True
    assert ft["free_threaded_build"] is bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert ft["gil_enabled"] is True     # on any build, once ringloop is imported
    if hasattr(sys, "_is_gil_enabled"):
        assert sys._is_gil_enabled()
    assert "GIL" in ft["reason"] and "call_soon_threadsafe" in ft["reason"]


@ringloop_only
def test_default_loop_uses_backend_info_backend():
    import ringloop
    lp = ringloop.new_event_loop()
    try:
        assert lp.backend_name == ringloop.backend_info()["backend"]
    finally:
        lp.close()


@ringloop_only
@pytest.mark.parametrize("bad", ["bogus", "", "EPOLL ", 1])
def test_new_event_loop_bad_backend_argument(bad):
    import ringloop
    with pytest.raises((ValueError, TypeError)):
        lp = ringloop.new_event_loop(backend=bad)
        lp.close()


@ringloop_only
@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["io_uring", "epoll", "auto"])
def test_ringloop_backend_env(py, value):
    code = """
import json, ringloop
info = ringloop.backend_info()
lp = ringloop.new_event_loop()
print(json.dumps({"info": info, "loop": lp.backend_name}))
lp.close()
"""
    r = py.run(code, env={"RINGLOOP_BACKEND": value})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["info"]["requested"] == value
    if value == "auto":
        assert out["info"]["backend"] in ("io_uring", "epoll")
    else:
        assert out["info"]["backend"] == value
    assert out["loop"] == out["info"]["backend"]


@ringloop_only
@pytest.mark.timeout(60)
def test_ringloop_backend_env_bogus(py):
    code = """
import ringloop
lp = ringloop.new_event_loop()
lp.close()
print("created a loop")
"""
    r = py.run(code, env={"RINGLOOP_BACKEND": "bogus"})
    assert r.returncode != 0
    assert "created a loop" not in r.stdout
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(("ValueError", "RuntimeError")), r.stderr
    assert "bogus" in last and "RINGLOOP_BACKEND" in last, r.stderr


@ringloop_only
@pytest.mark.timeout(60)
def test_explicit_backend_overrides_env(py):
    code = """
import ringloop
for b in ("epoll", "io_uring"):
    lp = ringloop.new_event_loop(backend=b)
    print(lp.backend_name)
    lp.close()
"""
    r = py.run(code, env={"RINGLOOP_BACKEND": "epoll"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["epoll", "io_uring"]


# ------------------------------------------------------------------ fork

def _exercise(loop):
    """A timer and a reader on a fresh pipe; returns a short error string
    or '' when both work."""
    r, w = os.pipe()
    try:
        got = []
        loop.call_later(0.01, os.write, w, b"ping")
        loop.add_reader(r, lambda: (got.append(os.read(r, 10)), loop.stop()))
        watchdog = loop.call_later(3, loop.stop)
        loop.run_forever()
        watchdog.cancel()
        loop.remove_reader(r)
        if got != [b"ping"]:
            return f"reader/timer did not fire: {got}"
        return ""
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.timeout(30)
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_loop_works_in_forked_child_and_parent(loop):
    # Use the loop in the parent first, so its kernel state is set up, and
    # leave a reader armed across the fork.
    assert _exercise(loop) == ""
    armed_r, armed_w = os.pipe()
    armed = []
    loop.add_reader(armed_r, lambda: (armed.append(os.read(armed_r, 10)), loop.stop()))
    loop.run_until_complete(asyncio.sleep(0.01))
    sig_r, sig_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(sig_r)
            # (the parent's armed reader is left alone: with the stdlib loop
            # the child shares the parent's epoll set, so touching it here
            # would remove it for the parent too)
            err = _exercise(loop)
            if not err:
                fut_result = loop.run_until_complete(asyncio.sleep(0.01, "slept"))
                err = "" if fut_result == "slept" else f"sleep gave {fut_result!r}"
            os.write(sig_w, (err or "ok").encode()[:500])
            code = 0 if not err else 2
        except BaseException as e:  # noqa: BLE001 - report anything
            try:
                os.write(sig_w, f"exception: {e!r}".encode()[:500])
            except OSError:
                pass
            code = 3
        finally:
            os._exit(code)
    os.close(sig_w)
    deadline = time.monotonic() + 15
    status = None
    while time.monotonic() < deadline:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(sig_r)
        pytest.fail("forked child hung")
    msg = os.read(sig_r, 1000).decode()
    os.close(sig_r)
    assert os.waitstatus_to_exitcode(status) == 0, msg
    assert msg == "ok"
    # the parent's loop is unaffected by the child's use and exit: the reader
    # armed before the fork still fires, and new registrations work
    os.write(armed_w, b"armed")
    w = loop.call_later(5, loop.stop)
    loop.run_forever()
    w.cancel()
    assert loop.remove_reader(armed_r) is True
    os.close(armed_r)
    os.close(armed_w)
    assert armed == [b"armed"]
    assert _exercise(loop) == ""
    assert loop.run_until_complete(asyncio.sleep(0.01, "parent")) == "parent"
