"""Copy the worked example, examples/snn-qif, into snn-scaffold's template.

``snn new-plugin NAME`` (plugins/snn-scaffold) writes the files of its package data
``snn_scaffold/template/`` with the example's names replaced; that folder must equal the example
byte for byte (tests/plugins/snn_scaffold/test_snn_scaffold.py checks).  Run this after editing
the example:

    .venv/bin/python scripts/sync_scaffold_template.py           # copy
    .venv/bin/python scripts/sync_scaffold_template.py --check   # exit 1 if they differ

Caches and build output (``__pycache__``, ``.pytest_cache``, ``build``, ...) are not copied.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "snn-qif"
TEMPLATE = ROOT / "plugins" / "snn-scaffold" / "snn_scaffold" / "template"

sys.path.insert(0, str(ROOT / "plugins" / "snn-scaffold"))  # works without snn-scaffold installed
from snn_scaffold.scaffold import TEMPLATE_SUFFIX, template_files  # noqa: E402


def differences() -> list[str]:
    """The relative paths where the template and the example differ."""
    example = template_files(EXAMPLE)
    template = template_files(TEMPLATE) if TEMPLATE.is_dir() else {}
    return sorted(p for p in example.keys() | template.keys() if example.get(p) != template.get(p))


def sync() -> list[str]:
    """Replace the template by a copy of the example's files; returns the paths that changed."""
    changed = differences()
    if TEMPLATE.exists():
        shutil.rmtree(TEMPLATE)
    for relative, data in template_files(EXAMPLE).items():
        path = TEMPLATE / (relative + TEMPLATE_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 on differences")
    args = parser.parse_args(argv)
    if args.check:
        changed = differences()
        for path in changed:
            print(f"differs: {path}")
        return 1 if changed else 0
    changed = sync()
    where = TEMPLATE.relative_to(ROOT)
    print(f"{where}: " + (f"updated {', '.join(changed)}" if changed else "already up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
