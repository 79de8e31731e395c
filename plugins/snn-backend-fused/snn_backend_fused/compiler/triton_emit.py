"""Triton for a traced step: the whole time loop of a feed-forward layer on a GPU, forward and
backward, generated from the same IR as the C++ kernels (:mod:`.cpp`).

:func:`generate` writes the Python source of a module with two ``@triton.jit`` kernels::

    forward(x, out, state, params, checkpoints, T, M, F, SAVE, BLOCK, K, CDT)
    backward(x, checkpoints, scratch, params, g, grad_state, grad_x, T, M, F, g_st, g_sn,
             HAS_G, BLOCK, K, CDT)

One program owns ``BLOCK`` neurons and walks them through all ``T`` steps with the state in
registers.  ``x``, ``out``, ``grad_x``: (T, M) in the input's dtype; ``state`` and ``grad_state``:
(NS, M) in the compute dtype ``CDT`` (float32 for float16/bfloat16/float32 inputs, float64 for
float64), read on entry and overwritten on return (the final state; the initial state's
gradient); ``params``: (NP, F) in ``CDT``, row ``j`` parameter ``j``: a scalar parameter is
loaded once from ``params[j, 0]``, a per-neuron one from ``params[j, m % F]``; ``g``: the output's
gradient, rows ``g_st`` apart, neurons ``g_sn`` (0 or 1) apart.

Backward, as in the C++ kernels: the forward pass stores the state every ``K`` steps
(``checkpoints``, (ceil(T/K), NS, M)); the backward pass recomputes each ``K``-step chunk from its
checkpoint, writing the values the vector-Jacobian product reads (the tape of :func:`.cpp.plan`)
to a global scratch buffer (min(K, T), NT, M) -- each program touches only its own neurons'
columns, so a chunk stays in L2 -- then walks the chunk backwards.  A step whose backward reads
no forward value (a linear model) needs neither checkpoints nor recomputation.

Exactness: each IR op is one Triton operation in the compute dtype, in the traced order, with
``cpp._expression``'s semantics (``pow`` by 2 is ``a·a``, ``sigmoid`` is ``1/(1 + exp(−a))``,
``clamp`` two selects, ``abs`` clears the sign bit, ``spike`` is ``a > 0 ? 1 : 0``); divisions
and square roots are IEEE-rounded (``div_rn``/``sqrt_rn`` in float32, where plain ``/`` and
``tl.sqrt`` are approximations on NVIDIA GPUs), constants are rounded once to the compute dtype,
and the kernels are launched without FMA contraction.  The transcendental functions are CUDA's
(libdevice: the functions PyTorch's CUDA kernels call) on a GPU and numpy's under Triton's
interpreter (which has no libdevice).  Parameter-only values are computed once per program,
outside the time loop.

:func:`load` writes the source to the kernel cache (``$SNN_FUSED_CACHE_DIR``,
``gen-triton-<sha>.py``: Triton reads a kernel's source from its file) and imports it, once per
process; :func:`run_layer` runs a layer through it (an autograd function), or returns why not.
Importing this module does not import Triton (only loading a kernel module does), so the backend
imports it on the CPU too: :func:`unavailable` says whether Triton imports, :func:`interpreting`
whether its interpreter is on (then, and only then, :func:`run_layer` takes CPU tensors -- how the
tests check the kernels without a GPU; ``backend="fused"`` never takes this path on the CPU).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import math
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import attrs
import torch
from torch.autograd.function import once_differentiable

from snn_backend_fused import build
from snn_backend_fused.compiler import cpp
from snn_backend_fused.compiler.ir import Arg, Const, Graph
from snn_backend_fused.compiler.trace import Traced
from snncore.parameters import tensor_items

#: Steps between checkpoints of the state.
CHECKPOINT_EVERY = cpp.CHECKPOINT_EVERY
#: Neurons per program on a GPU, and its warps (one neuron per thread); not tuned.
GPU_BLOCK, GPU_WARPS = 128, 4
#: Under the interpreter a program is a numpy loop: fewer, wider programs run faster.
INTERPRETER_BLOCK = 1024
#: Triton's compilation options: no fused multiply-add (the step's roundings, one by one).
COMPILE_OPTIONS = {"num_warps": GPU_WARPS, "enable_fp_fusion": False}
#: Input dtypes the kernels take; float16 and bfloat16 are computed in float32.
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: Math functions: IR op -> the generated module's helper.
MATH = {
    "exp": "_exp",
    "log": "_log",
    "tanh": "_tanh",
    "expm1": "_expm1",
    "log1p": "_log1p",
    "sin": "_sin",
    "cos": "_cos",
}


class Unsupported(Exception):
    """The traced step has something the Triton emitter does not generate; says what."""


@functools.cache
def unavailable() -> str | None:
    """``None`` where Triton imports, else why not (checked once per process)."""
    try:
        import triton
        import triton.language  # noqa: F401
    except Exception as exc:  # ImportError, or a broken installation
        return f"Triton is not importable ({type(exc).__name__}: {exc})"
    return None


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (``TRITON_INTERPRET``, read as Triton reads
    it: kernels are decorated for the interpreter only if it was set before they were loaded)."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


PRELUDE = """\
import numpy as np
import triton
import triton.language as tl
from triton.language.extra import libdevice

from snn_backend_fused.compiler.triton_emit import interpreting

#: Whether the kernels below run in Triton's interpreter (on CPU tensors, with numpy).
INTERPRETED = interpreting()


# triton.jit for a function the kernels call; under the interpreter the plain function (the
# interpreter re-patches triton.language on every call of a jitted function, about 0.5 ms; the
# plain function runs the same statements under the kernel's patch).
def _device(fn):
    return fn if INTERPRETED else triton.jit(fn)


# a / b, IEEE-rounded: tl.div_rn in float32 (plain / is approximate there on NVIDIA GPUs), / in
# float64 (already IEEE; div_rn takes float32 only).
@_device
def div(a, b):
    result = a / b if a.dtype == tl.float64 else tl.div_rn(a, b)
    return result


# The square root, IEEE-rounded (tl.sqrt_rn takes float32 only; float64's sqrt is IEEE).
@_device
def sqrt(a):
    result = tl.sqrt(a) if a.dtype == tl.float64 else tl.sqrt_rn(a)
    return result


if INTERPRETED:  # no libdevice: numpy's functions, as plain Python on the interpreter's arrays
    from triton.runtime.interpreter import TensorHandle

    def _numpy(fn, x, *rest):
        data = x.handle.data
        result = np.asarray(fn(data, *(r.handle.data for r in rest))).astype(data.dtype)
        return tl.core.tensor(TensorHandle(result, x.handle.dtype), x.type)

    def _exp(x):
        return tl.exp(x)

    def _log(x):
        return tl.log(x)

    def _sin(x):
        return tl.sin(x)

    def _cos(x):
        return tl.cos(x)

    def _tanh(x):
        return _numpy(np.tanh, x)

    def _expm1(x):
        return _numpy(np.expm1, x)

    def _log1p(x):
        return _numpy(np.log1p, x)

    def _pow(x, e):
        return _numpy(np.power, x, e)

else:

    @triton.jit
    def _exp(x):
        return libdevice.exp(x)

    @triton.jit
    def _log(x):
        return libdevice.log(x)

    @triton.jit
    def _sin(x):
        return libdevice.sin(x)

    @triton.jit
    def _cos(x):
        return libdevice.cos(x)

    @triton.jit
    def _tanh(x):
        return libdevice.tanh(x)

    @triton.jit
    def _expm1(x):
        return libdevice.expm1(x)

    @triton.jit
    def _log1p(x):
        return libdevice.log1p(x)

    @triton.jit
    def _pow(x, e):
        return libdevice.pow(x, e)

"""


# -- code generation ------------------------------------------------------------------------------


class _Emitter:
    """Writes one kernel's statements: each node as an expression of its arguments' names, the
    constants it needs (named ``k0``, ``k1``, ... and defined at the kernel's top)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.constants: dict[str, str] = {}

    def const(self, value: float) -> str:
        """The name of ``value`` rounded once to the compute dtype (defined at the kernel's top)."""
        text = repr(float(value))
        if text not in self.constants:
            self.constants[text] = f"k{len(self.constants)}"
        return self.constants[text]

    def constant_lines(self, indent: str) -> list[str]:
        lines = []
        for text, name in self.constants.items():
            literal = text if math.isfinite(float(text)) else f'float("{text}")'
            lines.append(f"{indent}{name} = tl.full([BLOCK], {literal}, CDT)")
        return lines

    def value(self, arg: Arg | None, names: dict[int, str]) -> str:
        if isinstance(arg, Const):
            return self.const(arg.value)
        if arg is None:
            raise Unsupported("a missing argument")
        return names[arg]

    def is_mask(self, arg: Arg | None) -> bool:
        return isinstance(arg, int) and self.graph.nodes[arg].is_mask

    def expression(self, i: int, names: dict[int, str]) -> str:
        """Node ``i`` as a Triton expression: ``cpp._expression``'s semantics, op by op."""
        node = self.graph.nodes[i]
        op, raw = node.op, node.args
        args = [self.value(a, names) if a is not None else "" for a in raw]
        a = args[0] if args else ""
        one, zero = self.const(1.0), self.const(0.0)
        simple = {"add": "+", "sub": "-", "mul": "*"}
        if op in simple:
            return f"({a} {simple[op]} {args[1]})"
        compare = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
        if op in compare:
            return f"({a} {compare[op]} {args[1]})"
        if op in MATH:
            return f"{MATH[op]}({a})"
        if op == "div":
            return f"div({a}, {args[1]})"
        if op == "pow":
            exponent = raw[1]
            if not isinstance(exponent, Const):
                raise Unsupported("pow with a tensor exponent")
            e = exponent.value
            special = {
                0.0: one,
                1.0: a,
                2.0: f"({a} * {a})",
                3.0: f"({a} * {a} * {a})",
                -1.0: f"div({one}, {a})",
                -2.0: f"div({one}, ({a} * {a}))",
                0.5: f"sqrt({a})",
                -0.5: f"div({one}, sqrt({a}))",
            }
            return special[e] if e in special else f"_pow({a}, {self.const(e)})"
        if op == "float":
            return f"tl.where({a}, {one}, {zero})" if self.is_mask(raw[0]) else a
        table = {
            "neg": f"(-{a})",
            "sigmoid": f"div({one}, ({one} + _exp(-{a})))",
            "abs": f"tl.abs({a})",
            "sqrt": f"sqrt({a})",
            "reciprocal": f"div({one}, {a})",
            "relu": f"tl.where({a} > {zero}, {a}, {zero})",
            "square": f"({a} * {a})",
            "spike": f"tl.where({a} > {zero}, {one}, {zero})",
            "detach": a,
            "not": f"(~{a})",
        }
        if op == "sign":
            minus = self.const(-1.0)
            return f"tl.where({a} > {zero}, {one}, tl.where({a} < {zero}, {minus}, {zero}))"
        if op in table:
            return table[op]
        if op in ("and", "or"):
            return f"({a} {'&' if op == 'and' else '|'} {args[1]})"
        if op in ("maximum", "minimum"):
            pick = ">" if op == "maximum" else "<"
            return f"tl.where({a} {pick} {args[1]}, {a}, {args[1]})"
        if op == "where":
            return f"tl.where({a}, {args[1]}, {args[2]})"
        if op == "clamp":
            value = a
            if raw[1] is not None:
                value = f"tl.where({value} < {args[1]}, {args[1]}, {value})"
            if raw[2] is not None:
                value = f"tl.where({value} > {args[2]}, {args[2]}, {value})"
            return value
        raise Unsupported(f"no Triton for op {op!r}")

    def statements(self, nodes: Sequence[int], names: dict[int, str], indent: str) -> list[str]:
        """``v{i} = ...`` for each node (in order), naming them in ``names``."""
        lines = []
        for i in nodes:
            expression = self.expression(i, names)
            names[i] = f"v{i}"
            lines.append(f"{indent}v{i} = {expression}")
        return lines

    def block(self, arg: Arg | None, names: dict[int, str]) -> str:
        """A value as a block of BLOCK compute-dtype lanes (a mask as 0/1, a constant or a
        parameter-only value broadcast; no gradient: zeros)."""
        if arg is None:
            return "tl.zeros([BLOCK], CDT)"
        value = self.value(arg, names)
        if self.is_mask(arg):
            value = f"tl.where({value}, {self.const(1.0)}, {self.const(0.0)})"
        return f"tl.broadcast_to({value}, [BLOCK])"


def _live(graph: Graph, targets: Sequence[Arg | None], stop: set[int] | frozenset[int]) -> set[int]:
    """Nodes the targets need, not looking past the nodes in ``stop`` (values already named)."""
    needed = {t for t in targets if isinstance(t, int)}
    for i in range(len(graph.nodes) - 1, -1, -1):
        if i in needed and i not in stop:
            needed.update(a for a in graph.nodes[i].args if isinstance(a, int))
    return needed


def _computed(graph: Graph, nodes: set[int], exclude: set[int] | frozenset[int]) -> list[int]:
    return sorted(i for i in nodes if graph.nodes[i].op != "input" and i not in exclude)


def _parameter_lines(kinds: Sequence[str], indent: str) -> list[str]:
    lines = []
    for j, kind in enumerate(kinds):
        row = "params" if j == 0 else f"params + {j} * F64"
        if kind == "neuron":
            lines.append(f"{indent}p{j} = tl.load({row} + offs % F64, mask=mask, other=1.0)")
        else:
            lines.append(f"{indent}p{j} = tl.full([BLOCK], tl.load({row}), CDT)")
    return lines


def _tape_row(j: int) -> str:
    """Taped value ``j`` of the current step (``tape_t``: the step's row 0 at our neurons)."""
    return "tape_t" if j == 0 else f"tape_t + {j} * M64"


def _row(base: str, k: int) -> str:
    return f"{base} + offs" if k == 0 else f"{base} + {k} * M64 + offs"


def generate(traced: Traced) -> str:
    """Python source of a module with the ``forward`` and ``backward`` Triton kernels of
    ``traced`` (one source for every input dtype: ``CDT`` picks the compute dtype)."""
    p = cpp.plan(traced)
    graph, backward = p.forward, p.backward
    ns, nt = len(p.states), len(p.tape)
    count = len(graph.nodes)
    outputs = list(graph.outputs)
    if any(isinstance(o, int) and graph.nodes[o].is_mask for o in outputs):
        raise Unsupported("an output or state field is a boolean mask")
    params = {n: f"p{j}" for j, n in enumerate(p.params)}
    static = cpp._static(backward, set(params))  # parameter-only values, forward and backward

    base = {p.x: "xv", **{n: f"s{k}" for k, n in enumerate(p.states)}, **params}
    prologue = [
        "    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
        "    mask = offs < M",
        "    M64 = M.to(tl.int64)",
        "    F64 = F.to(tl.int64)",
    ]
    params_lines = _parameter_lines(traced.kinds, "    ")

    # -- forward ----------------------------------------------------------------------------------
    fe = _Emitter(graph)
    names = dict(base)
    live = _live(graph, outputs, set(base))
    hoisted = fe.statements(_computed(graph, live & static, set(base)), names, "    ")
    body = fe.statements(_computed(graph, live - static, set(base)), names, "            ")
    forward = [
        '@triton.jit(do_not_specialize=("T", "M", "F"))',
        "def forward(",
        "    x, out, state, params, checkpoints, T, M, F,",
        "    SAVE: tl.constexpr, BLOCK: tl.constexpr, K: tl.constexpr, CDT: tl.constexpr,",
        "):  # fmt: skip",
        *prologue,
    ]
    forward_body = [
        *params_lines,
        *hoisted,
        *(f"    s{k} = tl.load({_row('state', k)}, mask=mask, other=0.0)" for k in range(ns)),
        "    x_t = x + offs",
        "    out_t = out + offs",
        "    for c in range(0, (T + K - 1) // K):",
    ]
    if ns:
        forward_body.append("        if SAVE:")
        forward_body += [
            f"            tl.store(checkpoints + (c * {ns} + {k}) * M64 + offs, s{k}, mask=mask)"
            for k in range(ns)
        ]
    forward_body += [
        "        for _j in range(0, tl.minimum(T - c * K, K)):",
        "            xv = tl.load(x_t, mask=mask, other=0.0).to(CDT)",
        *body,
        f"            o = {fe.block(outputs[0], names)}",
        *(f"            n{k} = {fe.block(outputs[1 + k], names)}" for k in range(ns)),
        "            tl.store(out_t, o.to(out.dtype.element_ty), mask=mask)",
        *(f"            s{k} = n{k}" for k in range(ns)),
        "            x_t += M64",
        "            out_t += M64",
        *(f"    tl.store({_row('state', k)}, s{k}, mask=mask)" for k in range(ns)),
    ]
    forward += fe.constant_lines("    ") + forward_body

    # -- backward ---------------------------------------------------------------------------------
    be = _Emitter(backward)
    new_states = outputs[1:]
    # the chunk's recomputation: the new state and the taped values
    recompute_live = _live(graph, [*new_states, *p.tape], set(base)) if nt else set()
    # the vector-Jacobian product: from the taped values, the parameters and the seeds
    bound = dict(params)
    bound.update({n: f"tv{j}" for j, n in enumerate(p.tape)})
    bound[p.seeds[0]] = "go"
    bound.update({n: f"gs{k}" for k, n in enumerate(p.seeds[1:])})
    vjp_live = _live(backward, list(p.grads), set(bound))
    if any(i < count and i not in bound and i not in static for i in vjp_live):
        raise Unsupported("the backward step reads a forward value that is not taped")
    names = dict(params)
    hoisted = be.statements(
        _computed(backward, (recompute_live | vjp_live) & static, set(params)), names, "    "
    )
    vjp_names = {**names, **bound}
    names.update(base)
    recompute = be.statements(
        _computed(graph, recompute_live - static, set(base)), names, "            "
    )
    vjp = be.statements(
        _computed(backward, vjp_live - static, set(bound)), vjp_names, "            "
    )
    step_rows = f"{nt} * M64"
    backward_body = [
        *params_lines,
        *hoisted,
        *(f"    gs{k} = tl.load({_row('grad_state', k)}, mask=mask, other=0.0)" for k in range(ns)),
        "    g_st64 = g_st.to(tl.int64)",
        "    chunks = (T + K - 1) // K",
        "    for i in range(0, chunks):",
        "        c = chunks - 1 - i",
        "        start = c * K",
        "        n = tl.minimum(T - start, K)",
    ]
    if nt:
        backward_body += [
            *(
                f"        s{k} = tl.load(checkpoints + (c * {ns} + {k}) * M64 + offs, "
                "mask=mask, other=0.0)"
                for k in range(ns)
            ),
            "        x_t = x + start.to(tl.int64) * M64 + offs",
            "        tape_t = scratch + offs",
            "        for _j in range(0, n):",
            "            xv = tl.load(x_t, mask=mask, other=0.0).to(CDT)",
            *recompute,
            *(
                f"            tl.store({_tape_row(j)}, {be.block(node, names)}, mask=mask)"
                for j, node in enumerate(p.tape)
            ),
            *(f"            n{k} = {be.block(new_states[k], names)}" for k in range(ns)),
            *(f"            s{k} = n{k}" for k in range(ns)),
            "            x_t += M64",
            f"            tape_t += {step_rows}",
        ]
    backward_body += [
        "        for back in range(0, n):",
        "            t64 = (start + n - 1 - back).to(tl.int64)",
    ]
    if nt:
        backward_body.append(f"            tape_t -= {step_rows}")
    for j, node in enumerate(p.tape):
        load = f"tl.load({_tape_row(j)}, mask=mask, other=0.0)"
        if graph.nodes[node].is_mask:
            load = f"({load} != {be.const(0.0)})"
        backward_body.append(f"            tv{j} = {load}")
    backward_body += [
        "            if HAS_G:",
        "                go = tl.load(g + t64 * g_st64 + offs * g_sn, mask=mask, other=0.0).to(CDT)",
        "            else:",
        "                go = tl.zeros([BLOCK], CDT)",
        *vjp,
        f"            gx = {be.block(p.grads[0], vjp_names)}",
        *(f"            m{k} = {be.block(p.grads[1 + k], vjp_names)}" for k in range(ns)),
        "            tl.store(grad_x + t64 * M64 + offs, gx.to(grad_x.dtype.element_ty), mask=mask)",
        *(f"            gs{k} = m{k}" for k in range(ns)),
        *(f"    tl.store({_row('grad_state', k)}, gs{k}, mask=mask)" for k in range(ns)),
    ]
    backward_lines = [
        '@triton.jit(do_not_specialize=("T", "M", "F", "g_st", "g_sn"))',
        "def backward(",
        "    x, checkpoints, scratch, params, g, grad_state, grad_x, T, M, F, g_st, g_sn,",
        "    HAS_G: tl.constexpr, BLOCK: tl.constexpr, K: tl.constexpr, CDT: tl.constexpr,",
        "):  # fmt: skip",
        *prologue,
        *be.constant_lines("    "),
        *backward_body,
    ]
    header = [
        f'"""Generated by snn_backend_fused.compiler.triton_emit from: {graph.key()[:300]}',
        "",
        f"State fields {ns}, parameters {len(p.params)} ({', '.join(traced.kinds)}), "
        f"taped values {nt}.",
        '"""',
        "",
        "# ruff: noqa",
        "",
    ]
    constants = [f"NS = {ns}", f"NP = {len(p.params)}", f"NT = {nt}", ""]
    return "\n".join([*header, PRELUDE, *constants, "", *forward, "", "", *backward_lines, ""])


# -- loading --------------------------------------------------------------------------------------

_lock = threading.Lock()
_modules: dict[str, ModuleType] = {}


def load(traced: Traced) -> ModuleType:
    """The imported module of ``traced``'s kernels, written to the kernel cache as
    ``gen-triton-<sha>.py`` if not there (or damaged), imported once per process."""
    source = generate(traced)
    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    with _lock:
        found = _modules.get(key)
        if found is not None:
            return found
        directory = build.cache_root()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"gen-triton-{key}.py"
        if not path.exists() or path.read_text() != source:
            tmp = directory / f".gen-triton-{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_text(source)
            os.replace(tmp, path)
        name = f"snn_backend_fused_generated_triton_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        _modules[key] = module
        return module


# -- running a layer ------------------------------------------------------------------------------


@attrs.frozen
class _Call:
    """Everything a launch needs besides the tensors autograd sees."""

    module: Any
    traced: Traced
    params: torch.Tensor  # (NP, F) in the compute dtype, on the input's device
    features: int
    shape: tuple[int, ...]  # the neurons' shape, x.shape[1:]
    dtype: torch.dtype  # the input's
    compute: torch.dtype
    compute_tl: Any
    states: int
    taped: int
    block: int
    warps: int


def _launch_options(call: _Call) -> dict[str, Any]:
    return {
        "BLOCK": call.block,
        "K": CHECKPOINT_EVERY,
        "CDT": call.compute_tl,
        **COMPILE_OPTIONS,
        "num_warps": call.warps,
    }


def _grid(call: _Call) -> tuple[int]:
    return (-(-math.prod(call.shape) // call.block),)


def _forward(
    call: _Call, x: torch.Tensor, fields: Sequence[torch.Tensor], save: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Runs the forward kernel: ``(out, final state (NS, M) in the compute dtype, checkpoints)``."""
    steps, numel = x.shape[0], math.prod(call.shape)
    x = x.detach().contiguous()
    rows = max(call.states, 1)
    state = torch.zeros((rows, numel), dtype=call.compute, device=x.device)
    for row, field in zip(state.unbind(0), fields, strict=False):
        row.copy_(field.detach().expand(call.shape).reshape(numel))
    out = torch.empty_like(x)
    checkpoints = None
    if save and call.states:
        chunks = -(-steps // CHECKPOINT_EVERY)
        checkpoints = torch.empty((chunks, call.states, numel), dtype=call.compute, device=x.device)
    call.module.forward[_grid(call)](
        x,
        out,
        state,
        call.params,
        state if checkpoints is None else checkpoints,  # never written without SAVE
        steps,
        numel,
        call.features,
        SAVE=checkpoints is not None,
        **_launch_options(call),
    )
    return out, state, checkpoints


def _backward(
    call: _Call,
    x: torch.Tensor | None,
    checkpoints: torch.Tensor | None,
    grad_out: torch.Tensor | None,
    grad_fields: Sequence[torch.Tensor | None],
    steps: int,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Runs the backward kernel: the input's gradient and the initial state's (as rows)."""
    numel = math.prod(call.shape)
    device = call.params.device
    grad_state = torch.zeros((max(call.states, 1), numel), dtype=call.compute, device=device)
    for row, grad in zip(grad_state.unbind(0), grad_fields, strict=False):
        if grad is not None:
            row.copy_(grad.detach().expand(call.shape).reshape(numel))
    grad_x = torch.empty((steps, *call.shape), dtype=call.dtype, device=device)
    g, g_st, g_sn = grad_x, 0, 0  # a placeholder pointer when no gradient reaches the output
    if grad_out is not None:
        g = grad_out.detach().to(call.dtype).reshape(steps, numel)
        if g.stride(1) not in (0, 1):
            g = g.contiguous()
        g_st, g_sn = g.stride(0), g.stride(1)
    scratch = grad_x
    if call.taped:
        scratch = torch.empty(
            (min(CHECKPOINT_EVERY, steps), call.taped, numel), dtype=call.compute, device=device
        )
    call.module.backward[_grid(call)](
        grad_x if x is None else x.detach().contiguous(),
        grad_state if checkpoints is None else checkpoints,
        scratch,
        call.params,
        g,
        grad_state,
        grad_x,
        steps,
        numel,
        call.features,
        g_st,
        g_sn,
        HAS_G=grad_out is not None,
        **_launch_options(call),
    )
    return grad_x, list(grad_state.unbind(0))[: call.states]


class _GeneratedTritonLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, call: _Call, x: torch.Tensor, *fields: torch.Tensor) -> Any:  # type: ignore[override]
        ctx.set_materialize_grads(False)
        out, state, checkpoints = _forward(call, x, fields, save=call.taped > 0)
        if call.taped:
            ctx.save_for_backward(x)  # a reference (its version is checked): recomputed from
        ctx.call, ctx.checkpoints, ctx.steps = call, checkpoints, x.shape[0]
        ctx.field_shapes = [f.shape for f in fields]
        return (out, *_final_state(call, state))

    @staticmethod
    @once_differentiable  # the kernel's backward is not itself differentiable
    def backward(ctx: Any, grad_out: torch.Tensor | None, *grad_fields: Any) -> Any:  # type: ignore[override]
        call = ctx.call
        x = ctx.saved_tensors[0] if call.taped else None
        grad_x, rows = _backward(call, x, ctx.checkpoints, grad_out, grad_fields, ctx.steps)
        grads = [
            row.view(call.shape).to(call.dtype).sum_to_size(shape)
            for row, shape in zip(rows, ctx.field_shapes, strict=True)
        ]
        return (None, grad_x if ctx.needs_input_grad[1] else None, *grads)


def _final_state(call: _Call, state: torch.Tensor) -> list[torch.Tensor]:
    """The final state rows as separate tensors of the neurons' shape in the input's dtype."""
    rows = [row.view(call.shape) for row in state.unbind(0)][: call.states]
    if call.compute == call.dtype:
        return [row.clone() for row in rows]  # separate storages, as the eager step's
    return [row.to(call.dtype) for row in rows]


def _interpreted(module: Any) -> bool:
    return type(module.forward).__name__ == "InterpretedFunction"


def decline(
    model: Any, x: torch.Tensor, state: Any, p: Any, record_states: bool = False
) -> str | None:
    """Why the generated Triton kernel does not run this call (then another path does), or
    ``None``."""
    if record_states:
        return "record_states=True needs every step's state"
    why = unavailable()
    if why is not None:
        return f"the generated CUDA kernels need Triton: {why}"
    if x.device.type != "cuda" and not (x.device.type == "cpu" and interpreting()):
        return f"the generated Triton kernels run on CUDA (or the CPU under Triton's interpreter), not {x.device.type}"
    if x.dtype not in DTYPES:
        return f"the generated Triton kernels run float16, bfloat16, float32 and float64, not {x.dtype}"
    if x.dim() < 2:
        return "the input has no batch dimension"
    if x.shape[0] == 0 or x[0].numel() == 0:
        return "the input is empty"
    if x.device.type == "cuda" and torch.is_autocast_enabled("cuda"):
        return "CUDA autocast is on"
    for name, value in tensor_items(p):
        if value.requires_grad and torch.is_grad_enabled():
            return f"parameter {name} needs a gradient"
        if value.dtype != x.dtype:
            return f"parameter {name} is {value.dtype}, the input {x.dtype}"
        if value.device != x.device and value.numel() != 1:
            return f"parameter {name} is on {value.device}, the input on {x.device}"
    for value in torch.utils._pytree.tree_leaves(state):
        if not isinstance(value, torch.Tensor) or value.dtype != x.dtype:
            return "a state field of another dtype"
        if value.device != x.device:
            return "a state field on another device"
        if torch.broadcast_shapes(value.shape, x.shape[1:]) != x.shape[1:]:
            return "a state field that does not match the input's shape"
    return None


_prepared: dict[int, tuple[Traced, ModuleType, int]] = {}


def _prepare(traced: Traced) -> tuple[ModuleType, int]:
    """The loaded module of ``traced`` and its tape's length (remembered per trace)."""
    found = _prepared.get(id(traced))
    if found is None or found[0] is not traced:
        found = (traced, load(traced), len(cpp.plan(traced).tape))
        _prepared[id(traced)] = found
    return found[1], found[2]


def run_layer(
    model: Any, x: torch.Tensor, state: Any, p: Any, dt: float, record_states: bool = False
) -> tuple[torch.Tensor, Any] | str:
    """The layer through its generated Triton kernel, or the reason it declines."""
    reason = decline(model, x, state, p, record_states)
    if reason is not None:
        return reason
    from snn_backend_fused.compiler import kernel

    features = tuple(x.shape[2:])
    traced = kernel.trace_layer(model, p, dt, features)
    if isinstance(traced, str):
        return traced
    try:
        module, taped = _prepare(traced)
    except Unsupported as exc:
        return f"its step has no Triton kernel: {exc}"
    except (OSError, SyntaxError, ImportError) as exc:
        return f"its generated Triton kernel does not load: {type(exc).__name__}: {exc}"
    interpreted = _interpreted(module)
    if x.device.type == "cpu" and not interpreted:
        return "the generated Triton kernels take CPU tensors only under Triton's interpreter"
    import triton.language as tl

    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    numel, count = x[0].numel(), math.prod(features)
    values = [v for _, v in tensor_items(p)]
    if traced.dt_input:
        values.append(torch.tensor(float(dt), dtype=torch.float64))
    packed = torch.empty((max(len(values), 1), count), dtype=compute, device=x.device)
    for j, (value, kind) in enumerate(zip(values, traced.kinds, strict=True)):
        value = value.detach()
        if j < len(values) - traced.dt_input:  # a parameter: as the step sees it, in x's dtype
            value = value.to(x.dtype)
        value = value.to(device=x.device, dtype=compute)  # exact: x's dtype is a subset
        packed[j] = value.reshape(-1) if kind == "neuron" else value.reshape(())
    call = _Call(
        module=module,
        traced=traced,
        params=packed,
        features=count,
        shape=tuple(x.shape[1:]),
        dtype=x.dtype,
        compute=compute,
        compute_tl=tl.float64 if compute == torch.float64 else tl.float32,
        states=len(traced.state_fields),
        taped=taped,
        block=min(INTERPRETER_BLOCK, _next_power_of_2(numel)) if interpreted else GPU_BLOCK,
        warps=GPU_WARPS,
    )
    flat, tree = torch.utils._pytree.tree_flatten(state)
    device = torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()
    try:
        with device:
            if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *flat)):
                out, *final = _GeneratedTritonLayer.apply(call, x, *flat)
            else:
                out, rows, _ = _forward(call, x, flat, save=False)
                final = _final_state(call, rows)
    except Exception as exc:  # a kernel Triton cannot compile: another path runs the call
        if type(exc).__module__.startswith("triton.compiler"):
            first = str(exc).strip().splitlines()
            return f"its generated Triton kernel does not compile: {first[0] if first else type(exc).__name__}"
        raise
    return out, torch.utils._pytree.tree_unflatten(final, tree)


def _next_power_of_2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())
