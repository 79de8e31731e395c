"""Built-in encoders (a built-in plugin): turn analogue input into spike trains over time.

Every encoder is a ``torch.nn.Module`` whose output is time-major, ``(seq_length, *x.shape)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from snncore.hookspecs import hookimpl


def poisson_encode(
    x: torch.Tensor,
    seq_length: int,
    f_max: float = 100.0,
    dt: float = 0.001,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Poisson spike trains: a spike at step t where ``U_t < dt·f_max·x`` (U uniform in [0, 1)).

    ``x`` in [0, 1] scales the rate up to ``f_max`` (Hz); the output has ``x``'s device and dtype
    and shape ``(seq_length, *x.shape)``.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"poisson_encode expects a floating-point tensor, got {getattr(x, 'dtype', type(x))}"
        )
    uniform = torch.rand(
        (seq_length, *x.shape), device=x.device, dtype=x.dtype, generator=generator
    )
    return (uniform < dt * f_max * x).to(x.dtype)


class PoissonEncoder(torch.nn.Module):
    """Poisson spike trains whose rate is f_max·x (x in [0, 1])."""

    def __init__(self, seq_length: int, f_max: float = 100.0, dt: float = 0.001):
        super().__init__()
        if not isinstance(seq_length, int) or seq_length <= 0:
            raise ValueError(f"seq_length must be a positive integer, got {seq_length!r}")
        self.seq_length, self.f_max, self.dt = seq_length, f_max, dt

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return poisson_encode(x, self.seq_length, self.f_max, self.dt, generator)


@hookimpl
def register_encoders(register: Callable[..., None]) -> None:
    register(PoissonEncoder, name="poisson")
