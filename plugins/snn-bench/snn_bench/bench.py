"""``snn bench``: a feed-forward layer on every backend, beside the peer libraries, on one input.

All candidates run the same work in the same process, *interleaved*: every round runs each
candidate once, in turn, so that a noisy machine slows all of them alike; the reported time is
the median over rounds, after one warm-up run (kernels built, code compiled, buffers mapped).  A
candidate whose warm-up and first timed run both take longer than ``slow_seconds`` is measured
by that one run (the reference layer's backward, quadratic in T, takes half a minute).

Each run times the forward pass and, with ``backward=True``, the backward pass from a fixed
upstream gradient (``out.backward(g)``; the input requires grad), so forward and forward+backward
come from the same runs.  Without ``backward`` the forward pass runs under ``torch.no_grad()``.

Candidates: our backends that run the model (``snncore/NAME``), and with ``peers=True`` whichever
peer libraries are installed (never dependencies of the project): Norse (its layer class and its
step function over ``x.unbind(0)``), snnTorch (``Leaky``) and SpikingJelly (multi-step
``LIFNode``, torch backend) -- the last two for ``lif`` only, as the nearest equivalent neuron.

The memory-bandwidth bound: a 256 MiB tensor copy is timed in every round too, and its
(read + written) bytes per second is the machine's bandwidth.  A neuron layer must move at least
``bytes_per_element`` per element of the (T, B, N) input: forward 12 B in float32 (read x, write
the output and one saved state of the same size), backward 12 B (read the upstream gradient and
the saved state, write the input's gradient); inference (no grad) 8 B.  ``bound / measured`` is
the fraction of the bound achieved (above 1: the candidate moves fewer bytes than that model).

``memory=True`` also measures the peak memory of one forward+backward per backend, each in a
fresh process (resident memory, with glibc returning freed blocks at once), beyond the inputs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

import snncore
from snncore.backends import backends_supporting

#: Our model name -> the reference library's layer class of the same model.
REFERENCE_LAYERS = {
    "lif": "LIF",
    "li": "LI",
    "lif_adex": "LIFAdEx",
    "lif_ex": "LIFEx",
    "lsnn": "LSNN",
}
COPY_BYTES = 256 * 2**20

Runner = Callable[[torch.Tensor], torch.Tensor]


# -- peers ------------------------------------------------------------------------------------


def _norse_layer(model: str) -> Runner | None:
    try:
        import norse.torch as norse  # type: ignore[import-not-found]
    except Exception:
        return None
    class_name = REFERENCE_LAYERS.get(model)
    if class_name is None:
        return None
    layer = getattr(norse, class_name)()
    return lambda x: layer(x)[0]


def _norse_step_loop(model: str) -> Runner | None:
    if model != "lif":
        return None
    try:
        from norse.torch.functional.lif import (  # type: ignore[import-not-found]
            LIFFeedForwardState,
            LIFParameters,
            lif_feed_forward_step,
        )
    except Exception:
        return None
    p = LIFParameters()

    def run(x: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros_like(x[0])
        state = LIFFeedForwardState(v=zeros + p.v_leak, i=zeros)
        outputs = []
        for x_t in x.unbind(0):
            z, state = lif_feed_forward_step(x_t, state, p, 0.001)
            outputs.append(z)
        return torch.stack(outputs)

    return run


def _snntorch_leaky(model: str) -> Runner | None:
    if model != "lif":
        return None
    try:
        import snntorch  # type: ignore[import-not-found]
    except Exception:
        return None
    leaky = snntorch.Leaky(beta=0.9)  # 1 − dt·tau_mem_inv, the membrane decay of our default

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x[0])
        outputs = []
        for x_t in x.unbind(0):
            spk, mem = leaky(x_t, mem)
            outputs.append(spk)
        return torch.stack(outputs)

    return run


def _spikingjelly_lif(model: str) -> Runner | None:
    if model != "lif":
        return None
    try:
        from spikingjelly.activation_based import (  # type: ignore[import-not-found]
            functional,
            neuron,
        )
    except Exception:
        return None
    try:  # 0.0.0.0.x takes a backend; 2.x runs on torch without being asked
        node = neuron.LIFNode(tau=10.0, step_mode="m", backend="torch")
    except TypeError:
        node = neuron.LIFNode(tau=10.0, step_mode="m")

    def run(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(x)

    return run


PEERS: dict[str, Callable[[str], Runner | None]] = {
    "norse/layer": _norse_layer,
    "norse/step-loop": _norse_step_loop,
    "snntorch/Leaky": _snntorch_leaky,
    "spikingjelly/LIFNode": _spikingjelly_lif,
}


# -- timing -----------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _run_once(
    run: Runner, x: torch.Tensor, grad: torch.Tensor | None
) -> tuple[float, float | None]:
    """(forward seconds, forward+backward seconds or None)."""
    device = x.device
    if grad is None:
        with torch.no_grad():
            _sync(device)
            start = time.perf_counter()
            out = run(x)
            _sync(device)
            return time.perf_counter() - start, None
    x_in = x.detach().requires_grad_(True)
    _sync(device)
    start = time.perf_counter()
    out = run(x_in)
    _sync(device)
    forward = time.perf_counter() - start
    out.backward(grad)
    _sync(device)
    total = time.perf_counter() - start
    del out, x_in
    return forward, total


def _copy_bandwidth(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, Callable[[], float]]:
    source = torch.ones(COPY_BYTES // 4, device=device)
    target = torch.zeros_like(source)

    def once() -> float:
        _sync(device)
        start = time.perf_counter()
        target.copy_(source)
        _sync(device)
        return 2 * COPY_BYTES / (time.perf_counter() - start)

    return source, target, once


# -- peak memory (one fresh process per backend) ----------------------------------------------

_MEMORY_SCRIPT = r"""
import json, os, resource, sys, torch, snncore
model, backend, steps, batch, neurons = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
layer = snncore.create(model, variant="layer", backend=backend)
warm = torch.rand(3, 2, 4, requires_grad=True)
layer(warm)[0].sum().backward()
x = torch.rand(steps, batch, neurons) * 2.0
g = torch.randn(steps, batch, neurons)
x.requires_grad_(True)
try:  # reset the peak (VmHWM) to the current resident size; ru_maxrss would keep the
    with open("/proc/self/clear_refs", "w") as f:  # parent's peak from before the exec
        f.write("5")
except OSError:
    pass
before = status("VmRSS")
out, _ = layer(x)
after_forward = status("VmRSS")
out.backward(g)
peak = max(status("VmHWM"), status("VmRSS"))
print(json.dumps({"peak_bytes": peak - before, "after_forward_bytes": after_forward - before}))
"""


def _peak_memory(model: str, backend: str, steps: int, batch: int, neurons: int) -> dict[str, Any]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="16384")
    args = [sys.executable, "-c", _MEMORY_SCRIPT, model, backend, str(steps), str(batch)]
    result = subprocess.run(
        [*args, str(neurons)], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the benchmark ----------------------------------------------------------------------------


def run_bench(
    model_name: str,
    steps: int,
    batch: int,
    neurons: int,
    repeat: int,
    device: str,
    peers: bool,
    backward: bool = True,
    memory: bool = False,
    echo: Callable[[str], None] | None = print,
    slow_seconds: float = 5.0,
) -> dict[str, Any]:
    """Time every candidate; print a table unless ``echo`` is None; return the results."""
    say = echo or (lambda _line: None)
    model = snncore.get_model(model_name)
    if "layer" not in model.variants:
        raise ValueError(
            f"model {model_name!r} has no feed-forward layer to benchmark; it offers "
            f"{list(model.variants)}"
        )
    dev = torch.device(device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(steps, batch, neurons, generator=generator) * 2.0).to(dev)
    grad = torch.randn(steps, batch, neurons, generator=generator).to(dev) if backward else None
    numel = x.numel()

    candidates: dict[str, Runner] = {}
    for backend in backends_supporting(model, "layer", dev, x.dtype):
        layer = snncore.create(model_name, variant="layer", backend=backend.name).to(dev)
        candidates[f"snncore/{backend.name}"] = lambda xi, layer=layer: layer(xi)[0]
    missing: list[str] = []
    if peers:
        for name, make in PEERS.items():
            runner = make(model_name)
            if runner is None:
                missing.append(name)
            else:
                candidates[name] = runner

    _, _, copy_once = _copy_bandwidth(dev)
    bandwidths: list[float] = [copy_once()]
    forward: dict[str, list[float]] = {n: [] for n in candidates}
    total: dict[str, list[float]] = {n: [] for n in candidates}
    slow: set[str] = set()
    for name, run in candidates.items():  # warm-up, not counted
        f, t = _run_once(run, x, grad)
        if (t or f) > slow_seconds:  # slow, or a stall (page faults) on a busy machine: again
            f, t = _run_once(run, x, grad)
            if (t or f) > slow_seconds:  # slow indeed: this run is the measurement
                slow.add(name)
                forward[name].append(f)
                if t is not None:
                    total[name].append(t)
    for _ in range(repeat):
        bandwidths.append(copy_once())
        for name, run in candidates.items():
            if name in slow:
                continue
            f, t = _run_once(run, x, grad)
            forward[name].append(f)
            if t is not None:
                total[name].append(t)

    bandwidth = statistics.median(bandwidths)
    size = x.element_size()
    bytes_forward = (3 if backward else 2) * size * numel
    bytes_backward = 3 * size * numel
    bound_forward = bytes_forward / bandwidth
    bound_total = (bytes_forward + bytes_backward) / bandwidth
    results: dict[str, Any] = {
        "model": model_name,
        "steps": steps,
        "batch": batch,
        "neurons": neurons,
        "device": str(dev),
        "dtype": str(x.dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "repeat": repeat,
        "backward": backward,
        "bandwidth_bytes_per_s": bandwidth,
        "bound": {
            "forward_bytes_per_element": bytes_forward // numel,
            "backward_bytes_per_element": bytes_backward // numel,
            "forward_s": bound_forward,
            "forward_backward_s": bound_total if backward else None,
        },
        "candidates": {},
        "peers_missing": missing,
    }
    for name in candidates:
        entry: dict[str, Any] = {
            "runs": len(forward[name]),
            "forward_s": statistics.median(forward[name]),
            "forward_bound_fraction": bound_forward / statistics.median(forward[name]),
        }
        if backward:
            entry["forward_backward_s"] = statistics.median(total[name])
            entry["forward_backward_bound_fraction"] = bound_total / entry["forward_backward_s"]
        results["candidates"][name] = entry
    found = results["candidates"]
    results["speedups"] = {}
    for mine in (n for n in candidates if n.startswith("snncore/")):
        ratios: dict[str, dict[str, float]] = {}
        for other in candidates:
            if other == mine:
                continue
            ratios[other] = {"forward": found[other]["forward_s"] / found[mine]["forward_s"]}
            if backward:
                ratios[other]["forward_backward"] = (
                    found[other]["forward_backward_s"] / found[mine]["forward_backward_s"]
                )
        results["speedups"][mine] = ratios
    if memory:
        results["peak_memory"] = {
            name: _peak_memory(model_name, name.split("/", 1)[1], steps, batch, neurons)
            for name in results["speedups"]
        }
    _print(results, say)
    return results


def _print(results: dict[str, Any], say: Callable[[str], None]) -> None:
    r, bound = results, results["bound"]
    mode = "forward+backward" if r["backward"] else "forward (no grad)"
    say(
        f"bench: {r['model']} layer, {mode}, T={r['steps']} B={r['batch']} N={r['neurons']}, "
        f"{r['device']} {r['dtype']}, {r['threads']} threads, median of {r['repeat']} "
        f"interleaved rounds"
    )
    line = (
        f"bandwidth {r['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s (256 MiB copy, read+write); "
        f"bound: forward {bound['forward_s'] * 1e3:.3g} ms "
        f"({bound['forward_bytes_per_element']} B/element)"
    )
    if r["backward"]:
        line += (
            f", forward+backward {bound['forward_backward_s'] * 1e3:.3g} ms "
            f"(+{bound['backward_bytes_per_element']} B/element)"
        )
    say(line)
    header = f"  {'candidate':<22} {'forward ms':>11} {'of bound':>9}"
    if r["backward"]:
        header += f" {'fwd+bwd ms':>11} {'of bound':>9}"
    say(header + "  runs")
    for name, c in r["candidates"].items():
        row = f"  {name:<22} {c['forward_s'] * 1e3:11.1f} {c['forward_bound_fraction']:9.2f}"
        if r["backward"]:
            row += (
                f" {c['forward_backward_s'] * 1e3:11.1f} "
                f"{c['forward_backward_bound_fraction']:9.2f}"
            )
        say(f"{row}  {c['runs']}")
    for mine, others in r["speedups"].items():
        parts = []
        for other, ratio in others.items():
            text = f"{other} {ratio['forward']:.1f}x"
            if "forward_backward" in ratio:
                text += f" / {ratio['forward_backward']:.1f}x"
            parts.append(text)
        if parts:
            what = "forward / forward+backward" if r["backward"] else "forward"
            say(f"speed-up of {mine} ({what}): " + ", ".join(parts))
    if r["peers_missing"]:
        say(f"peers not installed or without this model: {', '.join(r['peers_missing'])}")
    for name, peak in r.get("peak_memory", {}).items():
        if "error" in peak:
            say(f"peak memory {name}: failed ({peak['error']})")
        else:
            say(
                f"peak memory of forward+backward beyond the inputs, {name}: "
                f"{peak['peak_bytes'] / 2**20:.0f} MiB "
                f"(after forward {peak['after_forward_bytes'] / 2**20:.0f} MiB)"
            )
