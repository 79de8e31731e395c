"""``snn new-plugin`` (the snn-scaffold plugin): the generated distribution — one module of at
most 80 non-blank lines, its pyproject.toml, tests and README — installs, the CLI lists its model,
its four variants run on every backend, a layer pickles, its generated tests (snncore's
conformance suite and hand-worked values) pass unmodified, and it is gone after uninstall — all in
the overlay environment of tests/e2e/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NAME = "e2e_scaffolded"
DIST = "snn-e2e-scaffolded"
MAX_LINES = 80


def test_generated_plugin_installs_runs_passes_its_tests_and_is_listed(
    tmp_path: Path, installer, snn, snn_json, every_variant, backends, run_pytest
):
    created = snn("new-plugin", NAME, "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    target = tmp_path / DIST
    assert f"created {target}/" in created.stdout
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "snn_e2e_scaffolded.py", "tests/test_snn_e2e_scaffolded.py"]  # fmt: skip

    source = [p for p in target.rglob("*.py") if "tests" not in p.relative_to(target).parts]
    lines = sum(1 for p in source for line in p.read_text().splitlines() if line.strip())
    print(f"{DIST}: {lines} non-blank lines of Python outside its tests")
    assert lines <= MAX_LINES

    installer.install(target, DIST)

    (model,) = [m for m in snn_json("list-models")["models"] if m["name"] == NAME]
    assert (model["distribution"], model["plugin"], model["family"]) == (DIST, DIST, NAME)
    assert model["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]
    assert set(backends) <= set(model["backends"]), model["backends"]

    # the four variants on every backend (agreeing), and a layer through pickle
    stdout = every_variant(NAME)
    assert "cell (2, 3) E2eScaffoldedState\n" in stdout
    assert "recurrent_cell (2, 5) E2eScaffoldedState\n" in stdout
    for backend in backends:
        assert f"layer {backend} (200, 2, 3) E2eScaffolded E2eScaffoldedState\n" in stdout
        assert (
            f"recurrent {backend} (200, 2, 5) E2eScaffoldedRecurrent E2eScaffoldedState\n" in stdout
        )
    assert "pickled E2eScaffolded\n" in stdout

    # the generated tests, unmodified, against the installed wheel (run from outside the
    # source tree, so that `import snn_e2e_scaffolded` finds the installed module)
    passed, output = run_pytest(target / "tests")
    print(output.splitlines()[-1])
    # 4 variants x 7 checks + 2 layers x (long run, backends) + compile + surrogate + 5 by hand
    assert passed >= 30, output

    installer.uninstall(DIST)
    assert NAME not in [m["name"] for m in snn_json("list-models")["models"]]
