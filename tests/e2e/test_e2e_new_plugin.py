"""``snn new-plugin``: the generated distribution installs, its generated tests (snncore's
conformance suite and hand-worked values) pass unmodified, the CLI lists its model, and it is
gone after uninstall — all in the overlay environment of tests/e2e/conftest.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NAME = "e2e_scaffolded"
DIST = "snn-e2e-scaffolded"


def run_pytest(overlay, tests: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """pytest in the overlay's interpreter, with no plugin switch or pytest option inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNNCORE_", "PYTEST_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [str(overlay.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_generated_plugin_installs_passes_its_tests_and_is_listed(
    tmp_path: Path, installer, snn, snn_json, overlay
):
    created = snn("new-plugin", NAME, "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    target = tmp_path / DIST
    assert f"created {target}/" in created.stdout
    for relative in (
        "pyproject.toml",
        "README.md",
        "snn_e2e_scaffolded/model.py",
        "snn_e2e_scaffolded/plugin.py",
        "tests/test_conformance.py",
    ):
        assert (target / relative).is_file(), relative

    installer.install(target, DIST)

    (model,) = [m for m in snn_json("list-models")["models"] if m["name"] == NAME]
    assert (model["distribution"], model["family"]) == (DIST, NAME)
    assert model["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]

    # the generated tests, unmodified, against the installed wheel (run from outside the
    # source tree, so that `import snn_e2e_scaffolded` finds the installed package)
    tests = run_pytest(overlay, target / "tests", tmp_path)
    output = tests.stdout + tests.stderr
    assert tests.returncode == 0, output
    passed = int(re.search(r"(\d+) passed", output).group(1))
    # 4 variants x 7 checks + 2 layers x (long run) + 1 compile + 1 surrogate + 3 hand-worked
    assert passed >= 30, output
    assert "failed" not in output and "error" not in output.lower(), output

    installer.uninstall(DIST)
    assert NAME not in [m["name"] for m in snn_json("list-models")["models"]]
