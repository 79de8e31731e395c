#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, plus the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check snncore snncore_pytest.py plugins tests examples benchmarks
.venv/bin/python -m pytest "$@"
