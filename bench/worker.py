"""One measurement in a fresh process: one workload on one loop implementation.

    python bench/worker.py --suite core --bench NAME --loop IMPL (--duration S | --count N)
    python bench/worker.py --probe IMPL

Pins itself to --cpu, creates the loop, warms up, runs the workload once timed
and prints one JSON object on stdout. Without --count it first calibrates the
operation count so that the timed run takes about --duration seconds, and
reports that count so later rounds can reuse it.
"""
import argparse
import gc
import json
import os
import sys
import time
import traceback
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loops  # noqa: E402

CALIBRATION_START = 1000
CALIBRATION_MIN_S = 0.05


def pin(cpu):
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def loop_stats(loop):
    stats = getattr(loop, "stats", None)
    if stats is None:
        return None
    try:
        return dict(stats())
    except Exception:  # an implementation's stats() must not break a measurement
        return None


def stats_delta(before, after):
    if before is None or after is None:
        return None
    return {k: after[k] - before[k] for k in after
            if k in before and isinstance(after[k], int) and isinstance(before[k], int)}


def measure(loop, workload, n, env):
    """Prepare n operations, time go(), clean up. Returns a result dict."""
    go, cleanup = workload.prepare(loop, n, env, **workload.params)
    gc.collect()
    stats0 = loop_stats(loop)
    c0 = time.thread_time_ns()
    p0 = time.process_time_ns()
    t0 = time.perf_counter_ns()
    ops = go()
    t1 = time.perf_counter_ns()
    p1 = time.process_time_ns()
    c1 = time.thread_time_ns()
    stats1 = loop_stats(loop)
    cleanup()
    return {
        "count": n,
        "ops": ops,
        "wall_ns": t1 - t0,
        "loop_cpu_ns": c1 - c0,      # CPU time of the loop's thread
        "process_cpu_ns": p1 - p0,   # all threads (differs when a producer thread runs)
        "ops_per_s": ops / ((t1 - t0) / 1e9) if t1 > t0 else 0.0,
        "loop_stats": stats_delta(stats0, stats1),
    }


def calibrate(loop, workload, duration, env):
    """Grow the count until a run takes CALIBRATION_MIN_S (this also warms up),
    then scale it to `duration`."""
    n = CALIBRATION_START
    while True:
        r = measure(loop, workload, n, env)
        seconds = r["wall_ns"] / 1e9
        if seconds >= min(CALIBRATION_MIN_S, duration / 4) or seconds * 4 > env.timeout:
            break
        n = int(n * min(16.0, max(2.0, CALIBRATION_MIN_S * 1.5 / max(seconds, 1e-6))))
    rate = r["ops"] / max(seconds, 1e-9)
    return max(CALIBRATION_START, int(rate * duration))


def get_workload(suite, name):
    if suite != "core":
        raise SystemExit(f"unknown suite {suite!r}")
    import core

    try:
        return core.BY_NAME[name]
    except KeyError:
        raise SystemExit(f"unknown benchmark {name!r} (known: {', '.join(core.BY_NAME)})")


def probe(impl):
    """Check that `impl` imports, creates a loop and runs a coroutine on it."""
    import asyncio

    loop = loops.factory(impl)()
    try:
        async def noop():
            await asyncio.sleep(0)
            return 42

        assert loop.run_until_complete(noop()) == 42
        return {"ok": True, **loops.describe(impl, loop)}
    finally:
        loop.close()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", metavar="IMPL")
    ap.add_argument("--suite", default="core")
    ap.add_argument("--bench")
    ap.add_argument("--loop")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--count", type=int)
    ap.add_argument("--cpu", type=int)
    ap.add_argument("--producer-cpu", type=int)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args(argv)

    try:
        if args.probe:
            result = probe(args.probe)
        else:
            pin(args.cpu)
            workload = get_workload(args.suite, args.bench)
            env = SimpleNamespace(timeout=args.timeout, producer_cpu=args.producer_cpu)
            loop = loops.factory(args.loop)()
            try:
                if args.count:
                    count = args.count
                    measure(loop, workload, max(CALIBRATION_START, count // 10), env)  # warm-up
                else:
                    count = calibrate(loop, workload, args.duration, env)
                result = measure(loop, workload, count, env)
                result.update(bench=args.bench, **loops.describe(args.loop, loop))
            finally:
                loop.close()
    except BaseException as exc:  # report, do not hide: the runner records the error
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
        print(json.dumps(result))
        return 1
    result.setdefault("ok", True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
