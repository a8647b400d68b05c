"""A small asyncio program that shows an event loop at work.

Plain asyncio, nothing ringloop-specific in the work itself:

    python -m ringloop run examples/demo.py     # on ringloop
    python examples/demo.py                     # on the standard loop, for comparison

It runs concurrent tasks with sleeps and timers, wakes the loop from another
thread with call_soon_threadsafe, runs blocking work in the default executor and
reads a pipe through add_reader. At the end it tells which backend served it
and prints the loop's counters (ringloop only).
"""
import asyncio
import hashlib
import os
import sys
import threading
import time

try:
    import ringloop
except ImportError:  # the demo also runs where ringloop is not installed
    ringloop = None

T0 = time.monotonic()  # reset when main() starts


def log(what):
    print(f"  [{(time.monotonic() - T0) * 1000:7.1f} ms] {what}")


async def ticker(name, interval, count):
    """A task that wakes up `count` times, `interval` seconds apart."""
    for i in range(1, count + 1):
        await asyncio.sleep(interval)
        log(f"{name}: tick {i}/{count}")
    return name


def timers(loop):
    """call_later / call_at, and one timer cancelled before it fires."""
    fired = loop.create_future()
    loop.call_later(0.03, log, "call_later(0.03) fired")
    loop.call_at(loop.time() + 0.06, lambda: (log("call_at(now + 0.06) fired"), fired.set_result(None)))
    doomed = loop.call_later(0.05, log, "this must never print")
    doomed.cancel()
    return fired


async def from_a_thread(loop):
    """A thread does blocking work, then hands its result to the loop."""
    fut = loop.create_future()

    def work():
        time.sleep(0.04)
        loop.call_soon_threadsafe(fut.set_result, threading.current_thread().name)

    thread = threading.Thread(target=work, name="worker-thread")
    thread.start()
    name = await fut
    log(f"call_soon_threadsafe: result from {name!r} arrived on the loop")
    thread.join()
    return name


def blocking_hash(n):
    """CPU-bound work that would stall the loop if run on it."""
    data = b"ringloop" * 1000
    for _ in range(n):
        data = hashlib.sha256(data).digest() * 100
    return hashlib.sha256(data).hexdigest()[:16]


async def in_executor(loop):
    digest = await loop.run_in_executor(None, blocking_hash, 200)
    log(f"run_in_executor: hash {digest} computed in the default executor")
    return digest


async def pipe_reader(loop, chunks):
    """Read a pipe with add_reader while another task writes into it."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    received = []
    done = loop.create_future()

    def on_readable():
        data = os.read(r, 4096)
        if data:
            received.append(data)
            log(f"pipe: add_reader callback got {data!r}")
        else:  # EOF: the writer closed its end
            loop.remove_reader(r)
            done.set_result(received)

    loop.add_reader(r, on_readable)
    try:
        for chunk in chunks:
            await asyncio.sleep(0.015)
            os.write(w, chunk)
        os.close(w)
        w = -1
        return await asyncio.wait_for(done, 5)
    finally:
        loop.remove_reader(r)
        os.close(r)
        if w >= 0:
            os.close(w)


async def main():
    global T0
    T0 = time.monotonic()
    loop = asyncio.get_running_loop()
    is_ringloop = ringloop is not None and isinstance(loop, ringloop.Loop)
    kind = type(loop).__module__ + "." + type(loop).__qualname__
    print(f"ringloop demo on Python {sys.version.split()[0]}, loop: {kind}")

    results = await asyncio.gather(
        ticker("ticker A", 0.02, 3),
        ticker("ticker B", 0.035, 2),
        timers(loop),
        from_a_thread(loop),
        in_executor(loop),
        pipe_reader(loop, [b"hello", b"from", b"a pipe"]),
    )
    a, b, _, thread_name, digest, piped = results
    log(f"all done: {a}, {b}, timers, thread {thread_name!r}, executor {digest}, pipe {piped}")

    print()
    if is_ringloop:
        report_ringloop(loop)
    else:
        why = "ringloop is not installed" if ringloop is None else "this loop is not a ringloop loop"
        print(f"No ringloop counters: {why}. Run it as: python -m ringloop run {sys.argv[0]}")


def report_ringloop(loop):
    info = ringloop.backend_info()
    print(f"Backend: {getattr(loop, 'backend_name', info.get('backend'))} "
          f"(requested: {info.get('requested')}) - {info.get('reason')}")
    uring = info.get("io_uring") or {}
    if uring.get("available"):
        if info.get("backend") != "io_uring":
            print("  io_uring is available on this kernel, but not in use")
        print(f"  io_uring setup flags: {', '.join(uring.get('setup_flags') or []) or '-'}")
        print(f"  io_uring features:    {', '.join(uring.get('features') or []) or '-'}")
    elif uring.get("error"):
        print(f"  io_uring unavailable: {uring['error']}")

    stats = loop.stats()
    print("Loop counters (loop.stats()):")
    width = max(map(len, stats), default=0)
    for key in sorted(stats):
        value = stats[key]
        if key.endswith("_ns") and isinstance(value, int):
            shown = f"{value} ({value / 1e6:.2f} ms)"
        else:
            shown = f"{value}"
        print(f"  {key:<{width}}  {shown}")


if __name__ == "__main__":
    asyncio.run(main())
