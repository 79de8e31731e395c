"""The port demo: a program written against the reference library's API — a convolutional
network and a recurrent LSNN network, each trained for a few steps — runs on snncore by changing
its import line only, and gives the reference's outputs, gradients and losses (with the
SuperSpike switch on: ``reference_superspike(True)``).  Skipped where the reference (norse 1.1.0)
is not installed.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.testing import assert_close

pytest.importorskip("norse.torch", reason="the reference norse 1.1.0 is not installed")

REFERENCE_IMPORT = "import norse.torch"
OUR_IMPORT = "import snncore.compat.norse as norse"

#: Written for the reference; ``{IMPORT}`` is the only line that differs between the two runs.
PROGRAM = """
import torch
{IMPORT}


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.lif = norse.torch.LIFCell(norse.torch.LIFParameters(v_th=torch.tensor(0.2)))
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)
        self.out = norse.torch.LICell()

    def forward(self, x):  # (T, B, 1, 8, 8)
        s1 = s2 = None
        voltages = []
        for x_t in x:
            z, s1 = self.lif(self.conv(x_t), s1)
            v, s2 = self.out(self.fc(z.flatten(1)), s2)
            voltages.append(v)
        return torch.stack(voltages).max(0).values


class RecurrentNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        p = norse.torch.LSNNParameters(v_th=torch.tensor(0.3))
        self.lsnn = norse.torch.LSNNRecurrent(5, 16, p=p)
        self.readout = norse.torch.LILinearCell(16, 2)

    def forward(self, x):  # (T, B, 5)
        z, _ = self.lsnn(x)
        s = None
        for z_t in z:
            v, s = self.readout(z_t, s)
        return v


def train(model, x, y, steps=3):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    return losses
"""


@pytest.fixture
def switched_on(norse_compat):
    norse_compat.reference_superspike(True)


def _program(import_line: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(PROGRAM.replace("{IMPORT}", import_line), namespace)
    return namespace


def _data(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    if kind == "ConvNet":
        x = (torch.rand(12, 4, 1, 8, 8, generator=gen) < 0.4).float() * 2.0
        return x, torch.tensor([0, 1, 2, 1])
    x = (torch.rand(40, 4, 5, generator=gen) < 0.3).float() * 3.0
    return x, torch.tensor([0, 1, 1, 0])


@pytest.mark.parametrize("kind", ["ConvNet", "RecurrentNet"])
def test_the_reference_program_runs_on_snncore_by_changing_the_import(kind, switched_on):
    theirs_ns, ours_ns = _program(REFERENCE_IMPORT), _program(OUR_IMPORT)
    torch.manual_seed(0)
    theirs = theirs_ns[kind]()
    ours = ours_ns[kind]()
    ours.load_state_dict(theirs.state_dict())  # the reference's checkpoints load as they are
    x, y = _data(kind)

    out_theirs, out_ours = theirs(x), ours(x)
    assert_close(out_ours, out_theirs, rtol=1e-5, atol=1e-6)
    torch.nn.functional.cross_entropy(out_theirs, y).backward()
    torch.nn.functional.cross_entropy(out_ours, y).backward()
    ours_grads = dict(ours.named_parameters())
    for name, parameter in theirs.named_parameters():
        assert ours_grads[name].grad is not None, name
        assert_close(ours_grads[name].grad, parameter.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert any(float(p.grad.abs().sum()) > 0 for p in ours.parameters())

    losses_theirs = theirs_ns["train"](theirs, x, y)
    losses_ours = ours_ns["train"](ours, x, y)
    assert_close(torch.tensor(losses_ours), torch.tensor(losses_theirs), rtol=1e-4, atol=1e-6)
    assert losses_ours[-1] != losses_ours[0]  # it trains
