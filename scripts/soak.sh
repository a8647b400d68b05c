#!/usr/bin/env bash
# The soak on both backends (python -m ringloop soak; what it does: docs/soak.md).
#
#   scripts/soak.sh --short                  # what CI runs: 60 s per backend
#   nice -n 10 scripts/soak.sh               # 10 minutes per backend
#   scripts/soak.sh --minutes 2 --backend epoll --json results.json
#
# Sets up first (setup.sh). Exits non-zero on any message lost, duplicated or
# corrupted, an fd or memory leak, a failed fault check, an unexpected exception in
# the loop's handler, or a hang: the soak's own watchdog fails a run in which no
# message is verified for 60 s, and --short is also capped at 15 minutes in all.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$("$root/scripts/setup.sh")
cd "$root"
cap=()
for arg in "$@"; do
    [ "$arg" = --short ] && cap=(timeout --kill-after=30 900)
done
exec "${cap[@]}" "$venv/bin/python" -m ringloop soak "$@"
