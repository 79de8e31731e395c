"""Kernels generated from step functions: exact against the eager loop for every registered model,
gradients checked by finite differences, third-party models and surrogates, refusals with a
reason, a damaged cache rebuilt, and every hot loop vectorised for AVX2 and AVX-512."""

from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import attrs
import pytest
import torch
from snn_backend_fused.compiler import cpp, kernel
from snn_backend_fused.compiler.trace import Untraceable, trace_step

import snncore
from snncore import loop
from snncore.parameters import method_items, replace_tensors

#: Input scales that make each model spike often but not always.
SCALE = {"izhikevich": 10.0, "coba_lif": 0.5, "li": 1.0}
LAYER_MODELS = sorted(m.name for m in snncore.list_models() if "layer" in m.variants)


def _layer(name: str, dtype: torch.dtype, **kwargs: Any) -> Any:
    return snncore.create(name, "layer", backend="torch", **kwargs).to(dtype)


def _run_both(
    name: str, dtype: torch.dtype, shape: tuple[int, ...], seed: int = 0, **kwargs: Any
) -> dict[str, Any]:
    """The generated kernel and the eager loop on the same input, with gradients of a random
    upstream gradient with respect to the input and the initial state."""
    layer = _layer(name, dtype, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    x = SCALE.get(name, 2.0) * torch.rand(shape, generator=generator, dtype=dtype)
    p = layer.parameters_now()
    results = {}
    for how in ("generated", "eager"):
        xi = x.clone().requires_grad_(True)
        state = layer.make_initial_state(p, x.shape[1:], x.device, dtype)
        leaves = [s.clone().requires_grad_(True) for s in torch.utils._pytree.tree_leaves(state)]
        state = torch.utils._pytree.tree_unflatten(
            leaves, torch.utils._pytree.tree_structure(state)
        )
        if how == "generated":
            result = kernel.run_layer(layer.model, xi, state, p, layer.dt)
            assert not isinstance(result, str), result
            out, final = result
        else:
            out, final = loop.layer_loop(
                layer.model.feed_forward_step, xi, state, p, layer.dt, False
            )
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
        finals = torch.utils._pytree.tree_leaves(final)
        loss = (out * g).sum() + sum((f * (k + 1)).sum() * 1e-3 for k, f in enumerate(finals))
        grads = torch.autograd.grad(loss, [xi, *leaves], allow_unused=True)
        results[how] = {"out": out.detach(), "final": [f.detach() for f in finals], "grads": grads}
    return results


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0)


@pytest.mark.parametrize("name", LAYER_MODELS)
def test_float64_equals_eager_over_1000_steps(name: str) -> None:
    r = _run_both(name, torch.float64, (1000, 2, 24))
    gen, eager = r["generated"], r["eager"]
    if snncore.get_model(name).output == "spikes":
        assert torch.equal(gen["out"], eager["out"]), "spikes differ"
        assert 0 < float(eager["out"].mean()) < 1, "the test input must make it spike, not always"
    else:
        assert _relative(gen["out"], eager["out"]) <= 1e-10
    for a, b in zip(gen["final"], eager["final"], strict=True):
        assert _relative(a, b) <= 1e-10
    for a, b in zip(gen["grads"], eager["grads"], strict=True):
        if b is None:
            continue
        assert a is not None
        assert _relative(a, b) <= 1e-10


@pytest.mark.parametrize("name", LAYER_MODELS)
def test_float32_flips_at_most_one_spike_in_ten_thousand(name: str) -> None:
    r = _run_both(name, torch.float32, (1000, 2, 24), seed=5)
    gen, eager = r["generated"], r["eager"]
    flips = int((gen["out"] != eager["out"]).sum())
    if snncore.get_model(name).output == "spikes":
        assert flips <= gen["out"].numel() // 10_000
    if flips == 0:  # same spikes: the same float32 arithmetic, up to exp's last bits
        for a, b in zip(gen["grads"], eager["grads"], strict=True):
            if b is not None:
                assert _relative(a, b) <= 1e-3


@pytest.mark.parametrize("name", LAYER_MODELS)
def test_gradcheck(name: str) -> None:
    """With the heaviside surrogate the backward pass is the derivative of the piecewise
    smooth forward map, so finite differences check it: through x and the initial state."""
    model = snncore.get_model(name)
    defaults = model.parameters()
    heaviside = {field: "heaviside" for field, _ in method_items(defaults)}
    layer = _layer(name, torch.float64, p=replace_tensors(defaults, heaviside))
    p = layer.parameters_now()
    x = SCALE.get(name, 2.0) * torch.rand(
        6, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    state = layer.make_initial_state(p, x.shape[1:], x.device, torch.float64)
    flat, tree = torch.utils._pytree.tree_flatten(state)
    # away from the kinks of clamp and relu at 0, where finite differences see half a slope
    offsets = torch.Generator().manual_seed(3)
    flat = [f + 0.1 + 0.1 * torch.rand(f.shape, generator=offsets, dtype=f.dtype) for f in flat]

    def f(x: torch.Tensor, *fields: torch.Tensor) -> Any:
        result = kernel.run_layer(
            layer.model, x, torch.utils._pytree.tree_unflatten(list(fields), tree), p, layer.dt
        )
        assert not isinstance(result, str), result
        return (result[0], *torch.utils._pytree.tree_leaves(result[1]))

    inputs = tuple(t.clone().requires_grad_(True) for t in (x, *flat))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_per_neuron_parameters_and_several_feature_dimensions() -> None:
    v_th = torch.linspace(0.5, 1.5, 12, dtype=torch.float64).reshape(3, 4)
    r = _run_both("lif", torch.float64, (200, 2, 3, 4), v_th=v_th)
    assert torch.equal(r["generated"]["out"], r["eager"]["out"])
    assert _relative(r["generated"]["grads"][0], r["eager"]["grads"][0]) <= 1e-10


@pytest.mark.parametrize("neurons", [1, 7, 2049])
def test_sizes_that_are_not_a_multiple_of_the_vector_width(neurons: int) -> None:
    r = _run_both("lsnn", torch.float64, (50, 1, neurons))
    assert torch.equal(r["generated"]["out"], r["eager"]["out"])
    assert _relative(r["generated"]["grads"][0], r["eager"]["grads"][0]) <= 1e-10


# -- third parties ---------------------------------------------------------------------------------


@attrs.frozen
class ResonateParameters:
    omega: torch.Tensor = snncore.tensor_field(40.0, "rad/s", "angular frequency")
    damping: torch.Tensor = snncore.tensor_field(5.0, "1/s", "damping")
    v_th: torch.Tensor = snncore.tensor_field(0.5, "V", "threshold")
    method: str = snncore.method_field()
    alpha: torch.Tensor = snncore.tensor_field(10.0, "", "surrogate sharpness")


class ResonateState(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


def resonate_step(i: torch.Tensor, s: ResonateState, p: ResonateParameters, dt: float) -> Any:
    """Resonate-and-fire: a damped rotation driven by the input; spike on the imaginary part."""
    decay = torch.exp(-p.damping * dt)
    c, sn = torch.cos(p.omega * dt), torch.sin(p.omega * dt)
    x = decay * (c * s.x - sn * s.y) + i
    y = decay * (sn * s.x + c * s.y)
    z = snncore.spike(y - p.v_th, p.method, p.alpha)
    return z, ResonateState(x, y * (1 - z.detach()))


RESONATE = snncore.NeuronModel(
    name="resonate_gen",
    family="resonate",
    summary="resonate-and-fire (test)",
    parameters=ResonateParameters,
    feed_forward_step=resonate_step,
    feed_forward_state=ResonateState,
)


def _soft(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return (
        alpha * torch.sigmoid(alpha * x) * (1 - torch.sigmoid(alpha * x)) + 0.1 * torch.tanh(x) ** 2
    )


@pytest.fixture
def third_party(fresh_manager: Any) -> Iterator[None]:
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(RESONATE)

    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        register(snncore.Surrogate("soft_gen", _soft))

    snncore.register_plugin(
        SimpleNamespace(register_models=register_models, register_surrogates=register_surrogates),
        name="snn-third-gen",
    )
    yield


def test_a_third_party_model_with_a_third_party_surrogate_is_compiled_and_exact(
    third_party: None,
) -> None:
    fused = snncore.get_backend("fused")
    assert fused.route(RESONATE, "layer", torch.device("cpu"), torch.float64).name == "generated"
    r = _run_both("resonate_gen", torch.float64, (400, 2, 16), method="soft_gen")
    assert 0 < float(r["eager"]["out"].mean()) < 1
    assert torch.equal(r["generated"]["out"], r["eager"]["out"])
    for a, b in zip(r["generated"]["grads"], r["eager"]["grads"], strict=True):
        assert _relative(a, b) <= 1e-10


def test_auto_runs_the_generated_kernel(third_party: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = kernel.run_layer
    monkeypatch.setattr(kernel, "run_layer", lambda *a: calls.append(a[0].name) or original(*a))
    layer = snncore.create("resonate_gen", "layer")
    x = torch.rand(20, 2, 5)
    out, _ = layer(x)
    eager, _ = snncore.create("resonate_gen", "layer", backend="torch")(x)
    assert calls == ["resonate_gen"] and torch.equal(out, eager)


def test_a_step_that_cannot_be_traced_is_refused_with_the_reason_and_runs_eagerly(
    fresh_manager: Any,
) -> None:
    def branching_step(i: torch.Tensor, s: ResonateState, p: ResonateParameters, dt: float) -> Any:
        if bool((s.x > 100).any()):  # control flow on values: not one elementwise program
            i = i * 0
        return resonate_step(i, s, p, dt)

    model = attrs.evolve(RESONATE, name="branching_gen", feed_forward_step=branching_step)

    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(model)

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-branch")
    route = snncore.get_backend("fused").route(model, "layer", torch.device("cpu"), torch.float32)
    assert route.name != "generated"
    assert "cannot be compiled" in route.reason and "aten.any" in route.reason
    x = torch.rand(10, 2, 4)
    out, _ = snncore.create("branching_gen", "layer", backend="fused")(x)
    eager, _ = snncore.create("branching_gen", "layer", backend="torch")(x)
    assert torch.equal(out, eager)


def test_ops_without_a_rule_are_named() -> None:
    def cumulative(i: torch.Tensor, s: ResonateState, p: Any, dt: float) -> Any:
        return i, ResonateState(s.x.cumsum(-1), s.y)

    zeros = torch.zeros(2, 3)
    with pytest.raises(Untraceable, match=r"aten\.cumsum"):
        trace_step(cumulative, ResonateState(zeros, zeros), ResonateParameters(), 0.001, (3,))


@pytest.mark.parametrize(
    ("why", "kwargs"),
    [
        ("record_states=True", {"record_states": True}),
        ("parameter tau_mem_inv needs a gradient", {"learnable": ["tau_mem_inv"]}),
    ],
)
def test_calls_the_kernel_declines_run_the_eager_loop(why: str, kwargs: dict[str, Any]) -> None:
    layer = snncore.create("lif", "layer", backend="fused", **kwargs)
    x = torch.rand(8, 2, 3)
    reason = kernel.decline(layer.model, x, None, layer.parameters_now(), layer.record_states)
    assert reason is not None and why in reason
    eager = snncore.create("lif", "layer", backend="torch", **kwargs)
    eager.load_state_dict(layer.state_dict())
    assert torch.equal(layer(x)[0], eager(x)[0])


# -- build cache ---------------------------------------------------------------------------------


_RUN_LI = """
import torch, snncore
from snn_backend_fused.compiler import kernel
layer = snncore.create("li", "layer", backend="torch")
x = torch.linspace(0, 1, 30).reshape(5, 2, 3)
p = layer.parameters_now()
state = layer.make_initial_state(p, x.shape[1:], None, x.dtype)
out, _ = kernel.run_layer(layer.model, x, state, p, 0.001)
print(bool(torch.equal(out, layer(x)[0])), kernel.build_seconds and max(kernel.build_seconds.values()) > 0)
"""


def test_a_damaged_cached_library_is_rebuilt_not_loaded(tmp_path: Path) -> None:
    """A library cut short (a full disk, a killed copy) would crash the process that maps it
    (SIGBUS): its size and hash are checked against the stamp before it is loaded."""
    import os
    import sys

    env = {**os.environ, "SNN_FUSED_CACHE_DIR": str(tmp_path)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _RUN_LI], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split()[-2] + " " + done.stdout.split()[-1]

    assert run() == "True True"  # built
    assert run() == "True False"  # loaded from the cache
    (library,) = tmp_path.glob("gen-*/libsnng.so")
    library.write_bytes(library.read_bytes()[:4000])
    assert run() == "True True"  # rebuilt, not loaded
    assert (library.parent / "libsnng.stamp").read_text() == kernel._stamp(library)


# -- vectorisation, deterministic: from the object code ---------------------------------------------

ISAS = {"x86-64-v3": "ymm", "x86-64-v4": "zmm"}


def _functions(disassembly: str) -> dict[str, str]:
    parts = re.split(r"\n(?=[0-9a-f]+ <)", disassembly)
    found = {}
    for part in parts:
        head = re.match(r"[0-9a-f]+ <([^>]+)>:", part)
        if head:
            found[head.group(1)] = part
    return found


def _assert_vectorised(functions: dict[str, str], packed: str, scalar: str) -> None:
    """Every function's object code has vector arithmetic (``packed``) and no scalar
    floating-point arithmetic (``scalar``)."""
    for function, body in functions.items():
        assert re.findall(packed, body), f"{function}: no vector arithmetic ({packed})"
        found = re.findall(scalar, body)
        assert not found, f"{function}: scalar arithmetic {found[:3]}"


def _needs_x86_tools() -> str | None:
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        return "the vectorisation test reads x86-64 object code"
    if shutil.which("objdump") is None:
        return "needs objdump (binutils)"
    return None


@pytest.mark.skipif(_needs_x86_tools() is not None, reason=str(_needs_x86_tools()))
@pytest.mark.parametrize("isa", list(ISAS))
@pytest.mark.parametrize("name", LAYER_MODELS)
def test_every_hot_loop_is_vectorised(name: str, isa: str, tmp_path: Path) -> None:
    """The generated loops (OpenMP's outlined bodies of forward and backward, float32 and
    float64) use packed arithmetic on the ISA's full-width registers and no scalar arithmetic."""
    layer = snncore.create(name, "layer", backend="torch")
    traced = kernel.trace_layer(layer.model, layer.parameters_now(), layer.dt, (4,))
    assert not isinstance(traced, str), traced
    target = tmp_path / "kernel.o"
    kernel.compile_source(
        cpp.generate(traced, kernel.libmvec_functions()), target, march=isa, shared=False
    )
    disassembly = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(target)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loops = {n: body for n, body in _functions(disassembly).items() if "._omp_fn." in n}
    assert sorted(n.split(".")[0] for n in loops) == sorted(
        f"snng_{w}_{d}" for w in ("backward", "forward") for d in ("f32", "f64")
    )
    register = ISAS[isa]
    _assert_vectorised(
        loops,
        rf"\bv(?:add|sub|mul|div)p[sd]\s+[^\n]*%{register}",
        r"\bv(?:add|sub|mul|div)s[sd]\b",
    )


RECURRENT_MODELS = sorted(m.name for m in snncore.list_models() if "recurrent" in m.variants)
#: The functions that hold the recurrent kernels' loops over neurons (or synapses): the step on
#: blocks of neurons (plain kernels), each stage and the per-synapse stage (staged kernels), and
#: ``axpy`` (the spike-sparse recurrent sum, its transpose, and the matrix products).
HOT = re.compile(
    r"snng_f(?:32|64)::(advance_block|reverse_block|forward\d+|backward\d+|synapse_forward"
    r"|synapse_backward|axpy)\("
)


@pytest.mark.skipif(_needs_x86_tools() is not None, reason=str(_needs_x86_tools()))
@pytest.mark.parametrize("isa", list(ISAS))
@pytest.mark.parametrize("name", RECURRENT_MODELS)
def test_every_recurrent_hot_loop_is_vectorised(name: str, isa: str, tmp_path: Path) -> None:
    """The recurrent kernels' hot functions, kept out of line with ``SNNG_INSPECT``, use packed
    arithmetic on the ISA's full-width registers and no scalar arithmetic (``add_lane_sum``, once
    per row of a per-synapse array, is the one scalar reduction and is not among them)."""
    model = snncore.get_model(name)
    found = kernel.trace_recurrent(model, model.parameters(), 0.001, 4)
    assert not isinstance(found, str), found
    traced, field = found
    target = tmp_path / "kernel.o"
    source = cpp.generate(traced, kernel.libmvec_functions(), field)
    kernel.compile_source(source, target, march=isa, shared=False, defines=("SNNG_INSPECT",))
    disassembly = subprocess.run(
        ["objdump", "-d", "-C", "--no-show-raw-insn", str(target)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    hot = {n: body for n, body in _functions(disassembly).items() if HOT.match(n)}
    kinds = {HOT.match(n).group(1) for n in hot}  # type: ignore[union-attr]
    expected = {"axpy", "forward0", "backward0"} if traced.staged else {"axpy", "advance_block"}
    assert expected <= kinds, sorted(kinds)
    if traced.synapse_fields:
        assert {"synapse_forward", "synapse_backward"} <= kinds
    register = ISAS[isa]
    _assert_vectorised(
        hot,
        rf"\bv(?:add|sub|mul|div)p[sd]\s+[^\n]*%{register}",
        r"\bv(?:add|sub|mul|div)s[sd]\b",
    )


CROSS = "aarch64-linux-gnu-g++"


def _aarch64_object(source: str, target: Path, inspect: bool) -> str:
    """``source`` cross-compiled for aarch64 (Armv8-A, NEON: 16-byte vectors, glibc's libmvec
    not used), disassembled."""
    flags = [*kernel.FLAGS, "-march=armv8-a", "-c", "-x", "c++", "-", "-o", str(target)]
    if inspect:
        flags.append("-DSNNG_INSPECT")
    subprocess.run([CROSS, *flags], input=source, text=True, check=True, capture_output=True)
    return subprocess.run(
        ["aarch64-linux-gnu-objdump", "-d", "-C", "--no-show-raw-insn", str(target)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.skipif(
    shutil.which(CROSS) is None or shutil.which("aarch64-linux-gnu-objdump") is None,
    reason="needs the aarch64 cross compiler (apt-get install g++-aarch64-linux-gnu)",
)
@pytest.mark.parametrize(
    ("name", "variant"),
    [(n, "layer") for n in LAYER_MODELS] + [(n, "recurrent") for n in RECURRENT_MODELS],
)
def test_the_hot_loops_are_vectorised_for_aarch64(name: str, variant: str, tmp_path: Path) -> None:
    """The same generated source cross-compiled for aarch64: the layer kernels' OpenMP bodies
    and the recurrent kernels' hot functions use NEON vector arithmetic (``fadd v0.4s``,
    ``fmul v1.2d``) and no scalar floating-point arithmetic (``fadd s0``, ``fmul d1``)."""
    model = snncore.get_model(name)
    if variant == "layer":
        traced = kernel.trace_layer(model, model.parameters(), 0.001, (4,))
        assert not isinstance(traced, str), traced
        source, pattern = cpp.generate(traced, set()), re.compile(r"._omp_fn.")
    else:
        found = kernel.trace_recurrent(model, model.parameters(), 0.001, 4)
        assert not isinstance(found, str), found
        source, pattern = cpp.generate(found[0], set(), found[1]), HOT
    disassembly = _aarch64_object(source, tmp_path / "kernel.o", inspect=variant != "layer")
    hot = {n: body for n, body in _functions(disassembly).items() if pattern.search(n)}
    assert hot, sorted(_functions(disassembly))[:10]
    _assert_vectorised(
        hot, r"\bf(?:add|sub|mul|div)\s+v\d+\.(?:4s|2d)", r"\bf(?:add|sub|mul|div)\s+[sd]\d+,"
    )


def test_the_isa_setting_reaches_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNN_FUSED_ISA", "x86-64-v3")
    assert "-march=x86-64-v3" in kernel.compile_flags()
    monkeypatch.delenv("SNN_FUSED_ISA")
    assert "-march=native" in kernel.compile_flags()


def test_libmvec_detection_matches_the_library() -> None:
    found = kernel.libmvec_functions()
    try:
        library = ctypes.CDLL("libmvec.so.1")
    except OSError:
        assert found == set()
        return
    assert ("exp" in found) == hasattr(library, "_ZGVdN4v_exp")
    assert math.isfinite(1.0)


# -- a model plugin's hand-tuned kernel ----------------------------------------------------------------


def test_a_hand_tuned_kernel_registered_by_object_takes_precedence(third_party: None) -> None:
    from snn_backend_fused.hooks import HandTunedKernel

    calls = []

    def tuned(x: torch.Tensor, state: Any, p: Any, dt: float) -> Any:
        calls.append(tuple(x.shape))
        if x.shape[0] > 10:
            return "only short sequences"  # declines: the generated kernel runs it
        return loop.layer_loop(RESONATE.feed_forward_step, x, state, p, dt, False)

    @snncore.hookimpl
    def register_fused_kernels(register: Callable[..., None]) -> None:
        register(HandTunedKernel(RESONATE, "layer", "cpu", tuned, "test kernel"))

    snncore.register_plugin(
        SimpleNamespace(register_fused_kernels=register_fused_kernels), name="snn-tuned"
    )
    fused = snncore.get_backend("fused")
    route = fused.route(RESONATE, "layer", torch.device("cpu"), torch.float32)
    assert route.name == "hand-tuned" and "test kernel" in route.reason
    layer = snncore.create("resonate_gen", "layer", backend="fused")
    eager = snncore.create("resonate_gen", "layer", backend="torch")
    for steps in (5, 20):
        x = torch.rand(steps, 2, 3)
        assert torch.equal(layer(x)[0], eager(x)[0])
    assert calls == [(5, 2, 3), (20, 2, 3)]


def test_a_raising_hand_tuned_kernel_hook_fails_only_its_plugin(third_party: None) -> None:
    @snncore.hookimpl
    def register_fused_kernels(register: Callable[..., None]) -> None:
        raise RuntimeError("no kernels today")

    record = snncore.register_plugin(
        SimpleNamespace(register_fused_kernels=register_fused_kernels), name="snn-raising"
    )
    route = snncore.get_backend("fused").route(RESONATE, "layer", torch.device("cpu"))
    assert route.name == "generated"
    assert record.status == "failed" and "no kernels today" in record.error
