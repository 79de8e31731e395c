"""Both tasks' networks give the same loss and gradients with ``--backend fused`` as with
``torch`` (float64: the generated recurrent kernels add the recurrent current in another order
than PyTorch's matrix product, so agreement is to rounding, 1e-10), with the layers and the
recurrent lif/lsnn layers through the kernels generated from their steps."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from snn_tasks.memory import MemoryNet
from snn_tasks.memory_data import StoreRecallDataset
from snn_tasks.mnist import LIFConvNet

import snncore


def _loss_and_gradients(module: torch.nn.Module, loss: Any) -> tuple[float, list[torch.Tensor]]:
    module.zero_grad()
    value = loss(module)
    value.backward()
    return value.item(), [p.grad.clone() for p in module.parameters() if p.grad is not None]


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The generated kernels that ran a call (not declined it): ``"MODEL generated"`` for a
    layer, ``"MODEL recurrent"`` for a recurrent layer."""
    from snn_backend_fused.compiler import kernel as generated

    calls: list[str] = []
    run_layer, run_recurrent = generated.run_layer, generated.run_recurrent

    def spy_layer(model: Any, *args: Any) -> Any:
        result = run_layer(model, *args)
        if not isinstance(result, str):
            calls.append(f"{model.name} generated")
        return result

    def spy_recurrent(model: Any, *args: Any) -> Any:
        result = run_recurrent(model, *args)
        if not isinstance(result, str):
            calls.append(f"{model.name} recurrent")
        return result

    monkeypatch.setattr(generated, "run_layer", spy_layer)
    monkeypatch.setattr(generated, "run_recurrent", spy_recurrent)
    return calls


def _assert_same(pair: list[torch.nn.Module], loss: Any) -> None:
    pair[1].load_state_dict(pair[0].state_dict())
    (fused_loss, fused_grads), (torch_loss, torch_grads) = (
        _loss_and_gradients(m, loss) for m in pair
    )
    assert fused_loss == pytest.approx(torch_loss, rel=1e-10)
    assert len(fused_grads) == len(torch_grads) > 0
    for fused, reference in zip(fused_grads, torch_grads, strict=True):
        scale = float(reference.abs().max())
        torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize(
    "adaptation_gradient", [True, False], ids=["adaptation-gradient", "reference-lsnn"]
)
def test_memory_net_with_fused_agrees_with_torch(
    adaptation_gradient: bool, kernel_calls: list[str]
) -> None:
    data = StoreRecallDataset(4, periods=4, period_length=50, seed=2)
    x = torch.stack([data[i][0] for i in range(4)], dim=1).double()  # (T, B, inputs)
    targets = torch.stack([data[i][1] for i in range(4)])
    torch.manual_seed(0)
    pair = [
        MemoryNet(period_length=50, adaptation_gradient=adaptation_gradient, backend=b).double()
        for b in ("fused", "torch")
    ]
    lif, lsnn = pair[0].net.lif, pair[0].net.lsnn
    fused = snncore.get_backend("fused")
    cpu = torch.device("cpu")
    assert fused.route(lif.model, "recurrent", cpu, torch.float64).name == "generated"
    # the adaptation-gradient LSNN has its own step: generated from it all the same
    assert fused.route(lsnn.model, "recurrent", cpu, torch.float64).name == "generated"
    _assert_same(pair, lambda m: m._recall((x, targets))[0])
    assert set(kernel_calls) == {"lif recurrent", f"{lsnn.model.name} recurrent", "li generated"}


def test_mnist_net_with_fused_agrees_with_torch(kernel_calls: list[str]) -> None:
    images = torch.rand(
        3, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    labels = torch.tensor([3, 1, 7])
    torch.manual_seed(0)
    pair = [
        LIFConvNet(784, 4, 1e-3, input_scale=5.0, backend=b).double() for b in ("fused", "torch")
    ]
    _assert_same(pair, lambda m: torch.nn.functional.nll_loss(m(images), labels))
    assert kernel_calls == ["lif generated"] * 3 + ["li generated"]
