"""snn-izhikevich: the Izhikevich neuron and the 20 behaviours of Izhikevich (2004) for snncore.

Norse-style names, so code ports by changing imports::

    from snn_izhikevich import IzhikevichCell, tonic_spiking
    cell = IzhikevichCell(tonic_spiking)
    z, state = cell(x)

or through the registry: ``snncore.create("izhikevich", behavior="tonic_bursting")``.
"""

from snn_izhikevich import functional
from snn_izhikevich.behaviors import (
    BEHAVIORS,
    PRESETS,
    IzhikevichSpikingBehavior,
    accommodation,
    accomodation,
    bistability,
    class_1_exc,
    class_2_exc,
    create_izhikevich_spiking_behavior,
    dap,
    inhibition_induced_bursting,
    inhibition_induced_spiking,
    integrator,
    mixed_mode,
    phasic_bursting,
    phasic_spiking,
    rebound_burst,
    rebound_spike,
    resonator,
    spike_frequency_adaptation,
    spike_latency,
    subthreshold_oscillation,
    threshold_variability,
    tonic_bursting,
    tonic_spiking,
)
from snn_izhikevich.izhikevich import (
    U_BOUND,
    V_BOUND,
    IzhikevichFeedForwardState,
    IzhikevichParameters,
    IzhikevichState,
)
from snn_izhikevich.modules import (
    IZHIKEVICH_MODEL,
    Izhikevich,
    IzhikevichCell,
    IzhikevichRecurrent,
    IzhikevichRecurrentCell,
)

#: The reference's name for the recurrent state ``(z, v, u)``.
IzhikevichRecurrentState = IzhikevichState

__version__ = "0.1.0"

__all__ = [
    "BEHAVIORS",
    "IZHIKEVICH_MODEL",
    "PRESETS",
    "U_BOUND",
    "V_BOUND",
    "Izhikevich",
    "IzhikevichCell",
    "IzhikevichFeedForwardState",
    "IzhikevichParameters",
    "IzhikevichRecurrent",
    "IzhikevichRecurrentCell",
    "IzhikevichRecurrentState",
    "IzhikevichSpikingBehavior",
    "IzhikevichState",
    "accommodation",
    "accomodation",
    "bistability",
    "class_1_exc",
    "class_2_exc",
    "create_izhikevich_spiking_behavior",
    "dap",
    "functional",
    "inhibition_induced_bursting",
    "inhibition_induced_spiking",
    "integrator",
    "mixed_mode",
    "phasic_bursting",
    "phasic_spiking",
    "rebound_burst",
    "rebound_spike",
    "resonator",
    "spike_frequency_adaptation",
    "spike_latency",
    "subthreshold_oscillation",
    "threshold_variability",
    "tonic_bursting",
    "tonic_spiking",
]
