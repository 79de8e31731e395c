"""The ``fused`` backend: kernels generated from the models' steps -- C++ on the CPU, Triton on
CUDA -- else the generic path (see :mod:`snn_backend_fused.generic`).

Which path a request takes (the route's name in brackets):

=====================================  =========================================================
request                                path
=====================================  =========================================================
feed-forward layer of any model with   the C++ kernel generated from the model's step
a feed-forward step, or recurrent      (:mod:`snn_backend_fused.compiler`; recurrent: ``W_in·x``
layer of any model with a plain        one matrix product, then the time loop with ``W_rec·z``
weighted recurrent input and no        in one call), unless the call is one it declines
module tensors; CPU, float32/float64   (``record_states=True``, a parameter that needs a
[generated]                            gradient, CPU autocast, an odd state or parameter dtype)
                                       -- then the exact eager loop -- or a step that cannot be
                                       traced -- then the generic path
feed-forward layer of any model with   the Triton kernel generated from the same step
a feed-forward step that traces; CUDA, (:mod:`snn_backend_fused.compiler.triton_emit`); declined
float16/bfloat16/float32/float64       calls (``record_states=True``, a parameter that needs a
[generated]                            gradient, CUDA autocast, an odd state or parameter dtype)
                                       take the exact eager loop; refused when Triton does not
                                       import
any other model, variant, device or    the generic path: the model's step compiled by
dtype [generic]                        ``torch.compile`` over time (eager if that fails)
=====================================  =========================================================

Selection: ``backend="auto"`` prefers ``fused`` (priority 10) only where it has a generated (or
hand-tuned) kernel — its ``route`` ranks every other request below the eager backend (-10), so
``auto`` never compiles a model behind the user's back; ``backend="fused"`` runs every model.  CPU
and CUDA (CUDA needs Triton; the generated Triton kernels were checked through Triton's
interpreter and compiled for sm_90, never run on a GPU, see docs/backend-fused.md).

If the hand-written C++ library (the buffer pool every CPU kernel writes its outputs into,
:mod:`snn_backend_fused.build`) cannot be built (no compiler, a compile error, a library that
does not load), ``supports`` refuses CPU requests with the cause: ``auto`` then falls back to the
next backend after one warning line, and ``backend="fused"`` fails with
:class:`snncore.BackendUnavailableError` naming the cause.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from snn_backend_fused import generic
from snn_backend_fused.hooks import hand_tuned
from snncore.protocols import NeuronModel, Route

#: The route priority of requests without a kernel: below the eager backend's 0.
GENERIC_PRIORITY = -10


class FusedUnavailableWarning(RuntimeWarning):
    """The fused kernels could not be built; ``backend="auto"`` uses another backend."""


_warned = False


def _warn_unavailable(cause: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warn_one_line(
            f"C++ kernels unavailable ({cause}); backend='auto' falls back to another "
            f"backend (torch)",
            FusedUnavailableWarning,
        )


def warn_one_line(message: str, category: type[Warning]) -> None:
    """A warning printed on one line (``snn-backend-fused:0: Category: message``): attributed to
    the plugin rather than to a line of source, so no source line follows it."""
    warnings.warn_explicit(message, category, filename="snn-backend-fused", lineno=0)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def compiler_support(
    model: NeuronModel, variant: str = "layer", dtype: Any = None, traced: bool = False
) -> str | None:
    """Why ``variant`` (``layer`` or ``recurrent``) of the model gets no generated kernel, or
    ``None``.  Without ``traced`` only what is known without tracing is checked (the step
    exists, the dtype, a plain recurrent input), so that listings stay cheap; with it the step
    is traced for the model's default parameters."""
    from snn_backend_fused.compiler import kernel as generated

    step = model.feed_forward_step if variant == "layer" else model.recurrent_step
    if variant not in ("layer", "recurrent") or step is None:
        return f"the model has no {variant} step"
    if dtype is not None and dtype not in generated.DTYPES:
        return f"the generated kernels run float32 and float64, not {dtype}"
    if not traced:
        return None
    p = model.parameters()
    if variant == "layer":
        result = generated.trace_layer(model, p, 0.001, (3,))
    else:
        result = generated.trace_recurrent(model, p, 0.001, 3)
    return result if isinstance(result, str) else None


def triton_support(
    model: NeuronModel, variant: str = "layer", dtype: Any = None, traced: bool = False
) -> str | None:
    """Why ``variant`` of the model gets no generated Triton (CUDA) kernel, or ``None``: feed-
    forward layers only, float16/bfloat16/float32/float64, Triton importable; with ``traced``
    the step is traced for the model's default parameters and its Triton source generated."""
    from snn_backend_fused.compiler import triton_emit

    if variant != "layer":
        return "the generated CUDA kernels run feed-forward layers only"
    if model.feed_forward_step is None:
        return "the model has no layer step"
    if dtype is not None and dtype not in triton_emit.DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in triton_emit.DTYPES)
        return f"the generated Triton kernels run {names}, not {dtype}"
    why = triton_emit.unavailable()
    if why is not None:
        return why
    if not traced:
        return None
    from snn_backend_fused.compiler import kernel as generated

    result = generated.trace_layer(model, model.parameters(), 0.001, (3,))
    if isinstance(result, str):
        return result
    try:
        triton_emit.generate(result)
    except triton_emit.Unsupported as exc:
        return f"its step has no Triton kernel: {exc}"
    return None


class FusedBackend:
    """Whole-sequence kernels generated from the models' steps (C++ on the CPU, Triton on
    CUDA); a compiled generic path for the rest."""

    name = "fused"
    priority = 10
    summary = (
        "whole-sequence C++ kernels on CPU, generated from the model's step for layers and "
        "recurrent layers; Triton generated from the same step for layers on CUDA; anything else "
        "through its torch.compile'd step"
    )

    def route(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> Route:
        """``generated`` (the model's step compiled to C++ for CPU layers and recurrent layers, to
        Triton for CUDA layers) or ``hand-tuned`` (a plugin's kernel), at this backend's priority,
        or ``generic`` (the model's compiled step, ranked below the eager backend so that
        ``auto`` never compiles a model with torch.compile behind the user's back), with the
        reason."""
        cuda = device is not None and torch.device(device).type == "cuda"
        tuned = hand_tuned(model, variant, "cuda" if cuda else "cpu")
        if tuned is not None:
            return Route(
                "hand-tuned",
                self.priority,
                f"a hand-tuned kernel its plugin registered ({tuned.summary or 'no summary'}); "
                "calls it declines run the generated kernel, else the eager loop",
            )
        generic_path = (
            f"the model's step under torch.compile, eager until it has run "
            f"{generic.COMPILE_AFTER_SECONDS:g} s"
        )
        if not cuda:
            reason = compiler_support(model, variant, dtype, traced=device is not None)
            if reason is None:
                return Route(
                    "generated",
                    self.priority,
                    "C++ generated from the model's step (explicit SIMD, whole time loop, "
                    "derived backward); calls it declines (record_states=True, a parameter that "
                    "needs a gradient, CPU autocast) run the eager loop",
                )
            return Route(
                "generic", GENERIC_PRIORITY, f"no generated kernel ({reason}); {generic_path}"
            )
        reason = triton_support(model, variant, dtype, traced=True)
        if reason is None:
            return Route(
                "generated",
                self.priority,
                "Triton generated from the model's step (whole time loop, derived backward); "
                "calls it declines (record_states=True, a parameter that needs a gradient, CUDA "
                "autocast) run the eager loop",
            )
        return Route(
            "generic", GENERIC_PRIORITY, f"no generated CUDA kernel ({reason}); {generic_path}"
        )

    def supports(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        from snn_backend_fused import build

        if variant not in model.variants:
            return f"model {model.name!r} has no {variant!r} variant"
        kind = None if device is None else torch.device(device).type
        if kind not in (None, "cpu", "cuda"):
            return f"it runs on CPU and CUDA only, not {kind}"
        if dtype is not None and not dtype.is_floating_point:
            return f"dtype {dtype} is not floating point"
        if kind == "cuda":  # the Triton kernels (and torch.compile's generic path) need Triton
            from snn_backend_fused.compiler import triton_emit

            reason = triton_emit.unavailable()
            return None if reason is None else f"its CUDA kernels need Triton: {reason}"
        failure = build.error()
        if failure is None and device is not None:  # at run time: build on first use
            try:
                build.load()
            except build.FusedBuildError as exc:
                failure = exc
                _warn_unavailable(_first_line(exc))
        if failure is not None:
            return f"its C++ kernels are unavailable: {failure}"
        return None

    def run_layer(
        self,
        model: NeuronModel,
        x: torch.Tensor,
        state: Any,
        p: Any,
        dt: float,
        record_states: bool,
    ) -> tuple[torch.Tensor, Any]:
        tuned = hand_tuned(model, "layer", x.device.type)
        if tuned is not None and not record_states:
            result = tuned.run(x, state, p, dt)
            if not isinstance(result, str):
                return result
        if x.device.type == "cpu":
            from snn_backend_fused.compiler import kernel as generated

            if compiler_support(model, "layer", x.dtype) is not None:  # half precision: as routed
                return generic.run_layer(model, x, state, p, dt, record_states)
            reason = generated.decline(model, x, state, p, record_states)
            if reason is not None:  # a call the kernel would not reproduce: the exact eager loop
                return generic.eager_layer(model, x, state, p, dt, record_states)
            result = generated.run_layer(model, x, state, p, dt)
            if not isinstance(result, str):
                return result
            # the step cannot be compiled (or its kernel does not build): the generic path, as
            # the route says for such a model
            return generic.run_layer(model, x, state, p, dt, record_states)
        from snn_backend_fused.compiler import triton_emit

        if triton_support(model, "layer", x.dtype) is not None:  # as routed: the generic path
            return generic.run_layer(model, x, state, p, dt, record_states)
        if triton_emit.decline(model, x, state, p, record_states) is not None:
            # a call the kernel would not reproduce: the exact eager loop
            return generic.eager_layer(model, x, state, p, dt, record_states)
        result = triton_emit.run_layer(model, x, state, p, dt)
        if not isinstance(result, str):
            return result
        # the step cannot be compiled (or its Triton kernel does not generate, load or compile):
        # the generic path, as the route says for such a model
        return generic.run_layer(model, x, state, p, dt, record_states)

    def run_recurrent(self, model: NeuronModel, *args: Any) -> tuple[torch.Tensor, Any]:
        """``args``: ``x, state, p, dt, input_weights, recurrent_weights, module_tensors,
        record_states`` (as for :func:`snncore.loop.recurrent_loop`)."""
        x, state, p, dt, input_weights, recurrent_weights, module_tensors, record_states = args
        if x.device.type != "cpu" or compiler_support(model, "recurrent", x.dtype) is not None:
            return generic.run_recurrent(model, *args)  # as routed: no generated kernel
        from snn_backend_fused.compiler import kernel as generated

        if generated.decline_recurrent(x, state, p, record_states) is not None:
            # a call the kernel would not reproduce: the exact eager loop
            return generic.eager_recurrent(model, *args)
        result = generated.run_recurrent(
            model, x, state, p, dt, input_weights, recurrent_weights, module_tensors
        )
        if not isinstance(result, str):
            return result
        # the step cannot be compiled (or its kernel does not build): the generic path, as the
        # route says for such a model
        return generic.run_recurrent(model, *args)
