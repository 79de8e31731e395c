"""The files ``snn new-plugin NAME`` writes, as :class:`string.Template` s.

Placeholders: ``$name`` (model and family name, ``my_lif``), ``$dist`` (``snn-my-lif``),
``$package`` (``snn_my_lif``), ``$Class`` (``MyLif``), ``$CONST`` (``MY_LIF``).  The generated
model is a leaky integrate-and-fire neuron with the input current entering the voltage directly
(no synapse).  Lines that hold a name are laid out so that the files pass ``ruff check`` and
``ruff format --check`` in the new project for names up to about 30 characters.
"""

from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "snncore plugin: the $name neuron model"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["snncore>=0.1", "torch>=2.1"]

[project.optional-dependencies]
test = ["pytest>=7"]

# The entry point that makes this a plugin: snncore finds it in the `snncore` group.
[project.entry-points.snncore]
$dist = "$package.plugin"

[tool.hatch.build.targets.wheel]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100

[tool.ruff.lint]
# Parameter records are immutable attrs classes: a tensor_field(...) default is safe.
ignore = ["RUF009"]
"""

INIT = '''\
"""$dist: the ``$name`` neuron model for snncore.

Through the registry, ``snncore.create("$name", variant="layer")``, or by class::

    from $package import ${Class}Cell, ${Class}Parameters

    cell = ${Class}Cell(p=${Class}Parameters(v_th=0.8), dt=0.001)
    z, state = cell(x)
"""

from $package.model import (
    ${CONST}_MODEL,
    $Class,
    ${Class}Cell,
    ${Class}FeedForwardState,
    ${Class}Parameters,
    ${Class}Recurrent,
    ${Class}RecurrentCell,
    ${Class}State,
    feed_forward_step,
    recurrent_step,
)

__version__ = "0.1.0"

__all__ = [
    "${CONST}_MODEL",
    "$Class",
    "${Class}Cell",
    "${Class}FeedForwardState",
    "${Class}Parameters",
    "${Class}Recurrent",
    "${Class}RecurrentCell",
    "${Class}State",
    "feed_forward_step",
    "recurrent_step",
]
'''

MODEL = '''\
"""The ``$name`` neuron: leaky integrate-and-fire, the input current entering the voltage directly.

    dv/dt = tau_mem_inv · ((v_leak − v) + x)
    z = Θ(v − v_th);  v ← (1 − z)·v + z·v_reset

One forward-Euler step of ``dt`` seconds:

    1. v1 = v + dt·tau_mem_inv·((v_leak − v) + x)
    2. z  = Θ(v1 − v_th)             (surrogate gradient ``method`` with sharpness ``alpha``)
    3. v' = (1 − z)·v1 + z·v_reset   (recurrent step: z detached in the reset)

Initial state: ``v = v_leak``, ``z = 0``.  Voltages in volts (model units), rates in 1/s.
Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014), ch. 1.

Change the equations above and the step below to make it your neuron; keep the shapes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import snncore
import torch
from snncore import method_field, tensor_field
from snncore.parameters import positive


@attrs.frozen
class ${Class}Parameters:
    """Parameters of a $name neuron; each numeric field a scalar or a per-neuron tensor."""

    tau_mem_inv: torch.Tensor = tensor_field(
        100.0, "1/s", "inverse membrane time constant", positive
    )
    v_leak: torch.Tensor = tensor_field(0.0, "V", "leak (resting) potential")
    v_th: torch.Tensor = tensor_field(1.0, "V", "spike threshold")
    v_reset: torch.Tensor = tensor_field(0.0, "V", "potential after a spike")
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(100.0, "", "surrogate gradient sharpness")


class ${Class}FeedForwardState(NamedTuple):
    """State of a feed-forward $name neuron: the membrane voltage ``v``."""

    v: torch.Tensor


class ${Class}State(NamedTuple):
    """State of a recurrent $name neuron: the last spikes ``z`` and the voltage ``v``."""

    z: torch.Tensor
    v: torch.Tensor


def _integrate(
    v: torch.Tensor,
    x: torch.Tensor,
    p: ${Class}Parameters,
    dt: float,
) -> torch.Tensor:
    """Step 1: one Euler step of the membrane equation."""
    return v + dt * p.tau_mem_inv * ((p.v_leak - v) + x)


def feed_forward_step(
    input_current: torch.Tensor,
    state: ${Class}FeedForwardState,
    p: ${Class}Parameters = ${Class}Parameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, ${Class}FeedForwardState]:
    """One Euler step driven by ``input_current``; returns ``(spikes, state)``."""
    v1 = _integrate(state.v, input_current, p, dt)
    z = snncore.spike(v1 - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v1 + z * p.v_reset
    return z, ${Class}FeedForwardState(v_new)


def recurrent_step(
    input_current: torch.Tensor,
    state: ${Class}State,
    p: ${Class}Parameters = ${Class}Parameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, ${Class}State]:
    """One recurrent step; ``input_current`` is ``W_in·x + W_rec·z_prev`` (made by the core).

    The reset uses the detached spike: no gradient flows through it.
    """
    v1 = _integrate(state.v, input_current, p, dt)
    z = snncore.spike(v1 - p.v_th, p.method, p.alpha)
    z_const = z.detach()
    v_new = (1 - z_const) * v1 + z_const * p.v_reset
    return z, ${Class}State(z, v_new)


def initial_feed_forward_state(
    p: ${Class}Parameters,
    shape: Any,
    device: Any = None,
    dtype: Any = None,
) -> ${Class}FeedForwardState:
    """``v = v_leak`` for neurons of ``shape`` (the parameters detached: no gradient)."""
    v = torch.zeros(shape, device=device, dtype=dtype)
    v = v + p.v_leak.detach().to(device=device, dtype=dtype)
    return ${Class}FeedForwardState(v=v)


def initial_state(
    p: ${Class}Parameters,
    shape: Any,
    device: Any = None,
    dtype: Any = None,
) -> ${Class}State:
    """``z = 0``, ``v = v_leak`` for neurons of ``shape``."""
    z = torch.zeros(shape, device=device, dtype=dtype)
    v = z + p.v_leak.detach().to(device=device, dtype=dtype)
    return ${Class}State(z=z, v=v)


${CONST}_MODEL = snncore.NeuronModel(
    name="$name",
    family="$name",
    summary="leaky integrate-and-fire, current input straight into the voltage",
    parameters=${Class}Parameters,
    feed_forward_step=feed_forward_step,
    feed_forward_state=${Class}FeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
    recurrent_step=recurrent_step,
    state=${Class}State,
    initial_state=initial_state,
    equations=(
        "v1 = v + dt*tau_mem_inv*((v_leak - v) + x);  z = H(v1 - v_th);\\n"
        "v' = (1 - z)*v1 + z*v_reset"
    ),
    units={"z": "spikes (0/1)", "v": "V"},
    reference="Gerstner et al., Neuronal Dynamics (2014), ch. 1",
)


def _module_class(variant: str, suffix: str) -> type:
    """The core's module class of ``variant``, named ``$Class + suffix`` and importable from
    this module (so that instances pickle)."""
    return snncore.module_class(
        ${CONST}_MODEL,
        variant,
        "$Class" + suffix,
        __name__,
    )


# Norse-style classes; snncore.create("$name", variant=...) returns instances of these.
${Class}Cell = _module_class("cell", "Cell")
${Class}RecurrentCell = _module_class("recurrent_cell", "RecurrentCell")
$Class = _module_class("layer", "")
${Class}Recurrent = _module_class("recurrent", "Recurrent")
'''

PLUGIN = '''\
"""Entry point of $dist: ``[project.entry-points.snncore] $dist = "$package.plugin"``.

snncore imports this module when it discovers plugins and calls the hooks it implements.
"""

from __future__ import annotations

from collections.abc import Callable

import snncore

from $package import model


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(model.${CONST}_MODEL)
'''

CONFTEST = """\
# snncore's pytest plugin (normally loaded through its pytest11 entry point; this line keeps the
# suite working with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1).
pytest_plugins = ["snncore.testing"]
"""

TEST_CONFORMANCE = '''\
"""snncore's conformance suite: every generic check (shapes, dtypes, state threading, pickling,
per-neuron parameters, gradients, long runs, backends, torch.compile, the surrogate gradient)
on every model $dist registers, one test each."""

from snncore.testing import conformance_suite

test_conformance = conformance_suite("$dist")
'''

TEST_MODEL = '''\
"""The $name step by hand: with dt·tau_mem_inv = 0.001·100 = 0.1 and v_leak = v_reset = 0, a
constant input x = 5 gives v1 = v + 0.1·(5 − v)."""

from __future__ import annotations

import snncore
import torch
from torch.testing import assert_close

from $package import (
    $Class,
    ${Class}Cell,
    ${Class}Parameters,
)


def test_three_steps_by_hand():
    # v: 0 -> 0.5 (0.1·5) -> 0.95 (0.5 + 0.1·4.5) -> 1.355 (0.95 + 0.1·4.05) > v_th = 1: spike,
    # reset to v_reset = 0.
    spikes, state = $Class()(torch.full((3, 1, 1), 5.0))
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0]
    assert_close(state.v, torch.zeros(1, 1))


def test_below_threshold_voltage_by_hand():
    # From v = 0 with x = 5 and v_th = 2: 0.5 then 0.95, no spike.
    p = ${Class}Parameters(v_th=2.0)
    cell = ${Class}Cell(p=p)
    z, state = cell(torch.full((1, 1), 5.0))
    z, state = cell(torch.full((1, 1), 5.0), state)
    assert z.item() == 0.0
    assert_close(state.v, torch.full((1, 1), 0.95))


def test_registered_under_its_name():
    layer = snncore.create("$name", variant="layer")
    assert isinstance(layer, $Class)
    assert layer.model is snncore.get_model("$name")
'''

README = """\
# $dist — the `$name` neuron model for snncore

A plugin for [snncore](https://pypi.org/project/snncore/): it registers the neuron model
`$name` (a leaky integrate-and-fire neuron, the input current entering the voltage directly) and
the Norse-style classes `${Class}Cell`, `${Class}RecurrentCell`, `$Class` and `${Class}Recurrent`.

```
$package/model.py    parameters, states, step functions, initial states, the NeuronModel, classes
$package/plugin.py   the hook that registers the model
pyproject.toml       the entry point: [project.entry-points.snncore] $dist = "$package.plugin"
tests/               snncore's conformance suite, and the step worked by hand
```

## Install and check

```
pip install -e .            # into the environment where snncore and torch are installed
snn list-models --family $name
snn info $name
pytest                      # the conformance suite and the hand-worked tests
```

(In an environment that already has snncore and torch, `pip install --no-deps
--no-build-isolation -e .` installs nothing else; an editable install needs `editables`.)

## Use

```python
import torch
import snncore

layer = snncore.create("$name", variant="layer")
spikes, state = layer(torch.full((100, 2, 8), 2.0))  # (time, batch, neurons)
```

## The model

One forward-Euler step of `dt` seconds (default 0.001):

```
v1 = v + dt·tau_mem_inv·((v_leak − v) + x)
z  = Θ(v1 − v_th)
v' = (1 − z)·v1 + z·v_reset
```

| parameter | default | unit |
|---|---|---|
| `tau_mem_inv` | 100 | 1/s |
| `v_leak` | 0 | V |
| `v_th` | 1 | V |
| `v_reset` | 0 | V |
| `method` | `"super"` | surrogate gradient name |
| `alpha` | 100 | surrogate sharpness |

Make it your own model: change the equations in `$package/model.py` (and this table), keep the
conformance suite passing, and add hand-worked tests of your step to `tests/`.
"""

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "$package/__init__.py": INIT,
    "$package/model.py": MODEL,
    "$package/plugin.py": PLUGIN,
    "tests/conftest.py": CONFTEST,
    "tests/test_conformance.py": TEST_CONFORMANCE,
    "tests/test_$name.py": TEST_MODEL,
}
