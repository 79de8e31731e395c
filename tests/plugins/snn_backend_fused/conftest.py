"""Fixtures of the snn-backend-fused tests: the kernels are compiled (or loaded from the user's
cache) once per session."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def library() -> Any:
    """The loaded kernel library, built on first use (a few seconds without a cache)."""
    from snn_backend_fused import build

    return build.load()
