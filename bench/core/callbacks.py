"""call_soon throughput: `chains` callbacks, each re-scheduling itself with
call_soon until `n` callbacks have run in total."""


def prepare(loop, n, env, chains=1):
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

    def go():
        for _ in range(min(chains, n)):
            call_soon(tick)
        loop.run_forever()
        return n - max(left, 0)

    return go, _drain(loop)


def _drain(loop):
    """Cleanup that lets the chains still queued after stop() run out."""

    def cleanup():
        loop.call_soon(loop.stop)
        loop.run_forever()

    return cleanup
