"""snn-correlation: correlation sensors and recurrent LIF neurons with them, for snncore.

Norse-style names, so code ports by changing imports::

    from snn_correlation import LIFCorrelation, correlation_based_update
    z, state = LIFCorrelation(10, 8)(x, input_weights=w_in, recurrent_weights=w_rec, state=None)

The registered model ``lif_correlation`` (``snncore.create("lif_correlation",
variant="recurrent", input_size=..., hidden_size=...)``) owns its weights and carries the
recurrent-synapse sensor; see :mod:`snn_correlation.lif_correlation` for why.
"""

from snn_correlation import functional
from snn_correlation.lif_correlation import (
    LIF_CORRELATION_MODEL,
    LIFCorrelation,
    LIFCorrelationParameters,
    LIFCorrelationState,
    LIFRecurrentCorrelation,
    LIFRecurrentCorrelationCell,
    LIFRecurrentCorrelationParameters,
    LIFRecurrentCorrelationState,
    initial_correlation_state,
)
from snn_correlation.sensor import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    correlation_based_update,
    correlation_sensor_step,
    correlation_weight_update,
    initial_sensor_state,
)

__version__ = "0.1.0"

__all__ = [
    "LIF_CORRELATION_MODEL",
    "CorrelationSensorParameters",
    "CorrelationSensorState",
    "LIFCorrelation",
    "LIFCorrelationParameters",
    "LIFCorrelationState",
    "LIFRecurrentCorrelation",
    "LIFRecurrentCorrelationCell",
    "LIFRecurrentCorrelationParameters",
    "LIFRecurrentCorrelationState",
    "correlation_based_update",
    "correlation_sensor_step",
    "correlation_weight_update",
    "functional",
    "initial_correlation_state",
    "initial_sensor_state",
]
