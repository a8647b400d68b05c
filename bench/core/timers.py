"""call_later + cancel churn.

A driver callback (re-scheduled with call_soon, one batch per loop iteration)
schedules timers with call_later at pseudo-random delays of 1..10 s and cancels
the timer it scheduled `live` timers ago, so about `live` timers are pending at
any time and every scheduled timer is cancelled again. Every `fire_every`-th
timer is scheduled with delay 0 instead and really fires. One operation is one
call_later (plus its later cancel, or its firing).
"""
import random

BATCH = 100  # timers scheduled per driver callback / loop iteration


def prepare(loop, n, env, live=1000, fire_every=50):
    rng = random.Random(20240601)
    delays = [rng.uniform(1.0, 10.0) for _ in range(4096)]
    call_later = loop.call_later
    call_soon = loop.call_soon
    pending = [None] * live
    scheduled = 0
    fired = 0

    def fire():
        nonlocal fired
        fired += 1

    def drive():
        nonlocal scheduled
        i = scheduled
        stop = min(i + BATCH, n)
        while i < stop:
            slot = i % live
            old = pending[slot]
            if old is not None:
                old.cancel()
            if i % fire_every == 0:
                pending[slot] = None
                call_later(0, fire)
            else:
                pending[slot] = call_later(delays[i & 4095], fire)
            i += 1
        scheduled = i
        if i < n:
            call_soon(drive)
        else:
            for slot, handle in enumerate(pending):
                if handle is not None:
                    handle.cancel()
                    pending[slot] = None
            loop.stop()

    def go():
        call_soon(drive)
        loop.run_forever()
        return scheduled

    def cleanup():
        # Let the last delay-0 timers fire, so none is left for the next run.
        expected = (n + fire_every - 1) // fire_every
        guard = loop.call_later(env.timeout, loop.stop)

        def check():
            if fired >= expected:
                loop.stop()
            else:
                call_soon(check)

        call_soon(check)
        loop.run_forever()
        guard.cancel()
        if fired < expected:
            raise RuntimeError(f"only {fired} of {expected} delay-0 timers fired")

    return go, cleanup
