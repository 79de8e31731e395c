"""Entry point of snn-bench: registers ``snn bench``.

Only click is imported here; torch and the benchmark (:mod:`snn_bench.bench`) are imported when
the command runs, so that ``snn --help`` stays cheap.
"""

from __future__ import annotations

import json
from typing import Any

import click

import snncore


@click.command("bench")
@click.option("--model", "model_name", default="lif", show_default=True)
@click.option("-T", "--T", "steps", default=500, show_default=True, type=click.IntRange(1))
@click.option("-B", "--B", "batch", default=16, show_default=True, type=click.IntRange(1))
@click.option("-N", "--N", "neurons", default=4096, show_default=True, type=click.IntRange(1))
@click.option("--backward", is_flag=True, help="Time forward+backward (default: forward only).")
@click.option(
    "--peers/--no-peers",
    "--reference/--no-reference",
    default=False,
    help="Also time the installed peer libraries (Norse, snnTorch, SpikingJelly).",
)
@click.option(
    "--memory", is_flag=True, help="Also measure peak memory of forward+backward per backend."
)
@click.option("--repeat", default=5, show_default=True, type=click.IntRange(1))
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_command(
    model_name: str,
    steps: int,
    batch: int,
    neurons: int,
    backward: bool,
    peers: bool,
    memory: bool,
    repeat: int,
    device: str,
    as_json: bool,
) -> None:
    """Time a feed-forward layer on every backend, beside the installed peers: milliseconds,
    speed-ups and the fraction of the memory-bandwidth bound (see snn_bench/bench.py)."""
    from snn_bench.bench import run_bench
    from snncore.cli import SCHEMA_VERSION

    variants = snncore.get_model(model_name).variants
    if "layer" not in variants:
        raise click.UsageError(
            f"model {model_name!r} has no feed-forward layer to benchmark; it offers {list(variants)}"
        )
    results = run_bench(
        model_name,
        steps,
        batch,
        neurons,
        repeat,
        device,
        peers,
        backward=backward,
        memory=memory,
        echo=None if as_json else click.echo,
    )
    if as_json:  # the envelope of every ``snn ... --json`` (docs/cli-json.md)
        payload = {"schema_version": SCHEMA_VERSION, "bench": results}
        click.echo(json.dumps(payload, indent=2, default=str))


@snncore.hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(bench_command)
