"""``snncore.plot`` and ``snn simulate --plot/--save``: what is drawn is what was simulated.

The figures are checked through their artists (a raster's offsets, a trace's y-data, an image's
array), never through pixels.  matplotlib's absence is simulated, not arranged by uninstalling:
a subprocess whose ``sys.modules["matplotlib"]`` is ``None`` (so ``import matplotlib`` raises
``ImportError``), or the same entry patched in this process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
from click.testing import CliRunner

import snncore
from snncore.plugins import get_manager

plot = pytest.importorskip("snncore.plot")
pytest.importorskip("matplotlib", reason="the plot tests need snncore[plot]")

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def artists(ax, gid: str) -> list:
    return [a for a in [*ax.lines, *ax.collections, *ax.images] if a.get_gid() == gid]


def test_raster_points_are_the_nonzero_entries_of_the_spike_tensor():
    torch.manual_seed(0)
    spikes = (torch.rand(50, 2, 3) < 0.2).float()  # (T, B, N): 6 neurons after flattening
    ax = plot.raster(spikes, dt=0.002)
    (points,) = artists(ax, "raster")
    steps, neurons = spikes.reshape(50, 6).nonzero(as_tuple=True)
    expected = numpy.stack([steps.numpy() * 2.0, neurons.numpy()], axis=1)  # 2 ms per step
    assert len(expected) > 20
    numpy.testing.assert_allclose(points.get_offsets(), expected)
    assert ax.get_xlabel() == "time (ms)" and ax.get_xlim() == (0.0, 100.0)


def test_traces_are_the_recorded_states_with_threshold_and_spike_ticks():
    layer = snncore.create("lif", record_states=True, backend="torch")
    with torch.no_grad():
        z, states = layer(torch.full((40, 1, 7), 3.0) * torch.linspace(0.5, 1.5, 7))
    ax = plot.traces(states, z, threshold=layer.p.v_th, neurons=[0, 3, 6])
    lines = artists(ax, "trace")
    assert len(lines) == 3
    for line, n in zip(lines, (0, 3, 6), strict=True):
        numpy.testing.assert_allclose(line.get_ydata(), states.v[:, 0, n].numpy(), rtol=1e-6)
        numpy.testing.assert_allclose(line.get_xdata(), numpy.arange(40) * 1.0)
    (threshold,) = artists(ax, "threshold")
    assert threshold.get_linestyle() == "--" and threshold.get_ydata()[0] == 1.0
    ticks = artists(ax, "spikes")
    assert [len(t.get_xdata()) for t in ticks] == [int(z[:, 0, n].sum()) for n in (0, 3, 6)]
    assert sum(len(t.get_xdata()) for t in ticks) > 0
    assert len(artists(plot.traces(states.v), "trace")) == plot.DEFAULT_TRACES  # first five


def test_rates_are_spikes_per_neuron_and_second_in_bins():
    spikes = torch.zeros(100, 4)
    spikes[:50, 0] = 1  # one neuron of four fires every step for the first 50 ms
    ax = plot.rates(spikes, 0.001, bin=25.0)
    (line,) = artists(ax, "rate")
    assert list(line.get_xdata()) == [0, 25, 50, 75, 100]
    assert list(line.get_ydata()) == pytest.approx([250, 250, 0, 0, 0])  # 1000 Hz / 4 neurons


def test_heatmap_shows_the_values_neuron_by_time():
    values = torch.arange(12.0).reshape(4, 3)
    ax = plot.heatmap(values, dt=0.5, label="current")
    (image,) = artists(ax, "heatmap")
    numpy.testing.assert_array_equal(image.get_array(), values.T.numpy())
    assert image.get_extent() == [0, 2000.0, -0.5, 2.5]


def test_the_voltage_and_threshold_are_found_for_any_model():
    refrac = snncore.create("lif_refrac", record_states=True, backend="torch")
    _, states = refrac(torch.ones(3, 1, 2))
    assert plot.voltage_of(states)[0] == "lif.v"  # nested record
    assert plot.threshold_of(refrac.p) is refrac.p.lif.v_th
    coba = snncore.create("coba_lif")
    assert plot.threshold_of(coba.p) is coba.p.v_thresh
    assert plot.threshold_of(object()) is None
    from typing import NamedTuple

    class NoV(NamedTuple):
        i: torch.Tensor
        w: torch.Tensor

    assert plot.voltage_of(NoV(torch.zeros(1), torch.ones(1)))[0] == "i"  # the first field


def test_importing_snncore_and_snncore_plot_does_not_import_matplotlib():
    code = (
        "import sys, snncore, snncore.plot, snncore.cli\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_without_matplotlib_every_function_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    with pytest.raises(plot.PlotUnavailableError, match=r"pip install 'snncore\[plot\]'"):
        plot.raster(torch.zeros(3, 2))


# -- snn simulate --plot / --save ----------------------------------------------------------------


def simulate(*args: str):
    from snncore.cli import cli

    get_manager().call_commands_hook(cli)
    return CliRunner().invoke(cli, ["simulate", *args], catch_exceptions=False)


@pytest.mark.parametrize(
    "args",
    [
        ["lif"],
        ["izhikevich", "--preset", "chattering", "--current", "15"],
        ["lsnn", "--poisson", "200"],
        ["coba_lif"],
        ["li"],  # outputs a voltage: input and traces only
    ],
    ids=lambda a: a[0],
)
def test_simulate_plots_and_saves_every_kind_of_model(tmp_path, args):
    figure_file, arrays_file = tmp_path / "out.png", tmp_path / "run.npz"
    result = simulate(*args, "--plot", str(figure_file), "--save", str(arrays_file))
    assert result.exit_code == 0, result.output
    assert f"figure written to {figure_file}" in result.output
    assert figure_file.read_bytes()[:8] == PNG
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(figure_file).shape
    assert width > 500 and height > 300
    saved = numpy.load(arrays_file)
    assert saved["input"].shape == saved["output"].shape == (100, 1, 8)
    if args[0] != "li":
        counts = saved["output"].sum(axis=(0, 1)).astype(int).tolist()
        assert f"spike counts per neuron: {counts}" in result.output  # the table: the same run
    assert any(k.startswith("state.") for k in saved.files)


def test_simulate_figure_panels_hold_the_simulation(tmp_path, monkeypatch):
    """The figure's artists against the saved arrays of the same run."""
    made = []
    real = plot.plot_layer_run
    monkeypatch.setattr(
        plot, "plot_layer_run", lambda *a, **k: made.append(real(*a, **k)) or made[-1]
    )
    result = simulate(
        "lif", "--poisson", "300", "--current", "3", "--plot", str(tmp_path / "f.svg"),
        "--save", str(tmp_path / "run.npz"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    saved = numpy.load(tmp_path / "run.npz")
    top, middle, lower, _ = made[0].axes[:4]
    (inputs,) = artists(top, "raster")
    steps, neurons = numpy.nonzero(saved["input"][:, 0])
    numpy.testing.assert_allclose(inputs.get_offsets(), numpy.stack([steps, neurons], 1))
    (outputs,) = artists(middle, "raster")
    steps, neurons = numpy.nonzero(saved["output"][:, 0])
    assert len(steps) > 0
    numpy.testing.assert_allclose(outputs.get_offsets(), numpy.stack([steps, neurons], 1))
    lines = artists(lower, "trace")
    assert len(lines) == 5
    for n, line in enumerate(lines):
        numpy.testing.assert_allclose(line.get_ydata(), saved["state.v"][:, 0, n], rtol=1e-6)
    assert artists(lower, "threshold")[0].get_ydata()[0] == 1.0  # lif's v_th


def test_simulate_plots_a_third_party_model(tmp_path, fresh_manager):
    sys.path.insert(0, str(ROOT / "examples" / "snn-qif"))
    try:
        import snn_qif

        snncore.register_plugin(snn_qif, name="snn-qif-at-run-time")
        result = simulate("qif", "--plot", str(tmp_path / "qif.png"))
    finally:
        sys.path.remove(str(ROOT / "examples" / "snn-qif"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "qif.png").read_bytes()[:8] == PNG


def test_simulate_rejects_a_poisson_rate_above_one_spike_per_step(tmp_path):
    result = CliRunner().invoke(
        __import__("snncore.cli").cli.cli, ["simulate", "lif", "--poisson", "2000"]
    )
    assert result.exit_code == 2 and "more than one spike per step" in result.output


NO_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None\n"  # import matplotlib -> ImportError
    "from snncore.cli import main\n"
    "sys.argv = ['snn', *sys.argv[1:]]\n"
    "main()\n"
)


def test_without_matplotlib_simulate_plot_exits_2_naming_the_extra(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", NO_MATPLOTLIB, "simulate", "lif", "--plot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "Error: plotting needs matplotlib, which is not installed: pip install 'snncore[plot]'"
    ]
    assert not (tmp_path / "x.png").exists() and "spike counts" not in run.stdout
    plain = subprocess.run(
        [sys.executable, "-c", NO_MATPLOTLIB, "simulate", "lif", "--save", str(tmp_path / "r.npz")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "spike counts per neuron:" in plain.stdout and (tmp_path / "r.npz").is_file()
