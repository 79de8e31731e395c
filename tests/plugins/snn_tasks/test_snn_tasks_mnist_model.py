"""The MNIST network: time folded into the batch equals a step-by-step loop (and the reference's
ConvNet4), input_scale reaches the encoder, only_output trains only the readout, bad input."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import snn_lif
import torch
import torch.nn.functional as F
from snn_tasks.mnist import ConvLIFNet, LIFConvNet
from torch.testing import assert_close

import snncore

T, B = 6, 3


def _spiking_net(seed: int = 0, **kwargs: object) -> tuple[ConvLIFNet, torch.Tensor]:
    """A net whose weights are scaled up so that every layer spikes on random input spikes."""
    torch.manual_seed(seed)
    net = ConvLIFNet(**kwargs)
    with torch.no_grad():
        net.conv1.weight.mul_(8)
        net.fc1.weight.mul_(8)
    x = (torch.rand(T, B, 1, 28, 28) < 0.4).to(torch.get_default_dtype())
    return net, x


def _step_by_step(net: ConvLIFNet, x: torch.Tensor, lif_cell: type, li_cell: type, p: object):
    """The network written as a Python loop over time of per-step cells (the reference's way)."""
    lifs = [lif_cell(p=p(v_th=torch.as_tensor(0.7))), lif_cell(p=p(v_th=torch.as_tensor(0.7)))]
    lifs.append(lif_cell(p=p()))
    readout = li_cell(1024, 10)
    with torch.no_grad():
        readout.input_weights.copy_(net.out.weight)
    states: list = [None] * 4
    voltages, spike_counts = [], [0, 0, 0]
    for t in range(x.shape[0]):
        z, states[0] = lifs[0](net.conv1(x[t]), states[0])
        spike_counts[0] += int(z.sum())
        z, states[1] = lifs[1](10 * net.conv2(F.max_pool2d(z, 2, 2)), states[1])
        spike_counts[1] += int(z.sum())
        z, states[2] = lifs[2](net.fc1(F.max_pool2d(z, 2, 2).flatten(1)), states[2])
        spike_counts[2] += int(z.sum())
        v, states[3] = readout(torch.relu(z) if net.relu_before_readout else z, states[3])
        voltages.append(v)
    assert all(count > 0 for count in spike_counts), spike_counts  # every layer takes part
    return torch.stack(voltages)


@pytest.mark.parametrize(("backend", "relu"), [("torch", False), ("auto", False), ("auto", True)])
def test_folded_time_equals_a_step_by_step_loop_with_gradients(backend: str, relu: bool) -> None:
    net, x = _spiking_net(backend=backend, alpha=10.0, relu_before_readout=relu)

    def params(**kw: object) -> snn_lif.LIFParameters:
        return snn_lif.LIFParameters(method="super", alpha=torch.as_tensor(10.0), **kw)

    expected = _step_by_step(net, x, snn_lif.LIFCell, snn_lif.LILinearCell, params)
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), net.conv2.weight)
    got = net(x)
    (grad_got,) = torch.autograd.grad(got.square().sum(), net.conv2.weight)
    assert got.shape == (T, B, 10)
    assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the weight gradient sums over T·B·positions in another order: float32 round-off
    assert_close(grad_got, grad_expected, rtol=1e-4, atol=1e-5 * float(grad_expected.abs().max()))


def test_voltages_and_gradients_agree_with_the_reference_convnet4() -> None:
    # norse 1.1.0's "super" ignores alpha; "tanh" (1 - tanh²(alpha·x), alpha 100 in ConvNet4)
    # is the same surrogate in both libraries, so the gradients must agree too, once the
    # reference's relu before the readout is switched on.  In float64: tanh's slope at alpha 100
    # amplifies the last-bit differences of two convolution algorithms (which one runs depends
    # on the CPU) beyond any float32 tolerance; in float64 those differences are ~1e-16 and
    # the two libraries agree to 1e-9.  The reference builds its parameters and states in the
    # default dtype, so that is float64 for the whole test.
    norse_models = pytest.importorskip("norse.torch.models.conv")
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _compare_with_convnet4(norse_models)
    finally:
        torch.set_default_dtype(default)


def _compare_with_convnet4(norse_models: Any) -> None:
    net, x = _spiking_net(seed=1, method="tanh", alpha=100.0, relu_before_readout=True)
    reference = norse_models.ConvNet4(method="tanh", dtype=torch.float64)
    with torch.no_grad():
        for name in ("conv1", "conv2", "fc1"):
            getattr(reference, name).load_state_dict(getattr(net, name).state_dict())
        reference.out.input_weights.copy_(net.out.weight)
    for module in reference.modules():  # its parameter records were made at import, in float32
        p = getattr(module, "p", None)
        if isinstance(p, tuple) and hasattr(p, "_fields"):
            module.p = type(p)(*(v.double() if torch.is_tensor(v) else v for v in p))
    got, expected = net(x), reference(x)
    assert got.dtype == expected.dtype == torch.float64
    assert_close(got, expected, rtol=1e-9, atol=1e-12)
    ours = torch.autograd.grad(got.square().sum(), [net.conv2.weight, net.fc1.weight])
    theirs = torch.autograd.grad(
        expected.square().sum(), [reference.conv2.weight, reference.fc1.weight]
    )
    for g, e in zip(ours, theirs, strict=True):
        assert g.abs().max() > 0
        assert_close(g, e, rtol=1e-9, atol=1e-12 * float(e.abs().max()))
    # without the relu the forward pass is the same; the fc layer's silent neurons now pass
    # the readout's gradient on through the surrogate, so conv2's gradient changes
    net.relu_before_readout = False
    assert_close(net(x), expected, rtol=1e-9, atol=1e-12)
    (without_relu,) = torch.autograd.grad(net(x).square().sum(), net.conv2.weight)
    assert (without_relu - ours[0]).abs().max() > 0.01 * ours[0].abs().max()


def test_input_scale_is_applied_before_encoding() -> None:
    # A uniform image of normalised value 1 through the constant-current encoder (tau_mem_inv
    # 100, dt 1e-3, v_th 1, v0 0): v1 = v + 0.1·(I - v).  input_scale 20 -> I = 20: v1 = 2 > 1
    # at every step (v is reset to 0) -> T spikes per pixel.  input_scale 1 -> I = 1: v_t =
    # 1 - 0.9^t < 1, never a spike.  input_scale 0 -> no spikes, the readout stays at 0 and the
    # log-probabilities are uniform, log(1/10).
    image = torch.ones(2, 1, 28, 28)
    counts = {}
    for scale in (20.0, 1.0, 0.0):
        module = LIFConvNet(784, 4, 1e-3, input_scale=scale)
        seen = []
        module.encoder.register_forward_hook(lambda m, i, out, seen=seen: seen.append(out))
        log_p = module(image)
        counts[scale] = int(seen[0].sum())
    assert counts == {20.0: 4 * 2 * 784, 1.0: 0, 0.0: 0}
    assert_close(log_p, torch.full((2, 10), math.log(0.1)))


def test_only_first_spike_uses_the_latency_encoder() -> None:
    # I = 20 spikes at every step (see above); the latency code keeps only step 0's spike.
    module = LIFConvNet(784, 4, 1e-3, input_scale=20.0, only_first_spike=True)
    seen = []
    module.encoder.register_forward_hook(lambda m, i, out: seen.append(out))
    module(torch.ones(2, 784))
    assert seen[0][0].sum() == 2 * 784 and seen[0][1:].sum() == 0


def test_only_output_trains_only_the_readout() -> None:
    torch.manual_seed(0)
    module = LIFConvNet(784, 4, 0.1, input_scale=20.0, only_output=True)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    optimizer = module.configure_optimizers()
    assert [p for group in optimizer.param_groups for p in group["params"]] == [
        module.rsnn.out.weight
    ]
    with torch.no_grad():
        module.rsnn.conv1.weight.mul_(8)
        module.rsnn.fc1.weight.mul_(8)
        before["rsnn.conv1.weight"].mul_(8)
        before["rsnn.fc1.weight"].mul_(8)
    loss = F.nll_loss(module(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    changed = {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"rsnn.out.weight"}
    assert module.rsnn.conv1.weight.grad is None  # no gradient computed for frozen layers


def test_optimizers_and_weight_decay() -> None:
    adam = LIFConvNet(784, 2, 2e-3).configure_optimizers()
    sgd = LIFConvNet(784, 2, 0.5, optimizer="sgd").configure_optimizers()
    assert isinstance(adam, torch.optim.Adam) and isinstance(sgd, torch.optim.SGD)
    assert adam.defaults["lr"] == 2e-3 and sgd.defaults["lr"] == 0.5
    assert adam.defaults["weight_decay"] == 1e-6


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="square image"):
        LIFConvNet(780, 4, 1e-3)
    with pytest.raises(ValueError, match="'adam' or 'sgd'"):
        LIFConvNet(784, 4, 1e-3, optimizer="rmsprop")
    with pytest.raises(snncore.UnknownNameError, match="supr"):
        LIFConvNet(784, 4, 1e-3, model="supr")
    with pytest.raises(ValueError, match="seq_length"):
        LIFConvNet(784, 0, 1e-3)
    with pytest.raises(ValueError, match="positive"):
        LIFConvNet(784, 4, 0.0)
    with pytest.raises(ValueError, match="784 pixels"):
        LIFConvNet(784, 4, 1e-3)(torch.zeros(2, 1, 27, 27))
    with pytest.raises(ValueError, match=r"\(T, B, C, H, W\)"):
        ConvLIFNet()(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="feature_size"):
        ConvLIFNet(feature_size=27)


def test_cosine_schedule_runs_over_the_trainers_steps() -> None:
    module = LIFConvNet(784, 2, 0.004, lr_schedule="cosine")
    assert isinstance(module.configure_optimizers(), torch.optim.Adam)  # no Trainer: no schedule
    module._trainer = SimpleNamespace(estimated_stepping_batches=10)
    config = module.configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    for _ in range(5):
        optimizer.step()
        schedule.step()
    # halfway: lr·(1 + cos(π·5/10))/2 = 0.004·(1 + 0)/2 = 0.002; at the end 0
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.002)
    for _ in range(5):
        optimizer.step()
        schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="'constant' or 'cosine'"):
        LIFConvNet(784, 2, 0.004, lr_schedule="step")


@pytest.mark.parametrize("backend", ["torch", "fused", "auto"])
def test_the_backend_option_reaches_every_neuron_layer(backend: str) -> None:
    net = LIFConvNet(784, 2, 1e-3, backend=backend).rsnn
    assert [layer.backend for layer in (net.lif0, net.lif1, net.lif2, net.li)] == [backend] * 4
    with pytest.raises(snncore.UnknownNameError, match="fused"):
        ConvLIFNet(backend="fusd")
