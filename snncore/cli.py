"""The ``snn`` command line.  Plugins add sub-commands through the ``register_commands`` hook.

Expected errors (unknown or conflicting names, bad options, a backend that cannot run a model)
print one line and exit non-zero (2 for names and usage); no traceback reaches the user.  The JSON
printed by ``--json`` is documented in docs/cli-json.md.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click

from snncore.cli_nir import nir_group
from snncore.plugins import get_manager
from snncore.registry import NameConflictError, UnknownNameError, describe

SCHEMA_VERSION = 1


class NameLookupError(click.ClickException):
    """An unknown or ambiguous name: exit code 2, like a usage error, without the usage text."""

    exit_code = 2


class SNNGroup(click.Group):
    """Turns the library's expected errors into one-line messages with the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UnknownNameError, NameConflictError) as exc:
            raise NameLookupError(str(exc)) from None
        except (ValueError, TypeError, RuntimeError) as exc:
            from snncore.backends import BackendUnavailableError

            if isinstance(exc, BackendUnavailableError):
                raise click.ClickException(str(exc)) from None
            raise
        except ImportError as exc:
            from snncore.plot import PlotUnavailableError

            if isinstance(exc, PlotUnavailableError):  # an optional extra is missing: exit 2
                raise NameLookupError(str(exc)) from None
            raise


@click.group(cls=SNNGroup)
@click.version_option(package_name="snncore", prog_name="snn")
def cli() -> None:
    """snncore: spiking neural networks on PyTorch, a small core plus plugins."""


def _echo_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps({"schema_version": SCHEMA_VERSION, **payload}, indent=2, default=str))


def _echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[k]) for r in cells)) for k, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _warn_conflicts(kind: str) -> list[dict[str, Any]]:
    conflicts = []
    for name, providers in get_manager().registry(kind).conflicts().items():
        dists = [f"{p.distribution} {p.version}" for p in providers]
        click.echo(
            f"warning: {kind} {name!r} is registered by {' and '.join(dists)}; "
            f"use the qualified name ({', '.join(p.plugin + ':' + name for p in providers)})",
            err=True,
        )
        conflicts.append(
            {"name": name, "plugins": [p.plugin for p in providers], "distributions": dists}
        )
    return conflicts


def _warn_failed_plugins() -> None:
    """One stderr line when plugins failed, so that a listing never hides a missing plugin."""
    manager = get_manager()
    manager.build_all()  # run every hook, so that hook failures count too
    failed = manager.failed()
    if failed:
        count = len(failed)
        click.echo(
            f"warning: {count} plugin{'s' if count > 1 else ''} failed to load "
            f"({', '.join(r.name for r in failed)}); run `snn plugins` to see why",
            err=True,
        )


def _entry_row(entry: Any) -> dict[str, Any]:
    p = entry.provider
    return {
        "name": entry.name,
        "qualified_name": f"{p.plugin}:{entry.name}",
        "aliases": list(entry.aliases),
        "plugin": p.plugin,
        "distribution": p.distribution,
        "version": p.version,
        "summary": describe(entry.obj),
    }


def _model_row(entry: Any) -> dict[str, Any]:
    from snncore.backends import backends_supporting

    model = entry.obj
    loop_variant = next(
        (v for v in model.variants if v in ("layer", "recurrent")), model.variants[0]
    )
    backends = backends_supporting(model, loop_variant)
    # how each backend runs it: its route, e.g. fused: "kernel" or "generic", torch: "sequence"
    implementations = {b.name: b.route(model, loop_variant).name for b in backends}
    return {
        **_entry_row(entry),
        "family": model.family,
        "variants": list(model.variants),
        "backends": [b.name for b in backends],
        "backend_implementations": implementations,
        "output": model.output,
        "dist": f"{entry.provider.distribution} {entry.provider.version}",
    }


def _backends_cell(row: dict[str, Any]) -> str:
    """``fused(kernel),torch``: each backend, with how it runs the model where it says."""
    how = row["backend_implementations"]
    return ",".join(f"{n}({how[n]})" if n in how else n for n in row["backends"])


@cli.command("list-models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema in docs/cli-json.md).")
@click.option("--family", help="Only models of this family.")
@click.option("--backend", help="Only models this backend runs.")
def list_models_command(as_json: bool, family: str | None, backend: str | None) -> None:
    """Every neuron model the installed plugins provide."""
    if backend is not None:
        get_manager().registry("backend").entry(backend)  # unknown backend -> exit 2
    rows = [_model_row(e) for e in get_manager().registry("model").entries()]
    rows = [r for r in rows if (family is None or r["family"] == family)]
    rows = [r for r in rows if (backend is None or backend in r["backends"])]
    conflicts = _warn_conflicts("model")
    _warn_failed_plugins()
    if as_json:
        for r in rows:
            r.pop("dist")
        _echo_json({"models": rows, "conflicts": conflicts})
    else:
        shown = [{**r, "backends": _backends_cell(r)} for r in rows]
        _echo_table(shown, ["name", "family", "dist", "variants", "backends", "summary"])


def _list_command(kind: str, help_text: str, extra: tuple[str, ...] = ()) -> None:
    @cli.command(f"list-{kind}s", help=help_text)
    @click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (schema in docs/cli-json.md)."
    )
    def command(as_json: bool) -> None:
        rows = []
        for entry in get_manager().registry(kind).entries():
            row = _entry_row(entry)
            row.update({k: getattr(entry.obj, k, None) for k in extra})
            row["dist"] = f"{row['distribution']} {row['version']}"
            rows.append(row)
        conflicts = _warn_conflicts(kind)
        _warn_failed_plugins()
        if as_json:
            for r in rows:
                r.pop("dist")
            _echo_json({f"{kind}s": rows, "conflicts": conflicts})
        else:
            _echo_table(rows, ["name", "aliases", *extra, "dist", "summary"])


_list_command("backend", "Every execution backend.", ("priority",))
_list_command("encoder", "Every encoder (analogue input -> spike trains).")
_list_command("surrogate", "Every surrogate gradient, usable as a model's `method`.", ("formula",))
_list_command("task", "Every training task (`snn train TASK`).")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema in docs/cli-json.md).")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show each failure's traceback.")
def plugins_command(as_json: bool, show_traceback: bool) -> None:
    """Each discovered plugin: distribution, version, status (loaded/failed/disabled), error."""
    manager = get_manager()
    for kind in ("model", "backend", "encoder", "surrogate", "task"):
        manager.registry(kind)  # run the hooks, so that hook failures are recorded too
    rows = [
        {
            "name": r.name,
            "distribution": r.distribution,
            "version": r.version,
            "status": r.status,
            "builtin": r.builtin,
            "error": r.error,
        }
        for r in manager.records.values()
    ]
    if as_json:
        _echo_json({"plugins": rows})
        return
    _echo_table(rows, ["name", "distribution", "version", "status", "error"])
    if show_traceback:
        for r in manager.records.values():
            if r.traceback:
                click.echo(f"\n--- {r.name} ---\n{r.traceback}", err=True)


def _plain(value: Any) -> Any:
    """A default value as JSON: numbers, strings, booleans and None as they are, a function by
    its name, anything else by its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "__name__", None) or repr(value)


def _encoder_info(entry: Any, as_json: bool) -> None:
    """``snn info`` for an encoder: its class, constructor signature, summary and docstring."""
    import inspect

    cls = entry.obj
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a class whose signature Python cannot read
        signature = inspect.Signature()
    arguments = [
        prm
        for prm in signature.parameters.values()
        if prm.kind not in (prm.VAR_POSITIONAL, prm.VAR_KEYWORD)
    ]
    parameters = [
        {
            "name": prm.name,
            "default": None if prm.default is prm.empty else _plain(prm.default),
            "required": prm.default is prm.empty,
        }
        for prm in arguments
    ]
    shown = [
        prm.name
        if prm.default is prm.empty
        else f"{prm.name}={getattr(prm.default, '__name__', None) or repr(prm.default)}"
        for prm in arguments
    ]
    row = _entry_row(entry)
    row["class"] = f"{cls.__module__}.{cls.__qualname__}"
    row["signature"] = f"{cls.__name__}({', '.join(shown)})"
    row["parameters"] = parameters
    row["doc"] = inspect.getdoc(cls) or ""
    if as_json:
        _echo_json({"encoder": row})
        return
    provider = entry.provider
    click.echo(f"{entry.name} (encoder) from {provider.distribution} {provider.version}")
    click.echo(f"  {row['summary']}")
    click.echo(f"\nsignature: {row['signature']}")
    click.echo(f"class: {row['class']}")
    click.echo("\n" + row["doc"])


def _routes(model: Any, variant: str | None, device: str, dtype: str) -> dict[str, Any]:
    """Which backend ``backend="auto"`` picks for one request, and every backend's route or
    reason to decline."""
    import torch

    from snncore.backends import explain

    variant = variant or next(
        (v for v in model.variants if v in ("layer", "recurrent")), model.variants[0]
    )
    if variant not in model.variants:
        raise click.BadParameter(
            f"model {model.name!r} has no {variant!r} variant; it offers {list(model.variants)}",
            param_hint="--variant",
        )
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise click.BadParameter(f"{dtype!r} is not a torch dtype", param_hint="--dtype")
    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    choices = explain(model, variant, torch_device, torch_dtype)
    return {
        "variant": variant,
        "device": str(torch_device),
        "dtype": dtype,
        "chosen": next((c.backend for c in choices if c.chosen), None),
        "backends": [
            {
                "backend": c.backend,
                "route": c.route.name if c.route else None,
                "priority": c.route.priority if c.route else None,
                "reason": c.route.reason if c.route else f"declines: {c.declined}",
            }
            for c in choices
        ],
    }


@cli.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema in docs/cli-json.md).")
@click.option(
    "--variant", help="Which variant's route to explain (default: layer, else recurrent)."
)
@click.option("--device", default="cpu", show_default=True, help="Device of the explained call.")
@click.option("--dtype", default="float32", show_default=True, help="Dtype of the explained call.")
def info_command(name: str, as_json: bool, variant: str | None, device: str, dtype: str) -> None:
    """A model's equations, parameters (defaults, units), state variables, variants, backends
    and which route a call takes and why; or an encoder's signature and documentation."""
    from snncore.parameters import describe_parameters

    try:
        entry = get_manager().registry("model").entry(name)
    except UnknownNameError as model_miss:
        encoders = get_manager().registry("encoder")
        if name.rpartition(":")[2] not in encoders:
            try:
                encoders.entry(name)
            except UnknownNameError as encoder_miss:  # suggest encoders when no model is close
                # ... and no plugin that failed may provide the model (its miss names them)
                close = encoder_miss.suggestions and not model_miss.suggestions
                if close and not model_miss.failed_plugins:
                    raise encoder_miss from None
            raise
        _encoder_info(encoders.entry(name), as_json)
        return
    model = entry.obj
    row = _model_row(entry)
    row.pop("dist")
    row["presets"] = [{"name": n, "summary": pr.summary} for n, pr in model.presets.items()]
    row["equations"] = model.equations
    row["reference"] = model.reference
    row["parameters"] = describe_parameters(model.parameters)
    row["states"] = {
        v: [{"name": f, "unit": model.units.get(f, "")} for f in model.state_fields(v)]
        for v in model.variants
    }
    row["routes"] = _routes(model, variant, device, dtype)
    if as_json:
        _echo_json({"model": row})
        return
    click.echo(
        f"{model.name} ({model.family}) from {entry.provider.distribution} {entry.provider.version}"
    )
    click.echo(f"  {model.summary}")
    if model.reference:
        click.echo(f"  reference: {model.reference}")
    click.echo("\nequations (one Euler step of dt seconds):")
    for line in model.equations.splitlines():
        click.echo(f"  {line}")
    click.echo("\nparameters:")
    _echo_table(row["parameters"], ["name", "default", "unit", "doc"])
    click.echo("\nstate variables:")
    for variant, fields in row["states"].items():
        click.echo(
            f"  {variant}: "
            + ", ".join(f"{f['name']} [{f['unit']}]" if f["unit"] else f["name"] for f in fields)
        )
    if model.presets:
        click.echo("\npresets (preset=NAME):")
        _echo_table(row["presets"], ["name", "summary"])
    click.echo(f"\nvariants: {', '.join(model.variants)}")
    click.echo(f"backends: {_backends_cell(row).replace(',', ', ') or '(none installed)'}")
    routes = row["routes"]
    click.echo(
        f"\nroute of a {routes['variant']} call on {routes['device']} / {routes['dtype']}: "
        f"backend='auto' picks {routes['chosen'] or '(none)'}"
    )
    _echo_table(routes["backends"], ["backend", "route", "priority", "reason"])


@cli.command("simulate")
@click.argument("name")
@click.option("--steps", default=100, show_default=True, type=click.IntRange(1), help="Time steps.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1))
@click.option("--neurons", default=8, show_default=True, type=click.IntRange(1))
@click.option(
    "--current",
    default=1.5,
    show_default=True,
    help="Mean input current (constant, or the mean of the --poisson trains).",
)
@click.option(
    "--poisson",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="RATE",
    help="Drive with Poisson spike trains of RATE Hz instead, each spike worth current/(RATE·dt).",
)
@click.option("--preset", default=None, help="A named preset of the model (snn info NAME).")
@click.option("--backend", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw input, raster, membrane traces and rate to FILE (.png, .svg); needs snncore[plot].",
)
@click.option(
    "--save",
    "save_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save the input, output and every recorded state field to FILE (.npz).",
)
def simulate_command(
    name: str,
    steps: int,
    batch: int,
    neurons: int,
    current: float,
    poisson: float | None,
    preset: str | None,
    backend: str,
    seed: int,
    plot_file: str | None,
    save_file: str | None,
) -> None:
    """Drive a feed-forward layer of NAME with noisy constant current (or Poisson spike trains)
    and count its spikes; optionally draw and save what happened."""
    import torch

    from snncore.api import create, get_model

    if not math.isfinite(current):
        raise click.BadParameter(f"must be a finite number, got {current}", param_hint="--current")
    if plot_file is not None:
        from snncore.plot import require_matplotlib

        require_matplotlib()  # before any work: a missing extra is one line, exit 2
    model = get_model(name)
    if "layer" not in model.variants:
        raise click.UsageError(
            f"model {name!r} has no feed-forward layer; it offers {list(model.variants)}"
        )
    record = plot_file is not None or save_file is not None
    layer = create(name, variant="layer", backend=backend, preset=preset, record_states=record)
    generator = torch.Generator().manual_seed(seed)
    gain = torch.linspace(0.5, 1.5, neurons)  # a spread of drives, so the counts differ
    if poisson is None:
        x = current * gain * (1 + 0.1 * torch.randn(steps, batch, neurons, generator=generator))
        drive = f"input current {current} x gain 0.5..1.5 (+10% noise)"
    else:
        probability = poisson * layer.dt
        if probability > 1:
            raise click.BadParameter(
                f"{poisson} Hz is more than one spike per step of dt={layer.dt} s",
                param_hint="--poisson",
            )
        arrivals = torch.rand(steps, batch, neurons, generator=generator) < probability
        x = arrivals * (current * gain / probability)
        drive = f"Poisson input at {poisson} Hz, mean current {current} x gain 0.5..1.5"
    with torch.no_grad():
        out, states = layer(x)
    _refuse_non_finite(name, out)
    click.echo(
        f"{name}{f' ({preset})' if preset else ''}: {steps} steps of dt={layer.dt} s, "
        f"batch {batch}, {neurons} neurons, {drive}, backend {layer._backend_for(x).name}"
    )
    if save_file is not None:
        _save_simulation(save_file, x, out, states, layer.dt)
    if plot_file is not None:
        from snncore.plot import plot_layer_run, save

        figure = plot_layer_run(layer, x, out, states, input_spikes=poisson is not None)
        save(figure, plot_file)
    if model.output != "spikes":
        click.echo(
            f"final output ({model.output}) per neuron: {[round(v, 4) for v in out[-1].mean(0).tolist()]}"
        )
    else:
        counts = out.sum(dim=(0, 1)).to(torch.int64).tolist()
        rates = out.mean(dim=(0, 1)) / layer.dt
        click.echo(f"spike counts per neuron: {counts}")
        click.echo(
            f"mean rate: {rates.mean().item():.1f} Hz (min {rates.min().item():.1f}, max {rates.max().item():.1f})"
        )
    for kind, path in (("figure", plot_file), ("arrays", save_file)):
        if path is not None:
            click.echo(f"{kind} written to {path}")


def _refuse_non_finite(name: str, out: Any) -> None:
    """A run whose output holds NaN or inf fails naming where, instead of printing counts made
    from NaN (-9223372036854775808 once cast to int64) or rates of 0 Hz."""
    import torch

    bad = ~torch.isfinite(out)
    if bool(bad.any()):
        step = int(bad.flatten(1).any(1).nonzero()[0])
        kind = "NaN" if bool(out.isnan().any()) else "inf"
        raise click.ClickException(
            f"model {name!r} produced {int(bad.sum())} non-finite output values ({kind}) of "
            f"{out.numel()}, the first at step {step}: its step is not finite for this input"
        )


def _save_simulation(path: str, x: Any, out: Any, states: Any, dt: float) -> None:
    """``--save``: the input, the output and every recorded state field (dotted names for nested
    records), each ``(T, B, N)``, and ``dt``, as NumPy arrays in one ``.npz``."""
    import numpy

    arrays = {"input": x.numpy(), "output": out.numpy(), "dt": numpy.asarray(dt)}

    def add(record: Any, prefix: str) -> None:
        for field in record._fields:
            value = getattr(record, field)
            if hasattr(value, "_fields"):
                add(value, f"{prefix}{field}.")
            else:
                arrays[f"state.{prefix}{field}"] = value.detach().cpu().numpy()

    add(states, "")
    numpy.savez(path, **arrays)  # type: ignore[arg-type]


cli.add_command(nir_group)  # snn nir info/export/run (snncore/cli_nir.py)


def main(argv: list[str] | None = None) -> None:
    get_manager().call_commands_hook(cli)
    cli.main(args=argv, prog_name="snn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
