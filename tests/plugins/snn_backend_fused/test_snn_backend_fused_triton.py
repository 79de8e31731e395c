"""The fused backend on CUDA: which path a request takes, what is refused, and (on a GPU) the
generated Triton kernels through the public backend.

Every model's feed-forward layer runs on CUDA the Triton kernel generated from its step
(:mod:`snn_backend_fused.compiler.triton_emit`); the kernels themselves are checked under
Triton's interpreter and compiled for sm_90 in test_snn_backend_fused_generated_triton.py.  Here:

- without Triton, CUDA requests are refused with the reason, and the CPU path never imports it;
- the routes on CUDA: every layer model ``generated`` in float16/bfloat16/float32/float64,
  recurrent layers ``generic``; half precision on the CPU stays ``generic``;
- the CUDA branch of ``run_layer`` (a ``meta`` tensor standing in for a CUDA one, the kernel
  replaced by a recorder): declined calls take the eager loop, a dtype the kernels do not take
  and a step without a Triton kernel the generic path, a hand-tuned kernel comes first;
- on a machine with CUDA, the generated kernels for real (the tests skip with "needs CUDA"
  otherwise).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from typing import Any

import pytest
import torch

import snncore

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(
    not HAS_TRITON, reason="Triton is not installed (scripts/setup.sh --test installs it)"
)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

MODELS = ["lif", "li", "lsnn", "lif_ex", "lif_adex", "lif_refrac"]
LAYER_MODELS = sorted(m.name for m in snncore.list_models() if "layer" in m.variants)
HALF_AND_FULL = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# -- on the CPU ----------------------------------------------------------------------------------


def test_the_cpu_path_runs_without_triton(library: Any) -> None:
    """Triton is for CUDA only: with it unimportable (as on a machine without it), CPU layers
    still compile their generated kernels and run (the step tracer imports torch's dispatch
    machinery, which only probes for Triton; the Triton emitter imports it only to load a
    kernel)."""
    code = (
        "import sys\n"
        "sys.modules['triton'] = None  # import triton now raises ImportError\n"
        "import torch, snncore, snn_backend_fused\n"
        "from snn_backend_fused.compiler import triton_emit\n"
        "x = torch.rand(5, 2, 3)\n"
        "out, _ = snncore.create('lif', backend='fused')(x)\n"
        "eager, _ = snncore.create('lif', backend='torch')(x)\n"
        "print(triton_emit.unavailable() is not None)\n"
        "print(bool(torch.equal(out, eager)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-2:] == ["True", "True"]


def test_cuda_requests_need_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    from snn_backend_fused.compiler import triton_emit

    fused = snncore.get_backend("fused")
    lif, izhikevich = snncore.get_model("lif"), snncore.get_model("izhikevich")
    cuda = torch.device("cuda")
    monkeypatch.setattr(triton_emit, "unavailable", lambda: "Triton is not importable (test)")
    reason = fused.supports(lif, "layer", cuda, torch.float32)
    assert reason == "its CUDA kernels need Triton: Triton is not importable (test)"
    assert fused.route(lif, "layer", cuda, torch.float32).priority < 0
    monkeypatch.setattr(triton_emit, "unavailable", lambda: None)
    assert fused.supports(lif, "layer", cuda, torch.bfloat16) is None
    # auto ranks fused first on CUDA for every layer model: Triton generated from its step
    for model in (lif, izhikevich):
        for dtype in HALF_AND_FULL:
            route = fused.route(model, "layer", cuda, dtype)
            assert route.name == "generated" and route.priority == fused.priority
            assert "Triton generated from the model's step" in route.reason
    assert fused.route(snncore.get_model("lsnn"), "recurrent", cuda, torch.float32).priority < 0
    # on the CPU half precision still takes the generic path
    assert fused.route(lif, "layer", torch.device("cpu"), torch.bfloat16).priority < 0


def test_every_layer_model_routes_to_generated_triton_on_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from snn_backend_fused.compiler import triton_emit

    monkeypatch.setattr(triton_emit, "unavailable", lambda: None)  # routing imports no Triton
    fused = snncore.get_backend("fused")
    for name in LAYER_MODELS:
        for dtype in HALF_AND_FULL:
            route = fused.route(snncore.get_model(name), "layer", torch.device("cuda"), dtype)
            assert route.name == "generated" and route.priority == fused.priority, (name, dtype)


def test_a_step_without_a_triton_kernel_routes_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    from snn_backend_fused.compiler import triton_emit

    monkeypatch.setattr(triton_emit, "unavailable", lambda: None)

    def no_triton(traced: Any) -> str:
        raise triton_emit.Unsupported("no Triton for op 'test'")

    monkeypatch.setattr(triton_emit, "generate", no_triton)
    fused = snncore.get_backend("fused")
    route = fused.route(snncore.get_model("lif"), "layer", torch.device("cuda"), torch.float32)
    assert route.name == "generic" and route.priority < 0
    assert "no Triton for op 'test'" in route.reason


@needs_triton
def test_triton_availability_is_reported() -> None:
    from snn_backend_fused.compiler import triton_emit

    assert triton_emit.unavailable() is None


@needs_triton
def test_the_triton_path_takes_cpu_tensors_only_under_the_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from snn_backend_fused.compiler import triton_emit

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    layer = snncore.create("lif", backend="torch")
    p = layer.parameters_now()
    x = torch.rand(4, 2, 3)
    state = layer.make_initial_state(p, x.shape[1:], x.device, x.dtype)
    reason = triton_emit.run_layer(layer.model, x, state, p, layer.dt)
    assert isinstance(reason, str) and "CUDA" in reason


# -- the CUDA branch of run_layer, without a GPU ------------------------------------------------


@pytest.fixture
def cuda_branch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which path the CUDA branch of ``FusedBackend.run_layer`` took, call by call: ``triton``
    (the generated kernel ran), ``eager`` (the exact eager loop) or ``generic``.  The kernel, the
    eager loop and the generic path are replaced by recorders; a ``meta`` tensor takes the branch
    a CUDA tensor takes (every device but the CPU; ``supports`` admits only CUDA)."""
    from snn_backend_fused import generic
    from snn_backend_fused.compiler import triton_emit

    taken: list[str] = []
    monkeypatch.setattr(triton_emit, "unavailable", lambda: None)

    def kernel(model: Any, x: torch.Tensor, *args: Any) -> Any:
        taken.append("triton")
        return x, None

    def recorder(name: str) -> Any:
        def run(model: Any, x: torch.Tensor, *args: Any) -> Any:
            taken.append(name)
            return x, None

        return run

    monkeypatch.setattr(triton_emit, "run_layer", kernel)
    monkeypatch.setattr(generic, "eager_layer", recorder("eager"))
    monkeypatch.setattr(generic, "run_layer", recorder("generic"))
    return taken


def _decline_unless(monkeypatch: pytest.MonkeyPatch, declined: bool) -> None:
    from snn_backend_fused.compiler import triton_emit

    reason = "record_states=True needs every step's state" if declined else None
    monkeypatch.setattr(triton_emit, "decline", lambda *args: reason)


def test_cuda_run_layer_paths(monkeypatch: pytest.MonkeyPatch, cuda_branch: list[str]) -> None:
    fused = snncore.get_backend("fused")
    layer = snncore.create("lif", backend="torch")
    p, dt = layer.parameters_now(), layer.dt
    for dtype in HALF_AND_FULL:  # the generated kernel
        _decline_unless(monkeypatch, False)
        fused.run_layer(
            layer.model, torch.empty(3, 2, 4, device="meta", dtype=dtype), None, p, dt, False
        )
    _decline_unless(monkeypatch, True)  # a declined call: the exact eager loop
    fused.run_layer(layer.model, torch.empty(3, 2, 4, device="meta"), None, p, dt, True)
    _decline_unless(monkeypatch, False)  # a dtype the kernels do not take: the generic path
    x = torch.empty(3, 2, 4, device="meta", dtype=torch.float8_e4m3fn)
    fused.run_layer(layer.model, x, None, p, dt, False)
    assert cuda_branch == ["triton"] * 4 + ["eager", "generic"]


def test_cuda_run_layer_untraceable_step_takes_the_generic_path(
    monkeypatch: pytest.MonkeyPatch, cuda_branch: list[str]
) -> None:
    from snn_backend_fused.compiler import triton_emit

    fused = snncore.get_backend("fused")
    layer = snncore.create("lif", backend="torch")
    _decline_unless(monkeypatch, False)
    monkeypatch.setattr(triton_emit, "run_layer", lambda *a: "its step cannot be compiled: test")
    x = torch.empty(3, 2, 4, device="meta")
    fused.run_layer(layer.model, x, None, layer.parameters_now(), layer.dt, False)
    assert cuda_branch == ["generic"]


def test_cuda_hand_tuned_kernel_comes_first(
    monkeypatch: pytest.MonkeyPatch, cuda_branch: list[str]
) -> None:
    from snn_backend_fused import backend, hooks

    layer = snncore.create("lif", backend="torch")
    answers = iter([(torch.zeros(1), None), "declines this call"])
    tuned = hooks.HandTunedKernel(layer.model, "layer", "cuda", lambda *a: next(answers), "test")
    monkeypatch.setattr(
        backend, "hand_tuned", lambda m, v, d: tuned if d in ("cuda", "meta") else None
    )
    _decline_unless(monkeypatch, False)
    fused = snncore.get_backend("fused")
    route = fused.route(layer.model, "layer", torch.device("cuda"), torch.float32)
    assert route.name == "hand-tuned" and route.priority == fused.priority
    x = torch.empty(3, 2, 4, device="meta")
    p, dt = layer.parameters_now(), layer.dt
    out, _ = fused.run_layer(layer.model, x, None, p, dt, False)  # the hand-tuned kernel ran
    assert out.shape == (1,) and cuda_branch == []
    fused.run_layer(layer.model, x, None, p, dt, False)  # it declines: the generated kernel
    assert cuda_branch == ["triton"]


# -- on a GPU ------------------------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", MODELS)
def test_cuda_kernel_equals_eager_over_1000_steps(name: str, dtype: torch.dtype) -> None:
    import torch.utils._pytree as pytree
    from snn_backend_fused.compiler import triton_emit

    generator = torch.Generator().manual_seed(7)
    overrides = {"tau_adapt_inv": 20.0, "beta": 0.2} if name == "lsnn" else {}
    x = (3.0 * torch.rand(1000, 3, 40, generator=generator, dtype=dtype)).cuda()
    weights = torch.randn(x.shape, generator=generator, dtype=dtype).cuda()
    fused = snncore.create(name, backend="fused", **overrides).to("cuda", dtype)
    eager = snncore.create(name, backend="torch", **overrides).to("cuda", dtype)
    state = eager.make_initial_state(eager.parameters_now(), x.shape[1:], x.device, x.dtype)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [leaf + 0.5 * torch.rand_like(leaf) for leaf in leaves]
    if name == "lif_refrac":
        leaves[-1] = torch.randint(0, 6, x.shape[1:], device="cuda").to(dtype)
    base = pytree.tree_unflatten(leaves, spec)
    assert triton_emit.decline(fused.model, x, base, fused.parameters_now()) is None

    def run(layer: Any) -> tuple[Any, ...]:
        xs = x.detach().requires_grad_(True)
        fields = [
            leaf.detach().requires_grad_(not (name == "lif_refrac" and k == len(leaves) - 1))
            for k, leaf in enumerate(leaves)
        ]
        out, final = layer(xs, pytree.tree_unflatten(fields, spec))
        finals = pytree.tree_leaves(final)
        loss = (out * weights).sum() + sum((2.0 + k) * f.sum() for k, f in enumerate(finals))
        grads = torch.autograd.grad(loss, [xs, *(f for f in fields if f.requires_grad)])
        return out.detach(), [f.detach() for f in finals], grads

    (out, finals, grads), (out_ref, finals_ref, grads_ref) = run(fused), run(eager)
    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    if name != "li":
        flips = int((out != out_ref).sum())
        assert flips == 0 if dtype == torch.float64 else flips <= out.numel() // 10_000
        if flips:
            first = int((out != out_ref).flatten(1).any(1).nonzero()[0])
            assert torch.equal(out[:first], out_ref[:first])
            return
    torch.testing.assert_close(out, out_ref, rtol=tolerance, atol=tolerance)
    for a, b in zip(finals, finals_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
    for a, b in zip(grads, grads_ref, strict=True):
        scale = float(b.abs().max())
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance * scale)


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", MODELS)
def test_cuda_half_precision_against_float32(name: str, dtype: torch.dtype) -> None:
    x = (3.0 * torch.rand(100, 4, 64, device="cuda")).to(dtype).requires_grad_(True)
    layer = snncore.create(name, backend="fused").to("cuda", dtype)
    assert layer._backend_for(x).name == "fused"
    out, state = layer(x)
    finals = torch.utils._pytree.tree_leaves(state)
    (out.float().sum() + sum(f.float().sum() for f in finals)).backward()
    assert out.dtype == dtype and x.grad is not None and x.grad.dtype == dtype
    assert bool(x.grad.isfinite().all())
    ref, _ = snncore.create(name, backend="torch").to("cuda")(x.detach().float())
    if name == "li":
        torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    else:
        assert float((out.float() == ref).double().mean()) >= 0.99


@needs_cuda
@needs_triton
@pytest.mark.parametrize("name", MODELS)
def test_cuda_gradcheck(name: str) -> None:
    import torch.utils._pytree as pytree

    method = {} if name == "li" else {"method": "heaviside"}
    if name == "lif_refrac":
        from snn_lif import LIFParameters
        from snn_refrac import LIFRefracParameters

        method = {"p": LIFRefracParameters(lif=LIFParameters(method="heaviside"), rho_reset=2.0)}
    layer = snncore.create(name, backend="fused", **method).to("cuda", torch.float64)
    x = 4.0 * torch.rand(12, 2, 3, device="cuda", dtype=torch.float64)
    state = layer.make_initial_state(layer.parameters_now(), (2, 3), x.device, x.dtype)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [leaf + 0.3 * torch.rand_like(leaf) for leaf in leaves]
    n = len(leaves) - 1 if name == "lif_refrac" else len(leaves)
    if name == "lif_refrac":
        leaves[-1] = torch.tensor([[0.0, 1, 2], [2, 0, 1]], device="cuda", dtype=x.dtype)
    inputs = tuple(t.detach().requires_grad_(True) for t in [x, *leaves[:n]])

    def f(x: torch.Tensor, *fields: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, final = layer(x, pytree.tree_unflatten([*fields, *leaves[n:]], spec))
        return (out, *pytree.tree_leaves(final))

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


@needs_cuda
@needs_triton
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"]
)
def test_cuda_benchmark_shape_smoke(dtype: torch.dtype) -> None:
    """Linear + LIF at issue 7's benchmark shape (T=500, B=16, N=4096), forward and backward,
    through ``backend="auto"``: fused on CUDA; the time is printed (``-s``), not asserted."""
    steps, batch, neurons = 500, 16, 4096
    linear = torch.nn.Linear(neurons, neurons, device="cuda", dtype=dtype)
    layer = snncore.create("lif").to("cuda", dtype)
    x = torch.rand(steps, batch, neurons, device="cuda", dtype=dtype)
    assert layer._backend_for(x).name == "fused"

    def once() -> torch.Tensor:
        out, _ = layer(linear(x))
        out.float().sum().backward()
        return out

    out = once()  # compiles the kernels
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        once()
    end.record()
    torch.cuda.synchronize()
    print(f"\nLinear+LIF T=500 B=16 N=4096 {dtype}: {start.elapsed_time(end) / 5:.2f} ms fwd+bwd")
    assert out.shape == x.shape and out.dtype == dtype
    assert bool(((out == 0) | (out == 1)).all()) and linear.weight.grad is not None
