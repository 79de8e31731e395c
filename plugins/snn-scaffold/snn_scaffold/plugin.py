"""Entry point of snn-scaffold: registers ``snn new-plugin``.

Only click is imported here; the scaffold (:mod:`snn_scaffold.scaffold`) is imported when the
command runs, so that ``snn --help`` stays cheap.
"""

from __future__ import annotations

from typing import Any

import click

import snncore


class ScaffoldUsageError(click.ClickException):
    """A name or directory ``snn new-plugin`` cannot use: exit code 2, without the usage text."""

    exit_code = 2


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "--directory",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to create snn-NAME/.",
)
def new_plugin_command(name: str, directory: str) -> None:
    """Create snn-NAME/: a neuron plugin in one file (a copy of the worked example, the QIF
    neuron, named NAME), its entry point, its tests (snncore's conformance suite and values worked
    by hand) and a README."""
    from snn_scaffold.scaffold import Names, ScaffoldError, new_plugin

    try:
        target = new_plugin(name, directory)
    except ScaffoldError as exc:
        raise ScaffoldUsageError(str(exc)) from None
    names = Names.from_name(name)
    click.echo(f"created {target}/ (model {names.name!r}, distribution {names.dist}):")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(target.parent)}")
    click.echo("next:")
    click.echo(f"  pip install -e {target}")
    click.echo(f"  snn list-models --family {names.name}")
    click.echo(f"  pytest {target}")


@snncore.hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(new_plugin_command)
