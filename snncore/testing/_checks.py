"""The generic checks every neuron model must pass, one function per check.

Each ``check_*(subject, variant, options)`` builds the variant's modules through the core (as a
user gets them from ``snncore.create``), runs them and raises :class:`CheckFailure` saying what
is wrong.  Comparisons run in float64 unless the check is about dtypes, so that the spikes of two
computations that should agree do not flip on rounding.
"""

from __future__ import annotations

import copy
import io
import pickle
from typing import Any

import torch

from snncore.parameters import replace_tensors
from snncore.testing._harness import (
    BATCH,
    FEATURES,
    HIDDEN_SIZE,
    LOOPS,
    RECURRENT,
    STEPS,
    CheckFailure,
    Subject,
    assert_close,
    assert_states_close,
    check_finite,
    leaves,
    loop_cell,
    run,
    scaled_parameters,
    tensor_fields,
    tensor_leaves,
)


def _run_variant(subject: Subject, module: Any, variant: str, x: torch.Tensor) -> Any:
    """Loops take ``x`` whole; cells step over its time axis."""
    return run(module, x) if variant in LOOPS else loop_cell(module, x)


# -- shapes -----------------------------------------------------------------------------------
def check_shapes(subject: Subject, variant: str, options: Any) -> None:
    """Output and state shapes for several batch and neuron shapes; the state the step returns
    has the initial state's fields, shapes and dtypes; recorded states stack over time."""
    model = subject.model
    state_cls = model.state if variant in RECURRENT else model.feed_forward_state
    configs = (
        [(1, 2, 4), (3, 4, 2)] if variant in RECURRENT else [(1, (4,)), (3, (2, 3)), (2, (2, 1, 3))]
    )
    for config in configs:
        if variant in RECURRENT:
            batch, n_in, hidden = config
            module = subject.build(variant, input_size=n_in, hidden_size=hidden)
            x = subject.inputs(
                variant, 3 if variant in LOOPS else None, batch=batch, input_size=n_in
            )
            neurons: tuple[int, ...] = (batch, hidden)
        else:
            batch, features = config
            module = subject.build(variant)
            x = subject.inputs(
                variant, 3 if variant in LOOPS else None, batch=batch, features=features
            )
            neurons = (batch, *features)
        where = f"input of shape {tuple(x.shape)}"
        out, state = run(module, x)
        expected = (x.shape[0], *neurons) if variant in LOOPS else neurons
        if tuple(out.shape) != expected:
            raise CheckFailure(f"{where}: output shape {tuple(out.shape)}, expected {expected}")
        if out.dtype != x.dtype:
            raise CheckFailure(f"{where}: output dtype {out.dtype}, expected {x.dtype}")
        check_finite(f"{where}: output", out)
        if model.output == "spikes" and not bool(((out == 0) | (out == 1)).all()):
            raise CheckFailure(f"{where}: a spiking model's output holds values other than 0 and 1")
        if not isinstance(state, state_cls):
            raise CheckFailure(
                f"{where}: the state is a {type(state).__name__}, expected {state_cls.__name__}"
            )
        initial = _initial_state(module, neurons, x, where)
        _check_like_initial(where, state, initial, neurons, variant)
        if variant in RECURRENT:
            z = model.last_spikes(state)
            if tuple(z.shape) != neurons:
                raise CheckFailure(
                    f"{where}: last_spikes(state) has shape {tuple(z.shape)}, expected {neurons}"
                )
        if variant in LOOPS:
            _check_recorded_states(subject, variant, module, x, out, state, config)
        with torch.no_grad():
            out_no_grad, _ = run(module, x)
        assert_close(f"{where}: output under torch.no_grad()", out_no_grad, out, 0, 0)


def _initial_state(module: Any, neurons: tuple, x: torch.Tensor, where: str) -> Any:
    """The module's initial state for ``x``, checked to have ``x``'s dtype."""
    initial = module.make_initial_state(module.parameters_now(), neurons, x.device, x.dtype)
    for name, value in tensor_leaves(initial):
        if value.is_floating_point() and value.dtype != x.dtype:
            raise CheckFailure(
                f"{where}: initial state field {name!r} is {value.dtype} for a {x.dtype} "
                "input; create it with the dtype= (and device=) passed in"
            )
    return initial


def _check_like_initial(where: str, state: Any, initial: Any, neurons: tuple, variant: str) -> None:
    got, want = leaves(state), leaves(initial)
    if [n for n, _ in got] != [n for n, _ in want]:
        raise CheckFailure(
            f"{where}: the step returned state fields {[n for n, _ in got]}, the initial state "
            f"has {[n for n, _ in want]}"
        )
    for (name, a), (_, b) in zip(got, want, strict=True):
        if not isinstance(b, torch.Tensor):
            continue
        lead = neurons if variant not in RECURRENT else neurons[:1]
        if tuple(b.shape[: len(lead)]) != lead:
            raise CheckFailure(
                f"{where}: initial state field {name!r} has shape {tuple(b.shape)}; it must start "
                f"with the neurons' shape {lead}"
            )
        if not isinstance(a, torch.Tensor) or a.shape != b.shape:
            shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
            raise CheckFailure(
                f"{where}: the step returned state field {name!r} of shape {shape}; the initial "
                f"state has {tuple(b.shape)}"
            )
        if a.dtype != b.dtype:
            raise CheckFailure(
                f"{where}: the step returned state field {name!r} as {a.dtype}; the initial "
                f"state has {b.dtype}"
            )


def _check_recorded_states(
    subject: Subject, variant: str, module: Any, x: Any, out: Any, state: Any, config: Any
) -> None:
    sizes = {"input_size": config[1], "hidden_size": config[2]} if variant in RECURRENT else {}
    recorder = subject.build(variant, record_states=True, **sizes)
    out_rec, states = recorder(x)
    assert_close("output with record_states=True", out_rec, out, 0, 0)
    for (name, stacked), (_, final) in zip(
        tensor_leaves(states), tensor_leaves(state), strict=True
    ):
        if tuple(stacked.shape) != (x.shape[0], *final.shape):
            raise CheckFailure(
                f"record_states=True: state field {name!r} has shape {tuple(stacked.shape)}, "
                f"expected (T, *state shape) = {(x.shape[0], *final.shape)}"
            )
        assert_close(f"record_states=True: last recorded {name!r}", stacked[-1], final, 0, 0)


# -- no steps ---------------------------------------------------------------------------------
def check_no_steps(subject: Subject, variant: str, options: Any) -> None:
    """Layers: an input of ``T = 0`` steps gives an empty output of the shape and dtype of a
    one-step output with no time, and the state back unchanged (the initial state for
    ``state=None``); recorded states are ``(0, *state shape)``.  The core answers every model
    alike; the check keeps a model's own code (a whole-sequence function, an adjoint) honest."""
    module = subject.build(variant)
    x = subject.inputs(variant, 3)
    one, _ = run(module, x[:1])
    _, given = run(module, x)
    neurons = (BATCH, HIDDEN_SIZE) if variant in RECURRENT else (BATCH, *FEATURES)
    initial = _initial_state(module, neurons, x, "T = 0")
    for state, start in ((None, initial), (given, given)):
        where = "input of T = 0 steps" + (" with a state" if state is not None else "")
        out, final = run(module, x[:0], state)
        if tuple(out.shape) != (0, *one.shape[1:]) or out.dtype != one.dtype:
            raise CheckFailure(
                f"{where}: output of shape {tuple(out.shape)} ({out.dtype}), expected "
                f"{(0, *one.shape[1:])} ({one.dtype})"
            )
        assert_states_close(
            f"{where}: the returned state (it must be unchanged)", final, start, 0, 0
        )
    _, states = subject.build(variant, record_states=True)(x[:0])
    for name, stacked in tensor_leaves(states):
        want = (0, *dict(tensor_leaves(given))[name].shape)
        if tuple(stacked.shape) != want:
            raise CheckFailure(
                f"input of T = 0 steps, record_states=True: state field {name!r} has shape "
                f"{tuple(stacked.shape)}, expected {want}"
            )


# -- dtypes -----------------------------------------------------------------------------------
def check_dtypes(subject: Subject, variant: str, options: Any) -> None:
    """float32 and float64 modules (``.double()``) keep the input's dtype in outputs and states,
    stay finite and agree with each other."""
    results = {}
    for dtype in (torch.float32, torch.float64):
        module = subject.build(variant, dtype=dtype)
        x = subject.inputs(variant, STEPS, dtype=dtype)
        neurons = (BATCH, HIDDEN_SIZE) if variant in RECURRENT else (BATCH, *FEATURES)
        _initial_state(module, neurons, x, f"{dtype}")
        out, state = _run_variant(subject, module, variant, x)
        for name, value in [("output", out), *tensor_leaves(state)]:
            if value.is_floating_point() and value.dtype != dtype:
                raise CheckFailure(f"{dtype} input: {name} is {value.dtype}")
        check_finite(f"{dtype}: output", out)
        check_finite(f"{dtype}: state", state)
        for name, value in tensor_fields(module.parameters_now()).items():
            if value.dtype != dtype:
                raise CheckFailure(f"module.to({dtype}): parameter {name!r} stays {value.dtype}")
        results[dtype] = (out, state)
    (out32, state32), (out64, state64) = results[torch.float32], results[torch.float64]
    assert_close("float32 and float64 outputs", out32, out64, rtol=1e-3, atol=1e-4)
    assert_states_close("float32 and float64 final states", state32, state64, rtol=1e-3, atol=1e-3)


# -- initial state ----------------------------------------------------------------------------
def check_initial_state(subject: Subject, variant: str, options: Any) -> None:
    """``state=None`` equals the model's initial state passed explicitly; the initial state has
    the requested dtype and does not join the graph of learnable parameters."""
    model = subject.model
    fields = list(tensor_fields(model.parameters()))
    module = subject.build(variant, learnable=fields)
    x = subject.inputs(variant, STEPS)
    neurons = (BATCH, HIDDEN_SIZE) if variant in RECURRENT else (BATCH, *FEATURES)
    p = module.parameters_now()
    for dtype in (torch.float32, torch.float64):
        initial = module.make_initial_state(p, neurons, x.device, dtype)
        for name, value in tensor_leaves(initial):
            if value.is_floating_point() and value.dtype != dtype:
                raise CheckFailure(
                    f"initial state for dtype={dtype}: field {name!r} is {value.dtype}"
                )
            if value.requires_grad:
                raise CheckFailure(
                    f"initial state field {name!r} requires grad with learnable parameters; "
                    "build it from detached parameters (e.g. p.v_leak.detach())"
                )
    initial = module.make_initial_state(p, neurons, x.device, x.dtype)
    first = x[0] if variant not in LOOPS else x
    out_none, state_none = run(module, first)
    out_explicit, state_explicit = run(module, first, initial)
    assert_close(
        "outputs with state=None and with the explicit initial state", out_none, out_explicit, 0, 0
    )
    assert_states_close("state=None vs explicit initial state", state_none, state_explicit, 0, 0)


# -- state threading --------------------------------------------------------------------------
def check_state_threading(subject: Subject, variant: str, options: Any) -> None:
    """Layers: two half runs with the state carried equal one long run, and the incoming state
    is not modified in place.  Cells: stepping the cell over time equals the layer."""
    module = subject.build(variant)
    x = subject.inputs(variant, STEPS)
    if variant in LOOPS:
        whole_out, whole_state = module(x)
        k = 3
        a_out, a_state = module(x[:k])
        kept = [(n, t.clone()) for n, t in tensor_leaves(a_state)]
        b_out, b_state = module(x[k:], a_state)
        for (name, before), (_, after) in zip(kept, tensor_leaves(a_state), strict=True):
            if not torch.equal(before, after):
                raise CheckFailure(f"the layer modified the incoming state field {name!r} in place")
        assert_close(
            f"outputs of x[:{k}] then x[{k}:] (state carried) and of x at once",
            torch.cat([a_out, b_out]),
            whole_out,
        )
        assert_states_close("final states of the split and the whole run", b_state, whole_state)
        return
    partner = subject.partner(module, variant)
    cell_out, cell_state = loop_cell(module, x)
    layer_out, layer_state = partner(x)
    loop = "recurrent" if variant in RECURRENT else "layer"
    what = f"the {variant} stepped over {STEPS} steps and the {loop}"
    assert_close(f"outputs of {what}", cell_out, layer_out)
    assert_states_close(f"final states of {what}", cell_state, layer_state)


# -- serialization ----------------------------------------------------------------------------
def check_serialization(subject: Subject, variant: str, options: Any) -> None:
    """``state_dict`` round trip (with learnt parameter values), pickle and deepcopy."""
    fields = list(tensor_fields(subject.model.parameters()))
    module = subject.build(variant, learnable=fields)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith("p_"):
                param.mul_(1.05)  # one factor for all: keeps relations between fields
            else:
                param.add_(0.1 * torch.randn(param.shape, generator=gen, dtype=param.dtype))
    x = subject.inputs(variant, STEPS)
    expected_out, expected_state = _run_variant(subject, module, variant, x)
    keys = set(module.state_dict())
    missing = [f for f in fields if "p_" + f.replace(".", "__") not in keys]
    if missing:
        raise CheckFailure(f"learnable parameters {missing} are missing from state_dict()")
    fresh = subject.build(variant, learnable=fields)
    try:
        fresh.load_state_dict(module.state_dict())
    except RuntimeError as exc:
        raise CheckFailure(f"load_state_dict(state_dict()) failed: {exc}") from exc
    copies = {"load_state_dict(state_dict())": fresh}
    buffer = io.BytesIO()
    try:
        pickle.dump(module, buffer)
        copies["pickle"] = pickle.loads(buffer.getvalue())
    except Exception as exc:
        raise CheckFailure(
            f"pickling a {type(module).__name__} failed ({type(exc).__name__}: {exc}); export "
            f"the class from an importable module: snncore.module_class(MODEL, {variant!r}, "
            f"'ClassName', __name__)"
        ) from exc
    copies["copy.deepcopy"] = copy.deepcopy(module)
    for how, other in copies.items():
        out, state = _run_variant(subject, other, variant, x)
        assert_close(f"outputs after {how}", out, expected_out, 0, 0)
        assert_states_close(f"states after {how}", state, expected_state, 0, 0)


# -- per-neuron parameters --------------------------------------------------------------------
FACTORS = (1.0, 1.1, 0.9)


def check_per_neuron_parameters(subject: Subject, variant: str, options: Any) -> None:
    """Tensor parameters with one value per neuron broadcast against the state: neuron k of a
    module with per-neuron values behaves as a module whose every value is neuron k's (for a
    recurrent variant with no recurrent weights; models with extra recurrent tensors, which may
    couple neurons, get equal values per neuron).  Per-neuron learnable parameters too."""
    model = subject.model
    n = len(FACTORS)
    p0 = model.parameters()
    recurrent = variant in RECURRENT
    kwargs: dict[str, Any] = {}
    if recurrent:
        kwargs = {"hidden_size": n, "recurrent_weights": torch.zeros(n, n)}
    features = (n,)
    x = subject.inputs(variant, STEPS, features=features)

    def outputs(p: Any, **extra: Any) -> tuple[Any, Any]:
        module = subject.build(variant, p=p, **kwargs, **extra)
        return _run_variant(subject, module, variant, x)

    scalar_out, scalar_state = outputs(p0)
    equal = replace_tensors(
        p0, {f: v.expand(n).clone() for f, v in tensor_fields(p0).items() if v.numel() == 1}
    )
    out, state = outputs(equal)
    assert_close("outputs with every parameter repeated per neuron", out, scalar_out, 0, 0)
    assert_states_close(
        "states with every parameter repeated per neuron", state, scalar_state, 0, 0
    )
    learnable = dict.fromkeys(tensor_fields(p0), "per_neuron")
    out, state = outputs(p0, learnable=learnable, features=n)
    assert_close("outputs with per-neuron learnable parameters", out, scalar_out, 0, 0)
    if recurrent and model.module_tensors:
        return
    factors = torch.tensor(FACTORS, dtype=torch.get_default_dtype())
    per_neuron, per_neuron_state = outputs(scaled_parameters(p0, factors))
    neurons = tuple(scalar_out.shape[-2:])
    for k in range(n):
        expected, expected_state = outputs(scaled_parameters(p0, factors[k]))
        what = f"neuron {k} with per-neuron parameters (x{FACTORS[k]}) and a module of its values"
        assert_close(f"outputs of {what}", per_neuron[..., k], expected[..., k])
        for (name, a), (_, b) in zip(
            tensor_leaves(per_neuron_state), tensor_leaves(expected_state), strict=True
        ):
            if tuple(a.shape) == neurons:
                assert_close(f"state field {name!r} of {what}", a[..., k], b[..., k])


# -- gradients --------------------------------------------------------------------------------
def check_gradients(subject: Subject, variant: str, options: Any) -> None:
    """Gradients reach the input, the weights and every learnable parameter, finite; for a
    non-spiking model they match finite differences."""
    model = subject.model
    fields = list(tensor_fields(model.parameters()))
    module = subject.build(variant, learnable=fields)
    x = subject.inputs(variant, STEPS).requires_grad_()
    out, state = _run_variant(subject, module, variant, x)
    gen = torch.Generator().manual_seed(3)
    loss = (out * torch.rand(out.shape, generator=gen, dtype=out.dtype)).sum()
    for _, leaf in tensor_leaves(state):
        if leaf.is_floating_point() and leaf.requires_grad:
            loss = loss + (leaf * torch.rand(leaf.shape, generator=gen, dtype=leaf.dtype)).sum()
    loss.backward()
    _require_gradient("the input", x.grad, nonzero=True)
    spiked_early = bool(out[:-1].detach().abs().sum() > 0)
    if variant in RECURRENT:
        _require_gradient("input_weights", module.input_weights.grad, nonzero=True)
        _require_gradient("recurrent_weights", module.recurrent_weights.grad, nonzero=spiked_early)
        for name, tensor in module.module_tensors().items():
            _require_gradient(f"module tensor {name!r}", tensor.grad, nonzero=False)
    without = []
    reached = False
    for field in fields:
        param = getattr(module, "p_" + field.replace(".", "__"))
        if param.grad is None:
            if field.rpartition(".")[2] != "alpha":  # the surrogate gives alpha no gradient
                without.append(field)
            continue
        check_finite(f"gradient of learnable parameter {field!r}", param.grad)
        reached = reached or bool(param.grad.abs().sum() > 0)
    if without:
        raise CheckFailure(f"no gradient reaches the learnable parameters {without}")
    if fields and not reached:
        raise CheckFailure(f"every learnable parameter's gradient is zero ({fields})")
    if model.output != "spikes":
        _gradcheck(subject, variant)


def _require_gradient(what: str, grad: Any, nonzero: bool) -> None:
    if grad is None:
        raise CheckFailure(f"no gradient reaches {what}")
    check_finite(f"gradient of {what}", grad)
    if nonzero and not bool(grad.abs().sum() > 0):
        raise CheckFailure(f"the gradient of {what} is zero everywhere")


def _gradcheck(subject: Subject, variant: str) -> None:
    module = subject.build(variant)
    x = subject.inputs(variant, 3, batch=1).requires_grad_()

    def forward(inp: torch.Tensor) -> Any:
        out, state = _run_variant(subject, module, variant, inp)
        return (out, *(t for _, t in tensor_leaves(state) if t.is_floating_point()))

    try:
        torch.autograd.gradcheck(forward, (x,), eps=1e-6, atol=1e-6, rtol=1e-4)
    except Exception as exc:
        raise CheckFailure(
            f"autograd and finite differences disagree for this non-spiking model: {exc}"
        ) from exc
