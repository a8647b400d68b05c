"""The check asyncio makes before it accepts a callback (call_soon in debug mode,
run_in_executor, add_signal_handler): coroutines and coroutine functions are refused.

asyncio.iscoroutinefunction is deprecated from Python 3.14 on (asyncio/coroutines.py);
asyncio's own check is inspect.iscoroutinefunction() or the `_is_coroutine` marker of
functions wrapped by the old @asyncio.coroutine decorator (or by libraries that mimic it).
"""
import inspect
from asyncio import coroutines

_MARKER = getattr(coroutines, "_is_coroutine", None)


def is_coroutine_or_coroutine_function(obj):
    return (coroutines.iscoroutine(obj) or inspect.iscoroutinefunction(obj)
            or (_MARKER is not None and getattr(obj, "_is_coroutine", None) is _MARKER))
