"""The wait strategies of bench/floor/udp_uring_echo_server.c side by side, in C:

    python bench/udp/strategies.py [--rounds 5] [--duration 2] [--bench pingpong_64,...]

Same load generator, pinning and interleaving as bench/udp/run.py; prints the
median server CPU per datagram for each mode (epoll, poll, multishot, recvmsg,
ring) and its ratio to "poll" (what ringloop's io_uring backend does now).
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import cfloor  # noqa: E402
import run  # noqa: E402

MODES = ["epoll", "poll", "multishot", "recvmsg", "ring"]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--bench", default="pingpong_64")
    allowed = sorted(os.sched_getaffinity(0))
    ap.add_argument("--cpu", type=int, default=allowed[0])
    ap.add_argument("--loadgen-cpu", type=int, default=allowed[-1])
    args = ap.parse_args(argv)
    exe = cfloor.build("udp_uring_echo_server")
    workloads = args.bench.split(",")
    res = {w: {m: [] for m in MODES} for w in workloads}
    for _ in range(args.rounds):
        for w in workloads:
            for m in MODES:
                res[w][m].append(measure(exe, m, w, args))
    for w in workloads:
        print(f"\n{w}: {run.WORKLOADS[w][3]}")
        cpu = {m: statistics.median(r["cpu_ns_per_dgram"] for r in res[w][m]) for m in MODES}
        for m in MODES:
            stolen = statistics.median(r["server_stolen"] for r in res[w][m])
            print(f"  {m:<10} {cpu[m] / 1000:8.2f} us/dgram  stolen {stolen:4.0%}"
                  f"  vs poll {cpu[m] / cpu['poll']:5.2f}x")


def measure(exe, mode, workload, args):
    socks, depth, size, _ = run.WORKLOADS[workload]
    server = subprocess.Popen([exe, mode], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.sched_setaffinity(0, {args.cpu}))
    try:
        info = run.json.loads(server.stdout.readline())
        lg = subprocess.run(
            [str(a) for a in (cfloor.build("udp_loadgen"), info["port"], socks, depth, size,
                              args.warmup, args.duration, info["pid"])],
            capture_output=True, text=True, check=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {args.loadgen_cpu}))
        r = run.json.loads(lg.stdout.strip().splitlines()[-1])
    finally:
        run.stop(server)
    if not r.get("ok") or not r["datagrams"] or r["bad"]:
        raise RuntimeError(f"{mode}: load generator: {r}")
    r["cpu_ns_per_dgram"] = r["server_cpu_ns"] / r["datagrams"]
    r["server_stolen"] = r["server_wait_ns"] / r["window_ns"]
    return r


if __name__ == "__main__":
    main(sys.argv[1:])
