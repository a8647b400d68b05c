"""What a compatibility run leaves for docs/compatibility.md (render_doc.py): one JSON file
per runner and Python in a folder (--record DIR), with the counts per loop and module,
every expected failure with its reason, and every failure. Small and stable enough to
commit: no timings per test, no machine paths."""
import json
import os
import platform
import sys


def write(directory, runner, modes, counts, xfails, problems, elapsed, **extra):
    """counts: {mode: {module: {column: n}}}; xfails: {mode: [(test, section, reason)]};
    problems: {mode: [(test, kind)]}."""
    os.makedirs(directory, exist_ok=True)
    record = {
        "runner": runner,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "modes": list(modes),
        "counts": counts,
        "expected_failures": {m: sorted([list(x) for x in xfails.get(m, [])]) for m in modes},
        "failures": {m: sorted([list(x) for x in problems.get(m, [])]) for m in modes},
        "elapsed_s": round(elapsed),
    }
    record.update(extra)
    path = os.path.join(directory, "%s-%d.%d.json" % ((runner,) + sys.version_info[:2]))
    with open(path, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    print("recorded: %s" % path)
    return path
