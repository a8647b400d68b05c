#!/usr/bin/env python3
"""Run uvloop's own test suite against ringloop, beside uvloop and asyncio.

uvloop's tests are not in this repository: the runner downloads the sdist of the
uvloop version installed in the interpreter that runs it (pip download, into a
cache directory outside the repo), extracts its ``tests/`` directory, and runs
it from there.

    python tests/compat/run_uvloop.py                     # uvloop, asyncio, both backends
    python tests/compat/run_uvloop.py --loops io_uring,epoll
    python tests/compat/run_uvloop.py test_tcp            # one module
    python tests/compat/run_uvloop.py 'test_tcp.Test_*_TCP.test_create_server_*'
    python tests/compat/run_uvloop.py --list-expected     # the expected-failure list

uvloop's test modules pair their tests: a shared base class of tests
(``_TestTCP``) is instantiated twice, ``Test_UV_TCP(_TestTCP, tb.UVTestCase)`` and
``Test_AIO_TCP(_TestTCP, tb.AIOTestCase)``, where the ``uvloop._testbase`` test
case classes provide ``new_loop()``.  For every asyncio class the runner makes a
third one, ``Test_RL_TCP``, from the same bases with ``tb.AIOTestCase`` replaced
by a ringloop test case whose ``new_loop()`` returns
``ringloop.new_event_loop(backend=...)`` and whose ``new_policy()`` is ringloop's
policy; the class body of the asyncio class (a test or an attribute such as
``NEW_LOOP``, the loop expression a signal test runs in a child process) is
copied, with loop expressions rewritten for ringloop.  The classes are made at
import time in the child process; uvloop's files on disk are not changed.

The ringloop test case says ``implementation = 'asyncio'``: the tests branch on
it where uvloop and asyncio are known to differ (asyncio's SSL protocol, which
ringloop uses too; the thread name prefix of the default executor, "asyncio" on
ringloop), so ringloop runs exactly the code the asyncio variant runs.
``--implementation ringloop`` is a diagnostic that takes the other branches.

Each (module, loop) pair runs in its own child process (``-j``: two per core,
at most 4), one JSON line per test to a file; faulthandler ends a child whose
test runs past ``--test-timeout`` and the runner starts the module again after
that test, which counts as an error.

Loops: ``uvloop`` runs the UV classes and uvloop's plain TestCases (its own API:
``uvloop.run``, its policy, its test base); ``asyncio`` the AIO classes;
``io_uring`` and ``epoll`` the generated RL classes.  A test of an RL class is
*required* when the same test passed on both the UV and the AIO class in this
run.  Tests that exist only for the UV variant (in a UV class body or a class
with no asyncio twin) are counted in the uvloop column as "UV only" and are
not required.

Expected failures live in ``tests/compat/uvloop_expected_failures.py``.  The
exit status is non-zero if a ringloop test fails that is not listed, if a
listed test passes (unexpected success), or if a module cannot be run.
Failures of uvloop's suite on uvloop or asyncio themselves are reported but do
not fail the run (they are not ringloop's).  Exit status 4: the sdist could
not be obtained (offline and not cached).
"""

import argparse
import fnmatch
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_cpython as _cp  # noqa: E402  (the shared child-side result streaming)
from pyversions import for_this_python  # noqa: E402
import record  # noqa: E402
sys.path.pop(0)

MODES = ("uvloop", "asyncio", "io_uring", "epoll")
BACKENDS = ("io_uring", "epoll")
PYVER = "%d.%d" % sys.version_info[:2]
EXIT_NO_SDIST = 4

# Rewrites of attributes copied from an asyncio class body into the ringloop
# class: (attribute, asyncio value, ringloop value).  test_signals' NEW_LOOP is
# the expression a child process evaluates to make its loop (the child imports
# asyncio and uvloop only; RINGLOOP_BACKEND, inherited, picks the backend).
ATTR_REWRITES = [
    ("NEW_LOOP", "asyncio.new_event_loop()",
     "__import__('ringloop').new_event_loop()"),
    ("NEW_LOOP", "uvloop.new_event_loop()",
     "__import__('ringloop').new_event_loop()"),
]

# Modules not run by default (named on the command line, they run).
EXCLUDED_MODULES = {
    "test_sourcecode": "flake8 and mypy over uvloop's own source tree (the "
                       "runner extracts tests/ only); no event loop involved",
}

# Longest first (measured), so the workers finish together.
WEIGHT = {"test_tcp": 0, "test_process": 1, "test_unix": 2, "test_context": 3,
          "test_base": 4, "test_signals": 5, "test_sockets": 6}


# ---------------------------------------------------------------------------
# The sdist: download once into a cache, extract tests/.
# ---------------------------------------------------------------------------

class SdistUnavailable(Exception):
    pass


def cache_dir():
    base = os.environ.get("RINGLOOP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "ringloop")
    return os.path.join(base, "uvloop-sdist")


def uvloop_version():
    try:
        return importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        return None


def obtain_tests(version, cache, log=print):
    """The path of the extracted tests/ of uvloop==version's sdist."""
    top = "uvloop-%s" % version
    dest = os.path.join(cache, top)
    tests = os.path.join(dest, "tests")
    marker = os.path.join(dest, ".extracted")
    if os.path.exists(marker) and os.path.isdir(tests):
        return tests
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, top + ".tar.gz")
    if not os.path.exists(tarball):
        log("downloading the uvloop %s sdist into %s" % (version, cache))
        # Only uvloop itself as source: "--no-binary :all:" would also build
        # pip's isolated build environment (Cython, setuptools) from source,
        # which takes minutes; without isolation, pip prepares uvloop's
        # metadata with the venv's own setuptools (1 s).
        base = [sys.executable, "-m", "pip", "download", "--no-deps",
                "--no-binary", "uvloop",
                "--disable-pip-version-check", "-d", cache,
                "uvloop==%s" % version]
        tries = [base + ["--no-build-isolation"], base]
        err = ""
        for cmd in tries:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL)
            if p.returncode == 0 and os.path.exists(tarball):
                break
            err += "$ %s\n%s%s\n" % (" ".join(cmd), p.stdout[-2000:],
                                     p.stderr[-3000:])
        else:
            raise SdistUnavailable(
                "could not download the uvloop %s sdist (offline, or the "
                "registry has no sdist for it), and it is not cached in %s\n%s"
                % (version, cache, err))
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=cache)
    try:
        with tarfile.open(tarball) as tf:
            members = [m for m in tf.getmembers()
                       if m.name.startswith(top + "/tests/")
                       and (m.isfile() or m.isdir())
                       and ".." not in m.name.split("/")]
            if not members:
                raise SdistUnavailable("%s has no %s/tests/" % (tarball, top))
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(tmp, members=members, **kw)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.rename(os.path.join(tmp, top), dest)
        with open(marker, "w") as f:
            f.write(tarball + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tests


def discover_modules(tests_dir):
    return sorted(n[:-3] for n in os.listdir(tests_dir)
                  if n.startswith("test_") and n.endswith(".py"))


# ---------------------------------------------------------------------------
# Child: import one module, build the classes of one loop, stream results.
# ---------------------------------------------------------------------------

def _install_ringloop(backend):
    """asyncio's default policy makes ringloop loops; return the checked factory."""
    import asyncio
    import ringloop

    def check(loop):
        if not isinstance(loop, ringloop.Loop):
            raise RuntimeError("uvloop runner: expected a ringloop.Loop, got %r"
                               % (type(loop),))
        if loop.backend_name != backend:
            raise RuntimeError("uvloop runner: loop runs on backend %r, %r was "
                               "requested" % (loop.backend_name, backend))
        _cp.TRACK.ring += 1
        _cp.TOTAL["ring"] += 1
        return loop

    class RingloopPolicy(ringloop.EventLoopPolicy):
        def new_event_loop(self):
            return check(super().new_event_loop())

    asyncio.DefaultEventLoopPolicy = RingloopPolicy
    asyncio.set_event_loop_policy(None)
    return (lambda: check(ringloop.new_event_loop(backend=backend))), RingloopPolicy


def _ringloop_case(tb, factory, policy, impl):
    """uvloop._testbase's AIOTestCase with a ringloop loop and policy."""
    import asyncio

    class RingloopTestCase(tb.BaseTestCase):
        # See the module docstring: the tests' asyncio branches.
        implementation = impl

        def setUp(self):
            super().setUp()
            # As AIOTestCase does: the tests that run subprocesses on 3.11 get
            # a child watcher attached (ringloop watches its children itself,
            # by pidfd, and never asks the watcher).
            if sys.version_info < (3, 12):
                watcher = asyncio.SafeChildWatcher()
                watcher.attach_loop(self.loop)
                asyncio.set_child_watcher(watcher)

        def tearDown(self):
            if sys.version_info < (3, 12):
                asyncio.set_child_watcher(None)
            super().tearDown()

        def new_loop(self):
            return factory()

        def new_policy(self):
            return policy()

    return RingloopTestCase


def _rl_name(aio_name):
    if "AIO" in aio_name:
        return aio_name.replace("AIO", "RL", 1)
    if "Asyncio" in aio_name:
        return aio_name.replace("Asyncio", "Ringloop", 1)
    return aio_name + "_RL"


def module_classes(mod, tb):
    """(uv, aio, plain, pairs): the module's TestCase classes by kind, and
    pairs [(uv class or None, aio class, shared bases)]."""
    import unittest
    uv, aio, plain = [], [], []
    for name, obj in sorted(vars(mod).items()):
        if not (isinstance(obj, type) and issubclass(obj, unittest.TestCase)):
            continue
        if obj in (tb.BaseTestCase, tb.UVTestCase, tb.AIOTestCase):
            continue
        if name != obj.__name__:
            continue    # an alias (test_tcp imports nothing so, but be safe)
        if issubclass(obj, tb.UVTestCase):
            uv.append(obj)
        elif issubclass(obj, tb.AIOTestCase):
            aio.append(obj)
        else:
            plain.append(obj)

    def shared(cls, case):
        return tuple(b for b in cls.__bases__ if b is not case)

    pairs = []
    for a in aio:
        if tb.AIOTestCase not in a.__bases__:
            raise RuntimeError("uvloop runner: %s.%s does not name AIOTestCase "
                               "among its bases; update the runner"
                               % (mod.__name__, a.__name__))
        key = shared(a, tb.AIOTestCase)
        twins = [u for u in uv if tb.UVTestCase in u.__bases__
                 and shared(u, tb.UVTestCase) == key and key]
        pairs.append((twins[0] if len(twins) == 1 else None, a, key))
    return uv, aio, plain, pairs


def _copy_class(mod, src, bases, case, name, doc):
    """A class with src's body (rewritten for ringloop) on bases + (case,).

    Methods that use super() without arguments close over a __class__ cell:
    the copy gets a cell of its own that points to the new class."""
    import types
    body = {}
    cells = []
    for k, v in src.__dict__.items():
        if k in ("__dict__", "__weakref__", "__module__", "__qualname__",
                 "__doc__"):
            continue
        code = getattr(v, "__code__", None)
        if code is not None and "__class__" in code.co_freevars:
            closure = []
            for var, cell in zip(code.co_freevars, v.__closure__):
                if var == "__class__":
                    cell = types.CellType()
                    cells.append(cell)
                closure.append(cell)
            f = types.FunctionType(code, v.__globals__, v.__name__,
                                   v.__defaults__, tuple(closure))
            f.__kwdefaults__ = v.__kwdefaults__
            f.__dict__.update(v.__dict__)     # unittest.skip* marks
            f.__qualname__ = "%s.%s" % (name, k)
            v = f
        for attr, old, rl_value in ATTR_REWRITES:
            if k == attr and v == old:
                v = rl_value
        if isinstance(v, str) and ("asyncio.new_event_loop" in v or
                                   "uvloop.new_event_loop" in v):
            raise RuntimeError("uvloop runner: %s.%s.%s = %r makes a loop "
                               "that is not ringloop's; add a rewrite to "
                               "ATTR_REWRITES" % (mod.__name__, src.__name__,
                                                  k, v))
        body[k] = v
    body["__module__"] = mod.__name__
    body["__qualname__"] = name
    body["__doc__"] = doc
    # Built by the test base's metaclass, which refuses duplicate tests.
    cls = type(src)(name, tuple(bases) + (case,), body)
    for cell in cells:
        cell.cell_contents = cls
    return cls


def _rluv_name(uv_name):
    if "UV" in uv_name:
        return uv_name.replace("UV", "RLUV", 1)
    return uv_name + "_RLUV"


def make_rl_class(mod, aio_cls, bases, case):
    """The ringloop twin of an asyncio class: same bases and class body."""
    return _copy_class(mod, aio_cls, bases, case, _rl_name(aio_cls.__name__),
                       "%s on ringloop (uvloop runner)" % aio_cls.__name__)


def make_rluv_class(mod, tb, uv_cls, case):
    """A UV class with tb.UVTestCase replaced by the ringloop test case; the
    runner selects from it only the tests its asyncio twin lacks."""
    bases = tuple(b for b in uv_cls.__bases__ if b is not tb.UVTestCase)
    return _copy_class(mod, uv_cls, bases, case, _rluv_name(uv_cls.__name__),
                       "%s's uvloop-only tests on ringloop (uvloop runner)"
                       % uv_cls.__name__)


def _separate_free_ports(tb, base):
    """tb.find_free_port() scans from port 50000 in every process: children
    running side by side pick the same port and one fails with EADDRINUSE
    (seen in test_context), and 50000 lies in Linux's ephemeral range, where a
    client socket may hold it.  Each child scans from its own base instead,
    below the ephemeral range (the parent hands out bases PORTS_PER_CHILD
    apart)."""
    orig = tb.find_free_port

    def find_free_port(start_from=None):
        return orig(base if start_from is None else start_from)
    tb.find_free_port = find_free_port


def child_main(args):
    import faulthandler
    import importlib
    import unittest

    out = open(args.out, "a", buffering=1)

    def emit(**rec):
        out.write(json.dumps(rec) + "\n")
        out.flush()

    faulthandler.enable()
    mode = args.mode
    sys.path.insert(0, args.tests_dir)
    loader = unittest.TestLoader()
    selection = []     # (class, test names or None for all)
    try:
        factory = policy = None
        if mode in BACKENDS:
            factory, policy = _install_ringloop(mode)
        from uvloop import _testbase as tb
        _separate_free_ports(tb, args.port_base)
        mod = importlib.import_module(args.child)
        uv, aio, plain, pairs = module_classes(mod, tb)
        case = None
        if mode in BACKENDS:
            case = _ringloop_case(tb, factory, policy, args.implementation)
        info = []
        twin_names = {}    # UV class -> its asyncio twin's test names
        for u, a, bases in pairs:
            names = list(loader.getTestCaseNames(a))
            if u is not None:
                twin_names[u] = set(names)
            if case is not None:
                rc = make_rl_class(mod, a, bases, case)
                setattr(mod, rc.__name__, rc)
                selection.append((rc, None))
            info.append({"uv": u.__name__ if u else None, "aio": a.__name__,
                         "rl": _rl_name(a.__name__), "aio_tests": names})
        # UV-only tests (a UV class body's own, or a UV class without an
        # asyncio twin) on ringloop: reported, not required.
        rluv = {}
        for u in uv:
            only_uv = [n for n in loader.getTestCaseNames(u)
                       if n not in twin_names.get(u, ())]
            if not only_uv:
                continue
            rluv[_rluv_name(u.__name__)] = u.__name__
            if case is not None and not args.no_uv_only:
                rc = make_rluv_class(mod, tb, u, case)
                setattr(mod, rc.__name__, rc)
                selection.append((rc, only_uv))
    except BaseException:
        emit(kind="fatal", error=traceback.format_exc())
        return 3
    emit(kind="classes", pairs=info, rluv=rluv,
         plain=[c.__name__ for c in plain], uv=[c.__name__ for c in uv])

    if mode == "uvloop":
        selection = [(c, None) for c in uv + plain]
        counted = (tb.UVTestCase,)
    elif mode == "asyncio":
        selection = [(c, None) for c in aio]
        counted = (tb.AIOTestCase,)
    else:
        counted = ()
    # Count the loops the uvloop/asyncio test cases make (ringloop's are
    # counted by the checked factory): a module whose tests ran on no loop
    # under test is an error.
    for base in counted:
        orig = base.new_loop

        def new_loop(self, _orig=orig):
            _cp.TRACK.ring += 1
            _cp.TOTAL["ring"] += 1
            return _orig(self)
        base.new_loop = new_loop

    tests = []
    for cls, names in selection:
        if names is None:
            tests += list(_cp._iter_tests(loader.loadTestsFromTestCase(cls)))
        else:
            tests += [cls(n) for n in names]
    skip = set()
    if args.skip and os.path.exists(args.skip):
        with open(args.skip) as f:
            skip = set(line.strip() for line in f if line.strip())
    only = args.only or []
    selected = [t for t in tests if t.id() not in skip and
                (not only or any(fnmatch.fnmatchcase(t.id(), p) for p in only))]
    # EXPECTED_HANGS: recorded as errors, NOT_ON_RINGLOOP as skipped; neither
    # is run.
    for pats, outcome, why in (
            (args.not_run or [], "error", "not run: listed in EXPECTED_HANGS"),
            (args.not_applicable or [], "skip",
             "not run: listed in NOT_ON_RINGLOOP")):
        for t in [t for t in selected
                  if any(fnmatch.fnmatchcase(t.id(), p) for p in pats)]:
            selected.remove(t)
            emit(kind="test", id=t.id(), outcome=outcome, ring=0, other={},
                 dur=0, detail=why)

    result = _cp._make_result_class()(emit, args.test_timeout)
    emit(kind="begin", count=len(selected))
    unittest.TestSuite(selected).run(result)
    emit(kind="end", ring=_cp.TOTAL["ring"], other=0)
    out.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ---------------------------------------------------------------------------
# Parent.
# ---------------------------------------------------------------------------

def load_expectations():
    sys.path.insert(0, HERE)
    try:
        import uvloop_expected_failures as ef
    finally:
        sys.path.pop(0)
    return ef


class Expectations(_cp.Expectations):
    """The sections of uvloop_expected_failures.py that apply to one loop."""

    def __init__(self, ef, mode):
        self.mode = mode
        self.tables = []
        self.used = set()
        if mode not in BACKENDS:
            return
        for name in ("ENVIRONMENT", "EXPECTED_FAILURES", "EXPECTED_HANGS",
                     "KNOWN_BUGS"):
            self.tables.append((name, getattr(ef, name, {})))
        for name in ("ENVIRONMENT_BY_PYTHON", "EXPECTED_FAILURES_BY_PYTHON",
                     "KNOWN_BUGS_BY_PYTHON"):
            self.tables.append((name, for_this_python(getattr(ef, name, {}))))
        for name in ("EXPECTED_FAILURES_BY_BACKEND", "KNOWN_BUGS_BY_BACKEND"):
            self.tables.append((name, getattr(ef, name, {}).get(mode, {})))


class ModuleResult:
    def __init__(self, module, mode):
        self.module = module
        self.mode = mode
        self.tests = {}
        self.fatal = None
        self.restarts = 0
        self.elapsed = 0.0
        self.ring = 0
        self.classes = None
        self.log = None


PORT_BASE = 10000          # below Linux's ephemeral ports (32768-60999)
PORTS_PER_CHILD = 200


def run_child(module, mode, args, workdir, port_base):
    """Run one module on one loop to completion (restarting after hangs)."""
    res = ModuleResult(module, mode)
    tag = "%s-%s" % (mode, module)
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
    env.pop("RINGLOOP_BACKEND", None)
    if mode in BACKENDS:
        env["RINGLOOP_BACKEND"] = mode
    t0 = time.monotonic()
    deadline = t0 + args.module_timeout
    done = set()
    while True:
        cmd = [sys.executable, "-X", "faulthandler", os.path.abspath(__file__),
               "--child", module, "--mode", mode, "--out", out,
               "--skip", skipf, "--test-timeout", str(args.test_timeout),
               "--tests-dir", args.tests_dir,
               "--implementation", args.implementation,
               "--port-base", str(port_base)]
        if args.no_uv_only:
            cmd.append("--no-uv-only")
        if mode in BACKENDS:
            ef = load_expectations()
            for pat in getattr(ef, "EXPECTED_HANGS", {}):
                cmd += ["--not-run", pat]
            for pat in getattr(ef, "NOT_ON_RINGLOOP", {}):
                cmd += ["--not-applicable", pat]
        for pat in args.only.get(module, []):
            cmd += ["--only", pat]
        pos = os.path.getsize(out) if os.path.exists(out) else 0
        with open(logf, "ab") as log:
            log.write(("\n==== %s\n" % " ".join(cmd)).encode())
            log.flush()
            logpos = log.tell()
            # The tests' cwd: a scratch directory (some write files there).
            proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, env=env,
                                    cwd=workdir, start_new_session=True)
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
                    res.tests[rec["id"]] = rec
                elif kind == "classes":
                    res.classes = rec
                elif kind == "fatal":
                    res.fatal = rec["error"]
                elif kind == "end":
                    ended = True
                    res.ring += rec["ring"]
        if ended or res.fatal:
            break
        tail = _cp._crash_report(logf, logpos)
        why = ("module timeout (%ss)" % args.module_timeout if timed_out else
               "process died (exit status %s): hang past --test-timeout=%ss "
               "or crash" % (rc, args.test_timeout))
        if started is None:
            res.fatal = "%s outside any test\n%s" % (why, tail)
            break
        done.add(started)
        res.tests[started] = {
            "kind": "test", "id": started, "outcome": "error",
            "detail": "%s\n--- faulthandler ---\n%s" % (why, tail),
            "ring": 0, "other": {}, "dur": None, "hang": True}
        if timed_out or res.restarts >= args.max_restarts:
            res.fatal = "%s; gave up after %d restarts" % (why, res.restarts)
            break
        res.restarts += 1
        with open(skipf, "w") as f:
            f.write("\n".join(sorted(done)) + "\n")
    res.elapsed = time.monotonic() - t0
    res.log = logf
    return res


# Modules whose tests bind a fixed address: no two children that run any of
# them at the same time (test_udp's test_create_datagram_1 and test_context's
# test_datagram_protocol both bind UDP 127.0.0.1:8888).
EXCLUSIVE = {"test_udp": "udp:8888", "test_context": "udp:8888"}


def run_jobs(jobs, args, workdir):
    """Run the (module, mode) jobs, args.jobs at a time, in the given order but
    never two of one EXCLUSIVE group at once; {(module, mode): ModuleResult}."""
    results = {}
    pending = [(i, m, mode) for i, (m, mode) in enumerate(jobs)]
    busy = set()
    cond = threading.Condition()

    def worker():
        while True:
            with cond:
                while True:
                    if not pending:
                        return
                    job = next((j for j in pending
                                if EXCLUSIVE.get(j[1]) not in busy), None)
                    if job is not None:
                        break
                    cond.wait()
                pending.remove(job)
                group = EXCLUSIVE.get(job[1])
                if group:
                    busy.add(group)
            i, m, mode = job
            try:
                res = run_child(m, mode, args, workdir,
                                PORT_BASE + i % 100 * PORTS_PER_CHILD)
            except BaseException:
                res = ModuleResult(m, mode)
                res.fatal = "runner error:\n" + traceback.format_exc()
            with cond:
                busy.discard(group)
                results[(m, mode)] = res
                print("  done %-8s %-22s %4d tests %5.1fs%s" % (
                    mode, m, len(res.tests), res.elapsed,
                    " (restarts: %d)" % res.restarts if res.restarts else ""),
                    flush=True)
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


COLS = ["run", "passed", "failed", "errors", "skipped", "xfail", "xpass",
        "required", "req. passed", "UV only", "UV only passed"]
BAD = ("fail", "error", "uxsuccess")


class Pairing:
    """Which test of one loop corresponds to which test of another."""

    def __init__(self, module, classes):
        self.module = module
        self.rl_to = {}          # RL class -> (UV class or None, AIO class)
        self.aio_to_uv = {}
        self.uv_shared = {}      # UV class -> names of its asyncio twin's tests
        for rluv, uv in (classes or {}).get("rluv", {}).items():
            self.rl_to[rluv] = (uv, None)
        self.rluv = set((classes or {}).get("rluv", {}))
        for p in (classes or {}).get("pairs", []):
            self.rl_to[p["rl"]] = (p["uv"], p["aio"])
            self.aio_to_uv[p["aio"]] = p["uv"]
            if p["uv"]:
                self.uv_shared[p["uv"]] = set(p["aio_tests"])

    def uv_only(self, tid):
        """A uvloop test with no asyncio twin (a UV class body's own test, a
        class with no asyncio twin, a plain TestCase of uvloop's API)."""
        _, cls, meth = tid.rsplit(".", 2)
        return meth not in self.uv_shared.get(cls, ())

    def twins(self, tid, mode):
        """(uv id or None, aio id or None) of a test of `mode`."""
        mod, cls, meth = tid.rsplit(".", 2)
        if mode in BACKENDS:
            uv, aio = self.rl_to.get(cls, (None, None))
        elif mode == "asyncio":
            uv, aio = self.aio_to_uv.get(cls), cls
        else:
            return tid, None
        return (("%s.%s.%s" % (mod, uv, meth)) if uv else None,
                ("%s.%s.%s" % (mod, aio, meth)) if aio else None)


def classify(res, exp, results, pairing):
    """Counts, problems [(id, kind, detail)] and xfails for one module/loop."""
    c = dict.fromkeys(COLS, 0)
    problems, xfails = [], []
    uvres = results.get((res.module, "uvloop"))
    aiores = results.get((res.module, "asyncio"))

    def outcome(r, tid):
        if r is None or tid is None:
            return None
        rec = r.tests.get(tid)
        return rec["outcome"] if rec else None

    for tid in sorted(res.tests):
        rec = res.tests[tid]
        out = rec["outcome"]
        c["run"] += 1
        uv_id, aio_id = pairing.twins(tid, res.mode)
        required = (outcome(uvres, uv_id) == "pass" and
                    outcome(aiores, aio_id) == "pass")
        if res.mode == "uvloop" and pairing.uv_only(tid):
            c["UV only"] += 1
        if res.mode in BACKENDS and tid.rsplit(".", 2)[1] in pairing.rluv:
            c["UV only"] += 1
            if out == "pass":
                c["UV only passed"] += 1
        if res.mode in BACKENDS and required:
            c["required"] += 1
            if out == "pass":
                c["req. passed"] += 1
        hit = exp.lookup(tid) if exp is not None else None
        if hit is not None:
            exp.used.add((hit[0], hit[1]))
        if out in ("fail", "error"):
            if hit is not None:
                c["xfail"] += 1
                xfails.append((tid, hit[0], hit[1], hit[2]))
            else:
                c["failed" if out == "fail" else "errors"] += 1
                if res.mode in BACKENDS:
                    why = ("passes on uvloop and asyncio" if required else
                           "uvloop: %s, asyncio: %s"
                           % (outcome(uvres, uv_id) or "absent",
                              outcome(aiores, aio_id) or "absent"))
                    kind = "%s (%s)" % (out, why)
                else:
                    kind = out
                problems.append((tid, kind, rec.get("detail", "")))
        elif out == "skip":
            c["skipped"] += 1
        elif out == "xfail":
            c["xfail"] += 1
        elif out == "uxsuccess":
            c["xpass"] += 1
            problems.append((tid, "unexpected success", rec.get("detail", "")))
        else:
            if hit is not None:
                c["xpass"] += 1
                problems.append((tid, "unexpected success",
                                 "listed in %s (%s: %s) but passed" % hit))
            else:
                c["passed"] += 1
    if res.fatal:
        c["errors"] += 1
        problems.append(("[module %s]" % res.module, "error", res.fatal))
    if res.mode in BACKENDS and not res.fatal and res.ring == 0 and any(
            r["outcome"] != "skip" for r in res.tests.values()):
        c["errors"] += 1
        problems.append(("[module %s]" % res.module, "error",
                         "no ringloop loop was created by this module's tests"))
    return c, problems, xfails


def format_table(rows, cols, markdown=False):
    head = ["module"] + cols + ["time"]
    data = [[name] + [str(c[k]) for k in cols] +
            ["%.0fs" % secs if secs is not None else ""]
            for name, c, secs in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in data]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in data)) for i, h in enumerate(head)]

    def line(r):
        return "  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                         for i, (x, w) in enumerate(zip(r, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), sep] + [line(r) for r in data[:-1]] +
                     [sep, line(data[-1])])


def combined_markdown(counts, modules, modes):
    """One table: a cell per loop (passed, expected failures, failed, skipped),
    and how many ringloop tests were required (passed on uvloop and asyncio)."""
    head = ["module"] + ["%s" % m for m in modes]
    rl_modes = [m for m in modes if m in BACKENDS]
    if rl_modes:
        head.append("required: passed on %s" % " / ".join(rl_modes))
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]

    def cell(c, mode):
        extra = []
        if c["xfail"]:
            extra.append("%d xfail" % c["xfail"])
        bad = c["failed"] + c["errors"] + c["xpass"]
        if bad:
            extra.append("**%d failed**" % bad if mode in BACKENDS
                         else "%d failed" % bad)
        if c["skipped"]:
            extra.append("%d skip" % c["skipped"])
        if mode != "asyncio" and c["UV only"]:
            extra.append("%d UV only" % c["UV only"])
        return "%d/%d" % (c["passed"], c["run"]) + (
            " (" + ", ".join(extra) + ")" if extra else "")

    for m in modules + ["total"]:
        row = ["**total**" if m == "total" else m]
        for mode in modes:
            row.append(cell(counts[(m, mode)], mode))
        if rl_modes:
            row.append(" / ".join(str(counts[(m, r)]["req. passed"])
                                  for r in rl_modes) +
                       " of %d" % counts[(m, rl_modes[0])]["required"])
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def expected_markdown(ef):
    sections = [
        ("EXPECTED_FAILURES", "all", "all"),
        ("EXPECTED_FAILURES_BY_PYTHON", "by key", "all"),
        ("EXPECTED_FAILURES_BY_BACKEND", "all", "by key"),
        ("EXPECTED_HANGS", "all", "all"),
        ("NOT_ON_RINGLOOP", "all", "all"),
        ("ENVIRONMENT", "all", "all"),
        ("ENVIRONMENT_BY_PYTHON", "by key", "all"),
        ("KNOWN_BUGS", "all", "all"),
        ("KNOWN_BUGS_BY_PYTHON", "by key", "all"),
        ("KNOWN_BUGS_BY_BACKEND", "all", "by key"),
    ]
    out = []
    for name, py, backend in sections:
        table = getattr(ef, name, {})
        flat = []
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
            where = ([("Python " + pyv)] if pyv != "all" else []) + \
                    ([("backend " + be)] if be != "all" else [])
            out.append("- **%s**%s (%d):" % (reason.replace("*", "\\*"),
                       " [%s]" % ", ".join(where) if where else "", len(pats)))
            out += ["  - `%s`" % p for p in pats]
        out.append("")
    return "\n".join(out)


def parse_selection(items):
    modules, only = [], {}
    for item in items:
        mod, _, rest = item.partition(".")
        if mod not in modules:
            modules.append(mod)
        if rest:
            only.setdefault(mod, []).append(item)
    return modules, only


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tests", nargs="*",
                   help="modules (test_tcp) or test ids / globs "
                        "(test_tcp.Test_*_TCP.test_create_server_*)")
    p.add_argument("--loops", default=",".join(MODES),
                   help="comma-separated, of %s (default: all; a ringloop "
                        "test is only 'required' when uvloop and asyncio ran "
                        "too)" % ", ".join(MODES))
    p.add_argument("-j", "--jobs", type=int,
                   default=min(4, 2 * (os.cpu_count() or 1)),
                   help="children in parallel (default: 2 per core, at most 4)")
    p.add_argument("--test-timeout", type=float, default=60.0)
    p.add_argument("--module-timeout", type=float, default=600.0)
    p.add_argument("--max-restarts", type=int, default=20)
    p.add_argument("--implementation", default="asyncio",
                   help="the ringloop test case's `implementation` (default "
                        "asyncio; 'ringloop' takes the tests' non-asyncio "
                        "branches: a diagnostic)")
    p.add_argument("--no-uv-only", action="store_true",
                   help="do not run uvloop's UV-only tests on ringloop")
    p.add_argument("--tests-dir", help="an extracted uvloop tests/ directory "
                   "(default: download the sdist of the installed uvloop)")
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--record", metavar="DIR",
                   help="write this run's summary for docs/compatibility.md "
                        "(tests/compat/render_doc.py) into DIR")
    p.add_argument("--workdir")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--asyncio-debug", action="store_true")
    p.add_argument("--list-expected", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--skip", help=argparse.SUPPRESS)
    p.add_argument("--only", action="append", help=argparse.SUPPRESS)
    p.add_argument("--not-run", action="append", help=argparse.SUPPRESS)
    p.add_argument("--port-base", type=int, default=50000, help=argparse.SUPPRESS)
    p.add_argument("--not-applicable", action="append", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        return child_main(args)
    if args.list_expected:
        print(expected_markdown(load_expectations()))
        return 0

    modes = [m.strip() for m in args.loops.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error("unknown loop(s) %s; choose from %s" % (bad, MODES))
    modes = [m for m in MODES if m in modes]

    version = uvloop_version()
    if version is None:
        print("uvloop is not installed in %s: its tests run beside it "
              "(pip install uvloop)" % sys.executable)
        return 2
    if not args.tests_dir:
        try:
            args.tests_dir = obtain_tests(version, cache_dir())
        except SdistUnavailable as e:
            print("=" * 72 + "\nERROR: uvloop's test suite is unavailable: %s\n"
                  % e + "=" * 72, flush=True)
            return EXIT_NO_SDIST
    args.tests_dir = os.path.abspath(args.tests_dir)

    modules, args.only = parse_selection(args.tests)
    all_modules = discover_modules(args.tests_dir)
    if not modules:
        modules = [m for m in all_modules if m not in EXCLUDED_MODULES]
    missing = [m for m in modules if m not in all_modules]
    if missing:
        print("no such module in %s: %s" % (args.tests_dir, ", ".join(missing)))
        return 2

    if any(m in BACKENDS for m in modes):
        chk = subprocess.run(
            [sys.executable, "-c",
             "import ringloop, json; print(json.dumps(ringloop.backend_info()))"],
            capture_output=True, text=True)
        if chk.returncode != 0:
            print("cannot import ringloop on %s\n%s" % (sys.executable,
                                                        chk.stderr.strip()))
            return 2
        print("ringloop backend_info(): %s" % chk.stdout.strip())

    ef = load_expectations()
    workdir = args.workdir or tempfile.mkdtemp(prefix="ringloop-uvloop-")
    os.makedirs(workdir, exist_ok=True)
    print("Python %s (%s); uvloop %s tests from %s; loops: %s; modules: %d; "
          "jobs: %d; logs: %s" % (sys.version.split()[0], sys.executable,
                                  version, args.tests_dir, ", ".join(modes),
                                  len(modules), args.jobs, workdir), flush=True)

    jobs = [(m, mode) for m in sorted(modules, key=lambda m: WEIGHT.get(m, 99))
            for mode in modes]
    t_start = time.monotonic()
    results = run_jobs(jobs, args, workdir)

    counts = {}
    md = []
    json_out = {}
    grand = {mode: dict.fromkeys(COLS, 0) for mode in modes}
    rl_failed = 0
    recorded_xfails, recorded_problems = {}, {}
    for mode in modes:
        exp = Expectations(ef, mode)
        rows = []
        problems_all, xfails_all = [], []
        for m in modules:
            res = results[(m, mode)]
            classes = res.classes or next(
                (results[(m, o)].classes for o in modes
                 if results[(m, o)].classes), None)
            c, problems, xfails = classify(res, exp, results,
                                           Pairing(m, classes))
            counts[(m, mode)] = c
            rows.append((m, c, res.elapsed))
            for k in COLS:
                grand[mode][k] += c[k]
            problems_all += problems
            xfails_all += xfails
            json_out.setdefault(mode, {})[m] = {
                "counts": c, "elapsed": res.elapsed, "restarts": res.restarts,
                "fatal": res.fatal, "tests": res.tests}
        counts[("total", mode)] = grand[mode]
        rows.append(("total", grand[mode], None))
        recorded_xfails[mode] = [(tid, section, reason)
                                 for tid, section, _, reason in xfails_all]
        recorded_problems[mode] = [(tid, kind) for tid, kind, _ in problems_all]
        cols = [k for k in COLS if not (
            (k in ("required", "req. passed") and mode not in BACKENDS) or
            (k == "UV only" and mode == "asyncio") or k == "UV only passed")]
        title = {"uvloop": "uvloop (its own suite, UV classes)",
                 "asyncio": "asyncio's loop (AIO classes)"}.get(
                     mode, "ringloop, backend %s (RL classes)" % mode)
        print("\n== %s, Python %s" % (title, PYVER))
        print(format_table(rows, cols))
        md.append("**%s, Python %s**\n\n%s\n" % (title, PYVER,
                                                 format_table(rows, cols, True)))
        if xfails_all:
            if args.verbose:
                print("\nexpected failures (%s):" % mode)
                for tid, section, _, reason in xfails_all:
                    print("  %s  [%s] %s" % (tid, section, reason))
            else:
                by = {}
                for _, section, _, _ in xfails_all:
                    by[section] = by.get(section, 0) + 1
                print("expected failures by section: " + ", ".join(
                    "%s %d" % kv for kv in sorted(by.items())))
        if problems_all:
            if mode in BACKENDS:
                print("\nFAILURES (%s):" % mode)
                rl_failed += len(problems_all)
            else:
                print("\nfailures of uvloop's suite on %s itself (reported, not "
                      "ringloop's; its ringloop twins are not required):" % mode)
            for tid, kind, detail in problems_all:
                print("--- %s: %s" % (kind.upper(), tid))
                if mode in BACKENDS or args.verbose:
                    text = detail or ""
                    print(_cp._indent(text if "--- faulthandler ---" in text
                                      else _cp._last_lines(text, 25)))
        if mode in BACKENDS and not args.tests:
            stale = [(s, pat) for s, pat in exp.patterns()
                     if (s, pat) not in exp.used]
            if stale:
                print("\nwarning: expected-failure entries that matched no "
                      "test on %s:" % mode)
                for s, pat in stale:
                    print("  [%s] %s" % (s, pat))

    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(combined_markdown(counts, modules, modes) + "\n\n")
            f.write("\n".join(md))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(json_out, f, indent=1, sort_keys=True)

    if args.record:
        record.write(args.record, "uvloop", modes,
                     {mode: {m: counts[(m, mode)] for m in modules} for mode in modes},
                     recorded_xfails, recorded_problems, time.monotonic() - t_start,
                     uvloop_tests=version)
    print("\n%s in %.0fs (Python %s, uvloop %s tests)" % (
        "; ".join("%s %d/%d passed" % (mode, grand[mode]["passed"],
                                       grand[mode]["run"]) for mode in modes),
        time.monotonic() - t_start, PYVER, version))
    rl = [m for m in modes if m in BACKENDS]
    if rl:
        for mode in rl:
            g = grand[mode]
            print("ringloop %s: %d of %d required tests passed (those that "
                  "passed on uvloop and asyncio); %d of %d UV-only tests "
                  "passed; %d expected failures" % (
                      mode, g["req. passed"], g["required"],
                      g["UV only passed"], g["UV only"], g["xfail"]))
        passed = sum(grand[m]["passed"] for m in rl)
        skipped = sum(grand[m]["skipped"] for m in rl)
        print("%d passed, %d failed, %d skipped" % (passed, rl_failed, skipped))
    return 1 if rl_failed else 0


if __name__ == "__main__":
    sys.exit(main())
