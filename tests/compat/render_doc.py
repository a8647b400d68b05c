#!/usr/bin/env python3
"""Write docs/compatibility.md from the runners' records (tests/compat/results/*.json,
written by run_cpython.py / run_uvloop.py --record) and the prose in
tests/compat/compatibility.md.in, so the tables cannot drift from what ran.

    python3 tests/compat/render_doc.py            # writes docs/compatibility.md
    python3 tests/compat/render_doc.py --check    # exit 1 if the file is not up to date

scripts/compat-doc.sh runs the suites on every Python and then this.
"""
import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")
TEMPLATE = os.path.join(HERE, "compatibility.md.in")
OUTPUT = os.path.join(ROOT, "docs", "compatibility.md")

LOOP_TITLES = {"stdlib": "asyncio's loop", "asyncio": "asyncio's loop", "uvloop": "uvloop",
               "io_uring": "ringloop io_uring", "epoll": "ringloop epoll"}
RUNNER_TITLES = {"cpython": "CPython's test.test_asyncio", "uvloop": "uvloop's test suite"}
RINGLOOP = ("io_uring", "epoll")


def load(directory):
    records = []
    for path in glob.glob(os.path.join(directory, "*.json")):
        with open(path) as f:
            records.append(json.load(f))
    key = lambda r: (tuple(int(x) for x in r["python"].split(".")[:2]), r["runner"])
    return sorted(records, key=key)


def failed(c):
    return c["failed"] + c["errors"] + c["xpass"]


def total(counts):
    out = {}
    for module_counts in counts.values():
        for k, v in module_counts.items():
            out[k] = out.get(k, 0) + v
    return out


def cell(c):
    """passed (expected failures, failed, skipped) of one loop."""
    extra = []
    if c["xfail"]:
        extra.append("%d xfail" % c["xfail"])
    if failed(c):
        extra.append("**%d failed**" % failed(c))
    if c["skipped"]:
        extra.append("%d skip" % c["skipped"])
    return "%d" % c["passed"] + (" (%s)" % ", ".join(extra) if extra else "")


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def summary(records):
    head = ["Python", "suite"] + [LOOP_TITLES[m] for m in ("stdlib", "uvloop")] + \
        [LOOP_TITLES[m] for m in RINGLOOP] + ["ringloop failures"]
    rows = []
    for r in records:
        totals = {m: total(r["counts"][m]) for m in r["modes"]}
        base = totals.get("stdlib") or totals.get("asyncio")
        row = [r["python"], RUNNER_TITLES[r["runner"]],
               cell(base) if base else "not run",
               cell(totals["uvloop"]) if "uvloop" in totals else "-"]
        row += [cell(totals[m]) if m in totals else "not run" for m in RINGLOOP]
        row.append(str(sum(failed(totals[m]) for m in RINGLOOP if m in totals)))
        rows.append(row)
    return table(head, rows)


def detail(r):
    modes = r["modes"]
    modules = list(next(iter(r["counts"].values())))
    head = ["module"] + [LOOP_TITLES[m] for m in modes]
    if r["runner"] == "uvloop":
        head.append("required: passed / of (%s)" % ", ".join(m for m in modes if m in RINGLOOP))
    rows = []
    for m in modules + ["**total**"]:
        cs = [r["counts"][mode][m] if m != "**total**" else total(r["counts"][mode])
              for mode in modes]
        row = [m] + [cell(c) for c in cs]
        if r["runner"] == "uvloop":
            row.append(" / ".join("%d of %d" % (c["req. passed"], c["required"])
                                  for c, mode in zip(cs, modes) if mode in RINGLOOP))
        rows.append(row)
    return table(head, rows)


def expected(r):
    """Expected failures grouped by reason, with the loops they apply to."""
    by_reason = {}
    for mode in r["modes"]:
        for test, section, reason in r["expected_failures"].get(mode, []):
            # The runner's per-backend class names (RingloopIoUringEventLoopTests,
            # RingloopEpollEventLoopTests) are one test on two loops.
            test = test.replace("RingloopIoUring", "Ringloop*").replace("RingloopEpoll", "Ringloop*")
            by_reason.setdefault(reason, {}).setdefault(test, []).append(mode)
    if not by_reason:
        return "No expected failure."
    out = []
    for reason in sorted(by_reason):
        tests = by_reason[reason]
        out.append("- %s (%d):" % (reason.replace("*", "\\*"), len(tests)))
        for test in sorted(tests):
            out.append("  - `%s` (%s)" % (test, ", ".join(dict.fromkeys(tests[test]))))
    return "\n".join(out)


def failures(r):
    out = []
    for mode in r["modes"]:
        for test, kind in r["failures"].get(mode, []):
            out.append("- %s, %s: `%s`" % (LOOP_TITLES[mode], kind, test))
    return "\n".join(out)


def render(records, template):
    parts = []
    for r in records:
        parts.append("### Python %s: %s\n" % (r["python"], RUNNER_TITLES[r["runner"]]))
        extra = " (uvloop %s's tests)" % r["uvloop_tests"] if r.get("uvloop_tests") else ""
        parts.append("Kernel %s%s; the run took %d s.\n" % (r["kernel"], extra, r["elapsed_s"]))
        parts.append(detail(r) + "\n")
        fails = failures(r)
        if fails:
            parts.append("Failures (these fail the run; on asyncio's loop and uvloop "
                         "they are reported, not counted against ringloop):\n\n" + fails + "\n")
        parts.append("Expected failures, by reason:\n\n" + expected(r) + "\n")
    return (template.replace("{{SUMMARY}}", summary(records))
                    .replace("{{DETAILS}}", "\n".join(parts).rstrip() + "\n"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=RESULTS)
    p.add_argument("--output", default=OUTPUT)
    p.add_argument("--check", action="store_true",
                   help="do not write; exit 1 if the output differs from what it would be")
    args = p.parse_args(argv)
    records = load(args.results)
    if not records:
        sys.exit("no records in %s: run scripts/compat-doc.sh" % args.results)
    with open(TEMPLATE) as f:
        text = render(records, f.read())
    if args.check:
        with open(args.output) as f:
            if f.read() != text:
                print("%s is not up to date with %s" % (args.output, args.results))
                return 1
        return 0
    with open(args.output, "w") as f:
        f.write(text)
    print("wrote %s from %d records" % (args.output, len(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
