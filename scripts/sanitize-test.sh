#!/usr/bin/env bash
# The test suite against a build of the compiled core with AddressSanitizer and
# LeakSanitizer (RINGLOOP_SANITIZE=address scripts/setup.sh: the venv .venv-asan).
#
#   scripts/sanitize-test.sh                 # pytest tests
#   scripts/sanitize-test.sh -k tls -x       # pytest tests with these arguments
#
# The ASan runtime is preloaded into every Python process of the run (an
# ASan-built extension cannot load otherwise), and Python allocates with malloc
# (PYTHONMALLOC=malloc) so that objects, not just pymalloc's arenas, are checked.
# Each process writes its reports to a log; scripts/sanitizer_reports.py then
# counts the ones attributable to ringloop: an error, or a leak, with a frame in
# ringloop's own extension modules. CPython's own allocations that it keeps until
# exit are reported by LeakSanitizer too, and are not ringloop's to fix.
# Exits non-zero if pytest fails or any report is attributable to ringloop.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(RINGLOOP_SANITIZE=address "$root/scripts/setup.sh")
logs=$(mktemp -d /tmp/ringloop-asan.XXXXXX)
cd "$root"
say() { printf '[sanitize] %s\n' "$*" >&2; }

rc=0
say "pytest tests $* (ASan/LSan; reports in $logs)"
LD_PRELOAD=$(gcc -print-file-name=libasan.so) PYTHONMALLOC=malloc \
ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan:allocator_may_return_null=1:detect_stack_use_after_return=0" \
    "$venv/bin/python" -m pytest tests "$@" || rc=$?
"$venv/bin/python" "$root/scripts/sanitizer_reports.py" "$logs" || { [ "$rc" -ne 0 ] || rc=1; }
exit "$rc"
