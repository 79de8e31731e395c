"""Run the reference library's own module and functional test files (norse 1.1.0, as installed
in the test environment) of the families snncore claims, twice: against the reference, and
against ``snncore.compat.norse`` with the import lines rewritten (``norse.torch`` ->
``snncore.compat.norse.torch``; nothing else changes).  Prints both pass counts.

The files are copied to a temporary folder; none of their text enters this project.
``.venv/bin/python benchmarks/norse_reference_tests.py [--superspike reference|snncore]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from norse_compat_names import CLAIMED

#: test file stems that name a family differently from its module
ALIASES = {"coba": "coba_lif"}


def _copy(tests: Path, target: Path, ours: bool) -> None:
    for kind in ("module", "functional"):
        (target / kind).mkdir(parents=True)
        (target / kind / "__init__.py").write_text("")
        for path in sorted((tests.parent / kind / "test").glob("test_*.py")):
            stem = path.stem.removeprefix("test_")
            if ALIASES.get(stem, stem) not in CLAIMED:
                continue
            text = path.read_text()
            # one file imports its sibling package relatively: make it absolute
            text = text.replace("from ..lif import", "from norse.torch.module.lif import")
            if ours:
                text = re.sub(r"\bnorse\.torch\b", "snncore.compat.norse.torch", text)
            (target / kind / path.name).write_text(text)


def _run(folder: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--continue-on-collection-errors", "module", "functional"],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else result.stderr.strip()[-300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--superspike", choices=["reference", "snncore"], default="reference")
    args = parser.parse_args()
    try:
        import norse.torch
    except ImportError:
        print("the reference (norse 1.1.0) is not installed: bash scripts/setup.sh --test")
        return 2
    tests = Path(norse.torch.__file__).parent / "module"
    env = {**os.environ, "SNNCORE_NORSE_SUPERSPIKE": args.superspike}
    with tempfile.TemporaryDirectory(prefix="norse-tests-") as tmp:
        for name, ours in (("reference", False), ("snncore.compat.norse", True)):
            folder = Path(tmp) / name
            _copy(tests, folder, ours)
            print(f"{name:22s} {_run(folder, env)}")
            shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
