"""The output directory of a run: which files a run owns, ``--overwrite``, what ``--resume`` reads.

A run writes files of a few fixed names (:data:`RUN_FILES`), and only those belong to it.
Anything else under ``OUTPUT`` — a log of another program in ``logs/``, a model of another
project in ``checkpoints/`` — is the user's: the "previous run" guard ignores it, ``--overwrite``
deletes only the run's files and keeps the rest (a directory is removed only once empty), and
``--resume`` never reads it.

``--resume`` continues from the *newest* of the run's checkpoints, judged by the ``global_step``
and ``epoch`` stored inside them, not by the name ``last.ckpt``: after a run directory is moved
or copied, Lightning once wrote ``last-v1.ckpt`` beside a stale ``last.ckpt``, and a later
``--resume`` that trusted the name went back to the old state (the checkpoint callback now
overwrites ``last.ckpt`` too, :func:`checkpoint_callback`).  Every candidate is read before
training starts, so a damaged, empty or foreign file is one line naming it and the others.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

CHECKPOINTS = "checkpoints"

#: the files a run writes, as regular expressions over their path relative to ``OUTPUT``.
RUN_FILES: tuple[str, ...] = (
    r"metrics\.json",
    CHECKPOINTS + r"/(epoch=\d+|last)(-v\d+)?\.ckpt",
    r"logs/version_\d+/(metrics\.csv|hparams\.yaml)",
    r"ranks/rank-\d+\.json",
    r"plots/(curves|raster)\.png",  # snn_tasks.plots
    r"tensorboard/version_\d+/(events\.out\.tfevents\.[^/]+|hparams\.yaml)",  # --logger
)
_RUN_FILE = re.compile("|".join(f"(?:{pattern})" for pattern in RUN_FILES))


class RunDirectoryError(click.ClickException):
    """A run directory that cannot be used as asked (exit code 2, one line)."""

    exit_code = 2


def _relative(output: Path, path: Path) -> str:
    return path.relative_to(output).as_posix()


def _files(output: Path) -> list[Path]:
    if not output.is_dir():
        return []
    return sorted(p for p in output.rglob("*") if p.is_file() or p.is_symlink())


def run_files(output: Path) -> list[Path]:
    """The files of a previous run in ``output`` (what ``--overwrite`` deletes)."""
    return [p for p in _files(output) if _RUN_FILE.fullmatch(_relative(output, p))]


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_writable(output: Path) -> None:
    """Create ``output`` and write a probe file into it, so that a directory the run cannot
    write to is one line now rather than a traceback from Lightning later."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunDirectoryError(
            f"--output {output} is not a directory this run can write to ({reason}); "
            "give a writable directory"
        ) from None


def prepare_fresh(output: Path, overwrite: bool) -> list[Path]:
    """Refuse an ``output`` holding a previous run, or with ``overwrite`` delete that run's
    files (only those, see the module docstring).  Returns the other files kept there."""
    previous = run_files(output)
    if previous and not overwrite:
        tops = sorted({_relative(output, p).split("/")[0] for p in previous})
        raise RunDirectoryError(
            f"{output} holds a previous run ({', '.join(tops)}): "
            "pass --resume to continue it, --overwrite to replace it, or another --output"
        )
    for path in previous:
        path.unlink()
    for directory in sorted({p.parent for p in previous}, key=lambda d: -len(d.parts)):
        while directory != output and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            directory = directory.parent
    return [p for p in _files(output) if not _RUN_FILE.fullmatch(_relative(output, p))]


def _problem(path: Path, exc: BaseException) -> str:
    """What is wrong with a checkpoint ``torch.load`` failed on, in a few words."""
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    text = str(exc)
    if "central directory" in text or "zip archive" in text or isinstance(exc, EOFError):
        return "the file is truncated or damaged (not a complete PyTorch checkpoint)"
    return "the file is not a PyTorch checkpoint"


def read_checkpoint(path: Path) -> Mapping[str, Any]:
    """The checkpoint at ``path`` (tensors memory-mapped, not read), or ``ValueError`` with the
    problem.  Loaded with ``weights_only=True``, as Lightning loads a local checkpoint."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # a damaged file fails in many ways (zip, pickle, EOF, ...)
        raise ValueError(_problem(path, exc)) from None
    needed = ("state_dict", "epoch", "global_step")
    if not isinstance(checkpoint, Mapping) or any(key not in checkpoint for key in needed):
        raise ValueError("the file is not a Lightning checkpoint (no state_dict, epoch, step)")
    return checkpoint


def _resume_error(path: Path, problem: str, others: list[Path]) -> RunDirectoryError:
    names = [p.name for p in others if p != path]
    present = f"other checkpoints there: {_listing(names)}" if names else "no other checkpoint"
    return RunDirectoryError(f"cannot resume from {path}: {problem}; {present}")


def newest_checkpoint(output: Path) -> tuple[Path, Mapping[str, Any]]:
    """The run's checkpoint with the largest (``global_step``, ``epoch``), ``last*`` first on a
    tie, and its contents; any unreadable checkpoint of the run is an error naming it."""
    directory = output / CHECKPOINTS
    paths = [p for p in run_files(output) if p.parent == directory]
    if not paths:
        raise RunDirectoryError(
            f"nothing to resume: {directory / 'last.ckpt'} does not exist "
            f"(nor any epoch=NNN.ckpt in {directory})"
        )
    loaded = []
    for path in paths:
        try:
            loaded.append((path, read_checkpoint(path)))
        except ValueError as exc:
            raise _resume_error(path, str(exc), paths) from None

    def age(item: tuple[Path, Mapping[str, Any]]) -> tuple[int, int, bool, str]:
        path, checkpoint = item
        return (
            checkpoint["global_step"],
            checkpoint["epoch"],
            path.name.startswith("last"),
            path.name,
        )

    return max(loaded, key=age)


def check_fits(path: Path, checkpoint: Mapping[str, Any], module: Any) -> None:
    """Refuse a checkpoint whose parameters do not fit ``module`` (a changed ``--hidden``, ...),
    naming the settings that differ, before Lightning fails with a page of size mismatches."""
    own = module.state_dict()
    stored = checkpoint["state_dict"]
    mismatched = sorted(set(own) ^ set(stored)) or [
        name for name in own if tuple(own[name].shape) != tuple(stored[name].shape)
    ]
    if not mismatched:
        return
    then = checkpoint.get("hyper_parameters") or {}
    now = dict(getattr(module, "hparams", {}))
    changed = [
        f"{k}={then[k]!r} there, {now[k]!r} here"
        for k in sorted(then)
        if k in now and then[k] != now[k]
    ]
    detail = "; ".join(changed) if changed else f"{mismatched[0]} differs"
    others = [p for p in run_files(path.parent.parent) if p.parent == path.parent]
    raise _resume_error(
        path,
        f"it was trained with other settings ({detail}): resume with the run's own options",
        others,
    )


def checkpoint_callback(output: Path) -> Any:
    """Lightning's ``ModelCheckpoint`` for a run: ``epoch=NNN.ckpt`` after every epoch and
    ``last.ckpt``, overwritten in place (no ``-vN`` copies beside a stale ``last.ckpt``)."""
    import lightning

    return lightning.pytorch.callbacks.ModelCheckpoint(
        dirpath=output / CHECKPOINTS,
        filename="{epoch:03d}",
        save_top_k=-1,
        every_n_epochs=1,
        save_last=True,
        enable_version_counter=False,
    )
