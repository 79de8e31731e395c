"""The pytest11 plugin is cheap: pytest loads it in every project of the environment."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import snncore_pytest
from snncore.testing import _suite


def test_entry_point_names_the_light_module() -> None:
    (entry,) = [e for e in metadata.entry_points(group="pytest11") if e.name == "snncore.testing"]
    assert entry.value == "snncore_pytest"


def test_loading_the_plugin_imports_neither_torch_nor_snncore() -> None:
    code = (
        "import sys, snncore_pytest; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'snncore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compile_choices_match_the_suite() -> None:
    assert snncore_pytest.COMPILE_MODES == _suite.COMPILE_MODES
