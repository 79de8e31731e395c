"""Named registries: one per kind (models, backends, encoders, surrogates, tasks).

The registry judges names, not the plugins: a name registered by two plugins is kept under both
qualified names ``PLUGIN:NAME`` and the bare name becomes a conflict that names both providers;
a miss lists the close matches.  Nothing is ever silently overwritten.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import attrs

T = TypeVar("T")


class UnknownNameError(LookupError, ValueError):
    """A name that no loaded plugin registered.  The message lists close matches and, when
    plugins failed, names them: the name may be one of theirs (``snn plugins`` shows why).

    A ``LookupError`` (a name missing from a registry) and a ``ValueError`` (an argument with a
    value not allowed: what the reference library raises for an unknown ``method``), so code
    catching either keeps working."""

    def __init__(
        self, kind: str, name: str, known: list[str], failed_plugins: tuple[str, ...] = ()
    ):
        self.kind, self.name, self.known = kind, name, sorted(known)
        self.failed_plugins = tuple(failed_plugins)
        self.suggestions = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f" Did you mean {_either(self.suggestions)}?" if self.suggestions else ""
        list_command = "snn list-" + ("models" if kind == "model" else f"{kind}s")
        message = f"unknown {kind} {name!r}.{hint} Run `{list_command}` to see all {kind}s."
        if self.failed_plugins:
            count = len(self.failed_plugins)
            message += (
                f" {count} plugin{'s' if count > 1 else ''} failed to load and may provide it: "
                f"{', '.join(self.failed_plugins)} (`snn plugins` shows the error)."
            )
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0])


class NameConflictError(LookupError):
    """A bare name that two or more plugins registered; use the qualified ``PLUGIN:NAME``."""

    def __init__(self, kind: str, name: str, providers: list[Provider]):
        self.kind, self.name, self.providers = kind, name, providers
        who = " and ".join(p.describe() for p in providers)
        qualified = _either([f"{p.plugin}:{name}" for p in providers])
        message = (
            f"{kind} {name!r} is registered by more than one distribution: {who}. "
            f"Use the qualified name {qualified}, or disable one plugin with "
            f"SNNCORE_DISABLE_PLUGINS."
        )
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


def _either(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@attrs.frozen
class Provider:
    """Who registered an entry: the plugin's name and its distribution."""

    plugin: str
    distribution: str
    version: str

    def describe(self) -> str:
        version = "registered at run time" if self.version == "runtime" else self.version
        return f"{self.distribution} {version} (plugin {self.plugin!r})"


@attrs.frozen
class Entry(Generic[T]):
    name: str
    obj: T
    provider: Provider
    aliases: tuple[str, ...] = ()


class Registry(Generic[T]):
    """Entries of one kind, keyed by name; aliases resolve to their entry."""

    def __init__(self, kind: str):
        self.kind = kind
        #: Plugins that failed before registering (set by the plugin manager): a miss names them.
        self.failed_plugins: tuple[str, ...] = ()
        self._by_name: dict[str, list[Entry[T]]] = {}
        self._fast: dict[str, T] = {}  # unambiguous names and aliases -> object

    def add_all(self, entries: list[Entry[T]]) -> None:
        """Add one plugin's entries: all of them, or (on an invalid name) none."""
        keys = [(key, e) for e in entries for key in (e.name, *e.aliases)]
        seen: set[str] = set()
        for key, e in keys:
            if not key or ":" in key:
                raise ValueError(f"invalid {self.kind} name {key!r}: must be non-empty, no ':'")
            mine = any(o.provider.plugin == e.provider.plugin for o in self._by_name.get(key, []))
            if key in seen or mine:
                raise ValueError(
                    f"plugin {e.provider.plugin!r} registers {self.kind} {key!r} twice"
                )
            seen.add(key)
        for key, e in keys:
            same = self._by_name.setdefault(key, [])
            same.append(e)
            if len(same) == 1:
                self._fast[key] = e.obj
            else:
                self._fast.pop(key, None)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` (``PLUGIN:NAME`` picks one provider of a conflicting name)."""
        plugin, sep, bare = name.rpartition(":")
        candidates = self._by_name.get(bare if sep else name, [])
        if sep:
            candidates = [e for e in candidates if e.provider.plugin == plugin]
        if not candidates:
            known = list(self._by_name) + [f"{e.provider.plugin}:{e.name}" for e in self.entries()]
            raise UnknownNameError(
                self.kind, name, known if sep else list(self._by_name), self.failed_plugins
            )
        if len(candidates) > 1:
            raise NameConflictError(self.kind, name, [e.provider for e in candidates])
        return candidates[0]

    def get(self, name: str) -> T:
        try:
            return self._fast[name]
        except KeyError:
            return self.entry(name).obj

    def entries(self) -> list[Entry[T]]:
        """Every entry once (aliases folded), sorted by name then plugin."""
        seen: dict[int, Entry[T]] = {}
        for same in self._by_name.values():
            for e in same:
                seen.setdefault(id(e), e)
        return sorted(seen.values(), key=lambda e: (e.name, e.provider.plugin))

    def conflicts(self) -> dict[str, list[Provider]]:
        return {n: [e.provider for e in es] for n, es in self._by_name.items() if len(es) > 1}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._by_name)})"


def describe(obj: Any) -> str:
    """One-line summary of a registered object: its ``summary`` or its docstring's first line."""
    summary = getattr(obj, "summary", None)
    if isinstance(summary, str) and summary:
        return summary
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
