"""The Triton kernels' checks through Triton's interpreter, run as a script (not collected by
pytest): ``TRITON_INTERPRET=1 python snn_backend_fused_triton_checks.py CHECK ...``.

The interpreter must be switched on before Triton decorates the kernels, i.e. before anything in
the process imports them, so test_snn_backend_fused_triton.py runs this file in subprocesses with
the variable set and asserts on what it prints: one JSON object per check, with the numbers
measured (spike flips, largest deviations, gradcheck's verdict).  The kernels run on CPU tensors
(``snn_backend_fused.triton.run``, which takes CPU tensors only under the interpreter); the
reference is the eager ``torch`` backend.

Checks (``name:arg:...``):

- ``exact:MODEL:DTYPE`` -- T=1000 steps, 3 × 40 neurons, perturbed initial state, against the
  eager backend: spikes (flips, the first one), final state, and the gradients of a loss weighing
  every output and final state field with respect to the input and the initial state;
- ``per_neuron:MODEL`` -- one parameter per neuron (float64, T=100);
- ``surrogate:MODEL:METHOD`` -- the input gradient with that surrogate (float64, T=100);
- ``gradcheck:MODEL`` -- ``torch.autograd.gradcheck`` (float64, T=12, 2 × 3, ``heaviside``:
  its pseudo-derivative is 0, so the kernel's backward must be the true derivative of the
  piecewise-smooth forward map, which finite differences can check);
- ``half:DTYPE`` -- LIF and LSNN in float16/bfloat16 (computed in float32) against the eager
  float32 step on the same input.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import torch
import torch.utils._pytree as pytree

import snncore

# model -> (parameter overrides, input scale): firing well over T=1000 steps
CASES: dict[str, tuple[dict[str, Any], float]] = {
    "lif": ({}, 3.0),
    "li": ({}, 3.0),
    "lsnn": ({"tau_adapt_inv": 20.0, "beta": 0.2}, 3.0),
    "lif_ex": ({}, 3.0),
    "lif_adex": ({}, 3.0),
    "lif_refrac": ({}, 3.0),
}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
FAST = os.environ.get("SNN_TRITON_GRADCHECK_FULL") != "1"
HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}
# sharpness per surrogate at which 200 steps of BPTT stay finite (test_..._surrogates.py)
ALPHAS = {
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


def _layer(name: str, dtype: torch.dtype, **extra: Any) -> Any:
    overrides = dict(CASES[name][0])
    if name == "lif_refrac" and ("method" in extra or "alpha" in extra):
        from snn_lif import LIFParameters
        from snn_refrac import LIFRefracParameters

        extra = {"p": LIFRefracParameters(lif=LIFParameters(**extra), rho_reset=2.0)}
    overrides.update(extra)
    return snncore.create(name, variant="layer", backend="torch", **overrides).to(dtype)


def _triton(layer: Any) -> Any:
    """``layer``'s call ``(x, state) -> (out, final)`` through the Triton kernel (never the eager
    fallback: a declined call is an error here)."""
    from snn_backend_fused import kernels
    from snn_backend_fused.triton import launch

    spec = kernels.kernel_for(layer.model, "layer")
    assert spec is not None, layer.model.name

    def call(x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        p = layer.parameters_now()
        assert launch.prepare(spec, x, state, p, layer.dt) is not None, "kernel declined"
        result = launch.run(spec, x, state, p, layer.dt)
        assert result is not None
        return result

    return call


def _initial_state(layer: Any, x: torch.Tensor, generator: torch.Generator) -> Any:
    """The model's initial state plus noise; a refractory counter stays a whole number."""
    state = layer.make_initial_state(layer.parameters_now(), x.shape[1:], x.device, x.dtype)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [
        leaf + 0.5 * torch.rand(leaf.shape, generator=generator, dtype=leaf.dtype)
        for leaf in leaves
    ]
    state = pytree.tree_unflatten(leaves, spec)
    if hasattr(state, "rho"):
        rho = torch.randint(0, 6, x.shape[1:], generator=generator).to(x.dtype)
        state = state._replace(rho=rho)
    return state


def _run(call: Any, x: torch.Tensor, state: Any, weights: torch.Tensor) -> tuple[Any, ...]:
    """Outputs, final state leaves and the gradients wrt the input and the (differentiable)
    initial state leaves -- a refractory counter is a step count and gets none."""
    x = x.detach().requires_grad_(True)
    leaves, spec = pytree.tree_flatten(state)
    rho = len(leaves) - 1 if hasattr(state, "rho") else -1
    leaves = [leaf.detach().requires_grad_(k != rho) for k, leaf in enumerate(leaves)]
    out, final = call(x, pytree.tree_unflatten(leaves, spec))
    finals = pytree.tree_leaves(final)
    loss = (out.double() * weights).sum() + sum(
        (2.0 + k) * f.double().sum() for k, f in enumerate(finals)
    )
    wrt = [x] + [leaf for leaf in leaves if leaf.requires_grad]
    grads = torch.autograd.grad(loss, wrt)
    return out.detach(), [f.detach() for f in finals], list(grads)


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def _close(a: torch.Tensor, b: torch.Tensor, scale: float = 1.0) -> float:
    """The smallest ``tol`` for which ``torch.testing.assert_close(a, b, rtol=tol,
    atol=tol * scale)`` passes: max |a − b| / (scale + |b|)."""
    a, b = a.double(), b.double()
    return float(((a - b).abs() / (scale + b.abs())).max())


def _relative(grads: list[torch.Tensor], refs: list[torch.Tensor]) -> tuple[float, bool]:
    """The gradients' deviation, ``_close`` with the scale of each gradient's largest magnitude
    (as the CPU kernels' tests compare them); whether all are finite and none is zero."""
    worst, sound = 0.0, True
    for grad, ref in zip(grads, refs, strict=True):
        scale = float(ref.abs().max())
        sound = sound and scale > 0 and bool(ref.isfinite().all()) and bool(grad.isfinite().all())
        worst = max(worst, _close(grad, ref, scale or 1.0))
    return worst, sound


def check_exact(name: str, dtype_name: str) -> dict[str, Any]:
    dtype = DTYPES[dtype_name]
    generator = torch.Generator().manual_seed(7)
    x = CASES[name][1] * torch.rand(1000, 3, 40, generator=generator, dtype=dtype)
    weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    layer = _layer(name, dtype)
    state = _initial_state(layer, x, generator)
    out, finals, grads = _run(_triton(layer), x, state, weights)
    out_ref, finals_ref, grads_ref = _run(layer, x, state, weights)
    spiking = layer.model.output == "spikes"
    result: dict[str, Any] = {"dtype": str(out.dtype), "elements": out.numel()}
    if spiking:
        differ = (out != out_ref).flatten(1).any(1)
        result["spike_rate"] = float(out_ref.mean())
        result["flips"] = int((out != out_ref).sum())
        first = int(differ.nonzero()[0]) if bool(differ.any()) else None
        result["first_flip"] = first
        result["equal_before_first_flip"] = bool(torch.equal(out[:first], out_ref[:first]))
    else:
        result["out_dev"] = _close(out, out_ref)
    result["state_dev"] = max(_close(a, b) for a, b in zip(finals, finals_ref, strict=True))
    result["state_abs_dev"] = max(_max_abs(a, b) for a, b in zip(finals, finals_ref, strict=True))
    result["grad_dev"], result["grads_sound"] = _relative(grads, grads_ref)
    result["grads"] = len(grads)
    result["grad_dtypes"] = sorted({str(g.dtype) for g in grads})
    return result


def check_per_neuron(name: str) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(3)
    x = 3.0 * torch.rand(100, 2, 5, generator=generator, dtype=torch.float64)
    spread = torch.linspace(60.0, 140.0, 5, dtype=torch.float64)
    if name == "lif_refrac":
        from snn_lif import LIFParameters
        from snn_refrac import LIFRefracParameters

        lif = LIFParameters(tau_mem_inv=spread, v_th=torch.tensor([0.9], dtype=torch.float64))
        layer = _layer(
            name,
            torch.float64,
            p=LIFRefracParameters(lif=lif, rho_reset=torch.tensor([3.0, 4, 5, 2, 1])),
        )
    else:
        layer = _layer(name, torch.float64, tau_mem_inv=spread)
    from snn_backend_fused import kernels
    from snn_backend_fused.triton import launch

    weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    state = layer.make_initial_state(layer.parameters_now(), x.shape[1:], x.device, x.dtype)
    spec = kernels.kernel_for(layer.model, "layer")
    call = launch.prepare(spec, x, state, layer.parameters_now(), layer.dt)
    out, finals, grads = _run(_triton(layer), x, state, weights)
    out_ref, finals_ref, grads_ref = _run(layer, x, state, weights)
    return {
        "per_neuron": bool(call is not None and call.per_neuron),
        "out_dev": _max_abs(out, out_ref),
        "state_dev": max(_max_abs(a, b) for a, b in zip(finals, finals_ref, strict=True)),
        "grad_dev": max(_max_abs(a, b) for a, b in zip(grads, grads_ref, strict=True)),
    }


def check_surrogate(name: str, method: str) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(5)
    x = 3.0 * torch.rand(100, 2, 16, generator=generator, dtype=torch.float64)
    weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    layer = _layer(name, torch.float64, method=method, alpha=ALPHAS[method])
    state = layer.make_initial_state(layer.parameters_now(), x.shape[1:], x.device, x.dtype)
    _, _, grads = _run(_triton(layer), x, state, weights)
    _, _, grads_ref = _run(layer, x, state, weights)
    worst, sound = _relative(grads[:1], grads_ref[:1])
    from snn_backend_fused import kernels

    return {"grad_dev": worst, "sound": sound, "index": kernels.surrogate_index(method)}


def check_gradcheck(name: str) -> dict[str, Any]:
    steps, shape = 12, (2, 3)
    if name == "li":
        layer = _layer(name, torch.float64)
    else:
        layer = _layer(name, torch.float64, method="heaviside")
    call = _triton(layer)
    generator = torch.Generator().manual_seed(11)
    x = 4.0 * torch.rand(steps, *shape, generator=generator, dtype=torch.float64)
    state = layer.make_initial_state(layer.parameters_now(), shape, x.device, x.dtype)
    leaves, spec = pytree.tree_flatten(state)
    leaves = [leaf + 0.3 * torch.rand(shape, generator=generator, dtype=x.dtype) for leaf in leaves]
    differentiable = len(leaves) - 1 if name == "lif_refrac" else len(leaves)
    if name == "lif_refrac":  # a step count, not differentiable
        leaves[-1] = torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, 1.0]], dtype=x.dtype)
    inputs = [t.detach().requires_grad_(True) for t in [x, *leaves[:differentiable]]]
    fixed = leaves[differentiable:]

    def f(x: torch.Tensor, *fields: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, final = call(x, pytree.tree_unflatten([*fields, *fixed], spec))
        return (out, *pytree.tree_leaves(final))

    spikes = int(f(*inputs)[0].detach().sum()) if name != "li" else None
    ok = torch.autograd.gradcheck(
        f, tuple(inputs), eps=1e-6, atol=1e-7, rtol=1e-6, fast_mode=FAST, raise_exception=False
    )
    return {"ok": bool(ok), "spikes": spikes, "outputs": steps * 6, "inputs": len(inputs)}


def check_half(dtype_name: str) -> dict[str, Any]:
    dtype = HALF[dtype_name]
    models: dict[str, Any] = {}
    for name in ("lif", "lsnn"):
        generator = torch.Generator().manual_seed(13)
        x = (3.0 * torch.rand(100, 2, 16, generator=generator)).to(dtype)
        half, single = _layer(name, dtype), _layer(name, torch.float32)
        state = half.make_initial_state(half.parameters_now(), x.shape[1:], x.device, x.dtype)
        weights = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        out, finals, grads = _run(_triton(half), x, state, weights)
        state32 = pytree.tree_map(lambda t: t.float(), state)
        out_ref, _, grads_ref = _run(single, x.float(), state32, weights)
        models[name] = {
            "dtypes": sorted({str(t.dtype) for t in [out, *finals, *grads]}),
            "agreement": float((out.float() == out_ref).double().mean()),
            "spike_rate": float(out_ref.mean()),
            "finite": all(bool(t.isfinite().all()) for t in [*finals, *grads]),
            "grad_cosine": float(
                torch.nn.functional.cosine_similarity(
                    grads[0].double().flatten(), grads_ref[0].double().flatten(), dim=0
                )
            ),
        }
    return {"models": models}


CHECKS = {
    "exact": check_exact,
    "per_neuron": check_per_neuron,
    "surrogate": check_surrogate,
    "gradcheck": check_gradcheck,
    "half": check_half,
}


def main(names: list[str]) -> None:
    import triton

    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    from snn_backend_fused.triton import lif

    decorated = type(lif.lif_forward).__name__
    print(
        json.dumps(
            {
                "check": "setup",
                "triton": triton.__version__,
                "interpreting": interpreting,
                "kernel": decorated,
            }
        ),
        flush=True,
    )
    for name in names:
        kind, *args = name.split(":")
        start, cpu = time.perf_counter(), time.process_time()
        result = CHECKS[kind](*args)
        result.update(check=name, seconds=round(time.perf_counter() - start, 2))
        result.update(cpu_seconds=round(time.process_time() - cpu, 2))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
