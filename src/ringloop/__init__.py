"""ringloop: a drop-in asyncio event loop for Linux over io_uring, with an epoll fallback.

    import ringloop
    ringloop.run(main())
    asyncio.run(main(), loop_factory=ringloop.new_event_loop)      # Python 3.12+
    with asyncio.Runner(loop_factory=ringloop.new_event_loop) as r:  # Python 3.11
        r.run(main())
"""
import asyncio as _asyncio
import sys as _sys

from ringloop._version import __version__

from ringloop import _policy
from ringloop._policy import install

__all__ = ("Loop", "new_event_loop", "run", "install", "backend_info", "__version__")
if not _policy.POLICIES_DEPRECATED:
    __all__ += ("EventLoopPolicy",)

if _sys.platform.startswith("linux"):
    from ringloop._backend_choice import backend_info as _backend_info
    from ringloop._loopclass import Loop

    def backend_info():
        """Which backend new loops get, and why (io_uring features found, or why epoll)."""
        return _backend_info()
else:  # elsewhere ringloop is the standard loop and says so (docs/architecture.md).
    Loop = _asyncio.SelectorEventLoop

    def backend_info():
        return {"backend": "asyncio", "requested": "auto",
                "reason": f"ringloop needs Linux; {_sys.platform} uses the standard loop",
                "io_uring": {"available": False, "setup_flags": [], "features": [],
                             "opcodes": [], "error": "not Linux"}}


def new_event_loop(*, backend=None):
    """A new ringloop loop; backend is "io_uring", "epoll" or None/"auto" (the default)."""
    if Loop is _asyncio.SelectorEventLoop:
        return Loop()
    return Loop(backend)


def __getattr__(name):
    # EventLoopPolicy is made on first use: asyncio's policy classes warn from 3.14 on.
    if name == "EventLoopPolicy":
        return _policy.event_loop_policy_class(2)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(main, *, debug=None, backend=None, warn_blocking=None):
    """Run a coroutine on a new ringloop loop, like asyncio.run().

    warn_blocking: report callbacks that block the loop longer than this (seconds, or a
    string like "50ms"); None leaves it to RINGLOOP_WARN_BLOCKING (docs/blocking.md)."""
    if _asyncio.events._get_running_loop() is not None:
        # Checked before a Runner (and its loop) exists, as asyncio.run() does.
        raise RuntimeError("ringloop.run() cannot be called from a running event loop")

    def loop_factory():
        loop = new_event_loop(backend=backend)
        if warn_blocking is not None:
            loop.set_warn_blocking(warn_blocking)
        return loop

    with _asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)
