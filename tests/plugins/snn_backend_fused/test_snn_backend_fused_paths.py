"""Which path a request takes, and the output buffers.

- Calls a kernel does not take exactly (a parameter that needs a gradient, ``record_states``,
  a state of another shape than the input, a per-neuron parameter wider than the input) run
  the eager loop and agree with the torch backend bit for bit, gradients included.
- ``auto`` picks ``fused`` only where a kernel runs the request (CPU, float32/float64, a kernel
  model); half precision and generic models stay on ``torch``; CUDA is refused with a reason.
- Large outputs come from the kernels' block cache: 2 MiB aligned, reused after being freed,
  kept up to a limit, released on request, never released while a tensor uses them.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import snncore


def _both(name: str, **kwargs: Any) -> tuple[Any, Any]:
    return tuple(  # type: ignore[return-value]
        snncore.create(name, variant="layer", backend=b, **kwargs).double()
        for b in ("fused", "torch")
    )


def _declines(layer: Any, x: torch.Tensor, state: Any = None) -> bool:
    from snn_backend_fused import kernels

    spec = kernels.kernel_for(layer.model, "layer")
    p = layer.parameters_now()
    if state is None:
        state = layer.make_initial_state(p, x.shape[1:], x.device, x.dtype)
    return kernels.prepare(spec, x, state, p, layer.dt) is None


def test_learnable_parameter_takes_the_eager_path(library: Any) -> None:
    fused, eager = _both("lif", learnable=["tau_mem_inv", "v_th"])
    x = 3.0 * torch.rand(60, 2, 5, dtype=torch.float64)
    assert _declines(fused, x)
    for layer in (fused, eager):
        out, state = layer(x)
        (out.sum() + state.v.sum()).backward()
    assert fused.p_tau_mem_inv.grad is not None and eager.p_tau_mem_inv.grad is not None
    assert torch.equal(fused.p_tau_mem_inv.grad, eager.p_tau_mem_inv.grad)
    assert torch.equal(fused.p_v_th.grad, eager.p_v_th.grad)


def test_record_states_takes_the_eager_path(library: Any) -> None:
    fused, eager = _both("lsnn", record_states=True)
    x = 3.0 * torch.rand(30, 2, 4, dtype=torch.float64)
    (out, states), (out_ref, states_ref) = fused(x), eager(x)
    assert states.b.shape == (30, 2, 4)
    assert torch.equal(out, out_ref) and torch.equal(states.b, states_ref.b)


def test_broadcast_state_and_wide_parameter_take_the_eager_path(library: Any) -> None:
    from snn_lif import LIFFeedForwardState

    fused, eager = _both("lif")
    x = 3.0 * torch.rand(30, 2, 4, dtype=torch.float64)
    state = LIFFeedForwardState(v=torch.zeros(4, dtype=torch.float64), i=torch.zeros(4))
    assert _declines(fused, x, state)
    assert torch.equal(fused(x, state)[0], eager(x, state)[0])
    # a float64 per-neuron parameter would make the float32 step's result float64
    wide = snncore.create("lif", backend="fused", v_th=torch.full((4,), 0.9, dtype=torch.float64))
    x32 = x.float()
    assert _declines(wide, x32)
    out, state = wide(x32)
    reference = snncore.create(
        "lif", backend="torch", v_th=torch.full((4,), 0.9, dtype=torch.float64)
    )(x32)
    assert torch.equal(out, reference[0]) and torch.equal(state.v, reference[1].v)
    assert state.v.dtype == reference[1].v.dtype


def test_auto_picks_fused_only_where_a_kernel_runs(library: Any) -> None:
    x = 3.0 * torch.rand(10, 2, 3)
    lif = snncore.create("lif")
    lif(x)
    assert lif._backend_for(x).name == "fused"
    half = x.to(torch.bfloat16)
    lif(half)
    assert lif._backend_for(half).name == "torch"
    izhikevich = snncore.create("izhikevich")
    izhikevich(x)
    assert izhikevich._backend_for(x).name == "torch"
    fused = snncore.get_backend("fused")
    model = snncore.get_model("lif")
    mps = fused.supports(model, "layer", torch.device("mps"), torch.float32)
    assert "CPU and CUDA only, not mps" in str(mps)  # CUDA: test_snn_backend_fused_triton.py
    assert "no 'recurrent' variant" in str(fused.supports(snncore.get_model("li"), "recurrent"))
    lif_mc = snncore.get_model("lif_mc")  # recurrent, no kernel: generic, so auto takes torch
    assert fused.route(lif_mc, "recurrent", "cpu", torch.float32).priority < 0


def test_explicit_fused_runs_half_precision_on_the_generic_path(library: Any) -> None:
    from snn_backend_fused import generic

    generic.set_generic_mode("eager")
    try:
        x = (3.0 * torch.rand(10, 2, 3)).to(torch.bfloat16)
        out, _ = snncore.create("lif", backend="fused")(x)
        assert out.dtype == torch.bfloat16
        assert torch.equal(out, snncore.create("lif", backend="torch")(x)[0])
    finally:
        generic.set_generic_mode(None)


def test_generic_mode_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from snn_backend_fused import generic

    with pytest.raises(ValueError, match="compile"):
        generic.set_generic_mode("fast")
    monkeypatch.delenv("SNN_FUSED_GENERIC", raising=False)
    assert generic.generic_mode() == "auto"
    monkeypatch.setenv("SNN_FUSED_GENERIC", "jit")
    with pytest.raises(ValueError, match="SNN_FUSED_GENERIC"):
        generic.generic_mode()


# -- the block cache ---------------------------------------------------------------------------


def test_large_outputs_come_from_the_block_cache(library: Any) -> None:
    from snn_backend_fused import buffers

    shape = (64, 1024, 16)  # 4 MiB of float32
    first = buffers.empty(shape, torch.float32)
    assert first.shape == shape and first.is_contiguous() and first.dtype == torch.float32
    assert first.data_ptr() % (2 << 20) == 0
    address = first.data_ptr()
    before = buffers.cache_stats()
    del first
    assert buffers.cache_stats()["cached_bytes"] >= before["cached_bytes"] + (4 << 20)
    second = buffers.empty(shape, torch.float32)
    assert second.data_ptr() == address  # the same block again, already mapped
    assert buffers.cache_stats()["hits"] == before["hits"] + 1
    hits = buffers.cache_stats()["hits"] + buffers.cache_stats()["misses"]
    assert buffers.empty((3, 4), torch.float64).shape == (3, 4)  # small: torch.empty
    assert buffers.empty((1 << 21,), torch.float16).dtype == torch.float16  # not a kernel dtype
    assert buffers.cache_stats()["hits"] + buffers.cache_stats()["misses"] == hits
    del second


def test_cache_limit_and_release(library: Any) -> None:
    from snn_backend_fused import buffers

    previous = buffers.set_cache_limit(0)
    try:
        buffers.empty_cache()
        block = buffers.empty((1 << 20,), torch.float64)  # 8 MiB
        block.fill_(2.5)
        assert buffers.empty_cache() == 0  # in use: nothing to release
        assert float(block.sum()) == 2.5 * (1 << 20)  # still valid
        del block
        assert buffers.cache_stats()["cached_bytes"] == 0  # limit 0: unmapped at once
    finally:
        buffers.set_cache_limit(previous)
    kept = buffers.empty((1 << 20,), torch.float64)
    del kept
    assert buffers.cache_stats()["cached_bytes"] >= 8 << 20
    assert buffers.empty_cache() >= 8 << 20
    assert buffers.cache_stats()["cached_bytes"] == 0
    with pytest.raises(ValueError, match=">= 0"):
        buffers.set_cache_limit(-1)


def test_outputs_survive_the_layer_and_train(library: Any) -> None:
    """Kernel outputs are ordinary tensors: kept, modified in place, back-propagated twice."""
    layer = snncore.create("lif", backend="fused")
    x = (3.0 * torch.rand(200, 8, 512)).requires_grad_(True)
    out, _ = layer(x)
    kept = out.detach().clone()
    loss = (out * torch.linspace(0, 1, 512)).sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    loss.backward()
    assert torch.equal(x.grad, first)
    out.detach().mul_(2)
    assert torch.equal(out.detach(), 2 * kept)


def test_double_backward_is_refused(library: Any) -> None:
    """The kernels' backward pass is not differentiable: asking for a second derivative fails
    instead of silently giving zero."""
    layer = snncore.create("lif", backend="fused").double()
    x = (3.0 * torch.rand(20, 2, 3, dtype=torch.float64)).requires_grad_(True)
    out, _ = layer(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|does not require grad"):
        grad.sum().backward()
