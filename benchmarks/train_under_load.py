"""Time per training step of the demo (``snn train memory``) on a busy CPU: new thread default
against the old one, side by side under the same competing load.

The old default was PyTorch's thread count (one per core); the memory task now defaults to
``--threads 1`` (its network is 2 × 10 neurons, and threads that spin-wait for each other
collapse when other processes hold the cores).  The script starts ``--load`` busy loops
(``python -c "while True: pass"``), runs a few training batches of the demo's default network
with each setting, one after the other, reads ``seconds_per_train_batch`` from
``metrics.json``, prints both and the ratio old / new (> 1: the new default is faster), and
kills the loops.  A short warm-up run without load first fills the kernel cache.

    .venv/bin/python benchmarks/train_under_load.py            # about two minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SNN = Path(sys.executable).parent / "snn"


def torch_default_threads() -> int:
    """What ``torch.get_num_threads()`` is in a fresh process: the old default."""
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)


def per_batch(batches: int, threads: list[str], output: Path) -> float:
    """Mean seconds per training batch of a short demo run (test and validation kept small)."""
    command = [
        str(SNN), "train", "memory", "--max-epochs", "1", "--limit-train-batches", str(batches),
        "--val-samples", "32", "--test-samples", "32", "--no-progress", "--overwrite",
        "--output", str(output), *threads,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return float(json.loads((output / "metrics.json").read_text())["seconds_per_train_batch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="training batches per setting")
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes")
    args = parser.parse_args()
    old_threads = torch_default_threads()
    settings = {
        "new default (task's: 1 thread)": [],
        f"old default (torch's: {old_threads} threads)": ["--threads", str(old_threads)],
    }
    with tempfile.TemporaryDirectory() as folder:
        per_batch(1, [], Path(folder) / "warm-up")
        loops = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)
        ]
        try:
            print(
                f"{os.cpu_count()} CPUs, {args.load} busy loops, {args.batches} batches each, "
                f"load average {os.getloadavg()[0]:.1f} at start"
            )
            seconds = {}
            for name, threads in settings.items():
                seconds[name] = per_batch(args.batches, threads, Path(folder) / "run")
                print(f"  {name:<32} {seconds[name]:7.2f} s per training step", flush=True)
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
    new, old = seconds.values()
    print(f"ratio old / new: {old / new:.2f}  (load average {os.getloadavg()[0]:.1f} at end)")


if __name__ == "__main__":
    main()
