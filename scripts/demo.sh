#!/usr/bin/env bash
# Set up (idempotent) and run the main job: train the LSNN memory task (about 5 minutes on a
# 2-core CPU), printing the final metrics; everything is written to runs/memory/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/snn train memory --overwrite "$@"
