"""The pytest plugin of snncore's conformance suite (entry point ``pytest11``: ``snncore.testing``).

A top-level module on purpose: pytest imports every ``pytest11`` plugin at start-up, in every
project of the environment, and anything under the ``snncore`` package would import torch
(~1.5 s).  Here the options and the marker cost nothing; the suite itself (and torch) is
imported only when a test takes the argument ``snncore_case``.  ``snncore.testing`` re-exports
these hooks, so ``pytest_plugins = ["snncore.testing"]`` works as well.

No ``import pytest``: the hooks receive pytest's objects.
"""

from __future__ import annotations

from typing import Any

#: The --snncore-compile choices; equal to snncore.testing._suite.COMPILE_MODES (a test checks),
#: written out so that this module imports nothing heavy.
COMPILE_MODES = ("off", "family", "all")


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("snncore", "snncore conformance suite")
    group.addoption(
        "--snncore-compile",
        choices=COMPILE_MODES,
        default=None,
        help="torch.compile check: one model per family (default), every model, or off "
        "(env SNNCORE_TEST_COMPILE).",
    )
    group.addoption(
        "--snncore-compile-backend",
        default=None,
        help="torch.compile backend of that check: aot_eager (default) or inductor, ... "
        "(env SNNCORE_TEST_COMPILE_BACKEND).",
    )
    group.addoption(
        "--snncore-long-steps",
        type=int,
        default=None,
        help="time steps of the long-run check, default 1000 (env SNNCORE_TEST_LONG_STEPS).",
    )


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "snncore_conformance(*plugins, models=None, checks=None, skip=None): run the snncore "
        "conformance checks of these plugins' models through the argument `snncore_case`",
    )


class _SelectionFailed:
    """Stands in for the cases when the selection itself is wrong; running it fails clearly."""

    id = "selection"

    def __init__(self, message: str):
        self.message = message

    def run(self) -> None:
        from snncore.testing._suite import ConformanceError

        raise ConformanceError(f"[conformance suite] selection: {self.message}")


def pytest_generate_tests(metafunc: Any) -> None:
    if "snncore_case" not in metafunc.fixturenames:
        return
    selection = dict(getattr(metafunc.function, "snncore_conformance", None) or {})
    marker = metafunc.definition.get_closest_marker("snncore_conformance")
    if marker is not None:
        selection = {"plugins": marker.args, **marker.kwargs, **selection}
    from snncore.testing._suite import Options, cases  # only where the suite is used

    config = metafunc.config
    try:
        options = Options.from_environment(
            compile=config.getoption("snncore_compile", None),
            compile_backend=config.getoption("snncore_compile_backend", None),
            long_steps=config.getoption("snncore_long_steps", None),
            smoothed_steps=selection.get("smoothed_steps") or None,
        )
        found: list[Any] = cases(
            *selection.get("plugins", ()),
            models=selection.get("models"),
            checks=selection.get("checks"),
            skip=selection.get("skip"),
            options=options,
        )
    except (LookupError, ValueError, TypeError) as exc:
        found = [_SelectionFailed(f"{type(exc).__name__}: {exc}")]
    metafunc.parametrize("snncore_case", found, ids=[c.id for c in found])
