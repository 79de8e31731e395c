"""The plugin manager: run-time plugin objects, failure isolation, built-ins, the disable switches,
and the same switches seen through the installed ``snn`` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import snncore
from snncore.plugins import PluginRecord, reset_manager

BUILTINS = {"snncore.surrogates", "snncore.encoders"}


def _record(name: str) -> PluginRecord:
    found = [r for r in snncore.list_plugins() if r.name == name]
    assert len(found) == 1, [r.name for r in snncore.list_plugins()]
    return found[0]


def _model_names() -> set[str]:
    return {m.name for m in snncore.list_models()}


# -- run-time plugin objects ----------------------------------------------------------------------


def test_register_and_unregister_a_runtime_plugin(fresh_manager: Any, toy_plugin: Any) -> None:
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("toy")
    record = snncore.register_plugin(toy_plugin, name="snn-toy")
    assert record.status == "loaded" and record.version == "runtime"
    assert "toy" in _model_names()
    assert snncore.get_model("toy").family == "toyfamily"
    assert snncore.get_model("snn-toy:toy") is snncore.get_model("toy")
    assert "lif" in _model_names()  # the installed plugins keep working

    snncore.unregister_plugin("snn-toy")
    assert "toy" not in _model_names()
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("toy")
    assert "snn-toy" not in {r.name for r in snncore.list_plugins()}


def test_plugin_as_namespace_of_functions(builtins_only: Any, toy_model: Any) -> None:
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(toy_model, name="toy2", aliases=("toy_alias",))

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-ns")
    assert snncore.get_model("toy2") is toy_model
    assert snncore.get_model("toy_alias") is toy_model
    assert [m.name for m in snncore.list_models()] == ["toy"]  # listed once, under toy2


def test_plugin_name_defaults_to_its_class_name(builtins_only: Any, toy_plugin: Any) -> None:
    record = snncore.register_plugin(toy_plugin)
    assert record.name == "ToyPlugin"
    assert _record("ToyPlugin").status == "loaded"


def test_registering_the_same_plugin_name_twice_is_an_error(
    fresh_manager: Any, toy_plugin: Any
) -> None:
    snncore.register_plugin(toy_plugin, name="snn-toy")
    with pytest.raises(ValueError, match="already registered"):
        snncore.register_plugin(SimpleNamespace(), name="snn-toy")
    with pytest.raises(ValueError, match="already registered"):
        snncore.register_plugin(SimpleNamespace(), name="snn-lif")
    assert snncore.get_model("toy").name == "toy"


def test_unregister_unknown_plugin_is_a_lookup_error(fresh_manager: Any) -> None:
    with pytest.raises(LookupError, match="snn-nothing"):
        snncore.unregister_plugin("snn-nothing")


def test_plugin_with_a_hookimpl_the_spec_does_not_allow_is_refused(builtins_only: Any) -> None:
    @snncore.hookimpl
    def register_models(register: Callable[..., None], unexpected: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="unexpected"):
        snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-badsig")
    assert "snn-badsig" not in {r.name for r in snncore.list_plugins()}
    assert snncore.list_models() == []


# -- failure isolation ----------------------------------------------------------------------------


def test_a_raising_hook_is_recorded_and_others_keep_working(
    fresh_manager: Any, toy_plugin: Any, toy_model: Any
) -> None:
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(toy_model, name="half_registered")
        raise RuntimeError("the model zoo is on fire")

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-broken")
    snncore.register_plugin(toy_plugin, name="snn-toy")

    record = _record("snn-broken")
    assert record.status == "failed"
    assert "the model zoo is on fire" in (record.error or "")
    assert "register_models" in (record.error or "")
    assert "RuntimeError" in (record.traceback or "")
    # what it registered before raising is discarded; everybody else resolves
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("half_registered")
    assert snncore.get_model("toy") is toy_model
    assert snncore.get_model("lif").name == "lif"
    assert _record("snn-toy").status == "loaded"
    assert _record("snn-lif").status == "loaded"


def test_plugins_reports_hook_failures_before_any_lookup(builtins_only: Any) -> None:
    """``snncore.list_plugins()`` is the Python view of ``snn plugins``: a plugin whose hook raises is
    "failed" there even if nothing has been looked up yet."""

    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        raise ValueError("no surrogates today")

    snncore.register_plugin(
        SimpleNamespace(register_surrogates=register_surrogates), name="snn-sad"
    )
    record = _record("snn-sad")
    assert record.status == "failed"
    assert "no surrogates today" in (record.error or "")


def test_a_hook_registering_a_nameless_object_fails_only_that_plugin(builtins_only: Any) -> None:
    @snncore.hookimpl
    def register_encoders(register: Callable[..., None]) -> None:
        register(object())

    snncore.register_plugin(
        SimpleNamespace(register_encoders=register_encoders), name="snn-nameless"
    )
    assert snncore.get_encoder("poisson") is not None
    record = _record("snn-nameless")
    assert record.status == "failed" and "needs a name" in (record.error or "")


def test_a_plugin_reusing_a_name_makes_a_conflict_not_an_overwrite(
    fresh_manager: Any, toy_model: Any
) -> None:
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(toy_model, name="lif")

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-impostor")
    with pytest.raises(snncore.NameConflictError) as info:
        snncore.get_model("lif")
    message = str(info.value)
    assert "snn-lif" in message and "snn-impostor" in message
    assert "'snn-lif:lif'" in message and "'snn-impostor:lif'" in message
    assert snncore.get_model("snn-lif:lif").family == "lif"
    assert snncore.get_model("snn-impostor:lif") is toy_model


def test_a_plugin_registering_a_name_twice_adds_none_of_its_entries(
    builtins_only: Any, toy_model: Any
) -> None:
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(toy_model, name="first")
        register(toy_model, name="twice")
        register(toy_model, name="twice")

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-twice")
    assert snncore.list_models() == []
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("first")
    record = _record("snn-twice")
    assert record.status == "failed"
    assert "'twice' twice" in (record.error or "")


def test_unknown_model_suggests_close_names(fresh_manager: Any) -> None:
    with pytest.raises(LookupError) as info:
        snncore.get_model("lfi")
    assert isinstance(info.value, snncore.UnknownNameError)
    assert "lif" in info.value.suggestions
    assert "'lif'" in str(info.value)


# -- built-ins and the switches -------------------------------------------------------------------


def test_builtin_plugins_are_listed_as_builtin_and_loaded(fresh_manager: Any) -> None:
    records = {r.name: r for r in snncore.list_plugins()}
    for name in BUILTINS:
        assert records[name].builtin is True
        assert records[name].status == "loaded"
        assert records[name].distribution == "snncore"
        assert records[name].version == snncore.__version__
    assert records["snn-lif"].builtin is False
    assert records["snn-lif"].status == "loaded"
    assert records["snn-lif"].distribution == "snn-lif"


def test_builtins_only_has_surrogates_and_encoders_but_no_lif(builtins_only: Any) -> None:
    assert {r.name for r in snncore.list_plugins()} == BUILTINS
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("lif")
    assert snncore.list_models() == []
    assert snncore.list_backends() == []
    assert snncore.get_surrogate("super").name == "super"
    assert snncore.get_encoder("poisson").__name__ == "PoissonEncoder"


def test_disable_plugins_marks_the_plugin_disabled(manager_with_env: Any) -> None:
    manager_with_env(SNNCORE_DISABLE_PLUGINS="snn-lif")
    assert _record("snn-lif").status == "disabled"
    assert _record("snn-backend-torch").status == "loaded"
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("lif")
    assert snncore.get_backend("torch").name == "torch"


def test_disable_plugins_accepts_a_list_with_spaces(manager_with_env: Any) -> None:
    manager_with_env(SNNCORE_DISABLE_PLUGINS=" snn-backend-torch , snn-lif ")
    assert _record("snn-lif").status == "disabled"
    assert _record("snn-backend-torch").status == "disabled"
    assert "torch" not in {b.name for b in snncore.list_backends()}


def test_disable_autoload_leaves_only_builtins(manager_with_env: Any) -> None:
    manager_with_env(SNNCORE_DISABLE_PLUGIN_AUTOLOAD="1")
    assert {r.name for r in snncore.list_plugins()} == BUILTINS
    with pytest.raises(snncore.UnknownNameError):
        snncore.get_model("lif")


def test_autoload_switch_set_to_zero_still_autoloads(manager_with_env: Any) -> None:
    manager_with_env(SNNCORE_DISABLE_PLUGIN_AUTOLOAD="0")
    assert "lif" in _model_names()


def test_runtime_plugins_still_register_without_autoload(
    manager_with_env: Any, toy_plugin: Any
) -> None:
    manager_with_env(SNNCORE_DISABLE_PLUGIN_AUTOLOAD="1")
    snncore.register_plugin(toy_plugin, name="snn-toy")
    assert _model_names() == {"toy"}


# -- the same, through the installed command line -------------------------------------------------


def _snn(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "snn"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "snncore.cli"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SNNCORE_")}
    environment.update(env)
    return subprocess.run(
        [*command, *args], env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def _first_column(table: str) -> list[str]:
    return [line.split()[0] for line in table.splitlines()[1:] if line.strip()]


def test_cli_list_models_honours_disable_plugins() -> None:
    enabled = _snn("list-models")
    assert enabled.returncode == 0, enabled.stderr
    assert "lif" in _first_column(enabled.stdout)

    disabled = _snn("list-models", SNNCORE_DISABLE_PLUGINS="snn-lif")
    assert disabled.returncode == 0, disabled.stderr
    assert not {"lif", "li", "lif_mc"} & set(_first_column(disabled.stdout))
    assert "Traceback" not in disabled.stderr


def test_cli_without_autoload_lists_no_models_and_only_builtin_plugins() -> None:
    models = _snn("list-models", "--json", SNNCORE_DISABLE_PLUGIN_AUTOLOAD="1")
    assert models.returncode == 0, models.stderr
    assert json.loads(models.stdout)["models"] == []

    listed = _snn("plugins", "--json", SNNCORE_DISABLE_PLUGIN_AUTOLOAD="1")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["plugins"]
    assert {row["name"] for row in rows} == BUILTINS
    assert all(row["builtin"] and row["status"] == "loaded" for row in rows)


# -- failures are isolated and visible: SystemExit at import, warnings, unknown names ------------

EXITS_AT_IMPORT = """
import argparse

argparse.ArgumentParser(prog="snn-exiting").parse_args(["--not-an-option"])
"""

FAILS_AT_IMPORT = """
raise ImportError("No module named 'scipy'")
"""


def _distribution(root: Path, name: str, source: str) -> Path:
    """A distribution ``name`` (module ``name`` with dashes as underscores) whose entry point in
    the ``snncore`` group is that module: found by ``importlib.metadata`` on ``root``."""
    module = name.replace("-", "_")
    (root / f"{module}.py").write_text(source)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[snncore]\n{name} = {module}\n")
    return root


def test_a_plugin_exiting_at_import_is_a_failed_plugin(
    fresh_manager: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fresh_manager first: torn down last, after the path is restored
    """argparse at import raises SystemExit; that used to escape into every caller."""
    monkeypatch.syspath_prepend(str(_distribution(tmp_path, "snn-exiting", EXITS_AT_IMPORT)))
    reset_manager()
    assert "lif" in _model_names()  # list_models() no longer raises SystemExit
    record = _record("snn-exiting")
    assert record.status == "failed"
    assert record.error == (
        "import: SystemExit(2): the plugin tried to end the process (argparse does on a "
        "command line it does not know)"
    )


def test_cli_survives_a_plugin_exiting_at_import(tmp_path: Path) -> None:
    path = str(_distribution(tmp_path, "snn-exiting", EXITS_AT_IMPORT))
    helped = _snn("--help", PYTHONPATH=path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: snn [OPTIONS] COMMAND [ARGS]...")
    listed = _snn("plugins", "--json", PYTHONPATH=path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    assert rows["snn-exiting"]["status"] == "failed"
    assert rows["snn-exiting"]["error"].startswith("import: SystemExit(2): ")


def test_listings_warn_about_failed_plugins_and_misses_name_them(tmp_path: Path) -> None:
    """A failed plugin was invisible: listings said nothing and its model's name got "unknown
    model" (or a suggested encoder)."""
    path = str(_distribution(tmp_path, "snn-resonate", FAILS_AT_IMPORT))
    warning = "warning: 1 plugin failed to load (snn-resonate); run `snn plugins` to see why"
    for command in ("list-models", "list-backends", "list-encoders", "list-surrogates"):
        listed = _snn(command, PYTHONPATH=path)
        assert listed.returncode == 0, listed.stderr
        assert listed.stderr.splitlines() == [warning], command
    listed = _snn("list-models", "--json", PYTHONPATH=path)
    assert listed.stderr.splitlines() == [warning]
    assert "lif" in {row["name"] for row in json.loads(listed.stdout)["models"]}

    info = _snn("info", "resonate", PYTHONPATH=path)
    assert info.returncode == 2
    assert info.stderr.splitlines() == [
        "Error: unknown model 'resonate'. Run `snn list-models` to see all models. 1 plugin "
        "failed to load and may provide it: snn-resonate (`snn plugins` shows the error)."
    ]
    clean = _snn("list-models")
    assert clean.returncode == 0 and clean.stderr == ""


def test_an_unknown_name_names_the_failed_plugins(
    fresh_manager: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fresh_manager first: torn down last, after the path is restored
    monkeypatch.syspath_prepend(str(_distribution(tmp_path, "snn-resonate", FAILS_AT_IMPORT)))
    reset_manager()
    with pytest.raises(snncore.UnknownNameError) as info:
        snncore.create("resonate")
    assert info.value.failed_plugins == ("snn-resonate",)
    assert str(info.value).endswith(
        "1 plugin failed to load and may provide it: snn-resonate (`snn plugins` shows the error)."
    )


def test_a_failed_hook_is_named_by_misses_of_its_kind_only(builtins_only: Any) -> None:
    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        raise ValueError("no surrogates today")

    snncore.register_plugin(
        SimpleNamespace(register_surrogates=register_surrogates), name="snn-sad"
    )
    with pytest.raises(snncore.UnknownNameError, match="may provide it: snn-sad "):
        snncore.get_surrogate("gloomy")
    with pytest.raises(snncore.UnknownNameError) as info:
        snncore.get_model("gloomy")
    assert info.value.failed_plugins == ()
