"""``snn new-plugin``: names, refusals (exit code 2), the files written, and the generated model,
imported from the new directory and registered at run time, passing the conformance suite and
its own hand-worked test.  (tests/e2e/test_e2e_new_plugin.py pip-installs one.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import snncore
from snncore.cli import cli
from snncore.scaffold import Names, ScaffoldError, new_plugin, render
from snncore.testing import Options, check_model


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_names_derived_from_the_model_name():
    names = Names.from_name("my_lif2")
    assert (names.name, names.dist, names.package) == ("my_lif2", "snn-my-lif2", "snn_my_lif2")
    assert (names.Class, names.CONST) == ("MyLif2", "MY_LIF2")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Leaky", "invalid plugin name 'Leaky'"),
        ("my-lif", "invalid plugin name 'my-lif'"),
        ("2lif", "invalid plugin name '2lif'"),
        ("my__lif", "invalid plugin name 'my__lif'"),
        ("x" * 41, "at most 40 characters"),
        ("snn-leaky", "without the prefix: `snn new-plugin leaky` creates snn-leaky/"),
        ("lif", "a model named 'lif' is already registered by snn-lif"),
    ],
)
def test_bad_names_exit_2_with_a_clear_message(tmp_path, name, message):
    result = invoke("new-plugin", name, "--dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_left_alone(tmp_path):
    (tmp_path / "snn-leaky").mkdir()
    (tmp_path / "snn-leaky" / "mine.txt").write_text("keep")
    result = invoke("new-plugin", "leaky", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'snn-leaky'} already exists" in result.output
    assert [p.name for p in (tmp_path / "snn-leaky").iterdir()] == ["mine.txt"]
    with pytest.raises(ScaffoldError, match="is not a directory"):
        new_plugin("leaky", tmp_path / "snn-leaky" / "mine.txt")


def test_writes_the_distribution(tmp_path):
    result = invoke("new-plugin", "leaky", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    target = tmp_path / "snn-leaky"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "snn_leaky/__init__.py",
        "snn_leaky/model.py",
        "snn_leaky/plugin.py",
        "tests/conftest.py",
        "tests/test_conformance.py",
        "tests/test_leaky.py",
    ]
    assert f"created {target}/" in result.output and f"pip install -e {target}" in result.output
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "snn-leaky"
    assert project["project"]["entry-points"]["snncore"] == {"snn-leaky": "snn_leaky.plugin"}
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["snn_leaky"]
    assert 'conformance_suite("snn-leaky")' in (target / "tests/test_conformance.py").read_text()
    for path in target.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")  # valid Python


def test_every_placeholder_is_filled():
    for path, text in render(Names.from_name("abc")).items():
        assert "$" not in path and "$" not in text, path


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
    import snn_scaffold_probe.plugin

    snncore.register_plugin(snn_scaffold_probe.plugin, name="snn-scaffold-probe")
    try:
        yield target
    finally:
        for module in [m for m in sys.modules if m.startswith("snn_scaffold_probe")]:
            del sys.modules[module]
        monkeypatch.undo()  # before fresh_manager rediscovers plugins


def test_generated_model_passes_the_conformance_suite(generated):
    from snn_scaffold_probe import SCAFFOLD_PROBE_MODEL, ScaffoldProbe

    assert snncore.get_model("scaffold_probe") is SCAFFOLD_PROBE_MODEL
    assert isinstance(snncore.create("scaffold_probe"), ScaffoldProbe)
    assert check_model(SCAFFOLD_PROBE_MODEL, options=Options(compile="off")) == []


def test_generated_hand_worked_tests_pass(generated):
    namespace: dict[str, object] = {}
    exec(compile((generated / "tests/test_scaffold_probe.py").read_text(), "t", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test()  # type: ignore[operator]


@pytest.mark.parametrize("name", ["leaky", "a_rather_long_model_name_of_30"])
def test_generated_files_are_lint_clean(tmp_path, name):
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed")
    target = new_plugin(name, tmp_path, check_installed=False)
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([ruff, *command], cwd=target, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
