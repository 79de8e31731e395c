"""The plugin author's guide's worked example, examples/snn-qif, installed as a real wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "snn-qif"


def test_qif_example_installs_and_runs(installer, snn, snn_json, python):
    installer.install(EXAMPLE, "snn-qif")

    (model,) = [m for m in snn_json("list-models")["models"] if m["name"] == "qif"]
    assert model["distribution"] == "snn-qif"
    assert model["plugin"] == "snn-qif"
    assert model["family"] == "qif"
    assert model["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]
    assert "torch" in model["backends"]

    info = snn("info", "qif")
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith("qif (qif) from snn-qif ")
    for text in ("tau_mem_inv", "v_critical", "0.5", "1/s", "v_reset", "Latham"):
        assert text in info.stdout

    run = python(
        """
        import torch
        import snncore
        import snn_qif

        print("installed at", snn_qif.__file__)
        below, _ = snncore.create("qif", variant="layer")(torch.full((500, 2, 4), 0.1))
        above, state = snncore.create("qif", variant="layer")(torch.full((500, 2, 4), 0.3))
        print("layer", tuple(above.shape), int(below.sum()), int(above.sum() > 0))
        out, s = snn_qif.QIFRecurrent(3, 5)(torch.rand(50, 2, 3))
        print("recurrent", tuple(out.shape), type(s).__name__, s._fields)
        """
    )
    assert run.returncode == 0, run.stderr
    assert "site-packages" in run.stdout, "the example must be installed as a wheel"
    assert "layer (500, 2, 4) 0 1" in run.stdout  # below the rheobase 0.125 silent, above it fires
    assert "recurrent (50, 2, 5) QIFState ('z', 'v')" in run.stdout
