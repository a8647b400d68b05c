"""ringloop benchmark harness: one runner for every suite.

    python -m ringloop bench SUITE [options]      (= python bench/run.py SUITE ...)
    python -m ringloop bench all [options]        every suite, one after the other
    python -m ringloop bench report JSON... [--markdown] [--plot DIR] [--page FILE]

Suites: core (loop primitives, bench/core/), net (TCP echo servers in three
styles, bench/net/), tls (TLS echo, bench/tls/), udp (UDP echo, bench/udp/).

Every measurement runs in a fresh process pinned to one CPU: for `core` one
workload on one loop (bench/worker.py; a producer thread pins itself to a second
CPU); for the server suites an echo server on one loop, or a C floor program,
with a C load generator on the second CPU that reads the server's CPU time over
its measuring window. Rounds are interleaved: in each round every row is measured
on every implementation, one after the other (A B C A B C ...), so slow drifts of
the machine hit all implementations alike. The report gives medians over the
rounds and ratios of ringloop (both backends) to asyncio, uvloop and rloop; a
measurement that another process disturbed is repeated (--retries).

`core` calibrates, in round 1, per workload and implementation, an operation
count that takes about --duration seconds; later rounds reuse it. --base PATH
measures every ringloop column once more, as base:..., with another build (before
and after a change, in the same rounds). The published figures and how they are
made: BENCHMARKS.md.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cfloor  # noqa: E402
import harness  # noqa: E402
import loops  # noqa: E402
import report  # noqa: E402
import serve  # noqa: E402

SUITES = ("core", "net", "tls", "udp")
DEFAULT_ROUNDS, QUICK_ROUNDS = 5, 3
# seconds per timed run (server suites: measured window after the warm-up), default and --quick
CORE_DURATION, CORE_QUICK_DURATION = 0.8, 0.2
SERVER_DURATION, SERVER_QUICK_DURATION = 2.0, 0.5


def server_suite(name):
    """The ServerSuite of bench/<name>/__init__.py."""
    import importlib

    return importlib.import_module(name).SUITE


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m ringloop bench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", choices=SUITES + ("all",), help="benchmark suite, or all")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_ROUNDS} rounds of short runs ({CORE_QUICK_DURATION:g} s; "
                         f"server suites {SERVER_QUICK_DURATION:g} s after a short warm-up)")
    ap.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS})")
    ap.add_argument("--duration", type=float,
                    help=f"seconds per timed run (default core {CORE_DURATION:g}, "
                         f"server suites {SERVER_DURATION:g})")
    ap.add_argument("--warmup", type=float, help="server suites: seconds of load before the "
                                                 "measured window (default: the suite's)")
    ap.add_argument("--loops", default="ringloop,asyncio,uvloop,rloop",
                    help="comma-separated: asyncio, uvloop, rloop, ringloop (both backends), "
                         "ringloop-io_uring, ringloop-epoll; server suites: none runs the C "
                         "floors only")
    ap.add_argument("--bench", help="comma-separated subset of the suite's workloads")
    ap.add_argument("--style", help="net: comma-separated subset of the server styles "
                                    "(protocol, streams, sock)")
    ap.add_argument("--no-floor", action="store_true", help="run no C floor program")
    ap.add_argument("--floors", help="server suites: comma-separated keys of the suite's "
                                     "FLOORS (bench/<suite>/__init__.py), or all")
    ap.add_argument("--json", metavar="PATH", help="write every round's result and the "
                                                   "summary as JSON (a directory: PATH/SUITE.json)")
    ap.add_argument("--plot", metavar="DIR", help="write DIR/SUITE.png: each loop's speed "
                                                  "relative to uvloop")
    ap.add_argument("--base", metavar="PATH",
                    help="before/after: also measure each ringloop backend as a base: column "
                         "with this other build (a checkout with its .venv, or an interpreter)")
    ap.add_argument("--cpu", type=int, help="CPU of the loop or server (default: first allowed)")
    ap.add_argument("--producer-cpu", type=int,
                    help="CPU of core's producer thread or of the load generator "
                         "(default: second allowed)")
    ap.add_argument("--retries", type=int, default=2,
                    help="measure again, up to this many times, a run that failed or that "
                         "another process disturbed (it took more than "
                         f"{1 - report.DISTURBED:.0%}% of its CPU)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds before a single measurement counts as hung")
    args = ap.parse_args(argv)
    if args.base:
        args.base = harness.base_python(args.base)
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.rounds < 1 or (args.duration is not None and args.duration <= 0):
        ap.error("--rounds must be >= 1 and --duration > 0")
    return args


def pick(items, wanted, what):
    """The items named in the comma-separated `wanted` (all when None), in suite order."""
    if not wanted:
        return list(items)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in items]
    if unknown:
        raise SystemExit(f"unknown {what}(s) {unknown} (known: {', '.join(items)})")
    return [n for n in items if n in names]


def implementations(args, log, allow_none=False):
    if allow_none and args.loops == "none":
        return [], [], {}
    try:
        impls = loops.expand(args.loops.split(","))
    except ValueError as exc:
        raise SystemExit(str(exc))
    if args.base:
        impls += [loops.BASE + impl for impl in impls if loops.is_ringloop(impl)]
    notes, available, info = harness.probe_all(impls, log, args.base)
    if not available and not allow_none:
        raise SystemExit("no loop implementation available")
    return notes, available, info


def run_core(args, log):
    import core

    duration = args.duration or (CORE_QUICK_DURATION if args.quick else CORE_DURATION)
    workloads = [core.BY_NAME[n] for n in pick(core.BY_NAME, args.bench, "benchmark")]
    cpu, producer_cpu = harness.pick_cpus(args.cpu, args.producer_cpu)
    notes, available, impl_info = implementations(args, log)
    floors = [] if args.no_floor or not any(w.floor for w in workloads) else [cfloor.NAME]
    counts = {}  # (workload, impl) -> the count round 1 calibrated
    share = lambda r: report.cpu_share(r) or 1.0  # noqa: E731

    def measure(name, impl, rnd):
        w = core.BY_NAME[name]
        retries = args.retries if w.cpu_bound else 0
        if impl == cfloor.NAME:
            return harness.with_retries(
                lambda: cfloor.run(w.floor, duration, cpu, timeout=args.timeout), retries, share)
        python, name_of_impl = harness.interpreter(impl, args.base)
        wargv = ["--suite", "core", "--bench", name, "--loop", name_of_impl,
                 "--duration", str(duration), "--timeout", str(args.timeout)]
        if cpu is not None:
            wargv += ["--cpu", str(cpu)]
        if producer_cpu is not None:
            wargv += ["--producer-cpu", str(producer_cpu)]
        if (name, impl) in counts:
            wargv += ["--count", str(counts[name, impl])]
        r = harness.with_retries(lambda: harness.worker(wargv, args.timeout * 3 + 30, python),
                                 retries, share)
        if r.get("ok"):
            counts.setdefault((name, impl), max(1000, int(r["ops_per_s"] * duration)))
        elif r.get("traceback"):
            log(r["traceback"])
        return r

    plan = [(w.name, available + (floors if w.floor else [])) for w in workloads]
    columns = available + floors
    started = time.monotonic()
    results = harness.interleave(args.rounds, plan, columns, measure, log)
    elapsed = time.monotonic() - started

    notes += harness.failure_notes(results, args.rounds)
    notes += harness.retry_note(results, args.retries,
                                f"another process took CPU {cpu} from the loop thread")
    total, bad = report.disturbed(results, workloads)
    if bad:
        notes.append(f"{len(bad)} of {total} kept measurements of CPU-bound workloads still "
                     f"shared their CPU (the loop thread got < {report.DISTURBED:.0%} of the wall "
                     f"time; worst {min(b[3] for b in bad):.0%}): their wall-clock rates are "
                     f"low, the CPU-time table is steadier")
    return {
        "params": {"rounds": args.rounds, "duration": duration, "cpu": cpu,
                   "producer_cpu": producer_cpu},
        "columns": columns,
        "implementations": impl_info,
        "rows": {w.name: {"unit": w.unit, "description": w.description,
                          "cpu_bound": w.cpu_bound, "floor": bool(w.floor)} for w in workloads},
        "floors": {cfloor.NAME: "the same work in C, without Python (bench/floor/)"
                   for _ in floors},
        "metric": "rate",
        "results": results,
        "notes": notes,
        "elapsed_s": elapsed,
    }


def run_server(args, log):
    suite = server_suite(args.suite)
    duration = args.duration or (SERVER_QUICK_DURATION if args.quick else SERVER_DURATION)
    warmup = args.warmup if args.warmup is not None else suite.warmup[1 if args.quick else 0]
    workloads = [w for w in suite.workloads
                 if w.name in pick([w.name for w in suite.workloads], args.bench, "benchmark")]
    styles = pick(suite.styles, args.style, "style")
    wanted = None if args.floors == "all" else (args.floors or suite.default_floors)
    floor_keys = pick(suite.floors, wanted, "floor")
    floors = ([] if args.no_floor or suite.floor_style not in styles
              else [suite.floors[k].column for k in floor_keys])
    cpu, loadgen_cpu = harness.pick_cpus(args.cpu, args.producer_cpu)
    notes, available, impl_info = implementations(args, log, allow_none=True)
    if not available and not floors:
        raise SystemExit("nothing to measure: no loop implementation and no floor")
    rows = suite.rows(styles, workloads)
    unsupported = {}  # (style, impl) -> why that server never served: not tried again
    share = lambda r: r.get("undisturbed", 1.0)  # noqa: E731

    def measure(row, impl, rnd):
        w, style = rows[row]
        if (style, impl) in unsupported:
            return {"ok": False, "skipped": True, "error": unsupported[style, impl]}
        r = harness.with_retries(
            lambda: serve.run(suite, w, style, *harness.interpreter(impl, args.base),
                              duration, warmup, cpu, loadgen_cpu, args.timeout),
            args.retries, share)
        if r.get("setup_failed"):
            unsupported[style, impl] = r["error"]
        return r

    plan = [(row, available + (floors if style == suite.floor_style else []))
            for row, (_, style) in rows.items()]
    columns = available + floors
    started = time.monotonic()
    results = harness.interleave(args.rounds, plan, columns, measure, log)
    elapsed = time.monotonic() - started

    for (style, impl), error in unsupported.items():
        notes.append(f"{impl} cannot run the `{style}` server: {error}")
    notes += harness.failure_notes(
        {row: {impl: rs for impl, rs in by_impl.items() if (rows[row][1], impl) not in unsupported}
         for row, by_impl in results.items()}, args.rounds)
    notes += harness.retry_note(results, args.retries,
                                "the server or the load generator waited for its CPU (another "
                                f"process ran there) for more than {1 - report.DISTURBED:.0%} "
                                "of the window")
    kept = [r for by_impl in results.values() for rs in by_impl.values() for r in rs
            if r.get("ok")]
    bad = [r for r in kept if share(r) < report.DISTURBED]
    if bad:
        notes.append(f"{len(bad)} of {len(kept)} kept measurements still lost more than "
                     f"{1 - report.DISTURBED:.0%} of the window to other processes (worst "
                     f"{1 - min(map(share, bad)):.0%}): their rates are low, their CPU per "
                     f"operation less affected")
    notes += suite.notes(results)
    return {
        "params": {"rounds": args.rounds, "duration": duration, "warmup": warmup,
                   "cpu": cpu, "loadgen_cpu": loadgen_cpu, "styles": styles},
        "columns": columns,
        "implementations": impl_info,
        "rows": {row: {"unit": w.unit, "description": w.description, "style": style,
                       "style_description": suite.styles[style],
                       "floor": style == suite.floor_style}
                 for row, (w, style) in rows.items()},
        "floors": {suite.floors[k].column: f"bench/floor/{suite.floors[k].program}.c "
                                           + " ".join(suite.floors[k].args)
                   for k in floor_keys},
        "metric": "cpu",
        "results": results,
        "notes": notes,
        "elapsed_s": elapsed,
    }


def output_path(path, suite, ext):
    """PATH itself, or PATH/SUITE.ext when PATH is a directory (or ends with /)."""
    if path.endswith("/") or os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        return os.path.join(path, f"{suite}.{ext}")
    return path


def plot_to(directory, data):
    import plot

    return plot.plot(data, output_path(directory.rstrip("/") + "/", data["suite"], "png"))


def run_suite(suite, args, argv, log):
    args.suite = suite
    data = {"schema": report.SCHEMA, "suite": suite,
            "command": "python -m ringloop bench " + " ".join([suite] + argv[1:]),
            "quick": args.quick, "machine": harness.machine_info(), "source": harness.source_info()}
    data.update(run_core(args, log) if suite == "core" else run_server(args, log))
    data["summary"] = report.summarize(data["results"], data["columns"])
    print(report.render(data), flush=True)
    if args.json:
        path = output_path(args.json, suite, "json")
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
        log(f"wrote {path}")
    if args.plot:
        log(f"wrote {plot_to(args.plot, data)}")


def main_report(argv):
    ap = argparse.ArgumentParser(prog="python -m ringloop bench report",
                                 description="Tables and plots from the JSON of earlier runs.")
    ap.add_argument("json", nargs="+", help="files written by --json")
    ap.add_argument("--markdown", action="store_true",
                    help="print the short form BENCHMARKS.md shows (default: the full report)")
    ap.add_argument("--page", metavar="FILE",
                    help="replace the generated part of FILE (between its bench-report "
                         "markers) with the short form")
    ap.add_argument("--plot", metavar="DIR", help="write DIR/SUITE.png for each file")
    args = ap.parse_args(argv)
    datas, pngs = [], {}
    for path in args.json:
        with open(path) as f:
            data = report.load(f)
        datas.append(data)
        # the plot beside the record (--plot into the same folder as --json)
        pngs[data["suite"]] = os.path.join(args.plot or os.path.dirname(path),
                                           data["suite"] + ".png")
    datas.sort(key=lambda d: SUITES.index(d["suite"]) if d["suite"] in SUITES else len(SUITES))
    if args.plot:
        for data in datas:
            print(f"wrote {plot_to(args.plot, data)}", file=sys.stderr)

    def images(relative_to):
        return {suite: os.path.relpath(png, relative_to) for suite, png in pngs.items()
                if os.path.exists(png)}

    if args.page:
        report.update_page(args.page, datas, args.json,
                           images(os.path.dirname(os.path.abspath(args.page))))
    if args.markdown:
        print(report.page_block(datas, images(os.getcwd())))
    elif not (args.page or args.plot):
        print("\n\n".join(report.render(d) for d in datas))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "report":
        return main_report(argv[1:])
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.suite == "all" and args.json and not args.json.endswith("/"):
        args.json += "/"
    for suite in SUITES if args.suite == "all" else (args.suite,):
        run_suite(suite, args, argv, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
