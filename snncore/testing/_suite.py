"""The suite: which checks apply to which model and variant, the cases that result, how a case
runs and how its failure is named."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from snncore.protocols import NeuronModel
from snncore.testing import _checks, _interface, _runtime, _surrogates
from snncore.testing._harness import LOOPS, CheckFailure, CheckSkipped, Subject, method_paths

COMPILE_MODES = ("off", "family", "all")


class ConformanceError(AssertionError):
    """A model failed a conformance check; the message starts with ``[model/variant] check:``."""


class ConformanceSkip(Exception):
    """A check cannot run on this platform; the message says why."""


@attrs.frozen
class Options:
    """How the suite runs.  ``compile``: ``"family"`` (default: one model per family),
    ``"all"`` or ``"off"``; ``compile_backend``: ``torch.compile``'s backend (``aot_eager`` by
    default: it needs no C compiler and takes a fraction of a second; ``inductor`` is the real
    thing); ``long_steps``: the length of the long run; ``smoothed_steps``: surrogate name ->
    ``S(x, alpha)`` whose derivative the surrogate should be."""

    compile: str = attrs.field(default="family", validator=attrs.validators.in_(COMPILE_MODES))
    compile_backend: str = "aot_eager"
    long_steps: int = 1000
    smoothed_steps: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_environment(cls, **overrides: Any) -> Options:
        """Defaults, then ``SNNCORE_TEST_COMPILE``, ``SNNCORE_TEST_COMPILE_BACKEND`` and
        ``SNNCORE_TEST_LONG_STEPS``, then ``overrides`` (None values ignored)."""
        values: dict[str, Any] = {}
        for field, variable, convert in (
            ("compile", "SNNCORE_TEST_COMPILE", str),
            ("compile_backend", "SNNCORE_TEST_COMPILE_BACKEND", str),
            ("long_steps", "SNNCORE_TEST_LONG_STEPS", int),
        ):
            if os.environ.get(variable):
                values[field] = convert(os.environ[variable])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@attrs.frozen
class Check:
    name: str
    title: str
    function: Callable[[Subject, str, Options], None]
    #: ``applies(model, variant, options, representative) -> bool``; model-level checks use the
    #: variant ``None``.
    applies: Callable[..., bool]
    per_variant: bool = True


def _loops(model: NeuronModel, variant: str | None, options: Options, rep: bool) -> bool:
    return variant in LOOPS


def _always(model: NeuronModel, variant: str | None, options: Options, rep: bool) -> bool:
    return True


def _compile_applies(model: NeuronModel, variant: str | None, options: Options, rep: bool) -> bool:
    """``all``: every layer and recurrent layer; ``family``: the layer (else the recurrent
    layer) of one model per family; ``off``: none."""
    if variant not in LOOPS or options.compile == "off":
        return False
    if options.compile == "all":
        return True
    first_loop = "layer" if "layer" in model.variants else "recurrent"
    return rep and variant == first_loop


def _backends_apply(model: NeuronModel, variant: str | None, options: Options, rep: bool) -> bool:
    return variant in LOOPS and bool(_runtime.alternative_paths(model, variant))


def _surrogate_applies(
    model: NeuronModel, variant: str | None, options: Options, rep: bool
) -> bool:
    return model.output == "spikes" and bool(method_paths(model.parameters()))


def _presets_apply(model: NeuronModel, variant: str | None, options: Options, rep: bool) -> bool:
    return bool(model.presets)


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("shapes", "shapes", _checks.check_shapes, _always),
        Check("dtypes", "float32/float64", _checks.check_dtypes, _always),
        Check("initial_state", "state=None / initial state", _checks.check_initial_state, _always),
        Check("state_threading", "state threading", _checks.check_state_threading, _always),
        Check("serialization", "state_dict/pickle", _checks.check_serialization, _always),
        Check("per_neuron", "per-neuron parameters", _checks.check_per_neuron_parameters, _always),
        Check("gradients", "gradients", _checks.check_gradients, _always),
        Check("input_layouts", "unbatched / batch axes", _interface.check_input_layouts, _always),
        Check("input_dtypes", "bool / integer input", _interface.check_input_dtypes, _always),
        Check(
            "initial_state_grad",
            "initial state gradient",
            _interface.check_initial_state_grad,
            _always,
        ),
        Check(
            "attached_parameters",
            "p tensors requiring grad",
            _interface.check_attached_parameters,
            _always,
        ),
        Check("no_steps", "T = 0 input", _checks.check_no_steps, _loops),
        Check("long_run", "long run finite", _runtime.check_long_run, _loops),
        Check("backends", "backends agree", _runtime.check_backends, _backends_apply),
        Check("compile", "torch.compile", _runtime.check_compile, _compile_applies),
        Check(
            "surrogate",
            "surrogate gradient",
            _surrogates.check_model_surrogate,
            _surrogate_applies,
            False,
        ),
        Check("presets", "presets", _runtime.check_presets, _presets_apply, False),
    )
}

_SUBJECTS: dict[int, Subject] = {}


def _subject(model: NeuronModel) -> Subject:
    """One Subject per model object, so that its calibrated drive is found once per process."""
    found = _SUBJECTS.get(id(model))
    if found is None or found.model is not model:
        found = _SUBJECTS[id(model)] = Subject(model)
    return found


@attrs.frozen
class Case:
    """One check of one model (and variant): ``case.run()`` raises :class:`ConformanceError`."""

    model: NeuronModel
    variant: str | None
    check: Check
    options: Options = attrs.field(factory=Options)

    @property
    def label(self) -> str:
        return self.model.name if self.variant is None else f"{self.model.name}/{self.variant}"

    @property
    def id(self) -> str:
        return f"{self.label}-{self.check.name}"

    def run(self, pytest_skip: bool = True) -> None:
        """Run the check.  A check that cannot run here skips: ``pytest.skip`` under pytest
        (unless ``pytest_skip=False``), else :class:`ConformanceSkip`."""
        prefix = f"[{self.label}] {self.check.title}"
        try:
            self.check.function(_subject(self.model), self.variant or "", self.options)
        except CheckSkipped as exc:
            _skip(f"{prefix}: {exc}", pytest_skip)
        except CheckFailure as exc:
            raise ConformanceError(f"{prefix}: {exc}") from exc
        except Exception as exc:
            raise ConformanceError(f"{prefix}: raised {type(exc).__name__}: {exc}") from exc


@attrs.frozen
class SurrogateCase:
    """The check of one registered surrogate (id ``surrogate/NAME``)."""

    surrogate: Any
    options: Options = attrs.field(factory=Options)

    @property
    def id(self) -> str:
        return f"surrogate/{self.surrogate.name}"

    def run(self, pytest_skip: bool = True) -> None:
        try:
            for alpha in (2.0, 100.0):
                _surrogates.check_surrogate(self.surrogate, alpha, self.options.smoothed_steps)
        except CheckFailure as exc:
            raise ConformanceError(f"[surrogate {self.surrogate.name}] derivative: {exc}") from exc
        except Exception as exc:
            raise ConformanceError(
                f"[surrogate {self.surrogate.name}] derivative: raised {type(exc).__name__}: {exc}"
            ) from exc


class SelectionError(LookupError):
    """The plugins named for the suite are not installed or registered nothing."""


def _select(kind: str, plugins: Iterable[str]) -> list[Any]:
    """Entries of ``kind`` registered by the named plugins (plugin or distribution names)."""
    from snncore.plugins import get_manager

    manager = get_manager()
    registry = manager.registry(kind)
    wanted = set(plugins)
    return [
        e
        for e in registry.entries()
        if e.provider.plugin in wanted or e.provider.distribution in wanted
    ]


def check_plugins_exist(plugins: Iterable[str]) -> None:
    """Raise :class:`SelectionError` for a named plugin that is not there or failed, at import
    or in any hook (a failed ``register_surrogates`` leaves its surrogates unchecked)."""
    from snncore.plugins import get_manager

    manager = get_manager()
    manager.build_all()  # run every hook first: a hook's failure is recorded when it runs
    records = manager.records.values()
    for name in plugins:
        found = [r for r in records if name in (r.name, r.distribution)]
        if not found:
            known = sorted({r.distribution for r in records if not r.builtin})
            raise SelectionError(
                f"no installed snncore plugin is named {name!r} (installed: {', '.join(known) or 'none'}); "
                f"install it (pip install -e .) before running its conformance suite"
            )
        for record in found:
            if record.status == "failed":
                raise SelectionError(f"plugin {record.name!r} failed: {record.error}")


def cases(
    *plugins: str,
    models: Iterable[NeuronModel | str] | None = None,
    checks: Iterable[str] | None = None,
    skip: Mapping[str, str] | None = None,
    options: Options | None = None,
    surrogates: bool = True,
) -> list[Case | SurrogateCase]:
    """Every applicable check of every model the named plugins register (all registered models
    when neither ``plugins`` nor ``models`` is given), and of every surrogate they register.

    ``models`` adds models by object or registry name; ``checks`` keeps only those check names;
    ``skip`` maps case ids (``"lif/layer-compile"``), ``"MODEL"`` or ``"CHECK"`` to a reason
    and leaves those cases out.
    """
    from snncore.api import get_model, list_models

    options = options or Options.from_environment()
    check_plugins_exist(plugins)
    selected: list[NeuronModel] = [e.obj for e in _select("model", plugins)]
    for m in models or ():
        selected.append(get_model(m) if isinstance(m, str) else m)
    if not plugins and models is None:
        selected = list_models()
    if plugins and not selected and not _select("surrogate", plugins):
        raise SelectionError(f"the plugins {list(plugins)} register no model and no surrogate")
    wanted = set(checks) if checks is not None else set(CHECKS)
    unknown = wanted - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; the checks are {list(CHECKS)}")
    skip = dict(skip or {})
    representatives = _representatives(selected)
    found: list[Case | SurrogateCase] = []
    for model in selected:
        representative = any(model is r for r in representatives)
        for check in CHECKS.values():
            if check.name not in wanted:
                continue
            variants = model.variants if check.per_variant else (None,)
            for variant in variants:
                if not check.applies(model, variant, options, representative):
                    continue
                case = Case(model, variant, check, options)
                if not {case.id, model.name, check.name} & set(skip):
                    found.append(case)
    if surrogates and plugins:
        for entry in _select("surrogate", plugins):
            case = SurrogateCase(entry.obj, options)
            if case.id not in skip:
                found.append(case)
    return found


def _representatives(models: list[NeuronModel]) -> list[NeuronModel]:
    """Per family, the model offering the most variants (the first by name among equals)."""
    best: dict[str, NeuronModel] = {}
    for model in sorted(models, key=lambda m: (-len(m.variants), m.name)):
        best.setdefault(model.family, model)
    return list(best.values())


def check_model(model: NeuronModel, *, options: Options | None = None, **kwargs: Any) -> list[str]:
    """Run every check on ``model`` outside pytest; returns the failure messages (empty: it
    conforms).  Skipped checks are left out."""
    failures = []
    for case in cases(models=[model], options=options, **kwargs):
        try:
            case.run(pytest_skip=False)
        except ConformanceError as exc:
            failures.append(str(exc))
        except ConformanceSkip:
            pass
    return failures


def conformance_suite(
    *plugins: str,
    models: Iterable[NeuronModel | str] | None = None,
    checks: Iterable[str] | None = None,
    skip: Mapping[str, str] | None = None,
    smoothed_steps: Mapping[str, Any] | None = None,
) -> Callable[..., None]:
    """A pytest test function running every check on every model of ``plugins``::

        from snncore.testing import conformance_suite

        test_conformance = conformance_suite("snn-mymodel")

    The snncore pytest plugin (entry point ``snncore.testing``) parametrises it at collection,
    one test per case (``test_conformance[mymodel/layer-state_threading]``).
    """
    selection = {
        "plugins": plugins,
        "models": list(models) if models is not None else None,
        "checks": list(checks) if checks is not None else None,
        "skip": dict(skip or {}),
        "smoothed_steps": dict(smoothed_steps or {}),
    }

    def test_conformance(snncore_case: Any) -> None:
        snncore_case.run()

    test_conformance.snncore_conformance = selection  # type: ignore[attr-defined]
    test_conformance.__doc__ = f"snncore conformance suite for {', '.join(plugins) or 'all models'}"
    return test_conformance


def _skip(message: str, pytest_skip: bool) -> None:
    """Under pytest a platform skip is ``pytest.skip``; elsewhere :class:`ConformanceSkip`."""
    if pytest_skip and "pytest" in sys.modules:
        import pytest

        pytest.skip(message)
    raise ConformanceSkip(message)
