"""Functions of the reference library's functional API that snncore's plugins do not name.

Each is written on top of the plugins' own steps (no second copy of a model's equations):
thresholds over :func:`snncore.spike`, whole-sequence "integral" loops over the one-step
functions, sparse variants that compute densely (same numbers, no sparse speed-up), single adjoint
steps as adjoint sequences of length one.  Plugin packages are imported inside the functions, so
that this module loads without them (docs/porting-from-norse.md says why the compatibility
namespace imports plugin packages directly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from snncore.surrogates import spike


def heaviside(data: torch.Tensor) -> torch.Tensor:
    """The step ``1[x > 0]`` in ``data``'s dtype, without a gradient."""
    return (data > 0).to(data.dtype)


def threshold(x: torch.Tensor, method: str, alpha: float) -> torch.Tensor:
    """``Θ(x)`` with the surrogate named ``method`` (an unknown name raises
    :class:`snncore.UnknownNameError`, a ``ValueError`` as in the reference)."""
    return spike(x, method, alpha)


def _named(method: str, doc: str) -> Callable[..., torch.Tensor]:
    def function(x: torch.Tensor, alpha: float = 100.0) -> torch.Tensor:
        return spike(x, method, alpha)

    function.__name__ = f"{method}_fn"
    function.__doc__ = doc
    return function


super_fn = _named(
    "super", "SuperSpike; ``reference_superspike(True)`` ignores alpha as the reference does."
)
superspike_fn = super_fn
heavi_erfc_fn = _named("heavi_erfc", "The erfc-smoothed step's derivative as surrogate.")
heavi_tanh_fn = _named("tanh", "The tanh-smoothed step's derivative as surrogate.")
heavi_circ_fn = _named("circ", "The circular smoothed step's derivative as surrogate.")
triangle_fn = _named("triangle", "The triangle surrogate.")


def lif_current_encoder(
    input_current: torch.Tensor, voltage: torch.Tensor, p: Any = None, dt: float = 0.001
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a LIF neuron driven directly by ``input_current`` (no synaptic current):
    ``v1 = v + dt·tau_mem_inv·((v_leak − v) + x)``, ``z = Θ(v1 − v_th)``, ``v' = v1 − z·(v1 −
    v_reset)``.  Returns ``(z, v')``."""
    from snn_lif import LIFParameters

    p = LIFParameters() if p is None else p
    voltage = voltage + dt * p.tau_mem_inv * ((p.v_leak - voltage) + input_current)
    z = spike(voltage - p.v_th, p.method, p.alpha)
    return z, voltage - z * (voltage - p.v_reset)


def _integral(
    step: Callable[..., tuple[torch.Tensor, Any]], x: torch.Tensor, state: Any, *args: Any
) -> tuple[torch.Tensor, Any]:
    """``step(x_t, state, *args)`` over the first (time) axis of ``x``."""
    outputs = []
    for x_t in x:
        z, state = step(x_t, state, *args)
        outputs.append(z)
    return torch.stack(outputs), state


def lif_feed_forward_integral(
    input_tensor: torch.Tensor, state: Any, p: Any = None, dt: float = 0.001
) -> tuple[torch.Tensor, Any]:
    """:func:`lif_feed_forward_step` over the first (time) axis: ``(spikes (T, ...), state)``."""
    from snn_lif import LIFParameters
    from snn_lif.functional import lif_feed_forward_step

    p = LIFParameters() if p is None else p
    return _integral(lif_feed_forward_step, input_tensor, state, p, dt)


def lif_step_integral(
    input_tensor: torch.Tensor,
    state: Any,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """:func:`lif_step` over the first (time) axis: ``(spikes (T, ...), state)``."""
    from snn_lif import LIFParameters
    from snn_lif.functional import lif_step

    p = LIFParameters() if p is None else p
    return _integral(lif_step, input_tensor, state, input_weights, recurrent_weights, p, dt)


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def lif_feed_forward_step_sparse(
    input_tensor: torch.Tensor, state: Any, p: Any = None, dt: float = 0.001
) -> tuple[torch.Tensor, Any]:
    """:func:`lif_feed_forward_step` for sparse input; the spikes come back sparse.  Computed
    densely: the same numbers, without the reference's sparse kernels."""
    from snn_lif import LIFFeedForwardState, LIFParameters
    from snn_lif.functional import lif_feed_forward_step

    p = LIFParameters() if p is None else p
    state = LIFFeedForwardState(_dense(state.v), _dense(state.i))
    z, state = lif_feed_forward_step(_dense(input_tensor), state, p, dt)
    return z.to_sparse(), state


def lif_step_sparse(
    input_tensor: torch.Tensor,
    state: Any,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """:func:`lif_step` for sparse input spikes; spikes and ``state.z`` come back sparse."""
    from snn_lif import LIFParameters, LIFState
    from snn_lif.functional import lif_step

    p = LIFParameters() if p is None else p
    dense = LIFState(_dense(state.z), _dense(state.v), _dense(state.i))
    z, new = lif_step(_dense(input_tensor), dense, input_weights, recurrent_weights, p, dt)
    sparse = z.to_sparse()
    return sparse, LIFState(sparse, new.v, new.i)


def lif_refrac_step_sparse(
    input_tensor: torch.Tensor,
    state: Any,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """:func:`lif_refrac_step` for sparse input spikes; spikes and ``state.lif.z`` come back
    sparse."""
    from snn_lif import LIFState
    from snn_refrac import LIFRefracParameters, LIFRefracState
    from snn_refrac.functional import lif_refrac_step

    p = LIFRefracParameters() if p is None else p
    lif = LIFState(_dense(state.lif.z), _dense(state.lif.v), _dense(state.lif.i))
    dense = LIFRefracState(lif, _dense(state.rho))
    z, new = lif_refrac_step(_dense(input_tensor), dense, input_weights, recurrent_weights, p, dt)
    sparse = z.to_sparse()
    return sparse, LIFRefracState(LIFState(sparse, new.lif.v, new.lif.i), new.rho)


def lif_mc_feed_forward_step(
    input_tensor: torch.Tensor,
    state: Any,
    g_coupling: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """Feed-forward multi-compartment LIF: the compartments' coupling ``dt·g_coupling·v`` is
    added to ``v``, then one :func:`lif_feed_forward_step`."""
    from snn_lif import LIFFeedForwardState, LIFParameters
    from snn_lif.functional import lif_feed_forward_step

    p = LIFParameters() if p is None else p
    v = state.v + dt * torch.nn.functional.linear(state.v, g_coupling)
    return lif_feed_forward_step(input_tensor, LIFFeedForwardState(v, state.i), p, dt)


def _one_step(sequence: Callable[..., Any], x: torch.Tensor, *args: Any) -> tuple[Any, Any]:
    outs, state = sequence(x.unsqueeze(0), *args)
    return outs[0], state


def lif_feed_forward_adjoint_step(
    input_tensor: torch.Tensor, state: Any, p: Any = None, dt: float = 0.001
) -> tuple[torch.Tensor, Any]:
    """One feed-forward LIF step whose gradients come from the adjoint equations (snncore's
    whole-sequence adjoint, for one step)."""
    from snn_lif import LIFParameters
    from snn_lif.adjoint import lif_adjoint_layer

    p = LIFParameters() if p is None else p
    return _one_step(lif_adjoint_layer, input_tensor, state, p, dt)


def lif_adjoint_step(
    input_tensor: torch.Tensor,
    state: Any,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """One recurrent LIF step with adjoint gradients."""
    from snn_lif import LIFParameters
    from snn_lif.adjoint import lif_adjoint_recurrent

    p = LIFParameters() if p is None else p
    return _one_step(
        lif_adjoint_recurrent, input_tensor, state, p, dt, input_weights, recurrent_weights
    )


def lsnn_feed_forward_adjoint_step(
    input_tensor: torch.Tensor, state: Any, p: Any = None, dt: float = 0.001
) -> tuple[torch.Tensor, Any]:
    """One feed-forward LSNN step with adjoint gradients."""
    from snn_lsnn import LSNNParameters
    from snn_lsnn.adjoint import lsnn_adjoint_layer

    p = LSNNParameters() if p is None else p
    return _one_step(lsnn_adjoint_layer, input_tensor, state, p, dt)


def lsnn_adjoint_step(
    input_tensor: torch.Tensor,
    state: Any,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """One recurrent LSNN step with adjoint gradients."""
    from snn_lsnn import LSNNParameters
    from snn_lsnn.adjoint import lsnn_adjoint_recurrent

    p = LSNNParameters() if p is None else p
    return _one_step(
        lsnn_adjoint_recurrent, input_tensor, state, p, dt, input_weights, recurrent_weights
    )


def ada_lif_step(
    input_tensor: torch.Tensor,
    state: Any,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, Any]:
    """One recurrent step of LIF with an adaptation *current* ``b`` (the reference's
    ``ada_lif_step``, on an :class:`snn_lsnn.LSNNState`; not snncore's LSNN, whose ``b`` is an
    adaptive threshold).  ``b`` lowers the voltage, decays to zero and jumps by ``beta`` per
    spike; the threshold stays ``v_th`` and a spike subtracts ``v_th − v_reset``:

        v1 = v + dt·tau_mem_inv·((v_leak − v) + i − b);  i1 = i − dt·tau_syn_inv·i
        b1 = b − dt·tau_adapt_inv·b;  z = Θ(v1 − v_th)
        v' = v1 − z·(v_th − v_reset);  b' = b1 + beta·z;  i' = i1 + W_in·x + W_rec·z_prev
    """
    from snn_lsnn import LSNNParameters, LSNNState

    p = LSNNParameters() if p is None else p
    v1 = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + state.i - state.b)
    i1 = state.i - dt * p.tau_syn_inv * state.i
    b1 = state.b - dt * p.tau_adapt_inv * state.b
    z = spike(v1 - p.v_th, p.method, p.alpha)
    current = torch.nn.functional.linear(input_tensor, input_weights)
    current = current + torch.nn.functional.linear(state.z, recurrent_weights)
    return z, LSNNState(z, v1 - z * (p.v_th - p.v_reset), i1 + current, b1 + z * p.beta)
