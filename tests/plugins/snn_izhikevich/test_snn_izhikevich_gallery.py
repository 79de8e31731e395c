"""``snn gallery izhikevich`` and the stimuli behind it; the ``chattering`` alias.

The figure is checked through its artists: each panel's trace is the simulated ``v`` of its
preset under its stimulus, and its lower axes hold that stimulus.
"""

from __future__ import annotations

import numpy
import pytest
import torch
from click.testing import CliRunner
from snn_izhikevich import BEHAVIORS, PRESETS
from snn_izhikevich.stimuli import STIMULI, run

import snncore
from snncore.plugins import get_manager

pytest.importorskip("matplotlib", reason="the gallery needs snncore[plot]")
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_stimuli_show_the_behaviours():
    # a few panels whose criterion is one number (the behaviour tests check all 20 in depth)
    assert int(run("phasic_spiking", backend="torch").spikes.sum()) == 1
    bistable = run("bistability", backend="torch")
    last = float(bistable.t[bistable.spikes > 0][-1])
    assert 208 > last > 37.5  # the second pulse (at 208 ms) switched the spiking off
    bursting = run("inhibition_induced_bursting", backend="torch")
    assert bursting.h == 0.5 and float(bursting.t[bursting.spikes > 0][0]) > 50


def test_gallery_writes_the_figure_and_one_png_per_preset(tmp_path, monkeypatch):
    """One run of the command (it takes seconds); its figure's artists are checked against the
    runs it drew, captured on the way."""
    from snn_izhikevich import gallery

    from snncore.cli import cli

    drawn = []
    real = gallery.gallery_figure
    monkeypatch.setattr(
        gallery, "gallery_figure", lambda runs: drawn.append((real(runs), runs)) or drawn[-1][0]
    )
    get_manager().call_commands_hook(cli)
    result = CliRunner().invoke(
        cli,
        ["gallery", "izhikevich", "--output", str(tmp_path), "--backend", "torch"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["izhikevich.png", *(f"izhikevich-{n}.png" for n in STIMULI)])
    assert all((tmp_path / n).read_bytes()[:8] == PNG for n in names)
    assert (tmp_path / "izhikevich.png").stat().st_size < 300_000

    ((figure, runs),) = drawn
    assert list(runs) == list(STIMULI) == list(BEHAVIORS)
    assert [n for n, r in runs.items() if r.spikes.sum() == 0] == []  # every panel fires
    axes = figure.axes
    assert len(axes) == 40  # 20 panels of voltage above current
    for k, name in enumerate(STIMULI):
        v_ax, i_ax = axes[2 * k], axes[2 * k + 1]
        assert name.replace("_", " ") in v_ax.get_title(loc="left")
        (trace,) = [line for line in v_ax.lines if line.get_gid() == "trace"]
        numpy.testing.assert_allclose(trace.get_ydata(), runs[name].v.numpy(), rtol=1e-6)
        if name == "dap":  # what was drawn is that preset's simulation under its stimulus
            fresh = run(name, backend="torch")
            numpy.testing.assert_allclose(trace.get_ydata(), fresh.v.numpy(), rtol=1e-6)
        (stimulus,) = [line for line in i_ax.lines if line.get_gid() == "stimulus"]
        current = STIMULI[name].current(runs[name].t).float()
        numpy.testing.assert_allclose(stimulus.get_ydata(), current.numpy())


def test_chattering_is_an_alias_of_tonic_bursting():
    assert "chattering" in PRESETS and "chattering" not in list(PRESETS) and len(PRESETS) == 20
    layer = snncore.create("izhikevich", preset="chattering", backend="torch")
    assert float(layer.p.c) == -50.0 and float(layer.p.d) == 2.0
    reference = snncore.create("izhikevich", preset="tonic_bursting", backend="torch")
    x = torch.full((200, 1, 1), 15.0)
    with torch.no_grad():
        assert torch.equal(layer(x)[0], reference(x)[0])
