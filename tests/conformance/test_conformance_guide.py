"""Every code block of the plugin-author guide, docs/writing-a-plugin.md, runs.

The blocks are taken in document order:

- a ``python`` or ``toml`` block whose first line is ``# file: PATH`` is appended (without that
  line) to ``PATH`` in a fresh directory (on ``sys.path``, with its ``tests/``), so the guide's
  blocks build a plugin; put together they must be the worked example, examples/snn-qif, byte for
  byte;
- every other ``python`` block runs, in one namespace shared by all of them;
- every ``toml`` block must parse; the guide's ``pyproject.toml`` must name the plugin's entry point;
- in ``bash`` blocks, each ``snn ...`` line runs through the command line (in-process, so it sees
  the plugins the guide registered) and must exit 0; ``pip install ... DIR`` of a directory the
  guide made imports that distribution's package and registers its entry-point module, as an
  install would; ``pytest``, ``python -m build`` and ``twine`` lines are not run here — the
  install-and-test path is tests/e2e/test_e2e_new_plugin.py and test_e2e_qif_example.py.

Plugins other than the eager backend's and snn-scaffold's (``snn new-plugin``) are disabled (the
guide's own ``snn-qif``, if installed, would shadow the one built here; other backends would slow
the conformance runs down).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import snncore
from snncore.plugins import get_manager, reset_manager

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
EXAMPLE = ROOT / "examples" / "snn-qif"
#: Plugins the guide's blocks use besides the ones they build: the eager backend, ``snn new-plugin``.
KEPT = ("snn-backend-torch", "snn-scaffold")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def test_the_guide_has_code_of_every_kind():
    kinds = [k for k, _ in blocks(GUIDE.read_text())]
    assert kinds.count("python") >= 15 and "toml" in kinds and "bash" in kinds
    assert all(k in ("python", "toml", "bash", "") for k in kinds), kinds


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory for the guide's files, on sys.path; only the built-in plugins, the eager
    backend and snn-scaffold discovered; everything undone afterwards."""
    records = reset_manager().records.values()
    others = sorted(r.name for r in records if not r.builtin and r.name not in KEPT)
    monkeypatch.setenv("SNNCORE_DISABLE_PLUGINS", ",".join(others))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "tests"))
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_manager()
    before = set(sys.modules)
    from snncore.cli import cli

    commands = dict(cli.commands)
    try:
        yield tmp_path
    finally:
        cli.commands.clear()
        cli.commands.update(commands)
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("snn_qif", "snn_leaky", "test_snn_qif"):
                del sys.modules[name]
        monkeypatch.undo()
        reset_manager()


def _pip_install(args: list[str], cwd: Path) -> None:
    """``pip install [...] DIR``: register DIR's entry-point module, as installing it would."""
    tomllib = pytest.importorskip("tomllib")
    target = cwd / [a for a in args if not a.startswith("-")][-1]
    project = tomllib.loads((target / "pyproject.toml").read_text())
    ((name, module),) = project["project"]["entry-points"]["snncore"].items()
    if name in get_manager().records:
        return  # the guide registered it at run time already
    sys.path.insert(0, str(target))
    plugin = __import__(module, fromlist=["_"])
    snncore.register_plugin(plugin, name=name)


def _shell(block: str, cwd: Path) -> list[str]:
    from snncore.cli import cli

    ran = []
    for line in block.splitlines():
        args = shlex.split(line, comments=True)
        if not args:
            continue
        if args[0] == "snn":
            get_manager().call_commands_hook(cli)
            result = CliRunner().invoke(cli, args[1:], catch_exceptions=False)
            assert result.exit_code == 0, f"{line}\n{result.output}"
            ran.append(line)
        elif args[:2] == ["pip", "install"]:
            _pip_install(args[2:], cwd)
            ran.append(line)
        else:
            assert args[0] in ("pytest", "python"), f"unexpected shell line in the guide: {line}"
    return ran


def test_every_block_of_the_guide_runs(workdir: Path):
    namespace: dict[str, Any] = {"__name__": "guide"}
    files: set[str] = set()
    ran: list[str] = []
    for number, (kind, code) in enumerate(blocks(GUIDE.read_text()), start=1):
        where = f"block {number} ({kind or 'text'})"
        first = code.splitlines()[0] if code.strip() else ""
        if kind in ("python", "toml") and first.startswith("# file: "):
            path = workdir / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as out:
                out.write(("\n\n" if path.name in files else "") + code.split("\n", 1)[1])
            files.add(path.name)
        if kind == "python" and not first.startswith("# file: "):
            exec(compile(code, f"{GUIDE.name}:{where}", "exec"), namespace)
            ran.append(where)
        elif kind == "toml":
            tomllib = pytest.importorskip("tomllib")
            tomllib.loads(code)
        elif kind == "bash":
            ran += _shell(code, workdir)
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((workdir / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["snncore"] == {"snn-qif": "snn_qif"}
    for relative in ("pyproject.toml", "snn_qif.py", "tests/test_snn_qif.py"):
        assert (workdir / relative).read_text() == (EXAMPLE / relative).read_text(), (
            f"the guide's `# file: {relative}` blocks, put together, differ from "
            f"examples/snn-qif/{relative}: change both"
        )
    # what the guide built and registered is really there
    assert snncore.get_model("qif").name == "qif"
    assert snncore.get_model("leaky").name == "leaky"  # from `snn new-plugin` + `pip install`
    assert {"snn info qif", "snn qif-rheobase        # 0.125"} <= set(ran)
    assert len(ran) > 20
