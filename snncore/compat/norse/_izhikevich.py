"""The reference's Izhikevich state names.

The reference calls the feed-forward state ``(v, u)`` ``IzhikevichState`` and the recurrent
state ``(z, v, u)`` ``IzhikevichRecurrentState``; the izhikevich plugin calls them
``IzhikevichFeedForwardState`` and ``IzhikevichState``.  The layouts are the same, only the
names differ, so the compatibility namespace hands out the plugin's classes under the
reference's names: ``IzhikevichState(v=v0, u=u0)`` is the plugin's feed-forward state, the one
the feed-forward cells take and return and a behaviour's ``.s`` holds.  This module imports the
plugin, so the name map reaches it only when one of its names is used.
"""

from snn_izhikevich import IzhikevichFeedForwardState as IzhikevichState
from snn_izhikevich import IzhikevichState as IzhikevichRecurrentState

__all__ = ["IzhikevichRecurrentState", "IzhikevichState"]
