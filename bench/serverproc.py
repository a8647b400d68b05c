"""How an echo server process of the server suites (bench/serve.py) runs and
reports: one JSON line on stdout, {"ok": true, "port": ..., "pid": ..., ...}
once it serves, or {"ok": false, "error": ...} when it cannot (then exit 1)."""
import asyncio
import json
import os
import traceback

import loops


def describe_error(exc):
    """'Type: message (in function)': NotImplementedError has no message, so name
    the API that raised it."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (in {tb[-1].name})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def serve(impl, start, **info):
    """Make a loop of implementation `impl`, run `start(loop)` (a coroutine function
    returning (port, task or None)), report, and serve until killed or until the
    task ends. Returns the process's exit status."""
    try:
        loop = loops.factory(impl)()
        asyncio.set_event_loop(loop)
        port, task = loop.run_until_complete(start(loop))
        print(json.dumps({"ok": True, "port": port, "pid": os.getpid(), **info,
                          **loops.describe(impl, loop)}), flush=True)
        loop.run_until_complete(task) if task else loop.run_forever()
    except BaseException as exc:  # report, do not hide: the harness records the error
        print(json.dumps({"ok": False, "error": describe_error(exc),
                          "traceback": traceback.format_exc()}), flush=True)
        return 1
    return 0
