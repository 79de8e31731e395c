"""Choosing the backend that runs a layer's time loop.

``backend="auto"`` picks, among the registered backends whose ``supports`` accepts the model,
variant, device and dtype, the one of highest ``priority`` (or of highest
``priority_for(model, variant, device, dtype)``, for a backend that defines it).  A named
backend that cannot run the request is an error naming the backends that can.
"""

from __future__ import annotations

from typing import Any

from snncore.api import get_backend, list_backends
from snncore.protocols import Backend, NeuronModel


class BackendUnavailableError(RuntimeError):
    """No backend (or not the one asked for) can run this model, variant, device and dtype."""


def _where(device: Any, dtype: Any) -> str:
    parts = [str(p) for p in (device, dtype) if p is not None]
    return f" on {' / '.join(parts)}" if parts else ""


def _rank(backend: Backend, model: NeuronModel, variant: str, device: Any, dtype: Any) -> int:
    """A backend's ``priority_for(model, variant, device, dtype)`` if it has one (a backend that
    runs everything but is the best choice for some requests only), else its ``priority``."""
    rank = getattr(backend, "priority_for", None)
    return backend.priority if rank is None else rank(model, variant, device, dtype)


def backends_supporting(
    model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
) -> list[Backend]:
    found = [b for b in list_backends() if b.supports(model, variant, device, dtype) is None]
    return sorted(found, key=lambda b: -_rank(b, model, variant, device, dtype))


def check_backend(name: str, model: NeuronModel, variant: str) -> None:
    """Fail early for a backend that does not exist or never runs this model."""
    if name == "auto":
        return
    backend = get_backend(name)
    reason = backend.supports(model, variant, None, None)
    if reason is not None:
        _refuse(backend, reason, model, variant, None, None)


def select_backend(name: str, model: NeuronModel, variant: str, device: Any, dtype: Any) -> Backend:
    if name == "auto":
        found = backends_supporting(model, variant, device, dtype)
        if not found:
            installed = ", ".join(b.name for b in list_backends()) or "none"
            raise BackendUnavailableError(
                f"no installed backend runs the {variant} of model {model.name!r}"
                f"{_where(device, dtype)} (installed backends: {installed}); install "
                f"snn-backend-torch, which runs every model"
            )
        return found[0]
    backend = get_backend(name)
    reason = backend.supports(model, variant, device, dtype)
    if reason is not None:
        _refuse(backend, reason, model, variant, device, dtype)
    return backend


def _refuse(
    backend: Backend, reason: str, model: NeuronModel, variant: str, device: Any, dtype: Any
) -> None:
    others = [b.name for b in backends_supporting(model, variant, device, dtype)]
    alternatives = (
        f"backends that do: {', '.join(others)}" if others else "no installed backend does"
    )
    raise BackendUnavailableError(
        f"backend {backend.name!r} cannot run the {variant} of model {model.name!r}"
        f"{_where(device, dtype)}: {reason}; {alternatives}"
    )
