"""ringloop's asyncio event loop policy, for the Pythons that have policies.

asyncio deprecates its policy API in Python 3.14 and removes it in 3.16 (asyncio/events.py,
asyncio/__init__.py): there, asyncio.DefaultEventLoopPolicy and set_event_loop_policy()
warn. So ringloop.EventLoopPolicy is built when first asked for, on asyncio's default
policy class, and warns where asyncio.DefaultEventLoopPolicy warns; install() warns where
set_event_loop_policy() warns. Where asyncio has no policies left, both raise and say what
to use instead: ringloop.run() or a loop factory (asyncio.run(main(), loop_factory=...)).
"""
import asyncio
import sys
import warnings

# asyncio warns on its policy API from 3.14 on.
POLICIES_DEPRECATED = sys.version_info >= (3, 14)

_INSTEAD = ("use ringloop.run(main()) or "
            "asyncio.run(main(), loop_factory=ringloop.new_event_loop)")
_policy_class = None


def _warn(what, stacklevel):
    warnings.warn(f"{what} is deprecated and slated for removal in Python 3.16, as "
                  f"asyncio's event loop policies are; {_INSTEAD}",
                  DeprecationWarning, stacklevel=stacklevel + 1)


def _asyncio_default_policy():
    # The class asyncio.DefaultEventLoopPolicy names, read where it does not warn.
    if not POLICIES_DEPRECATED:
        return asyncio.DefaultEventLoopPolicy
    base = getattr(asyncio.unix_events, "_DefaultEventLoopPolicy", None)
    if base is None:
        raise AttributeError(f"ringloop.EventLoopPolicy: this Python's asyncio has no "
                             f"event loop policies; {_INSTEAD}")
    return base


def event_loop_policy_class(stacklevel):
    """ringloop.EventLoopPolicy; warns at `stacklevel` (counted from the caller)."""
    if POLICIES_DEPRECATED:
        _warn("ringloop.EventLoopPolicy", stacklevel + 1)
    return _build_policy_class()


def _build_policy_class():
    global _policy_class
    if _policy_class is None:
        from ringloop import new_event_loop

        class EventLoopPolicy(_asyncio_default_policy()):
            """An asyncio policy whose new loops are ringloop loops."""

            __module__ = "ringloop"

            def _loop_factory(self):
                return new_event_loop()

        _policy_class = EventLoopPolicy
    return _policy_class


def install():
    """Make ringloop the loop asyncio.new_event_loop() and asyncio.run() create, through
    asyncio's policy (deprecated from Python 3.14 on, as asyncio.set_event_loop_policy)."""
    if not POLICIES_DEPRECATED:
        asyncio.set_event_loop_policy(_build_policy_class()())
        return
    _warn("ringloop.install()", 2)
    set_policy = getattr(asyncio.events, "_set_event_loop_policy", None)
    if set_policy is None:
        raise RuntimeError(f"ringloop.install(): this Python's asyncio has no event loop "
                           f"policies; {_INSTEAD}")
    set_policy(_build_policy_class()())
