"""The reference library's module tree, made from the name map (:mod:`._names`).

Every module path of the map becomes a module object in ``sys.modules`` under
``snncore.compat.norse`` (``snncore.compat.norse.torch.module.lif``), so ``import`` and
``from ... import`` work as with the reference.  Names are resolved on first access (module
``__getattr__``): importing the tree imports no plugin.  A target is ``"package"`` (the same name
there) or ``"package:attribute"``.

Why plugin packages are imported directly, not through the registry: the map names the
reference's functions and its parameter and state classes under their exact names, which the
plugin packages export (SPEC §4) and the model registry does not hold.  A plugin that is not
installed leaves its names unresolved, with an error naming the distribution.

snncore's neuron module classes are handed out as thin subclasses that differ only where the
reference does: the initial state requires grad (``initial_state_grad=True``), and building one
with ``method="super"`` before the SuperSpike choice is made warns once (:mod:`._superspike`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from snncore.compat.norse import _names
from snncore.compat.norse._superspike import note_parameters
from snncore.modules import NeuronModule

PREFIX = "snncore.compat.norse"
_RESOLVED: dict[str, Any] = {}


def _distribution(package: str) -> str:
    return package.split(".")[0].replace("_", "-")


def _compat_class(cls: type, home: str) -> type:
    """A subclass of snncore's module class with the reference's defaults."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial_state_grad", True)
        cls.__init__(self, *args, **kwargs)
        note_parameters(self.p)

    namespace = {
        "__init__": __init__,
        "__module__": home,
        "__qualname__": cls.__name__,
        "__doc__": f"{cls.__doc__}\n\n(snncore.compat.norse: the initial state requires grad.)",
    }
    return type(cls)(cls.__name__, (cls,), namespace)


def resolve(target: str, home: str) -> Any:
    """The object a map target names (made once: every path gives the same object)."""
    if target in _RESOLVED:
        return _RESOLVED[target]
    package, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise AttributeError(
            f"{attribute or target} needs the plugin distribution {_distribution(package)}, "
            f"which is not installed ({exc})"
        ) from None
    found = getattr(module, attribute)
    if isinstance(found, type) and issubclass(found, NeuronModule) and found is not NeuronModule:
        found = _compat_class(found, home)
    _RESOLVED[target] = found
    return found


def _make_module(path: str, names: dict[str, str], package: bool) -> types.ModuleType:
    full = f"{PREFIX}.{path}"
    module = types.ModuleType(full, f"The reference library's ``norse.{path}``, mapped to snncore.")
    module.__all__ = sorted(names)  # type: ignore[attr-defined]
    if package:
        module.__path__ = []  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(
                f"snncore.compat.norse has no {name!r} in norse.{path} (docs/porting-from-norse.md "
                "lists what is not mapped)"
            )
        target = names[name]
        value = resolve(target if ":" in target else f"{target}:{name}", full)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(module)))

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    module.__dir__ = __dir__  # type: ignore[method-assign]
    return module


def install(root: types.ModuleType) -> None:
    """Put the tree into ``sys.modules`` below ``root`` (the ``snncore.compat.norse`` package)."""
    paths = sorted(_names.MODULES, key=lambda p: p.count("."))
    packages = {p.rpartition(".")[0] for p in paths if "." in p}
    for path in paths:
        full = f"{PREFIX}.{path}"
        if full in sys.modules:
            continue
        module = _make_module(path, _names.MODULES[path], path in packages)
        sys.modules[full] = module
        parent_path, _, leaf = path.rpartition(".")
        parent = sys.modules[f"{PREFIX}.{parent_path}"] if parent_path else root
        setattr(parent, leaf, module)
