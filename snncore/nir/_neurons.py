"""Step modules for NIR nodes that no snncore model expresses exactly.

Each neuron here integrates NIR's equation with forward Euler at step ``dt`` seconds, the input
of step ``t`` reaching the voltage of step ``t`` (no extra step of delay):

- ``LIF``:  ``v1 = v + dt/tau·((v_leak − v) + r·x)``; ``z = Θ(v1 − v_threshold)``;
  ``v' = (1 − z)·v1 + z·v_reset``; output ``z``.
- ``LI``:   ``v' = v + dt/tau·((v_leak − v) + r·x)``; output ``v'``.
- ``IF``:   ``v1 = v + dt·r·x`` (``convention="norse"``: ``v1 = v + r·x``, Norse's IAF);
  spike and reset as ``LIF``.
- ``I``:    ``v' = v + dt·r·x``; output ``v'``.

Times in seconds, ``r`` in voltage per input unit, voltages in the graph's units.  The state is
the voltage ``v``, starting at rest (``v_leak``; 0 for ``IF`` and ``I``).  Spikes go through
snncore's surrogate gradient (``super``, sharpness 100), so an imported graph can be trained.
Each module also writes itself back as its node (``to_nir``), so an imported graph exports again.

The stateless modules (``Scale``, ``Threshold``, ``SumPool2d``) are NIR's nodes of those names
on one time step ``(batch, ...)``; they are what ``from_nir`` builds, and what ``to_nir`` writes
back, so a network can use them directly (the MNIST task writes its 2×2 max-pool of spikes as
``SumPool2d`` followed by ``Threshold(0.5)``, exactly equal on 0/1 input).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from snncore.surrogates import spike


def as_tensor(value: Any) -> torch.Tensor:
    """A NIR array (numpy, tensor or number) as a float32 tensor, computed from float64."""
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    return torch.from_numpy(np.asarray(array, dtype=np.float64)).to(torch.float32)


def inverse(value: Any) -> torch.Tensor:
    """``1/value`` computed in float64 and rounded once to float32 (``1/(1/x)`` returns ``x``)."""
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    return torch.from_numpy(np.asarray(1.0 / array.astype(np.float64))).to(torch.float32)


def _array(t: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(t.detach().cpu().double().numpy(), shape).copy()


class _Neuron(torch.nn.Module):
    """Parameters as buffers; ``state`` is the voltage tensor."""

    kind = ""
    spiking = True

    def __init__(self, dt: float, convention: str, **fields: torch.Tensor) -> None:
        super().__init__()
        self.dt, self.convention = float(dt), convention
        for name, value in fields.items():
            self.register_buffer(name, value)

    def rest(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def update(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        v = self.rest(x) if state is None else state
        v1 = self.update(x, v)
        if not self.spiking:
            return v1, v1
        z = spike(v1 - self.v_threshold, "super", 100.0)
        return z, (1 - z) * v1 + z * self.v_reset

    def extra_repr(self) -> str:
        return f"NIR {self.kind}, dt={self.dt}, convention={self.convention!r}"


class NIRLIFNeuron(_Neuron):
    """NIR ``LIF``: ``v1 = v + dt/tau·((v_leak − v) + r·x)``, spike and reset (module doc)."""

    kind = "LIF"

    def rest(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x) + self.v_leak

    def update(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return v + self.dt * self.tau_inv * ((self.v_leak - v) + self.r * x)

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.LIF(
            tau=1.0 / _array(self.tau_inv, shape),
            r=_array(self.r, shape),
            v_leak=_array(self.v_leak, shape),
            v_threshold=_array(self.v_threshold, shape),
            v_reset=_array(self.v_reset, shape),
        )


class NIRLINeuron(NIRLIFNeuron):
    """NIR ``LI``: ``v' = v + dt/tau·((v_leak − v) + r·x)``; the output is ``v'``."""

    kind, spiking = "LI", False

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.LI(
            tau=1.0 / _array(self.tau_inv, shape),
            r=_array(self.r, shape),
            v_leak=_array(self.v_leak, shape),
        )


class NIRIFNeuron(_Neuron):
    """NIR ``IF``: ``v1 = v + dt·r·x`` (Norse's reading: ``v + r·x``), spike and reset."""

    kind = "IF"

    def update(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.convention == "norse":
            return v + self.r * x
        return v + self.dt * (self.r * x)

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.IF(
            r=_array(self.r, shape),
            v_threshold=_array(self.v_threshold, shape),
            v_reset=_array(self.v_reset, shape),
        )


class NIRIntegrator(NIRIFNeuron):
    """NIR ``I``: ``v' = v + dt·r·x``; the output is ``v'``."""

    kind, spiking = "I", False

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.I(r=_array(self.r, shape))


def neuron_from_node(node: Any, dt: float, convention: str) -> torch.nn.Module:
    """The step module for a NIR ``LIF``, ``LI``, ``IF`` or ``I`` node."""
    kind = type(node).__name__
    if kind == "LIF":
        return NIRLIFNeuron(
            dt,
            convention,
            tau_inv=inverse(node.tau),
            r=as_tensor(node.r),
            v_leak=as_tensor(node.v_leak),
            v_threshold=as_tensor(node.v_threshold),
            v_reset=as_tensor(node.v_reset),
        )
    if kind == "LI":
        return NIRLINeuron(
            dt,
            convention,
            tau_inv=inverse(node.tau),
            r=as_tensor(node.r),
            v_leak=as_tensor(node.v_leak),
        )
    if kind == "IF":
        return NIRIFNeuron(
            dt,
            convention,
            r=as_tensor(node.r),
            v_threshold=as_tensor(node.v_threshold),
            v_reset=as_tensor(node.v_reset),
        )
    if kind == "I":
        return NIRIntegrator(dt, convention, r=as_tensor(node.r))
    raise ValueError(f"not a NIR neuron without synapse: {kind}")


NATIVE_NEURONS = ("LIF", "LI", "IF", "I")


class Scale(torch.nn.Module):
    """NIR ``Scale``: ``y = scale·x`` (elementwise, ``scale`` broadcast over the batch)."""

    def __init__(self, scale: Any) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.Scale(scale=_array(self.scale, shape))


class Threshold(torch.nn.Module):
    """NIR ``Threshold``: ``y = 1 where x > threshold, else 0`` (no gradient)."""

    def __init__(self, threshold: Any) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold).to(x.dtype)

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.Threshold(threshold=_array(self.threshold, shape))


class SumPool2d(torch.nn.Module):
    """NIR ``SumPool2d``: the sum over each window (zero padding) of ``(batch, C, H, W)``."""

    def __init__(self, kernel_size: Any, stride: Any, padding: Any = (0, 0)) -> None:
        super().__init__()
        self.kernel_size = tuple(int(k) for k in np.broadcast_to(kernel_size, (2,)))
        self.stride = tuple(int(k) for k in np.broadcast_to(stride, (2,)))
        self.padding = tuple(int(k) for k in np.broadcast_to(padding, (2,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, count_include_pad=True
        )
        return pooled * (self.kernel_size[0] * self.kernel_size[1])

    def to_nir(self, shape: tuple[int, ...], dt: float) -> Any:
        import nir

        return nir.SumPool2d(
            kernel_size=np.array(self.kernel_size),
            stride=np.array(self.stride),
            padding=np.array(self.padding),
        )
