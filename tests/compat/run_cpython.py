#!/usr/bin/env python3
"""Run CPython's own ``test.test_asyncio`` modules against ringloop.

The tests are imported from the interpreter that runs this script
(``test.test_asyncio.*`` ships with CPython); nothing is copied into the repo.

    python tests/compat/run_cpython.py                    # both backends
    python tests/compat/run_cpython.py --backend epoll    # one backend
    python tests/compat/run_cpython.py --baseline         # the stdlib loop
    python tests/compat/run_cpython.py --all-loops        # stdlib + both backends
    python tests/compat/run_cpython.py --backend epoll test_tasks
    python tests/compat/run_cpython.py --backend epoll 'test_events.Ringloop*.test_call_*'

How ringloop is installed (in a child process per module and loop):

* ``asyncio.DefaultEventLoopPolicy`` is replaced by a subclass of
  ``ringloop.EventLoopPolicy``, and the current policy is reset, so every
  ``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner`` and
  ``IsolatedAsyncioTestCase`` makes a ringloop loop -- also after a test module
  calls ``asyncio.set_event_loop_policy(None)``.  Every loop the policy makes
  is checked to be a ``ringloop.Loop`` on the requested backend.
* Modules whose test classes hard-wire asyncio's selector loop (LOOP_CLASSES):
  test_events, test_sock_lowlevel and test_sendfile (``SelectEventLoopTests``,
  ``EPollEventLoopTests``, ``PollEventLoopTests``, with
  ``create_event_loop()``); test_server (``SelectorStartServerTests``),
  test_buffered_proto (``BufferedProtocolSelectorTests``) and test_sslproto
  (``SelectorStartTLSTests``), with ``new_loop()``.  The selector classes are
  dropped and replaced by ONE class that subclasses one of them (same mixins,
  same tests) and whose loop factory returns
  ``ringloop.new_event_loop(backend=...)``: ``RingloopIoUringEventLoopTests``
  / ``RingloopEpollEventLoopTests`` (``RingloopIoUringStartServerTests``,
  ``RingloopEpollBufferedProtocolTests``, ...).  In the baseline the same class
  is built with ``asyncio.SelectorEventLoop()`` (``StdlibEventLoopTests``,
  ...), so both sides run the same tests.  Proactor/Kqueue classes skip
  themselves on Linux.
* Tests that build ``test_utils.TestLoop`` (a fake-time loop on
  ``BaseEventLoop``) or ``asyncio.SelectorEventLoop`` explicitly do not touch
  ringloop.  The runner counts, per test, the loops of each kind it created;
  the "on ringloop" column says how many tests really ran on a ringloop loop.

Each (module, loop) pair runs in its own subprocess, the results streamed to a
file test by test.  A test that hangs past ``--test-timeout`` is dumped by
faulthandler and the process exits; the runner records that test as an error
and starts the module again after it, so a hang or a crash costs one test, not
the run.

Expected failures live in ``tests/compat/expected_failures.py``: a test that
fails and is listed counts as an expected failure; a listed test that passes is
an unexpected success and fails the run (so the list stays honest).
The exit status is non-zero if any test fails that is not listed.
"""

import argparse
import concurrent.futures
import fnmatch
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pyversions import for_this_python  # noqa: E402
import record  # noqa: E402
sys.path.pop(0)
PKG = "test.test_asyncio"

# The modules: the loop core, networking, TLS, pipes and subprocesses. test_context is
# test.test_asyncio.test_context (asyncio.run + decimal contexts);
# test.test_context is contextvars alone and never touches an event loop.
DEFAULT_MODULES = [
    "test_events",
    "test_tasks",
    "test_futures",
    "test_futures2",
    "test_locks",
    "test_queues",
    "test_timeouts",
    "test_taskgroups",
    "test_runners",
    "test_pep492",
    "test_context",
    "test_waitfor",
    "test_threads",          # asyncio.to_thread: the loop's default executor
    # Networking (TCP/Unix streams, servers, sock_* API, sendfile).
    "test_streams",
    "test_server",
    "test_sock_lowlevel",
    "test_sendfile",
    "test_buffered_proto",
    "test_protocols",
    "test_transports",
    # TLS over the stream transport: ssl= on create_connection/create_server and
    # start_tls(), i.e. asyncio's SSLProtocol over ringloop's stream transport.
    "test_ssl",
    "test_sslproto",
    # Pipes and subprocesses. test_unix_events for the classes that run on
    # the loop asyncio.new_event_loop() makes (TestFunctional, TestFork, PolicyTests,
    # the Unix sendfile tests); its other classes test the stdlib loop's and child
    # watchers' internals on asyncio.SelectorEventLoop/TestLoop and never reach ringloop.
    "test_subprocess",
    "test_unix_events",
]
# Present on newer Pythons only; run when the interpreter has them.
OPTIONAL_MODULES = ["test_eager_task_factory", "test_staggered",
                    "test_graph",             # 3.14: asyncio.capture_call_graph
                    "test_free_threading",    # 3.14: tasks from several threads
                    "test_server_context"]    # 3.15: contextvars in protocols

# Classes that hard-wire asyncio's selector loop, per module.  Each module's
# selector classes (one per selector: select/poll/epoll/kqueue, or a single
# "Selector" class) are dropped and replaced by ONE class that subclasses one of
# them (the template: same mixins, same tests, including any defined in the
# class body) and overrides its loop factory method to return the loop under
# test -- a ringloop loop on the backend, or asyncio.SelectorEventLoop() in the
# baseline -- so the counts compare like with like.
#   module: (factory method, name suffix, classes to drop (template first))
_SELECTOR_EVENT_LOOP_TESTS = ("EPollEventLoopTests", "PollEventLoopTests",
                              "SelectEventLoopTests", "KqueueEventLoopTests")
LOOP_CLASSES = {
    "test_events": ("create_event_loop", "EventLoopTests",
                    _SELECTOR_EVENT_LOOP_TESTS),
    "test_sock_lowlevel": ("create_event_loop", "EventLoopTests",
                           _SELECTOR_EVENT_LOOP_TESTS),
    "test_sendfile": ("create_event_loop", "EventLoopTests",
                      _SELECTOR_EVENT_LOOP_TESTS),
    "test_server": ("new_loop", "StartServerTests",
                    ("SelectorStartServerTests",)),
    "test_buffered_proto": ("new_loop", "BufferedProtocolTests",
                            ("BufferedProtocolSelectorTests",)),
    "test_sslproto": ("new_loop", "StartTLSTests", ("SelectorStartTLSTests",)),
}
# Backend -> class-name infix: test_events.RingloopIoUringEventLoopTests,
# test_server.RingloopEpollStartServerTests; the baseline: StdlibEventLoopTests.
_CLASS_INFIX = {"io_uring": "RingloopIoUring", "epoll": "RingloopEpoll",
                "stdlib": "Stdlib"}

# Modules whose tests never reach the loop under test: they build their own
# loops (test_utils.TestLoop, a fake-time BaseEventLoop; or a BaseEventLoop with
# a mocked selector, installed through their own policy).  They still run on
# ringloop's policy, but a module not listed here that creates no ringloop loop
# is an error: ringloop was not installed.
NOT_ON_LOOP = {
    "test_futures": "test_utils.TestLoop (fake time) for every test",
    "test_runners": "its own TestPolicy making a mocked asyncio.BaseEventLoop",
    "test_pep492": "a mocked asyncio.BaseEventLoop",
    "test_protocols": "asyncio's abstract Protocol classes, with mocks",
    "test_transports": "asyncio's abstract Transport classes, with a mocked loop",
}
# Loop classes of the stdlib that are not a real event loop under test.
FAKE_LOOPS = ("TestLoop", "BaseEventLoop")

MODES = ("stdlib", "io_uring", "epoll")
PYVER = "%d.%d" % sys.version_info[:2]
# asyncio's policy API warns from 3.14 on (and is gone in 3.16).
POLICIES_DEPRECATED = sys.version_info >= (3, 14)


def short_id(test_id):
    prefix = PKG + "."
    return test_id[len(prefix):] if test_id.startswith(prefix) else test_id


# ---------------------------------------------------------------------------
# Child: run one module on one loop, stream one JSON line per test.
# ---------------------------------------------------------------------------

class _Tracker:
    """Counts the event loops created while each test runs."""

    def __init__(self):
        self.ring = 0
        self.other = {}

    def reset(self):
        self.ring = 0
        self.other = {}


TRACK = _Tracker()
TOTAL = {"ring": 0, "other": 0}


def _install_stdlib_tracking(ring_cls):
    import asyncio.base_events as base_events

    orig_init = base_events.BaseEventLoop.__init__

    def __init__(self, *args, **kwargs):
        if ring_cls is None or not isinstance(self, ring_cls):
            name = type(self).__name__
            TRACK.other[name] = TRACK.other.get(name, 0) + 1
            TOTAL["other"] += 1
        return orig_init(self, *args, **kwargs)

    base_events.BaseEventLoop.__init__ = __init__


def _install_ringloop(backend):
    """Make ringloop the loop asyncio creates everywhere; return (factory, Loop)."""
    import asyncio
    import ringloop

    Loop = ringloop.Loop

    def check(loop):
        if not isinstance(loop, Loop):
            raise RuntimeError("compat runner: expected a ringloop.Loop, got %r"
                               % (type(loop),))
        got = getattr(loop, "backend_name", None)
        if got != backend:
            raise RuntimeError("compat runner: loop runs on backend %r, %r was "
                               "requested" % (got, backend))
        TRACK.ring += 1
        TOTAL["ring"] += 1
        return loop

    def factory():
        return check(ringloop.new_event_loop(backend=backend))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)    # 3.14+: policies
        base = ringloop.EventLoopPolicy

    class CompatPolicy(base):
        """ringloop's policy; counts and checks every loop it makes."""

        def new_event_loop(self):
            return check(super().new_event_loop())

    CompatPolicy.__name__ = CompatPolicy.__qualname__ = "RingloopPolicy"
    # set_event_loop_policy(None) -> events._init_event_loop_policy(), which up to
    # 3.13 does "from . import DefaultEventLoopPolicy" (the package attribute) and
    # from 3.14 on "from .unix_events import _DefaultEventLoopPolicy" (asyncio's
    # DefaultEventLoopPolicy is then a deprecated alias that tests check): patch
    # the name it reads.
    if POLICIES_DEPRECATED:
        asyncio.unix_events._DefaultEventLoopPolicy = CompatPolicy
    else:
        asyncio.DefaultEventLoopPolicy = CompatPolicy
    _reset_policy()
    return factory, Loop


def _reset_policy():
    """asyncio.set_event_loop_policy(None), without 3.14's deprecation warning."""
    import asyncio
    getattr(asyncio.events, "_set_event_loop_policy",
            asyncio.set_event_loop_policy)(None)


def _replace_loop_factories(mod, factory):
    """IsolatedAsyncioTestCase classes whose loop_factory hard-wires asyncio's loop
    (3.14's test_taskgroups: `loop_factory = asyncio.EventLoop`, or a function that
    calls asyncio.EventLoop()): make them build the loop under test.  Returns the
    names of the classes changed."""
    import asyncio
    if not hasattr(asyncio, "EventLoop"):      # 3.13+
        return []
    stdlib_loops = (asyncio.EventLoop, asyncio.SelectorEventLoop)
    changed = []
    for name, cls in vars(mod).items():
        if not isinstance(cls, type) or "loop_factory" not in cls.__dict__:
            continue
        orig = cls.__dict__["loop_factory"]
        orig = getattr(orig, "__func__", orig)           # a staticmethod
        if orig in stdlib_loops:
            new = factory
        elif callable(orig) and "EventLoop" in getattr(orig, "__code__", _NO_CODE).co_names:
            def new(orig=orig):
                # Run the class's own factory with asyncio.EventLoop standing for
                # the loop under test (what it adds, like a task factory, stays).
                saved = asyncio.EventLoop
                asyncio.EventLoop = factory
                try:
                    return orig()
                finally:
                    asyncio.EventLoop = saved
        else:
            continue
        cls.loop_factory = staticmethod(new)
        changed.append(name)
    return changed


_NO_CODE = (lambda: None).__code__


def _sanity_case(backend, Loop):
    """A TestCase that checks ringloop really is the loop the tests get."""
    import asyncio
    import unittest

    class RingloopSanity(unittest.TestCase):
        def test_loop_is_ringloop(self):
            _reset_policy()
            loop = asyncio.new_event_loop()
            try:
                self.assertIsInstance(loop, Loop)
                self.assertEqual(loop.backend_name, backend)
            finally:
                loop.close()

            async def running():
                return asyncio.get_running_loop()

            loop = asyncio.run(running())
            self.assertIsInstance(loop, Loop)
            self.assertEqual(loop.backend_name, backend)
            with asyncio.Runner() as runner:
                self.assertIsInstance(runner.get_loop(), Loop)

            seen = []

            class Case(unittest.IsolatedAsyncioTestCase):
                async def test_it(self):
                    seen.append(asyncio.get_running_loop())

            res = unittest.TestResult()
            Case("test_it").run(res)
            self.assertTrue(res.wasSuccessful(), res.errors + res.failures)
            self.assertEqual(len(seen), 1)
            self.assertIsInstance(seen[0], Loop)
            _reset_policy()

    return RingloopSanity("test_loop_is_ringloop")


def _replace_loop_classes(mod, modname, mode, factory):
    """Replace the module's selector-loop classes (LOOP_CLASSES) by one class
    whose loop factory returns the loop under test; return its name."""
    spec = LOOP_CLASSES.get(modname)
    if spec is None:
        return None
    method, suffix, names = spec
    present = [n for n in names if isinstance(getattr(mod, n, None), type)]
    if not present:
        raise RuntimeError("compat runner: %s has none of the classes %s any "
                           "more; update LOOP_CLASSES" % (modname, names))
    template = getattr(mod, present[0])
    if method not in template.__dict__:
        raise RuntimeError("compat runner: %s.%s does not define %s(); update "
                           "LOOP_CLASSES" % (modname, present[0], method))
    for n in present:
        delattr(mod, n)
    if mode == "stdlib":
        import asyncio

        def make_loop(self):
            return asyncio.SelectorEventLoop()
    else:
        def make_loop(self):
            return factory()
    make_loop.__name__ = method
    name = _CLASS_INFIX[mode] + suffix
    cls = type(name, (template,), {method: make_loop,
                                   "__module__": mod.__name__,
                                   "__doc__": "%s on %s (compat runner)"
                                   % (template.__name__, mode)})
    cls.__qualname__ = name
    setattr(mod, name, cls)
    return name


def _substitute_test_loop(mode, factory):
    """--testloop-as-real: test_utils.TestCase.new_test_loop() without a time
    generator returns the loop under test instead of the fake-time TestLoop.

    Not a faithful run of the tests (some rely on TestLoop), so its results are
    only compared with the same substitution on the stdlib loop."""
    import asyncio
    from test.test_asyncio import utils as test_utils

    orig = test_utils.TestCase.new_test_loop
    keep = list(getattr(load_expectations(), "TESTLOOP_KEEP", {}))

    def new_test_loop(self, gen=None):
        if gen is not None or any(fnmatch.fnmatchcase(short_id(self.id()), p)
                                  for p in keep):
            return orig(self, gen)
        loop = asyncio.SelectorEventLoop() if mode == "stdlib" else factory()
        self.set_event_loop(loop)
        return loop

    test_utils.TestCase.new_test_loop = new_test_loop


def _iter_tests(suite):
    import unittest
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _iter_tests(t)
        else:
            yield t


def preflight_main(backend):
    """Before anything runs: the loops asyncio makes once the runner has installed
    ringloop must be ringloop's, on the backend asked for."""
    import unittest
    factory, Loop = _install_ringloop(backend)
    res = unittest.TestResult()
    _sanity_case(backend, Loop).run(res)
    for _, text in res.errors + res.failures:
        print(text)
    return 0 if res.wasSuccessful() else 1


def child_main(args):
    import faulthandler
    import unittest

    out = open(args.out, "a", buffering=1)

    def emit(**rec):
        out.write(json.dumps(rec) + "\n")
        out.flush()

    faulthandler.enable()
    mode = args.mode
    factory = Loop = None
    try:
        if mode != "stdlib":
            factory, Loop = _install_ringloop(mode)
        _install_stdlib_tracking(Loop)
        modname = PKG + "." + args.child
        mod = __import__(modname, fromlist=["*"])
    except BaseException:
        emit(kind="fatal", error=traceback.format_exc())
        return 3

    if args.subst:
        _substitute_test_loop(mode, factory)

    try:
        _replace_loop_classes(mod, args.child, mode, factory)
        if mode != "stdlib":
            _replace_loop_factories(mod, factory)
    except BaseException:
        emit(kind="fatal", error=traceback.format_exc())
        return 3

    loader = unittest.TestLoader()
    tests = list(_iter_tests(loader.loadTestsFromModule(mod)))
    skip = set()
    if args.skip and os.path.exists(args.skip):
        with open(args.skip) as f:
            skip = set(line.strip() for line in f if line.strip())
    only = args.only or []

    def wanted(t):
        sid = short_id(t.id())
        if sid in skip:
            return False
        if only and not any(fnmatch.fnmatchcase(sid, p) for p in only):
            return False
        return True

    selected = [t for t in tests if wanted(t)]
    if mode != "stdlib" and "[sanity]" not in skip:
        sanity = _sanity_case(mode, Loop)
        emit(kind="start", id="[sanity]")
        res = unittest.TestResult()
        faulthandler.dump_traceback_later(args.test_timeout, exit=True)
        sanity.run(res)
        faulthandler.cancel_dump_traceback_later()
        problems = res.errors + res.failures
        emit(kind="test", id="[sanity]",
             outcome="pass" if res.wasSuccessful() else "error",
             detail="".join(p[1] for p in problems)[-4000:],
             ring=TRACK.ring, other=TRACK.other, dur=0)
        TRACK.reset()
    TOTAL["ring"] = TOTAL["other"] = 0

    result = _make_result_class()(emit, args.test_timeout)
    suite = unittest.TestSuite(selected)
    emit(kind="begin", count=len(selected))
    suite.run(result)
    emit(kind="end", ring=TOTAL["ring"], other=TOTAL["other"])
    out.close()
    # Don't let interpreter shutdown hang the run (leftover threads etc.).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _make_result_class():
    import faulthandler
    import unittest

    class StreamResult(unittest.TestResult):
        """Streams one record per test; subtests fold into their test."""

        RANK = {"pass": 0, "skip": 1, "xfail": 2, "uxsuccess": 3,
                "fail": 4, "error": 5}

        def __init__(self, emit, test_timeout):
            super().__init__()
            self.emit = emit
            self.test_timeout = test_timeout
            self.cur = None

        def _set(self, outcome, detail=""):
            cur = self.cur
            if cur is None:
                return
            if self.RANK[outcome] >= self.RANK[cur["outcome"]] or \
                    cur["outcome"] == "pass":
                cur["outcome"] = outcome
            if detail:
                cur["detail"] = (cur.get("detail", "") + detail)[-6000:]

        def startTest(self, test):
            super().startTest(test)
            TRACK.reset()
            self.cur = {"id": short_id(test.id()), "outcome": "pass",
                        "t0": time.monotonic()}
            self.emit(kind="start", id=self.cur["id"])
            # A marker in the log, so stray output can be traced to its test.
            sys.stderr.write("## %s\n" % self.cur["id"])
            sys.stderr.flush()
            faulthandler.dump_traceback_later(self.test_timeout, exit=True)

        def stopTest(self, test):
            faulthandler.cancel_dump_traceback_later()
            super().stopTest(test)
            cur, self.cur = self.cur, None
            if cur is None:
                return
            if cur["outcome"] in ("fail", "error"):
                # What the failure's traceback kept alive (a test's open
                # transports, StreamWriters, files) sits in reference cycles;
                # finalize it now, or its ResourceWarnings land in the next
                # test that collects garbage under assertWarns
                # (test_streams.test_unclosed_resource_warnings).
                gc.collect()
            self.emit(kind="test", id=cur["id"], outcome=cur["outcome"],
                      detail=cur.get("detail", ""), ring=TRACK.ring,
                      other=TRACK.other,
                      dur=round(time.monotonic() - cur["t0"], 3))

        def addSuccess(self, test):
            self._set("pass")

        def addFailure(self, test, err):
            self._set("fail", self._exc_info_to_string(err, test))

        def addError(self, test, err):
            text = self._exc_info_to_string(err, test)
            if self.cur is None or not hasattr(test, "_testMethodName"):
                # setUpModule/setUpClass/tearDown* of a class or module.
                self.emit(kind="test", id="[fixture] " + short_id(str(test.id())),
                          outcome="error", detail=text[-6000:], ring=0,
                          other={}, dur=0)
                return
            self._set("error", text)

        def addSkip(self, test, reason):
            self._set("skip", reason)

        def addExpectedFailure(self, test, err):
            self._set("xfail")

        def addUnexpectedSuccess(self, test):
            self._set("uxsuccess", "unexpected success (stdlib expectedFailure)")

        def addSubTest(self, test, subtest, err):
            if err is not None:
                kind = "fail" if issubclass(err[0], test.failureException) \
                    else "error"
                self._set(kind, "[%s] %s" % (subtest._subDescription(),
                                             self._exc_info_to_string(err, test)))

    return StreamResult


# ---------------------------------------------------------------------------
# Parent: schedule children, apply expected failures, report.
# ---------------------------------------------------------------------------

def load_expectations():
    sys.path.insert(0, HERE)
    try:
        import expected_failures as ef
    finally:
        sys.path.pop(0)
    return ef


class Expectations:
    def __init__(self, ef, mode):
        self.mode = mode
        self.tables = []  # (section name, {pattern: reason})
        self.used = set()
        if mode == "stdlib":
            self.tables.append(("ENVIRONMENT", getattr(ef, "ENVIRONMENT", {})))
            self.tables.append(("ENVIRONMENT_BY_PYTHON",
                                for_this_python(getattr(ef, "ENVIRONMENT_BY_PYTHON", {}))))
            return
        for name in ("ENVIRONMENT", "EXPECTED_FAILURES", "KNOWN_BUGS"):
            self.tables.append((name, getattr(ef, name, {})))
        for name in ("ENVIRONMENT_BY_PYTHON", "EXPECTED_FAILURES_BY_PYTHON",
                     "EXPECTED_HANGS_BY_PYTHON", "KNOWN_BUGS_BY_PYTHON"):
            self.tables.append((name, for_this_python(getattr(ef, name, {}))))
        for name in ("EXPECTED_FAILURES_BY_BACKEND", "KNOWN_BUGS_BY_BACKEND"):
            self.tables.append((name, getattr(ef, name, {}).get(mode, {})))

    def lookup(self, sid):
        best = None
        for section, table in self.tables:
            if sid in table:
                return section, sid, table[sid]
            if best is None:
                for pat, reason in table.items():
                    if any(c in pat for c in "*?[") and \
                            fnmatch.fnmatchcase(sid, pat):
                        best = (section, pat, reason)
                        break
        return best

    def patterns(self):
        for section, table in self.tables:
            for pat in table:
                yield section, pat


class ModuleResult:
    def __init__(self, module, mode):
        self.module = module
        self.mode = mode
        self.tests = {}      # id -> record
        self.fatal = None
        self.restarts = 0
        self.elapsed = 0.0
        self.totals = {"ring": 0, "other": 0}
        self.sanity = None


def run_child(module, mode, args, workdir):
    """Run one module on one loop to completion (restarting after hangs)."""
    res = ModuleResult(module, mode)
    tag = "%s-%s%s" % (mode, module, "-subst" if args.testloop_as_real else "")
    out = os.path.join(workdir, tag + ".jsonl")
    skipf = os.path.join(workdir, tag + ".skip")
    logf = os.path.join(workdir, tag + ".log")
    for p in (out, skipf, logf):
        if os.path.exists(p):
            os.unlink(p)
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    if args.asyncio_debug:
        env["PYTHONASYNCIODEBUG"] = "1"
    if mode != "stdlib":
        env["RINGLOOP_BACKEND"] = mode
    t0 = time.monotonic()
    deadline = t0 + args.module_timeout
    done = set()
    if mode != "stdlib":
        # Tests listed as hanging on ringloop are not started: recorded as failed,
        # the expected-failure list (EXPECTED_HANGS_BY_PYTHON) gives the reason.
        hangs = for_this_python(getattr(load_expectations(), "EXPECTED_HANGS_BY_PYTHON", {}))
        for tid in sorted(hangs):
            if tid.startswith(module + "."):
                done.add(tid)
                res.tests[tid] = {"kind": "test", "id": tid, "outcome": "error",
                                  "detail": "expected hang: not run", "ring": 0,
                                  "other": {}, "dur": None}
        if done:
            with open(skipf, "w") as f:
                f.write("\n".join(sorted(done)) + "\n")
    while True:
        cmd = [sys.executable, "-X", "faulthandler", os.path.abspath(__file__),
               "--child", module, "--mode", mode, "--out", out,
               "--skip", skipf, "--test-timeout", str(args.test_timeout)]
        if args.testloop_as_real:
            cmd.append("--subst")
        for pat in args.only.get(module, []):
            cmd += ["--only", pat]
        pos = os.path.getsize(out) if os.path.exists(out) else 0
        with open(logf, "ab") as log:
            log.write(("\n==== %s\n" % " ".join(cmd)).encode())
            log.flush()
            logpos = log.tell()
            proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                rc = proc.wait()
                timed_out = True
        started = None
        ended = False
        with open(out) as f:
            f.seek(pos)
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                kind = rec["kind"]
                if kind == "start":
                    started = rec["id"]
                elif kind == "test":
                    started = None
                    done.add(rec["id"])
                    if rec["id"] == "[sanity]":
                        res.sanity = rec
                    else:
                        res.tests[rec["id"]] = rec
                elif kind == "fatal":
                    res.fatal = rec["error"]
                elif kind == "end":
                    ended = True
                    res.totals["ring"] += rec["ring"]
                    res.totals["other"] += rec["other"]
        if ended or res.fatal:
            break
        # The child died or hung in the middle of a test.
        tail = _crash_report(logf, logpos)
        why = ("module timeout (%ss)" % args.module_timeout if timed_out else
               "process died (exit status %s): hang past --test-timeout=%ss "
               "or crash" % (rc, args.test_timeout))
        if started is None:
            res.fatal = "%s outside any test\n%s" % (why, tail)
            break
        rec = {"kind": "test", "id": started, "outcome": "error",
               "detail": "%s\n--- faulthandler ---\n%s" % (why, tail),
               "ring": 0, "other": {}, "dur": None, "hang": True}
        done.add(started)
        if started == "[sanity]":
            res.sanity = rec
        else:
            res.tests[started] = rec
        if timed_out or res.restarts >= args.max_restarts:
            res.fatal = "%s; gave up after %d restarts" % (why, res.restarts)
            break
        res.restarts += 1
        with open(skipf, "w") as f:
            f.write("\n".join(sorted(done)) + "\n")
    res.elapsed = time.monotonic() - t0
    res.log = logf
    return res


def _crash_report(path, pos):
    """faulthandler's dump (or the log's end) from one child's log."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(("Timeout (", "Fatal Python error")):
            return "\n".join(lines[max(0, i - 5):i + 40])
    return "\n".join(lines[-40:])


# "on loop": tests that created at least one loop of the kind under test
# (a ringloop.Loop; in the baseline, a real stdlib loop, not TestLoop/mocks).
COLS = ["run", "passed", "failed", "errors", "skipped", "xfail", "xpass",
        "on loop"]


def classify(res, exp):
    """Apply the expected-failure list; return the counts and the problems."""
    c = dict.fromkeys(COLS, 0)
    problems = []      # (id, kind, detail)
    xfails = []        # (id, section, pattern, reason)
    for tid in sorted(res.tests):
        rec = res.tests[tid]
        outcome = rec["outcome"]
        c["run"] += 1
        if res.mode == "stdlib":
            if any(k not in FAKE_LOOPS for k in rec.get("other") or {}):
                c["on loop"] += 1
        elif rec.get("ring"):
            c["on loop"] += 1
        hit = exp.lookup(tid) if exp is not None else None
        if hit is not None:
            exp.used.add((hit[0], hit[1]))
        if outcome in ("fail", "error"):
            if hit is not None:
                c["xfail"] += 1
                xfails.append((tid, hit[0], hit[1], hit[2]))
            else:
                c["failed" if outcome == "fail" else "errors"] += 1
                problems.append((tid, outcome, rec.get("detail", "")))
        elif outcome == "skip":
            c["skipped"] += 1
        elif outcome == "xfail":      # the stdlib's own @expectedFailure
            c["xfail"] += 1
        elif outcome == "uxsuccess":
            c["xpass"] += 1
            problems.append((tid, "unexpected success", rec.get("detail", "")))
        else:
            if hit is not None:
                c["xpass"] += 1
                problems.append((tid, "unexpected success",
                                 "listed in %s (%s: %s) but passed"
                                 % hit))
            else:
                c["passed"] += 1
    if res.fatal:
        c["errors"] += 1
        problems.append(("[module %s]" % res.module, "error", res.fatal))
    if res.sanity is not None and res.sanity["outcome"] != "pass":
        c["errors"] += 1
        problems.append(("[sanity %s]" % res.module, "error",
                         res.sanity.get("detail", "")))
    if res.mode != "stdlib" and not res.fatal and res.tests and \
            res.totals["ring"] == 0 and res.module not in NOT_ON_LOOP:
        c["errors"] += 1
        problems.append(("[module %s]" % res.module, "error",
                         "no ringloop loop was created by this module's tests: "
                         "ringloop is not installed as the loop"))
    return c, problems, xfails


def format_table(rows, markdown=False):
    head = ["module"] + COLS + ["time"]
    lines = []
    data = []
    for name, c, secs in rows:
        data.append([name] + [str(c[k]) for k in COLS] +
                    ["%.0fs" % secs if secs is not None else ""])
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for r in data:
            lines.append("| " + " | ".join(r) + " |")
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in data)) for i, h in enumerate(head)]
    fmt = "  ".join("%-*s" if i == 0 else "%*s" for i in range(len(head)))

    def line(r):
        return fmt % tuple(x for pair in zip(widths, r) for x in pair)
    lines.append(line(head))
    lines.append("  ".join("-" * w for w in widths))
    for r in data[:-1]:
        lines.append(line(r))
    lines.append("  ".join("-" * w for w in widths))
    lines.append(line(data[-1]))
    return "\n".join(lines)


def parse_selection(items):
    """Positional args -> (modules, {module: [patterns]})."""
    modules, only = [], {}
    for item in items:
        item = item[len(PKG) + 1:] if item.startswith(PKG + ".") else item
        mod, _, rest = item.partition(".")
        if mod not in modules:
            modules.append(mod)
        if rest:
            only.setdefault(mod, []).append(item)
    return modules, only


def available(module):
    import importlib.util
    try:
        return importlib.util.find_spec(PKG + "." + module) is not None
    except ImportError:     # no "test" package at all
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tests", nargs="*",
                   help="modules (test_tasks) or test ids / globs "
                        "(test_tasks.CTask_CFuture_Tests.test_foo*); "
                        "default: all core modules")
    p.add_argument("--backend", choices=["io_uring", "epoll", "both"],
                   default="both")
    p.add_argument("--baseline", action="store_true",
                   help="run on the stdlib loop instead of ringloop")
    p.add_argument("--all-loops", action="store_true",
                   help="stdlib baseline and both ringloop backends")
    # Two children per core: most modules sleep or wait on sockets more than
    # they compute (test_ssl, test_taskgroups), and the run is bounded by
    # test_tasks anyway.
    p.add_argument("-j", "--jobs", type=int,
                   default=min(4, 2 * (os.cpu_count() or 1)),
                   help="children in parallel (default: 2 per core, at most 4)")
    p.add_argument("--test-timeout", type=float, default=60.0,
                   help="seconds one test may take before it counts as hung")
    p.add_argument("--module-timeout", type=float, default=600.0,
                   help="seconds one module may take on one loop")
    p.add_argument("--max-restarts", type=int, default=40,
                   help="restarts of a module after hung/crashed tests")
    p.add_argument("--markdown", metavar="FILE",
                   help="also write the tables as markdown")
    p.add_argument("--json", metavar="FILE", help="write every test's outcome")
    p.add_argument("--record", metavar="DIR",
                   help="write this run's summary for docs/compatibility.md "
                        "(tests/compat/render_doc.py) into DIR")
    p.add_argument("--workdir", help="where logs go (default: a temp dir)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print the detail of expected failures too")
    p.add_argument("--testloop-as-real", action="store_true",
                   help="diagnostic: give tests that ask for test_utils.TestLoop "
                        "without a time generator the real loop instead; run "
                        "the stdlib loop the same way and report the tests that "
                        "fail on ringloop only")
    p.add_argument("--asyncio-debug", action="store_true",
                   help="run the tests with PYTHONASYNCIODEBUG=1 (every loop in "
                        "debug mode); compare with --all-loops")
    p.add_argument("--list-expected", action="store_true",
                   help="print the expected-failure list as markdown and exit")
    # internal
    p.add_argument("--subst", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--preflight", choices=MODES[1:], help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--skip", help=argparse.SUPPRESS)
    p.add_argument("--only", action="append", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        return child_main(args)
    if args.preflight:
        return preflight_main(args.preflight)
    if args.list_expected:
        print(expected_markdown(load_expectations()))
        return 0

    if args.all_loops:
        modes = ["stdlib", "io_uring", "epoll"]
    elif args.testloop_as_real:
        modes = ["stdlib"] + (["io_uring", "epoll"] if args.backend == "both"
                              else [args.backend])
    elif args.baseline:
        modes = ["stdlib"]
    elif args.backend == "both":
        modes = ["io_uring", "epoll"]
    else:
        modes = [args.backend]

    modules, args.only = parse_selection(args.tests)
    if not modules:
        modules = DEFAULT_MODULES + [m for m in OPTIONAL_MODULES if available(m)]
    missing = [m for m in modules if not available(m)]
    if missing:
        print("not found in this Python (%s, %s): %s\nCPython's test suite is "
              "missing (Debian/Ubuntu: apt-get install libpython%s-testsuite)"
              % (sys.version.split()[0], sys.executable, ", ".join(missing),
                 PYVER))
        return 2

    if any(m != "stdlib" for m in modes):
        chk = subprocess.run(
            [sys.executable, "-c",
             "import ringloop, json; print(json.dumps(ringloop.backend_info()))"],
            capture_output=True, text=True)
        if chk.returncode != 0:
            print("cannot import ringloop on %s (install it: pip install -e .)"
                  "\n%s" % (sys.executable, chk.stderr.strip()))
            return 2
        print("ringloop backend_info(): %s" % chk.stdout.strip())
        for mode in modes:
            if mode == "stdlib":
                continue
            chk = subprocess.run([sys.executable, os.path.abspath(__file__),
                                  "--preflight", mode], capture_output=True, text=True,
                                 timeout=120, stdin=subprocess.DEVNULL,
                                 env=dict(os.environ, RINGLOOP_BACKEND=mode))
            if chk.returncode != 0:
                print("!" * 72 + "\nFATAL: the runner could not make ringloop (%s) the "
                      "loop asyncio creates on Python %s: the tests would run on "
                      "another loop.\n%s%s\n" % (mode, sys.version.split()[0],
                                                  chk.stdout, chk.stderr) + "!" * 72)
                return 2
        print("preflight: asyncio.new_event_loop(), asyncio.run(), asyncio.Runner() and "
              "IsolatedAsyncioTestCase run on ringloop (%s)"
              % ", ".join(m for m in modes if m != "stdlib"))

    ef = load_expectations()
    workdir = args.workdir or tempfile.mkdtemp(prefix="ringloop-compat-")
    os.makedirs(workdir, exist_ok=True)
    print("Python %s (%s); loops: %s; modules: %d; jobs: %d; logs: %s"
          % (sys.version.split()[0], sys.executable, ", ".join(modes),
             len(modules), args.jobs, workdir), flush=True)

    # Longest first, so the two workers finish together.
    weight = {"test_events": 0, "test_tasks": 1, "test_ssl": 2,
              "test_taskgroups": 3, "test_sslproto": 4}
    jobs = [(m, mode) for m in sorted(modules, key=lambda m: weight.get(m, 9))
            for mode in modes]
    results = {}
    lock = threading.Lock()
    t_start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(run_child, m, mode, args, workdir): (m, mode)
                for m, mode in jobs}
        for fut in concurrent.futures.as_completed(futs):
            m, mode = futs[fut]
            res = fut.result()
            results[(m, mode)] = res
            with lock:
                print("  done %-8s %-18s %4d tests %5.1fs%s" % (
                    mode, m, len(res.tests), res.elapsed,
                    " (restarts: %d)" % res.restarts if res.restarts else "")
                    , flush=True)

    if args.testloop_as_real:
        return report_substituted(results, modules, modes, ef, args.markdown)

    grand = dict.fromkeys(COLS, 0)
    all_problems = []
    md = []
    json_out = {}
    recorded_xfails, recorded_problems = {}, {}
    exit_code = 0
    for mode in modes:
        exp = Expectations(ef, mode)
        rows = []
        total = dict.fromkeys(COLS, 0)
        mode_problems = []
        mode_xfails = []
        for m in modules:
            res = results[(m, mode)]
            c, problems, xfails = classify(res, exp)
            rows.append((m, c, res.elapsed))
            for k in COLS:
                total[k] += c[k]
            mode_problems += problems
            mode_xfails += xfails
            json_out.setdefault(mode, {})[m] = {
                "counts": c, "elapsed": res.elapsed, "restarts": res.restarts,
                "fatal": res.fatal, "tests": res.tests}
        rows.append(("total", total, None))
        for k in COLS:
            grand[k] += total[k]
        recorded_xfails[mode] = [(tid, section, reason)
                                 for tid, section, _, reason in mode_xfails]
        recorded_problems[mode] = [(tid, kind) for tid, kind, _ in mode_problems]
        title = ("stdlib asyncio loop (baseline)" if mode == "stdlib"
                 else "ringloop, backend %s" % mode)
        print("\n== %s, Python %s" % (title, PYVER))
        print(format_table(rows))
        md.append("#### %s, Python %s\n\n%s\n" % (title, PYVER,
                                                  format_table(rows, True)))
        if mode_xfails and args.verbose:
            print("\nexpected failures (%s):" % mode)
            for tid, section, pat, reason in mode_xfails:
                print("  %s  [%s] %s" % (tid, section, reason))
        elif mode_xfails:
            by_section = {}
            for _, section, _, _ in mode_xfails:
                by_section[section] = by_section.get(section, 0) + 1
            print("expected failures by section: " + ", ".join(
                "%s %d" % kv for kv in sorted(by_section.items())))
        if mode_problems:
            print("\nFAILURES (%s):" % mode)
            for tid, kind, detail in mode_problems:
                print("--- %s: %s" % (kind.upper(), tid))
                if "--- faulthandler ---" in detail:
                    print(_indent(detail))
                else:
                    print(_indent(_last_lines(detail, 25)))
            all_problems += mode_problems
        if mode != "stdlib" and not args.tests:
            stale = [(s, pat) for s, pat in exp.patterns()
                     if (s, pat) not in exp.used]
            if stale:
                print("\nwarning: expected-failure entries that matched no "
                      "failing test on %s:" % mode)
                for s, pat in stale:
                    print("  [%s] %s" % (s, pat))

    if args.markdown:
        with open(args.markdown, "w") as f:
            if len(modes) > 1:
                f.write(combined_markdown(json_out, modules, modes) + "\n\n")
            f.write("\n".join(md))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(json_out, f, indent=1, sort_keys=True)

    if args.record:
        record.write(args.record, "cpython", modes,
                     {mode: {m: json_out[mode][m]["counts"] for m in modules}
                      for mode in modes},
                     recorded_xfails, recorded_problems, time.monotonic() - t_start)
    failed = grand["failed"] + grand["errors"] + grand["xpass"]
    if failed:
        exit_code = 1
    print("\n%d tests in %.0fs on %s; %d expected failures"
          % (grand["run"], time.monotonic() - t_start, ", ".join(modes),
             grand["xfail"]))
    print("%d passed, %d failed, %d skipped"
          % (grand["passed"], failed, grand["skipped"]))
    return exit_code


def report_substituted(results, modules, modes, ef, markdown=None):
    """--testloop-as-real: tests failing on ringloop but not on the stdlib loop.

    Tests listed in TESTLOOP_KEEP keep their TestLoop; any other ringloop-only
    failure fails this diagnostic run, unless an ordinary expected-failure
    section lists it."""
    print("\n== TestLoop replaced by the real loop (diagnostic), Python %s" % PYVER)
    head = ["module", "run"]
    for mode in modes:
        head += ["%s: pass" % mode, "on loop"]
    head += ["ringloop-only fail", "listed"]
    rows = []
    diffs = []
    used = set()
    for m in modules:
        base = results[(m, "stdlib")].tests
        row = [m, str(len(base))]
        only = listed = 0
        for mode in modes:
            res = results[(m, mode)]
            c, _, _ = classify(res, None)
            row += [str(c["passed"]), str(c["on loop"])]
            if mode == "stdlib":
                continue
            exp = Expectations(ef, mode)
            for tid, rec in sorted(res.tests.items()):
                if rec["outcome"] not in ("fail", "error", "uxsuccess"):
                    continue
                if base.get(tid, {}).get("outcome") in ("fail", "error",
                                                        "uxsuccess"):
                    continue
                hit = exp.lookup(tid)
                if hit is not None:
                    listed += 1
                    used.add(hit[1])
                else:
                    only += 1
                    diffs.append((mode, tid, rec.get("detail", "")))
        rows.append(row + [str(only), str(listed)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                    for i, (h, w) in enumerate(zip(head, widths))))
    for r in rows:
        print("  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                        for i, (x, w) in enumerate(zip(r, widths))))
    if markdown:
        with open(markdown, "w") as f:
            f.write("| " + " | ".join(head) + " |\n")
            f.write("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|\n")
            for r in rows:
                f.write("| " + " | ".join(r) + " |\n")
    for mode, tid, detail in diffs:
        print("--- FAILS ON RINGLOOP ONLY (%s): %s" % (mode, tid))
        print(_indent(_last_lines(detail, 25)))
    print("\n%d tests fail on ringloop but pass on the stdlib loop and are "
          "not listed" % len(diffs))
    return 1 if diffs else 0


def combined_markdown(json_out, modules, modes):
    """One table, a column group per loop: passed / expected failures /
    failed+errors / skipped, and how many tests ran on the loop under test."""
    head = ["module", "tests"]
    for mode in modes:
        head.append(mode if mode != "stdlib" else "stdlib (baseline)")
    head.append("on ringloop" if modes[-1] != "stdlib" else "on loop")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    totals = {mode: dict.fromkeys(COLS, 0) for mode in modes}

    def cell(c, mode):
        text = "%d" % c["passed"]
        extra = []
        if c["xfail"]:
            extra.append("%d xfail" % c["xfail"])
        bad = c["failed"] + c["errors"] + c["xpass"]
        if bad:
            extra.append("**%d failed**" % bad)
        if c["skipped"]:
            extra.append("%d skip" % c["skipped"])
        return text + (" (" + ", ".join(extra) + ")" if extra else "")

    for m in modules + ["total"]:
        if m == "total":
            cs = [totals[mode] for mode in modes]
        else:
            cs = [json_out[mode][m]["counts"] for mode in modes]
            for mode, c in zip(modes, cs):
                for k in COLS:
                    totals[mode][k] += c[k]
        run = max(c["run"] for c in cs)
        row = ["**total**" if m == "total" else m, str(run)]
        row += [cell(c, mode) for c, mode in zip(cs, modes)]
        row.append(str(cs[-1]["on loop"]))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def expected_markdown(ef):
    """The expected-failure list, grouped by reason, as markdown."""
    sections = [
        ("EXPECTED_FAILURES", "all", "all"),
        ("EXPECTED_FAILURES_BY_PYTHON", "by key", "all"),
        ("EXPECTED_HANGS_BY_PYTHON", "by key", "all"),
        ("EXPECTED_FAILURES_BY_BACKEND", "all", "by key"),
        ("ENVIRONMENT", "all", "all (stdlib too)"),
        ("ENVIRONMENT_BY_PYTHON", "by key", "all (stdlib too)"),
        ("TESTLOOP_KEEP", "all", "all"),
        ("KNOWN_BUGS", "all", "all"),
        ("KNOWN_BUGS_BY_PYTHON", "by key", "all"),
        ("KNOWN_BUGS_BY_BACKEND", "all", "by key"),
    ]
    out = []
    for name, py, backend in sections:
        table = getattr(ef, name, {})
        flat = []   # (python, backend, pattern, reason)
        if py == "by key":
            for key, sub in sorted(table.items()):
                flat += [(key, backend, pat, r) for pat, r in sub.items()]
        elif backend == "by key":
            for key, sub in sorted(table.items()):
                flat += [(py, key, pat, r) for pat, r in sub.items()]
        else:
            flat = [(py, backend, pat, r) for pat, r in table.items()]
        if not flat:
            continue
        out.append("#### %s\n" % name)
        by_reason = {}
        for pyv, be, pat, reason in flat:
            by_reason.setdefault((reason, pyv, be), []).append(pat)
        for (reason, pyv, be), pats in by_reason.items():
            where = []
            if pyv != "all":
                where.append("Python " + pyv)
            if be != "all":
                where.append("backend " + be)
            out.append("- **%s**%s (%d):" % (reason.replace("*", "\\*"),
                       " [%s]" % ", ".join(where) if where else "", len(pats)))
            for pat in pats:
                out.append("  - `%s`" % pat)
        out.append("")
    return "\n".join(out)


def _last_lines(text, n):
    lines = (text or "").rstrip().splitlines()
    return "\n".join(lines[-n:])


def _indent(text):
    return "\n".join("    " + line for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
