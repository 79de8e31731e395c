"""The eager PyTorch backend of snncore: the reference time loop for every model."""

from snn_backend_torch.backend import TorchBackend

__all__ = ["TorchBackend"]
