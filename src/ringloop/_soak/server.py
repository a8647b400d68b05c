"""The soak's serving process: python -m ringloop._soak.server BACKEND CERT KEY NOFILE

Serves the endpoints (endpoints.py) on a ringloop loop of BACKEND, with its open
files limit lowered to NOFILE so a connection storm reaches EMFILE. Prints one
JSON line when ready ({"ready": true, "pid", "ports"}), then answers commands
read from stdin, one JSON line each:

    {"cmd": "chaos", "name": STEP}   run a chaos.STEPS step -> {"ok", "detail"}
    {"cmd": "stats"}                 -> counters and every exception the loop's
                                        handler saw (message, type, text, count)
    {"cmd": "memory"}                -> {"rss_kib"}: resident memory in use, after a
                                        gc.collect() and malloc_trim(0) (see below)
    {"cmd": "stop"}                  close the endpoints and exit 0

SIGUSR1 dumps every thread's stack to stderr (the driver's watchdog asks for it).
"""
import asyncio
import collections
import ctypes
import faulthandler
import gc
import json
import os
import resource
import signal
import ssl
import sys

import ringloop
from ringloop._soak import chaos, endpoints


class HandlerLog:
    """Every call of the loop's exception handler, grouped by what it said."""

    def __init__(self):
        self.seen = collections.Counter()

    def __call__(self, loop, context):
        exc = context.get("exception")
        key = (context.get("message", ""), type(exc).__name__ if exc else "",
               str(exc)[:200] if exc else "")
        if not self.seen[key]:
            print(f"soak server: loop exception handler: {key}", file=sys.stderr, flush=True)
        self.seen[key] += 1

    def as_list(self):
        return [{"message": m, "type": t, "text": x, "count": n}
                for (m, t, x), n in self.seen.items()]


def memory_in_use():
    """VmRSS in KiB once the garbage is collected and glibc has returned its free
    memory: ringloop keeps up to 8 MiB of free heap top on purpose (_malloc.pxi), so
    raw RSS moves by that much with what happened to be freed last; this does not."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except AttributeError:  # not glibc: raw RSS it is
        pass
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def commands(backend, ports, counters, handler_log, udp):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "stop":
            return
        if cmd["cmd"] == "memory":
            reply({"rss_kib": memory_in_use()})
        elif cmd["cmd"] == "stats":
            reply({"counters": counters.as_dict(), "handler": handler_log.as_list(),
                   "udp_errors": udp.errors[:20]})
        elif cmd["cmd"] == "chaos":
            try:
                detail = await chaos.STEPS[cmd["name"]](backend=backend, ports=ports)
                reply({"ok": True, "detail": detail})
            except Exception as exc:  # the check's verdict, reported to the driver
                reply({"ok": False, "detail": f"{type(exc).__name__}: {exc}"})


async def serve(backend, cert, key):
    loop = asyncio.get_running_loop()
    handler_log = HandlerLog()
    loop.set_exception_handler(handler_log)
    counters = endpoints.Counters()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    closers, ports, udp = await endpoints.start(counters, tls)
    reply({"ready": True, "pid": os.getpid(), "backend": loop.backend_name, "ports": ports})
    try:
        await commands(backend, ports, counters, handler_log, udp)
    finally:
        for closer in closers:
            closer.close()
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in closers[:3])), 30)


def main(argv):
    backend, cert, key, nofile = argv
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), hard))
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    ringloop.run(serve(backend, cert, key), backend=backend)


if __name__ == "__main__":
    main(sys.argv[1:])
