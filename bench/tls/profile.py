"""Where a TLS echo server spends its CPU: perf samples grouped by what runs.

    python bench/tls/profile.py [--impl ringloop-epoll] [--size 1024] [--seconds 3]

Needs perf and Python 3.12+ (run it with that interpreter): the server runs with
`-X perf`, so perf's call chains name the Python functions (py::NAME:FILE). Starts
bench/tls/server.py pinned to CPU 0, the C load generator on CPU 1 (10 connections,
one SIZE-byte message in flight on each), records the server with perf for SECONDS,
and splits the samples by the code at the top of the stack:

  kernel            the leaf is in the kernel (syscalls, TCP, wake-ups)
  OpenSSL           the leaf is in libcrypto / libssl (record crypto, TLS state machine)
  Python: sslproto  interpreter time running asyncio/sslproto.py (asyncio's SSLProtocol)
  Python: other     interpreter time running any other Python code
  _ssl module       CPython's _ssl glue (SSLObject.read/write, MemoryBIO)
  ringloop C        ringloop's compiled core
  uvloop C          uvloop's compiled module (its loop, transports and SSLProtocol)
  other             anything else with no owner above it

Interpreter and libc frames are charged to their nearest owner up the stack (the
Python function being run, or the compiled module that called into the C API); a
kernel or OpenSSL leaf is charged to the kernel or OpenSSL. The call chains are
unwound with DWARF (--call-graph dwarf): CPython is not built with frame pointers.

and also gives the share of samples with an asyncio/sslproto.py frame anywhere on
the stack (SSLProtocol and everything it calls: OpenSSL, the transport's write), a
lower bound since perf copies 16 KiB of stack per sample.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, HERE)

import certs  # noqa: E402
import cfloor  # noqa: E402



def owner(sym, dso):
    """The category a frame belongs to, or None for frames that only run on behalf of
    another (the interpreter, libc)."""
    if "kernel" in dso or dso.startswith("[k"):
        return "kernel"
    if "libcrypto" in dso or "libssl" in dso:
        return "OpenSSL"
    if "/_ssl.cpython" in dso:
        return "_ssl module"
    if "/ringloop/" in dso:
        return "ringloop C"
    if "/uvloop/" in dso:
        return "uvloop C"
    if sym.startswith("py::"):
        return "Python: sslproto" if "sslproto" in sym else "Python: other"
    return None


def classify(stack):
    """stack: [(symbol, dso)] leaf first -> (category, under_sslproto, python_name).
    The category is that of the innermost frame with an owner: interpreter and libc
    time goes to the Python function or compiled module that called into them."""
    under = any(sym.startswith("py::") and "sslproto" in sym for sym, _ in stack)
    for sym, dso in stack:
        cat = owner(sym, dso)
        if cat is not None:
            return cat, under, (sym if sym.startswith("py::") else None)
    return "other", under, None


def parse(script_output):
    samples, stack = [], []
    for line in script_output.splitlines():
        if not line.strip():
            if stack:
                samples.append(stack)
            stack = []
            continue
        if line.startswith(("\t", " ")):
            parts = line.strip().split(None, 1)
            if len(parts) < 2:
                continue
            rest = parts[1]
            dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else "?"
            sym = rest[:rest.rfind("(")].strip() if "(" in rest else rest
            if "+0x" in sym:
                sym = sym[:sym.rfind("+0x")]
            stack.append((sym, dso))
    if stack:
        samples.append(stack)
    return samples


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", default="ringloop-epoll")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--loadgen-cpu", type=int, default=1)
    ap.add_argument("--top", type=int, default=0, help="also list the N costliest Python functions")
    args = ap.parse_args(argv)
    cert, key = certs.ensure()
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    server = subprocess.Popen(
        [sys.executable, "-X", "perf", os.path.join(HERE, "server.py"), args.impl, cert, key],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {args.cpu}))
    info = json.loads(server.stdout.readline())
    assert info.get("ok"), info
    warm = 1.0
    lg = subprocess.Popen(
        [cfloor.build("tls_loadgen"), str(info["port"]), "10", str(args.size),
         str(warm), str(args.seconds + 1), str(info["pid"])],
        stdout=subprocess.PIPE, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {args.loadgen_cpu}))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        time.sleep(warm + 0.3)
        subprocess.run(["perf", "record", "-F", "999", "--call-graph", "dwarf,16384",
                        "-p", str(info["pid"]), "-o", data,
                        "--", "sleep", str(args.seconds)], capture_output=True, check=True)
        result = json.loads(lg.communicate()[0].strip().splitlines()[-1])
        server.terminate()
        server.wait()
        out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"],
                             capture_output=True, text=True).stdout
    samples = parse(out)
    counts = collections.Counter()
    pyfuncs = collections.Counter()
    ksyms = collections.Counter()
    usyms = collections.Counter()
    under = 0
    for stack in samples:
        cat, u, name = classify(stack)
        counts[cat] += 1
        under += u
        if name:
            pyfuncs[name] += 1
        if cat == "kernel":
            ksyms[stack[0][0]] += 1
        elif stack:
            usyms[f"{stack[0][0]} ({os.path.basename(stack[0][1])})"] += 1
    total = sum(counts.values()) or 1
    per_msg = result["server_cpu_ns"] / max(result["messages"], 1) / 1000
    print(f"{args.impl}, {args.size} B messages, Python {sys.version.split()[0]}: "
          f"{len(samples)} samples, server {per_msg:.2f} us CPU per message")
    for cat in ("kernel", "OpenSSL", "_ssl module", "Python: sslproto", "Python: other",
                "ringloop C", "uvloop C", "other"):
        if counts[cat]:
            print(f"  {cat:<18} {counts[cat] / total:6.1%}")
    print(f"  {'under sslproto.py':<18} {under / total:6.1%}  (a sslproto.py frame on the stack; a lower "
          f"bound: a 16 KiB stack copy may end below the Python frames)")
    if args.top:
        print("  Python functions (self, interpreter time included):")
        for name, n in pyfuncs.most_common(args.top):
            print(f"    {n / total:6.1%}  {name[4:]}")
        print("  kernel functions (self):")
        for name, n in ksyms.most_common(args.top):
            print(f"    {n / total:6.1%}  {name}")
        print("  user-space functions (self, any library):")
        for name, n in usyms.most_common(args.top):
            print(f"    {n / total:6.1%}  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
