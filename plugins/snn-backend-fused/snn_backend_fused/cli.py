"""``snn kernels build``: compile the generated kernels ahead of first use.

Only click is imported at start-up; the compiler is imported when the command runs.
"""

from __future__ import annotations

import time

import click


@click.group("kernels")
def kernels_command() -> None:
    """The fused backend's generated C++ kernels."""


@kernels_command.command("build")
@click.argument("models", nargs=-1)
@click.option("--all", "build_all", is_flag=True, help="Every registered model.")
@click.option(
    "--isa",
    default=None,
    help="Target instruction set (-march), e.g. x86-64-v3; default: $SNN_FUSED_ISA or native.",
)
def build_command(models: tuple[str, ...], build_all: bool, isa: str | None) -> None:
    """Build the generated kernels of MODELS (layer and recurrent variants, float32 and float64,
    default parameters) into the kernel cache, printing each one's first-use latency: tracing
    and compiling, or loading from the cache."""
    import os

    import snncore
    from snn_backend_fused.compiler import cpp, kernel

    if not models and not build_all:
        raise click.UsageError("name one or more models, or give --all")
    if isa is not None:
        os.environ["SNN_FUSED_ISA"] = isa
    names = sorted(m.name for m in snncore.list_models()) if build_all else list(models)
    click.echo(f"target: -march={kernel.isa()}; cache: {kernel.build.cache_root()}")
    failures = 0
    for name in names:
        model = snncore.get_model(name)
        p = model.parameters()
        for variant in ("layer", "recurrent"):
            if variant not in model.variants:
                continue
            started = time.perf_counter()
            if variant == "layer":
                traced = kernel.trace_layer(model, p, 0.001, (4,))
                found = traced if isinstance(traced, str) else (traced, None)
            else:
                found = kernel.trace_recurrent(model, p, 0.001, 4)
            if isinstance(found, str):
                click.echo(f"{name:<16}{variant:<10} no generated kernel: {found}")
                continue
            traced, field = found
            try:
                kernel.load_source(cpp.generate(traced, kernel.libmvec_functions(), field))
            except kernel.build.FusedBuildError as exc:
                failures += 1
                click.echo(f"{name:<16}{variant:<10} build failed: {str(exc).splitlines()[0]}")
                continue
            seconds = time.perf_counter() - started
            built = max(kernel.build_seconds.values(), default=0.0) if kernel.build_seconds else 0
            how = "built" if built else "cached"
            click.echo(f"{name:<16}{variant:<10} {how} in {seconds:.2f} s")
            kernel.build_seconds.clear()
    if failures:
        raise SystemExit(1)
