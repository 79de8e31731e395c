"""Eager backend: the core's time loop (:mod:`snncore.loop`) in plain PyTorch.

Runs every model, variant, device and floating dtype: a feed-forward layer through the model's
whole-sequence function when it has one and accepts the call, else its step once per time step;
a recurrent layer with ``W_in·x`` for all steps at once and ``W_rec·z`` per step.
"""

from __future__ import annotations

from typing import Any

from snncore import loop
from snncore.protocols import NeuronModel, Route


class TorchBackend:
    """Eager PyTorch: every model, CPU and CUDA, float16/bfloat16/float32/float64."""

    name = "torch"
    priority = 0
    summary = "eager PyTorch time loop; runs every model on any device"

    def supports(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        if variant not in model.variants:
            return f"model {model.name!r} has no {variant!r} variant"
        if dtype is not None and not dtype.is_floating_point:
            return f"dtype {dtype} is not floating point"
        return None

    def route(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> Route:
        if variant == "recurrent":
            return Route("step-loop", self.priority, "W_in·x for all steps, then the step per step")
        name, reason = loop.layer_route(model)
        return Route(name, self.priority, reason)

    #: ``run_layer(model, x, state, p, dt, record_states)``: the core's loop itself.
    run_layer = staticmethod(loop.run_layer)
    #: ``run_recurrent(model, x, state, p, dt, input_weights, recurrent_weights, module_tensors,
    #: record_states)``.
    run_recurrent = staticmethod(loop.run_recurrent)
