"""Multi-compartment LIF: recurrent LIF whose voltages are coupled by a conductance matrix.

After an ordinary recurrent LIF step (see :mod:`snn_lif.lif`) giving ``(z, v_lif, i')``, the
compartments exchange voltage through ``g_coupling`` (hidden × hidden, 1/s):

    v' = v_lif + dt·(g_coupling · v_lif)

This is the order of the reference's released step (Norse 1.1.0: coupling after the reset), which
is the acceptance test for numerics; MODELS.md's sketch puts the coupling inside the membrane
update instead.  ``g_coupling`` starts as N(0, 1)/sqrt(hidden) like the reference's.
"""

from __future__ import annotations

import math
from typing import Any

import torch

import snncore
from snn_lif.lif import LIFParameters, LIFState, initial_state, lif_recurrent_step


def lif_mc_recurrent_step(
    input_current: torch.Tensor,
    state: LIFState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
    *,
    g_coupling: torch.Tensor,
) -> tuple[torch.Tensor, LIFState]:
    """One step; ``input_current`` is ``W_in·x + W_rec·z_prev``."""
    z, s = lif_recurrent_step(input_current, state, p, dt)
    v_new = s.v + dt * torch.nn.functional.linear(s.v, g_coupling)
    return z, LIFState(s.z, v_new, s.i)


def lif_mc_step(
    input_tensor: torch.Tensor,
    state: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFState]:
    """The reference's functional signature: weighs the inputs, then :func:`lif_mc_recurrent_step`."""
    current = torch.nn.functional.linear(input_tensor, input_weights) + torch.nn.functional.linear(
        state.z, recurrent_weights
    )
    return lif_mc_recurrent_step(current, state, p, dt, g_coupling=g_coupling)


def _init_g_coupling(hidden_size: int, input_size: int, p: Any) -> torch.Tensor:
    return torch.randn(hidden_size, hidden_size) / math.sqrt(hidden_size)


LIF_MC_MODEL = snncore.NeuronModel(
    name="lif_mc",
    family="lif",
    summary="multi-compartment LIF: recurrent LIF with voltage coupling g_coupling",
    parameters=LIFParameters,
    recurrent_step=lif_mc_recurrent_step,
    state=LIFState,
    initial_state=initial_state,
    module_tensors={"g_coupling": _init_g_coupling},
    equations="(z, v_lif, i') = LIF step;  v' = v_lif + dt*(g_coupling @ v_lif)",
    units={"z": "spikes (0/1)", "v": "V", "i": "A (model units)", "g_coupling": "1/s"},
    class_names={"recurrent_cell": "LIFMCRecurrentCell", "recurrent": "LIFMCRecurrent"},
)

LIFMCRecurrentCell, LIFMCRecurrent = snncore.module_classes(LIF_MC_MODEL)
