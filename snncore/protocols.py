"""What a plugin hands the core: neuron models, backends and tasks.

A neuron model is data (:class:`NeuronModel`): its parameters class, state classes, pure step
functions and (optionally) initial states.  From that the core builds every module variant
(:mod:`snncore.modules`) and a backend runs the time loop.  Surrogate gradients are
:class:`snncore.Surrogate` objects (see :mod:`snncore.surrogates`).  This module sits low in the
core's layers (docs/architecture.md): it imports nothing of snncore but :mod:`snncore.states`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs

from snncore.states import default_initial_state, state_fields

VARIANTS = ("cell", "recurrent_cell", "layer", "recurrent")

#: ``step(input_current, state, p, dt, **module_tensors) -> (output, new_state)``
StepFunction = Callable[..., tuple[Any, Any]]
#: ``initial_state(p, shape, device, dtype) -> state`` for a batch of neurons of that shape.
#: Optional: without one the core starts every field at zero or at ``initial_values``.
InitialState = Callable[..., Any]
#: ``init(hidden_size, input_size, p, dtype) -> tensor`` for a tensor a recurrent module owns.
TensorInit = Callable[..., Any]


def state_z(state: Any) -> Any:
    """The default way to read a recurrent state's last spikes: its ``z`` field."""
    return state.z


@attrs.frozen(kw_only=True)
class Preset:
    """Named parameters (and optionally initial state values) of a model, e.g. an Izhikevich
    behaviour.  ``initial_state`` maps state field names to the value every neuron starts at."""

    name: str
    parameters: Any
    initial_state: Mapping[str, float] = attrs.field(factory=dict)
    summary: str = ""


@attrs.frozen(kw_only=True)
class NeuronModel:
    """A neuron model as the core sees it; a plugin registers one of these per model.

    ``feed_forward_step(x, state, p, dt)`` receives the input current ``x`` (already weighted by
    another module); ``recurrent_step(x, state, p, dt, **module_tensors)`` receives
    ``W_in·x + W_rec·z_prev``, computed by the core from the previous state's spikes
    (``last_spikes(state)``, by default its ``z`` field).  Either may be ``None``; the model then
    offers only the variants it can run.  A model whose recurrent input is not a plain weighted
    sum sets ``synaptic_input``: the step then receives
    ``synaptic_input(x, W_in) + synaptic_input(z_prev, W_rec)``.

    Initial states: every state field starts at zero, or at the parameter (or number) named for
    it in ``initial_values`` (``{"v": "v_leak"}``); a model whose start is not that simple gives
    ``initial_feed_forward_state`` / ``initial_state`` functions instead.  ``class_names`` names
    the generated module classes (``{"cell": "LIFCell", "layer": "LIF"}``); they pickle by
    (model, variant) wherever they are exported.
    """

    name: str
    family: str
    summary: str
    parameters: type
    feed_forward_step: StepFunction | None = None
    feed_forward_state: type | None = None
    initial_feed_forward_state: InitialState | None = None
    recurrent_step: StepFunction | None = None
    state: type | None = None
    initial_state: InitialState | None = None
    #: Start values of state fields for the default initial state: a parameter name (dotted for
    #: nested records) or a number; fields not named start at zero.
    initial_values: Mapping[str, str | float] = attrs.field(factory=dict)
    #: Class names of the generated modules by variant (default e.g. ``LifRecurrentCell``).
    class_names: Mapping[str, str] = attrs.field(factory=dict)
    #: Optional: all T feed-forward steps in one call, ``(x, state, p, dt) -> (outs, state)``,
    #: equal to looping ``feed_forward_step``; it may return ``None`` to decline (the backend
    #: then loops).  Lets a model replace the per-operation autograd tape with its own backward.
    feed_forward_sequence: Callable[..., Any] | None = None
    #: Optional: the whole-sequence functions used by ``adjoint=True`` layers, by variant:
    #: ``"layer": f(x, state, p, dt) -> (outs, state)`` and
    #: ``"recurrent": f(x, state, p, dt, input_weights, recurrent_weights, **module_tensors)``.
    adjoint: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict)
    #: Named parameter sets, selected with ``preset="NAME"`` (alias ``behavior=``) on any module.
    presets: Mapping[str, Preset] = attrs.field(factory=dict)
    #: Reads the last spikes from a recurrent state (for ``W_rec·z_prev``); default ``state.z``.
    last_spikes: Callable[[Any], Any] = state_z
    #: Optional: ``synaptic_input(spikes, weights) -> input`` replaces the weighted sum
    #: ``W·spikes`` (``None``) for both the input and the recurrent term of recurrent modules,
    #: e.g. to split excitatory ``relu(W)·s`` and inhibitory ``relu(−W)·s`` into two channels.
    #: It must act on the last dimension only (a backend may apply it to all steps at once).
    synaptic_input: Callable[[Any, Any], Any] | None = None
    #: Optional, with a linear ``synaptic_input``: ``synaptic_weights(W)``, the matrix ``M``
    #: with ``synaptic_input(s, W) == linear(s, M)`` (channels·hidden × n), so that a backend
    #: can keep the spike-sparse sum of the columns of ``M`` without computing ``M`` from
    #: ``synaptic_input`` on an identity matrix.
    synaptic_weights: Callable[[Any], Any] | None = None
    #: Extra tensors the recurrent modules own besides the two weight matrices, by name.
    module_tensors: Mapping[str, TensorInit] = attrs.field(factory=dict)
    #: What the step returns: ``"spikes"`` or, for non-spiking readouts, ``"voltage"``.
    output: str = "spikes"
    equations: str = ""
    units: Mapping[str, str] = attrs.field(factory=dict)
    reference: str = ""

    def __attrs_post_init__(self) -> None:
        if self.feed_forward_step is not None and self.feed_forward_state is None:
            raise TypeError(f"model {self.name!r}: feed_forward_step needs feed_forward_state")
        if self.recurrent_step is not None:
            if self.state is None:
                raise TypeError(f"model {self.name!r}: recurrent_step needs its state class")
            if self.last_spikes is state_z and "z" not in getattr(self.state, "_fields", ()):
                raise TypeError(
                    f"model {self.name!r}: a recurrent state needs a 'z' field or the model "
                    f"a last_spikes accessor"
                )
        for variant in self.adjoint:
            if variant not in ("layer", "recurrent"):
                raise TypeError(
                    f"model {self.name!r}: adjoint functions exist for 'layer' and "
                    f"'recurrent' only, not {variant!r}"
                )
        if not attrs.has(self.parameters):
            raise TypeError(f"model {self.name!r}: parameters must be an attrs class")
        self._check_initial_values()
        unknown = sorted(set(self.class_names) - set(self.variants))
        if unknown:
            raise TypeError(
                f"model {self.name!r}: class_names for {unknown}, which are not among its "
                f"variants {list(self.variants)}"
            )

    def _check_initial_values(self) -> None:
        defaulted = [
            cls
            for cls, init in (
                (self.feed_forward_state, self.initial_feed_forward_state),
                (self.state, self.initial_state),
            )
            if cls is not None and init is None
        ]
        for cls in defaulted:
            if not state_fields(cls):
                raise TypeError(
                    f"model {self.name!r}: {cls.__name__} is not a NamedTuple, so the core cannot "
                    f"build its initial state; give an initial-state function"
                )
        fields = set().union(*(state_fields(cls) for cls in defaulted)) if defaulted else set()
        parameters = {f.name for f in attrs.fields(self.parameters)}
        for field, start in self.initial_values.items():
            if field not in fields:
                raise TypeError(
                    f"model {self.name!r}: initial_values names {field!r}, which is not a field "
                    f"of a state built by default ({sorted(fields)})"
                )
            if isinstance(start, str) and start.split(".")[0] not in parameters:
                raise TypeError(
                    f"model {self.name!r}: initial_values[{field!r}] = {start!r} is not a "
                    f"parameter of {self.parameters.__name__} ({sorted(parameters)})"
                )
            if not isinstance(start, (str, int, float)) or isinstance(start, bool):
                raise TypeError(
                    f"model {self.name!r}: initial_values[{field!r}] must be a parameter name "
                    f"or a number, got {start!r}"
                )

    @property
    def variants(self) -> tuple[str, ...]:
        found = []
        if self.feed_forward_step is not None:
            found += ["cell", "layer"]
        if self.recurrent_step is not None:
            found += ["recurrent_cell", "recurrent"]
        return tuple(v for v in VARIANTS if v in found)

    def state_fields(self, variant: str) -> tuple[str, ...]:
        cls = self.state if variant in ("recurrent_cell", "recurrent") else self.feed_forward_state
        return tuple(getattr(cls, "_fields", ()))

    def make_initial_state(
        self, variant: str, p: Any, shape: Any, device: Any = None, dtype: Any = None
    ) -> Any:
        """The initial state of ``variant`` for neurons of ``shape``: the model's own function,
        else the default built from the state's fields and ``initial_values``."""
        recurrent = variant in ("recurrent_cell", "recurrent")
        init = self.initial_state if recurrent else self.initial_feed_forward_state
        if init is not None:
            return init(p, shape, device=device, dtype=dtype)
        cls = self.state if recurrent else self.feed_forward_state
        return default_initial_state(cls, self.initial_values, p, shape, device, dtype)


@attrs.frozen
class Route:
    """How a backend would run one request, and why: shown by ``snn info MODEL``.

    ``name`` is the path (``"sequence"``, ``"step-loop"``, ``"kernel"``, ``"generic"``, ...),
    ``priority`` ranks the backend for ``backend="auto"`` on this request, ``reason`` says in
    a few words why this path (e.g. which calls it declines and where those go).
    """

    name: str
    priority: int
    reason: str = ""


@runtime_checkable
class Backend(Protocol):
    """Runs a model's step function over the time axis.

    ``supports`` returns ``None`` when the backend can run ``variant`` of ``model`` on that device
    and dtype (``None`` for either means "any"), else a short reason.  ``route`` says how it runs
    a supported request and at which priority: ``backend="auto"`` picks the supporting backend
    whose route has the highest priority.  ``priority`` is the backend's usual rank (shown by
    ``snn list-backends``).
    """

    name: str
    priority: int
    summary: str

    def supports(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None: ...

    def route(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> Route:
        """The path this backend takes for a request it supports, its priority, and why."""
        ...

    def run_layer(
        self, model: NeuronModel, x: Any, state: Any, p: Any, dt: float, record_states: bool
    ) -> tuple[Any, Any]:
        """Feed-forward: ``x`` is ``(T, B, *features)``; returns ``(outputs, final_state)``."""
        ...

    def run_recurrent(
        self,
        model: NeuronModel,
        x: Any,
        state: Any,
        p: Any,
        dt: float,
        input_weights: Any,
        recurrent_weights: Any,
        module_tensors: Mapping[str, Any],
        record_states: bool,
    ) -> tuple[Any, Any]:
        """Recurrent: ``x`` is ``(T, B, input_size)``; returns ``(outputs, final_state)``."""
        ...


class _BackendWithoutRoute:
    """A backend written before ``route`` existed: its route is its time loop at ``priority``."""

    def __init__(self, backend: Any):
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def route(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> Route:
        return Route("loop", self._backend.priority, f"the {self._backend.name} backend's loop")


def as_backend(obj: Any) -> Backend:
    """``obj`` checked as a backend when it is registered: it needs ``name``, ``priority`` and
    ``supports``; one without ``route`` (written against an older core) gets the default."""
    missing = [m for m in ("name", "priority", "supports") if not hasattr(obj, m)]
    if missing:
        raise TypeError(
            f"{obj!r} is not a backend: it lacks {', '.join(missing)} (see snncore.Backend)"
        )
    return obj if callable(getattr(obj, "route", None)) else _BackendWithoutRoute(obj)


@runtime_checkable
class Task(Protocol):
    """A training task: ``run(**options)`` trains and returns its final metrics."""

    name: str
    summary: str

    def run(self, **options: Any) -> Mapping[str, float]: ...


class ParameterInfo(NamedTuple):
    name: str
    default: Any
    unit: str
