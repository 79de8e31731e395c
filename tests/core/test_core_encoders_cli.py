"""`snn list-encoders` and `snn info ENCODER`, in-process with click's CliRunner."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from snncore.cli import cli

SPEC_NAMES = (
    "poisson",
    "signed_poisson",
    "constant_current_lif",
    "population",
    "spike_latency",
    "spike_latency_lif",
)


@pytest.fixture(autouse=True)
def _fresh(fresh_manager: Any) -> None:
    """Each test sees a freshly discovered plugin manager."""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_list_encoders_shows_every_spec_name() -> None:
    result = invoke("list-encoders", "--json")
    assert result.exit_code == 0, result.output
    rows = {e["name"]: e for e in json.loads(result.stdout)["encoders"]}
    for name in SPEC_NAMES:
        assert rows[name]["distribution"] == "snncore", name
        assert rows[name]["qualified_name"] == f"snncore.encoders:{name}"
        assert rows[name]["summary"], name
    table = invoke("list-encoders").stdout
    assert all(f"\n{name} " in table for name in SPEC_NAMES), table


def test_info_encoder_text() -> None:
    result = invoke("info", "constant_current_lif")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("constant_current_lif (encoder) from snncore")
    assert "signature: ConstantCurrentLIFEncoder(seq_length, p=None, dt=0.001)" in out
    assert "class: snncore.encoders.ConstantCurrentLIFEncoder" in out
    assert "tau_mem_inv" in out  # the docstring's equations


def test_info_encoder_json() -> None:
    result = invoke("info", "population", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_version"] == 1 and "model" not in payload
    encoder = payload["encoder"]
    assert encoder["name"] == "population" and encoder["plugin"] == "snncore.encoders"
    assert encoder["class"] == "snncore.encoders.PopulationEncoder"
    assert encoder["signature"] == (
        "PopulationEncoder(out_features, scale=None, kernel=gaussian_rbf, "
        "distance_function=euclidean_distance)"
    )
    assert encoder["parameters"] == [
        {"name": "out_features", "default": None, "required": True},
        {"name": "scale", "default": None, "required": False},
        {"name": "kernel", "default": "gaussian_rbf", "required": False},
        {"name": "distance_function", "default": "euclidean_distance", "required": False},
    ]
    assert encoder["summary"] == encoder["doc"].splitlines()[0]


def test_info_qualified_encoder_name() -> None:
    result = invoke("info", "snncore.encoders:poisson", "--json")
    assert result.exit_code == 0, result.output
    encoder = json.loads(result.stdout)["encoder"]
    assert encoder["name"] == "poisson"
    assert [p["name"] for p in encoder["parameters"]] == ["seq_length", "f_max", "dt", "generator"]
    assert encoder["parameters"][1]["default"] == 100.0


def test_info_unknown_name_exits_2_suggesting_close_encoders() -> None:
    result = invoke("info", "poissn")
    assert result.exit_code == 2
    assert "unknown encoder 'poissn'" in result.output and "'poisson'" in result.output
    assert "Traceback" not in result.output
    # a name close to a model is still reported as a model
    result = invoke("info", "lfi")
    assert result.exit_code == 2 and "unknown model 'lfi'" in result.output
