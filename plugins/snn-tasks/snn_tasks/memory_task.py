"""The ``memory`` task's declaration: its own options and defaults (see docs/tasks.md).

The network and data live in :mod:`snn_tasks.memory` and :mod:`snn_tasks.memory_data`, imported
only when the task runs.
"""

from __future__ import annotations

import click

from snn_tasks.task import TrainingTask


def _option(flags: list[str], default: object, help_text: str, **kwargs: object) -> click.Option:
    return click.Option(flags, default=default, show_default=True, help=help_text, **kwargs)  # type: ignore[arg-type]


def _even(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """``--periods`` must be even: checked here, not as a ``ValueError`` deep in the data."""
    if value % 2:
        raise click.BadParameter(
            f"{value} is odd; it must be even (each store/recall pair stores in the first half "
            "of its periods and recalls in the second)"
        )
    return value


MEMORY_OPTIONS: tuple[click.Option, ...] = (
    _option(["--batch-size"], 32, "Sequences per batch (per process).", type=click.IntRange(1)),
    _option(["--learning-rate"], 0.01, "Adam's learning rate.", type=click.FloatRange(0, min_open=True)),
    _option(["--lr-step"], 40, "Epochs between learning-rate decays (StepLR).", type=click.IntRange(1)),
    _option(["--lr-gamma"], 0.3, "Learning-rate factor at each decay.", type=click.FloatRange(0, 1)),
    _option(
        ["--train-samples", "--data-subset"], 256,
        "Training sequences per epoch (drawn afresh every epoch).", type=click.IntRange(1),
    ),
    _option(["--val-samples"], 64, "Validation sequences (one store/recall pair).", type=click.IntRange(1)),
    _option(["--test-samples"], 256, "Test sequences (--test-pairs pairs each).", type=click.IntRange(1)),
    _option(["--train-pairs"], 1, "Store/recall pairs per training and validation sequence.", type=click.IntRange(1)),
    _option(["--test-pairs"], 2, "Store/recall pairs per test sequence.", type=click.IntRange(1)),
    _option(["--seq-length"], 200, "Time steps per period (dt each).", type=click.IntRange(1)),
    _option(
        ["--periods"], 12, "Periods per store/recall pair (even).", type=click.IntRange(2),
        callback=_even,
    ),
    _option(["--population"], 5, "Input neurons per channel (4 channels).", type=click.IntRange(1)),
    _option(["--data-rate"], 100.0, "Poisson rate of the data channels (Hz).", type=click.FloatRange(0)),
    _option(["--command-rate"], 50.0, "Poisson rate of the store/recall channels (Hz).", type=click.FloatRange(0)),
    _option(["--hidden"], 10, "Neurons in each population (LIF and LSNN).", type=click.IntRange(1)),
    _option(["--v-th"], 0.5, "Threshold of both populations.", type=float),
    _option(["--tau-adapt"], 1.2, "LSNN threshold-adaptation time constant (s).", type=click.FloatRange(0, min_open=True)),
    _option(["--beta"], 0.1, "LSNN threshold jump per spike.", type=click.FloatRange(0)),
    _option(
        ["--adaptation-gradient/--no-adaptation-gradient"], True,
        "Back-propagate through the LSNN threshold jump (off: the reference's detached jump).",
    ),
    _option(["--surrogate"], "super", "Surrogate gradient of both populations (snn list-surrogates)."),
    _option(["--alpha"], 10.0, "Surrogate sharpness.", type=click.FloatRange(0, min_open=True)),
    _option(
        ["--rate-regularization"], 0.0,
        "Weight of the firing-rate penalty Σ (rate − target)² (rates per ms).", type=click.FloatRange(0),
    ),
    _option(["--target-rate"], 10.0, "Target firing rate of the penalty (Hz).", type=click.FloatRange(0)),
    _option(
        ["--chain"], 2,
        "Chain training batches in runs of N: the first from rest, each next one where the "
        "previous ended (1: all from rest; 0: the whole epoch).", type=click.IntRange(0),
    ),
    _option(["--dt"], 0.001, "Time step (s).", type=click.FloatRange(0, min_open=True)),
)  # fmt: skip

MEMORY_TASK = TrainingTask(
    name="memory",
    summary="LSNN store/recall memory task (recall accuracy; chance 50%)",
    builder="snn_tasks.memory:build",
    options=MEMORY_OPTIONS,
    # one thread: the network is 2 × 10 neurons, too small for a second thread to pay, and
    # several threads spin-waiting for each other collapse when the CPU is busy (docs/tasks.md)
    defaults={"max_epochs": 60, "threads": 1},
    metric="test_accuracy",
)
