"""The public lookup functions: names in, registered objects out.

Library lookups are strict: an unknown name raises :class:`UnknownNameError` (a ``LookupError``
listing close matches) and a name two plugins register raises :class:`NameConflictError` naming
both distributions.  ``PLUGIN:NAME`` selects one provider.
"""

from __future__ import annotations

from typing import Any

import torch

from snncore import backends
from snncore.modules import build_module
from snncore.plugins import KINDS, PluginRecord, get_manager
from snncore.protocols import NeuronModel, Task
from snncore.registry import Registry
from snncore.surrogates import Surrogate, resolve_surrogate


def registry(kind: str) -> Registry[Any]:
    """The registry of one kind: ``model``, ``backend``, ``encoder``, ``surrogate`` or ``task``."""
    return get_manager().registry(kind)


def list_models() -> list[NeuronModel]:
    return [e.obj for e in registry("model").entries()]


def get_model(name: str) -> NeuronModel:
    return registry("model").get(name)


list_backends = backends.list_backends
get_backend = backends.get_backend


def list_encoders() -> list[type]:
    return [e.obj for e in registry("encoder").entries()]


def get_encoder(name: str) -> type:
    return registry("encoder").get(name)


def list_surrogates() -> list[Surrogate]:
    return [e.obj for e in registry("surrogate").entries()]


def get_surrogate(name: str | Surrogate) -> Surrogate:
    """The surrogate registered as ``name``; a :class:`Surrogate` (what modules put in
    ``p.method``) is returned as it is."""
    return resolve_surrogate(name)


def list_tasks() -> list[Task]:
    return [e.obj for e in registry("task").entries()]


def get_task(name: str) -> Task:
    return registry("task").get(name)


def list_plugins() -> list[PluginRecord]:
    """Every discovered plugin with its status (``loaded``, ``failed``, ``disabled``) and error."""
    manager = get_manager()
    for kind in KINDS:
        manager.registry(kind)  # run the hooks, so that hook failures are recorded too
    return list(manager.records.values())


def register_plugin(plugin: Any, name: str | None = None) -> PluginRecord:
    """Register a plugin object at run time (a module or object with ``@snncore.hookimpl``s)."""
    return get_manager().register_plugin(plugin, name=name)


def unregister_plugin(name: str) -> None:
    get_manager().unregister_plugin(name)


def create(
    name: str | NeuronModel, variant: str = "layer", backend: str = "auto", **kwargs: Any
) -> torch.nn.Module:
    """Build a model's module by name (or from the :class:`NeuronModel` itself).

    ``variant`` is ``cell``, ``recurrent_cell``, ``layer`` or ``recurrent``; ``kwargs`` are the
    module's constructor arguments (``p``, ``dt``, ``input_size``, ``hidden_size``, ``autapses``,
    ``learnable``, ...) and any parameter field, e.g. ``create("lif", v_th=0.5)``.
    """
    model = name if isinstance(name, NeuronModel) else get_model(name)
    if variant in ("layer", "recurrent"):
        kwargs["backend"] = backend
    elif backend != "auto":
        raise ValueError(
            f"variant {variant!r} runs one step and takes no backend (got {backend!r})"
        )
    return build_module(model, variant, **kwargs)
