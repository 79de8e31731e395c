"""``snn bench``: forward+backward time of a feed-forward layer, every backend side by side.

All candidates run the same work in the same process, in turn, so their ratios are comparable
even on a noisy machine; the reported time is the median of ``repeat`` runs after one warm-up
run (the reference, which is slow, runs once without warm-up).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

#: Our model name -> the reference library's layer class of the same model.
REFERENCE_LAYERS = {
    "lif": "LIF",
    "li": "LI",
    "lif_adex": "LIFAdEx",
    "lif_ex": "LIFEx",
    "lsnn": "LSNN",
}


def _time_forward_backward(
    layer: torch.nn.Module, x: torch.Tensor, runs: int, warmup: int
) -> float:
    def once() -> float:
        x_in = x.detach().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out, _ = layer(x_in)
        out.sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(warmup):
        once()
    return statistics.median(once() for _ in range(runs))


def _reference_layer(model_name: str) -> Any:
    try:
        import norse.torch as reference  # type: ignore[import-not-found]
    except Exception:
        return None
    class_name = REFERENCE_LAYERS.get(model_name)
    return getattr(reference, class_name)() if class_name else None


def run_bench(
    model_name: str,
    steps: int,
    batch: int,
    neurons: int,
    repeat: int,
    device: str,
    reference: bool,
    echo: Callable[[str], None] = print,
) -> dict[str, float]:
    """Print one line per candidate and the ratios; returns ``{candidate: seconds}``."""
    from snncore.api import create, get_model
    from snncore.backends import backends_supporting

    model = get_model(model_name)
    dev = torch.device(device)
    x = torch.rand(steps, batch, neurons, device=dev) * 2.0
    echo(
        f"bench: {model_name} layer, forward+backward, T={steps} B={batch} N={neurons}, "
        f"{dev}, float32, median of {repeat}"
    )
    times: dict[str, float] = {}
    for backend in backends_supporting(model, "layer", dev, x.dtype):
        layer = create(model_name, variant="layer", backend=backend.name).to(dev)
        times[f"snncore/{backend.name}"] = _time_forward_backward(layer, x, repeat, 1)
        echo(f"  snncore backend {backend.name:<10} {times[f'snncore/{backend.name}']:9.3f} s")
    if reference:
        layer = _reference_layer(model_name)
        if layer is None:
            echo("  reference (norse) not installed or has no such layer: skipped")
        else:
            times["reference/norse"] = _time_forward_backward(layer.to(dev), x, 1, 0)
            echo(f"  reference norse {'':<10} {times['reference/norse']:9.3f} s")
    slowest = max(times.values())
    for name, seconds in times.items():
        echo(f"  {name:<22} {slowest / seconds:8.1f}x faster than the slowest")
    if "reference/norse" in times:
        for name, seconds in times.items():
            if name.startswith("snncore/"):
                echo(f"ratio reference/{name}: {times['reference/norse'] / seconds:.1f}x")
    return times
