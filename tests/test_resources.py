"""Resource hygiene: fds, ResourceWarning, idle CPU.

(The per-test fd check itself is the autouse fixture in conftest.py.)
"""
import asyncio
import gc
import os
import time
import warnings

import pytest


@pytest.mark.timeout(60)
def test_200_loops_leak_no_fd(loop_factory, fds):
    before = fds()
    for _ in range(200):
        lp = loop_factory()
        lp.run_until_complete(asyncio.sleep(0))
        lp.call_later(0.0001, lambda: None)
        lp.run_until_complete(asyncio.sleep(0.0002))
        lp.close()
    assert fds() == before


def test_close_releases_loop_fds(loop_factory, fds):
    before = fds()
    lp = loop_factory()
    lp.run_until_complete(asyncio.sleep(0))
    lp.close()
    assert fds() == before


def test_unclosed_loop_resource_warning(unmanaged_loop, fds):
    before = fds()
    lp = unmanaged_loop()
    lp.run_until_complete(asyncio.sleep(0))
    with pytest.warns(ResourceWarning, match="unclosed"):
        del lp
        gc.collect()
    # and the garbage-collected loop released its fds
    assert fds() == before


def test_closed_loop_no_resource_warning(loop_factory):
    lp = loop_factory()
    lp.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del lp
        gc.collect()


@pytest.mark.timeout(10)
def test_idle_loop_uses_no_cpu(loop):
    loop.run_until_complete(asyncio.sleep(0))  # warm up
    cpu0, wall0 = time.process_time(), time.monotonic()
    loop.run_until_complete(asyncio.sleep(0.5))
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    assert wall >= 0.5 - 1e-3
    assert cpu < 0.05, f"idle sleep(0.5) burned {cpu:.3f}s of CPU"


@pytest.mark.timeout(10)
def test_idle_loop_with_reader_uses_no_cpu(loop):
    r, w = os.pipe()
    try:
        loop.add_reader(r, lambda: None)
        cpu0 = time.process_time()
        loop.run_until_complete(asyncio.sleep(0.5))
        cpu = time.process_time() - cpu0
        loop.remove_reader(r)
        assert cpu < 0.05, f"idle loop with a quiet reader burned {cpu:.3f}s of CPU"
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.timeout(10)
def test_idle_loop_with_many_short_timers_sleeps(loop):
    """A chain of 2 ms sleeps: the loop sleeps between timers rather than
    spinning; CPU time stays well below the wall time."""
    async def main():
        for _ in range(200):
            await asyncio.sleep(0.002)

    cpu0, wall0 = time.process_time(), time.monotonic()
    loop.run_until_complete(main())
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    assert wall >= 0.4
    assert cpu < wall * 0.5, f"cpu {cpu:.3f}s for {wall:.3f}s of timer sleeps"
