"""Learnable neuron parameters: per layer or per neuron, in the state dict, trained by an
optimiser; the documented example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import snncore

DOC = Path(__file__).resolve().parents[2] / "docs" / "learnable-parameters.md"


def _drive(steps: int = 50, batch: int = 2, neurons: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, neurons, generator=generator) * 2


def test_names_only_keep_the_scalar_as_before() -> None:
    layer = snncore.create("lif", learnable=("tau_mem_inv",))
    assert layer.p_tau_mem_inv.shape == ()
    assert snncore.create("lif", learnable="v_th").p_v_th.shape == ()  # one name as a string


def test_per_layer_is_one_shared_value() -> None:
    layer = snncore.create("lif", learnable={"tau_mem_inv": "per_layer"})
    assert layer.p_tau_mem_inv.shape == () and layer.p_tau_mem_inv.item() == 100.0
    with pytest.raises(ValueError, match="'per_layer' but p holds"):
        snncore.create(
            "lif", tau_mem_inv=torch.tensor([1.0, 2.0]), learnable={"tau_mem_inv": "per_layer"}
        )


def test_per_neuron_is_in_state_dict_and_each_neuron_gets_its_own_gradient() -> None:
    layer = snncore.create("lif", learnable={"tau_mem_inv": "per_neuron"}, features=3)
    assert isinstance(layer.p_tau_mem_inv, torch.nn.Parameter)
    torch.testing.assert_close(layer.state_dict()["p_tau_mem_inv"], torch.full((3,), 100.0))
    assert [n for n, _ in layer.named_parameters()] == ["p_tau_mem_inv"]
    x = _drive() * torch.tensor([0.5, 1.0, 3.0])  # different drive per neuron
    out, state = layer(x)
    (out.sum() + state.v.sum()).backward()
    grad = layer.p_tau_mem_inv.grad
    assert grad is not None and grad.shape == (3,)
    assert len(set(grad.tolist())) == 3  # one gradient per neuron


def test_per_neuron_values_act_like_separate_scalar_layers() -> None:
    taus = [50.0, 100.0, 200.0]
    layer = snncore.create("lif", learnable={"tau_mem_inv": "per_neuron"}, features=3)
    with torch.no_grad():
        layer.p_tau_mem_inv.copy_(torch.tensor(taus))
    x = _drive()
    out, _ = layer(x)
    assert out.sum() > 0
    for k, tau in enumerate(taus):
        single, _ = snncore.create("lif", tau_mem_inv=tau)(x[..., k : k + 1])
        torch.testing.assert_close(out[..., k : k + 1], single, rtol=0, atol=0)


def test_per_neuron_from_a_tensor_in_p_and_explicit_shapes() -> None:
    layer = snncore.create("lif", v_th=torch.tensor([0.5, 1.0]), learnable={"v_th": "per_neuron"})
    torch.testing.assert_close(layer.p_v_th.detach(), torch.tensor([0.5, 1.0]))
    cell = snncore.create("lif", variant="cell", learnable={"v_th": (2, 3)})
    assert cell.p_v_th.shape == (2, 3)
    out, _ = cell(torch.ones(4, 2, 3))
    assert out.shape == (4, 2, 3)
    conv_shaped = snncore.create("lif", learnable={"v_th": "per_neuron"}, features=(4, 5, 5))
    assert conv_shaped.p_v_th.shape == (4, 5, 5)


def test_recurrent_per_neuron_defaults_to_hidden_size() -> None:
    layer = snncore.create(
        "lif", variant="recurrent", input_size=2, hidden_size=5, learnable={"v_th": "per_neuron"}
    )
    assert layer.p_v_th.shape == (5,)
    assert set(layer.state_dict()) == {"input_weights", "recurrent_weights", "p_v_th"}
    out, _ = layer(torch.ones(3, 4, 2))
    assert out.shape == (3, 4, 5)
    cell = snncore.create(
        "lif", variant="recurrent_cell", input_size=2, hidden_size=5, learnable={"v_th": 5}
    )
    assert cell.p_v_th.shape == (5,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learnable": {"tau_mem_inv": "per_neuron"}}, "give features="),
        ({"learnable": {"tau_mem_inv": "per_unit"}}, "expected 'per_layer', 'per_neuron'"),
        ({"learnable": {"tau_mem_inv": "per_neuron"}, "features": 0}, "positive ints"),
        ({"learnable": {"method": "per_layer"}}, "not tensor parameters"),
        (
            {
                "learnable": {"v_th": "per_neuron"},
                "features": 4,
                "v_th": torch.tensor([1.0, 2.0]),
            },
            "does not broadcast",
        ),
    ],
)
def test_bad_learnable_requests_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        snncore.create("lif", **kwargs)


def test_one_optimizer_step_moves_the_parameter_by_lr_times_gradient() -> None:
    layer = snncore.create("lif", learnable={"v_th": "per_neuron"}, features=3)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    out, _ = layer(_drive())
    out.sum().backward()
    grad = layer.p_v_th.grad.clone()
    assert bool((grad < 0).all())  # raising a threshold lowers the spike count
    optimizer.step()
    torch.testing.assert_close(layer.p_v_th.detach(), 1.0 - 0.1 * grad)
    # what the optimiser wrote is what the next call uses
    torch.testing.assert_close(layer.parameters_now().v_th, layer.p_v_th)


def test_per_neuron_checkpoint_round_trip_and_float64() -> None:
    source = snncore.create("lif", learnable={"tau_mem_inv": "per_neuron"}, features=3)
    with torch.no_grad():
        source.p_tau_mem_inv.copy_(torch.tensor([70.0, 80.0, 90.0]))
    target = snncore.create("lif", learnable={"tau_mem_inv": "per_neuron"}, features=3)
    target.load_state_dict(source.state_dict(), strict=True)
    x = _drive()
    torch.testing.assert_close(target(x)[0], source(x)[0], rtol=0, atol=0)
    double = target.double()
    assert double.p_tau_mem_inv.dtype == torch.float64
    assert double(x.double())[0].dtype == torch.float64


def test_training_tau_mem_inv_toward_a_target_rate() -> None:
    """A LIF layer fires at 20 Hz with tau_mem_inv = 30 1/s; training the (one, per-layer)
    tau_mem_inv toward 80 Hz must raise it and lower the loss."""
    torch.manual_seed(0)
    layer = snncore.create("lif", tau_mem_inv=30.0, learnable={"tau_mem_inv": "per_layer"})
    x = torch.full((100, 4, 2), 0.3)
    target = 80.0  # Hz
    optimizer = torch.optim.Adam(layer.parameters(), lr=3.0)
    start = layer.p_tau_mem_inv.item()
    losses, rates = [], []
    for _ in range(40):
        optimizer.zero_grad()
        spikes, _ = layer(x)
        rate = spikes.mean() / layer.dt
        loss = ((rate - target) / 100.0) ** 2
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        rates.append(rate.item())
    end = layer.p_tau_mem_inv.item()
    print(
        f"\ntau_mem_inv {start:.2f} -> {end:.2f} 1/s; rate {rates[0]:.1f} -> {rates[-1]:.1f} Hz "
        f"(target {target}); loss {losses[0]:.4f} -> {losses[-1]:.6f}"
    )
    assert rates[0] == pytest.approx(20.0, abs=1e-3)  # the untrained layer
    assert end > start + 10.0
    assert losses[-1] < 0.1 * losses[0]
    assert rates[-1] == pytest.approx(target, abs=1e-3)  # rates come in 10 Hz steps here


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_documented_examples_run() -> None:
    blocks = [b for b in _python_blocks(DOC.read_text(encoding="utf-8")) if "import snncore" in b]
    assert len(blocks) >= 2 and sum("torch.optim.Adam" in b for b in blocks) == 1
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(DOC), "exec"), namespace)  # our own documentation
        if "torch.optim.Adam" in block:  # the membrane-time-constant example
            learnt = namespace["layer"].p_tau_mem_inv.detach()
            assert learnt[0] == pytest.approx(30.0, abs=2.0)  # already at 20 Hz
            assert learnt[1] > 40.0 and learnt[2] > learnt[1]  # faster membranes fire faster
