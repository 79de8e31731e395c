"""Every model our plugins register, through the conformance suite plugin authors use.

One parametrised test per (model, variant, check): ``test_conformance[lif/layer-state_threading]``
(the checks are listed in snncore/testing/__init__.py and docs/writing-a-plugin.md).  The
plugins are the distributions under plugins/, plus the core itself for its built-in surrogates
(checked against finite differences of their smoothed steps).  ``torch.compile`` runs on one
model per family with the ``aot_eager`` backend; ``SNNCORE_TEST_COMPILE=all`` and
``SNNCORE_TEST_COMPILE_BACKEND=inductor`` ask for more.
"""

from __future__ import annotations

import re
from pathlib import Path

from snncore.testing import conformance_suite

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


def our_distributions() -> list[str]:
    """The distribution names of plugins/*/pyproject.toml."""
    names = []
    for pyproject in sorted(PLUGINS_DIR.glob("*/pyproject.toml")):
        found = re.search(r'^name\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        if found:
            names.append(found.group(1))
    return names


test_conformance = conformance_suite(*our_distributions(), "snncore")
