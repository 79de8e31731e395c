"""Shared pieces of models' adjoint (``adjoint=True``) paths.

:class:`SpikeRecord` keeps a few numbers per spike between a whole-sequence forward pass and its
backward pass (spike times inside the step, slopes), instead of full ``T·B·N`` state traces; the
LIF and LSNN adjoints of snn-lif and snn-lsnn use it, and so can a third-party model's.
"""

from __future__ import annotations

import torch

#: Time steps whose per-spike numbers are gathered (forward) or spread out (backward) at once.
CHUNK = 16


class SpikeRecord:
    """``n`` numbers per spike of a (T, *shape) spike train, kept compactly.

    Each step writes dense values into ``slot(t)``; every ``CHUNK`` steps the entries at spikes
    are gathered and the dense buffer reused.  ``dense(c, spikes)`` spreads chunk ``c`` out again,
    zero where there is no spike.  The positions are not stored: both sides read them from the
    spikes (``nonzero``, in the same order).
    """

    def __init__(self, n: int, step_like: torch.Tensor, steps: int):
        self.n, self.steps = n, steps
        self.chunk = max(1, min(CHUNK, steps))
        self.buffer = step_like.new_zeros((n, self.chunk, *step_like.shape))
        self.values: list[torch.Tensor] = []

    def slot(self, t: int) -> torch.Tensor:
        return self.buffer[:, t % self.chunk]

    def end_of_chunk(self, t: int) -> bool:
        return (t + 1) % self.chunk == 0 or t + 1 == self.steps

    def flush(self, spikes: torch.Tensor) -> None:
        """Keep the values of the chunk whose spikes are ``spikes`` (its last step just ran)."""
        where = spikes.flatten().nonzero().squeeze(1)
        dense = self.buffer[:, : spikes.shape[0]].reshape(self.n, -1)
        self.values.append(dense.index_select(1, where))

    def chunks(self) -> range:
        return range(len(self.values) - 1, -1, -1)

    def bounds(self, c: int) -> tuple[int, int]:
        return c * self.chunk, min((c + 1) * self.chunk, self.steps)

    def dense(self, c: int, spikes: torch.Tensor) -> torch.Tensor:
        """(k, n, *shape): chunk ``c``'s values at its spikes, zero elsewhere."""
        where = spikes.flatten().nonzero().squeeze(1)
        out = spikes.new_zeros((self.n, spikes.numel())).index_copy_(1, where, self.values[c])
        return out.view(self.n, *spikes.shape).transpose(0, 1)
