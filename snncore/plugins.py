"""Plugin manager: discovers plugins, isolates their failures, builds the registries.

Discovery reads the ``snncore`` entry-point group with ``importlib.metadata`` and imports each
plugin module; the built-in plugins (``snncore.surrogates``, ``snncore.encoders``) are registered
first through the very same path.  Every import and every hook call is guarded: a plugin that
raises is recorded (name, distribution, error) and skipped, and everything else keeps working.
That includes ``SystemExit`` (a plugin parsing the command line with argparse at import exits
when it meets ``snn``'s arguments), which would otherwise end every command, ``--help``
included; only ``KeyboardInterrupt`` and the like pass through.  Failures are not silent: each
registry knows which plugins failed (an unknown name's error names them) and the listing
commands warn on stderr.

Switches (read when plugins are first loaded):

- ``SNNCORE_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points: only the built-ins and what code
  registers with :func:`register_plugin`.
- ``SNNCORE_DISABLE_PLUGINS=a,b`` skips the plugins (entry-point names) ``a`` and ``b``.
"""

from __future__ import annotations

import os
import traceback
from importlib import metadata
from typing import Any

import attrs
import pluggy

import snncore.hookspecs as hookspecs
from snncore._version import __version__
from snncore.protocols import as_backend
from snncore.registry import Entry, Provider, Registry

ENTRY_POINT_GROUP = "snncore"
BUILTIN_PLUGINS = ("snncore.surrogates", "snncore.encoders")
KINDS = {
    "model": "register_models",
    "backend": "register_backends",
    "encoder": "register_encoders",
    "surrogate": "register_surrogates",
    "task": "register_tasks",
    "nir": "register_nir",
}
#: What a plugin may raise without taking the tool down: any error, and ``SystemExit``.
PLUGIN_FAILURES: tuple[type[BaseException], ...] = (Exception, SystemExit)


@attrs.define
class PluginRecord:
    """What became of one plugin: ``status`` is ``loaded``, ``failed`` or ``disabled``."""

    name: str
    distribution: str
    version: str
    builtin: bool = False
    disabled: bool = False
    load_error: str | None = None
    hook_errors: dict[str, str] = attrs.field(factory=dict)
    traceback: str | None = attrs.field(default=None, repr=False)

    @property
    def provider(self) -> Provider:
        return Provider(self.name, self.distribution, self.version)

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        return "failed" if self.load_error or self.hook_errors else "loaded"

    @property
    def usable(self) -> bool:
        """Imported and registered: its hooks are called (a failed hook fails only itself)."""
        return not self.disabled and self.load_error is None

    @property
    def error(self) -> str | None:
        errors = [self.load_error] if self.load_error else []
        errors += [f"{hook}: {message}" for hook, message in self.hook_errors.items()]
        return "; ".join(errors) or None

    def fail(self, where: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SystemExit):
            message = (
                f"SystemExit({exc.code!r}): the plugin tried to end the process (argparse does "
                "on a command line it does not know)"
            )
        if where.startswith("register_"):
            self.hook_errors[where] = message
        else:
            self.load_error = f"{where}: {message}"
        self.traceback = "".join(traceback.format_exception(exc))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _disabled_names() -> set[str]:
    raw = os.environ.get("SNNCORE_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginManager:
    """Owns the pluggy manager, the plugin records and the registries built from them."""

    def __init__(self, autoload: bool | None = None):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._registries: dict[str, Registry[Any]] | None = None
        self._autoload = (
            (not _env_flag("SNNCORE_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload
        )
        self._load_builtins()
        if self._autoload:
            self._load_entry_points()

    # -- discovery -----------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        for module_name in BUILTIN_PLUGINS:
            record = PluginRecord(module_name, "snncore", __version__, builtin=True)
            module = __import__(module_name, fromlist=["_"])
            self._add(module, record)

    def _load_entry_points(self) -> None:
        disabled = _disabled_names()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                ep.name,
                dist.name if dist is not None else "?",
                dist.version if dist is not None else "?",
            )
            if ep.name in self.records:
                record.fail("load", ValueError(f"a plugin named {ep.name!r} is already loaded"))
                self.records[f"{ep.name} ({record.distribution})"] = record
                continue
            if ep.name in disabled or record.distribution in disabled:
                record.disabled = True
                self.records[ep.name] = record
                continue
            try:
                plugin = ep.load()
            except PLUGIN_FAILURES as exc:  # a broken plugin never takes the tool down
                record.fail("import", exc)
                self.records[ep.name] = record
                continue
            self._add(plugin, record)

    def _add(self, plugin: Any, record: PluginRecord) -> None:
        self.records[record.name] = record
        try:
            self.pm.register(plugin, name=record.name)
        except PLUGIN_FAILURES as exc:
            record.fail("register", exc)
        self._registries = None

    # -- run-time registration -----------------------------------------------------------------
    def register_plugin(
        self, plugin: Any, name: str | None = None, distribution: str | None = None
    ) -> PluginRecord:
        """Register a plugin object (a module, class or instance with hook implementations)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self.records:
            raise ValueError(f"a plugin named {name!r} is already registered")
        record = PluginRecord(name, distribution or name, "runtime")
        self._add(plugin, record)
        if record.load_error:
            del self.records[name]
            raise ValueError(f"could not register plugin {name!r}: {record.error}")
        return record

    def unregister_plugin(self, name: str) -> None:
        record = self.records.pop(name, None)
        if record is None:
            raise LookupError(f"no plugin named {name!r} is registered")
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self._registries = None

    # -- registries ----------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry[Any]:
        if self._registries is None:
            self._registries = self._build_registries()
        return self._registries[kind]

    def _build_registries(self) -> dict[str, Registry[Any]]:
        registries: dict[str, Registry[Any]] = {kind: Registry(kind) for kind in KINDS}
        for record in self.records.values():  # keep register_commands errors: not rebuilt here
            for hook_name in KINDS.values():
                record.hook_errors.pop(hook_name, None)
        for kind, hook_name in KINDS.items():
            for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
                record = self.records.get(impl.plugin_name)
                if record is None or not record.usable:
                    continue
                self._call_register_hook(impl, registries[kind], record, hook_name)
        for kind, registry in registries.items():
            registry.failed_plugins = tuple(r.name for r in self.failed(kind))
        return registries

    def failed(self, kind: str | None = None) -> list[PluginRecord]:
        """The failed plugins; with ``kind``, those that might have registered a name of that
        kind (failed at import or in that kind's hook).  Call after the registries are built
        (:meth:`build_all`) to include hook failures."""
        failed = [r for r in self.records.values() if r.status == "failed"]
        if kind is None:
            return failed
        return [r for r in failed if r.load_error or KINDS[kind] in r.hook_errors]

    def build_all(self) -> None:
        """Build every registry (running every hook), so that hook failures are recorded."""
        for kind in KINDS:
            self.registry(kind)

    def _call_register_hook(
        self, impl: Any, registry: Registry[Any], record: PluginRecord, hook_name: str
    ) -> None:
        staged: list[Entry[Any]] = []

        def register(obj: Any, name: str | None = None, aliases: tuple[str, ...] = ()) -> None:
            entry_name = name if name is not None else getattr(obj, "name", None)
            if not isinstance(entry_name, str):
                raise TypeError(f"register() needs a name for {obj!r} (no .name attribute)")
            if hook_name == "register_backends":
                obj = as_backend(obj)
            staged.append(Entry(entry_name, obj, record.provider, tuple(aliases)))

        try:
            impl.function(register=register)
            registry.add_all(staged)
        except PLUGIN_FAILURES as exc:
            record.fail(hook_name, exc)

    def call_commands_hook(self, cli: Any) -> None:
        for impl in self.pm.hook.register_commands.get_hookimpls():
            record = self.records.get(impl.plugin_name)
            if record is None or not record.usable:
                continue
            try:
                impl.function(cli=cli)
            except PLUGIN_FAILURES as exc:
                record.fail("register_commands", exc)


_manager: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide plugin manager, created (and plugins discovered) on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
    return _manager


def reset_manager(autoload: bool | None = None) -> PluginManager:
    """Discard the current manager and discover plugins afresh (tests, notebooks)."""
    global _manager
    _manager = PluginManager(autoload=autoload)
    return _manager
