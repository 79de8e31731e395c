"""Generated kernels against the eager backend, one run.

For every registered model with a feed-forward layer: forward+backward of a layer at T=500,
B=16, N=1024 (float32, input requiring grad, a fixed upstream gradient), median of interleaved
rounds, on the ``torch`` backend (eager) and through the generated kernel.  Prints ms and
speed-ups, and whether the generated kernel's spikes equal the eager ones on that input.  (The
hand-written C++ layer kernels this was once compared with are gone: see docs/backend-fused.md.)

    .venv/bin/python benchmarks/fused_generated.py [-T 500 -B 16 -N 1024 --repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import snncore

SCALE = {"izhikevich": 10.0, "coba_lif": 0.5, "li": 1.0}


def _layer_runner(name: str, how: str) -> Callable[[torch.Tensor, torch.Tensor], Any]:
    from snn_backend_fused.compiler import kernel as generated

    layer = snncore.create(name, "layer", backend="torch")
    model = layer.model

    def state_for(x: torch.Tensor) -> Any:
        return layer.make_initial_state(layer.parameters_now(), x.shape[1:], x.device, x.dtype)

    if how == "eager":

        def run(x: torch.Tensor, g: torch.Tensor) -> Any:
            out, _ = layer(x)
            out.backward(g)
            return out

    else:

        def run(x: torch.Tensor, g: torch.Tensor) -> Any:
            result = generated.run_layer(model, x, state_for(x), layer.parameters_now(), layer.dt)
            if isinstance(result, str):
                raise RuntimeError(result)
            result[0].backward(g)
            return result[0]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-T", type=int, default=500)
    parser.add_argument("-B", type=int, default=16)
    parser.add_argument("-N", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", nargs="*")
    args = parser.parse_args()
    torch.manual_seed(0)
    names = args.models or sorted(m.name for m in snncore.list_models() if "layer" in m.variants)
    print(
        f"layer forward+backward, T={args.T} B={args.B} N={args.N}, float32, "
        f"{torch.get_num_threads()} threads; ms (median of {args.repeat})"
    )
    print(f"{'model':<14}{'eager':>9}{'generated':>11}{'speed-up':>10}  spikes equal")
    for name in names:
        x = SCALE.get(name, 2.0) * torch.rand(args.T, args.B, args.N)
        g = torch.randn_like(x)
        runners = {how: _layer_runner(name, how) for how in ("eager", "generated")}
        outputs = {k: run(x.clone().requires_grad_(), g).detach() for k, run in runners.items()}
        times: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.repeat):
            for how, run in runners.items():
                xi = x.clone().requires_grad_()
                start = time.perf_counter()
                run(xi, g)
                times[how].append(time.perf_counter() - start)
        ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        equal = torch.equal(outputs["eager"], outputs["generated"])
        print(
            f"{name:<14}{ms['eager']:>9.1f}{ms['generated']:>11.1f}"
            f"{ms['eager'] / ms['generated']:>9.1f}x  {equal}"
        )


if __name__ == "__main__":
    main()
