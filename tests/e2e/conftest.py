"""End-to-end fixtures: real distributions pip-installed and uninstalled, and the real ``snn``
script run as a subprocess.

The distributions go into an *overlay* environment, not into the environment running the tests:
a throw-away virtual environment (one per session, under pytest's tmp dir) whose site-packages
pulls in this environment's site-packages through a ``.pth`` file, so it sees snncore, torch and
every installed plugin, while whatever pip installs there is visible only to processes started
from it. Another test run sharing this environment (a parallel job, a developer's shell) never
sees a half-installed or deliberately broken plugin, and a killed run leaves nothing installed.
Inside the overlay it is the ordinary path: ``python -m pip install --no-deps
--no-build-isolation`` builds a wheel and writes its entry points; snncore discovers them through
``importlib.metadata``; ``pip uninstall`` removes them.

The overlay's ``snn`` is this environment's console script with its ``#!`` line pointed at the
overlay's interpreter. ``--no-build-isolation`` needs the build backend (hatchling) here, and
avoids an isolated build environment that could pull another torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import site
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SNN = Path(sys.executable).parent / "snn"
TIMEOUT = 180


def _environment() -> dict[str, str]:
    """The subprocesses' environment: every plugin switch off, so all installed plugins load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNNCORE_", "PYTHONHOME"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, env=_environment(), cwd=cwd, timeout=TIMEOUT
    )


def _skip_reason() -> str | None:
    if not SNN.is_file():
        return f"no `snn` script at {SNN} (snncore is not installed in this environment)"
    # Asked of the metadata, not through importlib.util.find_spec: setuptools' distutils shim
    # reacts to a spec request for "pip" by switching itself off, which breaks torch.compile's
    # inductor for the rest of the process.
    for distribution in ("pip", "hatchling"):
        try:
            importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            return f"{distribution} is not installed in this environment"
    return None


class Overlay:
    """A virtual environment layered over the running one; pip installs go into it only."""

    def __init__(self, root: Path):
        reason = _skip_reason()
        if reason:
            pytest.skip(reason)
        created = _run([sys.executable, "-m", "venv", "--without-pip", str(root)])
        if created.returncode != 0:
            pytest.skip(f"cannot create an overlay virtual environment: {created.stderr}")
        self.root = root
        self.python = root / "bin" / "python"
        purelib = _run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        )
        self.site_packages = Path(purelib.stdout.strip())
        parents = [
            p
            for p in (*site.getsitepackages(), sysconfig.get_paths()["purelib"])
            if Path(p).is_dir()
        ]
        lines = "".join(f"site.addsitedir({p!r}); " for p in dict.fromkeys(parents))
        # A .pth line starting with `import` is executed; addsitedir also runs the parent's own
        # .pth files, which is where editable installs (snncore, the plugins) put their paths.
        (self.site_packages / "_snncore_e2e_parent.pth").write_text(f"import site; {lines}\n")
        self.snn = root / "bin" / "snn"
        script = SNN.read_text().splitlines(keepends=True)
        if not script[0].startswith("#!") or "exec" in script[1]:
            pytest.skip(f"unexpected console-script format in {SNN}")
        self.snn.write_text(f"#!{self.python}\n" + "".join(script[1:]))
        self.snn.chmod(0o755)

    def is_installed(self, distribution: str) -> bool:
        normalized = distribution.replace("-", "_")
        return any(self.site_packages.glob(f"{normalized}-*.dist-info"))

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = _run([str(self.python), "-m", "pip", *args])
        if result.returncode != 0:
            output = f"{result.stdout}\n{result.stderr}"
            pytest.fail(f"pip {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result


@pytest.fixture(scope="session")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Overlay:
    return Overlay(tmp_path_factory.mktemp("overlay") / "venv")


class Installer:
    """Installs distributions into the overlay and remembers them; teardown removes them all."""

    def __init__(self, overlay: Overlay) -> None:
        self.overlay = overlay
        self.installed: list[str] = []

    def install(self, path: Path, distribution: str) -> None:
        self.installed.append(distribution)
        self.overlay.pip("install", "--no-deps", "--no-build-isolation", "-q", str(path))
        assert self.overlay.is_installed(distribution), f"{distribution} missing after pip install"

    def uninstall(self, distribution: str) -> None:
        self.overlay.pip("uninstall", "-y", distribution)
        assert not self.overlay.is_installed(distribution), f"{distribution} still installed"

    def remove_all(self) -> list[str]:
        errors = []
        for distribution in reversed(self.installed):
            if not self.overlay.is_installed(distribution):
                continue
            result = _run([str(self.overlay.python), "-m", "pip", "uninstall", "-y", distribution])
            if result.returncode != 0 or self.overlay.is_installed(distribution):
                errors.append(f"{distribution}: {result.stdout}{result.stderr}")
        return errors


@pytest.fixture
def installer(overlay: Overlay) -> Iterator[Installer]:
    """``installer.install(path, name)``; everything installed is uninstalled after the test."""
    inst = Installer(overlay)
    try:
        yield inst
    finally:
        errors = inst.remove_all()
        if errors:
            pytest.fail("could not uninstall test distributions:\n" + "\n".join(errors))


@pytest.fixture
def snn(overlay: Overlay, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the ``snn`` command line: ``snn("list-models", "--json")``."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(overlay.snn), *args], cwd=tmp_path)

    return run


@pytest.fixture
def snn_json(snn: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., Any]:
    """Run ``snn ... --json``, check it exited 0 and return the parsed JSON."""

    def run(*args: str) -> Any:
        result = snn(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run


@pytest.fixture
def python(overlay: Overlay, tmp_path: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Run a Python snippet in a fresh interpreter of the overlay (plugins discovered anew)."""

    def run(code: str) -> subprocess.CompletedProcess[str]:
        return _run([str(overlay.python), "-c", textwrap.dedent(code)], cwd=tmp_path)

    return run


@pytest.fixture
def make_distribution(tmp_path: Path) -> Callable[..., Path]:
    """Write a plugin distribution into ``tmp_path``; returns its directory, ready for pip.

    ``plugins`` maps entry-point name -> (module name, source); each module lives in the one
    import package ``package``.
    """

    def make(distribution: str, package: str, plugins: dict[str, tuple[str, str]]) -> Path:
        root = tmp_path / distribution
        (root / package).mkdir(parents=True)
        entry_points = "\n".join(
            f'{name} = "{package}.{module}"' for name, (module, _) in plugins.items()
        )
        (root / "pyproject.toml").write_text(
            "[build-system]\n"
            'requires = ["hatchling"]\n'
            'build-backend = "hatchling.build"\n\n'
            "[project]\n"
            f'name = "{distribution}"\n'
            'version = "0.0.1"\n'
            'dependencies = ["snncore"]\n\n'
            "[project.entry-points.snncore]\n"
            f"{entry_points}\n\n"
            "[tool.hatch.build.targets.wheel]\n"
            f'packages = ["{package}"]\n'
        )
        (root / package / "__init__.py").write_text("")
        for module, source in plugins.values():
            (root / package / f"{module}.py").write_text(textwrap.dedent(source))
        return root

    return make


@pytest.fixture
def run_pytest(overlay: Overlay, tmp_path: Path) -> Callable[[Path], tuple[int, str]]:
    """``run_pytest(tests)``: pytest on a test directory in the overlay's interpreter, run from
    ``tmp_path`` (outside any source tree, so that the tests import the installed distribution),
    with no plugin switch or pytest option inherited and nothing written into the source tree (no
    cache, no bytecode).  Checks that it passed; returns the number of tests passed, and the
    output."""

    def run(tests: Path) -> tuple[int, str]:
        env = {k: v for k, v in _environment().items() if not k.startswith("PYTEST_")}
        result = subprocess.run(
            [str(overlay.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert " failed" not in output and " error" not in output.lower(), output
        match = re.search(r"(\d+) passed", output)
        assert match, output
        return int(match.group(1)), output

    return run


#: Every variant of a model in the overlay's interpreter: the cells, the layer and the recurrent
#: network on each backend (all agreeing with the first), and a layer through pickle.
EVERY_VARIANT = """
    import pickle
    import torch
    import snncore

    NAME, BACKENDS = {name!r}, {backends!r}
    x = torch.full((200, 2, 3), 0.3)
    z, state = snncore.create(NAME, variant="cell")(x[0])
    print("cell", tuple(z.shape), type(state).__name__)
    z, state = snncore.create(NAME, variant="recurrent_cell", input_size=3, hidden_size=5)(x[0])
    print("recurrent_cell", tuple(z.shape), type(state).__name__)
    inputs = {{"layer": x, "recurrent": 10 * torch.rand(200, 2, 3, generator=torch.Generator().manual_seed(1))}}
    reference = {{}}
    for backend in BACKENDS:
        torch.manual_seed(0)  # the same recurrent weights on every backend
        for variant, kwargs in (("layer", {{}}), ("recurrent", {{"input_size": 3, "hidden_size": 5}})):
            module = snncore.create(NAME, variant=variant, backend=backend, **kwargs)
            assert module._backend_for(x).name == backend
            out, state = module(inputs[variant])
            assert out.sum() > 0, (variant, backend)
            torch.testing.assert_close(out, reference.setdefault(variant, out))
            print(variant, backend, tuple(out.shape), type(module).__name__, type(state).__name__)
    layer = snncore.create(NAME, variant="layer", v_th=torch.tensor([0.5, 1.0, 1.5]))
    copy = pickle.loads(pickle.dumps(layer))
    assert type(copy) is type(layer)
    assert torch.equal(copy(x)[0], layer(x)[0]) and torch.equal(copy(x)[1].v, layer(x)[1].v)
    print("pickled", type(copy).__name__)
"""


@pytest.fixture
def backends() -> list[str]:
    """The backends every installed model must run on: the eager one, and the fused one when
    snn-backend-fused is installed."""
    fused = importlib.util.find_spec("snn_backend_fused") is not None
    return ["torch", "fused"] if fused else ["torch"]


@pytest.fixture
def every_variant(
    python: Callable[[str], subprocess.CompletedProcess[str]], backends: list[str]
) -> Callable[[str], str]:
    """``every_variant(model_name)``: run :data:`EVERY_VARIANT` for an installed model (the
    layer and the recurrent network on each of ``backends``); checks it succeeded, returns its
    output."""

    def run(name: str) -> str:
        result = python(EVERY_VARIANT.format(name=name, backends=backends))
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run
