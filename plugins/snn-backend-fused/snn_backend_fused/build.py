"""Compiling and loading the hand-written C++ library: on first use, cached per user.

The library holds the pool of output buffers (``csrc/pool.cpp``) that every CPU kernel writes
into; the kernels themselves are generated from the models' steps
(:mod:`snn_backend_fused.compiler`) and built separately, per step and ISA, with the compiler,
version lookup and cache directory found here.  It is plain C++17 without PyTorch headers,
compiled by the system's C++ compiler into one shared library and called through
:mod:`ctypes` (any translation unit that includes ATen takes over 20 s to compile on a 2-core
machine; this one takes about a second).  Nothing is built at install time (the build needs
neither network nor torch in an isolated environment).

The library is cached under ``$SNN_FUSED_CACHE_DIR`` (default ``$XDG_CACHE_HOME/snncore/fused``,
i.e. ``~/.cache/snncore/fused``) in a directory named by a hash of: the sources, the compiler and
its version, the flags and the torch version.
A process that finds the library there loads it in milliseconds; concurrent first builds take a
file lock and build once.  ``$CXX`` picks the compiler (default ``g++``, then ``c++``).
Every build writes a stamp beside its library (size and SHA-256, :func:`_stamp`), checked before
the library is loaded: a library cut short (a full disk, a killed copy) would kill the process
that maps it with SIGBUS, so a library that does not match its stamp is rebuilt, never loaded.
The generated kernels (:mod:`snn_backend_fused.compiler.kernel`) use the same stamp.

A missing compiler, a failed compilation or a library that does not load raise
:class:`FusedBuildError` naming the cause; the backend turns that into a fallback (``auto``) or
a clear error (``backend="fused"``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CSRC = Path(__file__).resolve().parent / "csrc"
LIBRARY_NAME = "libsnnfused.so"
FLAGS = ("-O3", "-std=c++17", "-fPIC", "-fopenmp", "-fvisibility=hidden")


class FusedBuildError(RuntimeError):
    """The C++ kernels could not be compiled or loaded; the message names the cause."""


_lock = threading.Lock()
_library: Any = None
_error: FusedBuildError | None = None
#: Seconds the last successful :func:`load` spent compiling (0.0 when the cache had it).
last_build_seconds = 0.0


def cache_root() -> Path:
    explicit = os.environ.get("SNN_FUSED_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "snncore" / "fused"


def find_compiler() -> str:
    """The C++ compiler to use: ``$CXX``, else ``g++``, else ``c++``."""
    wanted = os.environ.get("CXX")
    candidates = [wanted] if wanted else ["g++", "c++"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    looked = f"$CXX={wanted}" if wanted else "g++, c++"
    raise FusedBuildError(f"no C++ compiler found (looked for {looked} on PATH)")


def _compiler_version(compiler: str) -> str:
    try:
        result = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise FusedBuildError(f"C++ compiler {compiler} does not run: {exc}") from None
    if result.returncode != 0:
        raise FusedBuildError(f"C++ compiler {compiler} does not run: {result.stderr.strip()}")
    return result.stdout.splitlines()[0] if result.stdout else ""


def _cpu_flags() -> str:
    """The CPU's instruction-set flags (part of the generated kernels' key for -march=native)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _sources() -> list[Path]:
    return sorted(CSRC.glob("*.cpp"))


def build_key(compiler: str) -> str:
    import torch

    digest = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    for part in (
        compiler,
        _compiler_version(compiler),
        " ".join(FLAGS),
        torch.__version__,
        platform.machine(),
    ):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:20]


def _compile(compiler: str, target: Path) -> None:
    """Compile and link the sources into ``target`` (written elsewhere, then moved there)."""
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as tmp:
        linked = Path(tmp) / LIBRARY_NAME
        cmd = [compiler, *FLAGS, "-shared", "-I", str(CSRC), *map(str, _sources())]
        cmd += ["-o", str(linked)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise FusedBuildError(f"building {LIBRARY_NAME} with {compiler} failed:\n{tail}")
        os.replace(linked, target)


def _stamp(path: Path) -> str:
    """``"SIZE SHA256"`` of a built library, written after a build and compared before a load."""
    data = path.read_bytes()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def _intact(target: Path, stamp: Path) -> bool:
    """The library exists and matches the stamp its build wrote (size and hash)."""
    try:
        return target.exists() and stamp.exists() and stamp.read_text() == _stamp(target)
    except OSError:
        return False


def library_path() -> Path:
    """Where the library for this machine, compiler and source lives (built or not)."""
    compiler = find_compiler()
    return cache_root() / build_key(compiler) / LIBRARY_NAME


def _build_and_load() -> Any:
    global last_build_seconds
    compiler = find_compiler()
    target = cache_root() / build_key(compiler) / LIBRARY_NAME
    stamp = target.with_suffix(".stamp")
    started = time.perf_counter()
    compiled = False
    if not _intact(target, stamp):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FusedBuildError(
                f"cannot create the kernel cache {target.parent}: {exc}"
            ) from None
        import fcntl

        with open(target.parent / "build.lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            if not _intact(target, stamp):  # another process may have built it meanwhile
                _compile(compiler, target)
                stamp.write_text(_stamp(target))
                compiled = True
    last_build_seconds = time.perf_counter() - started if compiled else 0.0
    # torch first: its OpenMP runtime (libgomp.so.1) is then the one the library binds to.
    import torch  # noqa: F401

    try:
        library = ctypes.CDLL(str(target))
    except OSError as exc:
        raise FusedBuildError(f"the compiled kernels at {target} do not load: {exc}") from None
    _declare(library)
    return library


def _declare(library: Any) -> None:
    c_int, c_i64, c_void = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    library.snnf_empty.restype = c_void
    library.snnf_empty.argtypes = [ctypes.c_int32, ctypes.POINTER(c_i64), ctypes.c_int32]
    library.snnf_discard.argtypes = [c_void]
    library.snnf_pool_limit.restype = c_i64
    library.snnf_pool_limit.argtypes = [c_i64]
    library.snnf_pool_release.restype = c_i64
    library.snnf_pool_stats.argtypes = [ctypes.POINTER(c_i64)]
    library.snnf_openmp.restype = c_int
    limit = os.environ.get("SNN_FUSED_CACHE_LIMIT_MB")
    if limit is not None:
        library.snnf_pool_limit(int(float(limit) * 2**20))


def load() -> Any:
    """The loaded library, compiling it first if needed; raises :class:`FusedBuildError`.

    A failure is remembered: later calls raise the same error without trying again (call
    :func:`reset` to retry, e.g. after installing a compiler).
    """
    global _library, _error
    if _library is not None:
        return _library
    with _lock:
        if _library is not None:
            return _library
        if _error is not None:
            raise _error
        try:
            _library = _build_and_load()
        except FusedBuildError as exc:
            _error = exc
            raise
        except Exception as exc:  # anything else while building is a build failure too
            _error = FusedBuildError(f"building the C++ kernels failed: {exc!r}")
            raise _error from exc
        return _library


def error() -> FusedBuildError | None:
    """The remembered build failure, if the last attempt failed."""
    return _error


def loaded() -> bool:
    return _library is not None


def reset() -> None:
    """Forget the loaded library and any remembered failure (the next use builds again)."""
    global _library, _error
    with _lock:
        _library, _error = None, None
