"""The memory task's network (``LSNNLIFNet`` and a leaky-integrator readout) and ``MemoryNet``.

``LSNNLIFNet``: the input spikes ``x`` (T, B, 20) drive two recurrent populations side by side,
a LIF population and an LSNN population (adaptive threshold, the memory), ``hidden`` neurons
each, both with ``v_th = 0.5``; their spikes are concatenated, LIF first: (T, B, 2·hidden).
By default the LSNN population back-propagates through its threshold jump
(:func:`adaptation_gradient_model`), which the reference's detached jump does not allow.

Readout (``LIReadout``): a leaky integrator with ``outputs`` neurons and input weights ``W``
(outputs × 2·hidden).  Stepping ``LILinearCell`` once per time step computes
``i1 = i + W·z_t;  v' = v + dt·tau_mem_inv·((v_leak − v) + i1);  i' = i1 − dt·tau_syn_inv·i1``;
here ``W·z_t`` is computed for all steps at once and the ``li`` layer runs the same recursion over
time, which is the same arithmetic without a Python call per step.

Prediction: the readout voltage averaged over each recall period, used as the logits of the two
classes (bit 0, bit 1); the loss is cross-entropy over the recall periods, the accuracy the
fraction of recall periods whose larger averaged voltage is the stored bit.

Both recurrent populations and the readout are built by snncore with the task's ``backend``
(``torch``, ``fused`` or ``auto``), so a faster backend speeds the task up unchanged.  Defaults,
and where they differ from the reference: docs/tasks.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import attrs
import lightning
import torch

import snncore
from snn_tasks.memory_data import NO_RECALL, MemoryDataModule


@functools.cache
def adaptation_gradient_model() -> snncore.NeuronModel:
    """The registered ``lsnn`` model with a recurrent step that keeps the threshold's gradient.

    The reference's recurrent LSNN step (and ours, ``lsnn``) lifts the threshold by the
    *detached* spike, ``b' = b1 + beta·sg(z)``: the threshold then carries no gradient from a
    later recall back to the spikes of the store period, and back-propagation cannot learn to
    store (measured: recall accuracy stays at chance).  This step is LSNN's own feed-forward step
    applied to the recurrent current — the same equations, with the spike kept differentiable in
    the threshold jump and the reset — as in Bellec et al.'s back-propagation through time.
    """
    lsnn = snncore.get_model("lsnn")
    feed_forward_state, state = lsnn.feed_forward_state, lsnn.state

    def recurrent_step(current: torch.Tensor, s: Any, p: Any, dt: float) -> tuple[Any, Any]:
        z, new = lsnn.feed_forward_step(current, feed_forward_state(s.v, s.i, s.b), p, dt)
        return z, state(z, new.v, new.i, new.b)

    return attrs.evolve(
        lsnn,
        name="lsnn_adaptation_gradient",
        summary="lsnn whose recurrent threshold jump keeps its gradient (memory task)",
        recurrent_step=recurrent_step,
        adjoint={},
    )


@functools.cache
def adaptation_gradient_class() -> type:
    """The recurrent module class of :func:`adaptation_gradient_model` (picklable by name)."""
    return snncore.module_class(
        adaptation_gradient_model(), "recurrent", "LSNNAdaptationGradientRecurrent", __name__
    )


def __getattr__(name: str) -> Any:
    if name == "LSNNAdaptationGradientRecurrent":  # made on first use: it needs the registry
        return adaptation_gradient_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LSNNLIFNet(torch.nn.Module):
    """A recurrent LIF and a recurrent LSNN population reading the same input, side by side.

    ``forward(x (T, B, input_size), state=None) -> (spikes (T, B, 2·hidden), (lif, lsnn))``.
    ``v_th`` is both populations' threshold; ``tau_adapt`` (s) and ``beta`` the LSNN's threshold
    adaptation time constant and jump; ``method``/``alpha`` both populations' surrogate
    gradient.  ``adaptation_gradient=False`` uses the registered ``lsnn`` recurrent step (the
    reference's, with the detached threshold jump).
    """

    def __init__(
        self,
        input_size: int = 20,
        hidden: int = 10,
        *,
        v_th: float = 0.5,
        tau_adapt: float = 1.2,
        beta: float = 0.1,
        method: str = "super",
        alpha: float = 10.0,
        adaptation_gradient: bool = True,
        dt: float = 0.001,
        backend: str = "auto",
    ):
        super().__init__()
        if not tau_adapt > 0:
            raise ValueError(f"tau_adapt must be positive (seconds), got {tau_adapt!r}")
        self.input_size, self.hidden = input_size, hidden
        self.lif = snncore.create(
            "lif",
            variant="recurrent",
            backend=backend,
            input_size=input_size,
            hidden_size=hidden,
            dt=dt,
            v_th=v_th,
            method=method,
            alpha=alpha,
        )
        if adaptation_gradient:
            lsnn_class = adaptation_gradient_class()
        else:
            lsnn_class = snncore.module_class(snncore.get_model("lsnn"), "recurrent")
        self.lsnn = lsnn_class(
            backend=backend,
            input_size=input_size,
            hidden_size=hidden,
            dt=dt,
            v_th=v_th,
            tau_adapt_inv=1.0 / tau_adapt,
            beta=beta,
            method=method,
            alpha=alpha,
        )

    @property
    def output_size(self) -> int:
        return 2 * self.hidden

    def forward(
        self, x: torch.Tensor, state: tuple[Any, Any] | None = None
    ) -> tuple[torch.Tensor, tuple[Any, Any]]:
        lif_state, lsnn_state = (None, None) if state is None else state
        lif_spikes, lif_state = self.lif(x, lif_state)
        lsnn_spikes, lsnn_state = self.lsnn(x, lsnn_state)
        return torch.cat((lif_spikes, lsnn_spikes), dim=-1), (lif_state, lsnn_state)


class LIReadout(torch.nn.Module):
    """``LILinearCell`` over a whole sequence: ``(z (T, B, input_size)) -> (v (T, B, outputs))``.

    ``input_weights`` (outputs × input_size) start as N(0, 1)/sqrt(input_size), like
    ``LILinearCell``'s.
    """

    def __init__(self, input_size: int, outputs: int, *, dt: float = 0.001, backend: str = "auto"):
        super().__init__()
        self.input_weights = torch.nn.Parameter(
            torch.randn(outputs, input_size) / math.sqrt(input_size)
        )
        self.li = snncore.create("li", variant="layer", backend=backend, dt=dt)

    def forward(self, z: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.li(torch.nn.functional.linear(z, self.input_weights), state)


def period_means(voltages: torch.Tensor, period_length: int) -> torch.Tensor:
    """``(T, B, C)`` → ``(B, T // period_length, C)``: the mean over each period's steps."""
    steps, batch, channels = voltages.shape
    if steps % period_length:
        raise ValueError(
            f"sequence length {steps} is not a whole number of periods of {period_length}"
        )
    periods = voltages.reshape(steps // period_length, period_length, batch, channels).mean(1)
    return periods.transpose(0, 1)


class MemoryNet(lightning.LightningModule):
    """The memory task: ``LSNNLIFNet`` + ``LIReadout``, trained with Adam and a step decay.

    ``forward(x (T, B, inputs)) -> readout voltages (T, B, outputs)``.  Logs ``train_loss``,
    ``val_loss``/``val_accuracy`` and ``test_loss``/``test_accuracy`` (recall accuracy).
    ``rate_regularization`` > 0 adds ``factor · Σ_neurons (rate − target_rate)²`` (rates in Hz
    divided by 1000, i.e. spikes per ms) to the training loss.
    """

    def __init__(
        self,
        *,
        inputs: int = 20,
        hidden: int = 10,
        outputs: int = 2,
        period_length: int = 200,
        v_th: float = 0.5,
        tau_adapt: float = 1.2,
        beta: float = 0.1,
        method: str = "super",
        alpha: float = 10.0,
        adaptation_gradient: bool = True,
        dt: float = 0.001,
        learning_rate: float = 0.01,
        lr_step: int = 40,
        lr_gamma: float = 0.3,
        rate_regularization: float = 0.0,
        target_rate: float = 10.0,
        chain: int = 2,
        backend: str = "auto",
    ):
        super().__init__()
        self.save_hyperparameters()
        self.period_length = period_length
        self._carried: tuple[Any, Any] | None = None
        self.net = LSNNLIFNet(
            inputs,
            hidden,
            v_th=v_th,
            tau_adapt=tau_adapt,
            beta=beta,
            method=method,
            alpha=alpha,
            adaptation_gradient=adaptation_gradient,
            dt=dt,
            backend=backend,
        )
        self.readout = LIReadout(self.net.output_size, outputs, dt=dt, backend=backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.net(x)[0])[0]

    def _recall(
        self, batch: tuple[torch.Tensor, torch.Tensor], state: tuple[Any, Any] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor, tuple[Any, Any]]:
        """Loss, accuracy and number of recalls of a batch, the hidden spikes, the final state
        of the two populations (the batch starts from ``state``, or from rest)."""
        x, targets = batch
        spikes, final = self.net(x, state)
        voltages, _ = self.readout(spikes)
        logits = period_means(voltages, self.period_length)  # (B, P, outputs)
        mask = targets != NO_RECALL
        logits, labels = logits[mask], targets[mask]
        loss = torch.nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(-1) == labels).float().mean()
        return loss, accuracy, labels.numel(), spikes, final

    def _carried_state(self, x: torch.Tensor, batch_idx: int) -> tuple[Any, Any] | None:
        """Where training batch ``batch_idx`` of an epoch starts: batches are chained in runs of
        ``chain`` (0: the whole epoch), the first of a run from rest, each other one where the
        previous batch ended (detached: no gradient crosses from one batch to the next)."""
        chain = self.hparams.chain
        if batch_idx == 0 or chain == 1 or (chain > 1 and batch_idx % chain == 0):
            return None
        carried = self._carried
        if carried is None or carried[0].v.shape[0] != x.shape[1]:
            return None  # the first batch of an epoch, or a batch of another size
        return carried

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        loss, accuracy, count, spikes, final = self._recall(
            batch, self._carried_state(batch[0], batch_idx)
        )
        self._carried = tuple(type(s)(*(t.detach() for t in s)) for s in final)
        self.log("train_loss", loss, prog_bar=True, batch_size=count)
        self.log("train_accuracy", accuracy, batch_size=count)
        if self.hparams.rate_regularization > 0:
            rates = spikes.mean(dim=(0, 1))  # spikes per step, per neuron
            target = self.hparams.target_rate * self.hparams.dt
            loss = loss + self.hparams.rate_regularization * ((rates - target) ** 2).sum()
        return loss

    def _evaluate(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        loss, accuracy, count, _, _ = self._recall(batch)  # every sequence from rest
        self.log(f"{stage}_loss", loss, batch_size=count, sync_dist=True)
        self.log(f"{stage}_accuracy", accuracy, prog_bar=True, batch_size=count, sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_train_epoch_start(self) -> None:
        self._carried = None  # each epoch starts from rest
        # fresh training sequences every epoch, drawn from the epoch's own stream
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=self.hparams.lr_step, gamma=self.hparams.lr_gamma
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}


def build(options: Mapping[str, Any]) -> tuple[MemoryNet, MemoryDataModule]:
    """The memory task's module and data from ``snn train memory``'s options (all present:
    ``snn_tasks.training`` fills in the defaults)."""
    module = MemoryNet(
        inputs=4 * options["population"],
        hidden=options["hidden"],
        period_length=options["seq_length"],
        v_th=options["v_th"],
        tau_adapt=options["tau_adapt"],
        beta=options["beta"],
        method=options["surrogate"],
        alpha=options["alpha"],
        adaptation_gradient=options["adaptation_gradient"],
        dt=options["dt"],
        learning_rate=options["learning_rate"],
        lr_step=options["lr_step"],
        lr_gamma=options["lr_gamma"],
        rate_regularization=options["rate_regularization"],
        target_rate=options["target_rate"],
        chain=options["chain"],
        backend=options["backend"],
    )
    data = MemoryDataModule(
        train_samples=options["train_samples"],
        val_samples=options["val_samples"],
        test_samples=options["test_samples"],
        batch_size=options["batch_size"],
        periods=options["periods"],
        period_length=options["seq_length"],
        train_pairs=options["train_pairs"],
        test_pairs=options["test_pairs"],
        population=options["population"],
        data_rate=options["data_rate"],
        command_rate=options["command_rate"],
        dt=options["dt"],
        seed=options["seed"],
    )
    return module, data
