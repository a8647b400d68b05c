"""ringloop benchmark harness.

    python bench/run.py core [--rounds N] [--quick] [--duration S]
                             [--loops ringloop,asyncio,uvloop,rloop] [--bench a,b]
                             [--json out.json]

Every measurement is one workload on one loop implementation in a fresh
process (bench/worker.py) pinned to one CPU; a helper thread that produces work
(call_soon_threadsafe) pins itself to a second CPU. Rounds are interleaved: in
each round every benchmark is measured on every implementation, one after the
other (A B C A B C ...), so slow drifts of the machine hit all implementations
alike. The report gives the median of the rounds per implementation and the
ratios of ringloop (both backends) to uvloop and asyncio.

The first round calibrates, per benchmark and implementation, an operation
count that takes about --duration seconds; later rounds reuse that count.

    python bench/run.py net [--rounds N] [--quick] [--duration S] [--warmup S]
                            [--loops ...|none] [--bench a,b] [--style protocol,streams,sock]
                            [--floors epoll,uring-poll,...|all]

The net suite runs an echo server per style and implementation (plus the C
floors on the `protocol` rows: bench/floor/echo_server.c over epoll and
bench/floor/uring_echo_server.c over io_uring) in a fresh process pinned to --cpu, and the C
load generator (bench/floor/loadgen.c) pinned to --producer-cpu for --warmup
then --duration seconds. It reports the server's CPU time per message and the
messages per second, with the same interleaved rounds, medians and ratios.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cfloor  # noqa: E402
import loops  # noqa: E402
import report  # noqa: E402

SUITES = ("core", "net")
DEFAULT_ROUNDS = 5
DEFAULT_DURATION = 0.8
QUICK_ROUNDS = 3
QUICK_DURATION = 0.2
# net: seconds measured per run (after the warm-up), default and --quick
NET_DURATION, NET_WARMUP = 2.0, 0.5
NET_QUICK_DURATION, NET_QUICK_WARMUP = 0.5, 0.25


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", nargs="?", default="core", choices=SUITES,
                    help="benchmark suite (default: core)")
    ap.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}, "
                                                 f"--quick: {QUICK_ROUNDS})")
    ap.add_argument("--duration", type=float, help=f"seconds per timed run (default "
                                                     f"{DEFAULT_DURATION}, --quick: {QUICK_DURATION}; "
                                                     f"net: {NET_DURATION}, {NET_QUICK_DURATION})")
    ap.add_argument("--warmup", type=float, help=f"net: seconds of load before the measured "
                                                   f"window (default {NET_WARMUP}, --quick: "
                                                   f"{NET_QUICK_WARMUP})")
    ap.add_argument("--quick", action="store_true", help="few short rounds (about a minute)")
    ap.add_argument("--loops", default="ringloop,asyncio,uvloop,rloop",
                    help="comma-separated: asyncio, uvloop, rloop, ringloop (both backends), "
                         "ringloop-io_uring, ringloop-epoll; net: none runs the C floors only")
    ap.add_argument("--bench", help="comma-separated subset of the suite's benchmarks")
    ap.add_argument("--style", help="net: comma-separated subset of the server styles "
                                    "(protocol, streams, sock)")
    ap.add_argument("--no-floor", action="store_true",
                    help="do not run the C floor programs (bench/floor/)")
    ap.add_argument("--floors", help="net: comma-separated C echo servers for the protocol rows "
                                     "(keys of FLOORS in bench/net/__init__.py), or all "
                                     "(default: its DEFAULT_FLOORS: the epoll floor, io_uring "
                                     "poll and io_uring recv)")
    ap.add_argument("--json", metavar="PATH", help="write raw numbers and summary as JSON")
    ap.add_argument("--cpu", type=int, help="CPU for the loop (net: the server; "
                                              "default: first allowed)")
    ap.add_argument("--producer-cpu", type=int,
                    help="CPU for producer threads (net: the load generator; "
                         "default: second allowed, if any)")
    ap.add_argument("--retries", type=int, default=2,
                    help="re-measure a CPU-bound run whose loop thread got < 90%% of its CPU "
                         "(another process ran there) up to this many times (default 2)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds before a single measurement counts as hung")
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.suite == "net":
        if args.duration is None:
            args.duration = NET_QUICK_DURATION if args.quick else NET_DURATION
        if args.warmup is None:
            args.warmup = NET_QUICK_WARMUP if args.quick else NET_WARMUP
    if args.duration is None:
        args.duration = QUICK_DURATION if args.quick else DEFAULT_DURATION
    if args.rounds < 1 or args.duration <= 0:
        ap.error("--rounds must be >= 1 and --duration > 0")
    return args


def pick_cpus(args):
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpu = args.cpu if args.cpu is not None else (allowed[0] if allowed else None)
    producer = args.producer_cpu
    if producer is None:
        others = [c for c in allowed if c != cpu]
        producer = others[0] if others else None
    return cpu, producer


def worker(argv, timeout):
    """Run bench/worker.py with argv; return its JSON result (or an error dict)."""
    cmd = [sys.executable, os.path.join(HERE, "worker.py")] + argv
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"ok": False, "error": f"exit {proc.returncode}: " + " / ".join(tail)}
    if proc.returncode != 0 and result.get("ok", True):
        result = {"ok": False, "error": f"exit {proc.returncode}"}
    return result


def with_retries(measure, cpu_bound, retries, share=None):
    """Run measure(); while the loop thread of a CPU-bound workload got less than
    DISTURBED of its CPU (another process ran there), measure again, up to
    `retries` times, and keep the least disturbed attempt. `share(result)` says
    how undisturbed a result is (default: the loop thread's share of wall time)."""
    share = share or (lambda r: report.cpu_share(r) or 1.0)
    best = measure()
    attempts = 1
    while cpu_bound and attempts <= retries and best.get("ok") and share(best) < report.DISTURBED:
        attempts += 1
        r = measure()
        if r.get("ok") and share(r) > share(best):
            best = r
    best["attempts"] = attempts
    return best


def machine_info():
    info = {
        "nproc": os.cpu_count(),
        "allowed_cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "executable": sys.executable,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def probe_all(impls, log):
    """Which implementations run here at all: (notes, available, info by impl)."""
    notes, available, impl_info = [], [], {}
    for impl in impls:
        r = worker(["--probe", impl], timeout=60)
        if r.get("ok"):
            available.append(impl)
            impl_info[impl] = {k: v for k, v in r.items() if k != "ok"}
        else:
            notes.append(f"{impl} skipped: {r.get('error')}")
            log(f"skip {impl}: {r.get('error')}")
    if not available:
        raise SystemExit("no loop implementation available")
    return notes, available, impl_info


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.suite == "net":
        return main_net(args, argv)
    import core

    try:
        impls = loops.expand(args.loops.split(","))
    except ValueError as exc:
        raise SystemExit(str(exc))
    workloads = core.WORKLOADS
    if args.bench:
        names = [b.strip() for b in args.bench.split(",") if b.strip()]
        unknown = [b for b in names if b not in core.BY_NAME]
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown} (known: {', '.join(core.BY_NAME)})")
        workloads = [w for w in workloads if w.name in names]
    cpu, producer_cpu = pick_cpus(args)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    started = time.monotonic()

    notes, available, impl_info = probe_all(impls, log)

    floors = [] if args.no_floor or not any(w.floor for w in workloads) else [cfloor.NAME]
    columns = available + floors
    results = {w.name: {impl: [] for impl in columns} for w in workloads}
    counts = {}
    for rnd in range(args.rounds):
        for w in workloads:
            for impl in available:
                wargv = ["--suite", args.suite, "--bench", w.name, "--loop", impl,
                         "--duration", str(args.duration), "--timeout", str(args.timeout)]
                if cpu is not None:
                    wargv += ["--cpu", str(cpu)]
                if producer_cpu is not None:
                    wargv += ["--producer-cpu", str(producer_cpu)]
                if (w.name, impl) in counts:
                    wargv += ["--count", str(counts[w.name, impl])]
                r = with_retries(lambda: worker(wargv, timeout=args.timeout * 3 + 30),
                                 w.cpu_bound, args.retries)
                r["round"] = rnd
                results[w.name][impl].append(r)
                if r.get("ok"):
                    # Later rounds reuse the count that makes one run about --duration long.
                    counts.setdefault((w.name, impl),
                                      max(1000, int(r["ops_per_s"] * args.duration)))
                    log(f"[{rnd + 1}/{args.rounds}] {w.name:22} {impl:18} "
                        f"{r['ops_per_s']:>14,.0f} {w.unit}/s")
                else:
                    log(f"[{rnd + 1}/{args.rounds}] {w.name:22} {impl:18} FAILED: {r.get('error')}")
                    if r.get("traceback"):
                        log(r["traceback"])
            if floors and w.floor:
                r = with_retries(lambda: cfloor.run(w.floor, args.duration, cpu,
                                                    timeout=args.timeout), True, args.retries)
                r["round"] = rnd
                results[w.name][cfloor.NAME].append(r)
                log(f"[{rnd + 1}/{args.rounds}] {w.name:22} {cfloor.NAME:18} "
                    + (f"{r['ops_per_s']:>14,.0f} {w.unit}/s" if r.get("ok")
                       else f"FAILED: {r.get('error')}"))
    elapsed = time.monotonic() - started

    for w in workloads:
        for impl in columns:
            failed = [r for r in results[w.name][impl] if not r.get("ok")]
            if failed:
                notes.append(f"{w.name} on {impl}: {len(failed)}/{args.rounds} rounds failed "
                             f"({failed[0].get('error')})")

    total, bad = report.disturbed(results, workloads)
    retried = sum(r.get("attempts", 1) - 1 for by_impl in results.values()
                  for rounds in by_impl.values() for r in rounds)
    if retried:
        notes.append(f"{retried} measurements were repeated because another process took CPU "
                     f"{cpu} from the loop thread (--retries {args.retries})")
    if bad:
        notes.append(f"{len(bad)} of {total} kept measurements of CPU-bound benchmarks still ran "
                     f"on a shared CPU (the loop thread got < {report.DISTURBED:.0%} of the wall "
                     f"time; worst {min(b[3] for b in bad):.0%}), so their wall-clock rates are "
                     f"low; the CPU-time table is steadier. Load average at the end: "
                     f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summary = report.summarize(results, columns)
    units = {w.name: w.unit for w in workloads}
    machine = machine_info()
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)

    out = [f"## ringloop bench: {args.suite}", "",
           f"{machine.get('cpu_model', '?')}, {machine['nproc']} CPUs, Linux {machine['kernel']}, "
           f"{machine['python_impl']} {machine['python']}; loop on CPU {cpu}, producer thread on "
           f"CPU {producer_cpu}; {args.rounds} rounds x ~{args.duration:g} s, median; "
           f"took {elapsed:.0f} s", "",
           f"`{command}`", "",
           report.main_table(summary, columns, units), "",
           "Implementations: " + "; ".join(
               f"{impl} {info.get('version', '')} ({info.get('backend', info.get('loop_type'))})"
               .replace("  ", " ") for impl, info in impl_info.items()), "",
           "Benchmarks:"]
    out += [f"- `{w.name}`: {w.description}" for w in workloads]
    if floors:
        out += [f"- {cfloor.NAME}: the same work in C without Python (bench/floor/), where one exists"]
    out += ["", "Loop-thread CPU time per operation (median over rounds; the ratios are "
            "baseline CPU / ringloop CPU, > 1 is better):", "",
            report.cpu_table(summary, columns), "",
            "Spread of the wall-clock rates over the rounds:", "",
            report.spread_table(summary, columns)]
    counters = report.counters_table(results, available)
    if counters:
        out += ["", "ringloop `loop.stats()` over the median round, per 1000 operations:", "",
                counters]
    if notes:
        out += ["", "Notes:"] + [f"- {n}" for n in notes]
    print("\n".join(out))

    if args.json:
        data = {
            "suite": args.suite,
            "command": command,
            "machine": machine,
            "params": {"rounds": args.rounds, "duration": args.duration, "cpu": cpu,
                       "producer_cpu": producer_cpu, "loops": available, "columns": columns},
            "implementations": impl_info,
            "benchmarks": {w.name: {"unit": w.unit, "description": w.description,
                                    "params": w.params} for w in workloads},
            "summary": summary,
            "results": results,
            "notes": notes,
            "elapsed_s": elapsed,
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        log(f"wrote {args.json}")
    return 0


def pick(items, wanted, what):
    """The items named in the comma-separated `wanted` (all when None), in suite order."""
    if not wanted:
        return list(items)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in items]
    if unknown:
        raise SystemExit(f"unknown {what}(s) {unknown} (known: {', '.join(items)})")
    return [n for n in items if n in names]


def main_net(args, argv):
    """The net suite: echo servers by style x loop implementation, plus the C floor."""
    import net
    from net import measure

    try:
        impls = [] if args.loops == "none" else loops.expand(args.loops.split(","))
    except ValueError as exc:
        raise SystemExit(str(exc))
    workloads = [net.BY_NAME[n] for n in pick(net.BY_NAME, args.bench, "benchmark")]
    wanted = None if args.floors == "all" else (args.floors or net.DEFAULT_FLOORS)
    floor_keys = pick(net.FLOORS, wanted, "floor")
    styles = pick(net.STYLES, args.style, "style")
    cpu, loadgen_cpu = pick_cpus(args)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    started = time.monotonic()
    notes, available, impl_info = probe_all(impls, log) if impls else ([], [], {})
    floor = ([] if args.no_floor or net.FLOOR_STYLE not in styles
             else [net.FLOORS[k][0] for k in floor_keys])
    columns = available + floor
    rows = {f"{w.name} {style}": (w, style) for w in workloads for style in styles}
    results = {row: {impl: [] for impl in columns} for row in rows}
    unsupported = {}  # (style, impl) -> why that server never echoed: not tried again
    undisturbed = lambda r: r.get("undisturbed", 1.0)  # noqa: E731

    for rnd in range(args.rounds):
        for row, (w, style) in rows.items():
            for impl in available + (floor if style == net.FLOOR_STYLE else []):
                if (style, impl) in unsupported:
                    r = {"ok": False, "skipped": True, "error": unsupported[style, impl]}
                else:
                    r = with_retries(lambda: measure.run(w, style, impl, args.duration,
                                                         args.warmup, cpu, loadgen_cpu,
                                                         args.timeout),
                                     True, args.retries, undisturbed)
                    if r.get("setup_failed"):
                        unsupported[style, impl] = r["error"]
                r["round"] = rnd
                results[row][impl].append(r)
                head = f"[{rnd + 1}/{args.rounds}] {row:24} {impl:18}"
                if r.get("ok"):
                    log(f"{head} {r['ops_per_s']:>10,.0f} {w.unit}/s "
                        f"{r['loop_cpu_ns'] / r['ops'] / 1e3:7.2f} us/{w.unit[:-1]}  "
                        f"server {r['server_busy']:.0%} loadgen {r['loadgen_busy']:.0%}")
                elif r.get("skipped"):
                    log(f"{head} skipped (failed before)")
                else:
                    log(f"{head} FAILED: {r.get('error')}")
    elapsed = time.monotonic() - started

    for (style, impl), error in unsupported.items():
        notes.append(f"{impl} cannot run the `{style}` server, failed: {error}")
    for row in rows:
        for impl in columns:
            failed = [r for r in results[row][impl] if not r.get("ok") and not r.get("skipped")]
            if failed and (rows[row][1], impl) not in unsupported:
                notes.append(f"{row} on {impl}: {len(failed)}/{args.rounds} rounds failed "
                             f"({failed[0].get('error')})")
    kept = [r for by_impl in results.values() for rounds in by_impl.values() for r in rounds
            if r.get("ok")]
    retried = sum(r.get("attempts", 1) - 1 for r in kept)
    if retried:
        notes.append(f"{retried} measurements were repeated because the server or the load "
                     f"generator waited for its CPU (another process ran there) for more than "
                     f"{1 - report.DISTURBED:.0%} of the window (--retries {args.retries})")
    bad = [r for r in kept if undisturbed(r) < report.DISTURBED]
    if bad:
        notes.append(f"{len(bad)} of {len(kept)} kept measurements still lost more than "
                     f"{1 - report.DISTURBED:.0%} of the window to other processes (worst "
                     f"{1 - min(map(undisturbed, bad)):.0%}); their rates are low, their CPU "
                     f"per message less affected")

    summary = report.summarize(results, columns)
    units = {row: w.unit for row, (w, _) in rows.items()}
    machine = machine_info()
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    floor_rows = [row for row, (_, style) in rows.items() if style == net.FLOOR_STYLE]
    out = ["## ringloop bench: net", "",
           f"{machine.get('cpu_model', '?')}, {machine['nproc']} CPUs, Linux {machine['kernel']}, "
           f"{machine['python_impl']} {machine['python']}; server on CPU {cpu}, load generator "
           f"on CPU {loadgen_cpu}; {args.rounds} rounds x ({args.warmup:g} s warm-up + "
           f"{args.duration:g} s measured), median; took {elapsed:.0f} s", "",
           f"`{command}`", "",
           "Server CPU time (user + system, whole process) per message, or per connection for "
           "`churn`, in µs. The ratios are baseline CPU / ringloop CPU, **> 1 means ringloop is "
           "better**:", "",
           report.net_cpu_table(summary, results, columns), "",
           "Throughput, messages (connections) per second; ratios ringloop / baseline. "
           f"\\* marks a rate measured with the load generator >= "
           f"{report.LOADGEN_BOUND:.0%} busy, which it may have capped:", "",
           report.net_rate_table(summary, results, columns, units)]
    if cfloor.NAME in floor and floor_rows:
        out += ["", f"Server CPU per message as a multiple of the C floor's "
                    f"(`{net.FLOOR_STYLE}` style):", "",
                report.net_floor_table(summary, floor_rows,
                                       available + [f for f in floor if f != cfloor.NAME])]
    out += ["", "Load generator busy and, in brackets, server busy: CPU time / the part of the "
                "window in which no other process held its CPU; median over rounds. Below 100% "
                "the load generator waited for the server:", "",
            report.net_busy_table(results, columns),
            "", "Spread of the server CPU per message over the rounds (the whole machine gets "
                "faster or slower from one round to the next; interleaving makes every "
                "implementation see the same rounds):", "",
            report.net_spread_table(results, columns),
            "", "Implementations: " + "; ".join(
                f"{impl} {info.get('version', '')} ({info.get('backend', info.get('loop_type'))})"
                .replace("  ", " ") for impl, info in impl_info.items()),
            "", "Workloads (bench/net/__init__.py; load generator bench/floor/loadgen.c):"]
    out += [f"- `{w.name}`: {w.description}" for w in workloads]
    out += ["", "Server styles (bench/net/servers.py):"]
    out += [f"- `{style}`: {net.STYLES[style]}" for style in styles]
    for key in floor_keys if floor else []:
        name, program, fargs = net.FLOORS[key]
        out += [f"- {name}: bench/floor/{program}.c {' '.join(fargs)}".rstrip()
                + (", level-triggered epoll echo in C" if program == "echo_server" else "")
                + f" (the `{net.FLOOR_STYLE}` rows)"]
    if notes:
        out += ["", "Notes:"] + [f"- {n}" for n in notes]
    print("\n".join(out))

    if args.json:
        data = {
            "suite": "net",
            "command": command,
            "machine": machine,
            "params": {"rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
                       "server_cpu": cpu, "loadgen_cpu": loadgen_cpu, "loops": available,
                       "columns": columns, "styles": styles},
            "implementations": impl_info,
            "benchmarks": {w.name: w._asdict() for w in workloads},
            "summary": summary,
            "results": results,
            "notes": notes,
            "elapsed_s": elapsed,
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
