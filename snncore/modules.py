"""The four module variants, built for any :class:`~snncore.protocols.NeuronModel`.

===============  ===========================  =============================================
variant          input                        returns
===============  ===========================  =============================================
cell             ``(B, *features)``           ``(out, state)`` after one step
recurrent_cell   ``(B, input_size)``          ``(out, state)``; owns ``input_weights`` and
                                              ``recurrent_weights``
layer            ``(T, B, *features)``        ``(outs (T, B, *features), final_state)``
recurrent        ``(T, B, input_size)``       ``(outs (T, B, hidden_size), final_state)``
===============  ===========================  =============================================

``state=None`` starts from the model's initial state.  Parameter tensors live in the module as
non-persistent buffers (so ``.to(device)`` and ``.double()`` move them and checkpoints stay the
reference's), or as ``torch.nn.Parameter`` when named in ``learnable`` — a list of field names, or
``{field: "per_layer" | "per_neuron" | shape}`` with ``features=`` giving the neuron shape
(docs/learnable-parameters.md).  Layers hand the time loop
to a backend (``backend="auto"`` picks the fastest that supports the model, device and dtype).
"""

from __future__ import annotations

import copyreg
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import torch

from snncore.backends import check_backend, select_backend
from snncore.loop import no_steps
from snncore.parameters import method_items, replace_tensors, tensor_items, validate_fields
from snncore.plugins import get_manager
from snncore.protocols import Backend, NeuronModel
from snncore.registry import UnknownNameError
from snncore.surrogates import Surrogate, resolve_surrogate

_BUFFER_PREFIX = "p_"


def _buffer_name(field: str) -> str:
    return _BUFFER_PREFIX + field.replace(".", "__")


def _module_dtype(module: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the module's tensors (after ``.double()``: float64), else the
    default float dtype."""
    for tensor in (*module.parameters(recurse=False), *module.buffers(recurse=False)):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _check_input(x: Any, min_dim: int, what: str, module: torch.nn.Module) -> torch.Tensor:
    """``x`` checked, and cast to the module's float dtype when it is bool or integer.

    Spike tensors are often bool (``x > 0``) or integer counts; they are cast rather than
    refused (as the reference does), so ``layer(spikes.bool())`` works.  Complex input is
    refused.  Any number of leading dimensions is accepted: none (unbatched) or several.
    """
    name = type(module).__name__
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a tensor as input, got {type(x).__name__}")
    if not x.is_floating_point():
        if x.is_complex():
            raise TypeError(f"{name} expects a real input, got dtype {x.dtype}")
        x = x.to(_module_dtype(module))
    if x.dim() < min_dim:
        raise ValueError(f"{name} expects input of shape {what}, got {tuple(x.shape)}")
    return x


def _preset_name(preset: str | None, behavior: str | None) -> str | None:
    if preset is not None and behavior is not None and preset != behavior:
        raise TypeError(f"preset={preset!r} and behavior={behavior!r} disagree; give one")
    return preset if preset is not None else behavior


def _learnable_spec(learnable: Any) -> dict[str, Any]:
    """``learnable`` as ``{field: granularity}``; a plain list of names keeps p's shapes (None)."""
    if isinstance(learnable, str):
        return {learnable: None}
    if isinstance(learnable, Mapping):
        return dict(learnable)
    return dict.fromkeys(learnable)


def _learnable_value(field: str, value: torch.Tensor, kind: Any, features: Any) -> torch.Tensor:
    """The initial value of a learnable field: as in p (None), one per layer or one per neuron.

    ``"per_layer"``: one scalar (p's value must be a scalar).  ``"per_neuron"``: p's value
    broadcast to the neuron shape ``features`` (or kept, if p already holds one value per neuron);
    an int or tuple instead of a name is that shape.
    """
    if kind is None:
        return value
    if kind == "per_layer":
        if value.numel() != 1:
            raise ValueError(
                f"learnable {field!r} is 'per_layer' but p holds {tuple(value.shape)} values; "
                "use 'per_neuron' or a scalar"
            )
        return value.reshape(())
    if kind == "per_neuron":
        shape = features if features is not None else (tuple(value.shape) if value.dim() else None)
        if shape is None:
            raise ValueError(
                f"learnable {field!r} is 'per_neuron': give features= (the neuron shape, e.g. "
                "features=128) or a per-neuron tensor in p"
            )
    elif isinstance(kind, (int, tuple, list)) and not isinstance(kind, bool):
        shape = kind
    else:
        raise ValueError(
            f"learnable {field!r}: expected 'per_layer', 'per_neuron' or a shape, got {kind!r}"
        )
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(
            f"learnable {field!r}: the neuron shape must be positive ints, got {shape}"
        )
    try:
        return value.expand(shape).clone()
    except RuntimeError:
        raise ValueError(
            f"learnable {field!r}: p's value of shape {tuple(value.shape)} does not broadcast to "
            f"the neuron shape {shape}"
        ) from None


def _parameters_now(module: NeuronModule) -> Any:
    fields: dict[str, Any] = {f: getattr(module, _buffer_name(f)) for f in module._tensor_fields}
    fields.update(module.surrogates())
    # Buffers were validated with p when the module was built; a learnt value may have left
    # its range since (a rate trained below 0), so only the learnable fields are checked again.
    p = replace_tensors(module.p, fields, validate=False)
    validate_fields(p, getattr(module, "_learnable_fields", ()))
    return p


_DISABLED: dict[Callable[..., Any], Callable[..., Any]] = {}


def _outside_the_graph(function: Callable[..., Any]) -> Callable[..., Any]:
    # torch.compile cannot trace the attrs-generated __init__ of a frozen parameter record
    # (dynamo fails on its object.__setattr__), so under compilation the record is rebuilt
    # outside the graph.  Made on first use: torch.compiler.disable imports torch._dynamo,
    # which would add ~0.9 s to every `import snncore` (and so to every `snn` command).
    if function not in _DISABLED:
        _DISABLED[function] = torch.compiler.disable(function)
    return _DISABLED[function]


def _wrong_parameters(model: NeuronModel, p: Any) -> str:
    """The message for a ``p`` of another class; the reference library's record (a NamedTuple of
    the same name) gets the conversion that fixes it."""
    expected = model.parameters.__name__
    got = f"{type(p).__module__}.{type(p).__qualname__}"
    if type(p).__name__ == expected and hasattr(p, "_asdict"):
        return (
            f"p must be snncore's {expected} for model {model.name!r}, got the reference "
            f"library's {got}; convert it with {expected}(**p._asdict()) or import the classes "
            "from snncore.compat.norse (docs/porting-from-norse.md)"
        )
    return f"p must be {expected} for model {model.name!r}, got {got}"


class NeuronModule(torch.nn.Module):
    """Shared by all variants: the model, its parameters as module tensors, and ``dt``.

    ``initial_state_grad=True`` makes the initial state built for ``state=None`` a set of leaves
    that require grad (under grad mode), so a gradient reaches it even when nothing else needs
    one (the reference library always does this).  It is off by default: otherwise a module whose
    input and parameters need no gradient would record the whole sequence for autograd.
    """

    model: NeuronModel
    variant: str

    def __init__(
        self,
        p: Any = None,
        dt: float = 0.001,
        *,
        model: NeuronModel | None = None,
        learnable: Iterable[str] | Mapping[str, Any] = (),
        features: int | Iterable[int] | None = None,
        preset: str | None = None,
        behavior: str | None = None,
        adjoint: bool = False,
        initial_state_grad: bool = False,
        **parameter_fields: Any,
    ):
        super().__init__()
        self.initial_state_grad = bool(initial_state_grad)
        if model is not None:
            self.model = model
        model = self.model
        if self.variant not in model.variants:
            raise ValueError(
                f"model {model.name!r} has no {self.variant!r} variant; it offers {list(model.variants)}"
            )
        self._preset_state: dict[str, float] = {}
        preset = _preset_name(preset, behavior)
        if preset is not None:
            if p is not None:
                raise TypeError("give either p or a preset, not both")
            if preset not in model.presets:
                raise UnknownNameError(f"{model.name} preset", preset, list(model.presets))
            p = model.presets[preset].parameters
            self._preset_state = dict(model.presets[preset].initial_state)
        self.preset = preset
        if adjoint and self.variant not in model.adjoint:
            offered = list(model.adjoint) or "no variant"
            raise ValueError(
                f"model {model.name!r} has no adjoint {self.variant!r}: adjoint gradients are "
                f"whole-sequence functions, offered for {offered}"
            )
        self.adjoint = bool(adjoint)
        if p is None:
            p = model.parameters()
        elif not isinstance(p, model.parameters):
            raise TypeError(_wrong_parameters(model, p))
        if parameter_fields:
            known = {f.name for f in attrs.fields(model.parameters)}
            unknown = sorted(set(parameter_fields) - known)
            if unknown:
                raise TypeError(
                    f"unknown argument(s) {unknown} for model {model.name!r}; its parameters are "
                    f"{sorted(known)}"
                )
            p = attrs.evolve(p, **parameter_fields)
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        self.p = p
        # Resolved once here (an unknown name fails now, not mid-sequence); every forward hands
        # the step functions the Surrogate itself in p.method, so no step looks a name up.
        self._surrogates: dict[str, Surrogate] | None = None
        self.surrogates()
        self.dt = float(dt)
        tensors = dict(tensor_items(p))
        learnable = _learnable_spec(learnable)
        missing = sorted(set(learnable) - set(tensors))
        if missing:
            raise ValueError(
                f"learnable {missing} are not tensor parameters of {model.name!r}: {sorted(tensors)}"
            )
        self._tensor_fields = tuple(tensors)
        # A tensor of p that requires grad (a torch.nn.Parameter the user trains, or a tensor
        # computed from one) stays attached: the module uses that very tensor, so the gradient
        # reaches it.  Every other tensor is copied into a buffer that .to() and .double() move.
        attached = {
            f: v for f, v in tensors.items() if v.requires_grad and learnable.get(f) is None
        }
        self._learnable_fields = tuple(f for f in tensors if f in learnable or f in attached)
        for field, value in tensors.items():
            if field in attached:
                if isinstance(value, torch.nn.Parameter):
                    self.register_parameter(_buffer_name(field), value)
                else:  # computed from a parameter: kept as it is (not moved by .to())
                    setattr(self, _buffer_name(field), value)
                continue
            value = value.detach().clone()
            if field in learnable:
                value = _learnable_value(field, value, learnable[field], features)
                self.register_parameter(_buffer_name(field), torch.nn.Parameter(value))
            else:
                self.register_buffer(_buffer_name(field), value, persistent=False)

    def surrogates(self) -> dict[str, Surrogate]:
        """``{dotted field: Surrogate}`` for the surrogate fields of ``p`` (``method``)."""
        if self._surrogates is None:
            self._surrogates = {
                field: resolve_surrogate(value) for field, value in method_items(self.p)
            }
        return self._surrogates

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_surrogates"] = None  # resolved again where the module is unpickled
        state.pop("_state_shapes", None)
        state.pop("_resolved", None)
        return state

    def check_state(self, state: Any, p: Any, shape: tuple[int, ...], x: torch.Tensor) -> None:
        """Refuse a given state whose fields do not fit neurons of ``shape`` (the input's batch
        and features), naming the field, its shape and the one expected.

        Without it, a state from a batch of 5 fed with a batch of 2 fails deep in the step
        ("The size of tensor a (5) must match ...") or, on a kernel, with another message; a
        state of batch 5 with an input of batch 1 would even broadcast silently.  A field may
        have any shape that broadcasts to the expected one without growing it (``(1, n)``).
        The expected shapes are those of the initial state, found once per input shape; a field
        whose initial shape does not start with the batch size is the model's own business
        (it may change shape as the model runs) and is not checked.
        """
        if torch.compiler.is_compiling():
            return
        cache = self.__dict__.setdefault("_state_shapes", {})
        expected = cache.get(shape)
        if expected is None:
            with torch.no_grad():
                initial = self.make_initial_state(p, shape, x.device, x.dtype)
            expected = cache[shape] = dict(_tensor_shapes(initial))
        for field, got in _tensor_shapes(state):
            want = expected.get(field)
            if want is None or got == want or _broadcasts_to(got, want):
                continue
            if not want or want[0] != shape[0]:
                continue  # a field not laid out per batch entry (a model's own bookkeeping)
            raise ValueError(
                f"{type(self).__name__}: state field {field!r} has shape {got}, but an input of "
                f"shape {tuple(x.shape)} needs {want} (a state from another batch size? pass "
                "state=None to start afresh)"
            )

    def make_initial_state(self, p: Any, shape: Any, device: Any, dtype: Any) -> Any:
        """The model's initial state for neurons of ``shape``, with any preset's start values."""
        state = self.model.make_initial_state(self.variant, p, shape, device=device, dtype=dtype)
        if self._preset_state:
            state = state._replace(
                **{k: torch.full_like(getattr(state, k), v) for k, v in self._preset_state.items()}
            )
        return state

    def start_state(self, p: Any, shape: Any, x: torch.Tensor) -> Any:
        """The state a forward with ``state=None`` starts from: the initial state, its tensors
        made leaves that require grad when ``initial_state_grad`` is on and grad mode is."""
        state = self.make_initial_state(p, shape, x.device, x.dtype)
        if self.initial_state_grad and torch.is_grad_enabled():
            state = _grad_leaves(state)
        return state

    def parameters_now(self) -> Any:
        """The parameter record with the module's (moved, possibly learnt) tensors."""
        if torch.compiler.is_compiling():
            return _outside_the_graph(_parameters_now)(self)
        return _parameters_now(self)

    def extra_repr(self) -> str:
        return f"model={self.model.name!r}, p={self.p}, dt={self.dt}"


class NeuronCell(NeuronModule):
    """One feed-forward step: ``(x (B, *features), state) -> (out, state)``."""

    variant = "cell"

    def initial_state(self, x: torch.Tensor) -> Any:
        return self.make_initial_state(self.parameters_now(), x.shape, x.device, x.dtype)

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        input_tensor = _check_input(input_tensor, 0, "(*batch, *features)", self)
        p = self.parameters_now()
        if state is None:
            state = self.start_state(p, input_tensor.shape, input_tensor)
        else:
            self.check_state(state, p, tuple(input_tensor.shape), input_tensor)
        return self.model.feed_forward_step(input_tensor, state, p, self.dt)


class _BackendMixin:
    """Resolves the backend once per (device, dtype) the layer sees."""

    model: NeuronModel
    variant: str

    def _init_backend(self, backend: str | Backend, record_states: bool) -> None:
        self.backend = backend if isinstance(backend, str) else backend.name
        self._backend_object = None if isinstance(backend, str) else backend
        if self._backend_object is None:
            check_backend(self.backend, self.model, self.variant)
        if record_states and getattr(self, "adjoint", False):
            raise ValueError(
                "record_states is not available with adjoint=True (no states are kept)"
            )
        self.record_states = record_states
        self._resolved: dict[tuple[torch.device, torch.dtype], Backend] = {}

    def _backend_for(self, x: torch.Tensor) -> Backend:
        key = (x.device, x.dtype)
        found = self._resolved.get(key)
        if found is None:
            found = self._backend_object or select_backend(
                self.backend, self.model, self.variant, x.device, x.dtype
            )
            self._resolved[key] = found
        return found

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[misc]
        self._resolved = {}


class NeuronLayer(_BackendMixin, NeuronModule):
    """The feed-forward step over time: ``(x (T, B, *features), state) -> (outs, final_state)``."""

    variant = "layer"

    def __init__(
        self,
        p: Any = None,
        dt: float = 0.001,
        *,
        backend: str | Backend = "auto",
        record_states: bool = False,
        **kwargs: Any,
    ):
        super().__init__(p, dt, **kwargs)
        self._init_backend(backend, record_states)

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        input_tensor = _check_input(input_tensor, 1, "(time, *batch, *features)", self)
        p = self.parameters_now()
        if state is None:
            state = self.start_state(p, input_tensor.shape[1:], input_tensor)
        else:
            self.check_state(state, p, tuple(input_tensor.shape[1:]), input_tensor)
        if input_tensor.shape[0] == 0:  # T = 0: no step runs; one step (on 0) gives the shapes
            out, stepped = self.model.feed_forward_step(input_tensor.sum(0), state, p, self.dt)
            return no_steps(out, stepped, state, self.record_states)
        if self.adjoint:
            return self.model.adjoint["layer"](input_tensor, state, p, self.dt)
        backend = self._backend_for(input_tensor)
        return backend.run_layer(self.model, input_tensor, state, p, self.dt, self.record_states)


def _tensor_shapes(state: Any, prefix: str = "") -> list[tuple[str, tuple[int, ...]]]:
    """``(dotted field, shape)`` of every tensor in a state record (nested records too)."""
    if isinstance(state, torch.Tensor):
        return [(prefix or "state", tuple(state.shape))]
    if not (isinstance(state, tuple) and hasattr(state, "_fields")):
        return []
    found = []
    for name, value in zip(state._fields, state, strict=True):
        found += _tensor_shapes(
            value, f"{prefix}{name}" if isinstance(value, torch.Tensor) else f"{prefix}{name}."
        )
    return found


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """``shape`` broadcasts to ``target`` without changing it (e.g. ``(1, n)`` to ``(b, n)``)."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(reversed(shape), reversed(target), strict=False))


def _map_tensors(state: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``state`` with ``function`` applied to every tensor field (nested records too)."""
    if isinstance(state, torch.Tensor):
        return function(state)
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_map_tensors(value, function) for value in state))
    return state


def _grad_leaves(state: Any) -> Any:
    """Each floating tensor of ``state`` as its own leaf that requires grad."""
    return _map_tensors(
        state, lambda t: t.detach().clone().requires_grad_() if t.is_floating_point() else t
    )


def _map_named_tensors(
    state: Any, function: Callable[[str, torch.Tensor], torch.Tensor], prefix: str = ""
) -> Any:
    """``state`` with ``function(dotted name, tensor)`` applied to every tensor field (names as
    :func:`_tensor_shapes` gives them)."""
    if isinstance(state, torch.Tensor):
        return function(prefix or "state", state)
    if not (isinstance(state, tuple) and hasattr(state, "_fields")):
        return state
    return type(state)(
        *(
            _map_named_tensors(
                value,
                function,
                f"{prefix}{name}" if isinstance(value, torch.Tensor) else f"{prefix}{name}.",
            )
            for name, value in zip(state._fields, state, strict=True)
        )
    )


def _zero_diagonal_gradient(grad: torch.Tensor) -> torch.Tensor:
    return grad.clone().fill_diagonal_(0.0)


class _WeightsMixin:
    """``input_weights`` (hidden × input), ``recurrent_weights`` (hidden × hidden), and any extra
    tensors the model asks for; without autapses the recurrent diagonal and its gradient are 0."""

    model: NeuronModel
    register_parameter: Any

    def _init_weights(
        self,
        input_size: int,
        hidden_size: int,
        p: Any,
        autapses: bool,
        input_weights: torch.Tensor | None,
        recurrent_weights: torch.Tensor | None,
    ) -> None:
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        self.input_size, self.hidden_size, self.autapses = input_size, hidden_size, autapses
        scale = math.sqrt(2.0 / hidden_size)
        w_in = (
            torch.randn(hidden_size, input_size) * scale if input_weights is None else input_weights
        )
        w_rec = (
            torch.randn(hidden_size, hidden_size) * scale
            if recurrent_weights is None
            else recurrent_weights
        )
        for name, w, shape in (
            ("input_weights", w_in, (hidden_size, input_size)),
            ("recurrent_weights", w_rec, (hidden_size, hidden_size)),
        ):
            if tuple(w.shape) != shape:
                raise ValueError(
                    f"{name} must have shape {shape} (hidden × input), got {tuple(w.shape)}"
                )
            self.register_parameter(name, torch.nn.Parameter(w.detach().clone()))
        if not autapses:
            with torch.no_grad():
                self.recurrent_weights.fill_diagonal_(0.0)
            self._hook_autapses()
        self._module_tensor_names = tuple(self.model.module_tensors)
        for name, init in self.model.module_tensors.items():
            self.register_parameter(name, torch.nn.Parameter(init(hidden_size, input_size, p)))

    def _hook_autapses(self) -> None:
        self.recurrent_weights.register_hook(_zero_diagonal_gradient)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[misc]
        if not self.autapses:
            self._hook_autapses()

    def module_tensors(self) -> Mapping[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self._module_tensor_names}

    def _check_recurrent_input(self, x: torch.Tensor, dims: int, what: str) -> torch.Tensor:
        x = _check_input(x, dims, what, self)  # type: ignore[arg-type]
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {what} with input_size="
                f"{self.input_size}, got {tuple(x.shape)}"
            )
        if x.device != self.input_weights.device:
            raise ValueError(
                f"{type(self).__name__}: input is on {x.device} but the weights are on "
                f"{self.input_weights.device}; move one with .to(device)"
            )
        return x

    def recurrent_step(self, x: torch.Tensor, state: Any, p: Any) -> tuple[Any, Any]:
        """One recurrent step of input ``x`` (batch, input_size): the model's step receives
        ``W_in·x + W_rec·z_prev``."""
        weigh = self.model.synaptic_input or torch.nn.functional.linear
        current = weigh(x, self.input_weights) + weigh(
            self.model.last_spikes(state), self.recurrent_weights
        )
        return self.model.recurrent_step(current, state, p, self.dt, **self.module_tensors())

    def _neurons(self, x: torch.Tensor, leading: int) -> tuple[int, ...]:
        """The neurons' shape for input ``x``: its dimensions between the first ``leading``
        (time) and the last (input_size), then ``hidden_size``."""
        return (*x.shape[leading:-1], self.hidden_size)

    def _initial_recurrent_state(self, p: Any, x: torch.Tensor, leading: int = 0) -> Any:
        return self.start_state(p, self._neurons(x, leading), x)  # type: ignore[attr-defined]


class NeuronRecurrentCell(_WeightsMixin, NeuronModule):
    """One recurrent step: the model's step receives ``W_in·x + W_rec·z_prev``."""

    variant = "recurrent_cell"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: Any = None,
        autapses: bool = False,
        dt: float = 0.001,
        *,
        input_weights: torch.Tensor | None = None,
        recurrent_weights: torch.Tensor | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("features", hidden_size)  # per-neuron learnables: one per hidden unit
        super().__init__(p, dt, **kwargs)
        self._init_weights(
            input_size, hidden_size, self.p, autapses, input_weights, recurrent_weights
        )

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        input_tensor = self._check_recurrent_input(input_tensor, 1, "(*batch, input_size)")
        p = self.parameters_now()
        if state is None:
            state = self._initial_recurrent_state(p, input_tensor)
        else:
            self.check_state(state, p, self._neurons(input_tensor, 0), input_tensor)
        return self.recurrent_step(input_tensor, state, p)


class NeuronRecurrent(_BackendMixin, _WeightsMixin, NeuronModule):
    """The recurrent step over time: ``(x (T, B, input_size), state) -> (outs, final_state)``."""

    variant = "recurrent"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: Any = None,
        autapses: bool = False,
        dt: float = 0.001,
        *,
        input_weights: torch.Tensor | None = None,
        recurrent_weights: torch.Tensor | None = None,
        backend: str | Backend = "auto",
        record_states: bool = False,
        **kwargs: Any,
    ):
        kwargs.setdefault("features", hidden_size)  # per-neuron learnables: one per hidden unit
        super().__init__(p, dt, **kwargs)
        self._init_weights(
            input_size, hidden_size, self.p, autapses, input_weights, recurrent_weights
        )
        self._init_backend(backend, record_states)

    def forward(self, input_tensor: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        input_tensor = self._check_recurrent_input(input_tensor, 2, "(time, *batch, input_size)")
        p = self.parameters_now()
        neurons = self._neurons(input_tensor, 1)
        if state is None:
            state = self._initial_recurrent_state(p, input_tensor, 1)
        else:
            self.check_state(state, p, neurons, input_tensor)
        if input_tensor.dim() != 3:  # unbatched or several batch dimensions: one batch axis
            return self._run_one_batch_axis(input_tensor, state, p, neurons)
        if input_tensor.shape[0] == 0:  # T = 0: no step runs; one step (on 0) gives the shapes
            out, stepped = self.recurrent_step(input_tensor.sum(0), state, p)
            return no_steps(out, stepped, state, self.record_states)
        if self.adjoint:
            return self.model.adjoint["recurrent"](
                input_tensor,
                state,
                p,
                self.dt,
                self.input_weights,
                self.recurrent_weights,
                **self.module_tensors(),
            )
        backend = self._backend_for(input_tensor)
        return backend.run_recurrent(
            self.model,
            input_tensor,
            state,
            p,
            self.dt,
            self.input_weights,
            self.recurrent_weights,
            self.module_tensors(),
            self.record_states,
        )

    def _run_one_batch_axis(
        self, x: torch.Tensor, state: Any, p: Any, neurons: tuple[int, ...]
    ) -> tuple[torch.Tensor, Any]:
        """Input with no batch axis or several, run with its batch axes as one (what backends
        take), and the outputs and state laid out as the input's again."""
        lead = neurons[:-1]
        with torch.no_grad():
            initial = self.make_initial_state(p, neurons, x.device, x.dtype)
        expected = dict(_tensor_shapes(initial))
        batch = math.prod(lead)

        def inward(name: str, t: torch.Tensor) -> torch.Tensor:
            want = expected.get(name)
            if want is None or tuple(want[: len(lead)]) != lead:
                return t
            return t.expand(want).reshape(batch, *want[len(lead) :])

        def outward(name: str, t: torch.Tensor) -> torch.Tensor:
            time = 1 if self.record_states else 0  # recorded states: (T, batch, ...)
            want = expected.get(name)
            if want is None or tuple(want[: len(lead)]) != lead:
                return t
            return t.reshape(*t.shape[:time], *lead, *t.shape[time + 1 :])

        outs, final = self.forward(  # not self(...): hooks see the call once, as made
            x.reshape(x.shape[0], batch, x.shape[-1]), _map_named_tensors(state, inward)
        )
        return outs.reshape(outs.shape[0], *neurons), _map_named_tensors(final, outward)


BASES: dict[str, type[NeuronModule]] = {
    "cell": NeuronCell,
    "recurrent_cell": NeuronRecurrentCell,
    "layer": NeuronLayer,
    "recurrent": NeuronRecurrent,
}


def build_module(model: NeuronModel, variant: str, *args: Any, **kwargs: Any) -> NeuronModule:
    """An instance of ``variant`` for ``model`` (the plugin's named class when it exported one)."""
    if variant not in BASES:
        raise ValueError(f"unknown variant {variant!r}; variants are {list(BASES)}")
    if variant not in model.variants:
        raise ValueError(
            f"model {model.name!r} has no {variant!r} variant; it offers {list(model.variants)}"
        )
    return module_class(model, variant)(*args, **kwargs)


class ModuleClass(type):
    """The type of every generated module class: such a class pickles as (model, variant).

    A generated class is made at run time, so pickle could not find it by module and name unless
    a plugin exported it under exactly that name.  Instead it is pickled as "the ``variant`` class
    of the registered model ``NAME``" and rebuilt from the registry where it is loaded.
    """


_CLASSES: dict[tuple[int, str], tuple[NeuronModel, type]] = {}


def module_class(
    model: NeuronModel, variant: str, class_name: str | None = None, module: str | None = None
) -> type:
    """The module class of ``variant`` for ``model``, made once and reused.

    Its name is ``class_name``, else the model's ``class_names[variant]``, else one derived
    from the model's name (``lif``, ``recurrent_cell`` -> ``LifRecurrentCell``).  Instances pickle
    without the class being importable (see :class:`ModuleClass`); ``module`` only sets where the
    class says it lives (older plugins exported ``LIFCell = module_class(LIF, "cell",
    "LIFCell", __name__)``, which keeps working).
    """
    key = (id(model), variant)
    if key in _CLASSES:
        return _CLASSES[key][1]
    if variant not in BASES:
        raise ValueError(f"unknown variant {variant!r}; variants are {list(BASES)}")
    base = BASES[variant]
    name = (
        class_name
        or model.class_names.get(variant)
        or "".join(part.title() for part in f"{model.name}_{variant}".split("_"))
    )
    home = module or getattr(model.feed_forward_step or model.recurrent_step, "__module__", None)
    doc = f"{model.summary} — {variant} variant.\n\n{base.__doc__}\n\n{model.equations}".rstrip()
    cls = ModuleClass(
        name, (base,), {"model": model, "__doc__": doc, "__module__": home or base.__module__}
    )
    cls.__qualname__ = name
    _CLASSES[key] = (model, cls)
    return cls


def module_classes(model: NeuronModel) -> tuple[type, ...]:
    """The module classes of every variant ``model`` offers, in the order of
    :data:`snncore.VARIANTS`: ``LIFCell, LIFRecurrentCell, LIF, LIFRecurrent =
    module_classes(LIF_MODEL)`` (names from ``class_names``)."""
    return tuple(module_class(model, variant) for variant in model.variants)


def _registered_name(model: NeuronModel) -> str | None:
    """The name under which ``model`` itself is registered (bare, else qualified), if it is."""
    registry = get_manager().registry("model")
    for entry in registry.entries():
        if entry.obj is model:
            bare = entry.name
            try:
                if registry.get(bare) is model:
                    return bare
            except LookupError:
                pass
            return f"{entry.provider.plugin}:{bare}"
    return None


def _class_of_registered(model_name: str, variant: str) -> type:
    """Unpickling: the ``variant`` class of the registered model ``model_name``."""
    return module_class(get_manager().registry("model").get(model_name), variant)


def _reduce_module_class(cls: ModuleClass) -> Any:
    model, variant = cls.__dict__.get("model"), getattr(cls, "variant", None)
    if model is not None and _CLASSES.get((id(model), variant), (None, None))[1] is cls:
        name = _registered_name(model)
        if name is not None:
            return _class_of_registered, (name, variant)
    return cls.__qualname__  # not a registered model's class: pickled by module and name


copyreg.pickle(ModuleClass, _reduce_module_class)
