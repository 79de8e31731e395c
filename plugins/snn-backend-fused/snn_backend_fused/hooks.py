"""The fused backend's own hook: a model plugin may contribute a hand-tuned kernel.

Every model gets a kernel generated from its step function; a plugin that has measured a faster
one for its model registers it here, by object (the :class:`snncore.NeuronModel` it registered
itself), not by name::

    import snn_backend_fused.hooks as fused

    @snncore.hookimpl
    def register_fused_kernels(register):
        register(fused.HandTunedKernel(MY_MODEL, "layer", "cpu", my_run, "AVX-512 LIF"))

``run(x, state, p, dt)`` returns ``(outputs, final_state)``, or a string saying why it declines
this call (the generated kernel, else the eager loop, then runs it).  The specification is
added to snncore's plugin manager (pluggy's ``add_hookspecs``) the first time the backend looks
for kernels; a plugin whose hook raises is recorded as failed (``snn plugins``) and its kernels
are left out, never the backend.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from snncore.plugins import get_manager
from snncore.protocols import NeuronModel

hookspec = pluggy.HookspecMarker("snncore")


@hookspec
def register_fused_kernels(register: Callable[..., None]) -> None:
    """Register hand-tuned kernels: ``register(HandTunedKernel(model, variant, device, run,
    summary))``.  ``model`` is the NeuronModel object; ``variant`` ``"layer"``; ``device``
    ``"cpu"`` or ``"cuda"``."""


@attrs.frozen
class HandTunedKernel:
    """A kernel a model plugin measured faster than the generated one."""

    model: NeuronModel
    variant: str
    device: str
    run: Callable[..., Any]
    summary: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.model, NeuronModel):
            raise TypeError(f"HandTunedKernel.model must be a NeuronModel, got {self.model!r}")
        if self.variant != "layer":
            raise ValueError(f"hand-tuned kernels run layers, not {self.variant!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")


_lock = threading.Lock()
_found: tuple[Any, dict[tuple[int, str, str], HandTunedKernel]] | None = None


def hand_tuned(model: NeuronModel, variant: str, device: str) -> HandTunedKernel | None:
    """The hand-tuned kernel registered for this model object, variant and device, if any."""
    return _kernels().get((id(model), variant, device))


def _kernels() -> dict[tuple[int, str, str], HandTunedKernel]:
    global _found
    manager = get_manager()
    key = (id(manager.pm), tuple(manager.records))
    with _lock:
        if _found is not None and _found[0] == key:
            return _found[1]
        pm = manager.pm
        _add_specification(manager)
        kernels: dict[tuple[int, str, str], HandTunedKernel] = {}
        for impl in pm.hook.register_fused_kernels.get_hookimpls():
            record = manager.records.get(impl.plugin_name)
            if record is not None and not record.usable:
                continue
            staged: list[HandTunedKernel] = []
            register = _collector(staged)
            try:
                impl.function(register=register)
            except Exception as exc:  # a broken plugin loses its kernels, nothing else
                if record is not None:
                    record.fail("register_fused_kernels", exc)
                continue
            for kernel in staged:
                kernels[(id(kernel.model), kernel.variant, kernel.device)] = kernel
        _found = (key, kernels)
        return kernels


def _collector(staged: list[HandTunedKernel]) -> Callable[[HandTunedKernel], None]:
    def register(kernel: HandTunedKernel) -> None:
        if not isinstance(kernel, HandTunedKernel):
            raise TypeError(f"register() takes a HandTunedKernel, got {kernel!r}")
        staged.append(kernel)

    return register


def _add_specification(manager: Any) -> None:
    """Add the hook's specification; a plugin whose implementation does not match it (pluggy
    checks the signature) is recorded as failed and unregistered."""
    pm = manager.pm
    hook = getattr(pm.hook, "register_fused_kernels", None)
    for _ in range(len(manager.records) + 1):
        if hook is not None and hook.spec is not None:
            return
        try:
            pm.add_hookspecs(sys.modules[__name__])
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin)
            if name in manager.records:
                manager.records[name].fail("register_fused_kernels", exc)
            pm.unregister(exc.plugin)
            continue
        return
