"""python -m ringloop soak [--short | --minutes N] [--backend B] [--json FILE]

Soaks each backend in turn (a fresh server process each) and prints a report;
exits 1 if any backend lost, duplicated or corrupted a message, leaked fds or
memory, hung, failed a fault's check, or its loop's exception handler saw
anything but the EMFILE of a storm. Needs a ringloop checkout (the compiled load
generator is bench/floor/soak_loadgen.c, built on first use) and a C compiler,
liburing, OpenSSL headers: what scripts/setup.sh installs.
"""
import argparse
import json
import os
import resource
import sys

from ringloop._soak import driver

SHORT = dict(duration=60, warmup=20, sample_every=10, fault_gap=0.3)


def full(minutes):
    return dict(duration=60 * minutes, warmup=60, sample_every=60, fault_gap=2.0,
                flat_within=0.05)


def bench_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.getcwd(), os.path.normpath(os.path.join(here, "..", "..", ".."))):
        if os.path.exists(os.path.join(root, "bench", "cfloor.py")):
            return os.path.join(root, "bench")
    sys.exit("ringloop soak: bench/ not found (run from a ringloop checkout)")


def tools():
    """(load generator, certificate, key), built or made on first use."""
    sys.path.insert(0, bench_dir())
    import cfloor
    from tls import certs
    return (cfloor.build("soak_loadgen"), *certs.ensure())


def kib(n):
    return f"{n / 1024:.1f} MiB"


def report(result, out):
    w = out.write
    w(f"\n== soak on {result['backend']}: {'PASS' if result['ok'] else 'FAIL'}\n")
    load = result.get("load", {})
    if load.get("endpoints"):
        w(f"load: {load['seconds']:.0f} s, drained: {load['drained']}\n")
        w(f"  {'endpoint':9} {'sent':>9} {'verified':>9} {'MiB':>8} {'lost':>5} {'dup':>4} "
          f"{'corrupt':>7} {'errors':>6} {'conns':>6} {'p50 us':>7} {'p99 us':>7} {'max us':>8}\n")
        for name, e in load["endpoints"].items():
            w(f"  {name:9} {e['sent']:>9} {e['verified']:>9} {e['verified_bytes'] / 2**20:>8.1f} "
              f"{e['lost']:>5} {e['duplicated']:>4} {e['corrupted']:>7} {e['errors']:>6} "
              f"{e['opened']:>6} {e['p50_us']:>7} {e['p99_us']:>7} {e['max_us']:>8}\n")
        drops = load["endpoints"]["udp"]["kernel_drops"]
        w(f"  (udp: the kernel dropped {drops} datagrams at the load generator's sockets)\n")
    if result.get("samples"):
        w("server fds / RSS in use / raw RSS: " + ", ".join(
            f"{s['t']} s{' (end)' if s.get('end') else ''}: {s['fds']} / {kib(s['rss_kib'])}"
            f" / {kib(s['rss_raw_kib'])}" for s in result["samples"]) + "\n")
    for name, record in result.get("faults", {}).items():
        w(f"fault {name}: {record['runs']} runs, {len(record['failures'])} failed; "
          f"last: {record.get('last')}\n")
    server = result.get("server")
    if server:
        c = server["counters"]
        w(f"server: echoed {c['echoed']}, peer aborts {c['peer_aborts']}, "
          f"pause_writing calls {c['pause_writing_calls']}\n")
        w("loop exception handler: " + (
            "; ".join(f"{h['count']}x {h['message']!r} {h['type']} {h['text']}"
                      for h in server["handler"]) or "nothing") + "\n")
    for problem in result["problems"]:
        w(f"  PROBLEM: {problem}\n")
    if not result["ok"] and result.get("server_log_tail"):
        w("server stderr (tail):\n" + result["server_log_tail"] + "\n")


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m ringloop soak", description=__doc__.split("\n\n")[1])
    parser.add_argument("--short", action="store_true",
                        help="60 s per backend, or until every fault ran once (what CI runs)")
    parser.add_argument("--minutes", type=float, default=10, help="per backend (default 10)")
    parser.add_argument("--backend", action="append", choices=["io_uring", "epoll"],
                        help="soak only this backend (repeatable; default both)")
    parser.add_argument("--json", help="also write the full results to this file")
    args = parser.parse_args(argv)
    config = driver.Config(**(SHORT if args.short else full(args.minutes)))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the storm's client side
    loadgen, cert, key = tools()
    results = []
    for backend in args.backend or ["io_uring", "epoll"]:
        print(f"soaking {backend} for {config.duration:.0f} s ...", file=sys.stderr, flush=True)
        results.append(driver.run_backend(backend, config, loadgen, cert, key))
        report(results[-1], sys.stdout)
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    ok = all(r["ok"] for r in results)
    print(f"\nsoak: {'PASS' if ok else 'FAIL'} ({', '.join(r['backend'] + (' ok' if r['ok'] else ' FAILED') for r in results)})")
    sys.exit(0 if ok else 1)
