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
# fast_unwind_on_malloc=0: CPython is built without frame pointers, so only the
# slow unwinder reaches from malloc back to the ringloop frame that called it.
LD_PRELOAD=$(gcc -print-file-name=libasan.so) PYTHONMALLOC=malloc \
ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan:fast_unwind_on_malloc=0:allocator_may_return_null=1" \
    "$venv/bin/python" -m pytest --ignore=tests/test_malloc.py "$@" || rc=$?
"$venv/bin/python" "$root/scripts/sanitizer_reports.py" "$logs" || { [ "$rc" -ne 0 ] || rc=1; }
exit "$rc"
