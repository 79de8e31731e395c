"""The whole-sequence LIF layer path equals the step-by-step autograd path it replaces."""

from __future__ import annotations

import pytest
import torch
from snn_lif import LIFParameters
from snn_lif.lif import initial_feed_forward_state, lif_feed_forward_step
from snn_lif.sequence import lif_feed_forward_sequence

import snncore


def _step_loop(x, state, p, dt=0.001):
    outputs = []
    for x_t in x.unbind(0):
        z, state = lif_feed_forward_step(x_t, state, p, dt)
        outputs.append(z)
    return torch.stack(outputs), state


def _inputs(dtype, seed=0, shape=(300, 3, 5)):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=generator, dtype=dtype) * 3.0).requires_grad_(True)
    weights = torch.randn(shape, generator=generator, dtype=dtype)
    return x, weights


def _gradients(run, x, state, weights, p):
    out, final = run(x, state, p)
    loss = (out * weights).sum() + 2.0 * final.v.sum() + 3.0 * final.i.sum()
    wrt = [x] + [s for s in state if s.requires_grad]
    return out, final, torch.autograd.grad(loss, wrt)


# Sharpness values at which 300 steps of BPTT stay finite for each surrogate.
@pytest.mark.parametrize(("method", "alpha"), [("super", 100.0), ("atan", 2.0), ("triangle", 0.3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sequence_equals_step_loop(method: str, alpha: float, dtype: torch.dtype) -> None:
    p = LIFParameters(method=method, alpha=alpha)
    x, weights = _inputs(dtype)
    state = initial_feed_forward_state(p, x.shape[1:], dtype=dtype)
    state = state._replace(v=state.v.requires_grad_(True), i=state.i.clone().requires_grad_(True))

    out_ref, final_ref, grads_ref = _gradients(_step_loop, x, state, weights, p)
    out, final, grads = _gradients(lif_feed_forward_sequence, x, state, weights, p)

    assert out_ref.sum() > 100  # the comparison covers many spikes and resets
    assert torch.equal(out, out_ref)
    assert torch.equal(final.v, final_ref.v) and torch.equal(final.i, final_ref.i)
    tolerance = (
        {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    )
    assert all(bool(g.isfinite().all()) for g in grads_ref)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref, **tolerance)


def test_sequence_with_per_neuron_parameters() -> None:
    p = LIFParameters(
        v_th=torch.linspace(0.2, 1.5, 5, dtype=torch.float64), tau_mem_inv=torch.full((5,), 80.0)
    )
    x, weights = _inputs(torch.float64, seed=1)
    state = initial_feed_forward_state(p, x.shape[1:], dtype=torch.float64)
    out_ref, _, grads_ref = _gradients(_step_loop, x, state, weights, p)
    out, _, grads = _gradients(lif_feed_forward_sequence, x, state, weights, p)
    assert torch.equal(out, out_ref)
    torch.testing.assert_close(grads[0], grads_ref[0], rtol=1e-12, atol=1e-14)


def test_sequence_declines_when_a_parameter_needs_a_gradient() -> None:
    p = LIFParameters(tau_mem_inv=torch.tensor(100.0, requires_grad=True))
    x, _ = _inputs(torch.float32)
    state = initial_feed_forward_state(p, x.shape[1:])
    assert lif_feed_forward_sequence(x, state, p, 0.001) is None
    # ... and the layer then still trains that parameter through the step loop.
    layer = snncore.create("lif", learnable=("tau_mem_inv",))
    out, _ = layer(x)
    out.sum().backward()
    grad = layer.get_parameter("p_tau_mem_inv").grad
    assert grad is not None and grad.abs() > 0


def test_layer_uses_the_sequence_and_matches_the_cell_loop() -> None:
    layer = snncore.create("lif", variant="layer", backend="torch")  # auto: a fused kernel
    cell = snncore.create("lif", variant="cell")
    x, weights = _inputs(torch.float32, seed=2, shape=(100, 4, 2, 3))
    out, state = layer(x)
    assert out.grad_fn is not None and "Sequence" in type(out.grad_fn).__name__
    cell_state, cell_outputs = None, []
    for x_t in x.unbind(0):
        z, cell_state = cell(x_t, cell_state)
        cell_outputs.append(z)
    assert torch.equal(out, torch.stack(cell_outputs))
    assert torch.equal(state.v, cell_state.v)
    (grad,) = torch.autograd.grad((out * weights).sum(), [x])
    (grad_ref,) = torch.autograd.grad((torch.stack(cell_outputs) * weights).sum(), [x])
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-6)
