"""Two distributions registering the same model name: an error naming both, resolved by the
qualified name `PLUGIN:NAME`; nothing is silently overwritten."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

CLONE_PLUGIN = """
import attrs
import snncore
from snn_lif import LIF_MODEL

LIF_CLONE = attrs.evolve(LIF_MODEL, summary="a second lif, from snn-lif-clone")


@snncore.hookimpl
def register_models(register):
    register(LIF_CLONE)
"""


def _names_both(text: str) -> bool:
    return "snn-lif-clone" in text and re.search(r"snn-lif(?!-clone)", text) is not None


def test_same_model_name_from_two_distributions(make_distribution, installer, snn, python):
    source = make_distribution(
        "snn-lif-clone", "snn_lif_clone", {"snn-lif-clone": ("plugin", CLONE_PLUGIN)}
    )
    installer.install(source, "snn-lif-clone")

    run = python(
        """
        import snncore

        try:
            snncore.get_model("lif")
        except snncore.NameConflictError as exc:
            print("conflict:", exc)
            print("providers:", sorted(p.distribution for p in exc.providers))
        else:
            print("no conflict")
        print("qualified:", snncore.get_model("snn-lif-clone:lif").summary)
        print("qualified:", snncore.get_model("snn-lif:lif").summary)
        """
    )
    assert run.returncode == 0, run.stderr
    assert "no conflict" not in run.stdout
    (message,) = [line for line in run.stdout.splitlines() if line.startswith("conflict:")]
    assert _names_both(message)
    assert "providers: ['snn-lif', 'snn-lif-clone']" in run.stdout
    assert "qualified: a second lif, from snn-lif-clone" in run.stdout
    assert "qualified: leaky integrate-and-fire" in run.stdout

    info = snn("info", "lif")
    assert info.returncode == 2
    assert _names_both(info.stderr)
    assert "Traceback" not in info.stderr

    info = snn("info", "snn-lif:lif")
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith("lif (lif) from snn-lif ")

    listing = snn("list-models")
    assert listing.returncode == 0, listing.stderr
    assert "warning" in listing.stderr
    assert _names_both(listing.stderr)
    assert sum(line.split()[:1] == ["lif"] for line in listing.stdout.splitlines()) == 2
