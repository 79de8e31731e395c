"""When the kernels cannot be built: ``backend="auto"`` falls back to ``torch`` after one warning
line, ``backend="fused"`` fails naming the cause.  Simulated with a missing compiler, a compiler
that fails, and a "library" that does not load -- each in an empty cache directory, with the
process's loaded library hidden for the test."""

from __future__ import annotations

import stat
import warnings
from pathlib import Path

import pytest
import torch

import snncore


@pytest.fixture
def unbuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No library loaded, no failure remembered, no warning given yet, an empty cache."""
    from snn_backend_fused import backend, build

    monkeypatch.setattr(build, "_library", None)
    monkeypatch.setattr(build, "_error", None)
    monkeypatch.setattr(backend, "_warned", False)
    monkeypatch.setenv("SNN_FUSED_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _fake_compiler(path: Path, body: str) -> str:
    """A shell script standing in for g++: ``--version`` works, compiling runs ``body``."""
    path.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "fake-g++ 1.0"; exit 0; fi\n{body}\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _check_fallback(cause: str) -> None:
    """auto: torch and one warning line; then fused, named: a clear error at construction (the
    failure is remembered)."""
    x = 3.0 * torch.rand(20, 2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = snncore.create("lif")
        out, _ = auto(x)
        snncore.create("li")(x)  # a second layer: no second warning
    assert auto._backend_for(x).name == "torch"
    torch.testing.assert_close(out, snncore.create("lif", backend="torch")(x)[0], rtol=0, atol=0)
    from snn_backend_fused.backend import FusedUnavailableWarning

    ours = [w for w in caught if issubclass(w.category, FusedUnavailableWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert "\n" not in message and cause in message and "falls back" in message
    with pytest.raises(snncore.BackendUnavailableError) as info:
        snncore.create("lif", backend="fused")
    _check_error(str(info.value), cause)


def _check_error(message: str, cause: str) -> None:
    assert "backend 'fused' cannot run" in message and cause in message
    assert "backends that do: torch" in message


def _check_explicit_first(cause: str) -> None:
    """fused, named, in a fresh process: built at the first call, which fails clearly."""
    explicit = snncore.create("lif", backend="fused")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(snncore.BackendUnavailableError) as info:
            explicit(3.0 * torch.rand(20, 2, 3))
    _check_error(str(info.value), cause)


def test_missing_compiler(unbuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", str(unbuilt / "no-such-g++"))
    _check_fallback("no C++ compiler found")


def test_missing_compiler_named_backend_first(
    unbuilt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXX", str(unbuilt / "no-such-g++"))
    _check_explicit_first("no C++ compiler found")


def test_failing_compiler(unbuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _fake_compiler(unbuilt / "g++", 'echo "error: simulated failure" >&2; exit 1')
    monkeypatch.setenv("CXX", script)
    _check_fallback("failed")
    from snn_backend_fused import build

    error = build.error()
    assert error is not None and "simulated failure" in str(error)


def test_library_that_does_not_load(unbuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "compiles" every object and "links" a file that is not a shared library: writes the
    # argument after -o
    body = 'while [ $# -gt 0 ]; do if [ "$1" = "-o" ]; then echo "not ELF" > "$2"; fi; shift; done'
    monkeypatch.setenv("CXX", _fake_compiler(unbuilt / "g++", body))
    _check_fallback("do not load")


def test_listing_does_not_build(unbuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``supports`` without a device (list-models, layer construction) does not compile."""
    from snn_backend_fused import build

    monkeypatch.setenv("CXX", str(unbuilt / "no-such-g++"))
    fused = snncore.get_backend("fused")
    assert fused.supports(snncore.get_model("lif"), "layer") is None
    assert build.error() is None and not build.loaded()
    assert "torch" in [b.name for b in snncore.list_backends()]


# -- a damaged cached library: rebuilt, or (if that fails) the fallback; never loaded -------------

_RUN_LIF = """
import torch
import snncore

x = 3.0 * torch.rand(10, 2, 3)
layer = snncore.create("lif")
out, _ = layer(x)
print(layer._backend_for(x).name, tuple(out.shape))
"""


def test_a_truncated_cached_library_is_rebuilt_or_falls_back(tmp_path: Path) -> None:
    """A ``libsnnfused.so`` cut short (a full disk, a killed copy) killed every process using the
    default backend with SIGBUS (exit 135, no message) when ``ctypes`` mapped it.  Its size and
    hash are checked against the stamp its build wrote: a damaged library is rebuilt; when the
    rebuild fails too, ``auto`` falls back to torch with its one warning line."""
    import os
    import subprocess
    import sys

    from snn_backend_fused import build

    # A compiler of fixed path and version (the cache key), failing on request, else g++.
    compiler = _fake_compiler(
        tmp_path / "g++",
        '[ -n "$SNN_TEST_FAIL_BUILD" ] && { echo "error: no" >&2; exit 1; }\nexec g++ "$@"',
    )
    env = {**os.environ, "SNN_FUSED_CACHE_DIR": str(tmp_path / "cache"), "CXX": compiler}
    env.pop("SNN_TEST_FAIL_BUILD", None)

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _RUN_LIF],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    first = run()
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.split("\n")[0] == "fused (10, 2, 3)"
    (library,) = (tmp_path / "cache").glob(f"*/{build.LIBRARY_NAME}")
    stamp = library.with_suffix(".stamp")
    intact = library.read_bytes()
    assert stamp.read_text() == build._stamp(library)

    library.write_bytes(intact[: len(intact) // 2])
    rebuilt = run()
    assert rebuilt.returncode == 0, (rebuilt.returncode, rebuilt.stderr[-2000:])
    assert rebuilt.stdout.split("\n")[0] == "fused (10, 2, 3)"
    assert library.stat().st_size == len(intact)
    assert stamp.read_text() == build._stamp(library)

    library.write_bytes(intact[: len(intact) // 2])
    failed = run(SNN_TEST_FAIL_BUILD="1")
    assert failed.returncode == 0, (failed.returncode, failed.stderr[-2000:])
    assert failed.stdout.split("\n")[0] == "torch (10, 2, 3)"
    warning = [line for line in failed.stderr.splitlines() if "FusedUnavailableWarning" in line]
    assert len(warning) == 1 and "falls back" in warning[0]
    assert f"building {build.LIBRARY_NAME} with {compiler} failed" in warning[0]
    assert library.stat().st_size == len(intact) // 2  # left for the next build; never loaded
