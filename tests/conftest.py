"""Shared fixtures: every test that touches the plugin system gets a fresh plugin manager."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snncore.plugins import PluginManager, reset_manager


@pytest.fixture
def fresh_manager() -> Iterator[PluginManager]:
    """A newly discovered plugin manager, replaced by another fresh one after the test, so that
    run-time registrations and environment switches never leak between tests."""
    manager = reset_manager()
    try:
        yield manager
    finally:
        reset_manager()


@pytest.fixture
def builtins_only() -> Iterator[PluginManager]:
    """A plugin manager with no entry points loaded: only the core's built-in plugins."""
    manager = reset_manager(autoload=False)
    try:
        yield manager
    finally:
        reset_manager()
