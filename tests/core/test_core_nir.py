"""NIR exchange (docs/nir.md): round trips through a file, hand-built graphs against an
independent Euler integration of NIR's equations, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snncore
from snncore.cli import cli

nir = pytest.importorskip("nir", reason="NIR support not installed: pip install 'snncore[nir]'")


def _round_trip(
    net: torch.nn.Module, x: torch.Tensor, path: Path
) -> tuple[torch.Tensor, torch.Tensor]:
    nir.write(path, snncore.to_nir(net, x))
    imported = snncore.from_nir(nir.read(path))
    with torch.no_grad():
        return net(x)[0], imported(x)[0]


def test_linear_lif_linear_li_round_trips_through_a_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = snncore.SequentialState(
        torch.nn.Linear(3, 5), snncore.create("lif", variant="layer"),
        torch.nn.Linear(5, 2, bias=False), snncore.create("li", variant="layer"),
    )  # fmt: skip
    x = torch.rand(50, 4, 3) * 300
    ours, back = _round_trip(net, x, tmp_path / "ff.nir")
    assert (ours - back).abs().max() <= 1e-6
    graph = nir.read(tmp_path / "ff.nir")
    assert [type(graph.nodes[k]).__name__ for k in ("affine1", "lif1", "linear1", "li1")] == [
        "Affine", "CubaLIF", "Linear", "CubaLI"]  # fmt: skip
    lif = graph.nodes["lif1"]  # tau in seconds, r = 1, w_in = tau_syn/dt
    assert lif.tau_syn.tolist() == [0.005] * 5 and lif.tau_mem.tolist() == [0.01] * 5
    assert lif.r.tolist() == [1.0] * 5 and lif.w_in.tolist() == pytest.approx([5.0] * 5)


def test_a_recurrent_lif_layer_round_trips_as_a_cycle(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = snncore.SequentialState(
        snncore.create("lif", variant="recurrent", input_size=3, hidden_size=6),
        torch.nn.Linear(6, 2), snncore.create("li", variant="layer"),
    )  # fmt: skip
    x = torch.rand(60, 4, 3) * 40
    ours, back = _round_trip(net, x, tmp_path / "rec.nir")
    assert (ours - back).abs().max() <= 1e-6
    graph = nir.read(tmp_path / "rec.nir")
    assert ("lif1", "linear2") in graph.edges and ("linear2", "lif1") in graph.edges
    assert snncore.from_nir(graph).recurrent


def test_convention_snntorch_writes_r_tau_mem_over_dt_and_reads_back_exactly(
    tmp_path: Path,
) -> None:
    torch.manual_seed(6)
    dt = 1e-4
    net = snncore.SequentialState(
        snncore.create("lif", variant="recurrent", input_size=3, hidden_size=5, dt=dt,
                       tau_syn_inv=400.0, tau_mem_inv=torch.linspace(150.0, 250.0, 5)),
        torch.nn.Linear(5, 2), snncore.create("li", variant="layer", dt=dt),
    )  # fmt: skip
    x = torch.rand(120, 3, 3) * 30
    nir.write(tmp_path / "snntorch.nir", snncore.to_nir(net, dt=dt, convention="snntorch"))
    graph = nir.read(tmp_path / "snntorch.nir")
    lif, li = graph.nodes["lif1"], graph.nodes["li1"]
    tau_mem = 1 / np.linspace(150.0, 250.0, 5)
    assert lif.r == pytest.approx(tau_mem / dt) and lif.w_in == pytest.approx(1 / (400.0 * tau_mem))
    assert li.r == pytest.approx(np.full(2, 0.01 / dt)) and li.w_in == pytest.approx([0.5, 0.5])
    imported = snncore.from_nir(graph, dt=dt)
    with torch.no_grad():
        ours, back = net(x)[0], imported(x)[0]
    assert (ours - back).abs().max() <= 1e-6 and ours.abs().max() > 0.01
    # the imported neuron writes the same convention again (through its to_nir, which a chain
    # of imported modules uses), and the default one on request
    step = next(m for m in imported.modules() if hasattr(m, "to_nir") and hasattr(m, "cell")
                and m.cell.p.tau_mem_inv.numel() == 5)  # fmt: skip
    chain = snncore.SequentialState(torch.nn.Linear(3, 5), snncore.Lift(step))
    node = snncore.to_nir(chain, x, dt=dt, convention="snntorch").nodes["cubalif1"]
    assert node.r == pytest.approx(lif.r) and node.w_in == pytest.approx(lif.w_in)
    plain = snncore.to_nir(chain, x, dt=dt).nodes["cubalif1"]
    assert plain.r.tolist() == [1.0] * 5 and plain.w_in == pytest.approx(np.full(5, 0.0025 / dt))


def test_a_mapping_without_the_convention_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from snncore.nir import _export

    calls = []
    only_nir = snncore.nir.NIRMapping("x", model="lif", to_node=lambda *a: calls.append(a))
    monkeypatch.setattr(_export, "exporter_for", lambda name: only_nir)
    net = snncore.SequentialState(snncore.create("lif", variant="layer", dt=1e-4))
    with pytest.raises(snncore.nir.NIRError, match="lif's NIR mapping writes only the "
                       "conventions nir, not 'snntorch'"):  # fmt: skip
        snncore.to_nir(net, torch.zeros(1, 1, 3), dt=1e-4, convention="snntorch")
    assert calls == []


def test_a_conv_net_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = snncore.SequentialState(
        snncore.Lift(torch.nn.Conv2d(2, 4, 3)), snncore.create("lif", variant="layer", v_th=0.3),
        snncore.Lift(torch.nn.AvgPool2d(2)), snncore.Lift(torch.nn.Flatten()),
        torch.nn.Linear(36, 3), snncore.create("li", variant="layer"),
    )  # fmt: skip
    x = torch.rand(30, 2, 2, 8, 8) * 20
    ours, back = _round_trip(net, x, tmp_path / "conv.nir")
    assert (ours - back).abs().max() <= 1e-6 and ours.abs().max() > 0.1


def test_per_neuron_parameters_stay_per_neuron(tmp_path: Path) -> None:
    from snn_lif import LIFParameters

    torch.manual_seed(3)
    p = LIFParameters(
        tau_syn_inv=torch.linspace(100, 300, 5), tau_mem_inv=torch.linspace(50, 150, 5),
        v_th=torch.linspace(0.5, 1.5, 5), v_leak=torch.linspace(-0.1, 0.1, 5),
        v_reset=torch.linspace(-0.2, 0.0, 5),
    )  # fmt: skip
    net = snncore.SequentialState(
        torch.nn.Linear(3, 5), snncore.create("lif", variant="layer", p=p)
    )
    x = torch.rand(60, 4, 3) * 40
    ours, back = _round_trip(net, x, tmp_path / "pn.nir")
    assert torch.equal(ours, back) and 0 < ours.sum() < ours.numel()
    lif = nir.read(tmp_path / "pn.nir").nodes["lif1"]
    assert lif.v_threshold.tolist() == pytest.approx([0.5, 0.75, 1.0, 1.25, 1.5])
    assert lif.tau_mem.tolist() == pytest.approx([1 / 50, 1 / 75, 1 / 100, 1 / 125, 1 / 150])


# -- hand-built graphs against NIR's equations, integrated here with forward Euler ------------

DT = 1e-3
N = 4


def _graph(neuron: object, weight: np.ndarray) -> object:
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([3])), "w": nir.Linear(weight=weight),
               "n": neuron, "output": nir.Output(output_type=np.array([N]))},
        edges=[("input", "w"), ("w", "n"), ("n", "output")],
    )  # fmt: skip


def _euler(x: np.ndarray, synapse: bool, spiking: bool, **q: np.ndarray) -> np.ndarray:
    """NIR's equations, Euler at DT, float64: I, then v with the new I; spike v > v_th, reset."""
    v = np.broadcast_to(q.get("v_leak", 0.0), x.shape[1:]).astype(np.float64)
    i = np.zeros(x.shape[1:])
    out = []
    for x_t in x:
        if synapse:
            i = i + DT / q["tau_syn"] * (-i + q["w_in"] * x_t)
            drive = q["r"] * i
        else:
            drive = q["r"] * x_t
        leak = (q["v_leak"] - v) / q["tau"] if "tau" in q else 0.0  # LIF/LI; IF: v' = drive
        v = v + DT * (leak + drive / q["tau"]) if "tau" in q else v + DT * drive
        if spiking:
            z = (v > q["v_threshold"]).astype(np.float64)
            v = np.where(z > 0, q["v_reset"], v)
            out.append(z)
        else:
            out.append(v.copy())
    return np.stack(out)


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "LI", "CubaLI", "IF"])
def test_hand_built_graphs_match_eulers_integration_of_nirs_equations(kind: str) -> None:
    rng = np.random.default_rng(4)
    weight = rng.uniform(0, 1, (N, 3))
    full = lambda v: np.full(N, v, dtype=np.float64)  # noqa: E731
    q = {"r": np.array([0.5, 1.0, 2.0, 3.0]), "v_leak": full(0.1), "v_threshold": full(1.0),
         "v_reset": full(-0.1), "tau": np.array([0.01, 0.02, 0.005, 0.03]),
         "tau_syn": np.array([0.004, 0.005, 0.01, 0.002]), "w_in": np.array([2.0, 0.5, 3.0, 1.5])}  # fmt: skip
    if kind == "LIF":
        node = nir.LIF(
            tau=q["tau"],
            r=q["r"],
            v_leak=q["v_leak"],
            v_threshold=q["v_threshold"],
            v_reset=q["v_reset"],
        )
    elif kind == "CubaLIF":
        node = nir.CubaLIF(tau_syn=q["tau_syn"], tau_mem=q["tau"], r=q["r"], v_leak=q["v_leak"],
                           v_threshold=q["v_threshold"], v_reset=q["v_reset"], w_in=q["w_in"])  # fmt: skip
    elif kind == "LI":
        node = nir.LI(tau=q["tau"], r=q["r"], v_leak=q["v_leak"])
    elif kind == "CubaLI":
        node = nir.CubaLI(
            tau_syn=q["tau_syn"], tau_mem=q["tau"], r=q["r"], v_leak=q["v_leak"], w_in=q["w_in"]
        )
    else:
        node = nir.IF(r=q["r"] * 40, v_threshold=q["v_threshold"], v_reset=q["v_reset"])
    x = rng.uniform(0, 30, (200, 2, 3))
    current = x @ weight.T
    spiking, synapse = kind in ("LIF", "CubaLIF", "IF"), kind.startswith("Cuba")
    params = dict(q)
    if kind == "IF":
        params = {"r": q["r"] * 40, "v_threshold": q["v_threshold"], "v_reset": q["v_reset"]}
    expected = _euler(current, synapse, spiking, **params)
    with torch.no_grad():
        out, _ = snncore.from_nir(_graph(node, weight))(torch.from_numpy(x).float())
    if spiking:
        assert 20 <= expected.sum() < expected.size * 0.9
        assert np.array_equal(out.numpy(), expected)
    else:
        assert np.abs(out.numpy() - expected).max() <= 1e-5 * np.abs(expected).max()


def test_a_recurrent_affine_adds_its_bias_from_the_first_step() -> None:
    lif = nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
                  v_threshold=np.full(2, 10.0), v_reset=np.zeros(2))  # fmt: skip
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "n": lif,
               "rec": nir.Affine(weight=np.zeros((2, 2)), bias=np.array([5.0, 0.0])),
               "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "n"), ("n", "rec"), ("rec", "n"), ("n", "output")],
    )  # fmt: skip
    module = snncore.from_nir(graph)
    module.eval()
    _, state = module(torch.zeros(1, 1, 2))
    # step 0: v = 0 + 0.001/0.01·((0 − 0) + 1·(0 + bias)) = 0.5 for the first neuron
    assert state["nodes"]["n"].tolist() == [[pytest.approx(0.5), 0.0]]


# -- errors -----------------------------------------------------------------------------------


def test_exporting_a_model_without_a_nir_node_names_it_and_what_nir_offers() -> None:
    net = snncore.SequentialState(torch.nn.Linear(3, 4), snncore.create("lsnn", variant="layer"))
    with pytest.raises(snncore.nir.NIRError) as caught:
        snncore.to_nir(net)
    assert str(caught.value).startswith(
        "lsnn has no NIR equivalent; NIR neuron nodes: LIF, CubaLIF, LI, CubaLI, IF, I"
    )
    assert "\n" not in str(caught.value)


def test_bad_files_and_unknown_nodes_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(snncore.nir.NIRError, match=r"^no such NIR file: .*missing\.nir$"):
        snncore.from_nir(tmp_path / "missing.nir")
    (tmp_path / "junk.nir").write_text("not hdf5")
    with pytest.raises(snncore.nir.NIRError, match=r"^cannot read NIR graph .*junk\.nir: "):
        snncore.from_nir(tmp_path / "junk.nir")
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "d": nir.Delay(delay=np.ones(2)),
               "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "d"), ("d", "output")],
    )  # fmt: skip
    with pytest.raises(
        snncore.nir.NIRError, match=r"^unknown NIR node type Delay \(node 'd'\); snncore reads: "
    ):
        snncore.from_nir(graph)
    wrong = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([3])), "w": nir.Linear(weight=np.ones((4, 5))),
               "output": nir.Output(output_type=np.array([4]))},
        edges=[("input", "w"), ("w", "output")], type_check=False,
    )  # fmt: skip
    with pytest.raises(
        snncore.nir.NIRError, match=r"^node 'w' \(Linear\) cannot take input of shape \(3,\)"
    ):
        snncore.from_nir(wrong)


def test_snn_nir_info_json_and_exit_2_on_a_missing_file(tmp_path: Path) -> None:
    torch.manual_seed(5)
    net = snncore.SequentialState(
        snncore.create("lif", variant="recurrent", input_size=3, hidden_size=4),
        torch.nn.Linear(4, 2), snncore.create("li", variant="layer"),
    )  # fmt: skip
    nir.write(tmp_path / "net.nir", snncore.to_nir(net))
    result = CliRunner().invoke(cli, ["nir", "info", str(tmp_path / "net.nir"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (
        info["recurrent"] is True and info["inputs"] == ["input"] and info["outputs"] == ["output"]
    )
    by_name = {n["name"]: n for n in info["nodes"]}
    assert by_name["lif1"] == {
        "name": "lif1",
        "type": "CubaLIF",
        "input_shape": [4],
        "output_shape": [4],
    }
    assert by_name["linear1"]["input_shape"] == [3] and by_name["affine1"]["output_shape"] == [2]
    assert ["linear2", "lif1"] in info["edges"] and len(info["edges"]) == 7
    missing = CliRunner().invoke(cli, ["nir", "info", str(tmp_path / "nope.nir")])
    assert missing.exit_code == 2
    assert missing.output.strip() == f"Error: no such NIR file: {tmp_path / 'nope.nir'}"
