"""The ``mnist`` task: a spiking convolutional network classifies MNIST digits.

Each image is held as a constant current into LIF neurons (``constant_current_lif``; with
``only_first_spike`` the latency code ``spike_latency_lif``: each pixel spikes at most once) for
``seq_length`` steps.  The spike trains drive :class:`ConvLIFNet`::

    conv 5×5, 1→32 ─ LIF (v_th 0.7) ─ max-pool 2 ─ 10 · conv 5×5, 32→64 ─ LIF (v_th 0.7) ─ max-pool 2
    ─ linear 1024→1024 ─ LIF ─ linear 1024→10 ─ LI (leaky integrator, the readout voltage)

The class score is each readout neuron's maximum voltage over time, scored with the negative
log-likelihood of its log-softmax.  The convolutions and linear maps are stateless, so they run
on all time steps at once with time folded into the batch (``(T·B, C, H, W)``); only the neuron
layers loop over time, each in one call of its backend (``auto`` runs them in the fused C++
kernels on the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning
import torch
import torch.nn.functional as F

import snncore
from snn_tasks.mnist_data import MNISTDataModule


def _folded(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``function`` applied at every step of ``x`` (T, B, ...), time folded into the batch."""
    out = function(x.flatten(0, 1))
    return out.unflatten(0, x.shape[:2])


class ConvLIFNet(torch.nn.Module):
    """Two conv-LIF stages, a fully connected LIF layer and a leaky-integrator readout.

    ``forward(spikes (T, B, C, S, S)) -> readout voltages (T, B, 10)``.  ``method``/``alpha`` are
    the LIF layers' surrogate gradient and sharpness; ``backend`` runs the neuron layers.
    ``relu_before_readout=True`` applies the reference's ``relu`` to the last LIF layer's spikes:
    nothing changes forward, but the readout's gradient then reaches only neurons that spiked
    (off by default: a layer silent at initialisation never starts learning; docs/tasks-mnist.md).
    """

    def __init__(
        self,
        num_channels: int = 1,
        feature_size: int = 28,
        method: str = "super",
        alpha: float = 100.0,
        backend: str = "auto",
        dt: float = 0.001,
        relu_before_readout: bool = False,
    ) -> None:
        super().__init__()
        self.relu_before_readout = relu_before_readout
        self.features = ((feature_size - 4) // 2 - 4) // 2
        if self.features < 1 or (feature_size - 4) % 2 or ((feature_size - 4) // 2 - 4) % 2:
            raise ValueError(
                f"feature_size must leave an even size after each 5×5 convolution "
                f"(e.g. 28), got {feature_size}"
            )
        self.conv1 = torch.nn.Conv2d(num_channels, 32, 5, 1)
        self.conv2 = torch.nn.Conv2d(32, 64, 5, 1)
        self.fc1 = torch.nn.Linear(self.features**2 * 64, 1024)
        self.out = torch.nn.Linear(1024, 10, bias=False)
        with torch.no_grad():  # the readout's scale as the reference's LILinearCell: N(0, 2/10)
            self.out.weight.normal_(0.0, math.sqrt(2.0 / 10))

        def lif(v_th: float) -> torch.nn.Module:
            return snncore.create(
                "lif",
                variant="layer",
                backend=backend,
                dt=dt,
                v_th=v_th,
                method=method,
                alpha=alpha,
            )

        self.lif0, self.lif1, self.lif2 = lif(0.7), lif(0.7), lif(1.0)
        self.li = snncore.create("li", variant="layer", backend=backend, dt=dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"ConvLIFNet expects spikes (T, B, C, H, W), got {tuple(x.shape)}")
        z, _ = self.lif0(_folded(self.conv1, x))
        z = _folded(lambda s: 10 * self.conv2(F.max_pool2d(s, 2, 2)), z)
        z, _ = self.lif1(z)
        z = _folded(lambda s: self.fc1(F.max_pool2d(s, 2, 2).flatten(1)), z)
        z, _ = self.lif2(z)
        if self.relu_before_readout:  # no change forward; no gradient where z = 0
            z = F.relu(z)
        v, _ = self.li(self.out(z))
        return v


class LIFConvNet(lightning.LightningModule):
    """MNIST classifier: an encoder, :class:`ConvLIFNet`, max-over-time readout, NLL loss.

    The reference's signature (``input_features, seq_length, learning_rate, model, optimizer,
    input_scale, only_output, only_first_spike``) plus keyword options.  ``input_scale``
    multiplies the normalised image before encoding (the current into the encoder's LIF
    neurons); ``only_output`` trains only the readout weights (the rest is frozen, so no gradient
    is computed for it).  Logs ``train_loss``, ``val_loss``/``val_accuracy`` and
    ``test_loss``/``test_accuracy``.
    """

    def __init__(
        self,
        input_features: int,
        seq_length: int,
        learning_rate: float,
        model: str = "super",
        optimizer: str = "adam",
        input_scale: float = 1.0,
        only_output: bool = False,
        only_first_spike: bool = False,
        *,
        alpha: float = 100.0,
        backend: str = "auto",
        weight_decay: float = 1e-6,
        lr_schedule: str = "constant",
        relu_before_readout: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        side = math.isqrt(input_features)
        if side * side != input_features:
            raise ValueError(f"input_features must be a square image size, got {input_features}")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        snncore.get_surrogate(model)  # an unknown surrogate fails here, with suggestions
        encoder = "spike_latency_lif" if only_first_spike else "constant_current_lif"
        self.encoder = snncore.get_encoder(encoder)(seq_length=seq_length)
        self.rsnn = ConvLIFNet(
            1, side, method=model, alpha=alpha, backend=backend,
            relu_before_readout=relu_before_readout,
        )  # fmt: skip
        self.input_features, self.side, self.seq_length = input_features, side, seq_length
        self.input_scale, self.learning_rate = input_scale, learning_rate
        self.optimizer_name, self.only_output, self.weight_decay = (
            optimizer,
            only_output,
            weight_decay,
        )
        self.lr_schedule = lr_schedule
        if only_output:
            for name, parameter in self.rsnn.named_parameters():
                parameter.requires_grad_(name.startswith("out."))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, S, S)`` or ``(B, S·S)`` -> log-probabilities ``(B, 10)``."""
        batch = x.shape[0]
        if x[0].numel() != self.input_features:
            raise ValueError(
                f"expected images of {self.input_features} pixels, got shape {tuple(x.shape)}"
            )
        spikes = self.encoder(x.reshape(batch, self.input_features) * self.input_scale)
        spikes = spikes.reshape(self.seq_length, batch, 1, self.side, self.side)
        voltages = self.rsnn(spikes)
        return F.log_softmax(voltages.amax(0), dim=1)

    def nir_chain(self) -> snncore.SequentialState:
        """The encoder and network as a time-major chain that ``snncore.to_nir`` maps exactly.

        Input: the normalised image ``(T, B, 1, S, S)`` repeated at every step (a constant
        current).  The encoder becomes a NIR ``LIF`` with ``r = input_scale``; each 2×2 max-pool
        of spikes a ``SumPool2d`` + ``Threshold(0.5)``; the ×10 before the second LIF layer a
        ``Scale``.  The readout voltage is the output; the class is ``argmax`` of its maximum
        over time, as in :meth:`forward`.  The latency encoder has no NIR equivalent.
        """
        from snncore.nir import NIRLIFNeuron, Scale, as_tensor

        if self.hparams.get("only_first_spike"):
            raise ValueError(
                "the spike_latency_lif encoder (each pixel spikes at most once) has no NIR "
                "equivalent; train without --only-first-spike to export"
            )
        p, net = self.encoder.p, self.rsnn
        encoder = NIRLIFNeuron(
            self.encoder.dt,
            "nir",
            tau_inv=as_tensor(p.tau_mem_inv),
            r=as_tensor(self.input_scale),
            v_leak=as_tensor(p.v_leak),
            v_threshold=as_tensor(p.v_th),
            v_reset=as_tensor(p.v_reset),
        )
        lift = snncore.Lift
        return snncore.SequentialState(
            lift(encoder), lift(net.conv1), net.lif0, lift(torch.nn.MaxPool2d(2, 2)),
            lift(net.conv2), lift(Scale(10.0)), net.lif1, lift(torch.nn.MaxPool2d(2, 2)),
            lift(torch.nn.Flatten()), lift(net.fc1), net.lif2, lift(net.out), net.li,
        )  # fmt: skip

    def _evaluate(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch
        log_p = self(x)
        loss = F.nll_loss(log_p, y)
        accuracy = (log_p.argmax(1) == y).float().mean()
        on_step = stage == "train"
        self.log(
            f"{stage}_loss", loss, prog_bar=True, on_step=on_step, on_epoch=True, sync_dist=True
        )
        self.log(f"{stage}_accuracy", accuracy, prog_bar=True, on_step=on_step, on_epoch=True,
                 sync_dist=True)  # fmt: skip
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test")

    def configure_optimizers(self) -> Any:
        """Adam or SGD (weight decay 1e-6, as the reference) over the trained parameters; with
        ``lr_schedule="cosine"`` the learning rate follows a cosine from ``learning_rate`` down
        to 0 over the run's optimiser steps (the Trainer's ``estimated_stepping_batches``)."""
        optimizer_class = torch.optim.Adam if self.optimizer_name == "adam" else torch.optim.SGD
        parameters = [p for p in self.rsnn.parameters() if p.requires_grad]
        optimizer = optimizer_class(
            parameters, lr=self.learning_rate, weight_decay=self.weight_decay
        )
        trainer = getattr(self, "_trainer", None)
        if self.lr_schedule == "constant" or trainer is None:
            return optimizer
        steps = max(1, int(trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def build(options: Mapping[str, Any]) -> tuple[LIFConvNet, MNISTDataModule]:
    """``snn train mnist``'s builder: the network and the data from the command-line options."""
    data = MNISTDataModule(batch_size=options["batch_size"], data_subset=options["data_subset"])
    module = LIFConvNet(
        28 * 28,
        seq_length=options["seq_length"],
        learning_rate=options["learning_rate"],
        model=options["model"],
        optimizer=options["optimizer"],
        input_scale=options["input_scale"],
        only_output=options["only_output"],
        only_first_spike=options["only_first_spike"],
        alpha=options["alpha"],
        backend=options.get("backend", "auto"),
        lr_schedule=options["lr_schedule"],
    )
    return module, data


def nir_network(checkpoint: Any) -> tuple[snncore.SequentialState, torch.Tensor, float]:
    """``snn nir export``'s builder: the trained chain of ``checkpoint`` (see
    :meth:`LIFConvNet.nir_chain`), a sample input ``(1, 1, 1, S, S)`` and ``dt``."""
    from snn_tasks.run_directory import read_checkpoint

    stored = read_checkpoint(checkpoint)
    module = LIFConvNet(**dict(stored["hyper_parameters"]))
    module.load_state_dict(stored["state_dict"])
    module.eval()
    return module.nir_chain(), torch.zeros(1, 1, 1, module.side, module.side), module.rsnn.li.dt
