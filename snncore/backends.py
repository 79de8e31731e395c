"""Choosing the backend that runs a layer's time loop, and explaining the choice.

Every backend states, through :class:`snncore.Backend`, whether it runs a request (``supports``:
``None`` or the reason it declines) and how (``route``: the path, its priority and why).
``backend="auto"`` picks, among the backends that support the model, variant, device and dtype,
the one whose route has the highest priority.  A named backend that cannot run the request is
an error naming the reason and the backends that can.  :func:`explain` lists every backend's
answer for one request (``snn info MODEL`` prints it).
"""

from __future__ import annotations

from typing import Any

import attrs

from snncore.plugins import get_manager
from snncore.protocols import Backend, NeuronModel, Route


def list_backends() -> list[Backend]:
    return [entry.obj for entry in get_manager().registry("backend").entries()]


def get_backend(name: str) -> Backend:
    return get_manager().registry("backend").get(name)


class BackendUnavailableError(RuntimeError):
    """No backend (or not the one asked for) can run this model, variant, device and dtype."""


@attrs.frozen
class Choice:
    """One backend's answer to one request: its route, or why it declines."""

    backend: str
    route: Route | None
    declined: str | None
    chosen: bool = False


def _where(device: Any, dtype: Any) -> str:
    parts = [str(p) for p in (device, dtype) if p is not None]
    return f" on {' / '.join(parts)}" if parts else ""


def _ranked(
    model: NeuronModel, variant: str, device: Any, dtype: Any
) -> list[tuple[Backend, Route]]:
    found = [
        (b, b.route(model, variant, device, dtype))
        for b in list_backends()
        if b.supports(model, variant, device, dtype) is None
    ]
    return sorted(found, key=lambda pair: -pair[1].priority)


def backends_supporting(
    model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
) -> list[Backend]:
    """The backends that run this request, best first (the first is what ``auto`` picks)."""
    return [backend for backend, _ in _ranked(model, variant, device, dtype)]


def explain(
    model: NeuronModel, variant: str, device: Any = None, dtype: Any = None, name: str = "auto"
) -> list[Choice]:
    """Every installed backend's answer to one request, the one ``name`` selects marked."""
    chosen = None
    ranked = _ranked(model, variant, device, dtype)
    if name == "auto" and ranked:
        chosen = ranked[0][0].name
    elif name != "auto":
        chosen = name
    choices = []
    for backend in list_backends():
        reason = backend.supports(model, variant, device, dtype)
        route = None if reason is not None else backend.route(model, variant, device, dtype)
        choices.append(
            Choice(backend.name, route, reason, backend.name == chosen and reason is None)
        )
    return sorted(choices, key=lambda c: (c.route is None, -(c.route.priority if c.route else 0)))


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
