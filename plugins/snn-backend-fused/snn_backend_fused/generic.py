"""The generic path: every request without a generated (or hand-tuned) kernel.

Measured on the development machine (2 cores, torch 2.13 CPU, T=500, B=16, N=1024, forward +
backward): the model's own step compiled by ``torch.compile`` and driven over ``x.unbind(0)``
beats the eager loop by 2–30× once compiled (LSNN 0.10 s against 0.24 s; AdEx, whose eager
exponential is slow, 0.11 s against 3.4 s), whereas running the loop without a graph and
recomputing each step in the backward pass is *slower* than eager (one more forward pass).
Compiling the whole time loop instead of the step does not finish (seconds per unrolled step).
So the generic path compiles the step -- once it pays: compiling costs seconds per model (and
again per new dtype or gradient mode), which a short run such as a test never earns back.  The
mode, ``$SNN_FUSED_GENERIC`` or :func:`set_generic_mode`:

- ``auto`` (default): the step runs eagerly until that model (per variant) has spent
  :data:`COMPILE_AFTER_SECONDS` in the eager loop in this process, then compiled -- a training
  loop is compiled within its first iterations, a test or a one-off call never is;
- ``compile``: compiled from the first call;
- ``eager``: never compiled (the step over ``x.unbind(0)``, as the ``torch`` backend runs it).

If compiling or running the compiled step raises, the whole sequence is run again eagerly
(steps are pure functions, so a restart is safe), a one-line warning names the cause, and that
model stays eager for the rest of the process.  An error raised later, in a compiled backward
pass, cannot be caught this way.

Compiling the first time costs several seconds on 2 cores (inductor keeps its own on-disk cache
for later processes).  Numerics: inductor may fuse and reorder the step's operations, so
results agree with the eager step to rounding, not bit for bit; a spike whose voltage lands
within rounding of the threshold can flip.  Calls the generated kernels decline (see
:func:`snn_backend_fused.compiler.kernel.decline` and ``decline_recurrent``,
:func:`snn_backend_fused.compiler.triton_emit.decline`) take :func:`eager_layer` /
:func:`eager_recurrent`, which are exact.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from snncore import loop
from snncore.protocols import NeuronModel

MODES = ("auto", "compile", "eager")
#: In ``auto`` mode a model's step is compiled once it has run this long eagerly (forward).
COMPILE_AFTER_SECONDS = 1.0
_mode: str | None = None
_eager_seconds: dict[tuple[int, str], float] = {}
_compiled: dict[tuple[int, str], Callable[..., Any]] = {}
_failed: dict[tuple[int, str], str] = {}
_lock = threading.Lock()


class GenericPathWarning(RuntimeWarning):
    """The compiled generic path failed for a model, which now runs eagerly."""


def generic_mode() -> str:
    """``"auto"`` (default), ``"compile"`` or ``"eager"``, from :func:`set_generic_mode` or
    ``$SNN_FUSED_GENERIC``."""
    if _mode is not None:
        return _mode
    mode = os.environ.get("SNN_FUSED_GENERIC", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"SNN_FUSED_GENERIC must be one of {MODES}, got {mode!r}")
    return mode


def set_generic_mode(mode: str | None) -> None:
    """Choose how models without a kernel run: ``"auto"``, ``"compile"``, ``"eager"``, or
    ``None`` to follow ``$SNN_FUSED_GENERIC`` again."""
    global _mode
    if mode is not None and mode not in MODES:
        raise ValueError(f"the generic mode must be one of {MODES}, got {mode!r}")
    _mode = mode


def compile_failures() -> list[tuple[str, str]]:
    """``(variant, cause)`` of every model step whose compilation failed in this process."""
    return [(variant, cause) for (_, variant), cause in _failed.items()]


# -- the eager loop: the core's (snncore.loop) ---------------------------------------------------


def eager_layer(
    model: NeuronModel, x: torch.Tensor, state: Any, p: Any, dt: float, record_states: bool
) -> tuple[torch.Tensor, Any]:
    """The feed-forward loop as the eager backend runs it (:func:`snncore.loop.run_layer`)."""
    return loop.run_layer(model, x, state, p, dt, record_states)


def eager_recurrent(model: NeuronModel, *args: Any) -> tuple[torch.Tensor, Any]:
    """The recurrent loop as the eager backend runs it, for the calls a recurrent kernel
    declines (``args``: those of :func:`run_recurrent` after the model)."""
    return loop.run_recurrent(model, *args)


# -- the compiled step --------------------------------------------------------------------------


def _compiled_step(model: NeuronModel, variant: str) -> Callable[..., Any] | None:
    key = (id(model), variant)
    if key in _failed:
        return None
    with _lock:
        found = _compiled.get(key)
        if found is None:
            plain = (
                model.feed_forward_step
                if variant == "layer"
                else loop.recurrent_step_function(model)
            )
            found = torch.compile(plain, dynamic=None)
            _compiled[key] = found
    return found


def _root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost exception (inductor wraps the real one)."""
    seen = 0
    while seen < 10:
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if inner is None or inner is exc:
            break
        exc, seen = inner, seen + 1
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0].strip()}" if lines else type(exc).__name__


def _give_up(model: NeuronModel, variant: str, exc: BaseException) -> None:
    cause = _root_cause(exc)
    _failed[(id(model), variant)] = cause
    _compiled.pop((id(model), variant), None)
    from snn_backend_fused.backend import warn_one_line

    warn_one_line(
        f"torch.compile of model {model.name!r} ({variant}) failed ({cause}); it runs eagerly "
        f"from now on",
        GenericPathWarning,
    )


def _wants_compiled(model: NeuronModel, variant: str) -> Callable[..., Any] | None:
    mode = generic_mode()
    if mode == "eager":
        return None
    if mode == "auto" and _eager_seconds.get((id(model), variant), 0.0) < COMPILE_AFTER_SECONDS:
        return None
    return _compiled_step(model, variant)


def _timed_eager(model: NeuronModel, variant: str, run: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = run()
    key = (id(model), variant)
    _eager_seconds[key] = _eager_seconds.get(key, 0.0) + time.perf_counter() - start
    return result


def run_layer(
    model: NeuronModel, x: torch.Tensor, state: Any, p: Any, dt: float, record_states: bool
) -> tuple[torch.Tensor, Any]:
    """The generic feed-forward path: the compiled step over time, else the eager loop."""
    compiled = _wants_compiled(model, "layer")
    if compiled is not None:
        try:
            return loop.layer_loop(compiled, x, state, p, dt, record_states)
        except Exception as exc:
            _give_up(model, "layer", exc)
    return _timed_eager(
        model,
        "layer",
        lambda: loop.layer_loop(model.feed_forward_step, x, state, p, dt, record_states),
    )


def run_recurrent(model: NeuronModel, *args: Any) -> tuple[torch.Tensor, Any]:
    """The generic recurrent path: the compiled step (with ``W_rec·z``) over time, else eager;
    ``args`` as for :func:`snncore.loop.recurrent_loop` after the model."""
    compiled = _wants_compiled(model, "recurrent")
    if compiled is not None:
        try:
            return loop.recurrent_loop(compiled, model, *args)
        except Exception as exc:
            _give_up(model, "recurrent", exc)
    return _timed_eager(model, "recurrent", lambda: loop.run_recurrent(model, *args))
