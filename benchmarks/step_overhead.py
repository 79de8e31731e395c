"""Per-step overhead of a small eager layer: this tree against another revision, in one run.

A 16-neuron LIF layer over T = 10,000 steps on the ``torch`` backend does almost no arithmetic
per step, so its time per step is the library's per-step overhead (Python, dispatch, lookups).
Timed: the layer as built (LIF's whole-sequence function) and the step loop (``record_states=
True``: the model's step function once per step, the path every model without a whole-sequence
function takes), both without gradients, and the step loop forward+backward.  The same measurement runs in a subprocess against the core
and plugins of ``--baseline REV`` (checked out with ``git worktree`` into a temporary folder
and put first on ``PYTHONPATH``), alternating with this tree, so both sides see the same machine
load; the ratio is baseline / this tree (> 1: this tree is faster).

    .venv/bin/python benchmarks/step_overhead.py --baseline 0406338
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from baseline import baseline_checkout, environment

MEASURE = """
import json, sys, time
import torch
import snncore
torch.set_num_threads(1)
steps, neurons, repeat = {steps}, {neurons}, {repeat}
x = torch.rand(steps, 1, neurons) * 3
result = {{}}
routes = (
    ("layer", {{}}, False),
    ("step loop", {{"record_states": True}}, False),
    ("step loop, forward+backward", {{"record_states": True}}, True),
)
for route, kwargs, backward in routes:
    layer = snncore.create("lif", variant="layer", backend="torch", **kwargs)
    times = []
    for _ in range(repeat + 1):
        xr = x.clone().requires_grad_(backward)
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out, _ = layer(xr)
            if backward:
                out.sum().backward()
        times.append(time.perf_counter() - start)
    result[route] = min(times[1:]) / steps * 1e6
print(json.dumps(result))
"""


def measure(pythonpath: list[str], steps: int, neurons: int, repeat: int) -> dict[str, float]:
    env = environment(pythonpath)
    env["SNNCORE_DISABLE_PLUGINS"] = "snn-bench,snn-scaffold,snn-tasks"  # not needed here
    code = MEASURE.format(steps=steps, neurons=neurons, repeat=repeat)
    code += "\nimport sys; print(snncore.__file__, file=sys.stderr)"
    # not from the repository's root: `python -c` puts the working directory first on sys.path,
    # which would import this tree's snncore ahead of the baseline's
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    if out.returncode != 0:
        raise SystemExit(f"measurement failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare against")
    parser.add_argument("-T", "--steps", type=int, default=10_000)
    parser.add_argument("-N", "--neurons", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    args = parser.parse_args()
    sides: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
    with baseline_checkout(args.baseline) as old:
        for _ in range(args.rounds):
            sides["baseline"].append(measure(old, args.steps, args.neurons, args.repeat))
            sides["this tree"].append(measure([], args.steps, args.neurons, args.repeat))
    print(f"LIF layer, N={args.neurons}, B=1, T={args.steps}, torch backend, 1 thread")
    print(
        f"baseline = {args.baseline}; µs per step (best of {args.repeat}, median of {args.rounds} rounds)"
    )
    print(f"{'route':<30}{'baseline':>10}{'this tree':>11}{'ratio':>8}")
    for route in sides["baseline"][0]:
        before = statistics.median(r[route] for r in sides["baseline"])
        after = statistics.median(r[route] for r in sides["this tree"])
        print(f"{route:<30}{before:>10.2f}{after:>11.2f}{before / after:>7.2f}x")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s)")
