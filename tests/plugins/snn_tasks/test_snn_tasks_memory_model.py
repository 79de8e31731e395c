"""The memory network (snn_tasks.memory): shapes, readout, prediction, loss, adaptation gradient."""

from __future__ import annotations

import pytest
import torch
from snn_lif import LILinearCell
from snn_tasks.memory import (
    LIReadout,
    LSNNLIFNet,
    MemoryNet,
    adaptation_gradient_model,
    period_means,
)
from torch.testing import assert_close

import snncore

F64 = torch.float64


def spikes(*shape: int, p: float = 0.2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).to(F64)


def test_network_shapes_and_populations():
    net = LSNNLIFNet(20, 10).double()
    x = spikes(30, 4, 20)
    out, (lif_state, lsnn_state) = net(x)
    assert out.shape == (30, 4, 20)
    assert lif_state.v.shape == (4, 10) and lsnn_state.b.shape == (4, 10)
    # the first 10 outputs are the LIF population, the last 10 the LSNN population
    assert_close(out[..., :10], net.lif(x)[0])
    assert_close(out[..., 10:], net.lsnn(x)[0])
    assert net.lif.p.v_th.item() == 0.5 and net.lsnn.p.v_th.item() == 0.5
    assert net.lsnn.p.tau_adapt_inv.item() == pytest.approx(1 / 1.2)
    assert net.lif.recurrent_weights.shape == (10, 10)
    assert net.lsnn.input_weights.shape == (10, 20)


def test_readout_equals_li_linear_cell_stepped_per_time_step():
    readout = LIReadout(20, 2).double()
    cell = LILinearCell(20, 2).double()
    with torch.no_grad():
        cell.input_weights.copy_(readout.input_weights)
    z = spikes(50, 3, 20, p=0.3, seed=1)
    voltages, _ = readout(z)
    state, stepped = None, []
    for z_t in z:
        v, state = cell(z_t, state)
        stepped.append(v)
    assert_close(voltages, torch.stack(stepped), rtol=1e-12, atol=1e-12)


def test_period_means_average_each_period():
    # T = 6 steps, periods of 3: voltages 0..5 for channel 0 and 10·(0..5) for channel 1
    v = torch.arange(6, dtype=F64).reshape(6, 1, 1) * torch.tensor([1.0, 10.0], dtype=F64)
    means = period_means(v, 3)  # (B = 1, P = 2, C = 2)
    # period 0: (0 + 1 + 2) / 3 = 1;  period 1: (3 + 4 + 5) / 3 = 4
    assert_close(means, torch.tensor([[[1.0, 10.0], [4.0, 40.0]]], dtype=F64))
    with pytest.raises(ValueError, match="not a whole number of periods"):
        period_means(v, 4)


def test_prediction_is_the_mean_readout_voltage_over_the_recall_period():
    model = MemoryNet(period_length=5).double()
    x = spikes(12 * 5, 2, 20, p=0.3, seed=2)
    targets = torch.full((2, 12), -1)
    targets[0, 7] = 1  # sample 0 recalls at period 7, sample 1 at period 11
    targets[1, 11] = 0
    voltages = model(x)  # (T, B, 2)
    logits = torch.stack([voltages[35:40, 0].mean(0), voltages[55:60, 1].mean(0)])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0]))
    loss, accuracy, count, hidden, _ = model._recall((x, targets))
    assert_close(loss, expected)
    correct = (logits.argmax(-1) == torch.tensor([1, 0])).double().mean()
    assert accuracy.item() == correct.item()
    assert int(count) == 2 and hidden.shape == (60, 2, 20)


def test_adaptation_gradient_step_equals_lsnn_forward_but_keeps_the_jump_gradient():
    lsnn = snncore.get_model("lsnn")
    ours = adaptation_gradient_model()
    values = {"tau_syn_inv": 200.0, "tau_mem_inv": 100.0, "tau_adapt_inv": 1 / 1.2}
    values.update({"v_leak": 0.0, "v_th": 0.5, "v_reset": 0.0, "beta": 1.8, "alpha": 10.0})
    p = lsnn.parameters(**{k: torch.tensor(x, dtype=F64) for k, x in values.items()})
    dt = 0.001
    # one neuron just above its threshold after the decay, another far below
    v = torch.tensor([0.6, 0.1], dtype=F64, requires_grad=True)
    state = lsnn.state(
        z=torch.zeros(2, dtype=F64), v=v, i=torch.zeros(2, dtype=F64),
        b=torch.full((2,), 0.5, dtype=F64),
    )  # fmt: skip
    current = torch.tensor([0.3, 0.3], dtype=F64)
    z_ref, s_ref = lsnn.recurrent_step(current, state, p, dt)
    z, s = ours.recurrent_step(current, state, p, dt)
    assert_close(z, z_ref)
    for name in ("z", "v", "i", "b"):
        assert_close(getattr(s, name), getattr(s_ref, name))
    # neuron 0: v1 = 0.6 + 0.1·(0 − 0.6 + 0) = 0.54;  b1 = 0.5;  s = 0.04 > 0, z = 1, b' = 2.3
    assert z.tolist() == [1.0, 0.0] and s.b[0].item() == pytest.approx(2.3)
    # ∂b'/∂v = beta · super'(s) · ∂v1/∂v = 1.8 · 1/(10·0.04 + 1)² · 0.9 = 1.62 / 1.96
    (grad,) = torch.autograd.grad(s.b.sum(), v)
    assert grad[0].item() == pytest.approx(1.62 / 1.96, rel=1e-12)
    # neuron 1: v1 = 0.09, s = −0.41: 1.8 · 0.9 / (4.1 + 1)² = 1.62 / 26.01 (surrogate tail)
    assert grad[1].item() == pytest.approx(1.62 / 26.01, rel=1e-12)
    # the registered lsnn step detaches the jump: its b' carries no gradient to v
    assert not s_ref.b.requires_grad and s.b.requires_grad


def test_network_without_adaptation_gradient_uses_the_registered_lsnn():
    net = LSNNLIFNet(20, 10, adaptation_gradient=False)
    assert net.lsnn.model is snncore.get_model("lsnn")
    assert LSNNLIFNet(20, 10).lsnn.model is adaptation_gradient_model()


def test_store_period_spikes_get_gradient_from_a_late_recall_only_with_adaptation_gradient():
    # A loss on the LSNN spikes 150 steps after an input burst: the synapse and the membrane have
    # all but forgotten the burst (0.8^130 ≈ 3e-13, 0.9^130 ≈ 1e-6), the threshold (tau 1.2 s,
    # 0.99917^130 ≈ 0.9) has not.
    x = torch.zeros(200, 1, 20, dtype=F64)
    x[:20, 0, :5] = 1.0
    x[150:, 0, 15:] = 1.0
    grads = {}
    for flag in (True, False):
        torch.manual_seed(0)
        net = LSNNLIFNet(20, 10, adaptation_gradient=flag, backend="torch").double()
        with torch.no_grad():
            net.lsnn.recurrent_weights.zero_()
            net.lsnn.input_weights.abs_()
        out, _ = net(x)
        out[150:, :, 10:].sum().backward()
        grads[flag] = net.lsnn.input_weights.grad[:, :5].abs().sum().item()
    assert grads[True] > 1e-3
    assert grads[False] < 1e-4 * grads[True]


def test_training_batches_are_chained_from_the_previous_batch_state():
    model = MemoryNet(period_length=5, chain=2).double()
    x = spikes(10, 3, 20, p=0.3, seed=3)
    targets = torch.full((3, 2), -1)
    targets[:, 1] = 1
    *_, final = model._recall((x, targets))
    assert model._carried_state(x, 1) is None  # nothing carried yet: from rest
    model._carried = final
    # chain=2: batches 0, 2, 4 ... start from rest, batches 1, 3 ... continue
    assert model._carried_state(x, 0) is None and model._carried_state(x, 2) is None
    assert model._carried_state(x, 1) is final and model._carried_state(x, 3) is final
    assert model._carried_state(x[:, :2], 1) is None  # a batch of another size: from rest
    # continuing from the carried state is running the two batches as one sequence
    both, _ = model.net(torch.cat([x, x]))
    continued, _ = model.net(x, final)
    assert_close(continued, both[10:])
    for chain, continues in ((1, []), (0, [1, 2, 3, 4, 5]), (3, [1, 2, 4, 5])):
        other = MemoryNet(period_length=5, chain=chain)
        other._carried = final
        assert [i for i in range(6) if other._carried_state(x, i) is not None] == continues
