"""``snn list-models`` records which models have a hand-written kernel and which take the
generic path; ``snn bench`` times the backends with forward, forward+backward, ratios, the
bandwidth bound, JSON and peak memory."""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

from click.testing import CliRunner

from snncore.cli import cli

KERNEL_MODELS = {"lif", "li", "lsnn", "lif_ex", "lif_adex", "lif_refrac"}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_list_models_json_names_kernel_and_generic_models() -> None:
    result = _invoke("list-models", "--json")
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    for name, model in models.items():
        assert "fused" in model["backends"]
        expected = "kernel" if name in KERNEL_MODELS else "generic"
        assert model["backend_implementations"]["fused"] == expected, name
        # auto prefers fused exactly where it has a kernel
        assert (model["backends"][0] == "fused") == (name in KERNEL_MODELS), name
    assert {"izhikevich", "coba_lif", "lif_mc", "lif_correlation"} <= set(models)


def test_list_models_table_shows_the_path() -> None:
    result = _invoke("list-models", "--backend", "fused")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert re.search(r"\bfused\(kernel\),torch\b", rows["lif"])
    assert re.search(r"\btorch,fused\(generic\)", rows["izhikevich"])
    info = _invoke("info", "lsnn")
    assert "backends: fused(kernel), torch" in info.stdout


def test_bench_forward_backward_json(library: Any) -> None:
    result = _invoke(
        "bench", "--model", "lif", "-T", "30", "-B", "2", "-N", "64", "--backward", "--repeat",
        "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bench = json.loads(result.stdout)["bench"]
    assert (bench["steps"], bench["batch"], bench["neurons"], bench["backward"]) == (
        30,
        2,
        64,
        True,
    )
    assert {"snncore/fused", "snncore/torch"} <= set(bench["candidates"])
    fused = bench["candidates"]["snncore/fused"]
    assert 0 < fused["forward_s"] < fused["forward_backward_s"]
    assert fused["runs"] == 2
    bound = bench["bound"]
    assert bound["forward_bytes_per_element"] == bound["backward_bytes_per_element"] == 12
    assert bench["bandwidth_bytes_per_s"] > 1e8
    assert fused["forward_backward_bound_fraction"] == (
        bound["forward_backward_s"] / fused["forward_backward_s"]
    )
    ratio = bench["speedups"]["snncore/fused"]["snncore/torch"]["forward_backward"]
    torch_time = bench["candidates"]["snncore/torch"]["forward_backward_s"]
    assert abs(ratio - torch_time / fused["forward_backward_s"]) < 1e-12


def test_bench_table_with_peers_and_memory(library: Any) -> None:
    result = _invoke(
        "bench", "--model", "lif", "-T", "20", "-B", "2", "-N", "32", "--repeat", "1", "--peers",
        "--memory", "--backward",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "T=20 B=2 N=32" in out and "forward+backward" in out
    assert re.search(
        r"^\s+snncore/fused\s+\d+\.\d\s+\d+\.\d\d\s+\d+\.\d\s+\d+\.\d\d\s+1$", out, re.M
    )
    assert re.search(r"^speed-up of snncore/fused \(forward / forward\+backward\): ", out, re.M)
    assert re.search(
        r"peak memory of forward\+backward beyond the inputs, snncore/fused: \d+ MiB", out
    )
    assert re.search(
        r"peak memory of forward\+backward beyond the inputs, snncore/torch: \d+ MiB", out
    )
    # a peer that is installed gets a row; one that is not is named as missing
    for peer, module in (("norse/step-loop", "norse"), ("snntorch/Leaky", "snntorch")):
        table, _, missing = out.partition("peers not installed")
        installed = importlib.util.find_spec(module) is not None
        assert (f"  {peer} " in table) == installed
        assert (peer in missing) == (not installed)


def test_bench_refuses_a_model_without_a_layer() -> None:
    result = _invoke("bench", "--model", "lif_mc", "-T", "5", "-B", "1", "-N", "2")
    assert result.exit_code == 2
    assert "no feed-forward layer" in result.output and "Traceback" not in result.output
