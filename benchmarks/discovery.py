"""Cheap discovery: median wall time of `snn list-models` beside `python -c "import torch"`.

Both commands run alternately in the same loop so machine noise hits both alike.
Usage: .venv/bin/python benchmarks/discovery.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    snn = str(Path(sys.executable).parent / "snn")
    commands = {
        "import torch": [sys.executable, "-c", "import torch"],
        "snn list-models": [snn, "list-models"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the file cache
        wall(cmd)
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"{name:<16} median {m:.3f} s over {runs} runs (min {min(times[name]):.3f} s)")
    print(
        f"ratio snn list-models / import torch: {medians['snn list-models'] / medians['import torch']:.2f}"
    )


if __name__ == "__main__":
    main()
