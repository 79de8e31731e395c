"""The exponential spike-initiation term shared by LIFEx and LIFAdEx, with its overflow guard.

    exp_term(v) = delta_T · exp(min((v − v_th) / delta_T, ceiling(dtype)))

**The guard.**  ``exp`` overflows to ``inf`` once its argument passes ``ln(max float)``
(88.72 in float32, 709.78 in float64, 11.09 in float16).  An infinite ``v1`` then spikes, and the
reset ``(1 − z)·v1 + z·v_reset`` is ``0·inf = NaN``, which poisons the state for good; that is
what the reference does for a membrane far above threshold (a large initial voltage, or
``v_reset > v_th``).  We clamp the *argument* at half the largest exponent of the dtype,

    ceiling(dtype) = ln(finfo(dtype).max) / 2     44.36 (float32, bfloat16), 354.89 (float64),
                                                  5.55 (float16)

so the exponential is at most ``sqrt(max float)`` (1.8e19 in float32): finite, and still finite
after it is multiplied by ``delta_T``, ``dt·tau_mem_inv`` or added to any other finite term of
that size.  Below the ceiling the clamp returns its input unchanged, so results there are
bit-identical to the unguarded formula.  Above it the term is already so large that ``v1`` is far
beyond ``v_th``: the neuron spikes and resets to ``v_reset`` exactly as it would unguarded, so
spikes and the stored state are unchanged; only the (discarded) pre-reset ``v1`` is smaller.
The one cost: the gradient of the term with respect to ``v`` and ``delta_T`` is zero where the
argument is clamped.
"""

from __future__ import annotations

import math
from functools import cache

import torch


@cache
def exp_ceiling(dtype: torch.dtype) -> float:
    """The largest argument the exponential term is evaluated at, for ``dtype``."""
    return 0.5 * math.log(torch.finfo(dtype).max)


def exp_term(v: torch.Tensor, v_th: torch.Tensor, delta_T: torch.Tensor) -> torch.Tensor:
    """``delta_T · exp((v − v_th)/delta_T)`` with the argument clamped at ``exp_ceiling``."""
    argument = (v - v_th) / delta_T
    return delta_T * torch.exp(argument.clamp(max=exp_ceiling(argument.dtype)))


def check_delta_T(instance: object, attribute: object, value: torch.Tensor) -> None:
    """attrs validator: ``delta_T`` divides the exponent, so every element must be > 0."""
    if not bool((value > 0).all()):
        raise ValueError(
            f"{type(instance).__name__}.delta_T must be > 0 (the sharpness of the exponential "
            f"divides (v − v_th)), got {value.tolist()}"
        )
