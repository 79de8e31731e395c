"""Recurrent LIF and LSNN layers through the fused backend's kernel (csrc/recurrent.cpp).

Against the eager ``torch`` backend, which runs ``W_in·x`` as one matrix product and then the
model's ``recurrent_step`` per step with ``W_rec·z_prev`` under autograd:

- over T=1000 steps (3 × 40 neurons, 20 inputs, firing well): float64 spikes equal and final
  states and gradients (input, both weight matrices, every initial state field) within 1e-10
  of the largest magnitude; float32 at most 1 spike in 10^4 different, and within 1e-5 when none
  is (the kernel adds the recurrent current's terms in ascending neuron order, PyTorch's matrix
  product in its own order);
- every built-in surrogate (float64, within 1e-10); the reset's spike is detached in the
  recurrent step, so the gradient through it must be missing in the kernel too -- a kernel that
  kept it would differ by far more than the tolerance;
- ``torch.autograd.gradcheck`` with the ``heaviside`` surrogate, where the forward map is
  piecewise smooth and the kernel's backward must be its true derivative (x, W_in, W_rec and the
  initial state);
- the modules (autapses on and off), ``auto`` choosing the kernel, odd shapes, thread counts,
  and the calls the kernel declines (which must then agree with eager bit for bit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import torch
from test_snn_backend_fused_surrogates import SURROGATES  # sharpness values BPTT survives

import snncore

# model -> parameter overrides: both models spike often (LSNN's threshold adapts within the run)
CASES: dict[str, dict[str, float]] = {"lif": {}, "lsnn": {"tau_adapt_inv": 20.0, "beta": 0.2}}
STEPS, BATCH, INPUTS, HIDDEN = 1000, 3, 20, 40


def _problem(
    name: str,
    dtype: torch.dtype,
    seed: int = 7,
    shape: tuple[int, int, int, int] = (STEPS, BATCH, INPUTS, HIDDEN),
    **overrides: Any,
) -> dict[str, Any]:
    """Input, weights, a perturbed initial state (z not 0/1: the first step's recurrent current
    weighs it like any tensor) and the upstream weights of the loss."""
    steps, batch, inputs, hidden = shape
    generator = torch.Generator().manual_seed(seed)
    model = snncore.get_model(name)
    p = model.parameters(**{**CASES[name], **overrides})
    # in the input's dtype, as a module's .to(dtype) does (with float32 parameters a float64
    # step rounds some surrogate constants, e.g. atan's π/2·alpha, to float32; the kernel not)
    p = attrs.evolve(
        p, **{k: v.to(dtype) for k, v in attrs.asdict(p).items() if torch.is_tensor(v)}
    )

    def rand(*size: int) -> torch.Tensor:
        return torch.rand(size, generator=generator, dtype=dtype)

    def randn(*size: int) -> torch.Tensor:
        return torch.randn(size, generator=generator, dtype=dtype)

    state = model.initial_state(p, (batch, hidden), dtype=dtype)
    state = type(state)(*(field + 0.5 * rand(batch, hidden) for field in state))
    return {
        "model": model,
        "p": p,
        "x": 3.0 * rand(steps, batch, inputs),
        "w_in": randn(hidden, inputs) * math.sqrt(2.0 / hidden),
        "w_rec": randn(hidden, hidden) * math.sqrt(2.0 / hidden),
        "state": state,
        "g": randn(steps, batch, hidden),
    }


def _run(backend: str, problem: dict[str, Any]) -> tuple[torch.Tensor, list[Any], list[Any]]:
    """Outputs, final state fields and the gradients of a loss weighing every output and final
    state field, with respect to x, W_in, W_rec and every initial state field."""
    x, w_in, w_rec = (problem[k].detach().requires_grad_(True) for k in ("x", "w_in", "w_rec"))
    state = problem["state"]
    state = type(state)(*(f.detach().requires_grad_(True) for f in state))
    out, final = snncore.get_backend(backend).run_recurrent(
        problem["model"], x, state, problem["p"], 0.001, w_in, w_rec, {}, False
    )
    loss = (out * problem["g"]).sum() + sum((2.0 + k) * f.sum() for k, f in enumerate(final))
    grads = torch.autograd.grad(loss, [x, w_in, w_rec, *state])
    return out.detach(), [f.detach() for f in final], list(grads)


def _kernel_runs(problem: dict[str, Any]) -> bool:
    from snn_backend_fused import recurrent

    model = problem["model"]
    spec = recurrent.kernel_for(model, "recurrent")
    assert spec is not None
    request = recurrent.Request(
        model, problem["x"], problem["state"], problem["p"], 0.001, problem["w_in"],
        problem["w_rec"], {},
    )  # fmt: skip
    return recurrent.prepare(spec, request) is not None


def _assert_close(values: list[Any], references: list[Any], tolerance: float) -> None:
    for value, reference in zip(values, references, strict=True):
        scale = max(float(reference.abs().max()), 1e-30)
        assert bool(reference.isfinite().all())
        torch.testing.assert_close(value, reference, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_kernel_equals_eager_over_1000_steps(library: Any, name: str, dtype: torch.dtype) -> None:
    problem = _problem(name, dtype)
    assert _kernel_runs(problem)
    out, finals, grads = _run("fused", problem)
    out_ref, finals_ref, grads_ref = _run("torch", problem)
    assert 0.02 < float(out_ref.mean()) < 0.9  # many spikes, many silent steps
    # float64: no spike may differ; float32: at most 1 in 10^4, equal up to the first that does
    # (after a flip the trajectories part) -- none did when this was written
    tolerance, allowed = (1e-10, 0) if dtype == torch.float64 else (1e-5, out.numel() // 10_000)
    differs = (out != out_ref).flatten(1).any(1)
    assert int((out != out_ref).sum()) <= allowed
    if differs.any():
        assert not differs[: int(differs.nonzero()[0])].any()
        return
    _assert_close(finals, finals_ref, tolerance)
    assert len(grads) == len(finals) + 3 and all(float(g.abs().max()) > 0 for g in grads_ref)
    _assert_close(grads, grads_ref, tolerance)


@pytest.mark.parametrize("method", list(SURROGATES))
@pytest.mark.parametrize("name", list(CASES))
def test_every_surrogate_matches_eager(library: Any, name: str, method: str) -> None:
    problem = _problem(
        name, torch.float64, seed=5, shape=(200, 2, 8, 16), method=method, alpha=SURROGATES[method]
    )
    assert _kernel_runs(problem)
    out, finals, grads = _run("fused", problem)
    out_ref, finals_ref, grads_ref = _run("torch", problem)
    assert torch.equal(out, out_ref) and 0 < float(out.detach().sum()) < out.numel()
    _assert_close(finals + grads, finals_ref + grads_ref, 1e-10)


def test_the_reset_spike_carries_no_gradient(library: Any) -> None:
    """The recurrent steps detach the spike in the reset (and LSNN's threshold jump): the
    kernel's gradient must equal eager's, and differ clearly from the feed-forward step's,
    which does not detach -- so a kernel that kept that path would fail the comparisons above.
    Checked here on a one-neuron LIF that spikes at step 0: v' = (1 − z)·v1 + z·v_reset with
    z = Θ(v1 − 1), v1 = 2 (the membrane starts at 2, no leak, no input); the final v' is 0
    either way; its derivative with respect to the initial v is (1 − z)·1 = 0 when z is
    detached, and 0 + (v_reset − v1)·σ'(1) = −2 / (100·1 + 1)² ≈ −1.96e-4 through the super
    surrogate when it is not."""
    model = snncore.get_model("lif")
    p = model.parameters(tau_mem_inv=0.0, tau_syn_inv=0.0)
    x = torch.zeros(1, 1, 1, dtype=torch.float64)
    w = torch.zeros(1, 1, dtype=torch.float64)
    state = model.initial_state(p, (1, 1), dtype=torch.float64)
    v0 = torch.full((1, 1), 2.0, dtype=torch.float64, requires_grad=True)
    state = state._replace(v=v0)
    for backend in ("fused", "torch"):
        out, final = snncore.get_backend(backend).run_recurrent(
            model, x, state, p, 0.001, w, w, {}, False
        )
        assert float(out.detach()) == 1.0 and float(final.v.detach()) == 0.0
        (grad,) = torch.autograd.grad(final.v.sum(), [v0])
        assert float(grad) == 0.0
    _, ff_final = model.feed_forward_step(x[0], model.feed_forward_state(v0, v0 * 0), p, 0.001)
    (ff_grad,) = torch.autograd.grad(ff_final.v.sum(), [v0])
    assert float(ff_grad) == pytest.approx(-2.0 / 101.0**2, rel=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_of_the_kernel(library: Any, name: str) -> None:
    """The heaviside surrogate makes the backward pass the true derivative of the piecewise
    smooth forward map: through leak, synapse, reset, adaptive threshold and both weight
    matrices (the spikes fixed, the recurrent current depends on W_rec and the initial z)."""
    problem = _problem(name, torch.float64, seed=11, shape=(12, 2, 3, 4), method="heaviside")
    problem["w_rec"] = problem["w_rec"] * 3.0  # recurrent input the spikes' gradient depends on
    assert _kernel_runs(problem)
    model, p, state = problem["model"], problem["p"], problem["state"]
    fused = snncore.get_backend("fused")

    def f(x: torch.Tensor, w_in: torch.Tensor, w_rec: torch.Tensor, *fields: Any) -> Any:
        out, final = fused.run_recurrent(
            model, x, type(state)(*fields), p, 0.001, w_in, w_rec, {}, False
        )
        return (out, *final)

    inputs = [problem[k] for k in ("x", "w_in", "w_rec")] + list(state)
    inputs = [t.detach().requires_grad_(True) for t in inputs]
    out = f(*inputs)[0]
    assert 0 < float(out.detach().sum()) < out.numel()  # it spikes, and not always
    assert torch.autograd.gradcheck(f, tuple(inputs), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("autapses", [False, True], ids=["no-autapses", "autapses"])
@pytest.mark.parametrize("name", list(CASES))
def test_modules_agree_with_eager(library: Any, name: str, autapses: bool) -> None:
    """``backend="auto"`` runs the kernel; the modules' parameters get eager's gradients, and
    without autapses the recurrent diagonal stays 0 and gets no gradient."""
    torch.manual_seed(3)
    kwargs = {"input_size": 6, "hidden_size": 9, "autapses": autapses, **CASES[name]}
    fused = snncore.create(name, variant="recurrent", **kwargs).double()
    eager = snncore.create(name, variant="recurrent", backend="torch", **kwargs).double()
    eager.load_state_dict(fused.state_dict())
    x = 3.0 * torch.rand(150, 4, 6, dtype=torch.float64)
    g = torch.randn(150, 4, 9, dtype=torch.float64)
    results = []
    for layer in (fused, eager):
        out, final = layer(x)
        ((out * g).sum() + final.v.sum() + final.i.sum()).backward()
        results.append((out, [p.grad for p in layer.parameters()]))
    assert fused._backend_for(x).name == "fused"
    (out, grads), (out_ref, grads_ref) = results
    assert torch.equal(out, out_ref) and 0 < float(out.detach().sum()) < out.numel()
    _assert_close(grads, grads_ref, 1e-10)
    diagonal = fused.recurrent_weights.grad.diagonal()
    assert bool((diagonal == 0).all()) != autapses


def test_odd_shapes_and_a_non_contiguous_input(library: Any) -> None:
    """One step, one neuron, hidden sizes that are not a multiple of the vector width, more
    inputs than neurons, and a transposed input."""
    for name in CASES:
        for shape in [(1, 1, 1, 1), (5, 1, 3, 1), (7, 3, 2, 17), (4, 2, 33, 70)]:
            problem = _problem(name, torch.float64, seed=1, shape=shape)
            assert _kernel_runs(problem)
            out, finals, grads = _run("fused", problem)
            out_ref, finals_ref, grads_ref = _run("torch", problem)
            assert torch.equal(out, out_ref)
            _assert_close(finals + grads, finals_ref + grads_ref, 1e-10)
    problem = _problem("lif", torch.float64, seed=2, shape=(6, 5, 4, 8))
    problem["x"] = problem["x"].transpose(0, 1).contiguous().transpose(0, 1)
    assert not problem["x"].is_contiguous()
    (out, finals, grads), (out_ref, finals_ref, grads_ref) = (
        _run(b, problem) for b in ("fused", "torch")
    )
    assert torch.equal(out, out_ref)
    _assert_close(finals + grads, finals_ref + grads_ref, 1e-10)


def test_threads_give_the_same_spikes_and_states(library: Any) -> None:
    """A call large enough to run on two threads gives the bits of one thread (the weight
    gradient sums the batch in another grouping: equal to rounding)."""
    problem = _problem("lif", torch.float64, seed=4, shape=(200, 8, 16, 256))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _run("fused", problem)
        torch.set_num_threads(2)
        two = _run("fused", problem)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], two[0]) and 0 < float(one[0].sum()) < one[0].numel()
    for a, b in zip(one[1] + one[2], two[1] + two[2], strict=True):
        assert torch.equal(a, b) or torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_no_grad_forward(library: Any) -> None:
    problem = _problem("lsnn", torch.float32, shape=(50, 2, 5, 7))
    model, p = problem["model"], problem["p"]
    args = (problem["x"], problem["state"], p, 0.001, problem["w_in"], problem["w_rec"], {}, False)
    with torch.no_grad():
        out, final = snncore.get_backend("fused").run_recurrent(model, *args)
        out_ref, final_ref = snncore.get_backend("torch").run_recurrent(model, *args)
    assert not out.requires_grad and torch.equal(out, out_ref)
    assert all(torch.equal(a, b) for a, b in zip(final, final_ref, strict=True))


def _mine(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return 1.0 / (1.0 + (alpha * x).abs())


def _declined(case: str) -> tuple[Any, Any, Callable[[Any], Any]]:
    """Two modules (fused, torch) and a call that the kernel declines."""
    kwargs: dict[str, Any] = {"input_size": 5, "hidden_size": 6}
    if case == "learnable":
        kwargs["learnable"] = ["tau_mem_inv", "v_th"]
    elif case == "record_states":
        kwargs["record_states"] = True
    elif case == "third-party surrogate":
        kwargs["method"] = "mine-recurrent-test"
    # LIF for the broadcast state: LSNN's first spikes come before the input widens the state
    name = "lif" if case == "broadcast state" else "lsnn"
    torch.manual_seed(0)
    fused = snncore.create(name, variant="recurrent", backend="fused", **kwargs).double()
    eager = snncore.create(name, variant="recurrent", backend="torch", **kwargs).double()
    eager.load_state_dict(fused.state_dict())

    def call(layer: Any) -> Any:
        x = 3.0 * torch.rand(
            40, 2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
        )
        state = None
        if case == "broadcast state":  # one state for the whole batch: the step broadcasts it
            state = layer._initial_recurrent_state(layer.parameters_now(), x[:, :1])
        return layer(x, state)

    return fused, eager, call


@pytest.mark.parametrize(
    "case", ["learnable", "record_states", "third-party surrogate", "broadcast state"]
)
def test_declined_calls_take_the_exact_eager_path(
    library: Any, fresh_manager: Any, case: str
) -> None:
    from snn_backend_fused import recurrent

    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        register(snncore.Surrogate("mine-recurrent-test", _mine))

    snncore.register_plugin(
        SimpleNamespace(register_surrogates=register_surrogates), name="snn-mine-recurrent-test"
    )
    fused, eager, call = _declined(case)
    if case != "record_states":  # record_states is declined by the backend before prepare
        x = torch.rand(40, 2, 5, dtype=torch.float64)
        p = fused.parameters_now()
        state = fused._initial_recurrent_state(p, x[:, :1] if "broadcast" in case else x)
        spec = recurrent.kernel_for(fused.model, "recurrent")
        weights = (fused.input_weights, fused.recurrent_weights)
        request = recurrent.Request(fused.model, x, state, p, fused.dt, *weights, {})
        assert spec is not None and recurrent.prepare(spec, request) is None
    results = []
    for layer in (fused, eager):
        out, final = call(layer)
        (out.sum() + final.v.sum()).backward()
        results.append((out, final, [p.grad for p in layer.parameters()]))
    (out, final, grads), (out_ref, final_ref, grads_ref) = results
    assert torch.equal(out, out_ref)
    for a, b in zip(final, final_ref, strict=True):
        assert torch.equal(a, b)
    assert len(grads) == len(grads_ref) and all(
        torch.equal(a, b) for a, b in zip(grads, grads_ref, strict=True)
    )
    if case == "record_states":
        assert final.b.shape == (40, 2, 6)


def test_implementation_and_priority(library: Any) -> None:
    fused = snncore.get_backend("fused")
    for name in CASES:
        model = snncore.get_model(name)
        assert fused.route(model, "recurrent").name == "kernel"
        assert fused.route(model, "recurrent", "cpu", torch.float32).priority > 0
        assert fused.route(model, "recurrent", "cpu", torch.bfloat16).priority < 0


@pytest.mark.parametrize("name", list(CASES))
def test_cpu_autocast_takes_the_eager_path(library: Any, name: str) -> None:
    """Under ``torch.autocast`` (Lightning's ``bf16-mixed``) eager's matrix products run in
    bfloat16 and the kernel would not reproduce them: the layer declines and matches eager."""
    torch.manual_seed(0)
    layers = [
        snncore.create(name, variant="recurrent", backend=b, input_size=5, hidden_size=6)
        for b in ("fused", "torch")
    ]
    layers[1].load_state_dict(layers[0].state_dict())
    x = 3.0 * torch.rand(30, 2, 5, generator=torch.Generator().manual_seed(1))
    results = []
    for layer in layers:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, final = layer(x)
        out.float().sum().backward()
        results.append((out, final.v, [p.grad for p in layer.parameters()]))
    (out, v, grads), (out_ref, v_ref, grads_ref) = results
    assert out.dtype == out_ref.dtype and torch.equal(out, out_ref)
    assert torch.equal(v, v_ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref, strict=True))
