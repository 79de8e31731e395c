"""Pure step functions of the correlation family (the reference's ``norse.torch.functional`` names)."""

from snn_correlation.lif_correlation import lif_correlation_step, lif_recurrent_correlation_step
from snn_correlation.sensor import (
    correlation_based_update,
    correlation_sensor_step,
    correlation_weight_update,
)

__all__ = [
    "correlation_based_update",
    "correlation_sensor_step",
    "correlation_weight_update",
    "lif_correlation_step",
    "lif_recurrent_correlation_step",
]
