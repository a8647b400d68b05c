#!/usr/bin/env bash
# The test suite against a build of the compiled core with AddressSanitizer and
# LeakSanitizer (RINGLOOP_SANITIZE=address scripts/setup.sh: the venv .venv-asan).
#
#   scripts/sanitize-test.sh                     # the pytest suite (tests/)
#   scripts/sanitize-test.sh tests/test_tls.py -x  # these pytest arguments instead
#
# The ASan runtime is preloaded into every Python process of the run (an
# ASan-built extension cannot load otherwise), and Python allocates with malloc
# (PYTHONMALLOC=malloc) so that objects, not just pymalloc's arenas, are checked.
# Each process writes its reports to a log; scripts/sanitizer_reports.py then
# counts the ones attributable to ringloop: an error, or a leak, with a frame in
# ringloop's own extension modules. CPython's own allocations that it keeps until
# exit are reported by LeakSanitizer too, and are not ringloop's to fix.
# tests/test_malloc.py is left out: it checks glibc malloc's heap trimming, and
# under ASan malloc is ASan's.
# Exits non-zero if pytest fails or any report is attributable to ringloop.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(RINGLOOP_SANITIZE=address "$root/scripts/setup.sh")
logs=$(mktemp -d /tmp/ringloop-asan.XXXXXX)
cd "$root"
say() { printf '[sanitize] %s\n' "$*" >&2; }

[ $# -gt 0 ] || set -- tests
rc=0
say "pytest $* (ASan/LSan; reports in $logs)"
# The stacks come from ASan's frame-pointer unwinder: CPython's frames without a frame
# pointer are skipped, ringloop's (built with -fno-omit-frame-pointer) are kept.
LD_PRELOAD=$(gcc -print-file-name=libasan.so) PYTHONMALLOC=malloc \
ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan:allocator_may_return_null=1" \
    "$venv/bin/python" -m pytest --ignore=tests/test_malloc.py "$@" || rc=$?
"$venv/bin/python" "$root/scripts/sanitizer_reports.py" "$logs" || { [ "$rc" -ne 0 ] || rc=1; }
exit "$rc"
