"""The reference library (Norse 1.1.0) API, mapped onto snncore: port by changing one import.

    import snncore.compat.norse as norse      # was: import norse
    from snncore.compat.norse.torch import LIFCell, LIFParameters   # was: from norse.torch ...

Every module path of the reference's ``norse.torch`` that snncore's families cover exists here
(``norse.torch.module.lif``, ``norse.torch.functional.lsnn``, ...), holding snncore's own classes
and functions under the reference's names (:mod:`._names` is the map); nothing is imported
until a name is used.  The differences that remain, and the one line that changes for each, are
in docs/porting-from-norse.md.  The one choice to make is the SuperSpike gradient
(:func:`reference_superspike`).
"""

from __future__ import annotations

import sys

from snncore.compat.norse import _tree
from snncore.compat.norse._superspike import (
    NorseCompatWarning,
    choose_from_environment,
    reference_superspike,
    uses_reference_superspike,
)

__all__ = ["NorseCompatWarning", "reference_superspike", "uses_reference_superspike"]

_tree.install(sys.modules[__name__])
choose_from_environment()
