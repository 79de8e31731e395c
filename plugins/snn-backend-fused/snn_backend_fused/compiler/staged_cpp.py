"""C++ for staged steps (:mod:`.stages`): per batch row and step, each stage's matrix products
(dense, one explicitly vectorised ``axpy`` per column) and then its elementwise nodes on SIMD
blocks of neurons, the per-synapse stage last (for each presynaptic neuron, vectors of
postsynaptic ones); the new state is written after the last stage.

Backward walks the steps in reverse and the stages in reverse within a step: each stage's
vector-Jacobian product (derived from its graph with :func:`.ir.differentiate`, the forward
values recomputed from the stage's saved inputs) adds to the gradients of its inputs; a matrix
product's gradient is ``Aᵀ·g`` for its argument and ``Σ_t g ⊗ a`` for the matrix (one matrix
product in PyTorch).  The forward pass saves every step's state, rows and per-synapse fields
when a gradient is needed.

Exported per dtype: ``snngs_forward_<d>`` and ``snngs_backward_<d>``.
"""

from __future__ import annotations

from snn_backend_fused.compiler.cpp import _body, assemble, math_ops
from snn_backend_fused.compiler.stages import Source, Stage, Staging, analyse
from snn_backend_fused.compiler.trace import Traced


def _loads(stage: Stage, traced: Traced, staging: Staging) -> tuple[list[str], dict[int, str]]:
    """Statements loading a block's inputs of ``stage`` (lane group ``u``), and their names."""
    channels, ns = traced.channels, len(traced.state_fields)
    inputs = stage.forward.inputs()
    lines, bind = [], {}
    for position, node in enumerate(inputs):
        if position < channels:
            lines.append(f"    const V x{position} = load(cur + {position} * HP + at);")
            bind[node] = f"x{position}"
        elif position < channels + ns:
            k = position - channels
            lines.append(f"    const V s{k} = load(st + {k} * HP + at);")
            bind[node] = f"s{k}"
        elif position < len(traced.graph.inputs()):
            bind[node] = f"p[{position - channels - ns}][u]"
        else:
            r = stage.row_ins[position - len(traced.graph.inputs())]
            loaded = f"load(rows + {r} * HP + at)"
            kind, value = ("M", f"bits({loaded})") if staging.masks[r] else ("V", loaded)
            lines.append(f"    const {kind} r{r} = {value};")
            bind[node] = f"r{r}"
    return lines, bind


def _stage_functions(k: int, stage: Stage, traced: Traced, staging: Staging) -> str:
    lines, bind = _loads(stage, traced, staging)
    outs = [
        (f"const V w{r}", node)
        for r, node in zip(stage.row_outs, stage.forward.outputs, strict=True)
    ]
    body = _body(stage.forward, bind, [], taped=outs)
    stores = [f"    store(rows + {r} * HP + at, w{r});" for r in stage.row_outs]
    forward = (
        f"SNNG_HOT void forward{k}(const S* cur, const S* st, S* rows, int64_t HP, "
        f"int64_t i, V (&p)[NP1][U]) {{\n  for (int u = 0; u < U; ++u) {{\n"
        f"    const int64_t at = i + u * L;\n"
        + "\n".join(lines)
        + "\n"
        + _indent(body)
        + "\n"
        + "\n".join(stores)
        + "\n  }\n}\n"
    )
    vjp_bind = dict(bind)
    seed_lines = []
    for r, seed in zip(
        stage.row_outs, stage.backward.inputs()[len(stage.forward.inputs()) :], strict=True
    ):
        seed_lines.append(f"    const V gw{r} = load(gr + {r} * HP + at);")
        vjp_bind[seed] = f"gw{r}"
    channels, ns = traced.channels, len(traced.state_fields)
    targets = (
        [f"gcur + {c} * HP + at" for c in range(channels)]
        + [f"gst + {k2} * HP + at" for k2 in range(ns)]
        + [f"gr + {r} * HP + at" for r in stage.row_ins]
    )
    outputs = [(f"const V d{n}", grad) for n, grad in enumerate(stage.grads) if grad is not None]
    body = _body(stage.backward, vjp_bind, outputs)
    accumulate = [
        f"    store({targets[n]}, load({targets[n]}) + d{n});"
        for n, grad in enumerate(stage.grads)
        if grad is not None
    ]
    backward = (
        f"SNNG_HOT void backward{k}(const S* cur, const S* st, const S* rows, S* gr, "
        f"S* gst, S* gcur, int64_t HP, int64_t i, V (&p)[NP1][U]) {{\n"
        f"  for (int u = 0; u < U; ++u) {{\n    const int64_t at = i + u * L;\n"
        + "\n".join(lines + seed_lines)
        + "\n"
        + _indent(body)
        + "\n"
        + "\n".join(accumulate)
        + "\n  }\n}\n"
    )
    return forward + backward


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def _pointer(where: Source, prefix: str = "") -> str:
    """The row of ``where`` in the kernel's buffers (``prefix``: the gradient buffers)."""
    kind, index = where
    names = {"x": "cur", "state": "st", "row": "rows"}
    if prefix:
        names = {"x": "gcur", "state": "gst", "row": "gr"}
    return f"{names[kind]} + {index} * HP"


def _fill(where: Source, target: str) -> str:
    """C++ setting ``target[0:H]`` to the value of ``where``."""
    kind, index = where
    if kind == "const":
        return f"for (int64_t i = 0; i < H; ++i) {target}[i] = (S){index!r};"
    if kind == "param":
        return (
            f"for (int64_t i = 0; i < H; ++i) {target}[i] = per_neuron[{index}] ? "
            f"tile.pn[{index} * HP + i] : params[{index}][0];"
        )
    return f"std::memcpy({target}, {_pointer(where)}, H * sizeof(S));"


STAGED_EXPORTS = r"""
}  // namespace snng_@D@

// The padded row length of the staged kernels for H neurons (the layout of their buffers).
SNNG_EXPORT int64_t snngs_row_@D@(int64_t H) {
  using namespace snng_@D@;
  return (H + BL - 1) / BL * BL;
}

// Staged recurrent layers (compiler/stages.py, staged_cpp.py): per batch row and step, the current
// channels xw[t] + W_eff·z_{t-1} (z: state field ZF; only the spiking columns are added; wt is
// W_eff transposed, row j = column j), then per stage its matrix products and its elementwise
// nodes.  mats_t[m] is A_m transposed (forward), mats[m] is A_m (backward); they, wt and w have
// rows of HP values (padded with zeros: snngs_row_<d>(H)), so that every axpy runs whole
// vectors.  With a gradient wanted, every step's state, rows and per-synapse fields are saved
// as the kernel holds them (padded rows, one copy per step: (T, B, NS, HP), (T, B, NR, HP),
// (T, B, NSY, H, HP)), and each product's argument to mv_args (T, NM, B, H).
SNNG_EXPORT int snngs_forward_@D@(int64_t T, int64_t B, int64_t H, const @S@* xw, const @S@* wt,
                                  const @S@* const* mats_t, @S@* const* state,
                                  const @S@* const* params, const int64_t* per_neuron, @S@* out,
                                  @S@* currents, @S@* zprev, @S@* saved_states, @S@* saved_rows,
                                  @S@* mv_args, @S@* saved_syn, int threads) {
  using namespace snng_@D@;
  const int64_t HP = (H + BL - 1) / BL * BL, CH = NC * H;
#pragma omp parallel num_threads(threads)
  {
    S* buffer = new S[(NS + NP + NC + NR1 + NS) * HP + NSY * H * HP + 1]();
    Tile tile{0, 0, HP, buffer, buffer + NS * HP};
    S* st = tile.st;
    S* cur = buffer + (NS + NP) * HP;
    S* rows = cur + NC * HP;
    S* next = rows + NR1 * HP;
    S* syn = next + NS * HP;  // the per-synapse fields: [NSY][H pre][HP post]
    V p[NP1][U];
@SCALAR_PARAMS@
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      for (int k = 0; k < NS; ++k)
        if (!IS_SYN[k])
          for (int64_t i = 0; i < HP; ++i) st[k * HP + i] = i < H ? state[k][b * H + i] : (S)0;
      for (int k = 0; k < NSY; ++k)
        for (int64_t i = 0; i < H; ++i)
          std::memcpy(syn + (k * H + i) * HP, state[SYN[k]] + (b * H + i) * H, H * sizeof(S));
      for (int j = 0; j < NP; ++j)
        if (per_neuron[j])
          for (int64_t i = 0; i < HP; ++i) tile.pn[j * HP + i] = params[j][i < H ? i : H - 1];
      for (int64_t i = 0; i < NR1 * HP; ++i) rows[i] = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t row = t * B + b;
        if (saved_states) std::memcpy(saved_states + row * NS * HP, st, NS * HP * sizeof(S));
        if (zprev) std::memcpy(zprev + row * H, st + ZF * HP, H * sizeof(S));
        for (int c = 0; c < NC; ++c)
          for (int64_t i = 0; i < HP; ++i) cur[c * HP + i] = i < H ? xw[row * CH + c * H + i] : (S)0;
        for (int64_t j = 0; j < H; ++j) {
          const S zj = st[ZF * HP + j];
          if (zj != (S)0) axpy(cur, zj, wt + j * NC * HP, NC * HP);
        }
        if (currents)
          for (int c = 0; c < NC; ++c)
            std::memcpy(currents + row * CH + c * H, cur + c * HP, H * sizeof(S));
@FORWARD_STAGES@
@SYNAPSE_FORWARD@
@RESULTS@
        if (saved_rows) std::memcpy(saved_rows + row * NR * HP, rows, NR * HP * sizeof(S));
      }
      for (int k = 0; k < NS; ++k)
        if (!IS_SYN[k]) std::memcpy(state[k] + b * H, st + k * HP, H * sizeof(S));
      for (int k = 0; k < NSY; ++k)
        for (int64_t i = 0; i < H; ++i)
          std::memcpy(state[SYN[k]] + (b * H + i) * H, syn + (k * H + i) * HP, H * sizeof(S));
    }
    delete[] buffer;
  }
  return 0;
}

// Backward: grad_current (T, B, C·H) receives the gradient of each step's current channels,
// mv_grads (T, NM, B, H) that of each product's result (W_eff's and A_m's gradients are one
// matrix product each, outside).
SNNG_EXPORT int snngs_backward_@D@(int64_t T, int64_t B, int64_t H, const @S@* currents,
                                   const @S@* w, const @S@* const* mats,
                                   const @S@* saved_states, const @S@* saved_rows,
                                   const @S@* saved_syn,
                                   const @S@* const* params, const int64_t* per_neuron,
                                   const @S@* grad_out, @S@* const* grad_state,
                                   @S@* grad_current, @S@* mv_grads, int threads) {
  using namespace snng_@D@;
  const int64_t HP = (H + BL - 1) / BL * BL, CH = NC * H;
#pragma omp parallel num_threads(threads)
  {
    S* buffer = new S[(NS + NP + NC + NR1 + NS + NS + NC + NR1 + 1) * HP + 2 * NSY * H * HP + 1]();
    Tile tile{0, 0, HP, buffer, buffer + NS * HP};
    S* st = tile.st;
    S* cur = buffer + (NS + NP) * HP;
    S* rows = cur + NC * HP;
    S* g = rows + NR1 * HP;      // gradient of the state after step t
    S* gst = g + NS * HP;        // ... of the state before it
    S* gcur = gst + NS * HP;
    S* gr = gcur + NC * HP;
    S* go = gr + NR1 * HP;
    S* syn = go + HP;             // the per-synapse fields before step t
    S* gsyn = syn + NSY * H * HP;  // ... and the gradient of them after it
    V p[NP1][U];
@SCALAR_PARAMS@
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      for (int k = 0; k < NS; ++k)
        if (!IS_SYN[k])
          for (int64_t i = 0; i < HP; ++i) g[k * HP + i] = i < H ? grad_state[k][b * H + i] : (S)0;
      for (int k = 0; k < NSY; ++k)
        for (int64_t i = 0; i < H; ++i)
          std::memcpy(gsyn + (k * H + i) * HP, grad_state[SYN[k]] + (b * H + i) * H,
                      H * sizeof(S));
      for (int j = 0; j < NP; ++j)
        if (per_neuron[j])
          for (int64_t i = 0; i < HP; ++i) tile.pn[j * HP + i] = params[j][i < H ? i : H - 1];
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t row = t * B + b;
        std::memcpy(st, saved_states + row * NS * HP, NS * HP * sizeof(S));
        if (NR) std::memcpy(rows, saved_rows + row * NR * HP, NR * HP * sizeof(S));
        for (int c = 0; c < NC; ++c)
          std::memcpy(cur + c * HP, currents + row * CH + c * H, H * sizeof(S));
        for (int64_t i = 0; i < (NS + NC + NR1) * HP; ++i) gst[i] = 0;  // gst, gcur, gr
        std::memcpy(go, grad_out + row * H, H * sizeof(S));
@SEEDS@
@SYNAPSE_BACKWARD@
@BACKWARD_STAGES@
        // z_{t-1} fed the current through W_eff: its gradient gains W_effᵀ·gcur
        for (int c = 0; c < NC; ++c)
          for (int64_t i = 0; i < H; ++i) {
            const S gi = gcur[c * HP + i];
            if (gi != (S)0) axpy(gst + ZF * HP, gi, w + (c * H + i) * HP, HP);
          }
        for (int c = 0; c < NC; ++c)
          std::memcpy(grad_current + row * CH + c * H, gcur + c * HP, H * sizeof(S));
        std::memcpy(g, gst, NS * HP * sizeof(S));
      }
      for (int k = 0; k < NS; ++k)
        if (!IS_SYN[k]) std::memcpy(grad_state[k] + b * H, g + k * HP, H * sizeof(S));
      for (int k = 0; k < NSY; ++k)
        for (int64_t i = 0; i < H; ++i)
          std::memcpy(grad_state[SYN[k]] + (b * H + i) * H, gsyn + (k * H + i) * HP,
                      H * sizeof(S));
    }
    delete[] buffer;
  }
  return 0;
}
"""


def _synapse_functions(traced: Traced, staging: Staging) -> str:
    """``synapse_forward`` (the per-synapse fields updated in place) and ``synapse_backward``
    (their gradient replaced by the old fields' one; the views' gradients added: a ``pre``
    view's summed over the row, a ``post`` view's over the rows)."""
    stage = staging.synapse
    assert stage is not None
    nsy, nv = len(traced.synapse_fields), len(stage.views)
    inputs = stage.forward.inputs()
    bind: dict[int, str] = {}
    splats, loads = [], []
    for k in range(nsy):
        loads.append(f"      const V y{k} = load(syn + {k} * HH + at);")
        bind[inputs[k]] = f"y{k}"
    for n, (kind, _) in enumerate(stage.views):
        bind[inputs[nsy + n]] = f"q{n}"
        if kind == "pre":
            splats.append(f"    const V q{n} = splat(view[{n}][i]);")
        else:
            loads.append(f"      const V q{n} = load(view[{n}] + j);")
    for j in range(len(traced.kinds)):
        bind[inputs[nsy + nv + j]] = f"p[{j}][0]"
    outs = [(f"const V w{k}", node) for k, node in enumerate(stage.forward.outputs)]
    body = _indent(_indent(_body(stage.forward, bind, [], taped=outs)))
    stores = [f"      store(syn + {k} * HH + at, w{k});" for k in range(nsy)]
    head = "  const int64_t HH = H * HP;\n  for (int64_t i = 0; i < H; ++i) {\n"
    loop = "    for (int64_t j = 0; j < HP; j += L) {\n      const int64_t at = i * HP + j;\n"
    forward = (
        "SNNG_HOT void synapse_forward(S* syn, const S* const* view, int64_t H, "
        "int64_t HP, V (&p)[NP1][U]) {\n"
        + head
        + "\n".join(splats)
        + "\n"
        + loop
        + "\n".join(loads)
        + "\n"
        + body
        + "\n"
        + "\n".join(stores)
        + "\n    }\n  }\n}\n"
    )
    vjp_bind = dict(bind)
    seeds = stage.backward.inputs()[len(inputs) :]
    for k, seed in enumerate(seeds):
        loads.append(f"      const V gy{k} = load(gsyn + {k} * HH + at);")
        vjp_bind[seed] = f"gy{k}"
    outputs = [(f"const V d{n}", g) for n, g in enumerate(stage.grads) if g is not None]
    body = _indent(_indent(_body(stage.backward, vjp_bind, outputs)))
    after = []
    for k in range(nsy):
        value = f"d{k}" if stage.grads[k] is not None else "splat((S)0)"
        after.append(f"      store(gsyn + {k} * HH + at, {value});")
    sums = []
    for n, (kind, _) in enumerate(stage.views):
        grad = stage.grads[nsy + n]
        if grad is None:
            continue
        masked = f"sel(valid, d{nsy + n}, splat((S)0))"
        if kind == "pre":
            splats.append(f"    V acc{n} = splat((S)0);")
            after.append(f"      acc{n} = acc{n} + {masked};")
            sums.append(f"    add_lane_sum(gview[{n}] + i, acc{n});")
        else:
            after.append(f"      store(gview[{n}] + j, load(gview[{n}] + j) + {masked});")
    backward = (
        "SNNG_HOT void synapse_backward(const S* syn, S* gsyn, const S* const* view, "
        "S* const* gview, int64_t H, int64_t HP, V (&p)[NP1][U]) {\n"
        "  V iota;\n  for (int l = 0; l < L; ++l) iota[l] = (S)l;\n"
        + head
        + "\n".join(splats)
        + "\n"
        + loop
        + "      const M valid = (iota + splat((S)j)) < splat((S)H);\n"
        + "\n".join(loads)
        + "\n"
        + body
        + "\n"
        + "\n".join(after)
        + "\n    }\n"
        + "\n".join(sums)
        + "\n  }\n}\n"
    )
    return forward + backward


def _synapse_calls(staging: Staging, traced: Traced) -> tuple[str, str]:
    """The forward and the backward call sites of the synapse stage ('' without one)."""
    stage = staging.synapse
    if stage is None:
        return "", ""
    views = ", ".join(_pointer(where) for _, where in stage.views) or "nullptr"
    grads = ", ".join(_pointer(where, prefix="g") for _, where in stage.views) or "nullptr"
    forward = (
        "        if (saved_syn)\n"
        "          std::memcpy(saved_syn + (t * B + b) * NSY * H * HP, syn, NSY * H * HP * sizeof(S));\n"
        f"        {{ const S* view[] = {{{views}}}; synapse_forward(syn, view, H, HP, p); }}"
    )
    backward = (
        "        std::memcpy(syn, saved_syn + (t * B + b) * NSY * H * HP, NSY * H * HP * sizeof(S));\n"
        f"        {{ const S* view[] = {{{views}}}; S* gview[] = {{{grads}}};\n"
        "          synapse_backward(syn, gsyn, view, gview, H, HP, p); }"
    )
    return forward, backward


def _forward_stages(staging: Staging) -> str:
    lines = []
    for k, _stage_ in enumerate(staging.stages):
        for m, product in enumerate(staging.products):
            if product.level != k:
                continue
            argument = _pointer(product.source)
            lines += [
                f"        if (mv_args) std::memcpy(mv_args + ((t * NM + {m}) * B + b) * H, "
                f"{argument}, H * sizeof(S));",
                f"        for (int64_t i = 0; i < HP; ++i) rows[{product.row} * HP + i] = 0;",
                f"        for (int64_t j = 0; j < H; ++j) axpy(rows + {product.row} * HP, "
                f"({argument})[j], mats_t[{m}] + j * HP, HP);",
            ]
        if _stage_.forward.outputs:
            lines += [
                "        for (int64_t i = 0; i < H; i += BL) {",
                "          load_neuron_parameters(p, tile.pn, HP, i);",
                f"          forward{k}(cur, st, rows, HP, i, p);",
                "        }",
            ]
    return "\n".join(lines)


def _results(staging: Staging) -> str:
    out, *states = staging.outputs
    lines = ["        " + _fill(out, "(out + row * H)")]
    for k, where in enumerate(states):
        if where[0] != "synapse":  # updated in place by the synapse stage
            lines.append("        " + _fill(where, f"(next + {k} * HP)"))
    lines.append("        std::memcpy(st, next, NS * HP * sizeof(S));")
    return "\n".join(lines)


def _seeds(staging: Staging) -> str:
    """The gradients of the step's output and new state fields, added where they came from."""
    lines = []
    out, *states = staging.outputs
    for where, seed in [(out, "go"), *((s, f"(g + {k} * HP)") for k, s in enumerate(states))]:
        if where[0] in ("x", "state", "row"):
            target = _pointer(where, prefix="g")
            lines.append(f"        axpy({target}, (S)1, {seed}, H);")
    return "\n".join(lines)


def _backward_stages(staging: Staging) -> str:
    lines = []
    for k in range(len(staging.stages) - 1, -1, -1):
        if staging.stages[k].forward.outputs:
            lines += [
                "        for (int64_t i = 0; i < H; i += BL) {",
                "          load_neuron_parameters(p, tile.pn, HP, i);",
                f"          backward{k}(cur, st, rows, gr, gst, gcur, HP, i, p);",
                "        }",
            ]
        for m, product in enumerate(staging.products):
            if product.level != k:
                continue
            result = f"gr + {product.row} * HP"
            target = _pointer(product.source, prefix="g")
            lines += [
                f"        if (mv_grads) std::memcpy(mv_grads + ((t * NM + {m}) * B + b) * H, "
                f"{result}, H * sizeof(S));",
                "        for (int64_t i = 0; i < H; ++i)",
                f"          if (({result})[i] != (S)0) axpy({target}, ({result})[i], "
                f"mats[{m}] + i * HP, HP);",
            ]
    return "\n".join(lines)


def generate(traced: Traced, libmvec: set[str], spikes_field: int | None) -> str:
    """C++ of the staged recurrent kernels of ``traced`` (float32 and float64)."""
    if spikes_field is None:
        raise ValueError("staged kernels are recurrent: they need the spikes' state field")
    staging = analyse(traced)
    functions = "\n".join(
        _stage_functions(k, stage, traced, staging)
        for k, stage in enumerate(staging.stages)
        if stage.forward.outputs
    )
    ns = len(traced.state_fields)
    synapse_fields = list(traced.synapse_fields)
    flags = ", ".join("true" if k in synapse_fields else "false" for k in range(ns)) or "false"
    constants = (
        f"constexpr int NC = {traced.channels}, NR = {len(staging.rows)}, "
        f"NR1 = NR > 0 ? NR : 1, NM = {len(staging.products)}, ZF = {spikes_field};\n"
        f"constexpr int NSY = {len(synapse_fields)};\n"
        f"constexpr bool IS_SYN[] = {{{flags}}};\n"
        f"constexpr int SYN[] = {{{', '.join(map(str, synapse_fields)) or '0'}}};\n"
    )
    if staging.synapse is not None:
        functions += "\n" + _synapse_functions(traced, staging)
    synapse_forward, synapse_backward = _synapse_calls(staging, traced)
    exports = (
        STAGED_EXPORTS.replace("@FORWARD_STAGES@", _forward_stages(staging))
        .replace("@RESULTS@", _results(staging))
        .replace("@SEEDS@", _seeds(staging))
        .replace("@BACKWARD_STAGES@", _backward_stages(staging))
        .replace("@SYNAPSE_FORWARD@", synapse_forward)
        .replace("@SYNAPSE_BACKWARD@", synapse_backward)
    )
    needed: set[str] = set()
    for stage in staging.stages:
        needed |= math_ops(stage.backward)
    if staging.synapse is not None:
        needed |= math_ops(staging.synapse.backward)
    return assemble(traced, constants + functions + exports, {}, needed, libmvec)
