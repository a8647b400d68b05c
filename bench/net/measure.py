"""One measurement of the net suite: start an echo server (a fresh Python
process from bench/net/servers.py, or one of the C floors of net.FLOORS)
pinned to one CPU, check that it echoes, run the load generator
bench/floor/loadgen.c pinned to another CPU, stop the server.

The load generator reads the server's CPU time (user + system, in ns, from
/proc/PID/task/*/schedstat) at the start and end of its measuring window, after
the connections are open and the warm-up is done, so set-up is not counted.
"""
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile

import cfloor
import net

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "servers.py")
START_TIMEOUT = 30.0   # seconds for a server to print its port
CHECK_TIMEOUT = 5.0    # seconds for the first echo


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


def check_echo(port):
    """One 128-byte round trip on a fresh connection (raises if it fails)."""
    msg = bytes(range(128))
    with socket.create_connection(("127.0.0.1", port), timeout=CHECK_TIMEOUT) as s:
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(len(msg) - len(got))
            if not chunk:
                raise ConnectionError("server closed the connection")
            got += chunk
    if got != msg:
        raise ValueError("echo differs from the message sent")


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


def run(workload, style, impl, duration, warmup, server_cpu, loadgen_cpu, timeout=60.0):
    """Measure `workload` against a `style` server on loop `impl` (or a C floor
    when impl is a column name of net.FLOORS). The load generator counts as hung
    `timeout` seconds after warm-up + duration (it gives up on its own after 30 s
    connecting, or when nothing completes for max(5, duration) s). Returns a result
    dict: "ok" False with "error" on failure, and "setup_failed" True when the
    server never echoed (the same failure will repeat, so the runner need not try
    this style and loop again)."""
    try:
        loadgen = cfloor.build("loadgen")
        if impl in net.FLOOR_BY_NAME:
            program, args = net.FLOOR_BY_NAME[impl]
            cmd = [cfloor.build(program), *args]
        else:
            cmd = [sys.executable, SERVERS, style, impl]
    except (RuntimeError, OSError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    env = dict(os.environ, PYTHONHASHSEED="0")
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errfile, text=True, env=env,
                                preexec_fn=pinned(server_cpu))
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
            try:
                check_echo(info["port"])
            except (OSError, ValueError) as exc:
                return {"ok": False, "setup_failed": True, "error": server_error(
                    proc, errfile, f"first echo failed ({type(exc).__name__}: {exc})")}

            argv = [loadgen, workload.mode, info["port"], workload.conns, workload.size,
                    warmup, duration, proc.pid]
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
                return {"ok": False, "error": server_error(
                            proc, errfile, f"server died (exit {proc.returncode})"),
                        "loadgen": r}
            if not r.get("ok"):
                return {"ok": False, "error": f"load generator: {r.get('error')}"}
            if r["errors"]:
                return {"ok": False, "error": f"{r['errors']} errors (first: {r['first_error']})",
                        "loadgen": r}
            if not r["messages"]:
                st = r["at_end"]
                return {"ok": False, "loadgen": r, "error": (
                    f"nothing completed in the measured window; at its end "
                    f"{st['connecting']} connecting, {st['waiting_echo']} waiting for an echo, "
                    f"{st['waiting_close']} waiting for the server to close")}
            if "server_cpu_ns" not in r:
                return {"ok": False, "error": "no CPU figures for the server process"}
            return summarize(r, info)
        finally:
            stop(proc)


def summarize(r, info):
    window = r["window_ns"]
    ticks = r["server_utime_ticks"] + r["server_stime_ticks"]
    return {
        "ok": True,
        "ops": r["messages"],
        "wall_ns": window,
        "ops_per_s": r["messages"] / (window / 1e9),
        "loop_cpu_ns": r["server_cpu_ns"],       # the server process, user + system
        # CPU time / the part of the window the process was not kept off its CPU
        # by another process: near 100% means it never waited for its peer.
        "server_busy": r["server_cpu_ns"] / max(1, window - r["server_wait_ns"]),
        "loadgen_busy": r["loadgen_cpu_ns"] / max(1, window - r["loadgen_wait_ns"]),
        # Share of the window in which neither side waited for its CPU (another
        # process ran there); the runner re-measures when it is low.
        "undisturbed": 1 - max(r["server_wait_ns"], r["loadgen_wait_ns"]) / window,
        "server_sys_share": r["server_stime_ticks"] / ticks if ticks else None,
        "loadgen": r,
        **{k: v for k, v in info.items() if k not in ("ok", "port", "pid")},
    }

