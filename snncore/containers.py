"""Containers that handle time and state around neuron modules.

=====================  ========================================================================
``SequentialState``    a ``torch.nn.Sequential`` that threads each stateful child's state:
                       ``out, states = model(x, states)``, ``states=None`` starts them all fresh
``Lift``               applies a module at every time step of a ``(T, ...)`` input
``LConv2d``            ``Conv2d`` applied per time step, as a ``Conv3d`` with a unit time kernel
``RegularizationCell`` accumulates e.g. spike counts or voltages for a loss term
=====================  ========================================================================

**Which children are stateful** (called ``child(x, state) -> (out, state)``), in this order:

1. a child with a boolean attribute ``stateful`` — its value decides (``Lift`` sets it);
2. every snncore neuron module (:class:`snncore.modules.NeuronModule`);
3. every ``torch.nn.RNNBase`` (``RNN``, ``GRU``, ``LSTM``: their hidden state is threaded);
4. any other module whose ``forward`` has a parameter named ``state`` (e.g. a nested
   ``SequentialState``, or your own module following the ``(x, state) -> (out, state)`` rule).

Everything else is called ``child(x) -> out``.  This is the reference library's rule (Norse:
``state`` in the signature or an RNN) made explicit, with the ``stateful`` attribute as override.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.modules.utils import _pair

from snncore.modules import NeuronModule

_SIGNATURE_CACHE: dict[Any, bool] = {}


def is_stateful(module: torch.nn.Module) -> bool:
    """Whether ``module`` is called as ``module(x, state) -> (out, state)`` (see the module doc)."""
    flag = getattr(module, "stateful", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(module, (NeuronModule, torch.nn.RNNBase)):
        return True
    forward = getattr(type(module), "forward", None)
    if forward not in _SIGNATURE_CACHE:
        try:
            _SIGNATURE_CACHE[forward] = "state" in inspect.signature(forward).parameters
        except (TypeError, ValueError):
            _SIGNATURE_CACHE[forward] = False
    return _SIGNATURE_CACHE[forward]


class SequentialState(torch.nn.Sequential):
    """A ``Sequential`` that threads the state of every stateful child.

    ``forward(x, state=None) -> (out, states)``: ``states`` is a list with one entry per child —
    the child's final state, or ``None`` for a stateless child.  Passing that list back continues
    every stateful child from where it stopped; ``state=None`` lets each child start from its own
    initial state.  With ``return_hidden=True`` the first result is the list of every child's
    output instead of the last one.
    """

    def __init__(self, *args: torch.nn.Module, return_hidden: bool = False):
        super().__init__(*args)
        self.return_hidden = return_hidden
        self.forward_state_hooks: list[Any] = []

    @property
    def stateful_layers(self) -> list[bool]:
        """For each child, whether it is stateful."""
        return [is_stateful(m) for m in self]

    def register_forward_state_hooks(
        self, forward_hook: Callable[[torch.nn.Module, Any, Any], Any]
    ) -> None:
        """Register ``forward_hook(module, input, output)`` on every stateful child.

        ``output`` is the child's ``(out, state)``.  Remove them with
        :meth:`remove_forward_state_hooks`; registering twice without removing is an error.
        """
        if self.forward_state_hooks:
            raise ValueError(
                "forward state hooks are already registered; call remove_forward_state_hooks() first"
            )
        for module in self:
            if is_stateful(module):
                self.forward_state_hooks.append(module.register_forward_hook(forward_hook))

    def remove_forward_state_hooks(self) -> None:
        """Remove the hooks registered by :meth:`register_forward_state_hooks`."""
        for handle in self.forward_state_hooks:
            handle.remove()
        self.forward_state_hooks.clear()

    def forward(self, input_tensor: Any, state: list[Any] | None = None) -> tuple[Any, list[Any]]:  # type: ignore[override]
        if state is None:
            state = [None] * len(self)
        elif len(state) != len(self):
            raise ValueError(
                f"SequentialState has {len(self)} children but got a state list of {len(state)}; "
                "pass the list a previous call returned, or None"
            )
        states = list(state)
        hidden = []
        x = input_tensor
        for index, module in enumerate(self):
            if is_stateful(module):
                x, states[index] = module(x, states[index])
            else:
                x = module(x)
            if self.return_hidden:
                hidden.append(x)
        return (hidden if self.return_hidden else x), states


class Lift(torch.nn.Module):
    """Applies ``module`` at every time step of a ``(T, ...)`` input and stacks the outputs.

    A stateless module gives ``out[t] = module(x[t])``.  A stateful one (see
    :func:`is_stateful`) is called ``module(x[t], state)`` with its state carried from step to
    step, and ``Lift`` then returns ``(outputs, final_state)``.  A tuple ``(x, state)`` as input
    is accepted: its state starts a stateful module, and is ignored for a stateless one.
    """

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.lifted_module = module
        self.stateful = is_stateful(module)

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, Any]) -> Any:
        state = None
        if isinstance(x, tuple):
            x, state = x
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise ValueError("Lift expects a tensor of shape (time, ...)")
        outputs = []
        for x_t in x.unbind(0):
            if self.stateful:
                out, state = self.lifted_module(x_t, state)
            else:
                out = self.lifted_module(x_t)
            outputs.append(out)
        stacked = torch.stack(outputs)
        return (stacked, state) if self.stateful else stacked


def _spatial(value: Any) -> tuple[int, ...]:
    return (*_pair(value), 1)


class LConv2d(torch.nn.Conv3d):
    """2-d convolution applied at every time step: ``(T, N, C_in, H, W) -> (T, N, C_out, H', W')``.

    Stored as a ``Conv3d`` whose kernel has extent 1 along time (weight ``(C_out, C_in/groups,
    kH, kW, 1)``), so one call convolves all steps; the arguments are ``Conv2d``'s.  As in the
    reference there is no bias unless ``bias=True``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        device: Any = None,
        dtype: Any = None,
        bias: bool = False,
    ):
        super().__init__(
            in_channels,
            out_channels,
            _spatial(kernel_size),  # type: ignore[arg-type]
            _spatial(stride),  # type: ignore[arg-type]
            padding if isinstance(padding, str) else (*_pair(padding), 0),  # type: ignore[arg-type]
            _spatial(dilation),  # type: ignore[arg-type]
            groups,
            bias=bias,
            padding_mode="zeros",
            device=device,
            dtype=dtype,
        )

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(input_tensor, torch.Tensor) or input_tensor.dim() != 5:
            shape = tuple(getattr(input_tensor, "shape", ()))
            raise ValueError(f"LConv2d expects input of shape (T, N, C_in, H, W), got {shape}")
        out = super().forward(input_tensor.permute(1, 2, 3, 4, 0))  # (N, C, H, W, T)
        return out.permute(4, 0, 1, 2, 3)


# -- regularisation -----------------------------------------------------------------------------

Accumulator = Callable[[torch.Tensor, Any, Any], Any]


def spike_accumulator(z: torch.Tensor, s: Any = None, state: Any = None) -> torch.Tensor:
    """Adds the number of spikes in ``z`` (all neurons and batch entries) to ``state`` (0 first)."""
    return (0 if state is None else state) + z.sum()


def voltage_accumulator(z: torch.Tensor, s: Any, state: Any = None) -> torch.Tensor:
    """Adds the neuron state's membrane voltage ``s.v`` element-wise to ``state`` (zeros first)."""
    if not hasattr(s, "v"):
        raise TypeError(f"voltage_accumulator needs a state with a field v, got {type(s).__name__}")
    return (torch.zeros_like(s.v) if state is None else state) + s.v


def regularize_step(
    z: torch.Tensor, s: Any, accumulator: Accumulator = spike_accumulator, state: Any = None
) -> tuple[torch.Tensor, Any]:
    """One accumulation: ``(z, accumulator(z, s, state))`` — the spikes pass through unchanged."""
    return z, accumulator(z, s, state)


class RegularizationCell(torch.nn.Module):
    """Accumulates a quantity (spike count by default) over calls, for a loss term.

    ``z, term = cell(z, s)`` after each neuron step (``z`` its output, ``s`` its state) adds
    ``accumulator(z, s, term)`` into the module's ``state`` and returns it; ``z`` passes through.
    As in the reference the total lives in the module across calls: call :meth:`reset` (or set
    ``state``) at the start of every batch, or the autograd graph grows from batch to batch.
    Accumulators: :func:`spike_accumulator` (default), :func:`voltage_accumulator`, or any
    ``f(z, s, state) -> state``.
    """

    def __init__(self, accumulator: Accumulator = spike_accumulator, state: Any = None):
        super().__init__()
        self.accumulator = accumulator
        self.state = state

    def reset(self, state: Any = None) -> None:
        """Start accumulating afresh (from ``state``, default nothing)."""
        self.state = state

    def forward(self, z: torch.Tensor, s: Any = None) -> tuple[torch.Tensor, Any]:
        z, self.state = regularize_step(z, s, self.accumulator, self.state)
        return z, self.state
