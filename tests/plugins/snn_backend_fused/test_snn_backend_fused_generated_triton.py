"""Triton kernels generated from step functions (:mod:`snn_backend_fused.compiler.triton_emit`):
the checks of test_snn_backend_fused_generated.py (the C++ kernels) on every registered model with
a ``layer`` variant, run through Triton's interpreter on CPU tensors, against the eager loop
(:func:`snncore.loop.layer_loop`).

The interpreter must be switched on (``TRITON_INTERPRET=1``) before Triton decorates any kernel,
so this file is also the script that runs the checks: the ``checks`` fixture runs it in
subprocesses (``python THIS_FILE CHECK ...``, two with the interpreter, one without) that print
one JSON object per check with the numbers measured; the tests assert on those numbers.

- ``exact:MODEL:float64`` -- T=200 (``$SNN_TRITON_STEPS``), B=2, N=8: spikes equal, final state and gradients of the
  input and of the initial state within 1e-10 of the largest magnitude;
- ``exact:MODEL:float32`` -- T=200, B=2, N=32: at most 1 spike in 10⁴ different; where none
  differs, states within 1e-5 and gradients within 1e-3;
- ``gradcheck:MODEL`` -- ``torch.autograd.gradcheck`` (float64, T=6, 2 × 3, every surrogate
  ``heaviside``, so that the backward pass is the derivative of the piecewise-smooth forward map,
  and the initial state moved off the kinks of clamp and relu at 0);
- ``half:MODEL:float16`` -- a float16 input computed in float32 equals the eager float32 step on
  the upcast input (and the float16 parameters, upcast) up to the rounding to float16;
- ``per_neuron`` -- parameters with one value per neuron and two feature dimensions;
- ``ops:DTYPE`` -- a third-party step using every op of the IR (tanh, sigmoid, pow 1.5, masks...);
- ``cache`` -- the kernel module is written once to ``$SNN_FUSED_CACHE_DIR`` and imported once;
- ``compile:MODEL`` (without the interpreter) -- the kernels compile for an sm_90 GPU with
  Triton's bundled ptxas (no GPU needed): IEEE divisions and square roots only, and no fused
  multiply-add in the kernels whose step uses no libdevice function.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import pytest
import torch
import torch.utils._pytree as pytree

import snncore
from snncore import loop
from snncore.parameters import method_items, replace_tensors, tensor_items

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(
    not HAS_TRITON, reason="Triton is not installed (scripts/setup.sh --test installs it)"
)

#: Input scales that make each model spike often but not always.
SCALE = {"izhikevich": 10.0, "coba_lif": 0.5, "li": 1.0}
LAYER_MODELS = sorted(m.name for m in snncore.list_models() if "layer" in m.variants)
SPIKING = [m for m in LAYER_MODELS if snncore.get_model(m).output == "spikes"]
DTYPES = {"float64": torch.float64, "float32": torch.float32}
HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}


# -- a third-party step with every op ----------------------------------------------------------


@attrs.frozen
class OpsParameters:
    rate: torch.Tensor = snncore.tensor_field(40.0, "1/s", "rate")
    v_th: torch.Tensor = snncore.tensor_field(0.5, "V", "threshold")
    method: str = snncore.method_field()
    alpha: torch.Tensor = snncore.tensor_field(10.0, "", "surrogate sharpness")


class OpsState(NamedTuple):
    v: torch.Tensor
    w: torch.Tensor


def ops_step(i: torch.Tensor, s: OpsState, p: OpsParameters, dt: float) -> Any:
    a = torch.abs(s.v)
    drive = torch.tanh(i) + 0.25 * torch.sigmoid(s.w) - 0.1 * torch.expm1(-a)
    drive = drive + 0.05 * torch.log1p(s.w * s.w) + 0.05 * torch.sin(s.v) * torch.cos(s.w)
    drive = drive + 0.05 * torch.sqrt(a + 1.0) - 0.02 * torch.pow(torch.abs(s.w) + 1.0, 1.5)
    drive = drive + 0.01 * torch.sign(s.v) + 0.02 * torch.log(a + 2.0) - 0.01 * torch.exp(-a)
    drive = drive + 0.01 * torch.reciprocal(a + 1.0) - 0.01 * torch.square(s.w) / (a + 3.0)
    drive = torch.maximum(drive, -1.0 - s.v) + 0.01 * torch.minimum(s.v, s.w)
    v = s.v + dt * p.rate * (drive - s.v)
    v = torch.clamp(v, min=-2.0, max=3.0)
    keep = torch.logical_or(torch.logical_and(v >= -1.0, torch.logical_not(s.w > 5.0)), v <= -1.5)
    v = torch.where(keep, v, 0.5 * v)
    v = torch.where((v == 0.25) | (v != v), torch.zeros_like(v), v)
    z = snncore.spike(v - p.v_th, p.method, p.alpha)
    w = s.w + dt * 20.0 * (torch.relu(v) - s.w) + 0.1 * (v > 1.0).to(v.dtype) + 0.1 * z.detach()
    return z, OpsState(v * (1.0 - z), w)


OPS = snncore.NeuronModel(
    name="ops_gen_triton",
    family="test",
    summary="every op of the step compiler's IR (test)",
    parameters=OpsParameters,
    feed_forward_step=ops_step,
    feed_forward_state=OpsState,
)


# -- the checks (run by the subprocesses) ----------------------------------------------------------


def _layer(name: str, dtype: torch.dtype, **kwargs: Any) -> Any:
    return snncore.create(name, "layer", backend="torch", **kwargs).to(dtype)


def _run(
    model: Any,
    p: Any,
    dt: float,
    x: torch.Tensor,
    state: Any,
    generated: bool,
    g_out: torch.Tensor,
    final_weight: float = 2.0**-10,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor | None]]:
    """Output, final state leaves, and the gradients of ``(out·g_out).sum() + Σ_k (k+1)·w·Σ
    final_k`` with respect to the input and the initial state's leaves (in float32 or float64,
    ``g_out``'s dtype)."""
    from snn_backend_fused.compiler import triton_emit

    xi = x.clone().requires_grad_(True)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [leaf.clone().requires_grad_(True) for leaf in leaves]
    start = pytree.tree_unflatten(leaves, spec)
    if generated:
        result = triton_emit.run_layer(model, xi, start, p, dt)
        assert not isinstance(result, str), result
        out, final = result
    else:
        out, final = loop.layer_loop(model.feed_forward_step, xi, start, p, dt, False)
    finals = pytree.tree_leaves(final)
    loss = (out.to(g_out.dtype) * g_out).sum() + sum(
        (f.to(g_out.dtype) * ((k + 1) * final_weight)).sum() for k, f in enumerate(finals)
    )
    grads = torch.autograd.grad(loss, [xi, *leaves], allow_unused=True)
    return out.detach(), [f.detach() for f in finals], list(grads)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| over max |b| (over 1 where b is all zeros)."""
    a, b = a.double(), b.double()
    scale = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0) if a.numel() else 0.0


def _grad_devs(grads: list[Any], refs: list[Any]) -> list[float]:
    """Each gradient's ``_relative`` deviation; a gradient the eager loop leaves ``None`` must be
    zero (or ``None``) here."""
    devs = []
    for grad, ref in zip(grads, refs, strict=True):
        if ref is None:
            devs.append(0.0 if grad is None or not bool(grad.any()) else math.inf)
        else:
            devs.append(math.inf if grad is None else _relative(grad, ref))
    return devs


def _compare(name: str, gen: Any, eager: Any) -> dict[str, Any]:
    out, finals, grads = gen
    out_ref, finals_ref, grads_ref = eager
    result: dict[str, Any] = {"elements": out.numel(), "dtype": str(out.dtype)}
    if name in SPIKING or name == OPS.name:
        result["rate"] = float(out_ref.double().mean())
        result["flips"] = int((out != out_ref).sum())
    else:
        result["out_dev"] = _relative(out, out_ref)
    result["state_dev"] = max(_relative(a, b) for a, b in zip(finals, finals_ref, strict=True))
    result["grad_dev"] = _grad_devs(grads, grads_ref)
    result["grad_dtypes"] = sorted({str(g.dtype) for g in grads if g is not None})
    return result


def check_exact(name: str, dtype_name: str) -> dict[str, Any]:
    dtype = DTYPES[dtype_name]
    steps = int(os.environ.get("SNN_TRITON_STEPS", "200"))  # 1000 for the acceptance run
    shape = (steps, 2, 8) if dtype == torch.float64 else (steps, 2, 32)
    layer = _layer(name, dtype)
    p = layer.parameters_now()
    generator = torch.Generator().manual_seed(0)
    x = SCALE.get(name, 2.0) * torch.rand(shape, generator=generator, dtype=dtype)
    g_out = torch.randn(shape, generator=generator, dtype=dtype)
    state = layer.make_initial_state(p, x.shape[1:], x.device, dtype)
    runs = [_run(layer.model, p, layer.dt, x, state, how, g_out) for how in (True, False)]
    return _compare(name, *runs)


def check_gradcheck(name: str) -> dict[str, Any]:
    from snn_backend_fused.compiler import triton_emit

    defaults = snncore.get_model(name).parameters()
    heaviside = {field: "heaviside" for field, _ in method_items(defaults)}
    layer = _layer(name, torch.float64, p=replace_tensors(defaults, heaviside))
    p = layer.parameters_now()
    x = SCALE.get(name, 2.0) * torch.rand(
        6, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    state = layer.make_initial_state(p, x.shape[1:], x.device, torch.float64)
    flat, tree = pytree.tree_flatten(state)
    # away from the kinks of clamp and relu at 0, where finite differences see half a slope
    offsets = torch.Generator().manual_seed(3)
    flat = [f + 0.1 + 0.1 * torch.rand(f.shape, generator=offsets, dtype=f.dtype) for f in flat]

    def f(x: torch.Tensor, *fields: torch.Tensor) -> Any:
        result = triton_emit.run_layer(
            layer.model, x, pytree.tree_unflatten(list(fields), tree), p, layer.dt
        )
        assert not isinstance(result, str), result
        return (result[0], *pytree.tree_leaves(result[1]))

    inputs = tuple(t.clone().requires_grad_(True) for t in (x, *flat))
    with torch.no_grad():
        spikes = float(f(*inputs)[0].sum()) if name in SPIKING else None
    ok = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-6, raise_exception=False)
    return {"ok": bool(ok), "spikes": spikes, "inputs": len(inputs)}


def _half_rounding(a: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> float:
    """max |a − ref| in units of the largest error of rounding ``ref`` to ``dtype`` (half an
    ulp, relative, or half the smallest subnormal): ≤ 1 is ``a == ref`` rounded."""
    info = torch.finfo(dtype)
    relative, tiny = info.eps / 2, info.smallest_normal * info.eps / 2
    a, ref = a.double(), ref.double()
    return float(((a - ref).abs() / (relative * ref.abs() + tiny)).max())


def check_half(name: str, dtype_name: str) -> dict[str, Any]:
    """A half-precision input through the kernel (computed in float32) against the eager float32
    step on the same values: the input, the state and the parameters upcast exactly, and an
    upstream gradient exact in both dtypes."""
    dtype = HALF[dtype_name]
    layer = _layer(name, dtype)
    p = layer.parameters_now()
    p32 = replace_tensors(p, {n: v.float() for n, v in tensor_items(p)})
    generator = torch.Generator().manual_seed(4)
    x = (SCALE.get(name, 2.0) * torch.rand((100, 2, 32), generator=generator)).to(dtype)
    g_out = torch.randn(x.shape, generator=generator).to(dtype).float()
    state = layer.make_initial_state(p, x.shape[1:], x.device, dtype)
    state32 = pytree.tree_map(lambda t: t.float(), state)
    out, finals, grads = _run(layer.model, p, layer.dt, x, state, True, g_out)
    out_ref, finals_ref, grads_ref = _run(
        layer.model, p32, layer.dt, x.float(), state32, False, g_out
    )
    result: dict[str, Any] = {
        "dtypes": sorted({str(t.dtype) for t in [out, *finals, *grads] if t is not None}),
        "finite": all(bool(t.isfinite().all()) for t in [out, *finals, *grads] if t is not None),
        "out_rounding": _half_rounding(out, out_ref, dtype),
        "state_rounding": max(
            _half_rounding(a, b, dtype) for a, b in zip(finals, finals_ref, strict=True)
        ),
        "grad_dev": _grad_devs(grads, grads_ref),
        "elements": out.numel(),
    }
    if name in SPIKING:
        result["flips"] = int((out.float() != out_ref).sum())
        result["rate"] = float(out_ref.mean())
    return result


def check_per_neuron() -> dict[str, Any]:
    from snn_backend_fused.compiler import kernel

    v_th = torch.linspace(0.5, 1.5, 12, dtype=torch.float64).reshape(3, 4)
    tau = torch.linspace(60.0, 140.0, 12, dtype=torch.float64).reshape(3, 4)
    layer = _layer("lif", torch.float64, v_th=v_th, tau_mem_inv=tau)
    p = layer.parameters_now()
    generator = torch.Generator().manual_seed(5)
    x = 2.0 * torch.rand((100, 2, 3, 4), generator=generator, dtype=torch.float64)
    g_out = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    state = layer.make_initial_state(p, x.shape[1:], x.device, torch.float64)
    runs = [_run(layer.model, p, layer.dt, x, state, how, g_out) for how in (True, False)]
    traced = kernel.trace_layer(layer.model, p, layer.dt, (3, 4))
    assert not isinstance(traced, str), traced
    return {**_compare("lif", *runs), "kinds": list(traced.kinds)}


def check_ops(dtype_name: str) -> dict[str, Any]:
    dtype = DTYPES[dtype_name]
    p = replace_tensors(OpsParameters(), {n: v.to(dtype) for n, v in tensor_items(OpsParameters())})
    generator = torch.Generator().manual_seed(6)
    x = 3.0 * torch.rand((200, 2, 16), generator=generator, dtype=dtype) - 0.5
    g_out = torch.randn(x.shape, generator=generator, dtype=dtype)
    state = OPS.make_initial_state("layer", p, x.shape[1:], None, dtype)
    runs = [_run(OPS, p, 0.001, x, state, how, g_out) for how in (True, False)]
    return _compare(OPS.name, *runs)


def check_cache() -> dict[str, Any]:
    from snn_backend_fused import build
    from snn_backend_fused.compiler import kernel, triton_emit

    layer = _layer("lif", torch.float32)
    traced = kernel.trace_layer(layer.model, layer.parameters_now(), layer.dt, (5,))
    assert not isinstance(traced, str), traced
    first, second = triton_emit.load(traced), triton_emit.load(traced)
    source = triton_emit.generate(traced)
    files = sorted(build.cache_root().glob("gen-triton-*.py"))
    mine = [f for f in files if f.read_text() == source]
    return {
        "same_module": first is second,
        "deterministic": source == triton_emit.generate(traced),
        "files": [f.name for f in mine],
        "module_file": Path(first.__file__).name,
        "interpreted": bool(first.INTERPRETED),
        "kernel": type(first.forward).__name__,
    }


_FORWARD_POINTERS = {"x": "in", "out": "in"}
_BACKWARD_POINTERS = {"x": "in", "g": "in", "grad_x": "in"}


def check_compile(name: str) -> dict[str, Any]:
    """Compiles both kernels for an sm_90 GPU (no GPU needed: Triton's own ptxas), in float32 and
    float64, and reads the PTX."""
    import triton
    import triton.language as tl
    from snn_backend_fused.compiler import cpp, kernel, triton_emit
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    if not bundled.exists() and not os.environ.get("TRITON_PTXAS_PATH"):
        return {"skipped": "no ptxas (Triton's NVIDIA backend is not installed)"}
    if name == OPS.name:
        model, p, dt = OPS, OpsParameters(), 0.001
    else:
        layer = _layer(name, torch.float32)
        model, p, dt = layer.model, layer.parameters_now(), layer.dt
    traced = kernel.trace_layer(model, p, dt, (8,))
    assert not isinstance(traced, str), traced
    module = triton_emit.load(traced)
    uses_math = any(
        n.op in (*triton_emit.MATH, "sigmoid")
        or (n.op == "pow" and n.args[1].value not in (0, 1, 2, 3, -1, -2, 0.5, -0.5))
        for _, n in cpp.plan(traced).backward
    )
    target = GPUTarget("cuda", 90, 32)
    found: set[str] = set()
    fma = 0
    start = time.perf_counter()
    for compute, inputs in (("fp32", "fp32"), ("fp64", "fp64")):
        cdt = tl.float64 if compute == "fp64" else tl.float32
        for fn, pointers, constants in (
            (module.forward, _FORWARD_POINTERS, {"SAVE": True}),
            (module.backward, _BACKWARD_POINTERS, {"HAS_G": True}),
        ):
            names = fn.arg_names
            signature = {}
            for arg in names:
                if arg in ("T", "M", "F", "g_st", "g_sn"):
                    signature[arg] = "i32"
                elif arg.isupper():
                    signature[arg] = "constexpr"
                else:
                    signature[arg] = f"*{inputs if arg in pointers else compute}"
            constexprs = {**constants, "BLOCK": triton_emit.GPU_BLOCK, "K": 16, "CDT": cdt}
            compiled = triton.compile(
                ASTSource(fn, signature, constexprs=constexprs),
                target=target,
                options=dict(triton_emit.COMPILE_OPTIONS),
            )
            ptx = compiled.asm["ptx"]
            fma += len(re.findall(r"\bfma\.", ptx))
            found.update(re.findall(r"\b((?:div|sqrt|rcp)\.[a-z0-9.]+)", ptx))
            assert compiled.asm.get("cubin"), "no cubin"
    return {
        "ok": True,
        "fma": fma,
        "instructions": sorted(found),
        "uses_math": uses_math,
        "compile_seconds": round(time.perf_counter() - start, 2),
    }


CHECKS = {
    "exact": check_exact,
    "gradcheck": check_gradcheck,
    "half": check_half,
    "per_neuron": check_per_neuron,
    "ops": check_ops,
    "cache": check_cache,
    "compile": check_compile,
}


def main(names: list[str]) -> None:
    from snn_backend_fused.compiler import triton_emit  # noqa: F401

    emitter_imports_triton = "triton" in sys.modules
    import triton

    print(
        json.dumps(
            {
                "check": "setup",
                "triton": triton.__version__,
                "interpreting": os.environ.get("TRITON_INTERPRET") == "1",
                "emitter_imports_triton": emitter_imports_triton,
            }
        ),
        flush=True,
    )
    for name in names:
        kind, *args = name.split(":")
        start = time.perf_counter()
        try:
            result = CHECKS[kind](*args)
        except Exception as exc:  # reported, so the other checks still run
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result.update(check=name, seconds=round(time.perf_counter() - start, 2))
        print(json.dumps(result), flush=True)


# -- the tests -------------------------------------------------------------------------------------

EXACT = [f"exact:{m}:{d}" for m in LAYER_MODELS for d in DTYPES]
INTERPRETED = [
    *EXACT,
    *(f"gradcheck:{m}" for m in LAYER_MODELS),
    *(f"half:{m}:float16" for m in LAYER_MODELS),
    "half:lif:bfloat16",
    "per_neuron",
    "ops:float64",
    "ops:float32",
    "cache",
]
COMPILED = [f"compile:{m}" for m in [*LAYER_MODELS, OPS.name]]


def _cost(check: str) -> float:
    """Rough seconds under the interpreter, to balance the workers."""
    kind = check.split(":")[0]
    return {"gradcheck": 7.0, "ops": 4.0, "cache": 0.5}.get(kind, 2.5)


def _split(checks: list[str], workers: int) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for check in sorted(checks, key=_cost, reverse=True):
        k = loads.index(min(loads))
        groups[k].append(check)
        loads[k] += _cost(check)
    return [g for g in groups if g]


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every check's result: the interpreted ones from two subprocesses with
    ``TRITON_INTERPRET=1``, the compilations from one without."""
    if not HAS_TRITON:
        pytest.skip("Triton is not installed (scripts/setup.sh --test installs it)")
    cache = tmp_path_factory.mktemp("fused-triton-cache")
    base = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    base["SNN_FUSED_CACHE_DIR"] = str(cache)
    base["TRITON_CACHE_DIR"] = str(cache / "triton")  # compiled afresh, the user's cache untouched
    workers = max(1, min(2, os.cpu_count() or 1))
    jobs = [(dict(base, TRITON_INTERPRET="1"), group) for group in _split(INTERPRETED, workers)]
    jobs.append((base, COMPILED))
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *group],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env, group in jobs
    ]
    results: dict[str, dict[str, Any]] = {}
    for proc, (env, _) in zip(procs, jobs, strict=True):
        stdout, stderr = proc.communicate(timeout=900)
        for line in stdout.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                key = record["check"]
                if key == "setup":
                    key = "setup:interpreted" if "TRITON_INTERPRET" in env else "setup:compiled"
                results[key] = record
        if proc.returncode != 0:
            pytest.fail(f"the checks' subprocess failed:\n{stderr[-4000:]}")
    return results


def _result(checks: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    assert name in checks, f"check {name} did not report"
    result = checks[name]
    assert "error" not in result, result["error"]
    return result


@needs_triton
def test_the_checks_ran_under_the_interpreter(checks: dict[str, Any]) -> None:
    setup = checks["setup:interpreted"]
    assert setup["interpreting"]
    assert not setup["emitter_imports_triton"]  # importing the emitter does not import Triton
    assert not checks["setup:compiled"]["interpreting"]
    assert set(INTERPRETED) | set(COMPILED) <= set(checks)


@needs_triton
@pytest.mark.parametrize("name", LAYER_MODELS)
def test_float64_equals_eager(checks: dict[str, Any], name: str) -> None:
    r = _result(checks, f"exact:{name}:float64")
    assert r["dtype"] == "torch.float64" and r["grad_dtypes"] == ["torch.float64"]
    if name in SPIKING:
        assert r["flips"] == 0, "spikes differ"
        assert 0 < r["rate"] < 1, "the test input must make it spike, not always"
    else:
        assert r["out_dev"] <= 1e-10
    assert r["state_dev"] <= 1e-10
    assert max(r["grad_dev"]) <= 1e-10, r["grad_dev"]


@needs_triton
@pytest.mark.parametrize("name", LAYER_MODELS)
def test_float32_flips_at_most_one_spike_in_ten_thousand(checks: dict[str, Any], name: str) -> None:
    r = _result(checks, f"exact:{name}:float32")
    assert r["dtype"] == "torch.float32" and r["grad_dtypes"] == ["torch.float32"]
    if name in SPIKING:
        assert r["flips"] <= r["elements"] // 10_000
        if r["flips"]:  # after a flip the trajectories part: nothing more to compare
            return
    else:
        assert r["out_dev"] <= 1e-5
    assert r["state_dev"] <= 1e-5
    assert max(r["grad_dev"]) <= 1e-3, r["grad_dev"]


@needs_triton
@pytest.mark.parametrize("name", LAYER_MODELS)
def test_gradcheck(checks: dict[str, Any], name: str) -> None:
    """With the heaviside surrogate the backward pass is the derivative of the piecewise smooth
    forward map, so finite differences check it: through x and the initial state."""
    r = _result(checks, f"gradcheck:{name}")
    assert r["ok"]


@needs_triton
@pytest.mark.parametrize(
    "check", [f"half:{m}:float16" for m in LAYER_MODELS] + ["half:lif:bfloat16"]
)
def test_half_precision_is_the_float32_step_rounded(checks: dict[str, Any], check: str) -> None:
    """Computed in float32: the outputs and final states are the eager float32 step's, rounded
    to the half dtype (≤ 1 rounding error, up to exp's last float32 bits), the gradients (in the
    half dtype) the float32 gradients to about its precision."""
    r = _result(checks, check)
    name, dtype = check.split(":")[1:]
    assert r["dtypes"] == [f"torch.{dtype}"] and r["finite"]
    if name in SPIKING:
        assert r["flips"] <= r["elements"] // 10_000 and 0 < r["rate"] < 1
        if r["flips"]:
            return
    assert r["out_rounding"] <= 1.01 and r["state_rounding"] <= 1.01
    precision = torch.finfo(HALF[dtype]).eps
    assert max(r["grad_dev"]) <= precision, r["grad_dev"]


@needs_triton
def test_per_neuron_parameters_and_several_feature_dimensions(checks: dict[str, Any]) -> None:
    r = _result(checks, "per_neuron")
    assert r["kinds"].count("neuron") == 2
    assert r["flips"] == 0 and 0 < r["rate"] < 1
    assert r["state_dev"] <= 1e-10 and max(r["grad_dev"]) <= 1e-10


@needs_triton
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_a_third_party_step_using_every_op(checks: dict[str, Any], dtype: str) -> None:
    r = _result(checks, f"ops:{dtype}")
    assert 0 < r["rate"] < 1
    if dtype == "float64":
        assert r["flips"] == 0
        assert r["state_dev"] <= 1e-10 and max(r["grad_dev"]) <= 1e-10
    else:
        assert r["flips"] <= r["elements"] // 10_000
        if not r["flips"]:
            assert r["state_dev"] <= 1e-5 and max(r["grad_dev"]) <= 1e-3


@needs_triton
def test_the_kernel_module_is_cached_once(checks: dict[str, Any]) -> None:
    r = _result(checks, "cache")
    assert r["same_module"] and r["deterministic"]
    assert len(r["files"]) == 1 and re.fullmatch(r"gen-triton-[0-9a-f]+\.py", r["files"][0])
    assert r["module_file"] == r["files"][0]
    assert r["interpreted"] and r["kernel"] == "InterpretedFunction"


@needs_triton
@pytest.mark.parametrize("name", [*LAYER_MODELS, OPS.name])
def test_kernels_compile_for_a_gpu(checks: dict[str, Any], name: str) -> None:
    """Without a GPU: both kernels compile for sm_90 in each compute dtype; the divisions and
    square roots are the IEEE-rounded instructions, and without libdevice functions (whose
    algorithms use fma) there is no fused multiply-add: the step's roundings, one by one."""
    r = _result(checks, f"compile:{name}")
    if "skipped" in r:
        pytest.skip(r["skipped"])
    assert r["ok"]
    forbidden = [
        i for i in r["instructions"] if i.startswith(("div.full", "div.approx", "sqrt.approx"))
    ]
    assert not forbidden, forbidden
    if not r["uses_math"]:
        assert r["fma"] == 0


# -- in this process: the reasons for declining ---------------------------------------------------


@needs_triton
def test_calls_the_kernel_declines_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from snn_backend_fused.compiler import triton_emit

    layer = snncore.create("lif", "layer", backend="torch")
    p = layer.parameters_now()
    x = torch.rand(8, 2, 3)
    state = layer.make_initial_state(p, x.shape[1:], x.device, x.dtype)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert "CUDA" in str(triton_emit.decline(layer.model, x, state, p))
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # only read here: no kernel runs
    assert triton_emit.decline(layer.model, x, state, p) is None
    assert "record_states" in str(triton_emit.decline(layer.model, x, state, p, True))
    ints = x.to(torch.int32)
    assert "torch.int32" in str(triton_emit.decline(layer.model, ints, state, p))
    learnable = snncore.create("lif", "layer", backend="torch", learnable=["tau_mem_inv"])
    reason = triton_emit.decline(learnable.model, x, state, learnable.parameters_now())
    assert reason is not None and "tau_mem_inv needs a gradient" in reason
    reason = triton_emit.decline(layer.model, x.double(), state, p)
    assert reason is not None and "torch.float32, the input torch.float64" in reason
    assert "empty" in str(triton_emit.decline(layer.model, x[:0], state, p))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
