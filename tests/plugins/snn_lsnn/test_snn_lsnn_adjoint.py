"""LSNN with ``adjoint=True``: the forward pass equals the ordinary one bit for bit, and the
gradients are those of the relaxed system of docs/models-adjoint.md, checked by central finite
differences of a smooth loss (LSNN → leaky-integrator readout → squared error) in float64.

The relaxed system is written here again from its definition (no code shared with
``snn_lsnn.adjoint``): the spike pattern is held at the base point's; a spike crosses at
``(t + θ)·dt`` with ``θ = −d_t/(d1_t − d_t)``, ``d = v − b`` the distance to the adaptive
threshold; moving ``θ`` by ``δ`` from its base value resets ``v`` to ``v_reset − D⁺·δ``
(``D⁺ = a·((v_leak − v_reset) + i_t)``), leaves the threshold at ``b1 + beta + e·beta·δ`` and
moves ``δ`` of the spike from step ``t`` to ``t+1``.  Every finite difference also checks that the
ordinary forward's spikes did not change.
"""

from __future__ import annotations

import pytest
import torch
from snn_lsnn import LSNN, LSNNFeedForwardState, LSNNParameters, LSNNRecurrent, LSNNState
from snn_lsnn.adjoint import lsnn_adjoint_layer, lsnn_adjoint_recurrent
from snn_lsnn.functional import lsnn_feed_forward_step, lsnn_recurrent_step
from torch.testing import assert_close

F64 = torch.float64
DT = 0.001


def _parameters(**values: float) -> LSNNParameters:
    return LSNNParameters(**{k: torch.tensor(v, dtype=F64) for k, v in values.items()})


# a = dt·tau_mem_inv = 0.1, c = dt·tau_syn_inv = 0.2, e = dt·tau_adapt_inv = 0.05: a threshold
# that moves within the sequence, so its terms matter.
V_LEAK, V_TH, V_RESET, BETA = 0.1, 1.0, -0.2, 0.3
A, C, E = 0.1, 0.2, 0.05
P = _parameters(
    tau_syn_inv=200.0,
    tau_mem_inv=100.0,
    tau_adapt_inv=50.0,
    v_leak=V_LEAK,
    v_th=V_TH,
    v_reset=V_RESET,
    beta=BETA,
)


def _ordinary(x, v, i, b, z=None, w_in=None, w_rec=None):
    spikes = []
    state = LSNNFeedForwardState(v, i, b) if w_in is None else LSNNState(z, v, i, b)
    for x_t in x:
        if w_in is None:
            out, state = lsnn_feed_forward_step(x_t, state, P, DT)
        else:
            current = x_t @ w_in.T + state.z @ w_rec.T
            out, state = lsnn_recurrent_step(current, state, P, DT)
        spikes.append(out)
    return torch.stack(spikes)


def _relaxed(pattern, theta0, x, v, i, b, z=None, w_in=None, w_rec=None):
    """(ẑ, v_T, i_T, b_T, θ) of the relaxed system; ``theta0=None`` runs the base point."""
    steps = x.shape[0]
    out = torch.zeros((steps + 1, *pattern.shape[1:]), dtype=F64)  # row T: outside the window
    thetas = torch.zeros_like(pattern)
    for t in range(steps):
        current = x[t] if w_in is None else x[t] @ w_in.T + (z if t == 0 else out[t - 1]) @ w_rec.T
        v1 = v + A * ((V_LEAK - v) + i)
        b1 = b + E * (V_TH - b)
        spike = pattern[t].bool()
        crossing = spike & (v < b)
        theta = torch.where(crossing, (b - v) / ((v1 - b1) - (v - b)), 0.0)
        shift = theta - theta0[t] if theta0 is not None else torch.zeros_like(theta)
        shift = torch.where(crossing, shift, 0.0)
        out[t] += pattern[t] - shift
        out[t + 1] += shift
        v = torch.where(spike, V_RESET - A * ((V_LEAK - V_RESET) + i) * shift, v1)
        b = torch.where(spike, b1 + BETA + E * BETA * shift, b1)
        i = i - C * i + current
        thetas[t] = theta
    return out[:steps], v, i, b, thetas


def _loss(spikes, v, i, b, w_out, target):
    """Leaky-integrator readout of ``spikes @ w_outᵀ``, squared error, plus final-state terms."""
    r_i = torch.zeros(spikes.shape[1], w_out.shape[0], dtype=F64)
    r_v = torch.zeros_like(r_i)
    loss = 0.0
    for t in range(spikes.shape[0]):
        r_i = r_i + spikes[t] @ w_out.T
        r_v = r_v + 0.05 * (r_i - r_v)
        r_i = 0.9 * r_i
        loss = loss + ((r_v - target[t]) ** 2).sum()
    final_z = (spikes[-1] * torch.arange(v.shape[-1])).sum()
    return loss + 0.7 * v.sum() + 0.3 * i.sum() + 1.3 * b.sum() + 0.5 * final_z


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


def test_layer_gradients_match_finite_differences_of_the_relaxed_loss() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, 2, 3, generator=g, dtype=F64) * 0.8
    v0 = torch.rand(2, 3, generator=g, dtype=F64) * 0.5
    i0 = torch.rand(2, 3, generator=g, dtype=F64)
    b0 = 1.0 + torch.rand(2, 3, generator=g, dtype=F64) * 0.3
    w_out = torch.randn(2, 3, generator=g, dtype=F64)
    target = torch.randn(40, 2, 2, generator=g, dtype=F64) * 0.1
    tensors = [x, v0, i0, b0]

    leaves = [t.clone().requires_grad_(True) for t in tensors]
    spikes, final = lsnn_adjoint_layer(leaves[0], LSNNFeedForwardState(*leaves[1:]), P, DT)
    _loss(spikes, *final, w_out, target).backward()

    pattern = _ordinary(*tensors)
    assert torch.equal(spikes, pattern) and pattern.sum() >= 15
    *_, theta0 = _relaxed(pattern, None, *tensors)
    assert ((theta0 > 0) & (theta0 < 1)).sum() == pattern.sum()  # every spike has a crossing

    def relaxed_loss(t):
        out, v, i, b, _ = _relaxed(pattern, theta0, *t)
        return _loss(out, v, i, b, w_out, target)

    expected = _finite_differences(relaxed_loss, tensors, pattern, lambda t: t)
    _check(leaves, expected, ["x", "v0", "i0", "b0"], "LSNN layer")


def test_recurrent_gradients_match_finite_differences_of_the_relaxed_loss() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(30, 2, 3, generator=g, dtype=F64)
    z0 = (torch.rand(2, 4, generator=g, dtype=F64) > 0.5).to(F64)
    v0 = torch.rand(2, 4, generator=g, dtype=F64) * 0.5
    i0 = torch.rand(2, 4, generator=g, dtype=F64)
    b0 = 1.0 + torch.rand(2, 4, generator=g, dtype=F64) * 0.3
    w_in = torch.rand(4, 3, generator=g, dtype=F64) * 0.8
    w_rec = (torch.randn(4, 4, generator=g, dtype=F64) * 0.3).fill_diagonal_(0.0)
    w_out = torch.randn(2, 4, generator=g, dtype=F64)
    target = torch.randn(30, 2, 2, generator=g, dtype=F64) * 0.1
    tensors = [x, z0, v0, i0, b0, w_in, w_rec]

    leaves = [t.clone().requires_grad_(True) for t in tensors]
    state = LSNNState(*leaves[1:5])
    spikes, final = lsnn_adjoint_recurrent(leaves[0], state, P, DT, leaves[5], leaves[6])
    assert torch.equal(final.z, spikes[-1])
    _loss(spikes, final.v, final.i, final.b, w_out, target).backward()

    def order(t):  # (x, z, v, i, b, w_in, w_rec) -> (x, v, i, b, z, w_in, w_rec)
        return t[0], t[2], t[3], t[4], t[1], t[5], t[6]

    pattern = _ordinary(*order(tensors))
    assert torch.equal(spikes, pattern) and pattern.sum() >= 20
    *_, theta0 = _relaxed(pattern, None, *order(tensors))

    def relaxed_loss(t):
        out, v, i, b, _ = _relaxed(pattern, theta0, *order(t))
        return _loss(out, v, i, b, w_out, target)

    def diagonal(k, index):  # W_rec's diagonal stays 0 (no autapses)
        return k == 6 and index % 5 == 0

    expected = _finite_differences(relaxed_loss, tensors, pattern, order, skip=diagonal)
    leaves[6].grad.fill_diagonal_(0.0)
    names = ["x", "z0", "v0", "i0", "b0", "W_in", "W_rec"]
    _check(leaves, expected, names, "LSNN recurrent")


# --- hand-worked -----------------------------------------------------------------------------------

# Defaults (v_leak = v_reset = 0, v_th = 1, beta = 1.8) but tau_adapt_inv = 50: e = 0.05.
P1 = _parameters(
    tau_syn_inv=200.0,
    tau_mem_inv=100.0,
    tau_adapt_inv=50.0,
    v_leak=0.0,
    v_th=1.0,
    v_reset=0.0,
    beta=1.8,
)


def _one_spike(steps: int, loss):
    """One neuron from v = 0.95, i = 2, b = 1 with zero input."""
    x = torch.zeros((steps, 1, 1), dtype=F64, requires_grad=True)
    state = [torch.full((1, 1), value, dtype=F64, requires_grad=True) for value in (0.95, 2.0, 1.0)]
    spikes, final = lsnn_adjoint_layer(x, LSNNFeedForwardState(*state), P1, DT)
    loss(spikes, final).backward()
    return spikes, x.grad, *(s.grad for s in state)


def test_hand_worked_spike_time_gradient() -> None:
    # Step 0: v1 = 0.95 + 0.1·(−0.95 + 2) = 1.055, b1 = 1 + 0.05·(1 − 1) = 1: a spike, and
    # step 1 (v = 0, i = 1.6, b = 2.8) none.  With d = v − b, D⁻ = a·(i0 − v0) − e·(v_th − b0)
    # = 0.105 and θ = (b0 − v0)/D⁻.  L = ẑ_0 = 1 − δθ:
    #   ∂L/∂i0 = (b0 − v0)·a/D⁻² = 0.005/0.011025
    #   ∂L/∂v0 = (D⁻ − (b0 − v0)·a)/D⁻² = (0.105 − 0.005)/0.011025
    #   ∂L/∂b0 = −[D⁻ − (b0 − v0)·e]/D⁻² = −(0.105 − 0.0025)/0.011025
    # and the inputs none: x_0 joins the current after the voltage update, and moves no spike.
    spikes, grad_x, grad_v, grad_i, grad_b = _one_spike(2, lambda s, f: s[0].sum())
    assert spikes.flatten().tolist() == [1.0, 0.0]
    assert grad_x.abs().sum() == 0
    assert_close(grad_i.flatten(), torch.tensor([0.005 / 0.011025], dtype=F64))
    assert_close(grad_v.flatten(), torch.tensor([0.1 / 0.011025], dtype=F64))
    assert_close(grad_b.flatten(), torch.tensor([-0.1025 / 0.011025], dtype=F64))


def test_hand_worked_threshold_jump_gradient() -> None:
    # T = 1, L = final b = b1 + beta + e·beta·δθ with b1 = (1 − e)·b0 + e·v_th:
    #   ∂L/∂i0 = e·beta·∂θ/∂i0 = −0.09·0.005/0.011025
    #   ∂L/∂b0 = (1 − e) + e·beta·∂θ/∂b0 = 0.95 + 0.09·0.1025/0.011025
    # and ∂L/∂x_0 = 0 (x_0 reaches only i).
    spikes, grad_x, _, grad_i, grad_b = _one_spike(1, lambda s, f: f.b.sum())
    assert spikes.flatten().tolist() == [1.0]
    assert grad_x.abs().sum() == 0
    assert_close(grad_i.flatten(), torch.tensor([-0.09 * 0.005 / 0.011025], dtype=F64))
    assert_close(grad_b.flatten(), torch.tensor([0.95 + 0.09 * 0.1025 / 0.011025], dtype=F64))


# --- the forward pass, the modules and errors -----------------------------------------------------


def test_forward_equals_the_ordinary_layer_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(3)
    p = LSNNParameters(v_th=torch.linspace(0.8, 1.2, 16), tau_adapt_inv=20.0, beta=0.2)
    x = torch.rand(1000, 4, 16, generator=g) * 0.6
    spikes, final = LSNN(p, adjoint=True)(x)
    spikes_ref, final_ref = LSNN(p)(x)
    assert spikes_ref.sum() > 1000
    assert torch.equal(spikes, spikes_ref)
    for field, value in final._asdict().items():
        assert torch.equal(value, getattr(final_ref, field)), field


def test_recurrent_forward_equals_the_ordinary_layer_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(1000, 4, 8, generator=g) < 0.3).float()
    torch.manual_seed(0)
    p = LSNNParameters(tau_adapt_inv=20.0, beta=0.2)  # thresholds that come back down
    ordinary = LSNNRecurrent(8, 16, p, backend="torch")  # the eager loop, same summation order
    adjoint = LSNNRecurrent(8, 16, p, adjoint=True)
    adjoint.load_state_dict(ordinary.state_dict())
    spikes, final = adjoint(x)
    spikes_ref, final_ref = ordinary(x)
    assert spikes_ref.sum() > 1000
    assert torch.equal(spikes, spikes_ref)
    for field, value in final._asdict().items():
        assert torch.equal(value, getattr(final_ref, field)), field


def test_errors_and_empty_sequence() -> None:
    with pytest.raises(ValueError, match=r"learnable parameters \['beta'\].*adjoint=False"):
        LSNN(adjoint=True, learnable=["beta"])(torch.ones(3, 1, 2))
    spikes, final = LSNNRecurrent(2, 3, adjoint=True)(torch.ones(0, 4, 2))
    assert spikes.shape == (0, 4, 3) and torch.equal(final.b, torch.ones(4, 3))
