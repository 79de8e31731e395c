"""Leaky integrator: the non-spiking readout of LIF (same synapse and membrane, no threshold).

    1. i1 = i + x                 (``LILinearCell``: i1 = i + W·x)
    2. v' = v + dt·tau_mem_inv·((v_leak − v) + i1)
    3. i' = i1 − dt·tau_syn_inv·i1

The output is the voltage ``v'``.  Initial state ``v = v_leak``, ``i = 0``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import attrs
import torch

import snncore
from snncore import tensor_field
from snncore.parameters import ParameterRecord, finite, positive_finite


@attrs.frozen
class LIParameters(ParameterRecord):
    """Parameters of a leaky integrator; each a scalar or per-neuron tensor."""

    tau_syn_inv: torch.Tensor = tensor_field(
        200.0, "1/s", "inverse synaptic time constant", validator=positive_finite
    )
    tau_mem_inv: torch.Tensor = tensor_field(
        100.0, "1/s", "inverse membrane time constant", validator=positive_finite
    )
    v_leak: torch.Tensor = tensor_field(0.0, "V", "leak (resting) potential", validator=finite)


class LIState(NamedTuple):
    """Voltage ``v`` and synaptic current ``i`` of a leaky integrator."""

    v: torch.Tensor
    i: torch.Tensor


def li_feed_forward_step(
    input_current: torch.Tensor, state: LIState, p: LIParameters = LIParameters(), dt: float = 0.001
) -> tuple[torch.Tensor, LIState]:
    """One Euler step; returns ``(v', state)``."""
    i_jump = state.i + input_current
    v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + i_jump)
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    return v_new, LIState(v_new, i_decayed)


def li_step(
    input_spikes: torch.Tensor,
    state: LIState,
    input_weights: torch.Tensor,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIState]:
    """One step with the input weighted first: ``i1 = i + W·x``."""
    return li_feed_forward_step(
        torch.nn.functional.linear(input_spikes, input_weights), state, p, dt
    )


LI_MODEL = snncore.NeuronModel(
    name="li",
    family="lif",
    summary="leaky integrator (non-spiking readout; outputs the voltage)",
    parameters=LIParameters,
    feed_forward_step=li_feed_forward_step,
    feed_forward_state=LIState,
    initial_values={"v": "v_leak"},
    output="voltage",
    equations=(
        "i1 = i + x;  v' = v + dt*tau_mem_inv*((v_leak - v) + i1);  i' = i1 - dt*tau_syn_inv*i1;"
        "  out = v'"
    ),
    units={"v": "V", "i": "A (model units)"},
    class_names={"cell": "LICell", "layer": "LI"},
)

LICell, LI = snncore.module_classes(LI_MODEL)


class LILinearCell(LICell):
    """A leaky-integrator cell that owns a weight ``input_weights`` (hidden × input): i1 = i + W·x.

    The weight starts as N(0, 1)/sqrt(input_size), as in the reference.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIParameters | None = None,
        dt: float = 0.001,
        **kwargs: Any,
    ):
        super().__init__(p, dt, **kwargs)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.input_weights = torch.nn.Parameter(
            torch.randn(hidden_size, input_size) / math.sqrt(input_size)
        )

    def forward(
        self, input_tensor: torch.Tensor, state: LIState | None = None
    ) -> tuple[torch.Tensor, LIState]:
        if not isinstance(input_tensor, torch.Tensor):
            raise TypeError(f"LILinearCell expects a tensor, got {type(input_tensor).__name__}")
        if not input_tensor.is_floating_point():
            raise TypeError(
                f"LILinearCell expects a floating-point input, got dtype {input_tensor.dtype} "
                "(use x.float())"
            )
        if input_tensor.dim() != 2 or input_tensor.shape[-1] != self.input_size:
            raise ValueError(
                f"LILinearCell expects input of shape (batch, input_size={self.input_size}), "
                f"got {tuple(input_tensor.shape)}"
            )
        return super().forward(torch.nn.functional.linear(input_tensor, self.input_weights), state)
