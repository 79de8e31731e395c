"""``snn bench`` (the snn-bench plugin): every backend that runs the model, beside the installed
peers; forward and forward+backward, speed-ups, the bandwidth bound, JSON and peak memory; a model
without a feed-forward layer is a usage error."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from snncore.cli import cli
from snncore.plugins import get_manager


@pytest.fixture
def snn(fresh_manager: Any) -> Iterator[Callable[..., Result]]:
    """Invoke ``snn ARGS`` in this process, with the plugins' commands added as ``main`` does;
    the command set is restored afterwards."""
    commands = dict(cli.commands)
    get_manager().call_commands_hook(cli)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args))

    yield invoke
    cli.commands.clear()
    cli.commands.update(commands)


@pytest.fixture(scope="session")
def fused_library() -> Any:
    """The fused backend's kernel library, built on first use; skips without snn-backend-fused."""
    build = pytest.importorskip("snn_backend_fused.build")
    return build.load()


def test_bench_is_a_plugin_command(snn: Callable[..., Result]) -> None:
    assert "bench" in snn("--help").stdout
    plugins = snn("plugins", "--json")
    assert plugins.exit_code == 0, plugins.output
    assert "snn-bench" in plugins.stdout
    help_text = snn("bench", "--help")
    assert help_text.exit_code == 0, help_text.output
    for option in ("--model", "--T", "--B", "--N", "--backward", "--peers", "--memory", "--json"):
        assert option in help_text.stdout


def test_bench_prints_the_torch_backend(snn: Callable[..., Result]) -> None:
    result = snn("bench", "--model", "lif", "-T", "20", "-B", "2", "-N", "8", "--repeat", "1",
                 "--no-peers")  # fmt: skip
    assert result.exit_code == 0, result.output
    # candidate, forward ms, fraction of the bandwidth bound, runs
    assert re.search(
        r"^\s+snncore/torch\s+\d+\.\d\s+\d+\.\d\d\s+1$", result.stdout, re.MULTILINE
    ), result.stdout
    assert "T=20 B=2 N=8" in result.stdout
    assert "norse" not in result.stdout


def test_bench_forward_backward_json(snn: Callable[..., Result], fused_library: Any) -> None:
    result = snn(
        "bench", "--model", "lif", "-T", "30", "-B", "2", "-N", "64", "--backward", "--repeat",
        "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_version"] == 1
    bench = payload["bench"]
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


def test_bench_table_with_peers_and_memory(snn: Callable[..., Result], fused_library: Any) -> None:
    result = snn(
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


def test_bench_refuses_a_model_without_a_layer(snn: Callable[..., Result]) -> None:
    result = snn("bench", "--model", "lif_mc", "-T", "5", "-B", "1", "-N", "2")
    assert result.exit_code == 2
    assert "no feed-forward layer" in result.output and "Traceback" not in result.output


def test_run_bench_without_echo_returns_the_results(fresh_manager: Any) -> None:
    from snn_bench.bench import run_bench

    lines: list[str] = []
    results = run_bench("lif", 5, 1, 4, 1, "cpu", False, backward=False, echo=lines.append)
    assert "snncore/torch" in results["candidates"]
    assert results["bound"]["forward_bytes_per_element"] == 8  # no grad: read x, write out
    assert results["peers_missing"] == [] and "peak_memory" not in results
    assert lines and lines[0].startswith("bench: lif layer, forward (no grad), T=5 B=1 N=4")
    with pytest.raises(ValueError, match="no feed-forward layer"):
        run_bench("lif_mc", 5, 1, 4, 1, "cpu", False, echo=None)
