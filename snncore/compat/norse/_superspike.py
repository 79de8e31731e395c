"""The one switch of the reference library's SuperSpike gradient (issue item 9).

The reference (Norse 1.1.0) ignores ``alpha`` in its ``super`` surrogate: ``1/(|x| + 1)²``.
snncore's ``super`` is SuperSpike as published, ``1/(alpha·|x| + 1)²``.  Spikes are identical; the
gradients are not (a factor up to ``alpha²`` near threshold).  Porting must choose, so that
nobody trains a ported model with other gradients without knowing:

- ``reference_superspike(True)``: ``method="super"`` means the reference's unscaled surrogate
  (``super_unscaled``) everywhere in this process; gradients match the reference's bit for bit
  in the spike function;
- ``reference_superspike(False)``: snncore's ``super`` (alpha used), and no warning;
- ``SNNCORE_NORSE_SUPERSPIKE=reference`` or ``=snncore`` in the environment: the same, read when
  the namespace is first imported.

Undecided, the first compatibility module built with ``method="super"`` warns once
(:class:`NorseCompatWarning`) and keeps snncore's gradients.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from snncore.parameters import method_items
from snncore.surrogates import override_surrogate

ENVIRONMENT = "SNNCORE_NORSE_SUPERSPIKE"
CHOICES = {"reference": True, "snncore": False}


class NorseCompatWarning(UserWarning):
    """A ported program relies on behaviour that differs from the reference library's."""


#: ``None`` until a choice is made; then whether the reference's SuperSpike is in use.
_choice: dict[str, bool | None] = {"reference": None, "warned": False}


def reference_superspike(enabled: bool = True) -> None:
    """Choose the gradient of ``method="super"`` for this process: the reference library's,
    which ignores ``alpha`` (``True``), or snncore's (``False``).  Modules resolve their surrogate
    when they are built: call this before building them."""
    override_surrogate("super", "super_unscaled" if enabled else None)
    _choice["reference"] = bool(enabled)


def uses_reference_superspike() -> bool | None:
    """The choice made (``None``: none yet, snncore's gradients with a warning)."""
    return _choice["reference"]


def choose_from_environment() -> None:
    """Apply ``SNNCORE_NORSE_SUPERSPIKE`` if it is set (``reference`` or ``snncore``)."""
    value = os.environ.get(ENVIRONMENT, "").strip().lower()
    if not value:
        return
    if value not in CHOICES:
        raise ValueError(f"{ENVIRONMENT} must be 'reference' or 'snncore', got {value!r}")
    reference_superspike(CHOICES[value])


def note_parameters(p: Any) -> None:
    """Warn once if ``p`` uses ``super`` while no choice has been made."""
    if _choice["reference"] is not None or _choice["warned"]:
        return
    if any(value == "super" for _, value in method_items(p)):
        _choice["warned"] = True
        warnings.warn(
            "method='super' uses alpha here (1/(alpha*|x|+1)^2); the reference library ignores "
            "it (1/(|x|+1)^2): same spikes, other gradients. Choose with "
            "snncore.compat.norse.reference_superspike(True) (the reference's gradients) or "
            f"(False) (snncore's), or {ENVIRONMENT}=reference|snncore",
            NorseCompatWarning,
            stacklevel=3,
        )
