"""``snn list-models`` records which path the fused backend takes per model: the kernel generated
from the step for every model with a feed-forward layer; for recurrent-only models the route of
their recurrent layer (``lif_mc``, whose step multiplies by a module tensor, and
``lif_correlation``, whose state holds one value per synapse: staged generated kernels).  (``snn
bench`` timing the fused backend: tests/plugins/snn_bench/.)"""

from __future__ import annotations

import json
import re
from typing import Any

from click.testing import CliRunner

import snncore
from snncore.cli import cli


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_list_models_json_names_generated_and_generic_models() -> None:
    result = _invoke("list-models", "--json")
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    for name, model in models.items():
        assert "fused" in model["backends"]
        how = model["backend_implementations"]["fused"]
        if snncore.get_model(name).feed_forward_step is not None:  # listed: its layer
            assert how == "generated", name
        else:  # recurrent-only: listed by its recurrent layer
            assert how in ("generated", "generic"), name
        # auto prefers fused exactly where a kernel runs the request
        assert (model["backends"][0] == "fused") == (how != "generic"), name
    layer_models = {"lif", "li", "lsnn", "lif_ex", "lif_adex", "lif_refrac", "izhikevich"}
    assert layer_models | {"coba_lif"} <= {
        n for n, m in models.items() if m["backend_implementations"]["fused"] == "generated"
    }
    assert all(m["backend_implementations"]["fused"] == "generated" for m in models.values())


def test_list_models_table_shows_the_path() -> None:
    result = _invoke("list-models", "--backend", "fused")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert re.search(r"\bfused\(generated\),torch\b", rows["lif"])
    assert re.search(r"\bfused\(generated\),torch\b", rows["izhikevich"])
    assert re.search(r"\bfused\(generated\),torch\(step-loop\)", rows["lif_mc"])
    assert re.search(r"\bfused\(generated\),torch\(step-loop\)", rows["lif_correlation"])
    assert "generic" not in result.stdout
    info = _invoke("info", "lsnn")
    assert "backends: fused(generated), torch(step-loop)" in info.stdout
