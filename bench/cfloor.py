"""The floor: small C programs doing a workload's work with no Python at all,
so the report says how close a loop gets to the kernel's own cost.

Sources live in bench/floor/*.c and are compiled on first use (cc -O2, plus the
program's LINK_FLAGS) into bench/.cache/floor/. A floor program takes its workload
arguments then the duration in seconds, and prints one JSON result like
bench/worker.py.
"""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.join(HERE, "floor")
BUILD_DIR = os.path.join(HERE, ".cache", "floor")

NAME = "C floor"

# Extra linker arguments by program (liburing: the liburing-dev package).
LINK_FLAGS = {
    "uring_echo_server": ["-luring"],
    "udp_uring_echo_server": ["-luring"],
    "tls_echo_server": ["-lssl", "-lcrypto"],
    "tls_loadgen": ["-lssl", "-lcrypto"],
    "soak_loadgen": ["-lssl", "-lcrypto"],
}


def build(program):
    """Compile bench/floor/<program>.c if needed; return the binary's path."""
    src = os.path.join(SRC_DIR, program + ".c")
    exe = os.path.join(BUILD_DIR, program)
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
        return exe
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler (cc) found")
    os.makedirs(BUILD_DIR, exist_ok=True)
    proc = subprocess.run([cc, "-O2", "-Wall", "-o", exe, src, *LINK_FLAGS.get(program, [])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling {program}.c failed: {proc.stderr.strip()[-500:]}")
    return exe


def run(floor, duration, cpu=None, timeout=60.0):
    """Run floor = (program, [args]) for `duration` seconds pinned to `cpu`."""
    program, args = floor
    try:
        exe = build(program)
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        proc = subprocess.run([exe, *map(str, args), str(duration)], capture_output=True,
                              text=True, timeout=timeout, preexec_fn=pin)
        if proc.returncode != 0:
            return {"ok": False, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (RuntimeError, OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
