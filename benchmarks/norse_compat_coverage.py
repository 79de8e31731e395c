"""How much of the reference library's public API (norse 1.1.0's ``norse.torch.__all__``, the
names of the families snncore claims) resolves in snncore, before and after the compatibility
namespace.

- before: the name exists, under the same name, in a snncore plugin package or core module a
  user could import after renaming (``snn_lif.LIFCell``): what porting by renaming offered;
- after: ``snncore.compat.norse.torch.NAME`` resolves (the import line is the only change);
- paths: every (reference module, name) pair of the claimed modules resolves at the reference's
  own path (``snncore.compat.norse.torch.module.lif.LIFCell``).

Needs the reference installed (test environment): ``.venv/bin/python
benchmarks/norse_compat_coverage.py``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from norse_compat_names import CLAIMED, SOURCES, claimed_modules, public_names


def _resolves(module: object, name: str) -> bool:
    try:
        getattr(module, name)
    except AttributeError:
        return False
    return True


def main() -> int:
    import norse.torch

    pairs = [
        (path, name)
        for path in claimed_modules()
        for name in public_names(importlib.import_module(f"norse.{path}"))
    ]
    claimed = sorted(set(norse.torch.__all__) & {name for _, name in pairs})
    ours = [importlib.import_module(s) for s in SOURCES if not s.startswith("snncore.compat")]
    before = [n for n in claimed if any(_resolves(m, n) for m in ours)]
    compat = importlib.import_module("snncore.compat.norse.torch")
    after = [n for n in claimed if _resolves(compat, n)]
    at_path = [
        (p, n)
        for p, n in pairs
        if _resolves(importlib.import_module(f"snncore.compat.norse.{p}"), n)
    ]
    print(f"claimed families: {len(CLAIMED)} module stems, {len(claimed)} public names")
    print(
        f"before (renamed imports):      {len(before)}/{len(claimed)} = {len(before) / len(claimed):.1%}"
    )
    print(
        f"after  (snncore.compat.norse): {len(after)}/{len(claimed)} = {len(after) / len(claimed):.1%}"
    )
    print(
        f"module paths: {len(at_path)}/{len(pairs)} (module, name) pairs resolve at the reference's path"
    )
    missing = sorted(set(claimed) - set(after))
    print(f"not mapped ({len(missing)}): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
