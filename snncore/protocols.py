"""What a plugin hands the core: neuron models, backends and tasks.

A neuron model is data (:class:`NeuronModel`): its parameters class, state classes, pure step
functions and initial states.  From that the core builds every module variant
(:mod:`snncore.modules`) and a backend runs the time loop.  Surrogate gradients are
:class:`snncore.Surrogate` objects (see :mod:`snncore.surrogates`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    import torch

VARIANTS = ("cell", "recurrent_cell", "layer", "recurrent")

#: ``step(input_current, state, p, dt, **module_tensors) -> (output, new_state)``
StepFunction = Callable[..., tuple[Any, Any]]
#: ``initial_state(p, shape, device, dtype) -> state`` for a batch of neurons of that shape.
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
    #: Extra tensors the recurrent modules own besides the two weight matrices, by name.
    module_tensors: Mapping[str, TensorInit] = attrs.field(factory=dict)
    #: What the step returns: ``"spikes"`` or, for non-spiking readouts, ``"voltage"``.
    output: str = "spikes"
    equations: str = ""
    units: Mapping[str, str] = attrs.field(factory=dict)
    reference: str = ""

    def __attrs_post_init__(self) -> None:
        if self.feed_forward_step is not None and (
            self.feed_forward_state is None or self.initial_feed_forward_state is None
        ):
            raise TypeError(
                f"model {self.name!r}: feed_forward_step needs its state and initial state"
            )
        if self.recurrent_step is not None:
            if self.state is None or self.initial_state is None:
                raise TypeError(
                    f"model {self.name!r}: recurrent_step needs its state and initial state"
                )
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

    def module(self, variant: str, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Build one variant's module (see :func:`snncore.create`)."""
        from snncore.modules import build_module

        return build_module(self, variant, *args, **kwargs)


@runtime_checkable
class Backend(Protocol):
    """Runs a model's step function over the time axis.

    ``supports`` returns ``None`` when the backend can run ``variant`` of ``model`` on that device
    and dtype (``None`` for either means "any"), else a short reason.  ``backend="auto"`` picks
    the supporting backend of highest ``priority``.  Optional: ``priority_for(model, variant,
    device, dtype) -> int`` ranks a request in place of ``priority`` (a backend that runs every
    model but should be chosen automatically for some only), and ``implementation(model,
    variant) -> str | None`` names how it runs one (e.g. ``"kernel"``), shown by
    ``snn list-models``.
    """

    name: str
    priority: int
    summary: str

    def supports(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None: ...

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
