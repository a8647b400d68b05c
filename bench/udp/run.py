"""UDP echo benchmark: asyncio, uvloop and ringloop (both backends) side by side.

    python bench/udp/run.py [--rounds 5] [--duration 2] [--warmup 0.5]
                            [--loops asyncio,uvloop,ringloop] [--bench a,b]
                            [--cpu 0] [--loadgen-cpu 1] [--no-floor] [--json PATH]
                            [--base DIR]

Each measurement starts a fresh echo server (bench/udp/server.py: a datagram
endpoint whose protocol sends every datagram back with transport.sendto) pinned to
--cpu, and the C load generator bench/floor/udp_loadgen.c pinned to --loadgen-cpu.
The generator measures, over exactly its window, the datagrams echoed and the
server's CPU time (user + system, /proc/PID/task/*/schedstat). Rounds are
interleaved (every workload on every loop, A B C A B C ...), the report gives the
median over rounds of the server's CPU ns per datagram ("user": the part of it in
user mode, from the tick-sampled utime of /proc/PID/stat) and of the datagrams per
second, with ringloop's ratios to uvloop and asyncio (of the medians, and "paired":
the median of the per-round ratios to uvloop) ("busy": the server's CPU time over
the window; "stolen": the share of the window it was runnable but another process
had its CPU, i.e. the machine's noise). The floor is
bench/floor/udp_echo_server.c: blocking recvfrom/sendto, no event loop.

--base DIR adds a "base:" column for each ringloop backend: the same server with
DIR first on PYTHONPATH, i.e. another build of ringloop (a copy of src/ with its
compiled extension), measured in the same rounds, for a before/after comparison.

Datagrams per second of a ping-pong workload are bound by the round trip (both
processes sleep and wake per datagram); CPU per datagram is the figure to compare.
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

import cfloor  # noqa: E402
import loops  # noqa: E402

SERVER = os.path.join(HERE, "server.py")
FLOOR = "C floor"
BASE = "base:"          # prefix of an implementation run from the --base build

# name: (sockets, datagrams in flight per socket, datagram size, description)
WORKLOADS = {
    "pingpong_64": (1, 1, 64, "1 socket, 1 datagram of 64 B in flight"),
    "clients10_256": (10, 1, 256, "10 sockets, 1 datagram of 256 B in flight on each"),
    "burst_256": (4, 16, 256, "4 sockets, 16 datagrams of 256 B in flight on each"),
    "large_8k": (4, 2, 8192, "4 sockets, 2 datagrams of 8 KiB in flight on each"),
}


def start_server(impl, cpu, base=None):
    env = None
    if impl == FLOOR:
        cmd = [cfloor.build("udp_echo_server")]
    elif impl.startswith(BASE):
        cmd = [sys.executable, SERVER, impl[len(BASE):]]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [base, os.environ.get("PYTHONPATH")])))
    else:
        cmd = [sys.executable, SERVER, impl]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, preexec_fn=pin, env=env)
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
    socks, depth, size, _ = WORKLOADS[workload]
    try:
        proc, info = start_server(impl, args.cpu, args.base)
    except (RuntimeError, OSError) as exc:
        return {"ok": False, "error": str(exc)}
    try:
        argv = [cfloor.build("udp_loadgen"), info["port"], socks, depth, size,
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
    if not r.get("ok") or not r["datagrams"] or r["bad"]:
        return {"ok": False, "error": f"load generator: {r}"}
    r["cpu_ns_per_dgram"] = r["server_cpu_ns"] / r["datagrams"]
    # of which in user mode (the loop and the protocol, not the kernel's socket work)
    r["user_ns_per_dgram"] = r["server_user_ns"] / r["datagrams"]
    r["dgrams_per_s"] = r["datagrams"] / (r["window_ns"] / 1e9)
    r["server_busy"] = r["server_cpu_ns"] / r["window_ns"]
    # runnable but kept off its CPU by another process: the machine's noise
    r["server_stolen"] = r["server_wait_ns"] / r["window_ns"]
    return r


def is_ringloop(impl):
    return loops.is_ringloop(impl.removeprefix(BASE))


def median(rounds, key):
    values = [r[key] for r in rounds if r.get("ok")]
    return statistics.median(values) if values else None


def paired_ratio(rounds, baseline):
    """Median over rounds of the CPU/dgram ratio to the baseline's measurement in the
    same round (a few seconds apart), less exposed to the machine's slow drifts."""
    ratios = [r["cpu_ns_per_dgram"] / b["cpu_ns_per_dgram"]
              for r, b in zip(rounds, baseline) if r.get("ok") and b.get("ok")]
    return statistics.median(ratios) if ratios else None


def table(results, impls):
    lines = []
    for workload, by_impl in results.items():
        lines.append(f"\n{workload}: {WORKLOADS[workload][3]}")
        lines.append(f"  {'loop':<24} {'server CPU/dgram':>16} {'user':>8} {'dgrams/s':>10} "
                     f"{'busy':>5} {'stolen':>6} {'lost':>5}   vs uvloop  vs asyncio  paired vs uvloop (CPU/dgram)")
        cpu = {impl: median(by_impl[impl], "cpu_ns_per_dgram") for impl in impls}
        for impl in impls:
            rounds = by_impl[impl]
            if cpu[impl] is None:
                errors = {r.get("error") for r in rounds}
                lines.append(f"  {impl:<24} failed: {'; '.join(map(str, errors))[:120]}")
                continue
            ratios = ""
            if is_ringloop(impl):
                ratios = "  ".join(
                    f"{cpu[impl] / cpu[b]:9.2f}x" if cpu.get(b) else f"{'-':>10}"
                    for b in ("uvloop", "asyncio"))
                paired = paired_ratio(rounds, by_impl.get("uvloop", []))
                ratios += f"  {paired:9.2f}x" if paired else f"  {'-':>10}"
            lost = sum(r["lost"] for r in rounds if r.get("ok"))
            lines.append(f"  {impl:<24} {cpu[impl] / 1000:13.2f} us "
                         f"{median(rounds, 'user_ns_per_dgram') / 1000:5.2f} us "
                         f"{median(rounds, 'dgrams_per_s'):10.0f} "
                         f"{median(rounds, 'server_busy'):5.0%} "
                         f"{median(rounds, 'server_stolen'):6.0%} {lost:5d}   {ratios}")
    return "\n".join(lines)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--loops", default="asyncio,uvloop,ringloop")
    ap.add_argument("--bench", help="comma-separated subset of: " + ", ".join(WORKLOADS))
    ap.add_argument("--no-floor", action="store_true")
    allowed = sorted(os.sched_getaffinity(0))
    ap.add_argument("--cpu", type=int, default=allowed[0])
    ap.add_argument("--loadgen-cpu", type=int, default=allowed[1] if len(allowed) > 1 else None)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--base", metavar="DIR",
                    help="also run each ringloop backend from this build (PYTHONPATH)")
    args = ap.parse_args(argv)
    impls = loops.expand(args.loops.split(","))
    if args.base:
        impls += [BASE + impl for impl in impls if loops.is_ringloop(impl)]
    if not args.no_floor:
        impls.append(FLOOR)
    workloads = args.bench.split(",") if args.bench else list(WORKLOADS)
    results = {w: {impl: [] for impl in impls} for w in workloads}
    if args.base:
        print(f"{BASE} ringloop from {args.base}")
    print(f"UDP echo, Python {platform.python_version()}, server on CPU {args.cpu}, "
          f"load generator on CPU {args.loadgen_cpu}, {args.rounds} rounds of "
          f"{args.duration}s (+{args.warmup}s warm-up)", flush=True)
    started = time.monotonic()
    for rnd in range(args.rounds):
        for workload in workloads:
            for impl in impls:
                results[workload][impl].append(measure(impl, workload, args))
        print(f"  round {rnd + 1}/{args.rounds} done ({time.monotonic() - started:.0f}s)",
              flush=True)
    print(table(results, impls))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": platform.python_version(), "args": vars(args),
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
