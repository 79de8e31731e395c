"""Fixtures for the core tests: plugin managers built under chosen environment switches, a tiny
neuron model and plugin objects registered at run time (undone by a fresh manager after each test).

``fresh_manager`` and ``builtins_only`` come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import attrs
import pytest
import torch

import snncore
from snncore.plugins import PluginManager, reset_manager

SWITCHES = ("SNNCORE_DISABLE_PLUGINS", "SNNCORE_DISABLE_PLUGIN_AUTOLOAD")


@pytest.fixture
def manager_with_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``manager_with_env(SNNCORE_DISABLE_PLUGINS="snn-lif")``: a fresh manager discovered under
    those variables; afterwards the environment is restored and the manager rediscovered."""
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)

    def make(**env: str) -> PluginManager:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return reset_manager()

    try:
        yield make
    finally:
        monkeypatch.undo()
        reset_manager()


@attrs.frozen
class ToyParameters:
    """Parameters of the toy model."""

    gain: torch.Tensor = snncore.tensor_field(2.0, "1", "input gain")


class ToyState(NamedTuple):
    v: torch.Tensor


def toy_step(x: torch.Tensor, state: ToyState, p: ToyParameters, dt: float) -> tuple[Any, ToyState]:
    v = state.v + p.gain * x
    return v, ToyState(v)


def toy_initial_state(
    p: ToyParameters, shape: Any, device: Any = None, dtype: Any = None
) -> ToyState:
    return ToyState(torch.zeros(shape, device=device, dtype=dtype))


TOY_MODEL = snncore.NeuronModel(
    name="toy",
    family="toyfamily",
    summary="a toy integrator for the core tests",
    parameters=ToyParameters,
    feed_forward_step=toy_step,
    feed_forward_state=ToyState,
    initial_feed_forward_state=toy_initial_state,
    output="voltage",
)


@pytest.fixture
def toy_model() -> snncore.NeuronModel:
    return TOY_MODEL


class ToyPlugin:
    """A run-time plugin object: a class whose static methods are hook implementations."""

    @staticmethod
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(TOY_MODEL)


@pytest.fixture
def toy_plugin() -> type[ToyPlugin]:
    return ToyPlugin
