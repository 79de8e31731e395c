"""Shared by the compatibility tests."""

from __future__ import annotations

import pytest

import snncore
from snncore.compat.norse import _superspike


@pytest.fixture
def norse_compat(monkeypatch):
    """The compatibility namespace, with the SuperSpike choice (and the name override it
    sets) undone afterwards, so no test's choice reaches another."""
    import snncore.compat.norse as compat

    monkeypatch.setitem(_superspike._choice, "reference", None)
    monkeypatch.setitem(_superspike._choice, "warned", True)
    yield compat
    snncore.surrogates.override_surrogate("super", None)
