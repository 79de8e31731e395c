"""Every hand-written kernel against the eager ``torch`` backend over T=1000 steps.

Forward: the kernels evaluate each step with the PyTorch step's operations in the same order,
so spikes and states are expected to be equal (float64: spikes equal, states within 1e-10;
float32: at most 1 spike in 10^4 differs -- a threshold tie after an ulp of difference in an
exponential can flip one -- and states within 1e-5 when none does).  Backward: the kernels'
hand-written chain rule against autograd through the eager steps, for a loss that weighs every
output and every final state field, with respect to the input and the initial state; the
gradient is within 1e-10 (float64) / 1e-5 (float32) of the eager one, relative to its largest
magnitude.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.utils._pytree as pytree

import snncore

# model -> (parameter overrides, input scale): firing well (the comparison covers many spikes,
# resets and, for LSNN, threshold jumps) for T=1000 steps.
CASES: dict[str, tuple[dict[str, float], float]] = {
    "lif": ({}, 3.0),
    "li": ({}, 3.0),
    "lsnn": ({"tau_adapt_inv": 20.0, "beta": 0.2}, 3.0),
    "lif_ex": ({}, 3.0),
    "lif_adex": ({}, 3.0),
    "lif_refrac": ({}, 3.0),
}
STEPS, SHAPE = 1000, (3, 40)


def _layers(name: str, dtype: torch.dtype) -> tuple[Any, Any]:
    overrides, _ = CASES[name]
    fused = snncore.create(name, variant="layer", backend="fused", **overrides).to(dtype)
    eager = snncore.create(name, variant="layer", backend="torch", **overrides).to(dtype)
    return fused, eager


def _initial_state(layer: Any, x: torch.Tensor, generator: torch.Generator) -> Any:
    """The model's initial state, perturbed (random voltages and currents) and requiring grad;
    a refractory counter stays an integer number of steps and needs no gradient."""
    state = layer.make_initial_state(layer.parameters_now(), x.shape[1:], x.device, x.dtype)
    leaves, spec = pytree.tree_flatten(state)
    fields = []
    for leaf in leaves:
        noise = torch.rand(leaf.shape, generator=generator, dtype=leaf.dtype)
        fields.append(leaf + 0.5 * noise)
    state = pytree.tree_unflatten(fields, spec)
    if hasattr(state, "rho"):
        rho = torch.randint(0, 6, x.shape[1:], generator=generator).to(x.dtype)
        state = state._replace(rho=rho)
    return state


def _run(layer: Any, x: torch.Tensor, state: Any, weights: torch.Tensor) -> tuple[Any, ...]:
    x = x.detach().requires_grad_(True)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [
        leaf.detach().requires_grad_(leaf.dtype.is_floating_point and not _is_rho(state, k))
        for k, leaf in enumerate(leaves)
    ]
    state = pytree.tree_unflatten(leaves, spec)
    out, final = layer(x, state)
    finals = pytree.tree_leaves(final)
    loss = (out * weights).sum() + sum((2.0 + k) * f.sum() for k, f in enumerate(finals))
    wrt = [x] + [leaf for leaf in leaves if leaf.requires_grad]
    grads = torch.autograd.grad(loss, wrt)
    return out.detach(), [f.detach() for f in finals], grads


def _assert_kernel_runs(layer: Any, x: torch.Tensor, state: Any) -> None:
    """The call takes the hand-written kernel, not the eager fallback."""
    from snn_backend_fused import kernels

    spec = kernels.kernel_for(layer.model, "layer")
    assert spec is not None
    assert kernels.prepare(spec, x, state, layer.parameters_now(), layer.dt) is not None


def _is_rho(state: Any, index: int) -> bool:
    return hasattr(state, "rho") and index == len(pytree.tree_leaves(state)) - 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_kernel_equals_eager_over_1000_steps(library: Any, name: str, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(7)
    _, scale = CASES[name]
    x = scale * torch.rand(STEPS, *SHAPE, generator=generator, dtype=dtype)
    weights = torch.randn(STEPS, *SHAPE, generator=generator, dtype=dtype)
    fused, eager = _layers(name, dtype)
    state = _initial_state(eager, x, generator)
    _assert_kernel_runs(fused, x, state)

    out, finals, grads = _run(fused, x, state, weights)
    out_ref, finals_ref, grads_ref = _run(eager, x, state, weights)

    model = snncore.get_model(name)
    if model.output == "spikes":
        assert 0.02 < out_ref.mean() < 0.9  # many spikes and many silent steps
    flips = int((out != out_ref).sum()) if model.output == "spikes" else 0
    if dtype == torch.float64:
        assert flips == 0
        tolerance = 1e-10
    else:
        assert flips <= out.numel() // 10_000
        tolerance = 1e-5
    if flips:  # after a flip the trajectories part: compare up to the first one
        first = int((out != out_ref).flatten(1).any(1).nonzero()[0])
        assert torch.equal(out[:first], out_ref[:first])
        return
    if model.output == "spikes":
        assert torch.equal(out, out_ref)
    else:
        torch.testing.assert_close(out, out_ref, rtol=tolerance, atol=tolerance)
    for final, final_ref in zip(finals, finals_ref, strict=True):
        torch.testing.assert_close(final, final_ref, rtol=tolerance, atol=tolerance)
    assert len(grads) == len(grads_ref) >= 3  # x and at least two state fields
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        scale_ref = float(grad_ref.abs().max())
        assert scale_ref > 0 and bool(grad_ref.isfinite().all())
        torch.testing.assert_close(grad, grad_ref, rtol=tolerance, atol=tolerance * scale_ref)


@pytest.mark.parametrize("name", ["lif", "lsnn", "lif_adex", "lif_refrac", "li"])
def test_per_neuron_parameters(library: Any, name: str) -> None:
    """One value per neuron (the kernels' per-neuron variant), and a 1-element tensor."""
    generator = torch.Generator().manual_seed(3)
    x = 3.0 * torch.rand(200, 2, 5, generator=generator, dtype=torch.float64)
    spread = torch.linspace(60.0, 140.0, 5, dtype=torch.float64)
    overrides: dict[str, Any] = dict(CASES[name][0])
    if name == "lif_refrac":
        from snn_lif import LIFParameters
        from snn_refrac import LIFRefracParameters

        lif = LIFParameters(tau_mem_inv=spread, v_th=torch.tensor([0.9], dtype=torch.float64))
        overrides["p"] = LIFRefracParameters(lif=lif, rho_reset=torch.tensor([3.0, 4, 5, 2, 1]))
    else:
        overrides["tau_mem_inv"] = spread
    layers = [
        snncore.create(name, variant="layer", backend=b, **overrides).double()
        for b in ("fused", "torch")
    ]
    weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    state = layers[1].make_initial_state(layers[1].parameters_now(), x.shape[1:], x.device, x.dtype)
    _assert_kernel_runs(layers[0], x, state)
    (out, finals, grads), (out_ref, finals_ref, grads_ref) = (
        _run(layer, x, state, weights) for layer in layers
    )
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip([*finals, *grads], [*finals_ref, *grads_ref], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_kernel_is_used_and_threads_do_not_change_the_result(library: Any) -> None:
    """The kernel path (not the eager fallback) runs, and 1 or 2 threads give the same bits."""
    from snn_backend_fused import kernels

    layer = snncore.create("lif", variant="layer", backend="fused")
    x = 3.0 * torch.rand(64, 8, 1001)  # T × M = 512 512 element-steps: run in parallel
    state = layer.make_initial_state(layer.parameters_now(), x.shape[1:], x.device, x.dtype)
    spec = kernels.kernel_for(layer.model, "layer")
    assert spec is not None and kernels.prepare(spec, x, state, layer.p, layer.dt) is not None
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, state_one = layer(x)
        torch.set_num_threads(2)
        two, state_two = layer(x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and torch.equal(state_one.v, state_two.v)


def test_odd_shapes_and_non_contiguous_input(library: Any) -> None:
    """T=1, a single neuron, neuron counts that are not a multiple of the vector width, more
    feature dimensions, and a transposed (non-contiguous) input."""
    for shape in [(1, 1, 1), (7, 1, 1), (5, 3, 17), (9, 2, 3, 5)]:
        x = 3.0 * torch.rand(shape, dtype=torch.float64)
        for name in ("lif", "li", "lsnn"):
            fused, eager = _layers(name, torch.float64)
            out, state = fused(x)
            out_ref, state_ref = eager(x)
            torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
            torch.testing.assert_close(state.v, state_ref.v, rtol=0, atol=0)
    x = 3.0 * torch.rand(4, 6, 50, dtype=torch.float64).transpose(1, 2)  # (4, 50, 6)
    assert not x.is_contiguous()
    fused, eager = _layers("lif", torch.float64)
    torch.testing.assert_close(fused(x)[0], eager(x)[0], rtol=0, atol=0)
