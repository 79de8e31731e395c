"""``torch.autograd.gradcheck`` (float64, small shapes) of every hand-written kernel's backward.

A spiking layer's forward pass is piecewise smooth: the spikes are constant between threshold
crossings, so finite differences see only the smooth parts, while the surrogate adds a
pseudo-derivative that no finite difference can confirm.  The setup that gradcheck *can* check
exactly is the spiking dynamics with the ``heaviside`` surrogate (pseudo-derivative 0): the
kernel's backward must then be the true derivative of the piecewise-smooth map -- through the
leak, the synapse, the reset (a spiking step's voltage no longer depends on the past), the
adaptive threshold, the exponential term and the refractory hold -- for the outputs and every
final state field, with respect to the input and the initial state.  Random float64 inputs keep
every voltage far (≫ eps) from the threshold.  The surrogate terms are checked against autograd
through the eager steps in test_snn_backend_fused_exactness.py and
test_snn_backend_fused_surrogates.py.  The leaky integrator is smooth: checked as it is.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.utils._pytree as pytree

import snncore

STEPS, SHAPE = 12, (2, 3)


def _layer(name: str) -> Any:
    if name == "li":
        return snncore.create("li", variant="layer", backend="fused").double()
    if name == "lif_refrac":
        from snn_lif import LIFParameters
        from snn_refrac import LIFRefracParameters

        p = LIFRefracParameters(lif=LIFParameters(method="heaviside"), rho_reset=2.0)
        return snncore.create(name, variant="layer", backend="fused", p=p).double()
    extra = {"tau_adapt_inv": 20.0, "beta": 0.2} if name == "lsnn" else {}
    return snncore.create(name, variant="layer", backend="fused", method="heaviside", **extra)


@pytest.mark.parametrize("name", ["lif", "li", "lsnn", "lif_ex", "lif_adex", "lif_refrac"])
def test_gradcheck_of_the_kernel(library: Any, name: str) -> None:
    from snn_backend_fused import kernels

    layer = _layer(name).double()
    generator = torch.Generator().manual_seed(11)
    x = 4.0 * torch.rand(STEPS, *SHAPE, generator=generator, dtype=torch.float64)
    state = layer.make_initial_state(layer.parameters_now(), SHAPE, x.device, x.dtype)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [leaf + 0.3 * torch.rand(SHAPE, generator=generator, dtype=x.dtype) for leaf in leaves]
    # the refractory counter (the last leaf of lif_refrac) is a step count, not differentiable
    differentiable = len(leaves) - 1 if name == "lif_refrac" else len(leaves)
    if name == "lif_refrac":
        leaves[-1] = torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, 1.0]], dtype=x.dtype)
    inputs = [x, *leaves[:differentiable]]
    inputs = [t.detach().requires_grad_(True) for t in inputs]
    fixed = leaves[differentiable:]

    def f(x: torch.Tensor, *fields: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, final = layer(x, pytree.tree_unflatten([*fields, *fixed], spec))
        return (out, *pytree.tree_leaves(final))

    # the kernel runs (not the eager fallback), and the dynamics spike and reset
    kernel = kernels.kernel_for(layer.model, "layer")
    assert kernel is not None
    base = pytree.tree_unflatten([*inputs[1:], *fixed], spec)
    assert kernels.prepare(kernel, x, base, layer.parameters_now(), layer.dt) is not None
    out = f(*inputs)[0]
    if name != "li":
        assert 0 < float(out.detach().sum()) < out.numel()
    assert torch.autograd.gradcheck(f, tuple(inputs), eps=1e-6, atol=1e-7, rtol=1e-6)
