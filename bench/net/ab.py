"""Before/after: one echo server style under loops from two checkouts, interleaved.

    python bench/net/ab.py STYLE MODE CONNS SIZE ROUNDS DURATION TREE:IMPL...

TREE is a checkout with its own .venv (its bench/net/servers.py and its ringloop
build), IMPL a bench/loops.py name, or `cfloor` for bench/floor/echo_server.c.
Each round starts every server in turn (pinned to CPU 0) and drives it with this
checkout's bench/floor/loadgen.c (CPU 1, MODE echo or churn, 0.3 s warm-up); the
server CPU per message (per connection in churn) comes from the load generator's
schedstat reading. Prints every round, then medians and minima, and the ratio of
each median to the first column's (> 1: cheaper than the first).

A column may end in @VAR=VALUE (repeatable) to run that server with those environment
variables, e.g. /work/main:uvloop@GLIBC_TUNABLES=glibc.malloc.trim_threshold=8388608.

Example (main against a worktree, both backends, with uvloop and the C floor):
    python bench/net/ab.py protocol churn 10 128 9 1.0 /work/main:cfloor \
        /work/wt-conn:uvloop /work/main:ringloop-epoll /work/wt-conn:ringloop-epoll
"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FLOOR = os.path.join(os.path.dirname(HERE), ".cache", "floor")


def measure(tree, impl, env, style, mode, conns, size, duration):
    if impl == "cfloor":
        cmd = [os.path.join(FLOOR, "echo_server")]
    else:
        cmd = [os.path.join(tree, ".venv", "bin", "python"),
               os.path.join(tree, "bench", "net", "servers.py"), style, impl]
    server = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **env})
    try:
        info = json.loads(server.stdout.readline())
        out = subprocess.run(
            ["taskset", "-c", "1", os.path.join(FLOOR, "loadgen"), mode, str(info["port"]),
             conns, size, "0.3", duration, str(info.get("pid", server.pid))],
            capture_output=True, text=True, timeout=60).stdout
    finally:
        server.terminate()
        server.wait()
    result = json.loads(out.strip().splitlines()[-1])
    if not result.get("ok"):
        raise SystemExit(f"{tree}:{impl}: {result.get('error')}")
    return result["server_cpu_ns"] / result["messages"] / 1000


def main(argv):
    style, mode, conns, size, rounds, duration = argv[:6]
    columns = argv[6:]
    cpu = {c: [] for c in columns}
    for r in range(int(rounds)):
        for c in columns:
            server, *assignments = c.split("@")
            tree, impl = server.rsplit(":", 1)
            env = dict(a.split("=", 1) for a in assignments)
            cpu[c].append(measure(tree, impl, env, style, mode, conns, size, duration))
        print(f"round {r + 1}: " + "  ".join(f"{c}={cpu[c][-1]:.2f}" for c in columns),
              flush=True)
    first = statistics.median(cpu[columns[0]])
    for c in columns:
        med = statistics.median(cpu[c])
        print(f"{c}: median {med:.2f} us, min {min(cpu[c]):.2f} us, "
              f"{first / med:.3f}x of {columns[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
