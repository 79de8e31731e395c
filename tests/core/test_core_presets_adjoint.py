"""Model presets (``preset=`` / ``behavior=``) and the ``adjoint=True`` dispatch of layers."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import torch

import snncore
from snncore.modules import build_module
from tests.core.conftest import TOY_MODEL, ToyParameters, ToyState

CALLS: list[str] = []


def _adjoint_layer(x: torch.Tensor, state: ToyState, p: ToyParameters, dt: float) -> Any:
    CALLS.append("layer")
    return x * 0 - 1, state


PRESET_MODEL = attrs.evolve(
    TOY_MODEL,
    name="toy_presets",
    presets={
        "strong": snncore.Preset(
            name="strong", parameters=ToyParameters(gain=10.0), initial_state={"v": 3.0}
        )
    },
    adjoint={"layer": _adjoint_layer},
)


def test_preset_sets_parameters_and_initial_state() -> None:
    cell = build_module(PRESET_MODEL, "cell", preset="strong")
    out, _ = cell(torch.ones(2, 3))
    # v0 = 3 from the preset, gain 10 from its parameters: v = 3 + 10·1
    assert torch.equal(out, torch.full((2, 3), 13.0))
    same = build_module(PRESET_MODEL, "layer", behavior="strong")(torch.ones(1, 2, 3))[0]
    assert torch.equal(same[0], out)


def test_preset_errors() -> None:
    with pytest.raises(snncore.UnknownNameError, match=r"strng.*strong"):
        build_module(PRESET_MODEL, "cell", preset="strng")
    with pytest.raises(TypeError, match="either p or a preset"):
        build_module(PRESET_MODEL, "cell", p=ToyParameters(), preset="strong")
    with pytest.raises(TypeError, match="disagree"):
        build_module(PRESET_MODEL, "cell", preset="strong", behavior="other")


def test_adjoint_layer_calls_the_model_function() -> None:
    CALLS.clear()
    out, _ = build_module(PRESET_MODEL, "layer", adjoint=True)(torch.ones(4, 2))
    assert CALLS == ["layer"] and torch.equal(out, -torch.ones(4, 2))
    out, _ = build_module(PRESET_MODEL, "layer")(torch.ones(4, 2))
    assert CALLS == ["layer"] and out[-1, 0].item() == 8.0  # the ordinary path: 4 steps of 2·1


def test_adjoint_errors() -> None:
    with pytest.raises(ValueError, match=r"no adjoint 'cell'.*'layer'"):
        build_module(PRESET_MODEL, "cell", adjoint=True)
    with pytest.raises(ValueError, match=r"no adjoint 'layer'.*no variant"):
        build_module(TOY_MODEL, "layer", adjoint=True)
    with pytest.raises(ValueError, match="record_states"):
        build_module(PRESET_MODEL, "layer", adjoint=True, record_states=True)
