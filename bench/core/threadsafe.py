"""call_soon_threadsafe from another thread: a producer thread, pinned to
another CPU, calls call_soon_threadsafe `n` times; the loop counts the
callbacks and stops at `n`. A watchdog timer stops the loop if the callbacks
do not all arrive within env.timeout, and the run then fails instead of hanging.
"""
import os
import threading


def prepare(loop, n, env):
    count = 0
    produced = 0

    def callback():
        nonlocal count
        count += 1
        if count == n:
            loop.stop()

    def producer():
        nonlocal produced
        if env.producer_cpu is not None:
            os.sched_setaffinity(0, {env.producer_cpu})  # 0: this thread only
        call_soon_threadsafe = loop.call_soon_threadsafe
        for _ in range(n):
            call_soon_threadsafe(callback)
        produced = n

    def go():
        thread = threading.Thread(target=producer, name="bench-producer", daemon=True)
        watchdog = loop.call_later(env.timeout, loop.stop)
        thread.start()
        loop.run_forever()
        watchdog.cancel()
        thread.join(env.timeout)
        if thread.is_alive():
            raise RuntimeError("producer thread did not finish")
        if count != n:
            raise RuntimeError(f"loop stopped after {count} of {n} callbacks "
                               f"(producer made {produced})")
        return count

    def cleanup():
        pass

    return go, cleanup
