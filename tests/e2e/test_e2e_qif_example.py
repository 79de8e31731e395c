"""The plugin author's guide's worked example installed as a real wheel: examples/snn-qif, the
one-file plugin (one module, one entry-point line), and tests/e2e/legacy/snn-qif, the same plugin
written against the older API (a package, a plugin module, initial-state functions and
``module_class`` lines), which must keep working unchanged.

Both distributions are called snn-qif: each test installs one and the installer fixture
uninstalls it afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "snn-qif"
LEGACY = ROOT / "tests" / "e2e" / "legacy" / "snn-qif"


def check_listed(snn, snn_json, backends: list[str]) -> None:
    (model,) = [m for m in snn_json("list-models")["models"] if m["name"] == "qif"]
    assert model["distribution"] == "snn-qif"
    assert model["plugin"] == "snn-qif"
    assert model["family"] == "qif"
    assert model["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]
    assert set(backends) <= set(model["backends"]), model["backends"]

    info = snn("info", "qif")
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith("qif (qif) from snn-qif ")
    for text in ("tau_mem_inv", "v_critical", "0.5", "1/s", "v_reset", "Latham"):
        assert text in info.stdout
    if "fused" in backends:  # its steps trace (its record's own check runs outside the trace)
        for variant in ("layer", "recurrent"):
            routed = snn("info", "qif", "--variant", variant)
            assert "backend='auto' picks fused" in routed.stdout, routed.stdout
            assert "generic" not in routed.stdout, routed.stdout


def check_every_variant(every_variant, backends: list[str], feed_forward_state: str) -> None:
    """The four variants run (the layer and the recurrent network on every backend, agreeing),
    with the classes named QIF..., and a layer pickles."""
    stdout = every_variant("qif")
    assert f"cell (2, 3) {feed_forward_state}\n" in stdout
    assert "recurrent_cell (2, 5) QIFState\n" in stdout
    for backend in backends:
        assert f"layer {backend} (200, 2, 3) QIF {feed_forward_state}\n" in stdout
        assert f"recurrent {backend} (200, 2, 5) QIFRecurrent QIFState\n" in stdout
    assert "pickled QIF\n" in stdout


def test_qif_example_installs_runs_and_passes_its_tests(
    installer, snn, snn_json, python, every_variant, backends, run_pytest
):
    installer.install(EXAMPLE, "snn-qif")
    check_listed(snn, snn_json, backends)

    run = python(
        """
        import torch
        import snncore
        import snn_qif

        print("installed at", snn_qif.__file__)
        print("exports", sorted(n for n in vars(snn_qif) if n[:3] in ("QIF", "qif")))
        below, _ = snncore.create("qif", variant="layer")(torch.full((500, 2, 4), 0.1))
        above, state = snncore.create("qif", variant="layer")(torch.full((500, 2, 4), 0.3))
        print("layer", tuple(above.shape), int(below.sum()), int(above.sum() > 0))
        out, s = snncore.create("qif", variant="recurrent", input_size=3, hidden_size=5)(
            torch.rand(50, 2, 3)
        )
        print("recurrent", tuple(out.shape), type(s).__name__, s._fields)
        print("classes", [c.__name__ for c in snncore.module_classes(snn_qif.QIF_MODEL)])
        """
    )
    assert run.returncode == 0, run.stderr
    assert "site-packages" in run.stdout, "the example must be installed as a wheel"
    assert "exports ['QIFParameters', 'QIFState', 'QIF_MODEL', 'qif_step']" in run.stdout
    assert "layer (500, 2, 4) 0 1" in run.stdout  # below the rheobase 0.125 silent, above it fires
    assert "recurrent (50, 2, 5) QIFState ('z', 'v')" in run.stdout
    assert "classes ['QIFCell', 'QIFRecurrentCell', 'QIF', 'QIFRecurrent']" in run.stdout

    check_every_variant(every_variant, backends, feed_forward_state="QIFState")

    # the example's own tests (the conformance suite and the values worked by hand) against the
    # installed wheel
    passed, output = run_pytest(EXAMPLE / "tests")
    print(output.splitlines()[-1])
    assert passed >= 30, output  # 4 variants x the conformance checks + 5 by hand

    installer.uninstall("snn-qif")
    assert "qif" not in [m["name"] for m in snn_json("list-models")["models"]]


def test_legacy_multi_file_plugin_keeps_working(
    installer, snn, snn_json, python, every_variant, backends, run_pytest, tmp_path
):
    """A plugin written against the older API — a package with a plugin module, its own
    initial-state functions and ``module_class`` lines naming the classes — installs and works
    unchanged.  It has no tests of its own: its distribution gets the conformance suite."""
    installer.install(LEGACY, "snn-qif")
    check_listed(snn, snn_json, backends)

    run = python(
        """
        import pickle
        import torch
        import snncore
        import snn_qif
        from snn_qif import QIF, QIF_MODEL, QIFCell, QIFRecurrent, QIFRecurrentCell

        print("installed at", snn_qif.__file__)
        below, _ = snncore.create("qif", variant="layer")(torch.full((500, 2, 4), 0.1))
        above, state = snncore.create("qif", variant="layer")(torch.full((500, 2, 4), 0.3))
        print("layer", tuple(above.shape), int(below.sum()), int(above.sum() > 0))
        out, s = snn_qif.QIFRecurrent(3, 5)(torch.rand(50, 2, 3))
        print("recurrent", tuple(out.shape), type(s).__name__, s._fields)
        out, s = snncore.create("qif", variant="layer")(torch.full((5, 1, 2), 0.3))
        print("feed-forward state", type(s).__name__, s._fields)
        print("classes", snncore.module_classes(QIF_MODEL) == (QIFCell, QIFRecurrentCell, QIF, QIFRecurrent))
        print("create", type(snncore.create("qif", variant="recurrent_cell", input_size=2, hidden_size=3)) is QIFRecurrentCell)
        layer = QIF()
        print("pickle", type(pickle.loads(pickle.dumps(layer))) is QIF)
        """
    )
    assert run.returncode == 0, run.stderr
    assert "site-packages" in run.stdout, "the legacy plugin must be installed as a wheel"
    assert "layer (500, 2, 4) 0 1" in run.stdout
    assert "recurrent (50, 2, 5) QIFState ('z', 'v')" in run.stdout
    assert "feed-forward state QIFFeedForwardState ('v',)" in run.stdout
    assert "classes True" in run.stdout and "create True" in run.stdout
    assert "pickle True" in run.stdout

    check_every_variant(every_variant, backends, "QIFFeedForwardState")

    tests = tmp_path / "legacy-tests"
    tests.mkdir()
    (tests / "test_legacy_conformance.py").write_text(
        "from snncore.testing import conformance_suite\n\n"
        'test_conformance = conformance_suite("snn-qif")\n'
    )
    passed, output = run_pytest(tests)
    print(output.splitlines()[-1])
    assert passed >= 25, output
