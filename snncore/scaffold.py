"""``snn new-plugin NAME``: write a new plugin distribution ready to install, test and edit.

``NAME`` is the model's registry name (``my_lif``); the distribution is ``snn-my-lif``, the import
package ``snn_my_lif``, and the directory ``snn-my-lif/`` under ``--dir``.  The files come from
:mod:`snncore._scaffold_templates`: a working leaky integrate-and-fire model, its registration
hook, tests that run snncore's conformance suite and hand-worked values, and a README.
"""

from __future__ import annotations

import keyword
import re
import string
from pathlib import Path

import attrs

from snncore import _scaffold_templates as templates

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
MAX_LENGTH = 40


class ScaffoldError(ValueError):
    """A name or target directory ``snn new-plugin`` cannot use; the message says why."""


@attrs.frozen
class Names:
    """The names of a plugin derived from its model name."""

    name: str  # model and family name: my_lif
    dist: str  # distribution and entry point: snn-my-lif
    package: str  # import package: snn_my_lif
    Class: str  # class prefix: MyLif
    CONST: str  # constant prefix: MY_LIF

    @classmethod
    def from_name(cls, name: str) -> Names:
        check_name(name)
        return cls(
            name=name,
            dist="snn-" + name.replace("_", "-"),
            package="snn_" + name,
            Class="".join(part.capitalize() for part in name.split("_")),
            CONST=name.upper(),
        )


def check_name(name: str) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` can be a model and package name."""
    if name.startswith(("snn-", "snn_")):
        raise ScaffoldError(
            f"give the model name without the prefix: `snn new-plugin {name[4:]}` creates "
            f"snn-{name[4:].replace('_', '-')}/"
        )
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_LENGTH:
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use lower-case letters, digits and single underscores, "
            f"starting with a letter, at most {MAX_LENGTH} characters (e.g. 'my_lif')"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"invalid plugin name {name!r}: it is a Python keyword")


def check_not_registered(names: Names) -> None:
    """Raise :class:`ScaffoldError` if the model name or the plugin name is already taken by an
    installed plugin (the new one would conflict with it)."""
    from snncore.plugins import get_manager

    manager = get_manager()
    for entry in manager.registry("model").entries():
        if entry.name == names.name:
            raise ScaffoldError(
                f"a model named {names.name!r} is already registered by "
                f"{entry.provider.describe()}; choose another name"
            )
    for record in manager.records.values():
        if names.dist in (record.name, record.distribution):
            raise ScaffoldError(f"a plugin named {names.dist!r} is already installed")


def render(names: Names) -> dict[str, str]:
    """Relative path -> file content of the new plugin."""
    values = attrs.asdict(names)
    return {
        string.Template(path).substitute(values): string.Template(text).substitute(values)
        for path, text in templates.FILES.items()
    }


def new_plugin(name: str, directory: str | Path = ".", check_installed: bool = True) -> Path:
    """Write ``snn-NAME/`` under ``directory``; returns its path.

    Raises :class:`ScaffoldError` for a bad name, a name an installed plugin already uses (with
    ``check_installed``), or a target that exists.
    """
    names = Names.from_name(name)
    if check_installed:
        check_not_registered(names)
    parent = Path(directory)
    if parent.exists() and not parent.is_dir():
        raise ScaffoldError(f"--dir {str(parent)!r} is not a directory")
    target = parent / names.dist
    if target.exists():
        raise ScaffoldError(f"{target} already exists; remove it or choose another --dir")
    files = render(names)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
