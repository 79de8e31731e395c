"""``snn list-models`` records which models have a hand-written kernel and which take the
generic path.  (``snn bench`` timing the fused backend: tests/plugins/snn_bench/.)"""

from __future__ import annotations

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
    assert re.search(r"\btorch\(step-loop\),fused\(generic\)", rows["izhikevich"])
    info = _invoke("info", "lsnn")
    assert "backends: fused(kernel), torch(step-loop)" in info.stdout
