"""``snn train TASK [OPTIONS]``: one sub-command per registered task.

Each ``TrainingTask`` becomes a command whose options are the common ones
(:data:`snn_tasks.training.COMMON_OPTIONS`, with the task's own defaults) followed by the task's
own; ``snn train --help`` lists every task with its options.  A task registered by another plugin
that is not a ``TrainingTask`` (only ``name``, ``summary`` and ``run(**options)``) is offered
without options.  Commands are built when asked for, and Lightning is imported only when a task
runs, so ``snn --help`` stays fast.
"""

from __future__ import annotations

import copy
from typing import Any

import click

from snn_tasks.training import COMMON_OPTIONS, option_name


class UnknownTaskError(click.ClickException):
    """An unknown or ambiguous task name: exit code 2 with the registry's suggestions."""

    exit_code = 2


def _tasks() -> Any:
    from snncore.plugins import get_manager

    return get_manager().registry("task")


def _task_options(task: Any) -> list[click.Option]:
    """The command's options: common ones (task defaults applied), then the task's own."""
    defaults = dict(getattr(task, "defaults", {}))
    options = []
    for common in COMMON_OPTIONS:
        option = copy.copy(common)
        if option_name(option) in defaults:
            option.default = defaults[option_name(option)]
        options.append(option)
    return options + list(getattr(task, "options", ()))


def task_command(name: str, task: Any) -> click.Command:
    """The ``snn train NAME`` command of ``task``."""
    if hasattr(task, "options"):
        params: list[click.Parameter] = list(_task_options(task))

        def callback(**options: Any) -> None:
            task.run(**options)

        help_text = (
            f"{task.summary}.\n\nThe common options map onto the Lightning Trainer; the others "
            "are the task's own (docs/tasks.md)."
        )
    else:
        params = []

        def callback(**options: Any) -> None:
            task.run()

        help_text = f"{task.summary}.\n\n(a task of another plugin: it takes no options here)"
    return click.Command(name, params=params, callback=callback, help=help_text)


class TrainGroup(click.Group):
    """``snn train``: commands made from the task registry, help listing every task's options."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(entry.name for entry in _tasks().entries())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from snncore.registry import NameConflictError, UnknownNameError

        try:
            entry = _tasks().entry(cmd_name)
        except (UnknownNameError, NameConflictError) as exc:
            raise UnknownTaskError(str(exc)) from None
        return task_command(cmd_name, entry.obj)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        entries = list(_tasks().entries())
        if not entries:
            formatter.write_paragraph()
            formatter.write_text("No task is installed (snn list-tasks).")
            return
        with formatter.section("Tasks"):
            formatter.write_dl([(e.name, e.obj.summary) for e in entries])
        for entry in entries:
            task = entry.obj
            own = [o.get_help_record(ctx) for o in getattr(task, "options", ())]
            overrides = ", ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in getattr(task, "defaults", {}).items()
            )
            with formatter.section(f"Options of {entry.name}"):
                if overrides:
                    formatter.write_text(f"(its defaults for common options: {overrides})")
                if own:
                    formatter.write_dl([r for r in own if r is not None])
                elif not overrides:
                    formatter.write_text("(none)")
        with formatter.section("Common options (every task)"):
            formatter.write_dl([r for o in COMMON_OPTIONS if (r := o.get_help_record(ctx))])


@click.group(
    "train",
    cls=TrainGroup,
    short_help="Train a task (memory, mnist, ...) with PyTorch Lightning.",
    options_metavar="",
    subcommand_metavar="TASK [OPTIONS]",
)
def train_command() -> None:
    """Train TASK with PyTorch Lightning: a progress bar, a CSV log, a checkpoint every epoch,
    and the final metrics printed and written to OUTPUT/metrics.json.

    `snn train TASK --help` shows one task's options; `--resume` continues the run in
    --output from its newest checkpoint; `--devices 2 --strategy ddp` trains in two processes
    (docs/tasks.md).
    """
