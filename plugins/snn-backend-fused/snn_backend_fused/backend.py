"""The ``fused`` backend: hand-written whole-sequence kernels where they exist, else the generic
path (see :mod:`snn_backend_fused.generic`).

Which path a request takes:

=====================================  =========================================================
request                                path
=====================================  =========================================================
feed-forward layer of a model with a   the C++ kernel (:mod:`snn_backend_fused.kernels`), unless
hand-written kernel, CPU,              the call is one the kernel declines (a parameter that
float32/float64                        needs a gradient, a third-party surrogate,
                                       ``record_states=True``, an odd state) — then the exact
                                       eager loop
the same on CUDA, float16/bfloat16/    the Triton kernel (:mod:`snn_backend_fused.triton`; the
float32/float64                        same declined calls take the eager loop); refused when
                                       Triton does not import
recurrent layer of ``lif`` or ``lsnn``, the C++ recurrent kernel (:mod:`snn_backend_fused.
CPU, float32/float64                   recurrent`: ``W_in·x`` one matrix product, then the time
                                       loop with ``W_rec·z`` in one call), unless declined as
                                       above -- then the exact eager loop
any other model or variant             the generic path: the model's step compiled by
                                       ``torch.compile`` over time (eager if that fails)
=====================================  =========================================================

Selection: ``backend="auto"`` prefers ``fused`` (priority 10) only where it has a kernel — its
``route`` ranks every other request below the eager backend (-10), so ``auto`` never
compiles a model behind the user's back; ``backend="fused"`` runs every model.  CPU and CUDA
(CUDA needs Triton; the Triton kernels were verified through Triton's interpreter only, see
docs/backend-fused.md).

If the kernels cannot be built (no compiler, a compile error, a library that does not load),
``supports`` refuses with the cause: ``auto`` then falls back to the next backend after one
warning line, and ``backend="fused"`` fails with :class:`snncore.BackendUnavailableError` naming
the cause.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from snn_backend_fused import generic
from snncore.protocols import NeuronModel, Route

KERNEL_DTYPES = (torch.float32, torch.float64)
#: The Triton (CUDA) kernels' dtypes: float16 and bfloat16 are computed in float32.
CUDA_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
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


def compiler_support(model: NeuronModel, dtype: Any = None, traced: bool = False) -> str | None:
    """Why the model's feed-forward layer gets no generated kernel, or ``None``.  Without
    ``traced`` only what is known without tracing (the step exists, the dtype) is checked, so
    that listings stay cheap; with it the step is traced for the model's default parameters."""
    from snn_backend_fused.compiler import kernel as generated

    if model.feed_forward_step is None:
        return "the model has no feed-forward step"
    if dtype is not None and dtype not in generated.DTYPES:
        return f"the generated kernels run float32 and float64, not {dtype}"
    if not traced:
        return None
    p = model.parameters()
    result = generated.trace_layer(model, p, 0.001, (3,))
    return result if isinstance(result, str) else None


class FusedBackend:
    """Whole-sequence CPU kernels; a compiled generic path for every other model."""

    name = "fused"
    priority = 10
    summary = (
        "whole-sequence C++ kernels on CPU (lif, li, lsnn, lif_ex, lif_adex, lif_refrac layers; "
        "lif and lsnn recurrent layers); "
        "any other model through its torch.compile'd step"
    )

    def route(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> Route:
        """``generated`` (the model's step compiled to C++, CPU layers), ``kernel`` (a
        hand-written kernel: CUDA layers, CPU recurrent layers of lif and lsnn), both at this
        backend's priority, or ``generic`` (the model's compiled step, ranked below the eager
        backend so that ``auto`` never compiles a model with torch.compile behind the user's
        back), with the reason."""
        from snn_backend_fused import kernels, recurrent

        cuda = device is not None and torch.device(device).type == "cuda"
        if variant == "layer" and not cuda:
            reason = compiler_support(model, dtype, traced=device is not None)
            if reason is None:
                return Route(
                    "generated",
                    self.priority,
                    "C++ generated from the model's step (explicit SIMD, whole time loop, "
                    "derived backward); calls it declines (record_states=True, a parameter that "
                    "needs a gradient, CPU autocast) run the eager loop",
                )
            fallback = f"no generated kernel ({reason})"
        else:
            fallback = "no generated kernel for this variant yet"
        kernel = (
            kernels.kernel_for(model, variant) if cuda else recurrent.kernel_for(model, variant)
        )
        if kernel is None:
            where = "CUDA (Triton: layers only)" if cuda else "this model and variant"
            return Route(
                "generic",
                GENERIC_PRIORITY,
                f"{fallback}; no hand-written kernel for {where}: the model's step under "
                f"torch.compile, eager until it has run {generic.COMPILE_AFTER_SECONDS:g} s",
            )
        dtypes = CUDA_KERNEL_DTYPES if cuda else KERNEL_DTYPES
        if dtype is not None and dtype not in dtypes:
            return Route(
                "generic",
                GENERIC_PRIORITY,
                f"the kernel runs {', '.join(str(d) for d in dtypes)}, not {dtype}",
            )
        language = "Triton" if cuda else "C++"
        return Route(
            "kernel",
            self.priority,
            f"hand-written {language} kernel; calls it declines (record_states=True, a parameter "
            "that needs a gradient, a third-party surrogate, CPU autocast) run the eager loop",
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
            from snn_backend_fused.triton import unavailable

            reason = unavailable()
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
        from snn_backend_fused import kernels

        if x.device.type == "cpu":
            from snn_backend_fused.compiler import kernel as generated

            reason = generated.decline(model, x, state, p, record_states)
            if reason is None:
                result = generated.run_layer(model, x, state, p, dt)
                if not isinstance(result, str):
                    return result
            return generic.eager_layer(model, x, state, p, dt, record_states)
        spec = kernels.kernel_for(model, "layer")
        if spec is None:
            return generic.run_layer(model, x, state, p, dt, record_states)
        if not record_states:
            from snn_backend_fused import triton

            result = triton.run(spec, x, state, p, dt)
            if result is not None:
                return result
        return generic.eager_layer(model, x, state, p, dt, record_states)

    def run_recurrent(self, model: NeuronModel, *args: Any) -> tuple[torch.Tensor, Any]:
        """``args``: ``x, state, p, dt, input_weights, recurrent_weights, module_tensors,
        record_states`` (as for :func:`snncore.loop.recurrent_loop`)."""
        from snn_backend_fused import recurrent

        *call, record_states = args
        request = recurrent.Request(model, *call)
        spec = recurrent.kernel_for(model, "recurrent")
        if spec is None:
            return generic.run_recurrent(*request, record_states)
        if not record_states:
            result = recurrent.run(spec, request)
            if result is not None:
                return result
        return generic.eager_recurrent(*request, record_states)
