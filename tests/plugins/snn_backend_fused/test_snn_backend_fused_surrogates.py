"""Every surrogate of MODELS.md, and the alias ``fast_sigmoid``, through the fused backend's
layers (the kernels generated from the models' steps, the surrogate's derivative traced with
them): each gives the eager backend's gradients (float64, within 1e-10 of the largest).  A
surrogate a third party registers runs through the generated kernel too (and through the
generated recurrent kernel: test_snn_backend_fused_recurrent.py)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import snncore

# Sharpness values at which 200 steps of BPTT stay finite and the gradient is not all zero.
SURROGATES = {
    "super": 100.0,
    "fast_sigmoid": 100.0,
    "heaviside": 100.0,
    "triangle": 0.3,
    "tanh": 2.0,
    "circ": 2.0,
    "heavi_erfc": 2.0,
    "logistic": 4.0,
    "atan": 2.0,
}


def _layer(name: str, method: str, alpha: float, backend: str) -> Any:
    if name == "lif_refrac":
        from snn_lif import LIFParameters
        from snn_refrac import LIFRefracParameters

        p = LIFRefracParameters(lif=LIFParameters(method=method, alpha=alpha))
        return snncore.create(name, variant="layer", backend=backend, p=p).double()
    return snncore.create(name, variant="layer", backend=backend, method=method, alpha=alpha)


def _gradient(layer: Any, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out, state = layer.double()(x)
    leaves = [leaf for leaf in torch.utils._pytree.tree_leaves(state)]
    ((out * weights).sum() + sum(leaf.sum() for leaf in leaves)).backward()
    assert x.grad is not None
    return x.grad


@pytest.fixture
def generated_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the models whose layer calls the generated kernel ran (not declined)."""
    from snn_backend_fused.compiler import kernel as generated

    calls: list[str] = []
    run_layer = generated.run_layer

    def spy(model: Any, *args: Any) -> Any:
        result = run_layer(model, *args)
        if not isinstance(result, str):
            calls.append(model.name)
        return result

    monkeypatch.setattr(generated, "run_layer", spy)
    return calls


@pytest.mark.parametrize("method", list(SURROGATES))
@pytest.mark.parametrize("name", ["lif", "lsnn", "lif_ex", "lif_adex", "lif_refrac"])
def test_every_surrogate_matches_eager(
    library: Any, generated_runs: list[str], name: str, method: str
) -> None:
    alpha = SURROGATES[method]
    generator = torch.Generator().manual_seed(5)
    x = 3.0 * torch.rand(200, 2, 16, generator=generator, dtype=torch.float64)
    weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    grad = _gradient(_layer(name, method, alpha, "fused"), x, weights)
    grad_ref = _gradient(_layer(name, method, alpha, "torch"), x, weights)
    assert generated_runs == [name]  # the generated kernel ran, not the eager fallback
    scale = float(grad_ref.abs().max())
    assert scale > 0 and bool(grad_ref.isfinite().all())
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-10 * scale)


def _mine(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return 1.0 / (1.0 + (alpha * x).abs())


def test_third_party_surrogate_runs_through_the_generated_kernel(
    library: Any, fresh_manager: Any, generated_runs: list[str]
) -> None:
    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        register(snncore.Surrogate("mine-fused-test", _mine))

    snncore.register_plugin(
        SimpleNamespace(register_surrogates=register_surrogates), name="snn-mine-fused-test"
    )
    x = 3.0 * torch.rand(50, 2, 4, dtype=torch.float64)
    weights = torch.randn(x.shape, dtype=torch.float64)
    grad = _gradient(_layer("lif", "mine-fused-test", 3.0, "fused"), x, weights)
    assert generated_runs == ["lif"]
    grad_ref = _gradient(_layer("lif", "mine-fused-test", 3.0, "torch"), x, weights)
    scale = float(grad_ref.abs().max())
    assert scale > 0
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-10 * scale)
    assert not torch.equal(grad, _gradient(_layer("lif", "super", 3.0, "fused"), x, weights))
