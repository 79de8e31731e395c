"""The pytest side of the suite: options, the ``snncore_conformance`` marker, and the
parametrisation of every test that takes the argument ``snncore_case``.

No module-level ``import pytest``: the hooks receive pytest's objects, so ``snncore.testing`` can
be imported (and its checks called) without pytest installed.
"""

from __future__ import annotations

from typing import Any

from snncore.testing._suite import COMPILE_MODES, Options, cases


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
