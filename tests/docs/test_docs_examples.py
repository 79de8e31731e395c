"""Every example of the README and of every page under docs/ runs.

One test per page, the blocks taken in document order, each page in a fresh directory of its own
(files its examples write land there):

- ``python`` blocks run in one namespace shared by the page's blocks; a block of ``>>>`` lines is
  a doctest (its shown output is compared, whitespace-normalised);
- in ``bash``/``sh``/``shell`` blocks every command line, and in ``console`` blocks every ``$ ``
  line, must be an ``snn ...`` command (also as ``.venv/bin/snn``): it runs through the command
  line in this process and must exit 0;
- ``toml`` blocks must parse; ``json`` and untagged blocks are text, but an untagged block that
  holds an ``snn`` command fails: tag it ``bash`` (or ``console``) so that it runs, or mark it;
- a block preceded by ``<!-- no-run: REASON -->`` is not run (a GPU, minutes of training, a pip
  install, output shown for reading); the reason must be given.

Each page prints how many blocks ran and how many were marked (``pytest -s`` shows it).  docs/writing-a-plugin.md, whose blocks build a
plugin file by file, is run by tests/conformance/test_conformance_guide.py with those rules
(``# file:`` blocks, ``pip install DIR``) and is checked here only for unmarked untagged commands.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from click.testing import CliRunner

from snncore.plugins import get_manager

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages whose blocks another test runs, with the rules they need.
RUN_ELSEWHERE = {"writing-a-plugin.md": "tests/conformance/test_conformance_guide.py"}
BLOCK = re.compile(
    r"(?:^<!--\s*no-run:(?P<reason>[^>]*?)-->\s*\n)?^```(?P<kind>\w*)[^\n]*\n(?P<code>.*?)^```",
    re.S | re.M,
)
SHELL = ("bash", "sh", "shell")


class Block(NamedTuple):
    kind: str
    code: str
    line: int
    no_run: str | None  # the reason, for a marked block


def blocks(text: str) -> list[Block]:
    return [
        Block(
            m["kind"],
            m["code"],
            text.count("\n", 0, m.start("kind")) + 1,
            None if m["reason"] is None else m["reason"].strip(),
        )
        for m in BLOCK.finditer(text)
    ]


def commands(block: Block) -> list[str]:
    """The command lines of a shell or console block (comments and console output left out)."""
    lines = []
    for line in block.code.splitlines():
        if block.kind == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if shlex.split(line, comments=True):
            lines.append(line)
    return lines


def run_snn(line: str) -> None:
    from snncore.cli import cli

    args = shlex.split(line, comments=True)
    assert args[0] in ("snn", ".venv/bin/snn"), (
        f"only `snn` commands run here; mark the block <!-- no-run: reason -->: {line}"
    )
    get_manager().call_commands_hook(cli)
    threads, seed = torch.get_num_threads(), os.environ.get("PL_GLOBAL_SEED")
    try:
        result = CliRunner().invoke(cli, args[1:], catch_exceptions=False)
    finally:  # `snn train` sets both
        torch.set_num_threads(threads)
        if seed is None:
            os.environ.pop("PL_GLOBAL_SEED", None)
    assert result.exit_code == 0, f"{line}\nexit {result.exit_code}\n{result.output}"


def run_python(code: str, namespace: dict[str, Any], where: str) -> None:
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, namespace, where, where, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test, clear_globs=False)
        assert runner.failures == 0, f"{where}: {runner.failures} doctest example(s) failed"
        return
    exec(compile(code, where, "exec"), namespace)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_example_of_the_page_runs(page: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = blocks(page.read_text())
    for block in found:
        where = f"{page.name}:{block.line}"
        has_snn = any(
            re.match(r"\s*(\$ )?(\.venv/bin/)?snn ", ln) for ln in block.code.splitlines()
        )
        assert block.kind or not has_snn or block.no_run is not None, (
            f"{where}: an untagged block with `snn` commands: tag it bash or console"
        )
        assert block.no_run != "", f"{where}: a no-run marker needs its reason"
    if page.name in RUN_ELSEWHERE:
        pytest.skip(f"its blocks run in {RUN_ELSEWHERE[page.name]}")
    namespace: dict[str, Any] = {"__name__": f"docs.{page.stem}"}
    ran = {"python": 0, "shell": 0}
    marked = 0
    for block in found:
        where = f"{page.name}:{block.line}"
        if block.no_run is not None:
            marked += 1
        elif block.kind == "python":
            run_python(block.code, namespace, where)
            ran["python"] += 1
        elif block.kind in (*SHELL, "console"):
            for line in commands(block):
                run_snn(line)
            ran["shell"] += 1
        elif block.kind == "toml":
            pytest.importorskip("tomllib").loads(block.code)
    total = ran["python"] + ran["shell"]
    print(
        f"\n{page.relative_to(ROOT)}: {total} blocks executed "
        f"({ran['python']} python, {ran['shell']} shell), {marked} marked no-run"
    )
