"""Summaries and markdown from a run's record (the dict bench/run.py writes with
--json).

`results` is {row: {column: [round result dicts]}}; a round result has at least
"ok" and, when ok, "ops", "ops_per_s", "wall_ns" and "loop_cpu_ns" (the loop
thread's CPU time for `core`, the server process's for the server suites).

Every ratio is oriented so that > 1 means ringloop is better: a rate ratio is
ringloop / baseline, a CPU ratio baseline / ringloop. A record's "metric" says
which one its headline uses: "rate" (core: operations per second, wall clock) or
"cpu" (server suites: the server's CPU time per operation, which the load
generator does not bound).
"""
import json
import re
import statistics

import loops

SCHEMA = 1
DISTURBED = 0.9  # a run that got less of its CPU than this shared it with another process
LOADGEN_BOUND = 0.9  # a load generator this busy may have capped the rate
PAGE_BEGIN = "<!-- bench report: begin -->"
PAGE_END = "<!-- bench report: end -->"
SUITE_TITLES = {
    "core": "core: loop primitives",
    "net": "net: TCP echo servers",
    "tls": "tls: TLS echo server",
    "udp": "udp: UDP echo server",
}


# --- medians and ratios ---

def good_rounds(rounds):
    return [r for r in rounds if r.get("ok")]


def median_rate(rounds):
    rates = [r["ops_per_s"] for r in good_rounds(rounds)]
    return statistics.median(rates) if rates else None


def median_round(rounds):
    """The round whose rate is the (lower) median, for per-op detail."""
    ok = sorted(good_rounds(rounds), key=lambda r: r["ops_per_s"])
    return ok[(len(ok) - 1) // 2] if ok else None


def median_cpu_per_op(rounds):
    """CPU ns per operation, median over rounds. Time the process spent preempted
    by other processes does not count, so this is steadier than the wall-clock
    rate on a busy machine."""
    values = [r["loop_cpu_ns"] / r["ops"] for r in good_rounds(rounds) if r["ops"]]
    return statistics.median(values) if values else None


def cpu_share(r):
    return r["loop_cpu_ns"] / r["wall_ns"] if r.get("wall_ns") else None


def spread(values):
    """(max - min) / median, or None for fewer than two values."""
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def summarize(results, impls):
    """{row: {"median_ops_per_s": {impl: x}, "spread": {...}, "loop_cpu_ns_per_op": {...},
    "ratios": {"<ringloop impl>/<baseline>": x}, "cpu_ratios": {...}}}"""
    summary = {}
    for row, by_impl in results.items():
        med = {impl: median_rate(by_impl.get(impl, [])) for impl in impls}
        cpu = {impl: median_cpu_per_op(by_impl.get(impl, [])) for impl in impls}
        ratios, cpu_ratios = {}, {}
        for impl in filter(loops.is_ringloop, impls):
            for base in references(impl, impls):
                if med.get(impl) and med.get(base):
                    ratios[f"{impl}/{base}"] = med[impl] / med[base]
                if cpu.get(impl) and cpu.get(base):
                    cpu_ratios[f"{impl}/{base}"] = cpu[base] / cpu[impl]
        summary[row] = {
            "median_ops_per_s": med,
            "spread": {impl: spread([r["ops_per_s"] for r in good_rounds(by_impl.get(impl, []))])
                       for impl in impls},
            "loop_cpu_ns_per_op": cpu,
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
        }
    return summary


def load(f):
    data = json.load(f)
    if data.get("schema") != SCHEMA:
        raise SystemExit(f"{getattr(f, 'name', 'input')}: not a bench record of schema {SCHEMA}")
    return data


def disturbed(results, workloads, threshold=DISTURBED):
    """Measurements of CPU-bound core workloads in which the loop thread got less
    than `threshold` of the wall time on its CPU: another process was running there."""
    total, bad = 0, []
    for w in workloads:
        if not w.cpu_bound:
            continue
        for impl, rounds in results[w.name].items():
            for r in good_rounds(rounds):
                total += 1
                share = cpu_share(r)
                if share is not None and share < threshold:
                    bad.append((w.name, impl, r.get("round"), share))
    return total, bad


# --- cells ---

def si(x):
    if x is None:
        return "–"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= factor:
            return f"{x / factor:.2f}{suffix}"
    return f"{x:.0f}"


def us(ns):
    x = ns / 1e3
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def times(x):
    return f"{x:.2f}x" if x is not None else "–"


def cell(value, rounds, fmt):
    """A figure, or "failed" when rounds ran and none succeeded, or "–"."""
    if value is not None:
        return fmt(value)
    return "failed" if rounds else "–"


def short(impl):
    return impl.replace("ringloop-", "")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ringloops(impls):
    return [impl for impl in impls if loops.is_ringloop(impl)]


def references(impl, impls):
    """What ringloop column `impl` is compared with: the baselines measured, and
    its base: column (the other build) when there is one."""
    refs = [base for base in loops.BASELINES if base in impls]
    if loops.BASE + impl in impls:
        refs.append(loops.BASE + impl)
    return refs


def compared(impls):
    """The ringloop columns that have something to be compared with."""
    return [impl for impl in ringloops(impls) if references(impl, impls)]


def ratio_header(impl, impls, suffix=""):
    refs = " · ".join(short(r) for r in references(impl, impls))
    return f"{short(impl)} vs {refs}{suffix}"


def ratio_cell(ratios, impl, impls):
    return " · ".join(times(ratios.get(f"{impl}/{ref}")) for ref in references(impl, impls))


def floor_columns(data):
    return [c for c in data["columns"] if c in data.get("floors", {})]


def cost(summary_row, impl, metric):
    """What one operation costs `impl`: CPU ns (server suites), 1 / rate (core)."""
    if metric == "cpu":
        return summary_row["loop_cpu_ns_per_op"].get(impl)
    rate = summary_row["median_ops_per_s"].get(impl)
    return 1 / rate if rate else None


def floor_ratio(summary_row, impl, floor, metric):
    mine, base = cost(summary_row, impl, metric), cost(summary_row, floor, metric)
    return mine / base if mine and base else None


# --- the page's short form ---

def context(data, brief=False):
    """How a record was made: the command, rounds, commit and machine (brief: the
    command, rounds and time only, for a page that has a machine table)."""
    m, p, src = data["machine"], data["params"], data.get("source", {})
    rounds = f"{p['rounds']} round{'s' if p['rounds'] != 1 else ''}"
    timing = (f"{rounds} × ({p['warmup']:g} s warm-up + {p['duration']:g} s)"
              if "warmup" in p else f"{rounds} × ~{p['duration']:g} s")
    head = (f"`{data['command']}`: {timing}, medians"
            f"{' (--quick)' if data.get('quick') else ''}; took {took(data['elapsed_s'])}")
    if brief:
        return head + "."
    commit = src.get("commit") or "?"
    if src.get("dirty"):
        commit += " with uncommitted changes"
    impls = "; ".join(f"{impl} {info.get('version', '')}".rstrip()
                      + (f" ({info['backend']})" if info.get("backend") else "")
                      for impl, info in data["implementations"].items()
                      if not loops.is_ringloop(impl))
    return (f"{head}; commit {commit}, {src.get('date', '?')}; {m.get('cpu_model', '?')}, "
            f"{m['nproc']} CPUs, Linux {m['kernel']}, {m['python_impl']} {m['python']}; "
            f"{impls}.")


def took(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def headline_table(data):
    """Each loop's figure per row, ringloop's ratios to asyncio, uvloop and rloop
    (> 1: ringloop better), and ringloop's cost as a multiple of the C floor's."""
    cols, summary, results = data["columns"], data["summary"], data["results"]
    metric = data["metric"]
    floors = floor_columns(data)
    impls = [c for c in cols if c not in floors]
    shown = impls + floors[:1]
    ring = ringloops(impls)
    what = "ops/s" if metric == "rate" else "CPU µs/op"
    header = ([f"{data['suite']} ({what})"] + shown
              + [ratio_header(impl, impls) for impl in compared(impls)])
    if floors and ring:
        header.append(f"{' · '.join(map(short, ring))} cost / C floor's")
    rows = []
    for row, s in summary.items():
        unit = data["rows"][row]["unit"]
        if metric == "rate":
            cells = [cell(s["median_ops_per_s"][c], results[row].get(c), si) for c in shown]
        else:
            cells = [cell(s["loop_cpu_ns_per_op"][c], results[row].get(c), us) for c in shown]
        ratios = s["ratios"] if metric == "rate" else s["cpu_ratios"]
        cells += [ratio_cell(ratios, impl, impls) for impl in compared(impls)]
        if floors and ring:
            fr = [floor_ratio(s, impl, floors[0], metric) for impl in ring]
            cells.append(" · ".join(times(x) for x in fr) if any(fr) else "–")
        rows.append([f"{row} ({unit})"] + cells)
    return _table(header, rows)


def headline(data, image=None):
    """The short form of one record: title, how it was made, the table, the plot
    (`image`: its path as the page links it), notes."""
    metric = ("operations per second (wall clock); ratios ringloop / baseline"
              if data["metric"] == "rate" else
              "the server's CPU time per operation, µs; ratios baseline CPU / ringloop CPU")
    out = [f"### {SUITE_TITLES.get(data['suite'], data['suite'])}", "",
           context(data, brief=True), "",
           f"Figures: {metric}, so **> 1 means ringloop is better**. The last column is "
           f"ringloop's cost per operation as a multiple of the C floor's (1.00x = the floor).",
           "", headline_table(data)]
    if data["notes"]:
        out += [""] + [f"- {n}" for n in data["notes"]]
    if image:
        out += ["", f"![{data['suite']}: each loop's speed relative to uvloop]({image})"]
    return "\n".join(out)


def machine_table(datas):
    """Where and what the records measured, one column per record."""
    def impl_versions(d):
        return ", ".join(f"{impl} {info.get('version', '')}".rstrip()
                         for impl, info in d["implementations"].items()
                         if not loops.is_ringloop(impl))

    def commit(d):
        src = d.get("source", {})
        return (src.get("commit") or "?") + (" (with uncommitted changes)" if src.get("dirty")
                                             else "")

    rows = [("CPU", lambda d: d["machine"].get("cpu_model", "?")),
            ("CPUs", lambda d: str(d["machine"]["nproc"])),
            ("kernel", lambda d: "Linux " + d["machine"]["kernel"]),
            ("Python", lambda d: f"{d['machine']['python_impl']} {d['machine']['python']}"),
            ("compared with", impl_versions),
            ("ringloop commit", commit),
            ("measured", lambda d: d.get("source", {}).get("date", "?"))]
    return _table([""] + [d["suite"] for d in datas],
                  [[name] + [get(d) for d in datas] for name, get in rows])


def page_block(datas, images=None):
    """Machine table, then each record's short form; images: {suite: plot path}."""
    images = images or {}
    return "\n\n".join(["### The machine and the commit", machine_table(datas)]
                        + [headline(d, images.get(d["suite"])) for d in datas])


def update_page(path, datas, sources, images=None):
    """Replace what lies between PAGE_BEGIN and PAGE_END in `path`."""
    with open(path) as f:
        text = f.read()
    pattern = re.compile(re.escape(PAGE_BEGIN) + ".*?" + re.escape(PAGE_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no {PAGE_BEGIN} ... {PAGE_END} block")
    note = ("<!-- made by `python -m ringloop bench report " + " ".join(sources)
            + f" --page {path}`; do not edit by hand -->")
    block = "\n\n".join([PAGE_BEGIN, note, page_block(datas, images), PAGE_END])
    with open(path, "w") as f:
        f.write(pattern.sub(lambda _: block, text, count=1))


# --- the full report, printed after a run ---

def render(data):
    body = render_core(data) if data["metric"] == "rate" else render_server(data)
    out = [f"## ringloop bench: {data['suite']}", "", context(data), ""] + body
    out += ["", "Rows:"] + [f"- `{row}`: {d['description']}"
                            + (f" (server: {d['style_description']})" if "style" in d else "")
                            for row, d in data["rows"].items()]
    for column, program in data.get("floors", {}).items():
        out.append(f"- {column}: {program.rstrip()}")
    if data["notes"]:
        out += ["", "Notes:"] + [f"- {n}" for n in data["notes"]]
    return "\n".join(out)


def render_core(data):
    cols, summary, results = data["columns"], data["summary"], data["results"]
    out = ["Throughput (wall clock), operations per second; ratios ringloop / baseline, "
           "**> 1 means ringloop is faster**:", "",
           _table(["workload (ops/s)"] + cols + [ratio_header(i, cols) for i in compared(cols)],
                  [[f"{row} ({data['rows'][row]['unit']}/s)"]
                   + [cell(s["median_ops_per_s"][c], results[row].get(c), si) for c in cols]
                   + [ratio_cell(s["ratios"], i, cols) for i in compared(cols)]
                   for row, s in summary.items()]),
           "", "Loop-thread CPU time per operation, ns; ratios baseline / ringloop "
               "(in call_soon_threadsafe the loop mostly waits for the producer: read its "
               "wall-clock row):", "",
           _table(["workload (CPU ns/op)"] + cols
                  + [ratio_header(i, cols, " (CPU)") for i in compared(cols)],
                  [[row] + [cell(s["loop_cpu_ns_per_op"][c], results[row].get(c),
                                 lambda x: f"{x:.0f}") for c in cols]
                   + [ratio_cell(s["cpu_ratios"], i, cols) for i in compared(cols)]
                   for row, s in summary.items()]),
           "", "Spread of the wall-clock rates over the rounds, (max - min) / median:", "",
           _table(["workload"] + cols,
                  [[row] + [cell(s["spread"][c], None, lambda x: f"{x:.0%}") for c in cols]
                   for row, s in summary.items()])]
    counters = counters_table(results, cols)
    if counters:
        out += ["", "ringloop's `loop.stats()` over the median round, per 1000 operations:", "",
                counters]
    return out


STAT_KEYS = ("iterations", "callbacks", "io_waits", "io_events", "threadsafe_wakeups",
             "timers_scheduled", "timers_cancelled", "timers_fired")


def counters_table(results, impls):
    rows = []
    for impl in ringloops(impls):
        for row, by_impl in results.items():
            r = median_round(by_impl.get(impl, []))
            if not r or not r.get("loop_stats") or not r["ops"]:
                continue
            st = r["loop_stats"]
            waiting = ""
            if st.get("wait_ns") is not None and st.get("run_ns") is not None:
                total = st["wait_ns"] + st["run_ns"]
                waiting = f"{st['wait_ns'] / total:.0%}" if total else ""
            rows.append([impl, row]
                        + [f"{st[k] * 1000 / r['ops']:.0f}" if k in st else "?" for k in STAT_KEYS]
                        + [waiting])
    if not rows:
        return None
    return _table(["impl", "workload"] + [f"{k}/1k ops" for k in STAT_KEYS] + ["waiting"], rows)


def _median_of(rounds, key):
    ok = good_rounds(rounds)
    return statistics.median(r[key] for r in ok) if ok else None


def render_server(data):
    cols, summary, results = data["columns"], data["summary"], data["results"]
    floors = floor_columns(data)
    impls = [c for c in cols if c not in floors]

    def marked_rate(row, c):
        busy = _median_of(results[row].get(c, []), "loadgen_busy") or 0
        return (cell(summary[row]["median_ops_per_s"][c], results[row].get(c), si)
                + ("*" if busy >= LOADGEN_BOUND else ""))

    def busy(rounds):
        ok = good_rounds(rounds)
        if not ok:
            return "–"
        return f"{_median_of(ok, 'loadgen_busy'):.0%} ({_median_of(ok, 'server_busy'):.0%})"

    def cpu_spread(rounds):
        return spread([r["loop_cpu_ns"] / r["ops"] for r in good_rounds(rounds)])

    out = ["Server CPU time (user + system, whole process) per operation, µs; ratios "
           "baseline / ringloop, **> 1 means ringloop is better**:", "",
           _table(["server CPU µs/op"] + cols
                  + [ratio_header(i, impls, " (CPU)") for i in compared(impls)],
                  [[row] + [cell(s["loop_cpu_ns_per_op"][c], results[row].get(c), us)
                            for c in cols]
                   + [ratio_cell(s["cpu_ratios"], i, impls) for i in compared(impls)]
                   for row, s in summary.items()]),
           "", f"Throughput, operations per second; ratios ringloop / baseline. \\* marks a "
               f"rate measured with the load generator >= {LOADGEN_BOUND:.0%} busy, which it "
               f"may have capped:", "",
           _table(["throughput"] + cols + [ratio_header(i, impls) for i in compared(impls)],
                  [[f"{row} ({data['rows'][row]['unit']}/s)"]
                   + [marked_rate(row, c) for c in cols]
                   + [ratio_cell(s["ratios"], i, impls) for i in compared(impls)]
                   for row, s in summary.items()])]
    if floors:
        floor_rows = [row for row, d in data["rows"].items() if d.get("floor")]
        out += ["", f"Server CPU per operation as a multiple of the {floors[0]}'s:", "",
                _table(["CPU / " + floors[0]] + [c for c in cols if c != floors[0]],
                       [[row] + [times(floor_ratio(summary[row], c, floors[0], "cpu"))
                                 for c in cols if c != floors[0]] for row in floor_rows])]
    out += ["", "Load generator busy and, in brackets, server busy (CPU time / the part of "
                "the window no other process held its CPU). Below 100% the load generator "
                "waited for the server:", "",
            _table(["load generator (server) busy"] + cols,
                   [[row] + [busy(by_impl.get(c, [])) for c in cols]
                    for row, by_impl in results.items()]),
            "", "Spread of the server CPU per operation over the rounds, (max - min) / median:",
            "",
            _table(["CPU/op spread"] + cols,
                   [[row] + [cell(cpu_spread(by_impl.get(c, [])), None, lambda x: f"{x:.0%}")
                             for c in cols] for row, by_impl in results.items()])]
    return out
