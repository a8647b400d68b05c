"""What every suite's run shares: the CPUs, the machine and the commit, which
loop implementations run here, interleaved rounds, re-measuring a disturbed
measurement, and the notes about failures."""
import datetime
import json
import os
import platform
import subprocess
import sys

import loops
import report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def pick_cpus(cpu, other):
    """The loop's (or server's) CPU and the producer's (or load generator's): the
    first two allowed CPUs unless given."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpu is None:
        cpu = allowed[0] if allowed else None
    if other is None:
        others = [c for c in allowed if c != cpu]
        other = others[0] if others else None
    return cpu, other


def machine_info():
    info = {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
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


def source_info():
    """The commit measured, and whether the code (src/, bench/'s programs) differed
    from it; the records and plots a run writes do not count."""
    def git(*args):
        try:
            proc = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
        except OSError:         # no git on this machine: the commit is unknown
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = git("status", "--porcelain", "--", "src", "bench/*.py", "bench/*.c")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def base_python(path):
    """The interpreter of --base PATH: PATH itself, or a checkout's PATH/.venv/bin/python."""
    python = os.path.join(path, ".venv", "bin", "python") if os.path.isdir(path) else path
    if not os.access(python, os.X_OK):
        raise SystemExit(f"--base {path}: no interpreter at {python}")
    return python


def interpreter(column, base):
    """(interpreter, implementation) that measure `column`: a base: column runs
    under the --base interpreter, so it imports that build of ringloop."""
    if column.startswith(loops.BASE):
        return base, column[len(loops.BASE):]
    return sys.executable, column


def worker(argv, timeout, python=sys.executable):
    """Run bench/worker.py with argv; return its JSON result (or an error dict)."""
    cmd = [python, os.path.join(HERE, "worker.py")] + argv
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


def probe_all(impls, log, base=None):
    """Which implementations run here at all: (notes, available, info by impl)."""
    notes, available, impl_info = [], [], {}
    for impl in impls:
        python, name = interpreter(impl, base)
        r = worker(["--probe", name], timeout=60, python=python)
        if r.get("ok"):
            available.append(impl)
            impl_info[impl] = {k: v for k, v in r.items() if k != "ok"}
        else:
            notes.append(f"{impl} skipped: {r.get('error')}")
            log(f"skip {impl}: {r.get('error')}")
    return notes, available, impl_info


def with_retries(measure, retries, share):
    """Run measure(), and again, up to `retries` times, while the result failed
    (except at set-up: a server that cannot start will not start next time) or
    was disturbed (share(result), the part of the run no other process took from
    it, is below report.DISTURBED). Keeps a success over a failure, then the least
    disturbed attempt. On this shared host a whole process can stall for a moment
    (a C floor server, too, once slept for a second with data in its socket), so a
    failure is not final until it repeats."""
    def again(r):
        return share(r) < report.DISTURBED if r.get("ok") else not r.get("setup_failed")

    best = measure()
    attempts = 1
    while attempts <= retries and again(best):
        attempts += 1
        r = measure()
        if r.get("ok") and (not best.get("ok") or share(r) > share(best)):
            best = r
    best["attempts"] = attempts
    return best


def interleave(rounds, plan, columns, measure, log):
    """Measure every (row, column) of `plan` ([(row, [columns])]) once per round,
    one after the other (A B C A B C ...), so that slow drifts of the machine hit
    every implementation alike. measure(row, column, round) returns a result dict.
    Returns {row: {column: [result per round]}}, every column present in every row."""
    results = {row: {col: [] for col in columns} for row, _ in plan}
    for rnd in range(rounds):
        for row, cols in plan:
            for col in cols:
                r = measure(row, col, rnd)
                r["round"] = rnd
                results[row][col].append(r)
                head = f"[{rnd + 1}/{rounds}] {row:24} {col:18}"
                if r.get("ok"):
                    log(f"{head} {r['ops_per_s']:>12,.0f} ops/s "
                        f"{r['loop_cpu_ns'] / r['ops'] / 1e3:8.3f} us CPU/op")
                elif r.get("skipped"):
                    log(f"{head} skipped (failed before)")
                else:
                    log(f"{head} FAILED: {r.get('error')}")
    return results


def failure_notes(results, rounds):
    notes = []
    for row, by_impl in results.items():
        for impl, rs in by_impl.items():
            failed = [r for r in rs if not r.get("ok") and not r.get("skipped")]
            if failed:
                notes.append(f"{row} on {impl}: {len(failed)}/{rounds} rounds failed "
                             f"({failed[0].get('error')})")
    return notes


def retry_note(results, retries, what):
    retried = sum(r.get("attempts", 1) - 1 for by_impl in results.values()
                  for rs in by_impl.values() for r in rs)
    if not retried:
        return []
    return [f"{retried} measurements were repeated because they failed or {what} "
            f"(--retries {retries})"]
