"""``snn new-plugin`` (the snn-scaffold plugin): names, refusals (exit code 2), the files written
(the worked example examples/snn-qif with its names replaced, at most 80 non-blank lines of Python
outside the tests), the packaged template equal to the example byte for byte, and the generated
model, imported from the new directory and registered at run time, passing the conformance suite
and its own hand-worked tests.  (tests/e2e/test_e2e_new_plugin.py pip-installs one.)"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from snn_scaffold.scaffold import (
    Names,
    ScaffoldError,
    new_plugin,
    render,
    substitute,
    template_files,
)

import snncore
from snncore.cli import cli
from snncore.plugins import get_manager
from snncore.testing import Options, check_model

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "snn-qif"
SYNC_SCRIPT = "scripts/sync_scaffold_template.py"


@pytest.fixture
def snn(fresh_manager: Any) -> Iterator[Callable[..., Result]]:
    """Invoke ``snn ARGS`` in this process, with the plugins' commands added as ``main`` does;
    the command set is restored afterwards."""
    commands = dict(cli.commands)
    get_manager().call_commands_hook(cli)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    yield invoke
    cli.commands.clear()
    cli.commands.update(commands)


def python_lines(target: Path) -> dict[str, int]:
    """Non-blank lines of each Python file of the plugin outside its tests."""
    return {
        str(path.relative_to(target)): sum(
            1 for line in path.read_text().splitlines() if line.strip()
        )
        for path in sorted(target.rglob("*.py"))
        if "tests" not in path.relative_to(target).parts
    }


def test_new_plugin_is_a_plugin_command_not_the_cores(snn: Callable[..., Result]) -> None:
    assert importlib.util.find_spec("snncore.scaffold") is None
    assert "new-plugin" in snn("--help").stdout
    help_text = snn("new-plugin", "--help")
    assert help_text.exit_code == 0, help_text.output
    assert "--dir" in help_text.stdout
    plugins = snn("plugins", "--json")
    assert plugins.exit_code == 0 and "snn-scaffold" in plugins.stdout


def test_the_template_is_the_worked_example_byte_for_byte() -> None:
    example, template = template_files(EXAMPLE), template_files()
    assert sorted(example) == ["README.md", "pyproject.toml", "snn_qif.py", "tests/test_snn_qif.py"]
    differ = sorted(
        p for p in example.keys() | template.keys() if example.get(p) != template.get(p)
    )
    assert differ == [], (
        f"snn-scaffold's template differs from examples/snn-qif in {differ}: "
        f"run `.venv/bin/python {SYNC_SCRIPT}`"
    )


def test_the_sync_script_finds_no_difference() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / SYNC_SCRIPT), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_names_derived_from_the_model_name():
    names = Names.from_name("my_lif2")
    assert (names.name, names.dist, names.package) == ("my_lif2", "snn-my-lif2", "snn_my_lif2")
    assert (names.Class, names.CONST) == ("MyLif2", "MY_LIF2")


def test_the_example_names_are_replaced():
    text = 'QIF_MODEL QIFParameters "QIF" `QIF` (QIF) Qif qif_step snn_qif snn-qif examples/snn-qif'
    assert substitute(text, Names.from_name("my_lif2")) == (
        'MY_LIF2_MODEL MyLif2Parameters "MyLif2" `MyLif2` (MY_LIF2) MyLif2 my_lif2_step '
        "snn_my_lif2 snn-my-lif2 snn-my-lif2"
    )
    for path, text in render(Names.from_name("abc")).items():
        assert "qif" not in path.lower() and "qif" not in text.lower(), path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Leaky", "invalid plugin name 'Leaky'"),
        ("my-lif", "invalid plugin name 'my-lif'"),
        ("2lif", "invalid plugin name '2lif'"),
        ("my__lif", "invalid plugin name 'my__lif'"),
        ("class", "it is a Python keyword"),
        ("x" * 41, "at most 40 characters"),
        ("snn-leaky", "without the prefix: `snn new-plugin leaky` creates snn-leaky/"),
        ("lif", "a model named 'lif' is already registered by snn-lif"),
        ("scaffold", "a plugin named 'snn-scaffold' is already installed"),
    ],
)
def test_bad_names_exit_2_with_a_clear_message(snn, tmp_path, name, message):
    result = snn("new-plugin", name, "--dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_left_alone(snn, tmp_path):
    (tmp_path / "snn-leaky").mkdir()
    (tmp_path / "snn-leaky" / "mine.txt").write_text("keep")
    result = snn("new-plugin", "leaky", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'snn-leaky'} already exists" in result.output
    assert [p.name for p in (tmp_path / "snn-leaky").iterdir()] == ["mine.txt"]
    with pytest.raises(ScaffoldError, match="is not a directory"):
        new_plugin("leaky", tmp_path / "snn-leaky" / "mine.txt")


def test_writes_the_distribution(snn, tmp_path):
    result = snn("new-plugin", "leaky", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    target = tmp_path / "snn-leaky"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "snn_leaky.py", "tests/test_snn_leaky.py"]
    assert f"created {target}/" in result.output and f"pip install -e {target}" in result.output
    lines = python_lines(target)
    print(f"non-blank lines of Python outside the tests: {lines}")
    assert list(lines) == ["snn_leaky.py"] and lines["snn_leaky.py"] <= 80
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "snn-leaky"
    assert project["project"]["entry-points"]["snncore"] == {"snn-leaky": "snn_leaky"}
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["include"] == ["snn_leaky.py"]
    assert 'conformance_suite("snn-leaky")' in (target / "tests/test_snn_leaky.py").read_text()
    for path in target.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")  # valid Python


@pytest.fixture
def generated(tmp_path, monkeypatch, fresh_manager):
    """A generated plugin imported from its directory and registered at run time (with other
    backends than the eager one disabled: they have their own conformance runs)."""
    from snncore.plugins import reset_manager

    target = new_plugin("scaffold_probe", tmp_path)
    backends = fresh_manager.registry("backend").entries()
    others = sorted({e.provider.plugin for e in backends if e.name != "torch"})
    monkeypatch.setenv("SNNCORE_DISABLE_PLUGINS", ",".join(others))
    reset_manager()
    monkeypatch.syspath_prepend(str(target))
    import snn_scaffold_probe

    snncore.register_plugin(snn_scaffold_probe, name="snn-scaffold-probe")
    try:
        yield target
    finally:
        for module in [m for m in sys.modules if m.startswith("snn_scaffold_probe")]:
            del sys.modules[module]
        monkeypatch.undo()  # before fresh_manager rediscovers plugins


def test_generated_model_passes_the_conformance_suite(generated):
    from snn_scaffold_probe import SCAFFOLD_PROBE_MODEL

    assert snncore.get_model("scaffold_probe") is SCAFFOLD_PROBE_MODEL
    assert type(snncore.create("scaffold_probe")).__name__ == "ScaffoldProbe"
    assert [cls.__name__ for cls in snncore.module_classes(SCAFFOLD_PROBE_MODEL)] == [
        "ScaffoldProbeCell",
        "ScaffoldProbeRecurrentCell",
        "ScaffoldProbe",
        "ScaffoldProbeRecurrent",
    ]
    assert check_model(SCAFFOLD_PROBE_MODEL, options=Options(compile="off")) == []


def test_generated_hand_worked_tests_pass(generated):
    namespace: dict[str, object] = {}
    source = (generated / "tests/test_snn_scaffold_probe.py").read_text()
    exec(compile(source, "test_snn_scaffold_probe.py", "exec"), namespace)
    assert callable(namespace["test_conformance"])  # run by pytest, through snncore's plugin
    tests = {
        name: f
        for name, f in namespace.items()
        if name.startswith("test_") and callable(f) and not inspect.signature(f).parameters
    }
    assert len(tests) == 5, sorted(tests)
    for test in tests.values():
        test()  # type: ignore[operator]


@pytest.mark.parametrize("name", ["leaky", "a_rather_long_model_name_of_30"])
def test_generated_files_are_lint_clean(tmp_path, name):
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed")
    target = new_plugin(name, tmp_path, check_installed=False)
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run([ruff, *command], cwd=target, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
