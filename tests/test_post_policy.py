"""ringloop without asyncio's event loop policies.

asyncio deprecates policies in Python 3.14 and removes them in 3.16: ringloop's entry
points must neither warn under -W error::DeprecationWarning nor need the policy API.
Each test runs a child interpreter; "no policies" deletes the policy names from asyncio
before ringloop is imported, as a Python without them would have it.
"""
import json
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.ringloop_only("ringloop's entry points"), pytest.mark.timeout(60)]

POLICIES_DEPRECATED = sys.version_info >= (3, 14)

# What a Python without policies lacks (asyncio/__init__.py, events.py, unix_events.py).
DELETE_POLICY_API = textwrap.dedent("""
    import asyncio, asyncio.events, asyncio.unix_events
    for mod, names in (
            (asyncio, ("AbstractEventLoopPolicy", "DefaultEventLoopPolicy",
                       "get_event_loop_policy", "set_event_loop_policy")),
            (asyncio.events, ("AbstractEventLoopPolicy", "_AbstractEventLoopPolicy",
                              "BaseDefaultEventLoopPolicy", "_BaseDefaultEventLoopPolicy",
                              "get_event_loop_policy", "set_event_loop_policy",
                              "_get_event_loop_policy", "_set_event_loop_policy",
                              "_init_event_loop_policy")),
            (asyncio.unix_events, ("DefaultEventLoopPolicy", "_DefaultEventLoopPolicy",
                                   "_UnixDefaultEventLoopPolicy"))):
        for name in names:
            mod.__dict__.pop(name, None)
        if hasattr(mod, "__all__"):
            mod.__all__ = tuple(n for n in mod.__all__ if n not in names)
    assert not hasattr(asyncio.events, "get_event_loop_policy")
""")

ENTRY_POINTS = textwrap.dedent("""
    import asyncio, json, sys, ringloop

    async def main():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    got = {"run": ringloop.run(main())}
    loop = ringloop.new_event_loop()
    try:
        got["new_event_loop"] = loop.run_until_complete(main())
    finally:
        loop.close()
    with asyncio.Runner(loop_factory=ringloop.new_event_loop) as runner:
        got["Runner"] = runner.run(main())
    if sys.version_info >= (3, 12):
        got["asyncio.run"] = asyncio.run(main(), loop_factory=ringloop.new_event_loop)
    if sys.version_info >= (3, 14):
        from ringloop import *   # noqa: F403  -- __all__ names no deprecated policy class
    print(json.dumps(got))
""")


def _expect_ringloop(r):
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got and set(got.values()) == {"ringloop"}, got


def test_entry_points_do_not_warn(py):
    # import, run(), new_event_loop(), Runner/asyncio.run with ringloop's loop factory.
    r = py.run(ENTRY_POINTS, env={"PYTHONWARNINGS": "error::DeprecationWarning"})
    _expect_ringloop(r)
    assert "DeprecationWarning" not in r.stderr


def test_entry_points_without_policy_api(py):
    r = py.run(DELETE_POLICY_API + ENTRY_POINTS,
               env={"PYTHONWARNINGS": "error::DeprecationWarning"})
    _expect_ringloop(r)


def test_policy_names_without_policy_api(py):
    # Where asyncio has no policies, ringloop's say what to use instead.
    r = py.run(DELETE_POLICY_API + textwrap.dedent("""
        import warnings, ringloop
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ringloop.EventLoopPolicy
        except AttributeError as exc:
            print("EventLoopPolicy:", exc)
        try:
            ringloop.install()
        except (RuntimeError, AttributeError) as exc:
            print("install:", type(exc).__name__, exc)
    """))
    assert r.returncode == 0, r.stderr
    if POLICIES_DEPRECATED:
        assert "EventLoopPolicy: ringloop.EventLoopPolicy: this Python's asyncio has no event loop policies" in r.stdout
        assert "install: RuntimeError ringloop.install(): this Python's asyncio has no event loop policies" in r.stdout
        assert "loop_factory=ringloop.new_event_loop" in r.stdout


CLI_APP = textwrap.dedent("""
    import asyncio, json

    async def main():
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    with asyncio.Runner() as runner:
        r = runner.run(main())
    print(json.dumps({"asyncio.run": asyncio.run(main()), "Runner": r}))
""")


def test_cli_run_does_not_warn(py, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(CLI_APP)
    r = py.run(None, "run", str(app), module="ringloop",
               env={"PYTHONWARNINGS": "error::DeprecationWarning"})
    _expect_ringloop(r)


@pytest.mark.skipif(not POLICIES_DEPRECATED,
                    reason="before 3.14 `python -m ringloop run` installs ringloop's policy")
def test_cli_run_without_policy_api(py, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(CLI_APP)
    r = py.run(DELETE_POLICY_API + textwrap.dedent(f"""
        import sys, ringloop.__main__
        ringloop.__main__.main(["run", {str(app)!r}])
    """), env={"PYTHONWARNINGS": "error::DeprecationWarning"})
    _expect_ringloop(r)


@pytest.mark.skipif(not POLICIES_DEPRECATED, reason="asyncio's policies warn from 3.14 on")
def test_policy_api_warns_as_asyncio_does(py):
    r = py.run("""
        import asyncio, warnings, ringloop
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            cls = ringloop.EventLoopPolicy
            ringloop.install()
            loop = asyncio.new_event_loop()
            print(type(loop).__module__.split(".")[0])
            loop.close()
        for w in rec:
            print(w.category.__name__, w.filename, str(w.message).split(";")[0])
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ringloop"
    # Two warnings, one per deprecated name, each pointing at the caller (<string>).
    assert lines[1:] == [
        "DeprecationWarning <string> ringloop.EventLoopPolicy is deprecated and slated "
        "for removal in Python 3.16, as asyncio's event loop policies are",
        "DeprecationWarning <string> ringloop.install() is deprecated and slated "
        "for removal in Python 3.16, as asyncio's event loop policies are",
    ], r.stdout


def test_coroutine_check_does_not_warn(py):
    # asyncio.iscoroutinefunction is deprecated from 3.14: ringloop's checks (debug-mode
    # call_soon, run_in_executor, add_signal_handler) refuse coroutine functions without it.
    r = py.run("""
        import asyncio, signal, ringloop

        async def coro_fn():
            pass

        async def main():
            loop = asyncio.get_running_loop()
            out = []
            for name, call in (
                    ("call_soon", lambda: loop.call_soon(coro_fn)),
                    ("run_in_executor", lambda: loop.run_in_executor(None, coro_fn)),
                    ("add_signal_handler", lambda: loop.add_signal_handler(signal.SIGUSR1, coro_fn))):
                try:
                    call()
                except TypeError as exc:
                    out.append(f"{name}: {exc}")
            loop.call_soon(out.append, "plain callback ran")
            await asyncio.sleep(0)
            return out

        for line in ringloop.run(main(), debug=True):
            print(line)
    """, env={"PYTHONWARNINGS": "error::DeprecationWarning"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "call_soon: coroutines cannot be used with call_soon()",
        "run_in_executor: coroutines cannot be used with run_in_executor()",
        "add_signal_handler: coroutines cannot be used with add_signal_handler()",
        "plain callback ran",
    ]
