"""snncore: spiking neural networks on PyTorch, a small core plus plugins.

import snncore
snncore.list_models()
layer = snncore.create("lif", variant="layer")          # a torch.nn.Module
spikes, state = layer(torch.rand(100, 8, 32))           # (time, batch, features)
"""

from __future__ import annotations

from snncore._version import __version__
from snncore.api import (
    create,
    get_backend,
    get_encoder,
    get_model,
    get_surrogate,
    get_task,
    list_backends,
    list_encoders,
    list_models,
    list_plugins,
    list_surrogates,
    list_tasks,
    register_plugin,
    unregister_plugin,
)
from snncore.backends import BackendUnavailableError
from snncore.containers import LConv2d, Lift, RegularizationCell, SequentialState
from snncore.hookspecs import hookimpl
from snncore.modules import module_class, module_classes
from snncore.nir import from_nir, to_nir
from snncore.parameters import method_field, tensor_field
from snncore.protocols import VARIANTS, Backend, NeuronModel, Preset, Route, Task
from snncore.registry import NameConflictError, UnknownNameError
from snncore.surrogates import Surrogate, spike

__all__ = [
    "VARIANTS",
    "Backend",
    "BackendUnavailableError",
    "LConv2d",
    "Lift",
    "NameConflictError",
    "NeuronModel",
    "Preset",
    "RegularizationCell",
    "Route",
    "SequentialState",
    "Surrogate",
    "Task",
    "UnknownNameError",
    "__version__",
    "create",
    "from_nir",
    "get_backend",
    "get_encoder",
    "get_model",
    "get_surrogate",
    "get_task",
    "hookimpl",
    "list_backends",
    "list_encoders",
    "list_models",
    "list_plugins",
    "list_surrogates",
    "list_tasks",
    "method_field",
    "module_class",
    "module_classes",
    "register_plugin",
    "spike",
    "tensor_field",
    "to_nir",
    "unregister_plugin",
]
