"""The ``snn`` command line, driven in-process with click's CliRunner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import snncore
from snncore.cli import cli, main
from snncore.plugins import get_manager

LIF_VERSION = metadata.version("snn-lif")
TORCH_BACKEND_VERSION = metadata.version("snn-backend-torch")


@pytest.fixture(autouse=True)
def _fresh(fresh_manager: Any) -> Iterator[None]:
    """Every CLI test runs against a freshly discovered manager and leaves the command set as
    it found it (plugins may add commands to the global group)."""
    commands = dict(cli.commands)
    yield
    cli.commands.clear()
    cli.commands.update(commands)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _rows(table: str) -> dict[str, str]:
    """The table's lines keyed by their first column (the header line excluded)."""
    lines = [line for line in table.splitlines() if line.strip()]
    return {line.split()[0]: line for line in lines[1:]}


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_version"] == 1
    return payload


def _register(name: str, **hooks: Callable[..., Any]) -> None:
    snncore.register_plugin(
        SimpleNamespace(**{k: snncore.hookimpl(v) for k, v in hooks.items()}), name=name
    )


# -- list-models ----------------------------------------------------------------------------------


def test_list_models_table() -> None:
    result = invoke("list-models")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[:5] == ["NAME", "FAMILY", "DIST", "VARIANTS", "BACKENDS"]
    rows = _rows(result.stdout)
    for name in ("lif", "li", "lif_mc"):
        assert f"snn-lif {LIF_VERSION}" in rows[name]
        assert "torch" in re.split(r"[\s,()]+", rows[name])  # backend(route); others may follow
    assert "cell,recurrent_cell,layer,recurrent" in rows["lif"]
    assert "cell,layer" in rows["li"] and "recurrent" not in rows["li"]


def test_list_models_json() -> None:
    payload = _json(invoke("list-models", "--json"))
    models = {m["name"]: m for m in payload["models"]}
    lif = models["lif"]
    assert lif["distribution"] == "snn-lif"
    assert lif["version"] == LIF_VERSION
    assert lif["plugin"] == "snn-lif"
    assert lif["qualified_name"] == "snn-lif:lif"
    assert lif["family"] == "lif"
    assert lif["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]
    assert "torch" in lif["backends"]
    assert lif["output"] == "spikes" and models["li"]["output"] == "voltage"
    assert lif["summary"]
    assert models["lif_mc"]["variants"] == ["recurrent_cell", "recurrent"]
    assert payload["conflicts"] == []


def test_list_models_family_filter(toy_plugin: Any) -> None:
    snncore.register_plugin(toy_plugin, name="snn-toy")
    assert set(_rows(invoke("list-models").stdout)) >= {"lif", "toy"}
    toy_only = _json(invoke("list-models", "--json", "--family", "toyfamily"))
    assert [m["name"] for m in toy_only["models"]] == ["toy"]
    lif_family = _json(invoke("list-models", "--json", "--family", "lif"))["models"]
    assert {m["family"] for m in lif_family} == {"lif"}
    assert {"lif", "li", "lif_mc"} <= {m["name"] for m in lif_family}
    assert "toy" not in _rows(invoke("list-models", "--family", "lif").stdout)
    nothing = invoke("list-models", "--family", "no-such-family")
    assert nothing.exit_code == 0 and "(none)" in nothing.stdout


class _OnlyLIF:
    """A backend that runs only LIF."""

    name = "only-lif"
    priority = -1
    summary = "runs lif only"

    def supports(
        self, model: Any, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        return None if model.name == "lif" else "lif only"


def test_list_models_backend_filter() -> None:
    _register("snn-only-lif", register_backends=lambda register: register(_OnlyLIF()))
    by_torch = _json(invoke("list-models", "--json", "--backend", "torch"))
    assert {"lif", "li", "lif_mc"} <= {m["name"] for m in by_torch["models"]}
    by_only = _json(invoke("list-models", "--json", "--backend", "only-lif"))
    assert [m["name"] for m in by_only["models"]] == ["lif"]
    backends = by_only["models"][0]["backends"]
    assert [b for b in backends if b in ("torch", "only-lif")] == ["torch", "only-lif"]


def test_list_models_unknown_backend_exits_2() -> None:
    result = invoke("list-models", "--backend", "torhc")
    assert result.exit_code == 2
    assert "unknown backend 'torhc'" in result.output and "'torch'" in result.output
    assert "Traceback" not in result.output


def test_list_models_reports_conflicts(toy_model: Any) -> None:
    _register("snn-impostor", register_models=lambda register: register(toy_model, name="lif"))
    result = invoke("list-models", "--json")
    payload = _json(result)
    [conflict] = payload["conflicts"]
    assert conflict["name"] == "lif"
    assert sorted(conflict["plugins"]) == ["snn-impostor", "snn-lif"]
    assert sorted(conflict["distributions"]) == ["snn-impostor runtime", f"snn-lif {LIF_VERSION}"]
    assert "warning: model 'lif'" in result.stderr
    assert "snn-impostor:lif" in {m["qualified_name"] for m in payload["models"]}


# -- info -----------------------------------------------------------------------------------------


def test_info_shows_parameters_with_defaults_and_units() -> None:
    result = invoke("info", "lif")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"lif (lif) from snn-lif {LIF_VERSION}")
    assert re.search(r"^tau_mem_inv\s+100\.0\s+1/s\s", out, re.MULTILINE), out
    assert re.search(r"^tau_syn_inv\s+200\.0\s+1/s\s", out, re.MULTILINE), out
    assert re.search(r"^v_th\s+1\.0\s+V\s", out, re.MULTILINE), out
    assert re.search(r"^method\s+super\s", out, re.MULTILINE), out
    assert "v1 = v + dt*tau_mem_inv" in out  # the equations
    assert "recurrent_cell: z [spikes (0/1)], v [V]" in out
    assert "variants: cell, recurrent_cell, layer, recurrent" in out
    assert re.search(r"^backends: .*\btorch\b", out, re.MULTILINE)


def test_info_json() -> None:
    model = _json(invoke("info", "lif", "--json"))["model"]
    assert model["name"] == "lif" and model["distribution"] == "snn-lif"
    params = {p["name"]: p for p in model["parameters"]}
    assert params["tau_mem_inv"]["default"] == 100.0
    assert params["tau_mem_inv"]["unit"] == "1/s"
    assert params["v_reset"]["default"] == 0.0
    assert params["alpha"]["default"] == 100.0
    assert params["method"]["default"] == "super"
    assert [s["name"] for s in model["states"]["layer"]] == ["v", "i"]
    assert [s["name"] for s in model["states"]["recurrent"]] == ["z", "v", "i"]
    assert "torch" in model["backends"]
    assert "tau_mem_inv" in model["equations"]


def test_info_unknown_model_exits_2_with_suggestion() -> None:
    result = invoke("info", "lfi")
    assert result.exit_code == 2
    assert "unknown model 'lfi'" in result.output
    assert "'lif'" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_info_conflicting_model_exits_2(toy_model: Any) -> None:
    _register("snn-impostor", register_models=lambda register: register(toy_model, name="lif"))
    result = invoke("info", "lif")
    assert result.exit_code == 2
    assert "snn-impostor:lif" in result.output
    assert invoke("info", "snn-lif:lif").exit_code == 0


# -- the other registries -------------------------------------------------------------------------


def test_list_backends() -> None:
    rows = _rows(invoke("list-backends").stdout)
    assert f"snn-backend-torch {TORCH_BACKEND_VERSION}" in rows["torch"]
    backends = {b["name"]: b for b in _json(invoke("list-backends", "--json"))["backends"]}
    assert backends["torch"]["priority"] == 0
    assert backends["torch"]["distribution"] == "snn-backend-torch"


def test_list_encoders() -> None:
    rows = _rows(invoke("list-encoders").stdout)
    assert f"snncore {snncore.__version__}" in rows["poisson"]
    encoders = {e["name"]: e for e in _json(invoke("list-encoders", "--json"))["encoders"]}
    assert encoders["poisson"]["plugin"] == "snncore.encoders"
    assert encoders["poisson"]["summary"]


def test_list_surrogates() -> None:
    rows = _rows(invoke("list-surrogates").stdout)
    for name in (
        "super",
        "heaviside",
        "triangle",
        "tanh",
        "circ",
        "heavi_erfc",
        "logistic",
        "atan",
    ):
        assert name in rows
    assert "fast_sigmoid" in rows["super"]
    surrogates = {s["name"]: s for s in _json(invoke("list-surrogates", "--json"))["surrogates"]}
    assert surrogates["super"]["aliases"] == ["fast_sigmoid"]
    assert surrogates["super"]["formula"] == "1/(alpha*|x|+1)^2"


def test_list_tasks(builtins_only: Any) -> None:
    empty = invoke("list-tasks")
    assert empty.exit_code == 0 and "(none)" in empty.stdout
    assert _json(invoke("list-tasks", "--json"))["tasks"] == []

    task = SimpleNamespace(name="echo-task", summary="a task that does nothing", run=lambda **o: {})
    _register("snn-echo", register_tasks=lambda register: register(task))
    assert "a task that does nothing" in _rows(invoke("list-tasks").stdout)["echo-task"]
    tasks = _json(invoke("list-tasks", "--json"))["tasks"]
    assert [(t["name"], t["distribution"], t["version"]) for t in tasks] == [
        ("echo-task", "snn-echo", "runtime")
    ]


# -- plugins --------------------------------------------------------------------------------------


def test_plugins_table_and_json() -> None:
    rows = _rows(invoke("plugins").stdout)
    for name in ("snn-lif", "snn-backend-torch", "snncore.surrogates", "snncore.encoders"):
        assert rows[name].split()[3] == "loaded", rows[name]
    plugins = {p["name"]: p for p in _json(invoke("plugins", "--json"))["plugins"]}
    assert plugins["snn-lif"]["status"] == "loaded"
    assert plugins["snn-lif"]["version"] == LIF_VERSION
    assert plugins["snn-lif"]["error"] is None
    assert plugins["snncore.surrogates"]["builtin"] is True
    assert plugins["snn-backend-torch"]["builtin"] is False


def test_plugins_shows_a_failing_hook() -> None:
    def register_models(register: Any) -> None:
        raise RuntimeError("kaputt")

    _register("snn-kaputt", register_models=register_models)
    plugins = {p["name"]: p for p in _json(invoke("plugins", "--json"))["plugins"]}
    assert plugins["snn-kaputt"]["status"] == "failed"
    assert "kaputt" in plugins["snn-kaputt"]["error"]
    assert plugins["snn-lif"]["status"] == "loaded"
    shown = invoke("plugins", "--traceback")
    assert "failed" in _rows(shown.stdout)["snn-kaputt"]
    assert "RuntimeError: kaputt" in shown.stderr


def test_disabled_plugin_is_shown(manager_with_env: Any) -> None:
    manager_with_env(SNNCORE_DISABLE_PLUGINS="snn-lif")
    assert _rows(invoke("plugins").stdout)["snn-lif"].split()[3] == "disabled"
    assert "lif" not in _rows(invoke("list-models").stdout)


# -- simulate -------------------------------------------------------------------------------------


def test_simulate_lif_prints_spike_counts() -> None:
    result = invoke("simulate", "lif", "--steps", "50", "--neurons", "5")
    assert result.exit_code == 0, result.output
    match = re.search(r"spike counts per neuron: \[([^\]]*)\]", result.stdout)
    assert match, result.stdout
    counts = [int(c) for c in match.group(1).split(",")]
    assert len(counts) == 5
    assert all(0 <= c <= 50 for c in counts) and sum(counts) > 0
    assert counts[-1] >= counts[0]  # the last neuron gets the strongest drive
    assert re.search(r"backend (torch|fused)$", result.stdout, re.MULTILINE)


def test_simulate_li_prints_output_voltages() -> None:
    result = invoke("simulate", "li", "--neurons", "4")
    assert result.exit_code == 0, result.output
    match = re.search(r"final output \(voltage\) per neuron: \[([^\]]*)\]", result.stdout)
    assert match, result.stdout
    voltages = [float(v) for v in match.group(1).split(",")]
    assert len(voltages) == 4 and voltages == sorted(voltages) and voltages[0] > 0
    assert "spike counts" not in result.stdout


def test_simulate_without_layer_or_unknown_model_exits_2() -> None:
    no_layer = invoke("simulate", "lif_mc")
    assert no_layer.exit_code == 2 and "no feed-forward layer" in no_layer.output
    unknown = invoke("simulate", "lfi")
    assert unknown.exit_code == 2 and "'lif'" in unknown.output
    assert "Traceback" not in unknown.output + no_layer.output


class _Refuser:
    name = "refuser"
    priority = 100
    summary = "runs nothing"

    def supports(
        self, model: Any, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        return "refuses everything"


def test_simulate_on_a_refusing_backend_is_a_clean_error() -> None:
    _register("snn-refuser", register_backends=lambda register: register(_Refuser()))
    result = invoke("simulate", "lif", "--backend", "refuser")
    assert result.exit_code == 1
    assert "refuses everything" in result.output and "torch" in result.output
    assert "Traceback" not in result.output
    auto = invoke("simulate", "lif", "--steps", "5")  # auto skips the refusing backend
    assert auto.exit_code == 0 and "backend refuser" not in auto.stdout


def test_version_option() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"snn, version {snncore.__version__}"


# -- plugin commands ------------------------------------------------------------------------------


def _hello_plugin(cli: click.Group) -> None:  # the hook's argument is named ``cli``
    @cli.command("hello-core-test")
    @click.argument("who")
    def hello(who: str) -> None:
        """Say hello."""
        click.echo(f"hello {who} from a plugin")


def test_plugin_command_is_available_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke("hello-core-test", "x").exit_code == 2  # not there before the plugin
    _register("snn-hello", register_commands=_hello_plugin)
    with pytest.raises(SystemExit) as info:
        main(["hello-core-test", "world"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "hello world from a plugin\n"
    assert invoke("--help").stdout.count("hello-core-test") == 1


def test_plugin_command_through_the_commands_hook() -> None:
    _register("snn-hello", register_commands=_hello_plugin)
    get_manager().call_commands_hook(cli)
    result = invoke("hello-core-test", "you")
    assert result.exit_code == 0 and result.stdout == "hello you from a plugin\n"


def test_a_raising_register_commands_does_not_break_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def register_commands(cli: click.Group) -> None:
        raise RuntimeError("no commands for you")

    _register("snn-nocommands", register_commands=register_commands)
    _register("snn-hello", register_commands=_hello_plugin)

    # first thing in a fresh process: `snn plugins` shows the failure
    with pytest.raises(SystemExit) as info:
        main(["plugins", "--json"])
    assert info.value.code == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert plugins["snn-nocommands"]["status"] == "failed"
    assert "no commands for you" in plugins["snn-nocommands"]["error"]
    assert "register_commands" in plugins["snn-nocommands"]["error"]
    assert plugins["snn-hello"]["status"] == "loaded"

    with pytest.raises(SystemExit) as info:
        main(["list-models"])
    assert info.value.code == 0
    assert "lif" in _rows(capsys.readouterr().out)
    with pytest.raises(SystemExit) as info:
        main(["hello-core-test", "again"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "hello again from a plugin\n"


def test_listing_models_does_not_import_the_compiler_stack() -> None:
    # torch._dynamo costs ~0.9 s to import, most of `snn`'s start-up budget (1.3x `import torch`);
    # discovery and listing must not pull it in (e.g. through a torch.compiler.disable decorator).
    code = (
        "import sys, snncore, snncore.cli; snncore.list_models(); "
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo'))[:3])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
