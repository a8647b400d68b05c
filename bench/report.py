"""Summaries and markdown tables from the raw per-round results.

`results` is {bench: {impl: [round result dicts]}} as collected by run.py; a
round result has at least "ok" and, when ok, "ops_per_s", "ops",
"loop_cpu_ns" and "loop_stats".
"""
import statistics

import loops

DISTURBED = 0.9  # a CPU-bound run whose loop thread got less of the wall time shared its CPU


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
    """Loop-thread CPU ns per operation, median over rounds. Time the process
    spent preempted by other processes does not count, so this is steadier than
    the wall-clock rate on a busy machine."""
    values = [r["loop_cpu_ns"] / r["ops"] for r in good_rounds(rounds) if r["ops"]]
    return statistics.median(values) if values else None


def cpu_share(r):
    return r["loop_cpu_ns"] / r["wall_ns"] if r.get("wall_ns") else None


def spread(rounds):
    rates = [r["ops_per_s"] for r in good_rounds(rounds)]
    if len(rates) < 2:
        return None
    return (max(rates) - min(rates)) / statistics.median(rates)


def summarize(results, impls):
    """{bench: {"median": {impl: ops/s}, "spread": {...}, "loop_cpu_ns_per_op": {...},
    "ratios": {"<ringloop impl>/<baseline>": x}}}"""
    summary = {}
    for bench, by_impl in results.items():
        med = {impl: median_rate(by_impl.get(impl, [])) for impl in impls}
        cpu = {impl: median_cpu_per_op(by_impl.get(impl, [])) for impl in impls}
        ratios, cpu_ratios = {}, {}
        for impl in impls:
            if not loops.is_ringloop(impl):
                continue
            for base in loops.BASELINES:
                if med.get(impl) and med.get(base):
                    ratios[f"{impl}/{base}"] = med[impl] / med[base]
                if cpu.get(impl) and cpu.get(base):
                    # > 1 means ringloop spends less loop-thread CPU per operation
                    cpu_ratios[f"{impl}/{base}"] = cpu[base] / cpu[impl]
        summary[bench] = {
            "median_ops_per_s": med,
            "spread": {impl: spread(by_impl.get(impl, [])) for impl in impls},
            "loop_cpu_ns_per_op": cpu,
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
        }
    return summary


def si(x):
    if x is None:
        return "–"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= factor:
            return f"{x / factor:.2f}{suffix}"
    return f"{x:.0f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio_columns(impls):
    return [(impl, base) for impl in impls if loops.is_ringloop(impl)
            for base in loops.BASELINES if base in impls]


def short(impl):
    return impl.replace("ringloop-", "")


def main_table(summary, impls, units):
    cols = ratio_columns(impls)
    header = ["benchmark (ops/s)"] + impls + [f"{short(i)}/{b}" for i, b in cols]
    rows = []
    for bench, s in summary.items():
        row = [f"{bench} ({units[bench]}/s)"]
        row += [si(s["median_ops_per_s"][impl]) for impl in impls]
        for impl, base in cols:
            x = s["ratios"].get(f"{impl}/{base}")
            row.append(f"{x:.2f}x" if x is not None else "–")
        rows.append(row)
    return _table(header, rows)


def spread_table(summary, impls):
    header = ["benchmark: (max-min)/median"] + impls
    rows = []
    for bench, s in summary.items():
        rows.append([bench] + [f"{s['spread'][impl] * 100:.1f}%" if s["spread"][impl] is not None
                               else "–" for impl in impls])
    return _table(header, rows)


def cpu_table(summary, impls):
    cols = ratio_columns(impls)
    header = (["benchmark: loop-thread CPU ns/op"] + impls
              + [f"{short(i)}/{b} (CPU)" for i, b in cols])
    rows = []
    for bench, s in summary.items():
        row = [bench] + [f"{s['loop_cpu_ns_per_op'][impl]:.0f}"
                         if s["loop_cpu_ns_per_op"][impl] is not None else "–" for impl in impls]
        for impl, base in cols:
            x = s["cpu_ratios"].get(f"{impl}/{base}")
            row.append(f"{x:.2f}x" if x is not None else "–")
        rows.append(row)
    return _table(header, rows)


def disturbed(results, workloads, threshold=DISTURBED):
    """Measurements of CPU-bound workloads in which the loop thread got less than
    `threshold` of the wall time on its CPU: another process was running there."""
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


STAT_KEYS = ("iterations", "callbacks", "io_waits", "io_events", "threadsafe_wakeups",
             "timers_scheduled", "timers_cancelled", "timers_fired")


def counters_table(results, impls):
    """ringloop's loop.stats() deltas over the median round, per 1000 operations."""
    ring = [impl for impl in impls if loops.is_ringloop(impl)]
    rows = []
    for impl in ring:
        for bench, by_impl in results.items():
            r = median_round(by_impl.get(impl, []))
            if not r or not r.get("loop_stats") or not r["ops"]:
                continue
            st = r["loop_stats"]
            wait_share = ""
            if st.get("wait_ns") is not None and st.get("run_ns") is not None:
                total = st["wait_ns"] + st["run_ns"]
                wait_share = f"{st['wait_ns'] / total * 100:.0f}%" if total else ""
            rows.append([impl, bench]
                        + [f"{st[k] * 1000 / r['ops']:.0f}" if k in st else "?" for k in STAT_KEYS]
                        + [wait_share])
    if not rows:
        return None
    return _table(["impl", "benchmark"] + [f"{k}/1k ops" for k in STAT_KEYS] + ["waiting"], rows)


# --- net suite: rows are "<workload> <style>", ops are messages (or connections) ---

def _net_cell(value, rounds, fmt):
    if value is not None:
        return fmt(value)
    return "failed" if rounds else "–"


def _us(ns):
    us = ns / 1e3
    return f"{us:.2f}" if us < 10 else f"{us:.1f}"


def net_cpu_table(summary, results, impls):
    """Server CPU µs per message, with baseline/ringloop CPU ratios (> 1: ringloop better)."""
    cols = ratio_columns(impls)
    header = (["server CPU µs/msg"] + impls
              + [f"{short(i)}/{b} (CPU)" for i, b in cols])
    rows = []
    for row, s in summary.items():
        cells = [_net_cell(s["loop_cpu_ns_per_op"][impl], results[row][impl], _us)
                 for impl in impls]
        for impl, base in cols:
            x = s["cpu_ratios"].get(f"{impl}/{base}")
            cells.append(f"{x:.2f}x" if x is not None else "–")
        rows.append([row] + cells)
    return _table(header, rows)


LOADGEN_BOUND = 0.9  # a load generator this busy may have capped the rate


def _loadgen_busy(rounds):
    ok = good_rounds(rounds)
    return statistics.median(r["loadgen_busy"] for r in ok) if ok else None


def net_rate_table(summary, results, impls, units):
    """Messages (connections) per second, with ringloop/baseline ratios (> 1: ringloop
    faster). A rate marked * was measured with the load generator >= LOADGEN_BOUND
    busy, so the load generator may have capped it."""
    cols = ratio_columns(impls)
    header = ["throughput"] + impls + [f"{short(i)}/{b}" for i, b in cols]
    rows = []
    for row, s in summary.items():
        cells = [_net_cell(s["median_ops_per_s"][impl], results[row][impl], si)
                 + ("*" if (_loadgen_busy(results[row][impl]) or 0) >= LOADGEN_BOUND else "")
                 for impl in impls]
        for impl, base in cols:
            x = s["ratios"].get(f"{impl}/{base}")
            cells.append(f"{x:.2f}x" if x is not None else "–")
        rows.append([f"{row} ({units[row]}/s)"] + cells)
    return _table(header, rows)


def net_floor_table(summary, rows, impls, floor="C floor"):
    """Each implementation's server CPU per message divided by the C floor's."""
    out = []
    for row in rows:
        cpu = summary[row]["loop_cpu_ns_per_op"]
        out.append([row] + [f"{cpu[impl] / cpu[floor]:.2f}x" if cpu.get(impl) and cpu.get(floor)
                            else "–" for impl in impls])
    return _table(["CPU / C floor's CPU"] + impls, out)


def net_busy_table(results, impls):
    """Median share of the window the load generator (and the server) spent on CPU."""
    out = []
    for row, by_impl in results.items():
        cells = []
        for impl in impls:
            ok = good_rounds(by_impl.get(impl, []))
            if not ok:
                cells.append("–")
                continue
            lg = _loadgen_busy(ok)
            srv = statistics.median(r["server_busy"] for r in ok)
            cells.append(f"{lg:.0%} ({srv:.0%})")
        out.append([row] + cells)
    return _table(["load generator (server) busy"] + impls, out)


def net_spread_table(results, impls):
    """(max - min) / median of the server CPU per message over the rounds."""
    out = []
    for row, by_impl in results.items():
        cells = []
        for impl in impls:
            v = [r["loop_cpu_ns"] / r["ops"] for r in good_rounds(by_impl.get(impl, []))]
            cells.append(f"{(max(v) - min(v)) / statistics.median(v):.0%}" if len(v) > 1 else "–")
        out.append([row] + cells)
    return _table(["CPU/msg: (max-min)/median"] + impls, out)
