"""Shared fixtures for the loop-core test suite.

Modes
-----
* default: the ``loop`` fixture is parametrized over ringloop's backends
  ("io_uring", "epoll") and yields ``ringloop.new_event_loop(backend=...)``.
* ``RINGLOOP_TEST_REFERENCE=asyncio``: the ``loop`` fixture yields the stdlib
  loop (``asyncio.new_event_loop()``) and every test marked ``ringloop_only``
  is skipped.  This validates that the tests assert asyncio's semantics.

Markers
-------
* ``ringloop_only(reason)``: the test checks something asyncio does not have
  (backend_info, stats, CLI, a ringloop-specific guarantee).

Every test also runs under an autouse fd-hygiene check: the set of open file
descriptors after the test (after gc) must equal the set before it.
"""
import asyncio
import gc
import os
import subprocess
import sys
import textwrap

import pytest

REFERENCE = os.environ.get("RINGLOOP_TEST_REFERENCE", "").strip().lower()
if REFERENCE not in ("", "asyncio"):
    raise pytest.UsageError(
        f"RINGLOOP_TEST_REFERENCE={REFERENCE!r}: only 'asyncio' is supported")
IS_REFERENCE = REFERENCE == "asyncio"

RINGLOOP_BACKENDS = ["io_uring", "epoll"]
BACKENDS = ["asyncio"] if IS_REFERENCE else RINGLOOP_BACKENDS

if not IS_REFERENCE:
    import ringloop  # noqa: F401  -- a missing/broken build must fail loudly


_REAL_STDERR = None  # dup of the terminal's stderr, for the hang backstop


def pytest_configure(config):
    global _REAL_STDERR
    if _REAL_STDERR is None:  # capture is suspended during pytest_configure
        _REAL_STDERR = open(os.dup(2), "w", closefd=True)
    config.addinivalue_line(
        "markers",
        "ringloop_only(reason): test of a ringloop-specific feature; skipped "
        "when RINGLOOP_TEST_REFERENCE=asyncio")
    config.addinivalue_line(
        "markers",
        "reference_bug(reason, versions): the stdlib loop of these Python "
        "versions (tuples of sys.version_info[:3]) is known to fail this "
        "test; xfail there in reference mode only")


def pytest_unconfigure(config):
    global _REAL_STDERR
    if _REAL_STDERR is not None:
        _REAL_STDERR.close()
        _REAL_STDERR = None


def pytest_collection_modifyitems(config, items):
    if not IS_REFERENCE:
        return
    for item in items:
        bug = item.get_closest_marker("reference_bug")
        if bug is not None and tuple(sys.version_info[:3]) in bug.args[1]:
            item.add_marker(pytest.mark.xfail(reason=f"stdlib bug: {bug.args[0]}",
                                              strict=True))
        marker = item.get_closest_marker("ringloop_only")
        if marker is not None:
            why = marker.args[0] if marker.args else "ringloop-specific"
            item.add_marker(pytest.mark.skip(
                reason=f"ringloop-only ({why}); reference run"))


def pytest_report_header(config):
    if IS_REFERENCE:
        return "ringloop tests: REFERENCE mode, loop = asyncio.new_event_loop()"
    import ringloop
    return (f"ringloop tests: ringloop {ringloop.__version__} from "
            f"{os.path.dirname(ringloop.__file__)}, backends {BACKENDS}")


# ---------------------------------------------------------------- fd hygiene

def open_fds():
    """Map of open fd -> what it points to, for this process.

    os.listdir() itself holds a directory fd while listing; that fd is closed
    by the time readlink() runs, so it drops out here.
    """
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


@pytest.fixture(autouse=True)
def fd_hygiene(request):
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    after = open_fds()
    leaked = {fd: what for fd, what in after.items()
              if fd not in before or before[fd] != what}
    closed = {fd: what for fd, what in before.items() if fd not in after}
    if leaked or closed:
        pytest.fail(f"fd hygiene: leaked {leaked}, closed pre-existing {closed}",
                    pytrace=False)


# ---------------------------------------------------------------- loops

def _new_loop(backend):
    if backend == "asyncio":
        return asyncio.new_event_loop()
    import ringloop
    return ringloop.new_event_loop(backend=backend)


def _dispose(loop):
    if loop.is_closed():
        return
    if loop.is_running():  # a test failed in a weird way; do not mask it
        loop.stop()
        return
    try:
        # Let pending callbacks (e.g. executor results) drain, then close.
        loop.run_until_complete(asyncio.sleep(0))
    except Exception:
        pass
    loop.close()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Name of the backend under test ("asyncio" in reference mode)."""
    return request.param


@pytest.fixture
def loop_factory(backend):
    """Callable making new loops of the backend under test; all are closed
    at teardown."""
    made = []

    def factory():
        lp = _new_loop(backend)
        made.append(lp)
        return lp

    yield factory
    for lp in made:
        _dispose(lp)
    asyncio.set_event_loop(None)


@pytest.fixture
def loop(loop_factory):
    return loop_factory()


@pytest.fixture
def run(loop):
    """run(awaitable, timeout=5): run it on ``loop`` with a hard timeout, so
    that a missed wake-up fails the test instead of hanging it."""
    def runner(aw, timeout=5.0):
        async def guarded():
            return await asyncio.wait_for(aw, timeout)
        return loop.run_until_complete(guarded())
    return runner


@pytest.fixture
def run_forever_guarded(loop):
    """Run loop.run_forever() with a watchdog timer that stops the loop after
    ``timeout`` seconds; returns True if the loop was stopped by the test
    itself (i.e. the watchdog did not fire)."""
    def runner(timeout=5.0):
        fired = []

        def watchdog():
            fired.append(True)
            loop.stop()

        h = loop.call_later(timeout, watchdog)
        try:
            loop.run_forever()
        finally:
            h.cancel()
        return not fired
    return runner


# ---------------------------------------------------------------- subprocesses

@pytest.fixture
def loop_src(backend):
    """Python source (imports + expression) to create a loop of the backend
    under test inside a subprocess: ``exec(loop_src.imports)`` then
    ``eval(loop_src.expr)``."""
    class Src:
        if backend == "asyncio":
            imports = "import asyncio\n"
            expr = "asyncio.new_event_loop()"
            runner = "asyncio.run"
        else:
            imports = "import asyncio\nimport ringloop\n"
            expr = f"ringloop.new_event_loop(backend={backend!r})"
            runner = (f"(lambda main, **kw: ringloop.run(main, "
                      f"backend={backend!r}, **kw))")
    return Src


def _child_env(extra=None, drop=()):
    env = dict(os.environ)
    for key in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "RINGLOOP_BACKEND",
                *drop):
        env.pop(key, None)
    if extra:
        env.update(extra)
    return env


class PySubprocess:
    """Run Python code in a child interpreter (same executable)."""

    def run(self, code, *args, env=None, timeout=30, cwd=None, module=None):
        cmd = [sys.executable]
        if module is not None:
            cmd += ["-m", module]
        else:
            cmd += ["-c", textwrap.dedent(code)]
        cmd += list(args)
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout, env=_child_env(env), cwd=cwd,
                              stdin=subprocess.DEVNULL)

    def spawn(self, code, *args, env=None, cwd=None):
        cmd = [sys.executable, "-c", textwrap.dedent(code), *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=_child_env(env), cwd=cwd,
                                stdin=subprocess.DEVNULL)


@pytest.fixture
def py():
    return PySubprocess()


# ---------------------------------------------------------------- small helpers

@pytest.fixture
def reference():
    """True when the suite runs against the stdlib loop."""
    return IS_REFERENCE


@pytest.fixture
def handle_ctx():
    """handle_ctx(h) -> the Context a handle runs in.

    Handle.get_context() is public since 3.12; ringloop provides it on every
    Python, the 3.11 stdlib Handle only has the private _context."""
    def get(h):
        if IS_REFERENCE and not hasattr(h, "get_context"):
            return h._context
        return h.get_context()
    return get


@pytest.fixture
def fds():
    """fds() -> {fd: target} of this process, right now (after gc)."""
    def snapshot():
        gc.collect()
        return open_fds()
    return snapshot


@pytest.fixture
def unmanaged_loop(backend):
    """unmanaged_loop() -> a new loop of the backend under test that nobody
    will close (for tests of what happens to an abandoned loop)."""
    return lambda: _new_loop(backend)


# ---------------------------------------------------------------- networking

@pytest.fixture
def tcp_pair(loop):
    """``await tcp_pair(factory=None, small_buffers=False, **kw)`` ->
    (transport, protocol, netutil.Peer): create_connection() on ``loop`` to
    a plain socket peer.  See tests/netutil.py (open_tcp_pair)."""
    import netutil
    yield from netutil.tcp_pair_fixture(loop)


# ---------------------------------------------------------------- hang backstop

@pytest.fixture(autouse=True)
def hang_backstop(request):
    """pytest-timeout's signal method raises inside the test; when the hang
    is inside a loop callback, the loop's exception handling swallows that
    (it is a BaseException other than KeyboardInterrupt/SystemExit) and the
    test hangs for good.  Backstop: dump all stacks and exit the process a
    little after the test's timeout, so a hang never stalls CI."""
    import faulthandler
    marker = request.node.get_closest_marker("timeout")
    if marker is not None and marker.args:
        limit = float(marker.args[0])
    else:
        limit = float(request.config.getini("timeout") or 60)
    faulthandler.dump_traceback_later(limit + 20, exit=True,
                                      file=_REAL_STDERR or sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()
