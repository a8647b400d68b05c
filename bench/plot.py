"""The headline plot of a run's record: each loop's speed relative to uvloop, per row.

Speed is the median rate for `core` and 1 / the server's median CPU time per
operation for the server suites (the figure their tables lead with), so a bar
longer than 1 is faster (or cheaper) than uvloop. Needs matplotlib (the `bench`
extra).
"""
import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

import report  # noqa: E402

COLORS = {
    "asyncio": "#9e9e9e",
    "rloop": "#8d6e63",
    "ringloop-io_uring": "#1565c0",
    "ringloop-epoll": "#42a5f5",
}
FLOOR_COLOR = "#2e7d32"
REFERENCES = ("uvloop", "asyncio")  # the first one the record has is 1.0
TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30)


def speeds(data, reference):
    """{column: {row: speed relative to `reference`}} for the plotted columns (those
    with a figure in some row)."""
    floors = report.floor_columns(data)
    cols = [c for c in data["columns"] if c not in floors and c != reference] + floors[:1]
    out = {}
    for c in cols:
        out[c] = {}
        for row, s in data["summary"].items():
            mine = report.cost(s, c, data["metric"])
            ref = report.cost(s, reference, data["metric"])
            out[c][row] = ref / mine if mine and ref else None
    return {c: values for c, values in out.items() if any(values.values())}


def plot(data, path):
    """Write the PNG for one record to `path`; return `path`."""
    reference = next((r for r in REFERENCES if r in data["columns"]), None)
    if reference is None:
        raise SystemExit(f"{data['suite']}: nothing to plot against (no uvloop or asyncio)")
    by_col = speeds(data, reference)
    rows = list(data["summary"])
    n = max(1, len(by_col))
    bar = 0.8 / n
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.18 * n * len(rows) + 0.25 * len(rows)))
    for i, (col, values) in enumerate(by_col.items()):
        ys = [k + (i - (n - 1) / 2) * bar for k in range(len(rows))]
        xs = [values[r] or 0 for r in rows]
        label = col.replace("ringloop-", "ringloop ")
        ax.barh(ys, xs, height=bar * 0.9, label=label,
                color=COLORS.get(col, FLOOR_COLOR))
        for y, x in zip(ys, xs):
            if x:
                ax.text(x * 1.02, y, f"{x:.2f}", va="center", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.invert_yaxis()
    what = "ops/s" if data["metric"] == "rate" else "1 / server CPU per op"
    ax.set_xlabel(f"speed relative to {reference} ({what}); log scale, > 1 is better")
    src = data.get("source", {})
    ax.set_title(f"ringloop bench {data['suite']}{' --quick' if data.get('quick') else ''}: "
                 f"{data['machine']['python_impl']} {data['machine']['python']}, "
                 f"commit {src.get('commit', '?')}, {src.get('date', '?')}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    lo = min([x for v in by_col.values() for x in v.values() if x] + [1.0]) / 1.3
    hi = max([x for v in by_col.values() for x in v.values() if x] + [1.0]) * 1.5
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator([t for t in TICKS if lo <= t <= hi]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(axis="x", linewidth=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
