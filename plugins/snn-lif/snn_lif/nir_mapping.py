"""NIR mappings of ``lif`` (↔ ``CubaLIF``) and ``li`` (↔ ``CubaLI``), registered by ``register_nir``.

NIR's equations, read as Euler at step ``dt`` (the reading snnTorch's exporter and importer and
Norse's importer share):

    I ← I + dt/tau_syn·(−I + w_in·x);   v ← v + dt/tau_mem·((v_leak − v) + r·I)   (the new I)

Our step (MODELS.md) is ``i1 = i + x``, ``v1 = v + dt·tau_mem_inv·((v_leak − v) + i1)``,
``i' = i1·(1 − dt·tau_syn_inv)``.  With ``i1 = r·I`` both are the same recursion when our input is
``s·x`` with ``s = r·w_in·dt/tau_syn``.  So export writes ``tau_syn = 1/tau_syn_inv``,
``tau_mem = 1/tau_mem_inv``, ``r = 1``, ``w_in = tau_syn/dt`` (``s = 1``: snnTorch's and Norse's
importers reproduce the layer), and import builds our cell behind an input scale ``s`` — exact for
any ``r`` and ``w_in``.  Spikes ``v1 > v_threshold``, reset ``v = v_reset``: the same on both sides.

Export conventions (``snncore.to_nir(..., convention=...)``; only the product ``r·w_in`` matters
under the Euler reading): ``"nir"`` (the default) writes ``r = 1``, ``w_in = tau_syn/dt``;
``"snntorch"`` writes ``r = tau_mem/dt``, ``w_in = tau_syn/tau_mem`` — the same ``s = 1``, in
the only ``r`` snnTorch 1.0's importer accepts (``r = tau_mem/1e-4``; it then runs a
``Synaptic`` with ``alpha = 1 − dt/tau_syn``, ``beta = 1 − dt/tau_mem`` and the threshold divided
by ``w_in·dt/tau_syn``, the same spikes).  ``li`` writes ``CubaLI`` the same way (snnTorch has no
``CubaLI`` importer).

``convention="norse"`` reads graphs written by Norse 1.1's ``to_nir``, which stores
``tau = dt/tau_inv`` (not ``1/tau_inv``) and ``r = w_in = 1`` meaning Norse's own LIF (the input
jumps into ``i``): ``tau_inv = dt/tau``, ``s = r·w_in``.  Parameters are computed in float64 and
rounded once, so ``1/(1/tau_inv)`` gives back ``tau_inv`` exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from snn_lif.li import LICell, LIParameters
from snn_lif.lif import LIFCell, LIFParameters
from snncore.nir import NIRMapping, as_tensor, inverse


def _full(value: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(value.detach().cpu().double().numpy(), shape).copy()


def _times(p: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return 1.0 / _full(p.tau_syn_inv, shape), 1.0 / _full(p.tau_mem_inv, shape)


#: The export conventions these mappings write (``snncore.nir.EXPORT_CONVENTIONS``).
CONVENTIONS = ("nir", "snntorch")


def _r_w_in(
    tau_syn: np.ndarray, tau_mem: np.ndarray, dt: float, convention: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(r, w_in)`` with ``r·w_in·dt/tau_syn = 1`` (input scale 1) in ``convention``."""
    if convention == "snntorch":
        return tau_mem / dt, tau_syn / tau_mem
    if convention == "nir":
        return np.ones_like(tau_mem), tau_syn / dt
    raise ValueError(f"lif/li NIR export conventions are {CONVENTIONS}, got {convention!r}")


def lif_to_node(
    p: LIFParameters, shape: tuple[int, ...], dt: float, convention: str = "nir"
) -> Any:
    """``CubaLIF(tau_syn=1/tau_syn_inv, tau_mem=1/tau_mem_inv, r, w_in, ...)``: "nir" writes
    ``r=1, w_in=tau_syn/dt``; "snntorch" ``r=tau_mem/dt, w_in=tau_syn/tau_mem``."""
    import nir

    tau_syn, tau_mem = _times(p, shape)
    r, w_in = _r_w_in(tau_syn, tau_mem, dt, convention)
    return nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        r=r,
        v_leak=_full(p.v_leak, shape),
        v_threshold=_full(p.v_th, shape),
        v_reset=_full(p.v_reset, shape),
        w_in=w_in,
    )


def li_to_node(p: LIParameters, shape: tuple[int, ...], dt: float, convention: str = "nir") -> Any:
    """``CubaLI(tau_syn=1/tau_syn_inv, tau_mem=1/tau_mem_inv, r, w_in, v_leak)``, ``r`` and
    ``w_in`` as for ``lif``."""
    import nir

    tau_syn, tau_mem = _times(p, shape)
    r, w_in = _r_w_in(tau_syn, tau_mem, dt, convention)
    return nir.CubaLI(
        tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=_full(p.v_leak, shape), w_in=w_in,
    )  # fmt: skip


def _read(node: Any, dt: float, convention: str) -> dict[str, torch.Tensor]:
    """``tau_syn_inv``, ``tau_mem_inv`` and the input scale ``s`` of a Cuba node."""
    tau_syn = np.asarray(node.tau_syn, dtype=np.float64)
    tau_mem = np.asarray(node.tau_mem, dtype=np.float64)
    r = np.asarray(node.r, dtype=np.float64)
    w_in = np.asarray(node.w_in, dtype=np.float64)
    if convention == "norse":
        return {
            "tau_syn_inv": as_tensor(dt / tau_syn),
            "tau_mem_inv": as_tensor(dt / tau_mem),
            "scale": as_tensor(r * w_in),
        }
    return {
        "tau_syn_inv": inverse(tau_syn),
        "tau_mem_inv": inverse(tau_mem),
        "scale": as_tensor(r * w_in * dt / tau_syn),
    }


class CubaStep(torch.nn.Module):
    """``cell(s·x, state)``: our ``lif``/``li`` cell behind NIR's input scale ``s``."""

    def __init__(self, cell: torch.nn.Module, scale: torch.Tensor, to_node: Any) -> None:
        super().__init__()
        self.cell, self._to_node = cell, to_node
        self.register_buffer("scale", scale)
        self.unit = bool(torch.all(scale == 1))

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.cell(x if self.unit else self.scale * x, state)

    def to_nir(self, shape: tuple[int, ...], dt: float, convention: str = "nir") -> Any:
        node = self._to_node(self.cell.parameters_now(), shape, dt, convention)
        node.w_in = node.w_in * np.broadcast_to(self.scale.double().numpy(), shape)
        return node


def cuba_lif_from_node(node: Any, dt: float, convention: str = "nir") -> CubaStep:
    """NIR ``CubaLIF`` → our ``lif`` cell behind the input scale (see the module doc)."""
    values = _read(node, dt, convention)
    p = LIFParameters(
        tau_syn_inv=values["tau_syn_inv"],
        tau_mem_inv=values["tau_mem_inv"],
        v_leak=as_tensor(node.v_leak),
        v_th=as_tensor(node.v_threshold),
        v_reset=as_tensor(node.v_reset),
    )
    return CubaStep(LIFCell(p=p, dt=dt), values["scale"], lif_to_node)


def cuba_li_from_node(node: Any, dt: float, convention: str = "nir") -> CubaStep:
    """NIR ``CubaLI`` → our ``li`` cell behind the input scale (see the module doc)."""
    values = _read(node, dt, convention)
    p = LIParameters(
        tau_syn_inv=values["tau_syn_inv"],
        tau_mem_inv=values["tau_mem_inv"],
        v_leak=as_tensor(node.v_leak),
    )
    return CubaStep(LICell(p=p, dt=dt), values["scale"], li_to_node)


NIR_MAPPINGS = (
    NIRMapping(
        "lif", model="lif", to_node=lif_to_node, nodes=("CubaLIF",), from_node=cuba_lif_from_node,
        summary="lif <-> CubaLIF (r=1, w_in=tau_syn/dt; snntorch: r=tau_mem/dt, w_in=tau_syn/tau_mem)",
        conventions=CONVENTIONS,
    ),
    NIRMapping(
        "li", model="li", to_node=li_to_node, nodes=("CubaLI",), from_node=cuba_li_from_node,
        summary="li <-> CubaLI (r=1, w_in=tau_syn/dt; snntorch: r=tau_mem/dt, w_in=tau_syn/tau_mem)",
        conventions=CONVENTIONS,
    ),
)  # fmt: skip
