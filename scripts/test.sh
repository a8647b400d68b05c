#!/usr/bin/env bash
# Set up (idempotent, see setup.sh), then run the whole test suite:
#   1. ringloop's own tests (pytest, every backend-dependent test on both backends);
#   2. CPython's asyncio test suite against ringloop (tests/compat/run_cpython.py);
#   3. uvloop's test suite, from the sdist of the installed uvloop, on uvloop, asyncio
#      and ringloop (tests/compat/run_uvloop.py). Its sdist is downloaded once into
#      ~/.cache/ringloop; when it can be neither downloaded nor found there (no
#      network), this step is skipped with a loud notice, and only then.
#
#   scripts/test.sh                 # everything, on python3
#   PYTHON=3.15 scripts/test.sh     # everything, on another interpreter (3.11 to 3.15)
#   scripts/test.sh -k timers -x    # only pytest, with these arguments
#   RINGLOOP_COMPAT_RECORD=tests/compat/results scripts/test.sh   # also record (see below)
# Exits non-zero on any failure, including a pytest run that collected no test.
# A version this machine lacks at its latest patch release (3.13 to 3.15) runs inside a
# cached Debian sid chroot that has it (scripts/debian-python.sh), set up on first use.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${RINGLOOP_IN_DEBIAN_CHROOT:-}" ] && "$root/scripts/debian-python.sh" serves "${PYTHON:-}"; then
    "$root/scripts/debian-python.sh" ensure "$PYTHON" >/dev/null
    PYTHON=python$PYTHON exec "$root/scripts/debian-python.sh" run "$root/scripts/test.sh" "$@"
fi
venv=$("$root/scripts/setup.sh")
py=$venv/bin/python
cd "$root"

say() { printf '[test] %s\n' "$*" >&2; }
start=$SECONDS

say "$("$py" -c 'import sys, ringloop; print("Python", sys.version.split()[0], "- ringloop", ringloop.__version__, "- default backend:", ringloop.backend_info()["backend"])')"
say "pytest tests $*"
rc=0
"$py" -m pytest tests "$@" || rc=$?
# pytest: 5 means no test was collected, which is a failure here too.
[ "$rc" -eq 0 ] || { say "FAILED: pytest exited with $rc$([ "$rc" -eq 5 ] && echo ' (no tests collected)')"; exit "$rc"; }

# RINGLOOP_COMPAT_RECORD=DIR (inside the repository): the compat runners also run the
# stdlib baseline and record their results there, for docs/compatibility.md
# (tests/compat/render_doc.py).
record=()
[ -z "${RINGLOOP_COMPAT_RECORD:-}" ] || record=(--all-loops --record "$RINGLOOP_COMPAT_RECORD")
if [ $# -eq 0 ]; then
    if [ -f tests/compat/run_cpython.py ]; then
        say "CPython asyncio suite: tests/compat/run_cpython.py"
        "$py" tests/compat/run_cpython.py "${record[@]}" || { rc=$?; say "FAILED: CPython asyncio suite exited with $rc"; exit "$rc"; }
    else
        say "no tests/compat/run_cpython.py yet: CPython suite skipped"
    fi
    say "uvloop's test suite: tests/compat/run_uvloop.py"
    rc=0
    "$py" tests/compat/run_uvloop.py "${record[@]:1}" || rc=$?
    if [ "$rc" -eq 4 ]; then
        # Exit status 4: the sdist could not be obtained (offline and not cached).
        say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        say "!!! SKIPPED: uvloop's test suite: its sdist could not be downloaded  !!!"
        say "!!! and is not cached (see the error above). Nothing of it ran.      !!!"
        say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    elif [ "$rc" -ne 0 ]; then
        say "FAILED: uvloop's test suite exited with $rc"
        exit "$rc"
    fi
fi
say "all passed on $("$py" -c 'import sys; print("Python", sys.version.split()[0])') in $((SECONDS - start)) s"
