#!/usr/bin/env bash
# The slow half of the fault-injection suite: kill/resume sweep (>= 10 SIGKILLs, bitwise
# comparison with an uninterrupted run) and the determinism check. Takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python -m pytest -q -s -m slow tests/reliability "$@"
