"""The blocking detector's reports: one WARNING per blocking event on the logger
"ringloop.blocking" (repeats at one place are counted, not repeated), a ranking of the
places that blocked (loop.blocking_report()), and optionally one JSON line per event
in the file RINGLOOP_BLOCKING_LOG names.

The detection itself is native: a watchdog thread (ringloop/_monitor/watchdog.c) reads
the loop thread's stack while a callback blocks; the loop hands the result here once the
callback has returned. See docs/blocking.md.
"""
import asyncio
import json
import linecache
import logging
import os
import re
import sys
import time
from asyncio import base_events as _aio_base_events

logger = logging.getLogger("ringloop.blocking")

# After a WARNING for a place, further events there are only counted for this long.
REPEAT_QUIET_SECONDS = 60.0
# At most this many tasks of a chain of awaiting tasks are named.
MAX_AWAITERS = 16

_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_THRESHOLD = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|µs)?\s*$")


def parse_threshold(value):
    """Seconds from a threshold: a number of seconds, or a string like "50ms", "0.05",
    "1s", "200us". None, "", "0", "off" or 0 mean off (None)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in ("", "off", "none", "no", "false"):
            return None
        match = _THRESHOLD.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (expected e.g. 50ms or 0.05)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"a threshold is seconds or a string like '50ms', not {value!r}")
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"a threshold cannot be negative: {value!r}")
    return seconds or None


def threshold_from_environment():
    """RINGLOOP_WARN_BLOCKING, in seconds, or None when unset or off."""
    return parse_threshold(os.environ.get("RINGLOOP_WARN_BLOCKING"))


class _Site:
    """One place that blocked: the innermost frame of the stack read while it blocked
    (or, when no stack could be read, the callback)."""
    __slots__ = ("site", "function", "callback", "count", "total", "worst",
                 "logged_at", "unlogged", "unlogged_worst")

    def __init__(self, site, function, callback):
        self.site, self.function, self.callback = site, function, callback
        self.count = 0
        self.total = self.worst = 0.0
        self.logged_at = None
        self.unlogged = 0
        self.unlogged_worst = 0.0


class BlockingMonitor:
    """One loop's blocking events: counts per place, the WARNINGs and the JSON log."""

    def __init__(self, loop):
        self.threshold = None
        self.outer_depth = 0      # frames below run_forever: the loop's caller's
        self._sites = {}
        self._log_path = os.environ.get("RINGLOOP_BLOCKING_LOG") or None

    @staticmethod
    def describe(handle):
        """The callback and the tasks awaiting it: called by the watchdog thread while
        the callback blocks (later its task may be done and its awaiters gone)."""
        return _aio_base_events._format_handle(handle), _awaiting_tasks(handle)

    def report(self, handle, duration, seen):
        """A callback (handle) blocked the loop for `duration` seconds. `seen`: what
        the watchdog read meanwhile, (stack outermost first, describe(handle)), or None
        if it could not have the GIL before the callback returned."""
        if seen is None:
            frames = None
            callback, awaited_by = self.describe(handle)
        else:
            stack, (callback, awaited_by) = seen
            frames = [list(f) for f in stack[self.outer_depth:]]
        if frames:
            filename, line, function = frames[-1]
            key = f"{filename}:{line}"
        else:
            key, function = callback, None
        site = self._sites.get(key)
        if site is None:
            site = self._sites[key] = _Site(key, function, callback)
        site.count += 1
        site.total += duration
        site.worst = max(site.worst, duration)
        site.callback = callback
        event = {
            "time": time.time(), "pid": os.getpid(), "duration": round(duration, 6),
            "threshold": self.threshold, "site": key, "callback": callback,
            "stack": frames, "awaited_by": awaited_by,
        }
        if self._log_path:
            self._append_json(event)
        now = time.monotonic()
        if site.logged_at is not None and now - site.logged_at < REPEAT_QUIET_SECONDS:
            site.unlogged += 1
            site.unlogged_worst = max(site.unlogged_worst, duration)
            return
        logger.warning("%s", self._message(event, site))
        site.logged_at = now
        site.unlogged = 0
        site.unlogged_worst = 0.0

    def ranking(self):
        sites = sorted(self._sites.values(), key=lambda s: s.total, reverse=True)
        return [{"site": s.site, "function": s.function, "count": s.count,
                 "total": s.total, "worst": s.worst, "callback": s.callback}
                for s in sites]

    def _message(self, event, site):
        lines = [f"Blocked the event loop for {event['duration']:.3f} s "
                 f"(threshold {self.threshold:.3f} s) in {event['callback']}"]
        if site.unlogged:
            lines.append(f"Blocked {site.unlogged} more time(s) here since the last report "
                         f"(worst {site.unlogged_worst:.3f} s)")
        if event["stack"]:
            lines.append("Stack of the loop thread while it blocked (innermost last):")
            for filename, line, function in event["stack"]:
                lines.append(f'  File "{filename}", line {line}, in {function}')
                source = linecache.getline(filename, line).strip()
                if source:
                    lines.append(f"    {source}")
        else:
            lines.append("The stack could not be read in time: the callback held the GIL "
                         "(C code) until it returned")
        if event["awaited_by"]:
            lines.append("Awaited by: " + " <- ".join(event["awaited_by"]))
        return "\n".join(lines)

    def _append_json(self, event):
        try:
            with open(self._log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(event) + "\n")
        except OSError as exc:
            logger.error("cannot append to RINGLOOP_BLOCKING_LOG=%s: %s", self._log_path, exc)
            self._log_path = None


def _awaiting_tasks(handle):
    """The tasks awaiting the task a handle steps, innermost first, as reprs."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return []
    if sys.version_info >= (3, 14):
        graph = asyncio.capture_call_graph(task)
        return _graph_awaiters(graph)
    chain, seen, future = [], {id(task)}, task
    while len(chain) < MAX_AWAITERS:
        # A task awaiting `future` left its wake-up method among its callbacks.
        owners = [getattr(cb, "__self__", None) for cb, _ctx in (future._callbacks or ())]
        future = next((o for o in owners if isinstance(o, asyncio.Task)), None)
        if future is None or id(future) in seen:
            break
        seen.add(id(future))
        chain.append(repr(future))
    return chain


def _graph_awaiters(graph):
    chain = []
    while graph is not None and graph.awaited_by and len(chain) < MAX_AWAITERS:
        graph = graph.awaited_by[0]
        chain.append(repr(graph.future))
    return chain
