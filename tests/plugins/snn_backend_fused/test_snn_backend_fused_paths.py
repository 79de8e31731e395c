"""Which path a request takes, and the output buffers.

- Routes: CPU layers of every model with a feed-forward step run the kernel generated from it
  (``generated``), and so do recurrent layers with a plain weighted input (``lif``, ``lsnn``,
  ...); CUDA layers of every model the Triton generated from the same step (``generated``, where
  Triton imports); anything else the generic path (``generic``, ranked below the eager backend).
- Calls the generated kernel does not take (a parameter that needs a gradient,
  ``record_states``, a state field or per-neuron parameter of another dtype than the input) run
  the eager loop and agree with the torch backend bit for bit, gradients included.
- ``auto`` picks ``fused`` only where a kernel runs the request (CPU, float32/float64, a model
  with a feed-forward step, or a recurrent layer with a generated kernel); half precision and
  the recurrent-only models without one stay on ``torch``; other devices are refused with a reason.
- The generated kernel handles odd shapes, non-contiguous inputs and broadcast states, and gives
  the same bits on 1 and 2 threads.
- Large outputs come from the kernels' block cache: 2 MiB aligned, reused after being freed,
  kept up to a limit, released on request, never released while a tensor uses them.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import snncore

RECURRENT_KERNEL_MODELS = {
    m.name for m in snncore.list_models() if "recurrent" in m.variants
}  # every one: staged kernels for matrix products, input channels and per-synapse state


def _both(name: str, **kwargs: Any) -> tuple[Any, Any]:
    return tuple(  # type: ignore[return-value]
        snncore.create(name, variant="layer", backend=b, **kwargs).double()
        for b in ("fused", "torch")
    )


def _declines(layer: Any, x: torch.Tensor, state: Any = None) -> bool:
    """Whether the generated kernel declines this call (the eager loop then runs it)."""
    from snn_backend_fused.compiler import kernel as generated

    p = layer.parameters_now()
    if state is None:
        state = layer.make_initial_state(p, x.shape[1:], x.device, x.dtype)
    return generated.decline(layer.model, x, state, p, False) is not None


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


def test_routes_of_every_model_and_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    from snn_backend_fused.compiler import triton_emit

    monkeypatch.setattr(triton_emit, "unavailable", lambda: None)  # routing imports no Triton
    fused = snncore.get_backend("fused")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for model in snncore.list_models():
        if "layer" in model.variants:  # every feed-forward layer: its generated kernel
            for device in (None, cpu):
                route = fused.route(model, "layer", device, torch.float32)
                assert route.name == "generated", (model.name, device)
                assert route.priority == fused.priority
            route = fused.route(model, "layer", cuda, torch.float32)  # its generated Triton
            assert route.name == "generated" and route.priority == fused.priority, model.name
        if "recurrent" in model.variants:  # no CUDA kernel for recurrent layers
            assert fused.route(model, "recurrent", cuda, torch.float32).name == "generic"
    for name in RECURRENT_KERNEL_MODELS:  # the generated recurrent kernel, ranked first
        route = fused.route(snncore.get_model(name), "recurrent", cpu, torch.float32)
        assert route.name == "generated" and route.priority == fused.priority, name
    lif = snncore.get_model("lif")
    assert fused.route(lif, "layer", cpu, torch.bfloat16).name == "generic"
    assert fused.route(lif, "recurrent", cpu, torch.float16).priority < 0


def test_learnable_parameter_takes_the_eager_path(library: Any, generated_runs: list[str]) -> None:
    fused, eager = _both("lif", learnable=["tau_mem_inv", "v_th"])
    x = 3.0 * torch.rand(60, 2, 5, dtype=torch.float64)
    assert _declines(fused, x)
    for layer in (fused, eager):
        out, state = layer(x)
        (out.sum() + state.v.sum()).backward()
    assert fused.p_tau_mem_inv.grad is not None and eager.p_tau_mem_inv.grad is not None
    assert torch.equal(fused.p_tau_mem_inv.grad, eager.p_tau_mem_inv.grad)
    assert torch.equal(fused.p_v_th.grad, eager.p_v_th.grad)
    assert generated_runs == []


def test_record_states_takes_the_eager_path(library: Any, generated_runs: list[str]) -> None:
    fused, eager = _both("lsnn", record_states=True)
    x = 3.0 * torch.rand(30, 2, 4, dtype=torch.float64)
    (out, states), (out_ref, states_ref) = fused(x), eager(x)
    assert states.b.shape == (30, 2, 4)
    assert torch.equal(out, out_ref) and torch.equal(states.b, states_ref.b)
    assert generated_runs == []


def test_broadcast_state_runs_the_generated_kernel(library: Any, generated_runs: list[str]) -> None:
    from snn_lif import LIFFeedForwardState

    fused, eager = _both("lif")
    x = (3.0 * torch.rand(30, 2, 4, dtype=torch.float64)).requires_grad_(True)
    state = LIFFeedForwardState(
        v=torch.rand(4, dtype=torch.float64, requires_grad=True),
        i=torch.zeros(4, dtype=torch.float64),
    )
    assert not _declines(fused, x, state)
    weights = torch.randn(x.shape, dtype=torch.float64)
    results = []
    for layer in (fused, eager):
        out, final = layer(x, state)
        grads = torch.autograd.grad((out * weights).sum() + final.v.sum(), [x, state.v])
        results.append((out, final.v, *grads))
    assert generated_runs == ["lif"]
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_other_dtypes_take_the_eager_path(library: Any, generated_runs: list[str]) -> None:
    from snn_lif import LIFFeedForwardState

    fused, eager = _both("lif")
    x = 3.0 * torch.rand(30, 2, 4, dtype=torch.float64)
    # a float32 state field with a float64 input
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
    assert generated_runs == []


def test_auto_picks_fused_only_where_a_kernel_runs(library: Any) -> None:
    x = 3.0 * torch.rand(10, 2, 3)
    lif = snncore.create("lif")
    lif(x)
    assert lif._backend_for(x).name == "fused"
    half = x.to(torch.bfloat16)
    lif(half)
    assert lif._backend_for(half).name == "torch"
    izhikevich = snncore.create("izhikevich")  # a generated kernel: fused
    izhikevich(x)
    assert izhikevich._backend_for(x).name == "fused"
    fused = snncore.get_backend("fused")
    model = snncore.get_model("lif")
    mps = fused.supports(model, "layer", torch.device("mps"), torch.float32)
    assert "CPU and CUDA only, not mps" in str(mps)  # CUDA: test_snn_backend_fused_triton.py
    assert "no 'recurrent' variant" in str(fused.supports(snncore.get_model("li"), "recurrent"))
    correlation = snncore.create(
        "lif_correlation", variant="recurrent", input_size=3, hidden_size=4
    )
    correlation(x)  # a staged generated kernel: fused
    assert correlation._backend_for(x).name == "fused"


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


def test_odd_shapes_and_non_contiguous_input(library: Any, generated_runs: list[str]) -> None:
    """T=1, a single neuron, neuron counts that are not a multiple of the vector width, more
    feature dimensions, and a transposed (non-contiguous) input."""
    for shape in [(1, 1, 1), (7, 1, 1), (5, 3, 17), (9, 2, 3, 5)]:
        x = 3.0 * torch.rand(shape, dtype=torch.float64)
        for name in ("lif", "li", "lsnn"):
            fused, eager = _both(name)
            out, state = fused(x)
            out_ref, state_ref = eager(x)
            torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
            torch.testing.assert_close(state.v, state_ref.v, rtol=0, atol=0)
    x = 3.0 * torch.rand(4, 6, 50, dtype=torch.float64).transpose(1, 2)  # (4, 50, 6)
    assert not x.is_contiguous()
    fused, eager = _both("lif")
    torch.testing.assert_close(fused(x)[0], eager(x)[0], rtol=0, atol=0)
    assert generated_runs == ["lif", "li", "lsnn"] * 4 + ["lif"]


def test_threads_do_not_change_the_result(library: Any, generated_runs: list[str]) -> None:
    """1 or 2 threads give the same bits through the generated kernel."""
    layer = snncore.create("lif", variant="layer", backend="fused")
    x = 3.0 * torch.rand(64, 8, 1001)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, state_one = layer(x)
        torch.set_num_threads(2)
        two, state_two = layer(x)
    finally:
        torch.set_num_threads(threads)
    assert generated_runs == ["lif", "lif"]
    assert torch.equal(one, two) and torch.equal(state_one.v, state_two.v)


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
    """Generated kernels' outputs are ordinary tensors: kept, modified in place, back-propagated
    twice."""
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


@pytest.mark.parametrize(
    ("name", "variant"), [("lif", "layer"), ("lif", "recurrent"), ("lif_mc", "recurrent")]
)
def test_double_backward_is_refused(library: Any, name: str, variant: str) -> None:
    """The generated kernels' backward pass is not differentiable: asking for a second
    derivative fails at once, with a message that names the way out (the torch backend),
    instead of silently giving zero or a tensor that "does not require grad" later."""
    kwargs = {"input_size": 3, "hidden_size": 4} if variant == "recurrent" else {}
    layer = snncore.create(name, variant, backend="fused", **kwargs).double()
    x = (3.0 * torch.rand(20, 2, 3, dtype=torch.float64)).requires_grad_(True)
    out, _ = layer(x)
    with pytest.raises(RuntimeError, match=r"no second derivative .* backend='torch'"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


@pytest.mark.parametrize("variant", ["layer", "recurrent"])
def test_a_kernel_traced_under_a_surrogate_override_does_not_serve_the_name_later(
    library: Any, variant: str
) -> None:
    """``override_surrogate("super", "super_unscaled")`` (the Norse port's switch) makes the
    name ``super`` stand for another derivative for a while.  A kernel traced meanwhile must
    not be reused for ``super`` once the override is undone: each run's input gradient equals
    the torch backend's under the same setting (it did not, in a fresh process, after the
    port test had run: the trace was remembered under the name alone)."""
    from snncore.surrogates import override_surrogate

    kwargs = {"input_size": 3, "hidden_size": 4} if variant == "recurrent" else {}
    x = 2.0 * torch.rand(30, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def gradients() -> list[torch.Tensor]:
        torch.manual_seed(0)
        fused = snncore.create("lsnn", variant, backend="fused", **kwargs).double()
        torch.manual_seed(0)
        eager = snncore.create("lsnn", variant, backend="torch", **kwargs).double()
        found = []
        for layer in (fused, eager):
            xs = x.clone().requires_grad_(True)
            out, _ = layer(xs)
            (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
            found.append(xs.grad)
        return found

    try:
        override_surrogate("super", "super_unscaled")
        under_override = gradients()
    finally:
        override_surrogate("super", None)
    after = gradients()
    for got, expected in (under_override, after):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(under_override[1], after[1])  # the two settings do differ here
