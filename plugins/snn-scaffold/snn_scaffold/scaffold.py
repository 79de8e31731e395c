"""``snn new-plugin NAME``: write a new plugin distribution ready to install, test and edit.

``NAME`` is the model's registry name (``my_lif``); the distribution is ``snn-my-lif``, the module
``snn_my_lif`` (one file), and the directory ``snn-my-lif/`` under ``--dir``.

The files are the worked example, examples/snn-qif, carried as package data in ``template/``
(``scripts/sync_scaffold_template.py`` copies it there; a test fails when the copy and the example
differ), written with the example's names replaced (:func:`substitute`):

- ``examples/snn-qif`` and ``snn-qif`` -> the distribution ``snn-my-lif``;
- ``QIF_`` -> the constant prefix ``MY_LIF_`` (``QIF_MODEL`` -> ``MY_LIF_MODEL``);
- ``QIF`` starting a class name (``QIFParameters``) or quoted alone (``"QIF"``, `` `QIF` ``) and
  ``Qif`` -> the class prefix ``MyLif``; any other ``QIF`` (prose) -> ``MY_LIF``;
- ``qif`` -> ``my_lif`` (so ``snn_qif`` -> ``snn_my_lif``, ``qif_step`` -> ``my_lif_step``).

So a new plugin starts as a working QIF neuron under its own names, its tests passing; the author
then changes the equations.  Lines of the example that hold a name are laid out so that the new
files pass ``ruff check`` and ``ruff format --check`` (the new ``pyproject.toml`` configures ruff)
for names up to 30 characters (a test checks one of 30).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
MAX_LENGTH = 40

#: Parts of a path that are not part of the example (caches, build output).
IGNORED_PARTS = ("__pycache__", "build", "dist")


class ScaffoldError(ValueError):
    """A name or target directory ``snn new-plugin`` cannot use; the message says why."""


@attrs.frozen
class Names:
    """The names of a plugin derived from its model name."""

    name: str  # model and family name: my_lif
    dist: str  # distribution and entry point: snn-my-lif
    package: str  # import module: snn_my_lif
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


# -- the template: the worked example as package data ---------------------------------------------


#: Every file of the packaged template carries this suffix, so that the copy is data, not a
#: second Python source for linters, pytest or duplicate finders to pick up.
TEMPLATE_SUFFIX = ".tmpl"


def template_root() -> Traversable:
    """The packaged copy of examples/snn-qif (each file named with :data:`TEMPLATE_SUFFIX`)."""
    return files("snn_scaffold") / "template"


def is_ignored(relative: str) -> bool:
    """Caches and build output that a checkout of the example may hold but that are not part of
    it (``__pycache__``, ``.pytest_cache``, ``.ruff_cache``, ``build``, ``*.egg-info``, ...)."""
    parts = relative.split("/")
    return any(
        p.startswith(".") or p in IGNORED_PARTS or p.endswith(".egg-info") for p in parts
    ) or relative.endswith((".pyc", ".pyo"))


def template_files(root: Traversable | Path | None = None) -> dict[str, bytes]:
    """Relative path (``/``-separated) -> bytes of every file of the example under ``root``
    (default: the packaged template), caches and build output left out."""

    def walk(node: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            relative = prefix + child.name
            if is_ignored(relative):
                continue
            if child.is_dir():
                yield from walk(child, relative + "/")
            else:
                yield relative.removesuffix(TEMPLATE_SUFFIX), child.read_bytes()

    return dict(walk(template_root() if root is None else root, ""))


_TOKENS = re.compile(
    r"(?P<dist>(?:examples/)?snn-qif)"
    r"|(?P<const>QIF(?=_))"
    r"|(?P<cls>QIF(?=[A-Z])|(?<=[\"`])QIF(?=[\"`])|Qif)"
    r"|(?P<upper>QIF)"
    r"|(?P<name>qif)"
)


def substitute(text: str, names: Names) -> str:
    """``text`` of the example with its names replaced by ``names`` (in one pass)."""
    values = {
        "dist": names.dist,
        "const": names.CONST,
        "cls": names.Class,
        "upper": names.CONST,
        "name": names.name,
    }
    return _TOKENS.sub(lambda match: values[match.lastgroup or ""], text)


def render(names: Names) -> dict[str, str]:
    """Relative path -> file content of the new plugin."""
    return {
        substitute(path, names): substitute(data.decode("utf-8"), names)
        for path, data in template_files().items()
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
    for relative, text in render(names).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    return target
