"""TLS echo benchmark: asyncio, uvloop and ringloop (both backends) side by side.

    python bench/tls/run.py [--rounds 5] [--duration 2] [--warmup 1]
                            [--loops asyncio,uvloop,ringloop] [--bench a,b]
                            [--cpu 0] [--loadgen-cpu 1] [--no-floor] [--json PATH]

Each measurement starts a fresh TLS echo server (bench/tls/server.py: a
create_server(ssl=...) protocol whose data_received writes the data back) pinned to
--cpu, and the C load generator bench/floor/tls_loadgen.c (OpenSSL) pinned to
--loadgen-cpu. The generator opens the connections and finishes their handshakes in
the warm-up, then keeps one message in flight per connection, checks every echoed
byte, and measures over exactly its window the messages echoed and the server's CPU
time (user + system, /proc/PID/task/*/schedstat). Rounds are interleaved (every
workload on every loop, A B C A B C ...); the report gives the median over rounds of
the server's CPU time per message and of the messages per second, with ringloop's
ratios to uvloop and asyncio ("busy": the server's CPU time over the window;
"stolen": the share of the window it was runnable but another process had its CPU,
i.e. the machine's noise; "lg busy": the load generator's). The floor is
bench/floor/tls_echo_server.c: the same echo in C over OpenSSL and epoll.

Each Python server first frees a 1 MiB block so that glibc malloc serves
SSLObject.read()'s 256 KiB buffers from the heap (see server.py, settle_malloc);
--raw-malloc leaves malloc as the process starts, which on this machine costs
uvloop's server mmap + mremap + munmap per read.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)
sys.path.insert(0, HERE)

import certs  # noqa: E402
import cfloor  # noqa: E402
import loops  # noqa: E402

SERVER = os.path.join(HERE, "server.py")
FLOOR = "C floor"

# name: (connections, message size, description)
WORKLOADS = {
    "echo_1k": (10, 1024, "10 connections, one 1 KiB message in flight on each"),
    "echo_100k": (10, 100 * 1024, "10 connections, one 100 KiB message in flight on each"),
}


def start_server(impl, cpu):
    cert, key = certs.ensure()
    if impl == FLOOR:
        cmd = [cfloor.build("tls_echo_server"), cert, key]
    else:
        cmd = [sys.executable, SERVER, impl, cert, key]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, preexec_fn=pin)
    line = proc.stdout.readline()
    try:
        info = json.loads(line)
    except ValueError:
        info = {"ok": False, "error": f"server said {line.strip()[:200]!r}"}
    if not info.get("ok"):
        stop(proc)
        raise RuntimeError(info.get("error"))
    return proc, info


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()


def measure(impl, workload, args):
    conns, size, _ = WORKLOADS[workload]
    try:
        proc, info = start_server(impl, args.cpu)
    except (RuntimeError, OSError) as exc:
        return {"ok": False, "error": str(exc)}
    try:
        argv = [cfloor.build("tls_loadgen"), info["port"], conns, size,
                args.warmup, args.duration, info["pid"]]
        pin = ((lambda: os.sched_setaffinity(0, {args.loadgen_cpu}))
               if args.loadgen_cpu is not None else None)
        lg = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            timeout=args.warmup + args.duration + 30, preexec_fn=pin)
        r = json.loads(lg.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError, RuntimeError, OSError) as exc:
        return {"ok": False, "error": f"load generator: {type(exc).__name__}: {exc}"}
    finally:
        stop(proc)
    if not r.get("ok") or not r["messages"] or r["bad"]:
        return {"ok": False, "error": f"load generator: {r}"}
    r["cpu_ns_per_msg"] = r["server_cpu_ns"] / r["messages"]
    r["msgs_per_s"] = r["messages"] / (r["window_ns"] / 1e9)
    r["server_busy"] = r["server_cpu_ns"] / r["window_ns"]
    r["server_stolen"] = r["server_wait_ns"] / r["window_ns"]
    r["loadgen_busy"] = r["loadgen_cpu_ns"] / r["window_ns"]
    r["loadgen_stolen"] = r["loadgen_wait_ns"] / r["window_ns"]
    return r


def median(rounds, key):
    values = [r[key] for r in rounds if r.get("ok")]
    return statistics.median(values) if values else None


def table(results, impls):
    lines = []
    for workload, by_impl in results.items():
        lines.append(f"\n{workload}: {WORKLOADS[workload][2]}")
        lines.append(f"  {'loop':<20} {'server CPU/msg':>14} {'msgs/s':>9} {'MB/s':>7} "
                     f"{'busy':>5} {'stolen':>6} {'lg busy':>7} {'lg stolen':>9}   vs uvloop  vs asyncio (CPU/msg)")
        cpu = {impl: median(by_impl[impl], "cpu_ns_per_msg") for impl in impls}
        size = WORKLOADS[workload][1]
        for impl in impls:
            rounds = by_impl[impl]
            if cpu[impl] is None:
                errors = {r.get("error") for r in rounds}
                lines.append(f"  {impl:<20} failed: {'; '.join(map(str, errors))[:160]}")
                continue
            ratios = ""
            if loops.is_ringloop(impl):
                ratios = "  ".join(
                    f"{cpu[impl] / cpu[b]:9.2f}x" if cpu.get(b) else f"{'-':>10}"
                    for b in ("uvloop", "asyncio"))
            rate = median(rounds, "msgs_per_s")
            lines.append(f"  {impl:<20} {cpu[impl] / 1000:11.2f} us {rate:9.0f} "
                         f"{rate * size / 1e6:7.1f} {median(rounds, 'server_busy'):5.0%} "
                         f"{median(rounds, 'server_stolen'):6.0%} "
                         f"{median(rounds, 'loadgen_busy'):7.0%} "
                         f"{median(rounds, 'loadgen_stolen'):9.0%}   {ratios}")
    return "\n".join(lines)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--loops", default="asyncio,uvloop,ringloop")
    ap.add_argument("--bench", help="comma-separated subset of: " + ", ".join(WORKLOADS))
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--raw-malloc", action="store_true",
                    help="servers keep glibc malloc's start-up mmap threshold (see server.py)")
    allowed = sorted(os.sched_getaffinity(0))
    ap.add_argument("--cpu", type=int, default=allowed[0])
    ap.add_argument("--loadgen-cpu", type=int, default=allowed[1] if len(allowed) > 1 else None)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if args.raw_malloc:
        os.environ["BENCH_TLS_RAW_MALLOC"] = "1"
    impls = loops.expand(args.loops.split(","))
    if not args.no_floor:
        impls.append(FLOOR)
    workloads = args.bench.split(",") if args.bench else list(WORKLOADS)
    results = {w: {impl: [] for impl in impls} for w in workloads}
    import ssl
    print(f"TLS echo, Python {platform.python_version()}, {ssl.OPENSSL_VERSION}, server on "
          f"CPU {args.cpu}, load generator on CPU {args.loadgen_cpu}, {args.rounds} rounds "
          f"of {args.duration}s (+{args.warmup}s warm-up)", flush=True)
    started = time.monotonic()
    for rnd in range(args.rounds):
        for workload in workloads:
            for impl in impls:
                results[workload][impl].append(measure(impl, workload, args))
        print(f"  round {rnd + 1}/{args.rounds} done ({time.monotonic() - started:.0f}s)",
              flush=True)
    first = next((r for w in results.values() for rs in w.values() for r in rs if r.get("ok")),
                 None)
    if first:
        print(f"negotiated: {first['version']} {first['cipher']}")
    print(table(results, impls))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": platform.python_version(), "args": vars(args),
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
