"""call_soon throughput: `chains` callbacks, each re-scheduling itself with
call_soon until `n` callbacks have run in total.

With idle_reader=True an add_reader is registered on a pipe that never becomes
readable, as in any program with a socket open: a loop that skips the kernel
poll when it watches no fd cannot skip it then."""
import os


def prepare(loop, n, env, chains=1, idle_reader=False):
    call_soon = loop.call_soon
    left = n

    def tick():
        nonlocal left
        left -= 1
        if left > 0:
            call_soon(tick)
        elif left == 0:
            loop.stop()
        # left < 0: a chain still queued when the count ran out; it just ends.

    fds = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC) if idle_reader else ()
    if idle_reader:
        loop.add_reader(fds[0], _never)

    def go():
        for _ in range(min(chains, n)):
            call_soon(tick)
        loop.run_forever()
        return n - max(left, 0)

    def cleanup():
        # Let the chains still queued after stop() run out.
        call_soon(loop.stop)
        loop.run_forever()
        if idle_reader:
            loop.remove_reader(fds[0])
        for fd in fds:
            os.close(fd)

    return go, cleanup


def _never():
    raise AssertionError("the idle pipe became readable")
