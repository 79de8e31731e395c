"""The fused backend's generic path on every registered model, against the eager backend.

Usage: .venv/bin/python benchmarks/fused_generic.py [--steps 500 --batch 16 --neurons 1024]
       [--repeat 3] [--models lif,izhikevich]

For each model, on its feed-forward layer (or, for recurrent-only models, its recurrent layer
with input_size = hidden_size = neurons): forward+backward (``out.backward(g)``, input requiring
grad) through

- ``eager``: the ``torch`` backend;
- ``generic``: the fused backend's generic path, the model's step compiled by ``torch.compile``
  (forced for every model here, kernel models included; the first call's time, compilation
  included, is printed as ``first``);
- ``kernel``: the fused backend's kernel, where the request has one (CPU layers: generated from
  the model's step; recurrent lif/lsnn: hand-written).

Candidates run interleaved, median of ``repeat`` rounds after the warm-up.  Times in ms; the
speed-ups are eager / generic and eager / kernel.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

import snncore

#: Input scale per model: enough drive to spike (Izhikevich's input is in its own units).
SCALE = {"izhikevich": 30.0}


class GenericOnly:
    """A backend object that always takes the fused backend's generic path."""

    name = "fused-generic"
    priority = -100
    summary = "the fused backend's generic path, forced"

    def supports(self, *args: Any) -> None:
        return None

    def run_layer(self, *args: Any) -> Any:
        from snn_backend_fused import generic

        return generic.run_layer(*args)

    def run_recurrent(self, *args: Any) -> Any:
        from snn_backend_fused import generic

        return generic.run_recurrent(*args)


def _build(name: str, variant: str, backend: Any, neurons: int) -> Any:
    kwargs = {"input_size": neurons, "hidden_size": neurons} if variant == "recurrent" else {}
    torch.manual_seed(0)
    return snncore.create(name, variant=variant, backend=backend, **kwargs)


def _once(layer: Any, x: torch.Tensor, g: torch.Tensor) -> float:
    x_in = x.detach().requires_grad_(True)
    start = time.perf_counter()
    out, _ = layer(x_in)
    out.backward(g)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--neurons", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="")
    args = parser.parse_args()
    from snn_backend_fused import generic

    generic.set_generic_mode("compile")
    fused = snncore.get_backend("fused")
    names = args.models.split(",") if args.models else [m.name for m in snncore.list_models()]
    print(
        f"fused backend, generic path vs eager: forward+backward, T={args.steps} "
        f"B={args.batch} N={args.neurons}, float32, {torch.get_num_threads()} threads, "
        f"median of {args.repeat}"
    )
    print(
        f"  {'model':<16} {'variant':<10} {'eager ms':>9} {'generic ms':>11} {'first s':>8} "
        f"{'speed-up':>9} {'kernel ms':>10} {'speed-up':>9}"
    )
    for name in names:
        model = snncore.get_model(name)
        variant = "layer" if "layer" in model.variants else "recurrent"
        x = SCALE.get(name, 2.0) * torch.rand(args.steps, args.batch, args.neurons)
        g = torch.randn(args.steps, args.batch, args.neurons)
        layers = {
            "eager": _build(name, variant, "torch", args.neurons),
            "generic": _build(name, variant, GenericOnly(), args.neurons),
        }
        if fused.route(model, variant).name in ("generated", "hand-tuned"):
            layers["kernel"] = _build(name, variant, "fused", args.neurons)
        first = {k: _once(layer, x, g) for k, layer in layers.items()}
        times: dict[str, list[float]] = {k: [] for k in layers}
        for _ in range(args.repeat):
            for k, layer in layers.items():
                times[k].append(_once(layer, x, g))
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        kernel = (
            f"{ms['kernel']:10.1f} {ms['eager'] / ms['kernel']:8.1f}x" if "kernel" in ms else ""
        )
        print(
            f"  {name:<16} {variant:<10} {ms['eager']:9.1f} {ms['generic']:11.1f} "
            f"{first['generic']:8.1f} {ms['eager'] / ms['generic']:8.1f}x {kernel}",
            flush=True,
        )
    failures = generic.compile_failures()
    if failures:
        print(f"compilation failed (ran eagerly): {failures}")


if __name__ == "__main__":
    main()
