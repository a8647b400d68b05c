#!/usr/bin/env bash
# Set up (idempotent, see setup.sh), then run the demo program on ringloop:
# a small asyncio program, unchanged, started with `python -m ringloop run`.
#   scripts/demo.sh            # PYTHON=3.13 scripts/demo.sh for another interpreter
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$("$root/scripts/setup.sh")
cd "$root"
echo "[demo] $venv/bin/python -m ringloop run examples/demo.py" >&2
exec "$venv/bin/python" -m ringloop run examples/demo.py
