"""snncore's conformance suite: every generic check, on every model a plugin registers.

A plugin author adds one test module (``snn new-plugin`` writes it)::

    from snncore.testing import conformance_suite

    test_conformance = conformance_suite("snn-mymodel")

and pytest runs each check on each model and variant the distribution ``snn-mymodel``
registers, one test per case: ``test_conformance[mymodel/layer-state_threading]``.  A failure
names the model, the variant and the check: ``[mymodel/layer] state threading: ...``.

This package is also the pytest plugin that parametrises those tests (pytest loads it through
the ``pytest11`` entry point ``snncore.testing``; with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set,
write ``pytest_plugins = ["snncore.testing"]`` in a ``conftest.py``).  Its options:
``--snncore-compile {family,all,off}``, ``--snncore-compile-backend NAME`` and
``--snncore-long-steps N`` (or the environment variables ``SNNCORE_TEST_COMPILE``,
``SNNCORE_TEST_COMPILE_BACKEND``, ``SNNCORE_TEST_LONG_STEPS``).

The checks (``CHECKS``), per variant unless noted:

==================  ===============================================================================
shapes              output and state shapes for several batch and neuron shapes; the step returns a
                    state like the initial state; recorded states; runs under ``torch.no_grad()``
dtypes              float32 and float64 modules keep the dtype, stay finite, agree
initial_state       ``state=None`` equals the explicit initial state; it has the requested dtype and
                    no gradient from learnable parameters
state_threading     layers: two half runs with the state carried equal one run, the incoming state
                    is not modified; cells: stepping the cell equals the layer
serialization       ``state_dict`` round trip with learnt values, pickle, deepcopy
per_neuron          per-neuron parameter tensors broadcast: neuron k behaves as a module of its values
gradients           gradients reach the input, weights, module tensors and learnable parameters;
                    non-spiking models: autograd equals finite differences
no_steps            layers: ``T = 0`` input gives a ``(0, ...)`` output and the state back unchanged
long_run            layers: no inf/NaN over 1000 float32 steps, drives 0 … ±100× and noise
backends            layers: every other backend claiming the model, ``feed_forward_sequence`` and
                    ``adjoint=True`` agree with the eager step loop
compile             layers: ``torch.compile`` runs and agrees (one model per family by default)
surrogate           (per model) its surrogate's derivative matches finite differences of the
                    smoothed step where known; its spikes go through ``p.method``
presets             (per model) every preset builds and runs
surrogate/NAME      (per surrogate the plugin registers) the derivative checks above
==================  ===============================================================================

Outside pytest: ``check_model(model)`` returns the failure messages, ``cases(...)`` the cases.
"""

from __future__ import annotations

from snncore.testing._harness import CheckFailure, CheckSkipped, Subject
from snncore.testing._suite import (
    CHECKS,
    Case,
    Check,
    ConformanceError,
    ConformanceSkip,
    Options,
    SelectionError,
    SurrogateCase,
    cases,
    check_model,
    conformance_suite,
)
from snncore.testing._surrogates import BUILTIN_SMOOTHED_STEPS, check_surrogate
from snncore_pytest import (
    pytest_addoption,
    pytest_configure,
    pytest_generate_tests,
)

__all__ = [
    "BUILTIN_SMOOTHED_STEPS",
    "CHECKS",
    "Case",
    "Check",
    "CheckFailure",
    "CheckSkipped",
    "ConformanceError",
    "ConformanceSkip",
    "Options",
    "SelectionError",
    "Subject",
    "SurrogateCase",
    "cases",
    "check_model",
    "check_surrogate",
    "conformance_suite",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
]
