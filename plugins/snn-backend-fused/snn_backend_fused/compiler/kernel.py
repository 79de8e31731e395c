"""Generated kernels at run time: build once per (step, ISA), cache, call through ctypes.

:func:`kernel_for_layer` traces a model's feed-forward step for a module's parameters (or
returns the reason it cannot), generates its C++ (:mod:`.cpp`), compiles it with the system's
compiler into ``$SNN_FUSED_CACHE_DIR/gen-<hash>/libsnng.so`` (a file lock makes concurrent
first uses build once; a stamp holding the library's size and SHA-256 is written after a
successful build and checked before loading, so a damaged file is rebuilt, never loaded), and
loads it.  :func:`run_layer` runs a layer through it, with an autograd function whose backward
is the generated backward kernel.

The target ISA is the machine's (``-march=native``) unless ``$SNN_FUSED_ISA`` names one
(``x86-64-v3`` for AVX2, ``x86-64-v4`` for AVX-512, ``x86-64-v2``, ...).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

from snn_backend_fused import buffers, build
from snn_backend_fused.compiler import cpp
from snn_backend_fused.compiler.trace import Traced, Untraceable, parameter_kind, trace_step
from snncore.parameters import method_items, tensor_items
from snncore.surrogates import resolve_surrogate

FLAGS = ("-O3", "-std=c++17", "-fPIC", "-fopenmp", "-ffp-contract=off", "-fno-math-errno")
DTYPES = {torch.float32: "f32", torch.float64: "f64"}

_lock = threading.Lock()
_kernels: dict[str, Any] = {}
_traces: dict[tuple[Any, ...], Traced | str] = {}
#: Seconds each generated library took to build in this process (0 when it came from the cache).
build_seconds: dict[str, float] = {}


def isa() -> str:
    """The ``-march`` the kernels are built for."""
    return os.environ.get("SNN_FUSED_ISA", "").strip() or "native"


@functools.lru_cache(maxsize=1)
def libmvec_functions() -> frozenset[str]:
    """The vector math functions glibc's libmvec offers here (empty off x86-64 glibc)."""
    try:
        library = ctypes.CDLL("libmvec.so.1")
    except OSError:
        return frozenset()
    return frozenset(
        name for name in cpp.VECTOR_MATH.values() if hasattr(library, f"_ZGVdN4v_{name}")
    )


def compile_flags(march: str | None = None) -> list[str]:
    return [*FLAGS, f"-march={march or isa()}"]


def compile_source(
    source: str,
    target: Path,
    march: str | None = None,
    shared: bool = True,
    defines: tuple[str, ...] = (),
) -> None:
    """Compile ``source`` into ``target`` (a shared library, or an object with ``shared=False``;
    ``defines``: preprocessor macros, e.g. ``SNNG_INSPECT`` for the vectorisation test)."""
    compiler = build.find_compiler()
    with tempfile.TemporaryDirectory(prefix="gen-", dir=target.parent) as tmp:
        path = Path(tmp) / "kernel.cpp"
        path.write_text(source)
        out = Path(tmp) / target.name
        cmd = [compiler, *compile_flags(march), *(f"-D{d}" for d in defines)]
        cmd += [str(path), "-o", str(out)]
        cmd += (
            ["-shared", "-lmvec"]
            if shared and libmvec_functions()
            else (["-shared"] if shared else ["-c"])
        )
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise build.FusedBuildError(f"compiling a generated kernel failed:\n{tail}")
        os.replace(out, target)


_stamp = build._stamp  # size + SHA-256 of a built library; one helper for every cached library


def load_source(source: str) -> Any:
    """The loaded library of ``source``, built (once, under a file lock) if not cached."""
    compiler = build.find_compiler()
    digest = hashlib.sha256()
    for part in (source, compiler, build._compiler_version(compiler), " ".join(compile_flags())):
        digest.update(part.encode() + b"\0")
    if isa() == "native":
        digest.update(build._cpu_flags().encode())
    key = digest.hexdigest()[:20]
    with _lock:
        if key in _kernels:
            return _kernels[key]
        directory = build.cache_root() / f"gen-{key}"
        target, stamp = directory / "libsnng.so", directory / "libsnng.stamp"
        started = time.perf_counter()
        built = False
        directory.mkdir(parents=True, exist_ok=True)
        import fcntl

        with open(directory / "build.lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            valid = target.exists() and stamp.exists() and stamp.read_text() == _stamp(target)
            if not valid:
                compile_source(source, target)
                stamp.write_text(_stamp(target))
                built = True
        build_seconds[key] = time.perf_counter() - started if built else 0.0
        library = ctypes.CDLL(str(target))
        _declare(library)
        _kernels[key] = library
        return library


_libraries: dict[tuple[int, int | None, str], Any] = {}


def library_for(traced: Traced, spikes_field: int | None = None) -> Any:
    """The loaded library of a traced step (generated, hashed and looked up once per process
    and ISA; later calls are a dictionary access)."""
    key = (id(traced), spikes_field, isa())
    found = _libraries.get(key)
    if found is None:
        source = cpp.generate(traced, set(libmvec_functions()), spikes_field=spikes_field)
        found = _libraries[key] = load_source(source)
    return found


def _declare(library: Any) -> None:
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    signatures = {
        "snng_forward": [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, c_int],
        "snng_backward": [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr, c_int],
        "snng_recurrent_forward": [i64, i64, i64, *[ptr] * 9, c_int],
        "snng_recurrent_backward": [i64, i64, i64, *[ptr] * 8, c_int],
        "snngs_forward": [i64, i64, i64, *[ptr] * 13, c_int],
        "snngs_backward": [i64, i64, i64, *[ptr] * 12, c_int],
    }
    for d in DTYPES.values():
        for name, argtypes in signatures.items():
            if hasattr(library, f"{name}_{d}"):
                function = getattr(library, f"{name}_{d}")
                function.restype = c_int
                function.argtypes = argtypes
        if hasattr(library, f"snngs_row_{d}"):
            getattr(library, f"snngs_row_{d}").restype = i64
            getattr(library, f"snngs_row_{d}").argtypes = [i64]


# -- tracing per model and parameter layout ------------------------------------------------------


def trace_layer(model: Any, p: Any, dt: float, features: tuple[int, ...]) -> Traced | str:
    """The traced feed-forward step of ``model`` for parameters laid out like ``p``, or the
    reason it cannot be compiled (remembered per model, layout and dt)."""
    tensors = dict(tensor_items(p))
    kinds = tuple(parameter_kind(v, features) for v in tensors.values())
    if None in kinds:
        odd = [n for n, k in zip(tensors, kinds, strict=True) if k is None]
        return f"parameter(s) {odd} are neither scalars nor one value per neuron"
    methods = _surrogates(p)
    general = (id(model), kinds, methods, len(features))
    found = _traces.get(general)
    if isinstance(found, Traced) and not found.dt_input:  # its step needs dt as a number
        found = _traces.get((*general, float(dt)))
    if found is None:
        try:
            state = model.make_initial_state("layer", p, (2, *features), None, torch.float64)
            found = trace_step(model.feed_forward_step, state, p, dt, features, kinds=kinds)
        except Untraceable as exc:
            found = f"its step cannot be compiled: {exc}"
        if isinstance(found, Traced) and not found.dt_input:
            _traces.setdefault(general, found)
            _traces[(*general, float(dt))] = found
        else:
            _traces[general] = found
    return found


def _surrogates(p: Any) -> tuple[Any, ...]:
    """The surrogates ``p``'s methods resolve to *now*: part of a trace's key, since one name
    can stand for another surrogate for a while (:func:`snncore.surrogates.override_surrogate`)
    and a kernel traced under the one must not serve the other."""
    return tuple(resolve_surrogate(v) for _, v in method_items(p))


@attrs.frozen
class LayerCall:
    traced: Traced
    library: Any
    threads: int
    #: grad mode was on at the call (``needs_input_grad`` inside an autograd function says only
    #: which inputs require grad, also under ``torch.no_grad()``): else nothing is saved
    grad: bool = True


def refuse_double_backward() -> None:
    """A backward pass asked to build a graph (``create_graph=True``, double backward): the
    kernels' backward is not itself differentiable, so say so rather than let autograd report
    a tensor that "does not require grad" later."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "the fused backend's generated kernels have no second derivative (double backward, "
            "create_graph=True): run this layer with backend='torch'"
        )


def _pointers(tensors: list[torch.Tensor]) -> Any:
    return (ctypes.c_void_p * max(len(tensors), 1))(*[t.data_ptr() for t in tensors])


class _GeneratedLayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        call: LayerCall,
        x: torch.Tensor,
        params: list[torch.Tensor],
        per_neuron: Any,
        *state: torch.Tensor,
    ) -> Any:  # type: ignore[override]
        T, M = x.shape[0], x[0].numel()
        features = int(params_features(x))
        d = DTYPES[x.dtype]
        x = x.contiguous()
        out = buffers.empty(tuple(x.shape), x.dtype)
        final = [s.detach().to(x.dtype).expand(x.shape[1:]).contiguous().clone() for s in state]
        needs = ctx.needs_input_grad
        keep = call.grad and (any(needs[1:2]) or any(needs[4:]))
        k = cpp.CHECKPOINT_EVERY
        checkpoints = (
            buffers.empty(((T + k - 1) // k, len(final), M), x.dtype) if keep and T else None
        )
        forward = getattr(call.library, f"snng_forward_{d}")
        status = forward(
            T,
            M,
            features,
            x.data_ptr(),
            _pointers(final),
            _pointers(params),
            per_neuron,
            out.data_ptr(),
            None if checkpoints is None else checkpoints.data_ptr(),
            call.threads,
        )
        if status != 0:
            raise RuntimeError(f"generated kernel failed with status {status}")
        ctx.call, ctx.params, ctx.per_neuron = call, params, per_neuron
        ctx.state_shapes = [s.shape for s in state]
        if keep:
            ctx.save_for_backward(x, checkpoints)
        return (out, *final)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor, *grad_state: torch.Tensor | None) -> Any:  # type: ignore[override]
        refuse_double_backward()
        x, checkpoints = ctx.saved_tensors
        call = ctx.call
        T, M = x.shape[0], x[0].numel()
        grad_out = (torch.zeros_like(x) if grad_out is None else grad_out).contiguous()
        g_state = [
            torch.zeros(x.shape[1:], dtype=x.dtype)
            if g is None
            else g.to(x.dtype).expand(x.shape[1:]).contiguous().clone()
            for g in grad_state
        ]
        grad_x = buffers.empty(tuple(x.shape), x.dtype)
        backward = getattr(call.library, f"snng_backward_{DTYPES[x.dtype]}")
        status = backward(
            T,
            M,
            int(params_features(x)),
            x.data_ptr(),
            checkpoints.data_ptr(),
            _pointers(ctx.params),
            ctx.per_neuron,
            grad_out.data_ptr(),
            _pointers(g_state),
            grad_x.data_ptr(),
            call.threads,
        )
        if status != 0:
            raise RuntimeError(f"generated backward kernel failed with status {status}")
        g_state = [g.sum_to_size(shape) for g, shape in zip(g_state, ctx.state_shapes, strict=True)]
        return (None, grad_x, None, None, *g_state)


def params_features(x: torch.Tensor) -> int:
    """Neurons per batch entry: the product of ``x``'s feature dimensions."""
    n = 1
    for d in x.shape[2:]:
        n *= d
    return n


def decline(model: Any, x: torch.Tensor, state: Any, p: Any, record_states: bool) -> str | None:
    """Why the generated kernel does not run this call (then the eager loop does), or ``None``."""
    if record_states:
        return "record_states=True needs every step's state"
    if x.device.type != "cpu":
        return f"the generated C++ kernels run on the CPU, not {x.device.type}"
    if x.dtype not in DTYPES:
        return f"the generated kernels run float32 and float64, not {x.dtype}"
    if x.dim() < 2:
        return "the input has no batch dimension"
    if torch.is_autocast_enabled("cpu"):
        return "CPU autocast is on"
    for name, value in tensor_items(p):
        if value.requires_grad and torch.is_grad_enabled():
            return f"parameter {name} needs a gradient"
        if value.dtype != x.dtype:
            return f"parameter {name} is {value.dtype}, the input {x.dtype}"
    flat = torch.utils._pytree.tree_leaves(state)
    for value in flat:
        if not isinstance(value, torch.Tensor) or value.dtype != x.dtype:
            return "a state field of another dtype"
        if torch.broadcast_shapes(value.shape, x.shape[1:]) != x.shape[1:]:
            return "a state field that does not match the input's shape"
    return None


def run_layer(
    model: Any, x: torch.Tensor, state: Any, p: Any, dt: float
) -> tuple[torch.Tensor, Any] | str:
    """The layer through its generated kernel, or the reason it declines."""
    features = tuple(x.shape[2:])
    traced = trace_layer(model, p, dt, features)
    if isinstance(traced, str):
        return traced
    try:
        library = library_for(traced)
    except build.FusedBuildError as exc:
        return f"its generated kernel does not build: {str(exc).splitlines()[0]}"
    params, per_neuron = [], []
    values = [v for _, v in tensor_items(p)]
    if traced.dt_input:
        values.append(torch.tensor(float(dt), dtype=torch.float64))
    for value, kind in zip(values, traced.kinds, strict=True):
        value = value.detach().to(x.dtype)
        params.append(
            value.reshape(-1).contiguous() if kind == "neuron" else value.reshape(1).contiguous()
        )
        per_neuron.append(1 if kind == "neuron" else 0)
    per_neuron_array = (ctypes.c_int64 * max(len(per_neuron), 1))(*per_neuron)
    flat, tree = torch.utils._pytree.tree_flatten(state)
    call = LayerCall(traced, library, max(1, torch.get_num_threads()), torch.is_grad_enabled())
    out, *final = _GeneratedLayer.apply(call, x, params, per_neuron_array, *flat)
    return out, torch.utils._pytree.tree_unflatten(final, tree)


# -- recurrent layers ------------------------------------------------------------------------------


def spikes_field(model: Any, state: Any) -> int | str:
    """Which flattened state field ``model.last_spikes`` reads (the one ``W_rec`` weighs), or
    the reason none does."""
    flat, tree = torch.utils._pytree.tree_flatten(state)
    probes = [torch.full((1,), float(k)) for k in range(len(flat))]
    try:
        read = model.last_spikes(torch.utils._pytree.tree_unflatten(probes, tree))
    except Exception as exc:
        return f"its last_spikes accessor fails on a probe state: {exc}"
    for k, probe in enumerate(probes):
        if read is probe:
            return k
    return "its last_spikes accessor does not return one state field"


def trace_recurrent(
    model: Any,
    p: Any,
    dt: float,
    hidden: int,
    module_tensors: Mapping[str, torch.Tensor] | None = None,
) -> tuple[Traced, int] | str:
    """The traced recurrent step and its spikes field, or why it cannot be compiled.

    A model with a ``synaptic_input`` is traced with as many input channels as that gives
    (it must be linear in the spikes); module tensors are traced as matrices (``module_tensors``
    gives their shapes; by default the model's initialisers for ``hidden`` neurons)."""
    from snn_backend_fused.compiler import staged_kernel, stages

    tensors = dict(tensor_items(p))
    kinds = tuple(parameter_kind(v, (hidden,)) for v in tensors.values())
    if None in kinds:
        odd = [n for n, k in zip(tensors, kinds, strict=True) if k is None]
        return f"parameter(s) {odd} are neither scalars nor one value per neuron"
    methods = _surrogates(p)
    if module_tensors is None:
        module_tensors = {
            name: init(hidden, hidden, p) for name, init in model.module_tensors.items()
        }
    shapes = tuple((name, tuple(t.shape)) for name, t in module_tensors.items())
    key = ("recurrent", id(model), kinds, methods, shapes)
    found = _traces.get(key)
    if found is None:
        try:
            channels = staged_kernel.check_linear(model, hidden)
            if isinstance(channels, str):
                raise Untraceable(channels)
            state = model.make_initial_state("recurrent", p, (2, hidden), None, torch.float64)
            field = spikes_field(model, state)
            if isinstance(field, str):
                raise Untraceable(field)
            traced = trace_step(
                model.recurrent_step,
                state,
                p,
                dt,
                (hidden,),
                kinds=kinds,
                channels=channels,
                matrices=list(module_tensors.items()),
            )
            if not traced.dt_input:
                raise Untraceable("its step needs dt as a number")
            if traced.staged:
                stages.analyse(traced)  # refuses what the staged kernel cannot run
            found = (traced, field)
        except Untraceable as exc:
            found = f"its step cannot be compiled: {exc}"
        _traces[key] = found
    return found


def decline_recurrent(x: torch.Tensor, state: Any, p: Any, record_states: bool) -> str | None:
    if record_states:
        return "record_states=True needs every step's state"
    if x.device.type != "cpu":
        return f"the generated C++ kernels run on the CPU, not {x.device.type}"
    if x.dtype not in DTYPES:
        return f"the generated kernels run float32 and float64, not {x.dtype}"
    if torch.is_autocast_enabled("cpu"):
        return "CPU autocast is on"
    for name, value in tensor_items(p):
        if value.requires_grad and torch.is_grad_enabled():
            return f"parameter {name} needs a gradient"
    for value in torch.utils._pytree.tree_leaves(state):
        if not isinstance(value, torch.Tensor) or value.dtype != x.dtype:
            return "a state field of another dtype"
    return None


class _GeneratedRecurrent(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        call: LayerCall,
        field: int,
        xw: torch.Tensor,
        w_rec: torch.Tensor,
        params: list[torch.Tensor],
        per_neuron: Any,
        *state: torch.Tensor,
    ) -> Any:  # type: ignore[override]
        T, B, H = xw.shape
        d = DTYPES[xw.dtype]
        xw = xw.contiguous()
        out = buffers.empty((T, B, H), xw.dtype)
        final = [s.detach().expand(B, H).contiguous().clone() for s in state]
        needs = ctx.needs_input_grad
        keep = call.grad and (needs[2] or needs[3] or any(needs[6:]))
        k = cpp.CHECKPOINT_EVERY
        currents = buffers.empty((T, B, H), xw.dtype) if keep else None
        zprev = buffers.empty((T, B, H), xw.dtype) if keep else None
        checkpoints = (
            torch.empty(((T + k - 1) // k, len(final), B, H), dtype=xw.dtype)
            if keep and T
            else None
        )
        wt = w_rec.detach().t().contiguous()
        forward = getattr(call.library, f"snng_recurrent_forward_{d}")
        status = forward(
            T,
            B,
            H,
            xw.data_ptr(),
            wt.data_ptr(),
            _pointers(final),
            _pointers(params),
            per_neuron,
            out.data_ptr(),
            _ptr(currents),
            _ptr(zprev),
            _ptr(checkpoints),
            call.threads,
        )
        if status != 0:
            raise RuntimeError(f"generated recurrent kernel failed with status {status}")
        ctx.call, ctx.params, ctx.per_neuron = call, params, per_neuron
        ctx.state_shapes = [s.shape for s in state]
        if keep:
            ctx.save_for_backward(currents, zprev, checkpoints, w_rec)
        return (out, *final)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor, *grad_state: torch.Tensor | None) -> Any:  # type: ignore[override]
        refuse_double_backward()
        currents, zprev, checkpoints, w_rec = ctx.saved_tensors
        T, B, H = currents.shape
        dtype = currents.dtype
        grad_out = (torch.zeros_like(currents) if grad_out is None else grad_out).contiguous()
        g_state = [
            torch.zeros((B, H), dtype=dtype)
            if g is None
            else g.to(dtype).expand(B, H).contiguous().clone()
            for g in grad_state
        ]
        grad_current = buffers.empty((T, B, H), dtype)
        w = w_rec.detach().contiguous()
        backward = getattr(ctx.call.library, f"snng_recurrent_backward_{DTYPES[dtype]}")
        status = backward(
            T,
            B,
            H,
            currents.data_ptr(),
            w.data_ptr(),
            checkpoints.data_ptr(),
            _pointers(ctx.params),
            ctx.per_neuron,
            grad_out.data_ptr(),
            _pointers(g_state),
            grad_current.data_ptr(),
            ctx.call.threads,
        )
        if status != 0:
            raise RuntimeError(f"generated recurrent backward kernel failed with status {status}")
        grad_w = None
        if ctx.needs_input_grad[3]:
            grad_w = grad_current.reshape(-1, H).t() @ zprev.reshape(-1, H)
        g_state = [g.sum_to_size(shape) for g, shape in zip(g_state, ctx.state_shapes, strict=True)]
        return (None, None, grad_current, grad_w, None, None, *g_state)


def _ptr(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def parameter_arrays(
    traced: Traced, p: Any, dt: float, dtype: torch.dtype
) -> tuple[list[torch.Tensor], Any]:
    """The kernel's parameter arrays (a scalar, or one value per neuron, as traced; ``dt``
    last when it is an input) and the per-neuron flags."""
    params, per_neuron = [], []
    values = [v for _, v in tensor_items(p)]
    if traced.dt_input:
        values.append(torch.tensor(float(dt), dtype=torch.float64))
    for value, kind in zip(values, traced.kinds, strict=True):
        value = value.detach().to(dtype)
        params.append(
            value.reshape(-1).contiguous() if kind == "neuron" else value.reshape(1).contiguous()
        )
        per_neuron.append(1 if kind == "neuron" else 0)
    return params, (ctypes.c_int64 * max(len(per_neuron), 1))(*per_neuron)


def run_recurrent(
    model: Any,
    x: torch.Tensor,
    state: Any,
    p: Any,
    dt: float,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    module_tensors: Mapping[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, Any] | str:
    """A recurrent layer through its generated kernel, or the reason it declines."""
    from snn_backend_fused.compiler import staged_kernel

    module_tensors = dict(module_tensors or {})
    hidden = recurrent_weights.shape[0]
    found = trace_recurrent(model, p, dt, hidden, module_tensors)
    if isinstance(found, str):
        return found
    traced, field = found
    if x.dim() != 3 or x.shape[0] == 0:
        return "the input is not (T, B, input_size) with T > 0"
    if recurrent_weights.dtype != x.dtype or input_weights.dtype != x.dtype:
        return "the weights' dtype differs from the input's"
    try:
        library = library_for(traced, field)
    except build.FusedBuildError as exc:
        return f"its generated kernel does not build: {str(exc).splitlines()[0]}"
    params, per_neuron_array = parameter_arrays(traced, p, dt, x.dtype)
    if traced.staged:
        weights = (input_weights, recurrent_weights)
        return staged_kernel.run(
            traced, library, model, x, state, params, per_neuron_array, weights, module_tensors
        )
    flat, tree = torch.utils._pytree.tree_flatten(state)
    xw = torch.nn.functional.linear(x, input_weights)
    call = LayerCall(traced, library, max(1, torch.get_num_threads()), torch.is_grad_enabled())
    out, *final = _GeneratedRecurrent.apply(
        call, field, xw, recurrent_weights, params, per_neuron_array, *flat
    )
    return out, torch.utils._pytree.tree_unflatten(final, tree)
