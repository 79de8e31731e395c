"""``snn nir``: inspect, export and run NIR graphs (docs/nir.md).

``snn nir info FILE [--json]`` lists the nodes (type, input and output shapes), the edges and
whether the graph is recurrent; ``snn nir export CHECKPOINT --output FILE.nir [--convention
snntorch]`` writes a trained task's network (tasks that offer it: ``nir_network``); ``snn nir
run FILE --input X.npy`` runs a graph on a time-major array.  A missing or unreadable file, an
unknown node type or wrong shapes print one line and exit 2; torch and nir are imported inside
the commands only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


class NIRCommandError(click.ClickException):
    """An expected NIR error: one line, exit code 2."""

    exit_code = 2


def _fail(exc: BaseException) -> NIRCommandError:
    return NIRCommandError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _shape(types: Any, key: str) -> list[int] | None:
    import numpy as np

    value = (types or {}).get(key)
    return None if value is None else [int(s) for s in np.asarray(value).reshape(-1)]


def graph_summary(path: str) -> dict[str, Any]:
    """``snn nir info``'s JSON: nodes, edges, inputs, outputs, recurrent (docs/cli-json.md)."""
    from snncore.nir import NIRError, NIRUnavailableError, read_graph
    from snncore.nir._import import _topological, flatten_graph

    try:
        graph = read_graph(path)
        nodes, edges = flatten_graph(graph)
    except (NIRError, NIRUnavailableError) as exc:
        raise _fail(exc) from None
    try:
        _topological(list(nodes), edges)
        recurrent = False
    except NIRError:
        recurrent = True
    rows = [
        {
            "name": name,
            "type": type(node).__name__,
            "input_shape": _shape(getattr(node, "input_type", None), "input"),
            "output_shape": _shape(getattr(node, "output_type", None), "output"),
        }
        for name, node in nodes.items()
    ]
    kinds = {row["name"]: row["type"] for row in rows}
    return {
        "schema_version": 1,
        "file": str(path),
        "nodes": rows,
        "edges": [list(e) for e in edges],
        "inputs": [n for n, k in kinds.items() if k == "Input"],
        "outputs": [n for n, k in kinds.items() if k == "Output"],
        "recurrent": recurrent,
    }


@click.group("nir")
def nir_group() -> None:
    """Exchange networks with other simulators and hardware through NIR (docs/nir.md)."""


@nir_group.command("info")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli-json.md).")
def info_command(file: str, as_json: bool) -> None:
    """List FILE's nodes with their types and shapes, its edges, and whether it is recurrent."""
    summary = graph_summary(file)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{file}: {len(summary['nodes'])} nodes, {len(summary['edges'])} edges, "
               f"{'recurrent' if summary['recurrent'] else 'feed-forward'}")  # fmt: skip
    for row in summary["nodes"]:
        click.echo(
            f"  {row['name']:<24} {row['type']:<10} {row['input_shape']} -> {row['output_shape']}"
        )
    for source, target in summary["edges"]:
        click.echo(f"  {source} -> {target}")


def _task_of(checkpoint: Path, task: str | None) -> str:
    if task:
        return task
    metrics = checkpoint.resolve().parent.parent / "metrics.json"
    try:
        return str(json.loads(metrics.read_text())["task"])
    except (OSError, ValueError, KeyError):
        raise NIRCommandError(
            f"cannot tell which task wrote {checkpoint} (no {metrics}): give --task"
        ) from None


@nir_group.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The .nir file to write.")  # fmt: skip
@click.option("--task", default=None, help="The task that trained it [default: from metrics.json].")
@click.option("--convention", type=click.Choice(["nir", "snntorch"]), default="nir",
              show_default=True,
              help="How neuron nodes are written: nir, or snntorch (what snnTorch 1.0's importer "
                   "accepts; needs a network at dt=1e-4).  docs/nir.md.")  # fmt: skip
def export_command(checkpoint: str, output: str, task: str | None, convention: str) -> None:
    """Write the network of a trained task's CHECKPOINT as a NIR graph."""
    from snncore.api import get_task
    from snncore.nir import NIRError, NIRUnavailableError, require_nir, to_nir

    path = Path(checkpoint)
    if not path.is_file():
        raise NIRCommandError(f"no such checkpoint: {path}")
    task_object = get_task(_task_of(path, task))
    builder = getattr(task_object, "nir_network", None)
    if builder is None:
        raise NIRCommandError(f"task {task_object.name!r} does not offer NIR export")
    try:
        nir = require_nir()
        network, sample, dt = builder(path)
        graph = to_nir(network, sample, dt=dt, convention=convention)
        nir.write(output, graph)
    except (NIRError, NIRUnavailableError, ValueError) as exc:
        raise _fail(exc) from None
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    click.echo(f"wrote {output}: {len(kinds)} nodes ({', '.join(kinds)}), dt={dt} s")


@nir_group.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="A .npy array (time, batch, *input shape).")  # fmt: skip
@click.option("--dt", default=0.001, show_default=True, type=float, help="Time step in seconds.")
@click.option("--convention", type=click.Choice(["nir", "norse"]), default="nir", show_default=True)
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Save the output as .npy.")  # fmt: skip
def run_command(file: str, input_path: str, dt: float, convention: str, output: str | None) -> None:
    """Run the graph in FILE on the array in --input; print the output's shape and sum."""
    import numpy as np
    import torch

    from snncore.nir import NIRError, NIRUnavailableError, from_nir

    try:
        x = torch.from_numpy(np.load(input_path)).float()
    except (OSError, ValueError) as exc:
        raise NIRCommandError(
            f"cannot read --input {input_path}: {str(exc).splitlines()[0]}"
        ) from None
    try:
        module = from_nir(file, dt=dt, convention=convention)
        with torch.no_grad():
            out, _ = module(x)
    except (NIRError, NIRUnavailableError) as exc:
        raise _fail(exc) from None
    if output:
        np.save(output, out.numpy())
    click.echo(f"output shape {tuple(out.shape)}, sum {float(out.sum()):.6g}")
