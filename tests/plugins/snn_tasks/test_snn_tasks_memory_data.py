"""The store/recall generator (snn_tasks.memory_data): layout, rates, structure, determinism.

Layout under test (population 5): inputs 0-4 bit 0, 5-9 bit 1, 10-14 store, 15-19 recall.
"""

from __future__ import annotations

import math

import pytest
import torch
from snn_tasks.memory_data import (
    NO_RECALL,
    MemoryDataModule,
    StoreRecallDataset,
    collate_time_major,
)

BIT0, BIT1, STORE, RECALL = (slice(0, 5), slice(5, 10), slice(10, 15), slice(15, 20))


def periods_of(sample, dataset: StoreRecallDataset) -> torch.Tensor:
    """Spikes as (periods, steps per period, inputs)."""
    return sample.spikes.reshape(-1, dataset.period_length, dataset.inputs)


def test_shapes_and_channel_layout():
    ds = StoreRecallDataset(20, periods=12, period_length=40, seed=3)
    for idx in range(len(ds)):
        s = ds.sample(idx)
        assert s.spikes.shape == (12 * 40, 20) and s.spikes.dtype == torch.float32
        assert s.targets.shape == (12,)
        assert set(s.spikes.unique().tolist()) <= {0.0, 1.0}
        per = periods_of(s, ds)
        for k in range(12):
            active = per[k].sum(0)  # spikes per input in period k
            # data: only the channel of the period's bit may spike; none while recalling
            if k == int(s.recall[0]):
                assert s.bits[k] == NO_RECALL
                assert active[BIT0].sum() == 0 and active[BIT1].sum() == 0
            else:
                silent = BIT1 if s.bits[k] == 0 else BIT0
                assert active[silent].sum() == 0
            # commands only in their own period
            if k != int(s.store[0]):
                assert active[STORE].sum() == 0
            if k != int(s.recall[0]):
                assert active[RECALL].sum() == 0


def test_one_store_in_first_half_one_recall_in_second_and_the_target_is_the_stored_bit():
    ds = StoreRecallDataset(200, periods=12, period_length=2, seed=1)
    stores, recalls = [], []
    for idx in range(len(ds)):
        s = ds.sample(idx)
        store, recall = int(s.store[0]), int(s.recall[0])
        assert 0 <= store < 6 <= recall < 12
        stores.append(store)
        recalls.append(recall)
        assert (s.targets != NO_RECALL).sum() == 1
        assert s.targets[recall] == s.bits[store]
        assert ds[idx][1].tolist() == s.targets.tolist()
    # every allowed period occurs (200 draws of 6 values: P(one missing) < 6·(5/6)^200 ≈ 1e-15)
    assert set(stores) == set(range(6)) and set(recalls) == set(range(6, 12))


def test_test_sequences_hold_two_store_recall_pairs():
    ds = StoreRecallDataset(50, periods=12, period_length=2, pairs=2, seed=4)
    for idx in range(len(ds)):
        s = ds.sample(idx)
        assert s.spikes.shape == (24 * 2, 20)
        assert s.targets.shape == (24,)
        assert (s.targets != NO_RECALL).sum() == 2
        # block b: store in its first half, recall in its second half, target from its own store
        for block in range(2):
            store, recall = int(s.store[block]), int(s.recall[block])
            assert 12 * block <= store < 12 * block + 6 <= recall < 12 * (block + 1)
            assert s.targets[recall] == s.bits[store]


def _rate_check(counts: float, trials: int, p: float) -> None:
    """|observed − expected| within 5 binomial standard deviations."""
    sd = math.sqrt(trials * p * (1 - p))
    assert abs(counts - trials * p) < 5 * sd, (counts, trials * p, sd)


def test_poisson_rates_within_statistical_bounds():
    # data 100 Hz and commands 50 Hz at dt = 1 ms: spike probability 0.1 and 0.05 per step
    ds = StoreRecallDataset(64, periods=12, period_length=100, seed=7)
    data_spikes = data_trials = command_spikes = command_trials = 0
    for idx in range(len(ds)):
        s = ds.sample(idx)
        per = periods_of(s, ds)
        for k in range(12):
            bit = int(s.bits[k])
            if bit >= 0:
                channel = BIT0 if bit == 0 else BIT1
                data_spikes += per[k][:, channel].sum().item()
                data_trials += per[k][:, channel].numel()
        for channel, k in ((STORE, int(s.store[0])), (RECALL, int(s.recall[0]))):
            command_spikes += per[k][:, channel].sum().item()
            command_trials += per[k][:, channel].numel()
    _rate_check(data_spikes, data_trials, 0.1)
    _rate_check(command_spikes, command_trials, 0.05)


def test_rates_follow_the_settings():
    ds = StoreRecallDataset(
        32, period_length=100, data_rate=300.0, command_rate=20.0, dt=0.0005, seed=2
    )
    s = ds.sample(0)
    per = periods_of(s, ds)
    shown = [k for k in range(12) if s.bits[k] >= 0]
    spikes = sum(per[k][:, BIT0 if s.bits[k] == 0 else BIT1].sum().item() for k in shown)
    _rate_check(spikes, len(shown) * 100 * 5, 300.0 * 0.0005)


def test_same_seed_same_data_other_seed_other_data_and_order_does_not_matter():
    a = StoreRecallDataset(8, period_length=20, seed=11)
    b = StoreRecallDataset(8, period_length=20, seed=11)
    c = StoreRecallDataset(8, period_length=20, seed=12)
    late_first = b[5][0]  # b's sample 5 drawn before any other
    assert torch.equal(torch.stack([a[i][0] for i in range(8)])[5], late_first)
    assert torch.equal(a[3][0], b[3][0]) and torch.equal(a[3][1], b[3][1])
    assert not torch.equal(a[3][0], c[3][0])
    assert not torch.equal(a[3][0], a[4][0])


def test_the_global_rng_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    ds = StoreRecallDataset(4, period_length=10, seed=0)
    for idx in range(4):
        ds[idx]
    MemoryDataModule(train_samples=4, val_samples=2, test_samples=2, period_length=10)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(5), expected)


def test_training_set_is_redrawn_per_epoch_but_validation_and_test_are_fixed():
    data = MemoryDataModule(train_samples=4, val_samples=4, test_samples=4, period_length=10)
    first = data.train_set[0][0]
    data.train_set.set_epoch(1)
    assert not torch.equal(first, data.train_set[0][0])
    data.train_set.set_epoch(0)
    assert torch.equal(first, data.train_set[0][0])
    assert not torch.equal(data.val_set[0][0], data.test_set[0][0][: 12 * 10])
    assert data.test_set.pairs == 2 and data.val_set.pairs == 1 and data.train_set.pairs == 1


def test_loaders_give_time_major_batches():
    data = MemoryDataModule(
        train_samples=6, val_samples=3, test_samples=3, batch_size=3, period_length=10
    )
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (120, 3, 20) and y.shape == (3, 12)
    x, y = next(iter(data.test_dataloader()))
    assert x.shape == (240, 3, 20) and y.shape == (3, 24)
    stacked_x, stacked_y = collate_time_major([data.val_set[0], data.val_set[1]])
    assert torch.equal(stacked_x[:, 1], data.val_set[1][0])
    assert torch.equal(stacked_y[0], data.val_set[0][1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"periods": 11}, "periods must be even"),
        ({"periods": 0}, "periods must be an integer >= 2"),
        ({"period_length": 0}, "period_length must be an integer >= 1"),
        ({"data_rate": 2000.0}, "data_rate · dt must be a spike probability"),
        ({"dt": 0.0}, "dt must be positive"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StoreRecallDataset(4, **kwargs)


def test_index_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        StoreRecallDataset(3, period_length=2).sample(3)
