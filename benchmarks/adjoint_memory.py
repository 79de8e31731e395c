"""Memory of adjoint gradients against surrogate BPTT: one forward + backward of a layer.

Usage: .venv/bin/python benchmarks/adjoint_memory.py [--steps 1000 --batch 32 --neurons 512]
       [--models lif,lsnn] [--device cpu|cuda]

Each measurement runs in a fresh Python process: the layer runs once on a tiny input (imports,
plugin discovery, kernels), then ``x`` (T, B, N, requires_grad) and the loss weights ``w`` are
made, then ``loss = (spikes·w).sum() + v_T.sum()`` is computed and back-propagated.  Reported:

- ``graph``: memory held after the forward pass, beyond the inputs — the spikes (the output,
  T·B·N floats, the same for every method) plus whatever the method keeps for its backward pass;
- ``peak``: the highest memory during forward + backward, beyond the inputs.  Backward needs at
  least the spikes, their gradient and the input's gradient: three T·B·N tensors for any method,
  so ``peak − 3·T·B·N`` is what the method itself costs.

Times are printed for information only: on the CPU they include the cost of the per-allocation
``mmap`` that the measurement needs.

How memory is measured.  On CUDA, ``torch.cuda.max_memory_allocated`` / ``memory_allocated``:
exactly the bytes of live tensors.  On the CPU the process's resident memory is read
(``/proc/self/statm`` now, ``getrusage(RUSAGE_SELF).ru_maxrss`` for the peak), with glibc told to
serve every allocation above 16 KiB by its own ``mmap`` (``MALLOC_MMAP_THRESHOLD_=16384``), so
a freed tensor goes back to the system at once and resident memory follows the live tensors
instead of the allocator's high-water mark; the remaining error is the few small allocations
still served from the heap (tens of kB).  ``tracemalloc`` would see none of this (tensors are not
Python objects).

Methods: ``adjoint`` — the layer with ``adjoint=True``; ``layer`` — the ordinary layer (for LIF
the whole-sequence surrogate node of snn_lif/sequence.py, which keeps two T·B·N tensors);
``step loop`` — the model's step function called T times under autograd (true BPTT through the
surrogate); ``learnable`` — the ordinary layer with ``learnable=["tau_mem_inv"]``, which makes
the backend loop over the step function too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

METHODS = {"lif": ("adjoint", "layer", "step loop", "learnable"), "lsnn": ("adjoint", "layer")}
#: Parameters (beyond the defaults) and input scale: LSNN's default threshold hardly relaxes
#: (tau_adapt_inv = 1/800), which silences it after a few spikes; these keep both models firing
#: at a few percent.
PARAMETERS: dict[str, dict[str, float]] = {"lif": {}, "lsnn": {"tau_adapt_inv": 20.0, "beta": 0.2}}
SCALE = {"lif": 0.6, "lsnn": 0.6}
MiB = 2.0**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _run(model: str, method: str, x: Any) -> Any:
    """The forward pass: (spikes, final state)."""
    import torch

    import snncore

    if method == "step loop":
        spec = snncore.get_model(model)
        layer = snncore.create(spec, "layer", **PARAMETERS[model]).to(x.device)
        p, state = layer.parameters_now(), None
        state = layer.make_initial_state(p, x.shape[1:], x.device, x.dtype)
        outs = []
        for x_t in x.unbind(0):
            out, state = spec.feed_forward_step(x_t, state, p, layer.dt)
            outs.append(out)
        spikes = torch.stack(outs)
    else:
        options = {"adjoint": {"adjoint": True}, "layer": {}, "learnable": {}}[method]
        if method == "learnable":
            options = {"learnable": ["tau_mem_inv"]}
        layer = snncore.create(model, **options, **PARAMETERS[model]).to(x.device)
        spikes, state = layer(x)
    return spikes, state


def worker(model: str, method: str, steps: int, batch: int, neurons: int, device: str) -> None:
    import torch

    torch.set_num_threads(1)
    cuda = device == "cuda"
    scale = SCALE[model]

    def now() -> int:
        return torch.cuda.memory_allocated() if cuda else _rss()

    warm_x = torch.rand(3, 2, 4, device=device, requires_grad=True)
    spikes, state = _run(model, method, warm_x)
    (spikes.sum() + state.v.sum()).backward()
    del warm_x, spikes, state
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(steps, batch, neurons, generator=generator, device=device) * scale
    x.requires_grad_(True)
    w = torch.randn(steps, batch, neurons, generator=generator, device=device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base, base_max = now(), _max_rss()
    start = time.perf_counter()
    spikes, state = _run(model, method, x)
    graph = now() - base
    loss = (spikes * w).sum() + state.v.sum()
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _max_rss() - base
    seconds = time.perf_counter() - start
    result = {
        "graph": graph,
        "peak": peak,
        "seconds": seconds,
        "spike_rate": spikes.detach().mean().item(),
        "tensor": x.numel() * x.element_size(),
        "peak_valid": cuda or _max_rss() > base_max,
        "grad_norm": x.grad.norm().item(),
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--neurons", type=int, default=512)
    parser.add_argument("--models", default="lif,lsnn")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.steps, args.batch, args.neurons, args.device)
        return
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="16384", MALLOC_TRIM_THRESHOLD_="0")
    size = args.steps * args.batch * args.neurons
    print(
        f"T={args.steps} B={args.batch} N={args.neurons} float32 on {args.device}: one T·B·N "
        f"tensor = {size * 4 / MiB:.1f} MiB; memory beyond the inputs x and w"
    )
    for model in args.models.split(","):
        results = {}
        for method in METHODS[model]:
            command = [sys.executable, __file__, "--worker", model, method]
            command += ["--steps", str(args.steps), "--batch", str(args.batch)]
            command += ["--neurons", str(args.neurons), "--device", args.device]
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
        adjoint = results["adjoint"]
        print(f"\n{model}: spike rate {adjoint['spike_rate']:.3f}")
        print(
            f"  {'method':<10} {'graph MiB':>10} {'peak MiB':>10} {'peak−3T·B·N':>12} "
            f"{'time s':>7}  peak/adjoint"
        )
        for method, r in results.items():
            note = "" if r["peak_valid"] else "  (peak below an earlier high-water mark)"
            print(
                f"  {method:<10} {r['graph'] / MiB:>10.1f} {r['peak'] / MiB:>10.1f} "
                f"{(r['peak'] - 3 * r['tensor']) / MiB:>12.1f} {r['seconds']:>7.2f}  "
                f"{r['peak'] / adjoint['peak']:>6.2f}{note}"
            )
        for method, r in results.items():
            if method != "adjoint":
                extra = (r["graph"] - r["tensor"]) / max(adjoint["graph"] - adjoint["tensor"], 1)
                print(
                    f"  kept for backward beyond the spikes: {method} / adjoint = {extra:.1f} "
                    f"({(r['graph'] - r['tensor']) / MiB:.1f} / "
                    f"{(adjoint['graph'] - adjoint['tensor']) / MiB:.1f} MiB)"
                )


if __name__ == "__main__":
    main()
