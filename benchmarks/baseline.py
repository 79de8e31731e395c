"""A git revision of this repository beside the working tree, for benchmarks that compare the two
in one run: ``with baseline_checkout("0406338") as paths:`` gives the ``PYTHONPATH`` entries
(the checkout's root and each of its plugins) that make a subprocess import that revision's
core and plugins instead of the installed editable ones.  The checkout is a detached
``git worktree`` in a temporary folder, removed afterwards.

Subprocesses must not start in the repository's root with ``python -c``: the working directory
comes first on ``sys.path`` there and would shadow the baseline's ``snncore``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def baseline_checkout(revision: str) -> Iterator[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "baseline"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(worktree), revision], check=True)
        try:
            plugins = sorted(p for p in (worktree / "plugins").iterdir() if p.is_dir())
            yield [str(worktree), *map(str, plugins)]
        finally:
            subprocess.run([*git, "remove", "--force", str(worktree)], check=False)


def environment(pythonpath: list[str]) -> dict[str, str]:
    """This process's environment with ``pythonpath`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return env
