"""The echo-server suites (net, tls, udp): what one of them is, and one measurement.

A server suite runs an echo server (a fresh Python process under one loop
implementation, or one of the C floor programs in bench/floor/) pinned to one
CPU, and a C load generator pinned to another. The load generator reads the
server's CPU time (user + system, in ns, from /proc/PID/task/*/schedstat) at the
start and the end of its measuring window, after its connections are open and
the warm-up is over, so set-up is not counted; it reports the same for itself,
and the time each process was runnable but kept off its CPU by another process.
"""
import json
import os
import selectors
import signal
import subprocess
import tempfile
from typing import Callable, NamedTuple

import cfloor

START_TIMEOUT = 30.0   # seconds for a server to print its port
PORT = "PORT"          # stands for the server's port in Workload.loadgen


class Workload(NamedTuple):
    name: str
    unit: str          # what one counted operation is: "msgs", "conns", "dgrams"
    loadgen: tuple     # the load generator's arguments before WARMUP DURATION SERVER_PID
    description: str


class Floor(NamedTuple):
    column: str        # the column name in reports
    program: str       # bench/floor/<program>.c
    args: tuple = ()


class ServerSuite(NamedTuple):
    name: str
    workloads: list            # of Workload
    styles: dict               # style -> what its server does
    floor_style: str           # the style whose work the C floors do
    floors: dict               # --floors key -> Floor
    default_floors: str        # comma-separated keys
    loadgen: str               # the load generator, bench/floor/<loadgen>.c
    count: str                 # the load generator's JSON key for operations completed
    python_server: Callable    # (style, impl) -> argv of the Python server
    floor_args: Callable = lambda: ()       # extra arguments every floor program takes
    check: Callable = None     # (port) -> raises when the server does not echo
    failure: Callable = lambda r: None      # (load generator result) -> error or None
    notes: Callable = lambda results: []    # (results) -> notes for the report
    warmup: tuple = (0.5, 0.25)             # default and --quick warm-up, seconds

    def rows(self, styles, workloads):
        """{row name: (workload, style)}; the style is in the name only when the
        suite has several."""
        return {(f"{w.name} {style}" if len(self.styles) > 1 else w.name): (w, style)
                for w in workloads for style in styles}

    def floor_by_column(self):
        return {f.column: f for f in self.floors.values()}


def pinned(cpu):
    return (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None


def read_line(proc, timeout):
    """The first line the server prints, or None at EOF or timeout."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        return proc.stdout.readline() or None
    finally:
        sel.close()


def server_error(proc, errfile, fallback):
    """Why the server failed: its JSON error line, else its stderr tail, else fallback."""
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is not None:
        for line in (proc.stdout.read() or "").splitlines()[::-1]:
            try:
                return json.loads(line)["error"]
            except (ValueError, KeyError, TypeError):
                continue
    errfile.seek(0)
    tail = [ln for ln in errfile.read().decode(errors="replace").splitlines() if ln.strip()][-2:]
    return fallback + (": " + " / ".join(tail) if tail else "")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()


def server_argv(suite, style, python, impl):
    floor = suite.floor_by_column().get(impl)
    if floor:
        return [cfloor.build(floor.program), *floor.args, *suite.floor_args()]
    return [python, *suite.python_server(style, impl)]


def run(suite, workload, style, python, impl, duration, warmup, server_cpu, loadgen_cpu,
        timeout=60.0):
    """Measure `workload` against a `style` server on loop `impl` run by the
    interpreter `python` (or a C floor when impl is a floor's column name). The load
    generator counts as hung `timeout` seconds after warm-up + duration. Returns a
    result dict: "ok" False with "error" on failure, and "setup_failed" True when
    the server never served (the same failure would repeat, so the harness need not
    try this style and loop again)."""
    try:
        loadgen = cfloor.build(suite.loadgen)
        cmd = server_argv(suite, style, python, impl)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        return {"ok": False, "setup_failed": True, "error": f"{type(exc).__name__}: {exc}"}
    env = dict(os.environ, PYTHONHASHSEED="0")
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errfile, text=True, env=env, preexec_fn=pinned(server_cpu))
        try:
            line = read_line(proc, START_TIMEOUT)
            if not line:
                return {"ok": False, "setup_failed": True,
                        "error": server_error(proc, errfile, "server printed no port")}
            try:
                info = json.loads(line)
            except ValueError:
                info = {"ok": False, "error": f"unexpected output {line.strip()[:100]!r}"}
            if not info.get("ok", True) or "port" not in info:
                return {"ok": False, "setup_failed": True, "error": info.get("error")}
            if suite.check:
                try:
                    suite.check(info["port"])
                except (OSError, ValueError) as exc:
                    return {"ok": False, "setup_failed": True, "error": server_error(
                        proc, errfile, f"first echo failed ({type(exc).__name__}: {exc})")}
            args = [info["port"] if a == PORT else a for a in workload.loadgen]
            argv = [loadgen, *args, warmup, duration, proc.pid]
            try:
                lg = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                                    timeout=warmup + duration + timeout,
                                    preexec_fn=pinned(loadgen_cpu))
            except subprocess.TimeoutExpired:
                return {"ok": False, "error": "load generator timed out"}
            try:
                r = json.loads(lg.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                return {"ok": False, "error": f"load generator exit {lg.returncode}: "
                                              f"{lg.stderr.strip()[-200:]}"}
            if proc.poll() is not None:
                return {"ok": False, "loadgen": r, "error": server_error(
                    proc, errfile, f"server died (exit {proc.returncode})")}
            if not r.get("ok"):
                return {"ok": False, "error": f"load generator: {r.get('error')}"}
            error = suite.failure(r)
            if error is None and not r[suite.count]:
                error = "nothing completed in the measured window"
            if error is None and "server_cpu_ns" not in r:
                error = "no CPU figures for the server process"
            if error:
                return {"ok": False, "error": error, "loadgen": r}
            return summarize(r, r[suite.count], info)
        finally:
            stop(proc)


def summarize(r, ops, info):
    window = r["window_ns"]
    return {
        "ok": True,
        "ops": ops,
        "wall_ns": window,
        "ops_per_s": ops / (window / 1e9),
        "loop_cpu_ns": r["server_cpu_ns"],       # the server process, user + system
        # CPU time / the part of the window the process was not kept off its CPU
        # by another process: near 100% means it never waited for its peer.
        "server_busy": r["server_cpu_ns"] / max(1, window - r["server_wait_ns"]),
        "loadgen_busy": r["loadgen_cpu_ns"] / max(1, window - r["loadgen_wait_ns"]),
        # Share of the window in which neither side waited for its CPU (another
        # process ran there); the harness re-measures when it is low.
        "undisturbed": 1 - max(r["server_wait_ns"], r["loadgen_wait_ns"]) / window,
        "loadgen": r,
        **{k: v for k, v in info.items() if k not in ("ok", "port", "pid")},
    }
