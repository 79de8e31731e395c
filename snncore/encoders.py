"""Built-in encoders (a built-in plugin): turn analogue input into spike trains over time.

Each encoder is offered twice: as a pure function (``poisson_encode(x, seq_length, ...)``) and as
a ``torch.nn.Module`` (``PoissonEncoder(seq_length, ...)``), the class being what is registered by
name.  Sequence encoders return time-major tensors, ``(seq_length, *x.shape)``; the one-step
variants return ``x.shape``; the population encoder adds a trailing feature dimension.  Outputs
have the input's device and floating dtype.  The numerics are those of the reference library
(Norse 1.x) — see docs/encoders.md:

===================  =========================================================================
poisson              spike at step t where ``U_t < dt·f_max·x``, U uniform in [0, 1)
signed_poisson       ``sign(x)·1[U_t < dt·f_max·|x|]``, x in [−1, 1]
constant_current_lif x held as a constant current into LIF neurons without synapse:
                     ``v += dt·tau_mem_inv·((v_leak − v) + x)``; ``z = Θ(v − v_th)``; reset; v0 = 0
population           ``kernel(distance(x, c_k)·scale)``, centres ``c = linspace(0, scale, n)``
spike_latency        keep each neuron's first non-zero entry along time
spike_latency_lif    constant_current_lif with every spike after the first removed
===================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

from snncore.hookspecs import hookimpl
from snncore.parameters import method_field, tensor_field
from snncore.surrogates import resolve_surrogate, spike


def _check_float(x: Any, what: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{what} expects a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}"
        )


def _as_float(x: Any) -> torch.Tensor:
    """Integer (or bool) input becomes the default float dtype, as the reference's examples use."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _check_length(seq_length: Any) -> None:
    if not isinstance(seq_length, int) or isinstance(seq_length, bool) or seq_length <= 0:
        raise ValueError(f"seq_length must be a positive integer, got {seq_length!r}")


# -- Poisson ------------------------------------------------------------------------------------


def _uniform(shape: tuple[int, ...], x: torch.Tensor, generator: Any) -> torch.Tensor:
    return torch.rand(shape, device=x.device, dtype=x.dtype, generator=generator)


def poisson_encode(
    x: torch.Tensor,
    seq_length: int,
    f_max: float = 100.0,
    dt: float = 0.001,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Poisson spike trains: a spike at step t where ``U_t < dt·f_max·x`` (U uniform in [0, 1)).

    ``x`` in [0, 1] scales the rate up to ``f_max`` (Hz); the output has ``x``'s device and dtype
    and shape ``(seq_length, *x.shape)``.  ``generator`` must live on ``x``'s device.
    """
    _check_float(x, "poisson_encode")
    _check_length(seq_length)
    return (_uniform((seq_length, *x.shape), x, generator) < dt * f_max * x).to(x.dtype)


def poisson_encode_step(
    x: torch.Tensor,
    f_max: float = 1000.0,
    dt: float = 0.001,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One step of :func:`poisson_encode`: spikes of ``x.shape`` (the reference's f_max=1000)."""
    _check_float(x, "poisson_encode_step")
    return (_uniform(tuple(x.shape), x, generator) < dt * f_max * x).to(x.dtype)


def signed_poisson_encode(
    x: torch.Tensor,
    seq_length: int,
    f_max: float = 100.0,
    dt: float = 0.001,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Signed Poisson spikes in {−1, 0, 1}: ``sign(x)·1[U_t < dt·f_max·|x|]``, x in [−1, 1]."""
    _check_float(x, "signed_poisson_encode")
    _check_length(seq_length)
    fired = _uniform((seq_length, *x.shape), x, generator) < dt * f_max * x.abs()
    return torch.sign(x) * fired.to(x.dtype)


def signed_poisson_encode_step(
    x: torch.Tensor,
    f_max: float = 1000.0,
    dt: float = 0.001,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One step of :func:`signed_poisson_encode` (the reference's f_max=1000)."""
    _check_float(x, "signed_poisson_encode_step")
    fired = _uniform(tuple(x.shape), x, generator) < dt * f_max * x.abs()
    return torch.sign(x) * fired.to(x.dtype)


# -- constant-current LIF -----------------------------------------------------------------------


@attrs.frozen
class LIFEncoderParameters:
    """The LIF parameters the LIF encoders use by default: the ``lif`` model's defaults.

    Any object with ``tau_mem_inv``, ``v_leak``, ``v_th``, ``v_reset`` (and optionally ``method``,
    ``alpha``) works in its place, e.g. ``snn_lif.LIFParameters`` (its ``tau_syn_inv`` is unused:
    the encoder has no synapse).
    """

    tau_mem_inv: torch.Tensor = tensor_field(100.0, "1/s", "inverse membrane time constant")
    v_leak: torch.Tensor = tensor_field(0.0, "V", "leak (resting) potential")
    v_th: torch.Tensor = tensor_field(1.0, "V", "spike threshold")
    v_reset: torch.Tensor = tensor_field(0.0, "V", "potential after a spike")
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(100.0, "", "surrogate gradient sharpness")


_LIF_FIELDS = ("tau_mem_inv", "v_leak", "v_th", "v_reset")


def _lif_values(p: Any, like: torch.Tensor) -> tuple[Any, ...]:
    missing = [f for f in _LIF_FIELDS if not hasattr(p, f)]
    if missing:
        raise TypeError(
            f"LIF encoder parameters need fields {list(_LIF_FIELDS)} (and optionally method, "
            f"alpha); {type(p).__name__} lacks {missing}"
        )
    values = [torch.as_tensor(getattr(p, f)).to(like) for f in _LIF_FIELDS]
    method = resolve_surrogate(getattr(p, "method", "super"))
    alpha = torch.as_tensor(getattr(p, "alpha", 100.0)).to(like)
    return (*values, method, alpha)


def _lif_update(
    current: torch.Tensor, v: torch.Tensor, values: tuple[Any, ...], dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    tau_mem_inv, v_leak, v_th, v_reset, method, alpha = values
    v1 = v + dt * tau_mem_inv * ((v_leak - v) + current)
    z = spike(v1 - v_th, method, alpha)
    return z, v1 - z * (v1 - v_reset)


def constant_current_lif_step(
    input_current: torch.Tensor,
    v: torch.Tensor,
    p: Any = None,
    dt: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step of a LIF membrane driven directly by ``input_current`` (no synapse).

    ``v1 = v + dt·tau_mem_inv·((v_leak − v) + I)``;  ``z = Θ(v1 − v_th)``;
    ``v' = v1 − z·(v1 − v_reset)``.  Returns ``(z, v')``.
    """
    current = _as_float(input_current)
    values = _lif_values(LIFEncoderParameters() if p is None else p, current)
    return _lif_update(current, v, values, dt)


def constant_current_lif_encode(
    input_current: torch.Tensor,
    seq_length: int,
    p: Any = None,
    dt: float = 0.001,
) -> torch.Tensor:
    """Spikes ``(seq_length, *x.shape)`` of LIF neurons held at constant ``input_current``.

    The membrane starts at ``v = 0`` and follows :func:`constant_current_lif_step`; only the
    spikes are returned (as the reference does).  ``p`` defaults to
    :class:`LIFEncoderParameters` (the LIF defaults); integer input becomes the default float.
    """
    _check_length(seq_length)
    current = _as_float(input_current)
    values = _lif_values(LIFEncoderParameters() if p is None else p, current)  # once, not per step
    v = torch.zeros_like(current)
    spikes = []
    for _ in range(seq_length):
        z, v = _lif_update(current, v, values, dt)
        spikes.append(z)
    return torch.stack(spikes)


# -- population ---------------------------------------------------------------------------------


def gaussian_rbf(distance: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian radial basis of a (squared) distance: ``exp(−distance / (2·sigma²))``."""
    return torch.exp(-distance / (2 * sigma**2))


def euclidean_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared difference ``(x − y)²``, element-wise."""
    return (x - y).pow(2)


def population_encode(
    x: torch.Tensor,
    out_features: int,
    scale: float | torch.Tensor | None = None,
    kernel: Callable[[torch.Tensor], torch.Tensor] = gaussian_rbf,
    distance_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = euclidean_distance,
) -> torch.Tensor:
    """Population code ``(*x.shape, out_features)``: ``kernel(distance(x, c_k)·scale)``.

    The ``out_features`` centres are ``c_k = scale·k/(out_features − 1)`` (``linspace(0, scale,
    n)``); ``scale`` defaults to ``x.max()`` and may be a tensor broadcasting against ``x`` (one
    scale per sample).  With the defaults the value is ``exp(−scale·(x − c_k)²/2)``.  The output
    is not spikes: feed it to e.g. :func:`poisson_encode`.
    """
    if not isinstance(out_features, int) or isinstance(out_features, bool) or out_features <= 0:
        raise ValueError(f"out_features must be a positive integer, got {out_features!r}")
    x = _as_float(x)
    scale_t = x.max() if scale is None else torch.as_tensor(scale).to(x)
    steps = torch.linspace(0, 1, out_features, device=x.device, dtype=x.dtype)
    scale_t = scale_t.unsqueeze(-1)
    centres = scale_t * steps
    return kernel(distance_function(x.unsqueeze(-1), centres) * scale_t)


# -- spike latency ------------------------------------------------------------------------------


def spike_latency_encode(input_spikes: torch.Tensor) -> torch.Tensor:
    """Keep only each neuron's first spike (first non-zero entry) along time (dimension 0).

    Van Rullen & Thorpe (2001), *Rate coding versus temporal order coding*.  The dtype is kept.
    """
    if not isinstance(input_spikes, torch.Tensor) or input_spikes.dim() < 1:
        raise ValueError("spike_latency_encode expects a tensor of shape (time, ...)")
    fired = (input_spikes != 0).to(torch.int32)
    earlier = fired.cumsum(0) - fired  # spikes strictly before each step
    return torch.where(earlier > 0, torch.zeros_like(input_spikes), input_spikes)


def spike_latency_lif_encode(
    input_current: torch.Tensor,
    seq_length: int,
    p: Any = None,
    dt: float = 0.001,
) -> torch.Tensor:
    """:func:`constant_current_lif_encode` with every spike after each neuron's first removed
    (a LIF neuron with an infinite refractory period)."""
    return spike_latency_encode(constant_current_lif_encode(input_current, seq_length, p, dt))


# -- modules ------------------------------------------------------------------------------------


class _Rate(torch.nn.Module):
    """Shared by the Poisson encoders: ``f_max``, ``dt`` and an optional default generator."""

    def __init__(self, f_max: float, dt: float, generator: torch.Generator | None) -> None:
        super().__init__()
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        self.f_max, self.dt, self.generator = f_max, dt, generator

    def _generator(self, generator: torch.Generator | None) -> torch.Generator | None:
        return self.generator if generator is None else generator

    def extra_repr(self) -> str:
        length = f"seq_length={self.seq_length}, " if hasattr(self, "seq_length") else ""
        return f"{length}f_max={self.f_max}, dt={self.dt}"


class PoissonEncoder(_Rate):
    """Poisson spike trains whose rate is f_max·x (x in [0, 1]).

    ``PoissonEncoder(seq_length, f_max=100, dt=0.001)(x) -> (seq_length, *x.shape)``: a spike at
    step t where ``U_t < dt·f_max·x`` (U uniform in [0, 1)); ``f_max`` in Hz, ``dt`` in s.  Output
    on ``x``'s device, in its dtype.  A ``torch.Generator`` (on that device) given here or to the
    call makes the spikes reproducible.
    """

    def __init__(
        self,
        seq_length: int,
        f_max: float = 100.0,
        dt: float = 0.001,
        generator: torch.Generator | None = None,
    ):
        _check_length(seq_length)
        super().__init__(f_max, dt, generator)
        self.seq_length = seq_length

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return poisson_encode(x, self.seq_length, self.f_max, self.dt, self._generator(generator))


class PoissonEncoderStep(_Rate):
    """One time step of Poisson spikes with rate f_max·x (x in [0, 1]).

    ``PoissonEncoderStep(f_max=1000, dt=0.001)(x) -> x.shape``: a spike where
    ``U < dt·f_max·x``.  Note the reference's default ``f_max=1000`` for the one-step variants.
    """

    def __init__(
        self, f_max: float = 1000.0, dt: float = 0.001, generator: torch.Generator | None = None
    ):
        super().__init__(f_max, dt, generator)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return poisson_encode_step(x, self.f_max, self.dt, self._generator(generator))


class SignedPoissonEncoder(_Rate):
    """Signed Poisson spike trains in {-1, 0, 1} with rate f_max·|x| (x in [-1, 1]).

    ``SignedPoissonEncoder(seq_length, f_max=100, dt=0.001)(x) -> (seq_length, *x.shape)``:
    ``sign(x)·1[U_t < dt·f_max·|x|]``; device, dtype and generator as for ``PoissonEncoder``.
    """

    def __init__(
        self,
        seq_length: int,
        f_max: float = 100.0,
        dt: float = 0.001,
        generator: torch.Generator | None = None,
    ):
        _check_length(seq_length)
        super().__init__(f_max, dt, generator)
        self.seq_length = seq_length

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return signed_poisson_encode(
            x, self.seq_length, self.f_max, self.dt, self._generator(generator)
        )


class SignedPoissonEncoderStep(_Rate):
    """One time step of signed Poisson spikes with rate f_max·|x| (x in [-1, 1]).

    ``SignedPoissonEncoderStep(f_max=1000, dt=0.001)(x) -> x.shape`` (the reference's default).
    """

    def __init__(
        self, f_max: float = 1000.0, dt: float = 0.001, generator: torch.Generator | None = None
    ):
        super().__init__(f_max, dt, generator)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return signed_poisson_encode_step(x, self.f_max, self.dt, self._generator(generator))


class _LIFEncoder(torch.nn.Module):
    def __init__(self, seq_length: int, p: Any, dt: float) -> None:
        super().__init__()
        _check_length(seq_length)
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        self.seq_length, self.dt = seq_length, dt
        self.p = LIFEncoderParameters() if p is None else p
        _lif_values(self.p, torch.zeros(()))  # missing fields fail here, not at the first call

    def extra_repr(self) -> str:
        return f"seq_length={self.seq_length}, p={self.p}, dt={self.dt}"


class ConstantCurrentLIFEncoder(_LIFEncoder):
    """Spikes of LIF neurons driven by the input held as a constant current for seq_length steps.

    ``ConstantCurrentLIFEncoder(seq_length, p=LIFEncoderParameters(), dt=0.001)(I)`` returns the
    spikes ``(seq_length, *I.shape)`` of membranes starting at ``v = 0`` and stepping
    ``v1 = v + dt·tau_mem_inv·((v_leak − v) + I)``, ``z = Θ(v1 − v_th)``,
    ``v = v1 − z·(v1 − v_reset)`` (no synaptic current).  ``p`` is any object with
    ``tau_mem_inv``, ``v_leak``, ``v_th``, ``v_reset`` (optionally ``method``, ``alpha``), e.g.
    ``snn_lif.LIFParameters``; the default has the LIF defaults (100 1/s, 0, 1, 0, super, 100).
    """

    def __init__(self, seq_length: int, p: Any = None, dt: float = 0.001):
        super().__init__(seq_length, p, dt)

    def forward(self, input_currents: torch.Tensor) -> torch.Tensor:
        return constant_current_lif_encode(input_currents, self.seq_length, self.p, self.dt)


class SpikeLatencyLIFEncoder(_LIFEncoder):
    """Time-to-first-spike code: constant-current LIF neurons that spike at most once.

    ``SpikeLatencyLIFEncoder(seq_length, p=LIFEncoderParameters(), dt=0.001)(I)``: the spikes of
    ``ConstantCurrentLIFEncoder`` with every spike after each neuron's first removed (an infinite
    refractory period), ``(seq_length, *I.shape)``.
    """

    def __init__(self, seq_length: int, p: Any = None, dt: float = 0.001):
        super().__init__(seq_length, p, dt)

    def forward(self, input_current: torch.Tensor) -> torch.Tensor:
        return spike_latency_lif_encode(input_current, self.seq_length, self.p, self.dt)


class SpikeLatencyEncoder(torch.nn.Module):
    """Keeps only each neuron's first spike along time (time-to-first-spike code).

    ``SpikeLatencyEncoder()(spikes)``: ``spikes`` is ``(T, ...)``; every non-zero entry after a
    neuron's first along dimension 0 becomes 0; shape and dtype are kept.  Van Rullen & Thorpe
    (2001), *Rate coding versus temporal order coding*.
    """

    def forward(self, input_spikes: torch.Tensor) -> torch.Tensor:
        return spike_latency_encode(input_spikes)


class PopulationEncoder(torch.nn.Module):
    """Population code: each value becomes out_features radial-basis activations (not spikes).

    ``PopulationEncoder(out_features, scale=None, kernel=gaussian_rbf,
    distance_function=euclidean_distance)(x) -> (*x.shape, out_features)`` with value
    ``kernel(distance_function(x, c_k)·scale)`` at centres ``c_k = linspace(0, scale,
    out_features)``; by default ``exp(−scale·(x − c_k)²/2)``.  ``scale`` defaults to ``x.max()``
    and may be a tensor broadcasting against ``x`` (one scale per sample).
    """

    def __init__(
        self,
        out_features: int,
        scale: float | torch.Tensor | None = None,
        kernel: Callable[[torch.Tensor], torch.Tensor] = gaussian_rbf,
        distance_function: Callable[
            [torch.Tensor, torch.Tensor], torch.Tensor
        ] = euclidean_distance,
    ):
        super().__init__()
        if not isinstance(out_features, int) or isinstance(out_features, bool) or out_features <= 0:
            raise ValueError(f"out_features must be a positive integer, got {out_features!r}")
        self.out_features, self.scale = out_features, scale
        self.kernel, self.distance_function = kernel, distance_function

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return population_encode(
            input_tensor, self.out_features, self.scale, self.kernel, self.distance_function
        )

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, scale={self.scale}"


ENCODERS: dict[str, type[torch.nn.Module]] = {
    "poisson": PoissonEncoder,
    "poisson_step": PoissonEncoderStep,
    "signed_poisson": SignedPoissonEncoder,
    "signed_poisson_step": SignedPoissonEncoderStep,
    "constant_current_lif": ConstantCurrentLIFEncoder,
    "population": PopulationEncoder,
    "spike_latency": SpikeLatencyEncoder,
    "spike_latency_lif": SpikeLatencyLIFEncoder,
}


@hookimpl
def register_encoders(register: Callable[..., None]) -> None:
    for name, cls in ENCODERS.items():
        register(cls, name=name)
