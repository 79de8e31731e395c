"""LIF with ``adjoint=True``: the forward pass equals the ordinary one bit for bit, and the
gradients are those of the relaxed system of docs/models-adjoint.md, checked by central finite
differences of a smooth loss (LIF → leaky-integrator readout → squared error) in float64.

The relaxed system is written here again from its definition (no code shared with
``snn_lif.adjoint``): the spike pattern is held at the base point's, each spike crosses threshold
at ``(t + θ)·dt`` with ``θ = (v_th − v_t)/(v1_t − v_t)``, and moving ``θ`` by ``δ`` from its base
value resets the voltage to ``v_reset − D⁺·δ`` (``D⁺ = a·((v_leak − v_reset) + i1_t)``, the
Euler increment just after the reset) and moves ``δ`` of the spike from step ``t`` to ``t+1``.
Every finite difference also checks that the ordinary forward's spikes did not change.
"""

from __future__ import annotations

import pytest
import torch
from snn_lif import LIF, LIFFeedForwardState, LIFParameters, LIFRecurrent, LIFState
from snn_lif.adjoint import lif_adjoint_layer, lif_adjoint_recurrent
from snn_lif.lif import lif_feed_forward_step, lif_recurrent_step
from torch.testing import assert_close

F64 = torch.float64
DT = 0.001
# a = dt·tau_mem_inv = 0.1, b = dt·tau_syn_inv = 0.2; non-zero v_leak and v_reset.
V_LEAK, V_TH, V_RESET = 0.1, 1.0, -0.2
P = LIFParameters(
    tau_syn_inv=torch.tensor(200.0, dtype=F64),
    tau_mem_inv=torch.tensor(100.0, dtype=F64),
    v_leak=torch.tensor(V_LEAK, dtype=F64),
    v_th=torch.tensor(V_TH, dtype=F64),
    v_reset=torch.tensor(V_RESET, dtype=F64),
)
A, B = 0.1, 0.2
# The defaults (v_leak = v_reset = 0), in float64.
P0 = LIFParameters(
    **{
        k: torch.tensor(v, dtype=F64)
        for k, v in {
            "tau_syn_inv": 200.0,
            "tau_mem_inv": 100.0,
            "v_leak": 0.0,
            "v_th": 1.0,
            "v_reset": 0.0,
        }.items()
    }
)


# --- the ordinary forward and the relaxed system ------------------------------------------------


def _ordinary(x, v, i, z=None, w_in=None, w_rec=None):
    """Spikes of the ordinary step functions (the pattern every perturbation must keep)."""
    spikes = []
    state = LIFFeedForwardState(v, i) if w_in is None else LIFState(z, v, i)
    for x_t in x:
        if w_in is None:
            out, state = lif_feed_forward_step(x_t, state, P, DT)
        else:
            current = x_t @ w_in.T + state.z @ w_rec.T
            out, state = lif_recurrent_step(current, state, P, DT)
        spikes.append(out)
    return torch.stack(spikes)


def _relaxed(pattern, theta0, x, v, i, z=None, w_in=None, w_rec=None):
    """(ẑ, v_T, i_T, θ) of the relaxed system; ``theta0=None`` runs the base point (δ = 0)."""
    steps = x.shape[0]
    out = torch.zeros((steps + 1, *pattern.shape[1:]), dtype=F64)  # row T: outside the window
    thetas = torch.zeros_like(pattern)
    for t in range(steps):
        current = x[t] if w_in is None else x[t] @ w_in.T + (z if t == 0 else out[t - 1]) @ w_rec.T
        i1 = i + current
        v1 = v + A * ((V_LEAK - v) + i1)
        i = i1 - B * i1
        spike = pattern[t].bool()
        crossing = spike & (v < V_TH)
        theta = torch.where(crossing, (V_TH - v) / (v1 - v), 0.0)
        shift = theta - theta0[t] if theta0 is not None else torch.zeros_like(theta)
        shift = torch.where(crossing, shift, 0.0)
        out[t] += pattern[t] - shift
        out[t + 1] += shift
        v = torch.where(spike, V_RESET - A * ((V_LEAK - V_RESET) + i1) * shift, v1)
        thetas[t] = theta
    return out[:steps], v, i, thetas


def _loss(spikes, v, i, w_out, target):
    """Leaky-integrator readout of ``spikes @ w_outᵀ``, squared error, plus final-state terms."""
    r_i = torch.zeros(spikes.shape[1], w_out.shape[0], dtype=F64)
    r_v = torch.zeros_like(r_i)
    loss = 0.0
    for t in range(spikes.shape[0]):
        r_i = r_i + spikes[t] @ w_out.T
        r_v = r_v + 0.05 * (r_i - r_v)
        r_i = 0.9 * r_i
        loss = loss + ((r_v - target[t]) ** 2).sum()
    return (
        loss + 0.7 * v.sum() + 0.3 * i.sum() + 0.5 * (spikes[-1] * torch.arange(v.shape[-1])).sum()
    )


def _finite_differences(f, tensors, pattern, ordinary_args, eps=1e-6, skip=None):
    """Central differences of ``f(tensors)`` for every element, checking the spike pattern."""
    grads = []
    for k, tensor in enumerate(tensors):
        grad = torch.zeros_like(tensor)
        for index in range(tensor.numel()):
            if skip is not None and skip(k, index):
                continue
            values = []
            for sign in (1.0, -1.0):
                moved = [t.clone() for t in tensors]
                moved[k].view(-1)[index] += sign * eps
                assert torch.equal(_ordinary(*ordinary_args(moved)), pattern), "spikes changed"
                values.append(f(moved))
            grad.view(-1)[index] = (values[0] - values[1]) / (2 * eps)
        grads.append(grad)
    return grads


def _check(leaves, expected, names, what):
    for leaf, reference, name in zip(leaves, expected, names, strict=True):
        error = ((leaf.grad - reference).norm() / reference.norm()).item()
        print(f"{what} d/d{name}: relative error {error:.1e} (|fd| = {reference.norm():.3g})")
        assert reference.norm() > 1.0
        assert error < 1e-6


# --- finite differences --------------------------------------------------------------------------


def test_layer_gradients_match_finite_differences_of_the_relaxed_loss() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(30, 2, 3, generator=g, dtype=F64) * 1.2
    v0 = torch.rand(2, 3, generator=g, dtype=F64) * 0.5
    i0 = torch.rand(2, 3, generator=g, dtype=F64)
    w_out = torch.randn(2, 3, generator=g, dtype=F64)
    target = torch.randn(30, 2, 2, generator=g, dtype=F64) * 0.1

    leaves = [t.clone().requires_grad_(True) for t in (x, v0, i0)]
    spikes, final = lif_adjoint_layer(leaves[0], LIFFeedForwardState(*leaves[1:]), P, DT)
    _loss(spikes, final.v, final.i, w_out, target).backward()

    pattern = _ordinary(x, v0, i0)
    assert torch.equal(spikes, pattern) and pattern.sum() >= 20
    *_, theta0 = _relaxed(pattern, None, x, v0, i0)
    assert ((theta0 > 0) & (theta0 < 1)).sum() == pattern.sum()  # every spike has a crossing

    def relaxed_loss(t):
        out, v, i, _ = _relaxed(pattern, theta0, *t)
        return _loss(out, v, i, w_out, target)

    expected = _finite_differences(relaxed_loss, [x, v0, i0], pattern, lambda t: t)
    _check(leaves, expected, ["x", "v0", "i0"], "LIF layer")


def test_recurrent_gradients_match_finite_differences_of_the_relaxed_loss() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(30, 2, 3, generator=g, dtype=F64)
    z0 = (torch.rand(2, 4, generator=g, dtype=F64) > 0.5).to(F64)
    v0 = torch.rand(2, 4, generator=g, dtype=F64) * 0.5
    i0 = torch.rand(2, 4, generator=g, dtype=F64)
    w_in = torch.rand(4, 3, generator=g, dtype=F64) * 0.8
    w_rec = (torch.randn(4, 4, generator=g, dtype=F64) * 0.3).fill_diagonal_(0.0)
    w_out = torch.randn(2, 4, generator=g, dtype=F64)
    target = torch.randn(30, 2, 2, generator=g, dtype=F64) * 0.1
    tensors = [x, z0, v0, i0, w_in, w_rec]

    leaves = [t.clone().requires_grad_(True) for t in tensors]
    state = LIFState(*leaves[1:4])
    spikes, final = lif_adjoint_recurrent(leaves[0], state, P, DT, leaves[4], leaves[5])
    assert torch.equal(final.z, spikes[-1])
    _loss(spikes, final.v, final.i, w_out, target).backward()

    def order(t):  # (x, z, v, i, w_in, w_rec) for _ordinary and _relaxed
        return t[0], t[2], t[3], t[1], t[4], t[5]

    pattern = _ordinary(*order(tensors))
    assert torch.equal(spikes, pattern) and pattern.sum() >= 20
    *_, theta0 = _relaxed(pattern, None, *order(tensors))

    def relaxed_loss(t):
        out, v, i, _ = _relaxed(pattern, theta0, *order(t))
        return _loss(out, v, i, w_out, target)

    def diagonal(k, index):  # W_rec's diagonal stays 0 (no autapses)
        return k == 5 and index % 5 == 0

    expected = _finite_differences(relaxed_loss, tensors, pattern, order, skip=diagonal)
    leaves[5].grad.fill_diagonal_(0.0)
    _check(leaves, expected, ["x", "z0", "v0", "i0", "W_in", "W_rec"], "LIF recurrent")


# --- hand-worked -----------------------------------------------------------------------------------


def _one_spike(x0: float, loss):
    """One neuron, two steps, from v = 0.95, i = 0 with inputs (x0, 0) and default parameters."""
    x = torch.tensor([[[x0]], [[0.0]]], dtype=F64, requires_grad=True)
    v0 = torch.full((1, 1), 0.95, dtype=F64, requires_grad=True)
    spikes, final = lif_adjoint_layer(x, LIFFeedForwardState(v0, torch.zeros_like(v0)), P0, DT)
    loss(spikes, final).backward()
    return spikes, x.grad, v0.grad


def _rest_at(v: float) -> LIFFeedForwardState:
    return LIFFeedForwardState(torch.full((1, 1), v, dtype=F64), torch.zeros((1, 1), dtype=F64))


def test_hand_worked_spike_time_gradient() -> None:
    # Step 0: i1 = 2, v1 = 0.95 + 0.1·(−0.95 + 2) = 1.055 > 1: a spike.  Step 1: i = 1.6,
    # v1 = 0 + 0.1·1.6 = 0.16: none.  θ = (1 − v0)/(a·(x0 − v0)) = 0.05/0.105 = 0.476190...
    # L = ẑ_0 = 1 − δθ, so ∂L/∂x0 = −∂θ/∂x0 = (1 − v0)/(a·(x0 − v0)²) = 0.05/0.11025,
    # ∂L/∂v0 = −∂θ/∂v0 = ((x0 − v0) − (1 − v0))/(a·(x0 − v0)²) = 1/0.11025.
    spikes, grad_x, grad_v0 = _one_spike(2.0, lambda s, f: s[0].sum())
    assert spikes.flatten().tolist() == [1.0, 0.0]
    assert_close(grad_x.flatten(), torch.tensor([0.05 / 0.11025, 0.0], dtype=F64))
    assert_close(grad_v0.flatten(), torch.tensor([1 / 0.11025], dtype=F64))
    # Surrogate BPTT (super, alpha = 100) gives ∂z0/∂x0 = a/(100·0.055 + 1)² = 0.1/42.25 instead:
    x = torch.tensor([[[2.0]], [[0.0]]], dtype=F64, requires_grad=True)
    z, _ = LIF(P0)(x, _rest_at(0.95))
    z[0].sum().backward()
    assert_close(x.grad[0].flatten(), torch.tensor([0.1 / 42.25], dtype=F64))


def test_hand_worked_reset_time_gradient() -> None:
    # L = v after step 1.  v_1 = v_reset − D⁺·δθ with D⁺ = a·(0 − 0 + i1) = 0.2, then
    # v_2 = 0.9·v_1 + 0.1·(i_1 + x_1) with i_1 = 0.8·x0.  ∂L/∂x0 = 0.1·0.8 (current)
    # + 0.9·(−0.2)·∂θ/∂x0 = 0.08 + 0.18·0.05/0.11025 (the later reset leaves v lower).
    spikes, grad_x, _ = _one_spike(2.0, lambda s, f: f.v.sum())
    assert spikes.flatten().tolist() == [1.0, 0.0]
    assert_close(grad_x.flatten(), torch.tensor([0.08 + 0.18 * 0.05 / 0.11025, 0.1], dtype=F64))


def test_silent_neuron_gets_no_adjoint_gradient_but_a_surrogate_one() -> None:
    # x0 = 1: v1 = 0.95 + 0.1·0.05 = 0.955 < 1, no spike: a loss of the spikes alone gives no
    # adjoint gradient (no event to move), while the surrogate's σ'(−0.045) is not 0.
    spikes, grad_x, grad_v0 = _one_spike(1.0, lambda s, f: s.sum())
    assert spikes.sum() == 0 and grad_x.abs().sum() == 0 and grad_v0.abs().sum() == 0
    x = torch.tensor([[[1.0]], [[0.0]]], dtype=F64, requires_grad=True)
    z, _ = LIF(P0)(x, _rest_at(0.95))
    z.sum().backward()
    assert x.grad[0].abs().sum() > 0


# --- the forward pass, the modules and errors -----------------------------------------------------


def test_forward_equals_the_ordinary_layer_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(3)
    p = LIFParameters(v_th=torch.linspace(0.8, 1.2, 16), tau_mem_inv=torch.linspace(80, 120, 16))
    x = torch.rand(1000, 4, 16, generator=g) * 3.0
    spikes, final = LIF(p, adjoint=True)(x)
    spikes_ref, final_ref = LIF(p)(x)
    assert spikes_ref.sum() > 1000
    assert torch.equal(spikes, spikes_ref)
    assert torch.equal(final.v, final_ref.v) and torch.equal(final.i, final_ref.i)


def test_recurrent_forward_equals_the_ordinary_layer_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(1000, 4, 8, generator=g) < 0.3).float()
    torch.manual_seed(0)
    ordinary = LIFRecurrent(8, 16, backend="torch")  # the eager loop, same summation order
    adjoint = LIFRecurrent(8, 16, adjoint=True)
    adjoint.load_state_dict(ordinary.state_dict())
    spikes, final = adjoint(x)
    spikes_ref, final_ref = ordinary(x)
    assert spikes_ref.sum() > 1000
    assert torch.equal(spikes, spikes_ref)
    for field, value in final._asdict().items():
        assert torch.equal(value, getattr(final_ref, field)), field


def test_module_gradients_reach_input_state_and_weights() -> None:
    layer = LIFRecurrent(3, 5, adjoint=True)
    x = torch.rand(50, 2, 3, requires_grad=True)
    spikes, final = layer(x)
    (spikes.sum() + final.v.sum()).backward()
    assert x.grad is not None and layer.input_weights.grad is not None
    assert layer.recurrent_weights.grad.diagonal().abs().sum() == 0  # no autapses


def test_errors_and_empty_sequence() -> None:
    with pytest.raises(ValueError, match=r"learnable parameters \['tau_mem_inv'\].*adjoint=False"):
        LIF(adjoint=True, learnable=["tau_mem_inv"])(torch.ones(3, 1, 2))
    with pytest.raises(ValueError, match="record_states"):
        LIF(adjoint=True, record_states=True)
    spikes, final = LIF(adjoint=True)(torch.ones(0, 2, 3))
    assert spikes.shape == (0, 2, 3) and torch.equal(final.v, torch.zeros(2, 3))
