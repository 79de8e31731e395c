"""NIR exchange with the peers: snnTorch 1.0 and Norse 1.1 (optional test oracles).

Each test skips with a reason when its peer is missing.  Where a peer's own importer is wrong,
the test says so and checks ours.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import snncore

nir = pytest.importorskip("nir", reason="NIR support not installed: pip install 'snncore[nir]'")


def _first_spike_steps(spikes: torch.Tensor) -> torch.Tensor:
    """Per neuron, the first step with a spike (T where none): spikes (T, B, N) -> (B, N)."""
    steps = spikes.shape[0]
    index = torch.arange(steps).view(-1, 1, 1).expand_as(spikes)
    return torch.where(spikes > 0, index, steps).amin(0)


def test_a_snntorch_leaky_network_exported_by_snntorch_keeps_every_first_spike_step() -> None:
    snn = pytest.importorskip("snntorch", reason="snntorch not installed (setup.sh --test)")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    beta = torch.linspace(0.8, 0.95, 6)  # per-neuron tensors: nir 1.0.8's type inference needs them
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        snn.Leaky(beta=beta, threshold=torch.ones(6), reset_mechanism="zero", init_hidden=True),
    )
    graph = export_to_nir(net, torch.rand(1, 4), ignore_dims=[0])
    leaky = next(n for n in graph.nodes.values() if type(n).__name__ == "LIF")
    assert leaky.r == pytest.approx(leaky.tau / 1e-4)  # snnTorch: tau = dt/(1-beta), r = tau/dt

    x = torch.rand(80, 3, 4) * 3
    snn_out = []
    net[1].reset_hidden()
    with torch.no_grad():
        for x_t in x:
            snn_out.append(net(x_t))
    ours, _ = snncore.from_nir(graph, dt=1e-4)(x)
    expected = _first_spike_steps(torch.stack(snn_out))
    assert (expected < 80).sum() >= 12  # most neurons spike: the comparison means something
    assert torch.equal(_first_spike_steps(ours), expected)


def test_snncores_lif_export_with_convention_snntorch_imports_into_snntorch_and_runs(
    tmp_path,
) -> None:
    pytest.importorskip("snntorch", reason="snntorch not installed (setup.sh --test)")
    from snntorch.import_nir import import_from_nir

    torch.manual_seed(2)
    dt = 1e-4  # snnTorch's importer knows only its own dt
    lif = snncore.create("lif", variant="layer", dt=dt, tau_syn_inv=500.0, tau_mem_inv=300.0)
    net = snncore.SequentialState(torch.nn.Linear(4, 5), lif)
    default = snncore.to_nir(net, dt=dt).nodes["lif1"]
    assert default.r.tolist() == [1.0] * 5  # the default convention: r = 1 ...
    path = tmp_path / "lif.nir"
    nir.write(path, snncore.to_nir(net, dt=dt, convention="snntorch"))
    graph = nir.read(path)
    node = graph.nodes["lif1"]
    # ... "snntorch": r = tau_mem/dt (all snnTorch 1.0's importer accepts), w_in = tau_syn/tau_mem
    assert node.r == pytest.approx(np.full(5, (1 / 300.0) / dt))
    assert node.w_in == pytest.approx(np.full(5, 300.0 / 500.0))
    assert node.tau_syn == pytest.approx(np.full(5, 1 / 500.0))
    x = torch.rand(200, 2, 4) * 2
    with torch.no_grad():
        ours, _ = net(x)
        again, _ = snncore.from_nir(graph, dt=dt)(x)
    assert torch.equal(again, ours) and ours.sum() >= 10  # our import: exactly our layer
    # snnTorch imports the file unmodified, runs it, and spikes first at the same steps.
    imported = import_from_nir(graph)
    state, spikes = None, []
    with torch.no_grad():
        for x_t in x:
            out, state = imported(x_t, state) if state is not None else imported(x_t)
            spikes.append(out)
    assert torch.equal(_first_spike_steps(torch.stack(spikes)), _first_spike_steps(ours))
    # the default export is what snnTorch refuses
    graph.nodes["lif1"] = default
    with pytest.raises(AssertionError, match="r not supported in CubaLIF"):
        import_from_nir(graph)


def test_convention_snntorch_needs_snntorchs_dt_and_a_known_convention() -> None:
    net = snncore.SequentialState(torch.nn.Linear(4, 5), snncore.create("lif", variant="layer"))
    with pytest.raises(snncore.nir.NIRError, match=r"convention='snntorch' needs dt=0.0001"):
        snncore.to_nir(net, dt=0.001, convention="snntorch")
    with pytest.raises(snncore.nir.NIRError, match="convention must be one of"):
        snncore.to_nir(net, convention="norse")


def test_a_graph_written_by_norses_exporter_reproduces_the_norse_layer_with_convention_norse() -> (
    None
):
    norse = pytest.importorskip("norse.torch", reason="norse not installed (setup.sh --test)")

    torch.manual_seed(3)
    p = norse.LIFParameters(tau_syn_inv=torch.tensor(150.0), tau_mem_inv=torch.tensor(80.0),
                            v_th=torch.tensor(0.4))  # fmt: skip
    model = norse.SequentialState(torch.nn.Linear(4, 6), norse.LIFCell(p))
    graph = norse.to_nir(model, torch.rand(1, 4))
    lif = next(n for n in graph.nodes.values() if type(n).__name__ == "CubaLIF")
    # Norse 1.1 writes tau = dt/tau_inv (1e-3/150 s, not 1/150 s), r = w_in = 1 meaning its own
    # LIF (the input jumps into i).  Its own importer reads these as seconds: dt/tau = 150 > 1,
    # an unstable Euler step — so Norse cannot read its own graph back; ours can:
    assert float(lif.tau_syn) == pytest.approx(1e-3 / 150)
    x = torch.rand(100, 2, 4)
    expected, state = [], None
    with torch.no_grad():
        for x_t in x:
            z, state = model(x_t, state)
            expected.append(z)
        # Norse's graph keeps the batch of its sample in the Input shape: (1, 4)
        ours, _ = snncore.from_nir(graph, dt=1e-3, convention="norse")(x[:, :, None, :])
    ours, expected_spikes = ours[:, :, 0, :], torch.stack(expected)
    assert expected_spikes.sum() >= 20
    assert torch.equal(ours, expected_spikes)
