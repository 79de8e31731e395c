"""The reference library's extension API: the four base classes a custom neuron subclasses,
the functional ``lift`` and ``RecurrentSequential``.

A custom neuron in the reference's style hands its base class an ``activation`` (one step,
``(x, state, p, dt) -> (out, state)``, or ``(x, state, w_in, w_rec, p, dt)`` for the recurrent
ones) and a ``state_fallback(x)`` that builds the initial state.  snncore's own neurons are
:class:`snncore.NeuronModel` data instead; the classes here run the reference's style unchanged,
and snncore's module classes count as their subclasses (``isinstance(LIFCell(), SNNCell)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from snncore.containers import SequentialState
from snncore.modules import NeuronCell, NeuronLayer, NeuronRecurrent, NeuronRecurrentCell
from snncore.states import stack_states


class _AlsoOurs(type(torch.nn.Module)):  # type: ignore[misc]
    """``isinstance``/``issubclass`` also accept snncore's module class of the same variant."""

    ours: type

    def __instancecheck__(cls, instance: Any) -> bool:
        return super().__instancecheck__(instance) or isinstance(instance, cls.ours)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return super().__subclasscheck__(subclass) or issubclass(subclass, cls.ours)


def _weights(size: tuple[int, int], given: torch.Tensor | None) -> torch.Tensor:
    if given is not None:
        return given
    return torch.nn.Parameter(torch.randn(*size) * (2.0 / size[0]) ** 0.5)


class SNNCell(torch.nn.Module, metaclass=_AlsoOurs):
    """One feed-forward step of a custom neuron: ``activation(x, state, p, dt)``."""

    ours = NeuronCell

    def __init__(
        self,
        activation: Callable[..., Any],
        state_fallback: Callable[[torch.Tensor], Any],
        p: Any,
        dt: float = 0.001,
        activation_sparse: Callable[..., Any] | None = None,
    ):
        super().__init__()
        self.activation, self.activation_sparse = activation, activation_sparse
        self.state_fallback, self.p, self.dt = state_fallback, p, dt

    def _activation(self, x: torch.Tensor) -> Callable[..., Any]:
        return self.activation_sparse if x.is_sparse and self.activation_sparse else self.activation

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        state = self.state_fallback(input_tensor) if state is None else state
        return self._activation(input_tensor)(input_tensor, state, self.p, self.dt)

    def extra_repr(self) -> str:
        return f"p={self.p}, dt={self.dt}"


class SNNRecurrentCell(torch.nn.Module, metaclass=_AlsoOurs):
    """One recurrent step of a custom neuron: ``activation(x, state, w_in, w_rec, p, dt)``;
    owns ``input_weights`` and ``recurrent_weights`` (no autapses unless ``autapses=True``)."""

    ours = NeuronRecurrentCell

    def __init__(
        self,
        activation: Callable[..., Any],
        state_fallback: Callable[[torch.Tensor], Any],
        input_size: int,
        hidden_size: int,
        p: Any,
        input_weights: torch.Tensor | None = None,
        recurrent_weights: torch.Tensor | None = None,
        autapses: bool = False,
        dt: float = 0.001,
        activation_sparse: Callable[..., Any] | None = None,
    ):
        super().__init__()
        self.activation, self.activation_sparse = activation, activation_sparse
        self.state_fallback, self.p, self.dt = state_fallback, p, dt
        self.input_size, self.hidden_size, self.autapses = input_size, hidden_size, autapses
        self.input_weights = _weights((hidden_size, input_size), input_weights)
        self.recurrent_weights = _weights((hidden_size, hidden_size), recurrent_weights)
        if not autapses:
            with torch.no_grad():
                self.recurrent_weights.fill_diagonal_(0.0)
            if self.recurrent_weights.requires_grad:
                self.recurrent_weights.register_hook(lambda g: g.clone().fill_diagonal_(0.0))

    def _activation(self, x: torch.Tensor) -> Callable[..., Any]:
        return self.activation_sparse if x.is_sparse and self.activation_sparse else self.activation

    def _step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        w_in, w_rec = self.input_weights, self.recurrent_weights
        return self._activation(x)(x, state, w_in, w_rec, self.p, self.dt)

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        state = self.state_fallback(input_tensor) if state is None else state
        return self._step(input_tensor, state)


def _over_time(
    step: Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]],
    x: torch.Tensor,
    state: Any,
    record_states: bool,
) -> tuple[torch.Tensor, Any]:
    outputs, states = [], []
    for x_t in x:
        out, state = step(x_t, state)
        outputs.append(out)
        if record_states:
            states.append(state)
    if not record_states:
        return torch.stack(outputs), state
    stacked = torch.stack(states) if isinstance(states[0], torch.Tensor) else stack_states(states)
    return torch.stack(outputs), stacked


class SNN(SNNCell, metaclass=_AlsoOurs):
    """A custom feed-forward neuron over time (the first input axis)."""

    ours = NeuronLayer

    def __init__(self, *args: Any, record_states: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.record_states = record_states

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        state = self.state_fallback(input_tensor) if state is None else state
        activation = self._activation(input_tensor)
        return _over_time(
            lambda x, s: activation(x, s, self.p, self.dt), input_tensor, state, self.record_states
        )


class SNNRecurrent(SNNRecurrentCell, metaclass=_AlsoOurs):
    """A custom recurrent neuron over time (the first input axis)."""

    ours = NeuronRecurrent

    def __init__(self, *args: Any, record_states: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.record_states = record_states

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        state = self.state_fallback(input_tensor) if state is None else state
        return _over_time(self._step, input_tensor, state, self.record_states)


class _Lifted(torch.nn.Module):
    def __init__(self, activation: Callable[..., Any], p: Any = None):
        super().__init__()
        self.activation, self.p = activation, p

    def forward(
        self, input_tensor: torch.Tensor, state: Any = None, **kwargs: Any
    ) -> tuple[torch.Tensor, Any]:
        # keywords (p, input_weights, ...) go to every step; a p given here wins over lift's
        if self.p is not None:
            kwargs.setdefault("p", self.p)
        outputs = []
        for x in input_tensor:
            if state is None:
                out, state = self.activation(x, **kwargs)
            else:
                out, state = self.activation(x, state=state, **kwargs)
            outputs.append(out)
        return torch.stack(outputs), state


def lift(activation: Callable[..., Any], p: Any = None) -> torch.nn.Module:
    """``activation`` (one step, ``(x, state=None, p=...) -> (out, state)``) applied over the
    first (time) axis of its input, threading the state; keywords given to the lifted call
    (``p=``, ``input_weights=``, ...) are passed to every step."""
    return _Lifted(activation, p)


class RecurrentSequentialState(NamedTuple):
    """The last outputs fed back (``cache``) and the wrapped layers' states."""

    cache: Any = None
    state: Any = None


class RecurrentSequential(torch.nn.Module):
    """A sequence of layers, run one step at a time, whose output (``output_modules``: an index
    or a list of indices into the layers) is added to the next step's input."""

    def __init__(self, *modules: torch.nn.Module, output_modules: int | list[int] = -1):
        super().__init__()
        self.module = SequentialState(*modules, return_hidden=True)
        self.output_modules = output_modules

    def forward(
        self, x: torch.Tensor, state: RecurrentSequentialState | None = None
    ) -> tuple[Any, RecurrentSequentialState]:
        if state is None:
            state = RecurrentSequentialState()
        else:
            x = x + state.cache
        outputs, inner = self.module(x, state.state)
        if isinstance(self.output_modules, int):
            out = outputs[self.output_modules]
        else:
            out = [outputs[i] for i in self.output_modules]
        return out, RecurrentSequentialState(out, inner)
