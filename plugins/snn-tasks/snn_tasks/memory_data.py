"""The store/recall data set of the memory task, and its LightningDataModule.

A sequence is ``pairs`` blocks of ``periods`` periods of ``period_length`` time steps (``dt``
seconds each).  Four logical input channels, each a population of ``population`` Poisson
neurons, laid out channel after channel (with the defaults, 4 × 5 = 20 inputs):

=========  ============  ======================================================================
channel    inputs        active (Poisson, independent per input neuron and step)
=========  ============  ======================================================================
bit 0      0 .. 4        periods whose data bit is 0, at ``data_rate`` Hz
bit 1      5 .. 9        periods whose data bit is 1, at ``data_rate`` Hz
store      10 .. 14      the store period, at ``command_rate`` Hz
recall     15 .. 19      the recall period, at ``command_rate`` Hz
=========  ============  ======================================================================

Every period carries one random data bit, except recall periods, where both data channels are
silent.  Each block has one store period, uniform in its first half, and one recall period,
uniform in its second half; the target of the recall period is the bit shown during the store
period of the same block.  Training and validation sequences have one block (12 periods); test
sequences have two, so the network must also overwrite what it stored.

Randomness never comes from the global RNG: sample ``idx`` of a data set is drawn from its own
``torch.Generator`` seeded with ``(seed, stream, idx)``, so a sample is the same whatever order,
process or worker asks for it (which DDP relies on) and the caller's RNG state is untouched.
The training set takes a new stream every epoch (``set_epoch``), the validation and test sets
keep theirs.  After Bellec et al., *Long short-term memory and learning-to-learn in networks of
spiking neurons* (NeurIPS 2018), store/recall task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import lightning
import torch
import torch.utils.data

#: Order of the logical input channels; each occupies ``population`` consecutive inputs.
CHANNELS = ("bit0", "bit1", "store", "recall")
#: Target value of periods without a recall.
NO_RECALL = -1

_MASK64 = (1 << 64) - 1


def _splitmix64(value: int) -> int:
    """One round of SplitMix64: nearby integers become unrelated 64-bit seeds."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def stream_seed(seed: int, stream: int, idx: int) -> int:
    """The generator seed of sample ``idx`` of stream ``stream`` under ``seed``."""
    return _splitmix64(_splitmix64(_splitmix64(seed) ^ stream) ^ idx) >> 1  # < 2**63


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the block on one intra-op thread.  Drawing a sequence is a handful of element-wise
    operations on ~50 000 elements: split over two OpenMP threads on a machine where the other
    core is busy they wait for each other and take 40× longer (0.7 s instead of 0.02 s for a
    batch of 32 sequences of 2 400 steps, measured).  The data loader runs in the training
    process between steps, so the setting is restored before the network runs again."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class StoreRecallSample(NamedTuple):
    """One sequence, with the structure it was drawn from."""

    spikes: torch.Tensor  # (T, 4 * population) float32 0/1
    targets: torch.Tensor  # (pairs * periods,) int64: the bit to recall, or NO_RECALL (-1)
    bits: torch.Tensor  # (pairs * periods,) int64: the data bit of each period (-1 while silent)
    store: torch.Tensor  # (pairs,) int64: index of each block's store period (in the sequence)
    recall: torch.Tensor  # (pairs,) int64: index of each block's recall period


class StoreRecallDataset(torch.utils.data.Dataset):
    """``samples`` store/recall sequences; item ``idx`` is ``(spikes (T, inputs), targets (P,))``.

    ``T = pairs · periods · period_length``, ``P = pairs · periods``; see the module docstring
    for the layout.  Rates are in Hz, ``dt`` in seconds; a rate times ``dt`` is the probability
    of a spike per input neuron and step, so it must not exceed 1.
    """

    def __init__(
        self,
        samples: int,
        *,
        periods: int = 12,
        period_length: int = 200,
        pairs: int = 1,
        population: int = 5,
        data_rate: float = 100.0,
        command_rate: float = 50.0,
        dt: float = 0.001,
        seed: int = 0,
        stream: int = 0,
    ):
        for name, value, least in (
            ("samples", samples, 1),
            ("periods", periods, 2),
            ("period_length", period_length, 1),
            ("pairs", pairs, 1),
            ("population", population, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if periods % 2:
            raise ValueError(f"periods must be even (store in the first half), got {periods}")
        if not dt > 0:
            raise ValueError(f"dt must be positive, got {dt!r}")
        for name, rate in (("data_rate", data_rate), ("command_rate", command_rate)):
            if not 0 <= rate * dt <= 1:
                raise ValueError(
                    f"{name} · dt must be a spike probability in [0, 1], got {rate} Hz · {dt} s"
                )
        self.samples, self.periods, self.period_length = samples, periods, period_length
        self.pairs, self.population = pairs, population
        self.data_rate, self.command_rate, self.dt = float(data_rate), float(command_rate), dt
        self.seed, self.stream = int(seed), int(stream)

    @property
    def steps(self) -> int:
        """Time steps per sequence."""
        return self.pairs * self.periods * self.period_length

    @property
    def inputs(self) -> int:
        """Input neurons: 4 channels × population."""
        return len(CHANNELS) * self.population

    def set_epoch(self, epoch: int) -> None:
        """Draw from the stream of ``epoch`` from now on (the training set's fresh data)."""
        self.stream = int(epoch)

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.sample(idx)
        return sample.spikes, sample.targets

    def sample(self, idx: int) -> StoreRecallSample:
        """Sample ``idx`` with its bits and store/recall periods (same draw as ``[idx]``)."""
        if not 0 <= idx < self.samples:
            raise IndexError(f"sample {idx} out of range for {self.samples} samples")
        with _one_thread():
            return self._draw(idx)

    def _draw(self, idx: int) -> StoreRecallSample:
        g = torch.Generator().manual_seed(stream_seed(self.seed, self.stream, idx))
        half = self.periods // 2
        offsets = torch.arange(self.pairs) * self.periods
        store = torch.randint(0, half, (self.pairs,), generator=g) + offsets
        recall = torch.randint(half, self.periods, (self.pairs,), generator=g) + offsets
        bits = torch.randint(0, 2, (self.pairs * self.periods,), generator=g)
        targets = torch.full_like(bits, NO_RECALL)
        targets[recall] = bits[store]
        bits[recall] = NO_RECALL  # data silent while recalling

        # rate of each (period, channel) in spikes per step
        n_periods = self.pairs * self.periods
        rates = torch.zeros(n_periods, len(CHANNELS))
        shown = bits >= 0
        rates[shown, bits[shown]] = self.data_rate * self.dt
        rates[store, 2] = self.command_rate * self.dt
        rates[recall, 3] = self.command_rate * self.dt
        draws = torch.rand(
            n_periods, self.period_length, len(CHANNELS), self.population, generator=g
        )
        spikes = (draws < rates[:, None, :, None]).to(torch.float32)
        return StoreRecallSample(
            spikes=spikes.reshape(self.steps, self.inputs),
            targets=targets,
            bits=bits,
            store=store,
            recall=recall,
        )


def collate_time_major(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack samples into ``(spikes (T, B, inputs), targets (B, P))``: time-major input."""
    with _one_thread():
        spikes = torch.stack([s for s, _ in batch], dim=1)
        targets = torch.stack([t for _, t in batch], dim=0)
    return spikes, targets


class MemoryDataModule(lightning.LightningDataModule):
    """Training, validation and test store/recall sets for ``snn train memory``.

    Training sequences are redrawn every epoch (stream = epoch); validation and test sets are
    fixed.  Training and validation sequences hold ``train_pairs`` store/recall blocks (1 by
    default), test sequences ``test_pairs`` (2 by default).
    """

    # streams 0 .. 2**20 are the training epochs; these are far from any epoch
    VAL_STREAM = 1 << 40
    TEST_STREAM = (1 << 40) + 1

    def __init__(
        self,
        *,
        train_samples: int = 512,
        val_samples: int = 64,
        test_samples: int = 256,
        batch_size: int = 32,
        periods: int = 12,
        period_length: int = 200,
        train_pairs: int = 1,
        test_pairs: int = 2,
        population: int = 5,
        data_rate: float = 100.0,
        command_rate: float = 50.0,
        dt: float = 0.001,
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        common: dict[str, Any] = {
            "periods": periods,
            "period_length": period_length,
            "population": population,
            "data_rate": data_rate,
            "command_rate": command_rate,
            "dt": dt,
            "seed": seed,
        }
        self.train_set = StoreRecallDataset(train_samples, pairs=train_pairs, stream=0, **common)
        self.val_set = StoreRecallDataset(
            val_samples, pairs=train_pairs, stream=self.VAL_STREAM, **common
        )
        self.test_set = StoreRecallDataset(
            test_samples, pairs=test_pairs, stream=self.TEST_STREAM, **common
        )

    def _loader(self, dataset: StoreRecallDataset) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, shuffle=False, collate_fn=collate_time_major
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.test_set)
