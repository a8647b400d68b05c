"""The `core` suite: event-loop primitives without networking.

A workload is written once as `prepare(loop, n, env, **params) -> (go, cleanup)`:
`prepare` sets up (untimed) whatever `n` operations need on `loop`, `go()` runs
them on the loop and returns the number of operations done, `cleanup()` releases
what `prepare` made (untimed). The harness times `go()` only.

`env` carries the run context: `env.timeout` (seconds a `go()` may take before
it must give up instead of hanging) and `env.producer_cpu` (the CPU a helper
thread should pin itself to, or None).
"""
from typing import Callable, NamedTuple

from . import callbacks, pipes, streams, tasks, threadsafe, timers


class Workload(NamedTuple):
    name: str
    prepare: Callable
    params: dict
    unit: str  # what one counted operation is
    description: str
    floor: tuple = None  # (program in bench/floor/, [args]): the same work in C, see cfloor.py
    cpu_bound: bool = True  # the loop thread should be busy all the time (no producer to wait for)


WORKLOADS = [
    Workload("call_soon", callbacks.prepare, {"chains": 1}, "callbacks",
             "one callback re-scheduling itself with call_soon"),
    Workload("call_soon_idle_fd", callbacks.prepare, {"chains": 1, "idle_reader": True},
             "callbacks", "as call_soon, with one idle add_reader registered (the loop must poll)"),
    Workload("call_soon_x1000", callbacks.prepare, {"chains": 1000}, "callbacks",
             "1000 callbacks queued at once, each re-scheduling itself"),
    Workload("call_later_cancel", timers.prepare, {"live": 1000, "fire_every": 50}, "timers",
             "call_later at 1..10 s then cancel, 1000 pending; every 50th timer fires (delay 0)"),
    Workload("call_soon_threadsafe", threadsafe.prepare, {}, "callbacks",
             "a producer thread (other core) calls call_soon_threadsafe n times",
             cpu_bound=False),
    Workload("task_switch_x2", tasks.prepare, {"tasks": 2}, "switches",
             "2 tasks looping `await asyncio.sleep(0)`"),
    Workload("task_switch_x100", tasks.prepare, {"tasks": 100}, "switches",
             "100 tasks looping `await asyncio.sleep(0)`"),
    Workload("streams_cycle", streams.prepare, {}, "msgs",
             "asyncio streams' read -> write -> drain of 1 KiB over an in-memory transport"),
    Workload("add_reader_pipe", pipes.prepare, {"pairs": 1}, "events",
             "one byte ping-pongs between two add_reader callbacks over two pipes",
             floor=("pipe_pingpong", [1])),
    Workload("add_reader_pipe_x16", pipes.prepare, {"pairs": 16}, "events",
             "16 independent pipe ping-pongs at once (many ready fds per iteration)",
             floor=("pipe_pingpong", [16])),
]

BY_NAME = {w.name: w for w in WORKLOADS}
