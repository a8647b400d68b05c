#!/usr/bin/env bash
# Regenerate docs/compatibility.md: run CPython's test.test_asyncio (stdlib loop and both
# ringloop backends) and uvloop's test suite (uvloop, asyncio, both backends) on every
# Python, record each run in tests/compat/results/, then render the document from those
# records (tests/compat/render_doc.py).
#
#   scripts/compat-doc.sh                # 3.11 3.12 3.13 3.14 3.15
#   scripts/compat-doc.sh 3.14 3.15      # re-run these only (the others' records stay)
#
# Each Python is set up as scripts/test.sh does (3.13 to 3.15 in scripts/debian-python.sh's
# chroot). A run with ringloop failures still records and renders; the exit status says so.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.12 3.13 3.14 3.15)
results=tests/compat/results
rc=0

for v in "${versions[@]}"; do
    venv=$(PYTHON=$v ./scripts/setup.sh) || { echo "[compat-doc] set-up of Python $v failed" >&2; exit 1; }
    run=()
    if ./scripts/debian-python.sh serves "$v"; then run=(./scripts/debian-python.sh run); fi
    echo "[compat-doc] Python $v: CPython's suite" >&2
    "${run[@]}" nice -n 10 "$venv/bin/python" tests/compat/run_cpython.py --all-loops --record "$results" || rc=1
    echo "[compat-doc] Python $v: uvloop's suite" >&2
    "${run[@]}" nice -n 10 "$venv/bin/python" tests/compat/run_uvloop.py --record "$results" || rc=1
done
python3 tests/compat/render_doc.py || rc=1
exit "$rc"
