"""``snn gallery izhikevich``: the 20 behaviours of Izhikevich (2004, fig. 1) in one figure.

Each panel is one preset under its stimulus (:mod:`snn_izhikevich.stimuli`): the membrane
potential (with a tick at each spike: the recorded ``v`` is already reset, so a spike shows as
the jump to ``c``) above the input current, on the model's own ms axis.  The command also
writes one PNG per preset.  matplotlib is imported only when the command runs
(``pip install 'snncore[plot]'``).

The command is added by this plugin through the ``register_commands`` hook, under a ``gallery``
group that any plugin may share: the first to run creates it, the next ones add their own
sub-command (``snn gallery MODEL``), so no core change is needed for another model's gallery.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Panel letters of the figure, in the order of the presets.
LETTERS = "ABCDEFGHIJKLMNOPQRST"


def _draw(v_ax: Any, i_ax: Any, letter: str, name: str, run: Any, description: str) -> None:
    """One panel: ``v`` (with spike ticks) on ``v_ax`` above the current on ``i_ax``."""
    from snncore import plot

    plot.traces(run.v.reshape(-1, 1), run.spikes.reshape(-1, 1), dt=run.h / 1000, ax=v_ax)
    v_ax.set_title(f"({letter}) {name.replace('_', ' ')}", fontsize="small", loc="left")
    v_ax.set_ylabel("v (mV)", fontsize="x-small")
    v_ax.set_xlabel("")
    v_ax.tick_params(labelbottom=False)
    (line,) = i_ax.plot(run.t.numpy(), run.current.numpy(), color="tab:red", linewidth=1.0)
    line.set_gid("stimulus")
    i_ax.set_ylabel("I", fontsize="x-small")
    i_ax.set_xlabel("time (ms)", fontsize="x-small")
    i_ax.text(0.01, 0.05, description, transform=i_ax.transAxes, fontsize=6, va="bottom")
    for ax in (v_ax, i_ax):
        ax.tick_params(labelsize=6)


def _panels(figure: Figure, rows: int, columns: int) -> list[tuple[Any, Any]]:
    """``rows × columns`` panels, each a voltage axes above a third as tall current axes
    sharing its time axis (a plain grid: constrained layout takes seconds for 40 axes)."""
    grid = figure.add_gridspec(
        3 * rows, columns, height_ratios=[3, 1, 0.9] * rows, hspace=0.15, wspace=0.25
    )
    found = []
    for r in range(rows):
        for c in range(columns):
            v_ax = figure.add_subplot(grid[3 * r, c])
            found.append((v_ax, figure.add_subplot(grid[3 * r + 1, c], sharex=v_ax)))
    return found


def gallery_figure(runs: dict[str, Any] | None = None, backend: str = "auto") -> Figure:
    """The 20 panels, five rows of four, as one ``Figure`` (simulated here unless ``runs``
    gives them by preset name)."""
    from snncore.plot import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure

    from snn_izhikevich.stimuli import STIMULI, run

    runs = runs or {name: run(name, backend=backend) for name in STIMULI}
    figure = Figure(figsize=(16, 14))
    figure.subplots_adjust(left=0.04, right=0.99, bottom=0.02, top=0.95)
    figure.suptitle("Izhikevich (2004), fig. 1: the 20 presets of snn-izhikevich", fontsize=12)
    panels = _panels(figure, 5, 4)
    for (v_ax, i_ax), letter, (name, stimulus) in zip(
        panels, LETTERS, STIMULI.items(), strict=True
    ):
        _draw(v_ax, i_ax, letter, name, runs[name], stimulus.description)
    return figure


@click.command("izhikevich")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    default="gallery",
    show_default=True,
    help="Directory for izhikevich.png and one izhikevich-NAME.png per preset.",
)
@click.option("--dpi", type=click.IntRange(20, 600), default=60, show_default=True)
@click.option("--backend", default="auto", show_default=True)
def izhikevich_gallery_command(output: str, dpi: int, backend: str) -> None:
    """The 20 behaviours of Izhikevich (2004, fig. 1): each preset under its stimulus."""
    from snncore.plot import require_matplotlib

    require_matplotlib()  # a missing extra: one line, exit 2, before any simulation
    from matplotlib.figure import Figure

    from snn_izhikevich.stimuli import STIMULI, run

    directory = Path(output)
    directory.mkdir(parents=True, exist_ok=True)
    runs = {name: run(name, backend=backend) for name in STIMULI}
    for letter, (name, stimulus) in zip(LETTERS, STIMULI.items(), strict=True):
        single = Figure(figsize=(5, 3.2))
        single.subplots_adjust(left=0.13, right=0.97, bottom=0.05, top=0.92)
        _draw(*_panels(single, 1, 1)[0], letter, name, runs[name], stimulus.description)
        single.savefig(directory / f"izhikevich-{name}.png", dpi=100)
    gallery_figure(runs).savefig(directory / "izhikevich.png", dpi=dpi)
    counts = ", ".join(f"{n} {int(r.spikes.sum())}" for n, r in runs.items())
    click.echo(f"spikes per preset: {counts}")
    click.echo(f"wrote {directory / 'izhikevich.png'} and {len(runs)} izhikevich-NAME.png")


def gallery_group(cli: click.Group) -> click.Group:
    """The root's ``gallery`` group, created by the first plugin that asks for it."""
    group = cli.commands.get("gallery")
    if not isinstance(group, click.Group):

        @click.group("gallery")
        def group() -> None:
            """Figures of what the models do (one sub-command per model that offers one)."""

        cli.add_command(group)
    return group
