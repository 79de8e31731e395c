"""One bad plugin never breaks the tool: a plugin that raises at import, and one whose hook
raises, are recorded and shown by `snn plugins`; every other model keeps working."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

RAISES_AT_IMPORT = """
raise RuntimeError("boom at import")
"""

RAISES_IN_HOOK = """
import snncore


@snncore.hookimpl
def register_models(register):
    raise ValueError("boom in register_models")
"""


def test_failing_plugins_are_recorded_and_skipped(
    make_distribution, installer, snn, snn_json, python
):
    source = make_distribution(
        "snn-broken",
        "snn_broken",
        {
            "snn-broken": ("plugin", RAISES_AT_IMPORT),
            "snn-broken-hook": ("hook", RAISES_IN_HOOK),
        },
    )
    installer.install(source, "snn-broken")

    listing = snn("list-models")
    assert listing.returncode == 0, listing.stderr
    assert any(line.split()[:1] == ["lif"] for line in listing.stdout.splitlines())
    assert "Traceback" not in listing.stderr
    (warning,) = listing.stderr.splitlines()  # failures are not silent: one line
    assert warning.startswith("warning: 2 plugins failed to load (")
    assert "snn-broken" in warning and "snn-broken-hook" in warning
    assert warning.endswith("); run `snn plugins` to see why")

    table = snn("plugins")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:] if line.strip()}
    assert "failed" in rows["snn-broken"]
    assert "boom at import" in rows["snn-broken"]
    assert "failed" in rows["snn-broken-hook"]
    assert "boom in register_models" in rows["snn-broken-hook"]
    assert "loaded" in rows["snn-lif"]

    plugins = {p["name"]: p for p in snn_json("plugins")["plugins"]}
    broken = plugins["snn-broken"]
    assert broken["distribution"] == "snn-broken"
    assert broken["version"] == "0.0.1"
    assert broken["status"] == "failed"
    assert broken["builtin"] is False
    assert "RuntimeError: boom at import" in broken["error"]
    hook = plugins["snn-broken-hook"]
    assert hook["status"] == "failed"
    assert "register_models" in hook["error"]
    assert "boom in register_models" in hook["error"]
    assert plugins["snn-lif"]["status"] == "loaded"
    assert plugins["snn-lif"]["error"] is None

    run = python(
        """
        import torch
        import snncore

        spikes, _ = snncore.create("lif")(torch.full((10, 1, 2), 3.0))
        print("lif ok", tuple(spikes.shape))
        for record in snncore.list_plugins():
            print(record.name, record.status)
        """
    )
    assert run.returncode == 0, run.stderr
    assert "lif ok (10, 1, 2)" in run.stdout
    assert "snn-broken failed" in run.stdout
