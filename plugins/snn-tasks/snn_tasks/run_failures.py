"""How a run ends when it does not finish: a diverged loss, a SIGTERM — never with exit code 0.

A scheduler, a script or ``make`` only sees the exit status, so a run that produced nothing
usable must not exit 0:

* **diverged** (exit 1): a training loss that became NaN or infinite (``--learning-rate inf``,
  ``--precision 16-true`` overflowing, ...) stops the run at that step, before it reports a
  meaningless accuracy; no ``metrics.json`` is written.
* **interrupted** (exit 143 = 128 + SIGTERM, what a shell reports for a process SIGTERM
  killed): Lightning turns SIGTERM into ``SIGTERMException``, a ``SystemExit`` *without a code*,
  i.e. exit 0.  The checkpoints already written are kept and the line says how to resume.

Either is one line, ``Error: ...``; ``metrics.json`` is written with ``null`` for a
non-finite value (:func:`json_safe`), since bare ``NaN`` is not JSON.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click


class RunFailed(click.ClickException):
    """The run itself failed (its loss diverged): one line, exit code 1."""

    exit_code = 1


class Interrupted(click.ClickException):
    """The run was stopped by SIGTERM: one line, exit code 128 + 15."""

    exit_code = 128 + signal.SIGTERM


class Diverged(Exception):
    """Raised inside Lightning's loop when a loss is not finite (becomes :class:`RunFailed`)."""


def _value(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # not a scalar
        return None


def non_finite_losses(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The logged losses (``*loss*`` names) among ``metrics`` that are NaN or infinite."""
    found = {}
    for name, value in metrics.items():
        number = _value(value)
        if "loss" in name and number is not None and not math.isfinite(number):
            found[name] = number
    return found


def finite_loss_callback() -> Any:
    """A Lightning callback raising :class:`Diverged` at the first non-finite loss: after each
    training step (the loss ``training_step`` returned) and after each validation."""
    import lightning

    class FiniteLoss(lightning.Callback):
        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *args: Any) -> None:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            number = _value(loss)
            if number is not None and not math.isfinite(number):
                raise Diverged(
                    f"the training loss became {number} at step {trainer.global_step} "
                    f"(epoch {trainer.current_epoch})"
                )

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            if trainer.sanity_checking:
                return
            bad = non_finite_losses(trainer.callback_metrics)
            if bad:
                name, number = next(iter(bad.items()))
                raise Diverged(
                    f"{name} became {number} after step {trainer.global_step} "
                    f"(epoch {trainer.current_epoch})"
                )

    return FiniteLoss()


def diverged(exc: Diverged) -> RunFailed:
    """The one-line error of a diverged run."""
    return RunFailed(
        f"{exc}: the run diverged and was stopped (try a smaller --learning-rate or "
        "another --precision); no metrics.json written"
    )


def interrupted(task_name: str, trainer: Any, last: Path | None) -> Interrupted:
    """The one-line error of a run stopped by SIGTERM: where it was, what is kept, how to go on."""
    where = f"stopped by SIGTERM in epoch {trainer.current_epoch} (step {trainer.global_step})"
    if last is None:
        return Interrupted(
            f"{where} before its first checkpoint: start it again "
            f"(snn train {task_name} ... --overwrite)"
        )
    return Interrupted(
        f"{where}; its last checkpoint {last} is kept: continue with the same command "
        f"and --resume (snn train {task_name} ... --resume)"
    )


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON ``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
