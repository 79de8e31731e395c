#!/usr/bin/env bash
# Set up (idempotent) and run the main job: list the installed models and simulate a LIF layer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/snn list-models
.venv/bin/snn simulate lif --steps 100 --batch 2 --neurons 8 --current 1.5
