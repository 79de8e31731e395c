"""Pictures of spiking activity: spike rasters, membrane traces, population rates, heat maps.

Every function takes time-major tensors, ``(T, ...)`` as everywhere in snncore (the dimensions
after time are flattened into neurons, batch first), labels the time axis in ms from ``dt``
(seconds per step, snncore's default 0.001) and returns the matplotlib ``Axes`` it drew on, so a
caller can restyle it or read its artists back (``ax.collections``, ``ax.lines``, ``ax.images``;
each artist drawn here carries a ``gid`` saying what it is: ``"raster"``, ``"trace"``,
``"threshold"``, ``"spikes"``, ``"rate"``, ``"heatmap"``).  Pass ``ax=`` to draw into a figure of
your own (pyplot's, a notebook's); without it each function makes a ``matplotlib.figure.Figure``
of its own, which needs no display and is not kept in pyplot's global registry, so scripts and
servers can draw thousands without leaking them.

matplotlib is an optional dependency (``pip install 'snncore[plot]'``) and is imported only
inside these functions: ``import snncore`` and ``import snncore.plot`` never import it.  Without
it every function raises :class:`PlotUnavailableError`, whose one-line message names the extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Names a threshold parameter goes by, in the order they are looked for.
THRESHOLD_NAMES = ("v_th", "v_thresh", "v_threshold")
#: How many neurons ``traces`` draws unless told otherwise (more lines are unreadable).
DEFAULT_TRACES = 5


class PlotUnavailableError(ImportError):
    """Plotting was asked for but matplotlib is not installed (it is an optional extra)."""

    def __init__(self, cause: str = "") -> None:
        super().__init__(
            "plotting needs matplotlib, which is not installed: pip install 'snncore[plot]'"
            + (f" ({cause})" if cause else "")
        )


def require_matplotlib() -> Any:
    """Import matplotlib or raise :class:`PlotUnavailableError`; the command line calls it
    before simulating, so that a missing extra is reported before any work is done.

    No backend is chosen: the figures made here are plain ``Figure`` objects, which render
    through Agg when saved (headless) whatever backend pyplot uses in the same process.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotUnavailableError() from exc
    return matplotlib


def new_figure(rows: int = 1, *, width: float = 8.0, height: float = 2.2) -> tuple[Figure, Any]:
    """A ``Figure`` with ``rows`` axes stacked on one shared time axis, and the axes."""
    require_matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * rows), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return figure, list(axes)


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    return new_figure()[1][0]


def as_neurons(values: Any) -> torch.Tensor:
    """``(T, ...)`` → ``(T, N)`` float on the CPU, detached: every dimension after time
    flattened into neurons (batch entry 0's neurons first)."""
    tensor = torch.as_tensor(values).detach().to("cpu")
    if tensor.dim() == 0:
        raise ValueError("expected a time-major tensor (T, ...), got a scalar")
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(1)
    return tensor.reshape(tensor.shape[0], -1).to(torch.float64)


def times_ms(steps: int, dt: float) -> torch.Tensor:
    """The time of each step in ms: step ``k`` is at ``k·dt``."""
    return torch.arange(steps, dtype=torch.float64) * (dt * 1000.0)


def raster(spikes: Any, *, dt: float = 0.001, ax: Axes | None = None, **style: Any) -> Axes:
    """A spike raster: one mark at (time in ms, neuron index) per non-zero entry of ``spikes``.

    ``spikes`` is ``(T, ...)``; the dimensions after time are flattened into neuron indices.
    The marks are one scatter collection (``gid="raster"``) whose offsets are exactly the
    non-zero entries, in the order of ``torch.nonzero``.  ``style`` goes to ``ax.scatter``.
    """
    ax = _axes(ax)
    z = as_neurons(spikes)
    steps, neurons = z.nonzero(as_tuple=True)
    options = {"marker": "|", "s": 30, "linewidths": 1.0, "color": "black", **style}
    collection = ax.scatter((steps.double() * (dt * 1000.0)).numpy(), neurons.numpy(), **options)
    collection.set_gid("raster")
    ax.set_xlim(0, z.shape[0] * dt * 1000.0)
    ax.set_ylim(-0.5, z.shape[1] - 0.5)
    ax.set_ylabel("neuron")
    ax.set_xlabel("time (ms)")
    return ax


def _pick(neurons: int | Sequence[int] | None, available: int) -> list[int]:
    if neurons is None:
        neurons = DEFAULT_TRACES
    if isinstance(neurons, int):
        return list(range(min(neurons, available)))
    chosen = list(neurons)
    bad = [n for n in chosen if not 0 <= n < available]
    if bad:
        raise ValueError(f"neurons {bad} out of range: there are {available}")
    return chosen


def traces(
    states: Any,
    spikes: Any = None,
    threshold: Any = None,
    *,
    dt: float = 0.001,
    neurons: int | Sequence[int] | None = None,
    field: str | None = None,
    ax: Axes | None = None,
    **style: Any,
) -> Axes:
    """Membrane traces of a few neurons, with the threshold dashed and a tick at each spike.

    ``states`` is a ``(T, ...)`` tensor of voltages, or a recorded state (a record of stacked
    ``(T, ...)`` tensors, e.g. from a layer made with ``record_states=True``), from which the
    field ``field`` is drawn, by default the voltage (:func:`voltage_of`).  ``neurons`` is how
    many to draw (the first ones, 5 by default) or which indices.  One line per neuron
    (``gid="trace"``, its y-data the recorded values); with ``spikes``, the neuron's spike times
    as ticks just above the traces (``gid="spikes"``, in the line's colour); with
    ``threshold`` (a number, or one value per neuron), a dashed line per distinct value
    (``gid="threshold"``).
    """
    ax = _axes(ax)
    if not isinstance(states, torch.Tensor) and hasattr(states, "_fields"):
        states = getattr(states, field) if field else voltage_of(states)[1]
    v = as_neurons(states)
    picked = _pick(neurons, v.shape[1])
    t = times_ms(v.shape[0], dt).numpy()
    lines = []
    for n in picked:
        (line,) = ax.plot(t, v[:, n].numpy(), label=f"neuron {n}", linewidth=1.0, **style)
        line.set_gid("trace")
        lines.append(line)
    thresholds = _thresholds(threshold, v.shape[1], picked)
    for value in sorted(set(thresholds)):
        ax.axhline(value, linestyle="--", color="grey", linewidth=1.0).set_gid("threshold")
    if spikes is not None:
        z = as_neurons(spikes)
        top = max([float(v[:, picked].max()), *thresholds]) if picked else 0.0
        span = max(top - (float(v[:, picked].min()) if picked else 0.0), 1e-9)
        for k, (n, line) in enumerate(zip(picked, lines, strict=True)):
            at = t[z[:, n].numpy() > 0]
            y = [top + span * (0.05 + 0.04 * k)] * len(at)
            (ticks,) = ax.plot(at, y, "|", color=line.get_color(), markersize=6)
            ticks.set_gid("spikes")
    ax.set_xlim(0, v.shape[0] * dt * 1000.0)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("membrane")
    return ax


def _thresholds(threshold: Any, available: int, picked: list[int]) -> list[float]:
    if threshold is None:
        return []
    value = torch.as_tensor(threshold).detach().to("cpu", torch.float64).reshape(-1)
    if value.numel() == 1:
        return [float(value)]
    if value.numel() != available:
        return []  # a per-neuron threshold of another shape: nothing sensible to draw
    return [float(value[n]) for n in picked]


def rates(
    spikes: Any,
    dt: float = 0.001,
    *,
    bin: float = 10.0,
    ax: Axes | None = None,
    **style: Any,
) -> Axes:
    """The population rate in Hz: spikes per neuron and second, in bins of ``bin`` ms.

    ``spikes`` is ``(T, ...)``; every neuron counts.  A bin is ``round(bin / (dt·1000))`` steps
    (at least one); a last partial bin is averaged over its own steps.  Drawn as a step line
    (``gid="rate"``) whose y-data holds each bin's rate once per bin edge.
    """
    ax = _axes(ax)
    z = as_neurons(spikes)
    rate, edges = binned_rate(z, dt, bin)
    (line,) = ax.step(edges.numpy(), torch.cat([rate, rate[-1:]]).numpy(), where="post", **style)
    line.set_gid("rate")
    ax.set_xlim(0, z.shape[0] * dt * 1000.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("rate (Hz)")
    return ax


def binned_rate(spikes: Any, dt: float, bin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rate per bin in Hz, bin edges in ms)`` of the population ``spikes`` (T, ...)."""
    if not bin > 0:
        raise ValueError(f"bin must be a positive number of ms, got {bin!r}")
    z = as_neurons(spikes)
    width = max(1, round(bin / (dt * 1000.0)))
    per_step = z.mean(1)  # spikes per neuron and step
    starts = list(range(0, z.shape[0], width))
    rate = torch.stack([per_step[s : s + width].mean() / dt for s in starts])
    edges = times_ms(z.shape[0] + 1, dt)[[*starts, z.shape[0]]]
    return rate, edges


def heatmap(
    values: Any,
    *,
    dt: float = 0.001,
    label: str = "",
    colorbar: bool | str = True,
    ax: Axes | None = None,
    **style: Any,
) -> Axes:
    """A colour map of ``values`` (T, ...) over time (x, in ms) and neurons (y), with a colour
    bar named ``label``; the image (``gid="heatmap"``) holds the values neuron by time.

    ``colorbar=True`` takes the bar's room from the axes (matplotlib's default); ``"inset"``
    draws it just right of the axes instead, so that panels stacked on one time axis stay
    aligned."""
    ax = _axes(ax)
    v = as_neurons(values)
    end = v.shape[0] * dt * 1000.0
    options = {"aspect": "auto", "interpolation": "nearest", "origin": "lower", **style}
    image = ax.imshow(v.T.numpy(), extent=(0, end, -0.5, v.shape[1] - 0.5), **options)
    image.set_gid("heatmap")
    if colorbar == "inset":
        ax.figure.colorbar(image, cax=ax.inset_axes((1.01, 0.0, 0.015, 1.0)), label=label)
    elif colorbar:
        ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    return ax


# -- finding the voltage and the threshold of any model ------------------------------------------


def voltage_of(state: Any, prefix: str = "") -> tuple[str, torch.Tensor]:
    """``(dotted name, tensor)`` of a state's membrane voltage, for any model: the field ``v``
    (searched in nested records too, e.g. ``lif.v`` of ``lif_refrac``), else the first tensor
    field.  Works on a single state and on one recorded over time."""
    fields = getattr(state, "_fields", None)
    if not fields:
        raise TypeError(f"expected a state record (a NamedTuple), got {type(state).__name__}")
    if "v" in fields and isinstance(state.v, torch.Tensor):
        return prefix + "v", state.v
    for name in fields:
        value = getattr(state, name)
        if hasattr(value, "_fields"):
            try:
                found = voltage_of(value, f"{prefix}{name}.")
            except TypeError:
                continue
            if found[0].endswith(".v"):
                return found
    for name in fields:
        value = getattr(state, name)
        if isinstance(value, torch.Tensor):
            return prefix + name, value
        if hasattr(value, "_fields"):
            return voltage_of(value, f"{prefix}{name}.")
    raise TypeError(f"state {type(state).__name__} has no tensor field")


def threshold_of(parameters: Any) -> Any:
    """A parameter record's firing threshold (``v_th``, ``v_thresh`` or ``v_threshold``, also in
    nested records), or ``None`` for a model that names it otherwise or has none."""
    import attrs

    if not attrs.has(type(parameters)):
        return None
    for name in THRESHOLD_NAMES:
        if hasattr(parameters, name):
            return getattr(parameters, name)
    for field in attrs.fields(type(parameters)):
        value = getattr(parameters, field.name)
        if attrs.has(type(value)):
            found = threshold_of(value)
            if found is not None:
                return found
    return None


def simulation(
    x: Any,
    spikes: Any,
    voltage: Any,
    *,
    dt: float = 0.001,
    threshold: Any = None,
    input_spikes: bool = False,
    title: str = "",
    voltage_label: str = "v",
    neurons: int = DEFAULT_TRACES,
    bin: float | None = None,
) -> Figure:
    """The figure of ``snn simulate --plot``: panels on one time axis, batch entry 0.

    Input (a raster for spike input, else a heat map of the current), output raster, membrane
    traces of up to ``neurons`` neurons (threshold dashed, spike ticks) and the binned
    population rate (``bin`` ms; by default about 40 bins over the run, at least 1 ms).
    ``x``, ``spikes`` and ``voltage`` are ``(T, B, ...)``; with ``spikes=None`` (a model that
    outputs a voltage) only the input and the traces are drawn.
    """
    figure, axes = new_figure(4 if spikes is not None else 2, height=1.9)
    first = (slice(None), 0)
    top, lower = axes[0], axes[-2] if spikes is not None else axes[1]
    if input_spikes:
        raster(x[first], dt=dt, ax=top, color="tab:blue")
        top.set_ylabel("input")
    else:
        heatmap(x[first], dt=dt, ax=top, label="current", colorbar="inset", cmap="viridis")
        top.set_ylabel("input neuron")
    z = None if spikes is None else spikes[first]
    traces(voltage[first], z, threshold, dt=dt, neurons=neurons, ax=lower)
    lower.set_ylabel(voltage_label)
    lower.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", frameon=False)
    if z is not None:
        raster(z, dt=dt, ax=axes[1])
        steps = z.shape[0]
        rates(z, dt, bin=bin or max(1.0, steps * dt * 1000.0 / 40), ax=axes[3])
    for ax in axes[:-1]:
        ax.set_xlabel("")
    if title:
        figure.suptitle(title, fontsize="medium")
    return figure


def plot_layer_run(
    layer: Any, x: Any, outputs: Any, states: Any, *, input_spikes: bool = False
) -> Figure:
    """:func:`simulation` for a run of any model's layer made with ``record_states=True``: the
    voltage is found with :func:`voltage_of`, the threshold with :func:`threshold_of` on the
    layer's parameters (the preset's, if any); a model whose output is not spikes gets its
    output drawn as the traces and no raster."""
    model = layer.model
    name, voltage = voltage_of(states)
    unit = model.units.get(name.rpartition(".")[2], "")
    title = f"{model.name}" + (f" ({layer.preset})" if getattr(layer, "preset", None) else "")
    spiking = model.output == "spikes"
    return simulation(
        x,
        outputs if spiking else None,
        voltage if spiking else outputs,
        dt=layer.dt,
        threshold=threshold_of(layer.p) if spiking else None,
        input_spikes=input_spikes,
        title=title,
        voltage_label=f"{name} ({unit})" if unit else name,
    )


def save(figure: Figure, path: Any) -> None:
    """Write ``figure`` to ``path``; the format follows the suffix (``.png``, ``.svg``, ...)."""
    figure.savefig(path, dpi=100)
