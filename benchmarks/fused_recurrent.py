"""The fused backend's recurrent layers (kernels generated from the models' steps) against the
eager backend.

Usage: .venv/bin/python benchmarks/fused_recurrent.py [--repeat 7] [--threads 2]
       [--cases memory,wide] [--hidden 512,1024] [--models lsnn,lif] [--memory]

Forward+backward of a recurrent layer (``loss = Σ out·g + Σ final v``; gradients reach the input
weights, the recurrent weights and, with ``--input-grad``, the input), both backends with the
same weights, input and initial state, run interleaved; median of ``repeat`` rounds after one
warm-up round (which also builds the generated kernel, or loads it from the cache).  Cases:

- ``memory``: the memory task's populations (snn_tasks.memory: input 20, hidden 10, batch 32,
  T=2400, v_th = 0.5; LSNN tau_adapt = 1.2 s, beta = 1.8), Poisson input spikes at 50 Hz;
- ``wide``: input 128, hidden 256, batch 16, T=500, Poisson input at 100 Hz scaled to spike;
- ``--hidden H,...``: the ``wide`` case with other hidden sizes.

``--models`` picks the models (default ``lsnn,lif``; any registered model with a recurrent
layer: ``lif_ex``, ``lif_adex``, ``lif_refrac``, ``izhikevich``, and the staged kernels of
``coba_lif``, ``lif_mc``, ``lif_mc_refrac``, ``lif_correlation``, with their default
parameters, Izhikevich's input scaled up for its mV scale).  Times in ms; speed-up = eager /
fused.  The machine may be shared: only the ratios of one run mean much.  ``--memory`` adds the
peak resident memory of one forward+backward beyond the inputs and weights, each backend in a
fresh process (peak reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

import snncore

MEMORY_PARAMETERS: dict[str, dict[str, float]] = {
    "lif": {"v_th": 0.5},
    "lsnn": {"v_th": 0.5, "tau_adapt_inv": 1.0 / 1.2, "beta": 1.8},
}
#: Input scale factors of models whose units need more drive to spike (Izhikevich: mV).
INPUT_GAIN = {"izhikevich": 100.0}


def _case(
    name: str, inputs: int, hidden: int, batch: int, steps: int, rate: float, scale: float
) -> dict[str, Any]:
    return {
        "name": name,
        "inputs": inputs,
        "hidden": hidden,
        "batch": batch,
        "steps": steps,
        "rate": rate,
        "scale": scale,
    }


def _gain(case: dict[str, Any]) -> float:
    """The amplitude of an input spike."""
    return case["scale"] * INPUT_GAIN.get(case["name"], 1.0)


def _layers(case: dict[str, Any]) -> list[Any]:
    torch.manual_seed(0)
    layers = []
    for backend in ("fused", "torch"):
        layers.append(
            snncore.create(
                case["name"],
                variant="recurrent",
                backend=backend,
                input_size=case["inputs"],
                hidden_size=case["hidden"],
                **MEMORY_PARAMETERS.get(case["name"], {}),
            )
        )
    layers[1].load_state_dict(layers[0].state_dict())
    return layers


def _membrane(state: Any) -> torch.Tensor:
    """The final state's ``v`` (``lif_refrac``: ``lif.v``; ``lif_correlation``: ``lif_state.v``)."""
    for inner in ("lif", "lif_state"):
        state = getattr(state, inner, state)
    return state.v


def _once(layer: Any, x: torch.Tensor, g: torch.Tensor, input_grad: bool) -> tuple[float, float]:
    layer.zero_grad(set_to_none=True)
    x_in = x.detach().requires_grad_(input_grad)
    start = time.perf_counter()
    out, final = layer(x_in)
    ((out * g).sum() + _membrane(final).sum()).backward()
    return time.perf_counter() - start, float(out.detach().mean())


def _check_generated(layer: Any, x: torch.Tensor) -> None:
    """The fused layer's calls run the generated kernel (not declined, not the generic path)."""
    from snn_backend_fused.compiler import kernel

    route = snncore.get_backend("fused").route(layer.model, "recurrent", x.device, x.dtype)
    assert route.name == "generated", f"{layer.model.name}: {route.reason}"
    p = layer.parameters_now()
    state = layer._initial_recurrent_state(p, x)
    reason = kernel.decline_recurrent(x, state, p, layer.record_states)
    assert reason is None, f"the generated kernel declines: {reason}"


def run_case(case: dict[str, Any], repeat: int, input_grad: bool) -> dict[str, float]:
    generator = torch.Generator().manual_seed(1)
    shape = (case["steps"], case["batch"], case["inputs"])
    x = _gain(case) * (torch.rand(shape, generator=generator) < case["rate"]).float()
    g = torch.randn(case["steps"], case["batch"], case["hidden"], generator=generator)
    fused, eager = _layers(case)
    _check_generated(fused, x)
    times: dict[str, list[float]] = {"fused": [], "torch": []}
    rate = 0.0
    for round_ in range(repeat + 1):
        for label, layer in (("fused", fused), ("torch", eager)):
            seconds, rate = _once(layer, x, g, input_grad)
            if round_:
                times[label].append(seconds)
    fused_ms = 1e3 * statistics.median(times["fused"])
    eager_ms = 1e3 * statistics.median(times["torch"])
    return {"fused": fused_ms, "torch": eager_ms, "speedup": eager_ms / fused_ms, "rate": rate}


def _resident(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field))


def _measure_memory(spec: str) -> None:
    """In a fresh process: one forward+backward of ``name,I,H,B,T,rate,scale,backend``."""
    name, inputs, hidden, batch, steps, rate, scale, backend = spec.split(",")
    case = _case(name, int(inputs), int(hidden), int(batch), int(steps), float(rate), float(scale))
    layer = _layers(case)[0 if backend == "fused" else 1]
    _once(layer, torch.rand(3, 2, case["inputs"]), torch.randn(3, 2, case["hidden"]), False)
    x = (
        _gain(case)
        * (torch.rand(case["steps"], case["batch"], case["inputs"]) < case["rate"]).float()
    )
    g = torch.randn(case["steps"], case["batch"], case["hidden"])
    with open("/proc/self/clear_refs", "w") as refs:  # the peak (VmHWM) := the current size
        refs.write("5")
    before = _resident("VmRSS")
    _once(layer, x, g, False)
    print(json.dumps(max(_resident("VmHWM"), _resident("VmRSS")) - before))


def peak_memory(case: dict[str, Any], backend: str) -> float:
    """MiB beyond the inputs of one forward+backward of ``case`` on ``backend``."""
    keys = ("name", "inputs", "hidden", "batch", "steps", "rate", "scale")
    spec = ",".join([*(str(case[k]) for k in keys), backend])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="16384")  # freed blocks go back at once
    command = [sys.executable, __file__, "--measure-memory", spec]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return int(result.stdout.split()[-1]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: as is)")
    parser.add_argument("--cases", default="memory,wide")
    parser.add_argument("--models", default="lsnn,lif", help="recurrent models to time")
    parser.add_argument("--hidden", default="", help="extra hidden sizes of the wide case")
    parser.add_argument("--input-grad", action="store_true", help="the input requires grad")
    parser.add_argument("--memory", action="store_true", help="peak memory, fresh processes")
    parser.add_argument("--measure-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:
        _measure_memory(args.measure_memory)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    cases = []
    for which in filter(None, args.cases.split(",")):
        for name in models:
            if which == "memory":
                cases.append(_case(name, 20, 10, 32, 2400, 0.05, 1.0))
            elif which == "wide":
                cases.append(_case(name, 128, 256, 16, 500, 0.1, 3.0))
            else:
                raise SystemExit(f"unknown case {which!r} (memory, wide)")
    for hidden in filter(None, args.hidden.split(",")):
        for name in models:
            cases.append(_case(name, 128, int(hidden), 16, 500, 0.1, 3.0))
    print(
        f"recurrent layers, forward+backward, cpu float32, {torch.get_num_threads()} threads, "
        f"median of {args.repeat} interleaved rounds"
    )
    print(f"  {'model':10} {'I':>4} {'H':>5} {'B':>3} {'T':>5}  {'rate':>6}  "
          f"{'fused ms':>9} {'eager ms':>9} {'speed-up':>8}")  # fmt: skip
    for case in cases:
        result = run_case(case, args.repeat, args.input_grad)
        memory = ""
        if args.memory:
            fused_mib, eager_mib = (peak_memory(case, b) for b in ("fused", "torch"))
            memory = f"  peak MiB fused {fused_mib:.1f} eager {eager_mib:.1f}"
        print(
            f"  {case['name']:10} {case['inputs']:>4} {case['hidden']:>5} {case['batch']:>3} "
            f"{case['steps']:>5}  {result['rate']:6.3f}  {result['fused']:9.1f} "
            f"{result['torch']:9.1f} {result['speedup']:7.1f}x{memory}"
        )


if __name__ == "__main__":
    main()
