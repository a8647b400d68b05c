"""The benchmark harness (bench/run.py) keeps working: each suite runs one tiny
case end to end (real servers, real load generators, one short round) and writes
a record whose shape the reports rely on; the reports, the plots and the
published page are made from records. No timing is asserted: speed lives in the
benchmarks, not in tests."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "bench", "run.py")
PUBLISHED = os.path.join("bench", "published")
PAGE = "BENCHMARKS.md"
SUITES = ("core", "net", "tls", "udp")
# One tiny case per suite: a workload with a C floor, ringloop on epoll (every
# kernel has it) and asyncio, so every kind of column and ratio appears.
TINY = {
    "core": ["--bench", "add_reader_pipe", "--duration", "0.1"],
    "net": ["--bench", "echo_1k", "--style", "protocol", "--floors", "epoll",
            "--duration", "0.2", "--warmup", "0.2"],
    # the TLS handshakes happen in the warm-up
    "tls": ["--bench", "echo_1k", "--duration", "0.2", "--warmup", "0.5"],
    "udp": ["--bench", "pingpong_64", "--duration", "0.2", "--warmup", "0.2"],
}
RUN_TIMEOUT = 100  # seconds for one suite's tiny run, however loaded the machine
TOP_KEYS = {"schema", "suite", "command", "quick", "machine", "source", "params", "columns",
            "implementations", "rows", "floors", "metric", "results", "summary", "notes",
            "elapsed_s"}

pytestmark = [pytest.mark.ringloop_only("the harness measures ringloop")]


def harness(*args, timeout=RUN_TIMEOUT):
    proc = subprocess.run([sys.executable, RUN, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [["--help"], ["report", "--help"]])
def test_help(args):
    assert "python -m ringloop bench" in harness(*args).stdout


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")


@pytest.mark.timeout(RUN_TIMEOUT + 20)
@pytest.mark.parametrize("suite", SUITES)
def test_suite_runs_and_records(suite, records):
    out = records / f"{suite}.json"
    # --retries: on this shared host any server, the C floor's too, can stall for a
    # moment; the harness measures again then (bench/harness.py, with_retries)
    proc = harness(suite, *TINY[suite], "--rounds", "1", "--retries", "2",
                   "--loops", "ringloop-epoll,asyncio", "--json", str(out))
    data = json.loads(out.read_text())

    assert TOP_KEYS <= set(data), TOP_KEYS - set(data)
    assert data["suite"] == suite and data["metric"] == ("rate" if suite == "core" else "cpu")
    assert data["command"].startswith(f"python -m ringloop bench {suite} ")
    assert {"nproc", "kernel", "python"} <= set(data["machine"])
    assert {"commit", "dirty", "date"} <= set(data["source"])
    assert data["params"]["rounds"] == 1
    floor = "C floor"
    assert data["columns"] == ["asyncio", "ringloop-epoll", floor]
    assert list(data["floors"]) == [floor]
    assert set(data["implementations"]) == {"asyncio", "ringloop-epoll"}
    assert data["implementations"]["ringloop-epoll"]["backend"] == "epoll"

    (row,) = data["rows"]
    assert row.startswith(TINY[suite][1])
    for column in data["columns"]:
        (r,) = data["results"][row][column]
        assert r["round"] == 0
        assert r["ok"], f"{column}: {r.get('error')}"
        assert r["ops"] > 0 and r["wall_ns"] > 0 and r["loop_cpu_ns"] > 0
        assert r["ops_per_s"] == pytest.approx(r["ops"] / (r["wall_ns"] / 1e9))
    s = data["summary"][row]
    assert set(s["median_ops_per_s"]) == set(data["columns"])
    assert set(s["ratios"]) == set(s["cpu_ratios"]) == {"ringloop-epoll/asyncio"}
    assert s["cpu_ratios"]["ringloop-epoll/asyncio"] == pytest.approx(
        s["loop_cpu_ns_per_op"]["asyncio"] / s["loop_cpu_ns_per_op"]["ringloop-epoll"])

    # the run printed the full report of what it recorded
    assert f"## ringloop bench: {suite}" in proc.stdout
    assert f"| {row} " in proc.stdout


@pytest.mark.timeout(60)
def test_base_columns_compare_two_builds(tmp_path):
    """--base measures each ringloop column once more with another interpreter (here
    the same one) in the same rounds, and reports after / before."""
    out = tmp_path / "core.json"
    harness("core", "--bench", "call_soon", "--duration", "0.05", "--rounds", "1",
            "--retries", "0", "--loops", "ringloop-epoll", "--base", sys.executable,
            "--json", str(out))
    data = json.loads(out.read_text())
    assert data["columns"] == ["ringloop-epoll", "base:ringloop-epoll"]
    (r,) = data["results"]["call_soon"]["base:ringloop-epoll"]
    assert r["ok"] and r["backend"] == "epoll"
    assert set(data["summary"]["call_soon"]["ratios"]) == {"ringloop-epoll/base:ringloop-epoll"}


@pytest.mark.timeout(60)
def test_report_markdown_and_plot(records, tmp_path):
    made = sorted(str(p) for p in records.glob("*.json"))
    if len(made) < len(SUITES):  # run alone: use the published records instead
        made = [os.path.join(ROOT, PUBLISHED, f"{s}.json") for s in SUITES]
    proc = harness("report", *made, "--markdown", "--plot", str(tmp_path))
    for suite in SUITES:
        assert f"### {suite}: " in proc.stdout
        png = tmp_path / f"{suite}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5000
    # suites come in a fixed order whatever the order of the files
    heads = [proc.stdout.index(f"### {s}: ") for s in SUITES]
    assert heads == sorted(heads)


@pytest.mark.timeout(60)
def test_page_update_replaces_only_the_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# title\n\nbefore\n\n<!-- bench report: begin -->\nstale\n"
                    "<!-- bench report: end -->\n\nafter\n")
    sources = [os.path.join(PUBLISHED, "udp.json")]
    harness("report", *sources, "--page", str(page))
    text = page.read_text()
    assert text.startswith("# title\n\nbefore\n\n<!-- bench report: begin -->")
    assert text.endswith("<!-- bench report: end -->\n\nafter\n")
    assert "stale" not in text and "### udp: " in text
    harness("report", *sources, "--page", str(page))
    assert page.read_text() == text


@pytest.mark.timeout(60)
def test_published_page_matches_the_published_records():
    """BENCHMARKS.md's tables are the report of bench/published/*.json, unedited
    (run from the repository's root, the plots' paths are the page's)."""
    sources = [os.path.join(PUBLISHED, f"{s}.json") for s in SUITES]
    block = harness("report", *sources, "--markdown").stdout.strip()
    with open(os.path.join(ROOT, PAGE)) as f:
        page = f.read()
    assert block in page
    assert f"bench report {' '.join(sources)} --page {PAGE}`" in page
