#!/usr/bin/env bash
# Build the documentation site (mkdocs-material + mkdocstrings) into site/, in strict mode: a
# broken link, a missing page or an API reference that cannot be resolved fails the build.
# Installs the doc tools into .venv on first use (they are needed by nothing else).
# Usage: bash scripts/docs.sh [extra mkdocs build options]; then open site/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
if ! "$PY" -c "import material, mkdocstrings_handlers.python" 2>/dev/null; then
  echo "docs: installing mkdocs-material and mkdocstrings[python]"
  "$PY" -m pip install --disable-pip-version-check -q "mkdocs-material>=9.5,<10" \
    "mkdocstrings[python]>=0.29"
fi
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict --site-dir site "$@"
echo "docs: site/index.html"
