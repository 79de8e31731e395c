"""A stranger's plugin: pip-installed, listed by the CLI, usable by name, gone after uninstall."""

from __future__ import annotations

from importlib import metadata

import pytest

pytestmark = pytest.mark.slow

THROWAWAY_PLUGIN = """
import snncore
from snn_lif.lif import (
    LIFFeedForwardState,
    LIFParameters,
    initial_feed_forward_state,
    lif_feed_forward_step,
)

THROWAWAY_LIF = snncore.NeuronModel(
    name="throwaway_lif",
    family="throwaway",
    summary="LIF once more, from a throwaway distribution",
    parameters=LIFParameters,
    feed_forward_step=lif_feed_forward_step,
    feed_forward_state=LIFFeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
)


@snncore.hookimpl
def register_models(register):
    register(THROWAWAY_LIF)
"""


def _rows(stdout: str, name: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.split()[:1] == [name]]


def test_installed_plugin_is_listed_usable_and_removed(
    make_distribution, installer, snn, snn_json, python
):
    source = make_distribution(
        "snn-throwaway", "snn_throwaway", {"snn-throwaway": ("plugin", THROWAWAY_PLUGIN)}
    )
    installer.install(source, "snn-throwaway")
    with pytest.raises(metadata.PackageNotFoundError):  # installed in the overlay only
        metadata.distribution("snn-throwaway")

    listing = snn("list-models")
    assert listing.returncode == 0, listing.stderr
    (row,) = _rows(listing.stdout, "throwaway_lif")
    assert "snn-throwaway 0.0.1" in row
    assert _rows(listing.stdout, "lif"), "the installed plugins' models must still be listed"

    (model,) = [m for m in snn_json("list-models")["models"] if m["name"] == "throwaway_lif"]
    assert model["distribution"] == "snn-throwaway"
    assert model["plugin"] == "snn-throwaway"
    assert model["qualified_name"] == "snn-throwaway:throwaway_lif"
    assert model["family"] == "throwaway"
    assert model["variants"] == ["cell", "layer"]

    run = python(
        """
        import torch
        import snncore

        layer = snncore.create("throwaway_lif", variant="layer")
        spikes, state = layer(torch.full((20, 3, 5), 2.0))
        print("shape", tuple(spikes.shape), "spikes", int(spikes.sum()))
        """
    )
    assert run.returncode == 0, run.stderr
    assert "shape (20, 3, 5)" in run.stdout
    assert "spikes 0" not in run.stdout

    installer.uninstall("snn-throwaway")
    listing = snn("list-models")
    assert listing.returncode == 0, listing.stderr
    assert "throwaway" not in listing.stdout
    assert _rows(listing.stdout, "lif")
