"""The plugin contract: every hook a plugin may implement, in one place.

A plugin is a module (or any object) with functions decorated by ``snncore.hookimpl`` whose names
are the hooks below.  Plugins are found through the ``snncore`` entry-point group::

    [project.entry-points.snncore]
    snn-mymodel = "snn_mymodel.plugin"

and the core's own encoders and surrogate gradients are registered through these same hooks.

Each ``register_*`` hook is called once per plugin when the registries are built (on the first
lookup, and again after a plugin is registered at run time).  It receives a ``register`` callback
and returns nothing.  ``register(obj, name=None, aliases=())`` adds ``obj`` under ``name``
(default: ``obj.name``) and any ``aliases``.  The registry, not the plugin, judges names: a name
that two plugins register is a conflict reported with both distributions, resolvable with the
qualified form ``PLUGIN:NAME``.  A hook that raises is recorded against its plugin (see
``snn plugins``) and what it registered before raising is discarded.

A hook implementation may accept fewer arguments than the specification (pluggy's rule), so
``def register_models(register)`` is the whole signature a plugin writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("snncore")
hookimpl = pluggy.HookimplMarker("snncore")

Register = Callable[..., None]


@hookspec
def register_models(register: Register) -> None:
    """Register neuron models: ``register(snncore.NeuronModel(...))``.

    A model states its parameters class, state classes, step function(s) and initial states; the
    core builds the ``cell``, ``recurrent_cell``, ``layer`` and ``recurrent`` modules from them.
    """


@hookspec
def register_backends(register: Register) -> None:
    """Register execution backends: ``register(backend)`` where ``backend`` follows
    ``snncore.protocols.Backend`` (a ``name``, a ``priority`` for ``backend="auto"``, a
    ``supports(model, device, dtype)`` check and the time-loop runners)."""


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoders: ``register(EncoderModuleClass, name="poisson")``.

    The object registered is the ``torch.nn.Module`` class itself; its docstring's first line is
    the summary shown by ``snn list-encoders``.
    """


@hookspec
def register_surrogates(register: Register) -> None:
    """Register surrogate gradients: ``register(snncore.Surrogate(name, derivative),
    aliases=(...))``.

    ``derivative(x, alpha)`` returns dΘ/dx used in the backward pass; a model whose parameters say
    ``method="NAME"`` then spikes through it.
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Register training tasks: ``register(task)`` where ``task`` follows
    ``snncore.protocols.Task`` (a ``name``, a ``summary`` and a ``run(**options)``)."""


@hookspec
def register_nir(register: Register) -> None:
    """Register NIR mappings: ``register(snncore.nir.NIRMapping(name, model=..., to_node=...,
    nodes=(...), from_node=..., conventions=("nir", ...)))``.

    A mapping says how one snncore model is written as a NIR neuron node (``snncore.to_nir``) and
    which NIR node types it reads back as a step module (``snncore.from_nir``); docs/nir.md has
    the conventions.  ``to_nir(convention=...)`` other than "nir" calls ``to_node(p, shape, dt,
    convention=...)`` for mappings that list that convention in ``conventions``.  Built when NIR
    export or import first needs it, like the other registries.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add sub-commands to the ``snn`` command line.

    ``cli`` is the root ``click.Group``; add commands with ``cli.add_command(command)`` or the
    ``@cli.command()`` decorator.  Called only when the command line starts; a plugin that raises
    here loses its commands, never the command line.
    """
