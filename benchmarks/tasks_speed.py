"""Time per training step of the memory and MNIST tasks: this tree against another revision.

Each task runs a short ``snn train`` (a few batches of one epoch, default settings otherwise;
after one uncounted run per side, so that kernels compiled on first use come from the cache)
with the core and plugins of ``--baseline REV`` (checked out with ``git worktree`` into a
temporary folder, first on ``PYTHONPATH``) and of this tree, alternating, and reads the
``s per train batch`` the task prints.  The ratio is baseline / this tree (> 1: faster now).

    .venv/bin/python benchmarks/tasks_speed.py --baseline 9ca9911
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from baseline import baseline_checkout, environment

SNN = Path(sys.executable).parent / "snn"
TASKS = {
    "memory": ["--train-samples", "128", "--val-samples", "32", "--test-samples", "32"],
    "mnist": ["--data-subset", "2048"],
}


def per_batch(task: str, pythonpath: list[str], batches: int, output: Path) -> float:
    env = environment(pythonpath)
    command = [
        str(SNN), "train", task, "--max-epochs", "1", "--limit-train-batches", str(batches),
        "--no-progress", "--overwrite", "--output", str(output), *TASKS[task],
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"s per train batch\s+([0-9.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", default="memory,mnist")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, baseline_checkout(args.baseline) as old:
        run = Path(tmp) / "run"
        print(f"s per training batch (median of {args.rounds} runs of {args.batches} batches)")
        print(
            f"{'task':<8}{'baseline':>10}{'this tree':>11}{'ratio':>8}   baseline = {args.baseline}"
        )
        for task in args.tasks.split(","):
            # one run each first, not counted: kernels compile on first use, then are cached
            per_batch(task, old, 1, run)
            per_batch(task, [], 1, run)
            before, after = [], []
            for _ in range(args.rounds):
                before.append(per_batch(task, old, args.batches, run))
                after.append(per_batch(task, [], args.batches, run))
            b, a = statistics.median(before), statistics.median(after)
            print(f"{task:<8}{b:>10.4f}{a:>11.4f}{b / a:>7.2f}x")


if __name__ == "__main__":
    main()
