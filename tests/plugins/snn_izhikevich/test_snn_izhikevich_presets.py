"""The 20 named behaviours: values (MODELS.md's table), the three ways to use them, immutability,
the reference's constructor conventions, the registry and ``snn info``."""

from __future__ import annotations

import json

import attrs
import pytest
import snn_izhikevich
import torch
from click.testing import CliRunner
from snn_izhikevich import (
    BEHAVIORS,
    PRESETS,
    Izhikevich,
    IzhikevichCell,
    IzhikevichFeedForwardState,
    IzhikevichParameters,
    IzhikevichRecurrent,
    IzhikevichRecurrentCell,
    IzhikevichSpikingBehavior,
    create_izhikevich_spiking_behavior,
)
from torch.testing import assert_close

import snncore
from snncore.cli import cli
from snncore.parameters import tensor_items

# MODELS.md, "Izhikevich": name -> (a, b, c, d, other, v0, u0 or None for b·v0)
TABLE = {
    "tonic_spiking": (0.02, 0.2, -65, 6, {}, -70, None),
    "phasic_spiking": (0.02, 0.25, -65, 6, {}, -64, None),
    "tonic_bursting": (0.02, 0.2, -50, 2, {}, -70, None),
    "phasic_bursting": (0.02, 0.25, -55, 0.05, {"tau_inv": 200}, -64, None),
    "mixed_mode": (0.02, 0.2, -55, 4, {}, -70, None),
    "spike_frequency_adaptation": (0.01, 0.2, -65, 8, {}, -70, None),
    "class_1_exc": (0.02, -0.1, -55, 6, {"mn": 4.1, "bias": 108}, -60, None),
    "class_2_exc": (0.2, 0.26, -65, 0, {}, -64, None),
    "spike_latency": (0.02, 0.2, -65, 6, {}, -70, None),
    "subthreshold_oscillation": (0.05, 0.26, -60, 0, {}, -62, None),
    "resonator": (0.1, 0.26, -60, -1, {}, -62, None),
    "integrator": (0.02, -0.1, -55, 6, {"mn": 4.1, "bias": 108}, -60, None),
    "rebound_spike": (0.03, 0.25, -60, 4, {"tau_inv": 200}, -64, None),
    "rebound_burst": (0.03, 0.25, -52, 0, {"tau_inv": 200}, -64, None),
    "threshold_variability": (0.03, 0.25, -60, 4, {}, -64, None),
    "bistability": (0.1, 0.26, -60, 0, {}, -61, None),
    "dap": (1.0, 0.2, -60, -21, {"tau_inv": 100}, -70, None),
    "accommodation": (0.02, 1.0, -55, 4, {"tau_inv": 500}, -65, -16),
    "inhibition_induced_spiking": (-0.02, -1.0, -60, 8, {}, -63.8, None),
    "inhibition_induced_bursting": (-0.026, -1.0, -45, -2, {}, -63.8, None),
}
DEFAULTS = {"sq": 0.04, "mn": 5.0, "bias": 140.0, "v_th": 30.0, "tau_inv": 250.0}


def _expected(name):
    a, b, c, d, other, v0, u0 = TABLE[name]
    fields = {"a": a, "b": b, "c": c, "d": d, **DEFAULTS, **other}
    return fields, v0, (b * v0 if u0 is None else u0)


def test_the_twenty_presets_have_the_table_values():
    assert list(PRESETS) == list(TABLE) == list(BEHAVIORS)
    for name in TABLE:
        fields, v0, u0 = _expected(name)
        for p in (PRESETS[name].parameters, BEHAVIORS[name].p):
            for field, value in fields.items():
                assert float(getattr(p, field)) == pytest.approx(value, rel=1e-6), (name, field)
        assert PRESETS[name].initial_state == pytest.approx({"v": v0, "u": u0})
        assert float(BEHAVIORS[name].s.v) == pytest.approx(v0)
        assert float(BEHAVIORS[name].s.u) == pytest.approx(u0, rel=1e-6)
        assert getattr(snn_izhikevich, name) is BEHAVIORS[name]  # importable by name
    assert snn_izhikevich.accomodation is snn_izhikevich.accommodation  # the reference spelling


@pytest.mark.parametrize("name", ["tonic_spiking", "accommodation", "dap"])
def test_create_with_behavior_starts_at_the_preset_state(name):
    _, v0, u0 = _expected(name)
    for key in ("behavior", "preset"):
        for variant, x in (("cell", torch.zeros(2, 3)), ("layer", torch.zeros(1, 2, 3))):
            module = snncore.create("izhikevich", variant=variant, **{key: name})
            assert module.preset == name
            state = module.make_initial_state(module.parameters_now(), (2, 3), None, x.dtype)
            assert_close(state.v, torch.full((2, 3), float(v0)))
            assert_close(state.u, torch.full((2, 3), float(u0)))
        module = snncore.create("izhikevich", variant="recurrent", input_size=2, hidden_size=3,
                                **{key: name})  # fmt: skip
        _, s = module(torch.zeros(1, 4, 2))
        assert s.v.shape == (4, 3)
    cell = snncore.create("izhikevich", variant="cell", behavior=name)
    assert float(cell.p_a) == pytest.approx(TABLE[name][0])


def test_behavior_objects_work_as_in_the_reference():
    x = 5.0 * torch.ones(10, 2, 4)
    by_object = Izhikevich(snn_izhikevich.tonic_bursting)
    by_keyword = Izhikevich(spiking_method=snn_izhikevich.tonic_bursting, dt=0.001)
    by_name = Izhikevich(behavior="tonic_bursting")
    assert type(by_object) is type(by_name) is Izhikevich
    assert by_object.preset == "tonic_bursting"
    z1, s1 = by_object(x)
    z2, _s2 = by_keyword(x)
    z3, s3 = by_name(x)
    assert torch.equal(z1, z3) and torch.equal(z2, z3)
    assert torch.equal(s1.v, s3.v) and torch.equal(s1.u, s3.u)
    cell = IzhikevichCell(snn_izhikevich.tonic_spiking)
    assert cell.spiking_method is snn_izhikevich.tonic_spiking
    _, s = cell(torch.zeros(3, 5))
    assert_close(s.v, torch.full((3, 5), -70.0))
    rec = IzhikevichRecurrentCell(2, 4, snn_izhikevich.bistability)  # (input, hidden, behaviour)
    _, s = rec(torch.zeros(3, 2))
    assert s.z.shape == (3, 4) and rec.preset == "bistability"
    rec_layer = IzhikevichRecurrent(2, 4, snn_izhikevich.dap, autapses=True)
    _, s = rec_layer(torch.zeros(5, 3, 2))
    assert s.v.shape == (3, 4) and rec_layer.autapses


def test_custom_behavior_like_the_reference():
    # The reference's helper multiplies u_rest by b: u0 = b·u_rest.
    custom = create_izhikevich_spiking_behavior(0.02, 0.25, -60, 4, v_rest=-66, u_rest=-66)
    assert isinstance(custom, IzhikevichSpikingBehavior)
    assert float(custom.s.v) == -66.0
    assert float(custom.s.u) == pytest.approx(0.25 * -66)
    cell = IzhikevichCell(custom)
    assert cell.preset is None
    _, s = cell(torch.zeros(1, 2))
    v1 = -66 + 0.25 * (0.04 * 66**2 - 5 * 66 + 140 + 16.5)  # one step from the custom start
    assert_close(s.v, torch.full((1, 2), v1))


def test_presets_are_immutable_and_share_no_gradient_tensors():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snn_izhikevich.tonic_spiking.p.a = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        snn_izhikevich.tonic_spiking.p = IzhikevichParameters()  # type: ignore[misc]
    with pytest.raises(TypeError):
        PRESETS["tonic_spiking"] = PRESETS["dap"]  # type: ignore[index]
    with pytest.raises(TypeError):
        BEHAVIORS["tonic_spiking"] = BEHAVIORS["dap"]  # type: ignore[index]
    with pytest.raises(TypeError):
        PRESETS["tonic_spiking"].initial_state["v"] = 0.0  # type: ignore[index]
    for name in TABLE:
        tensors = [*snncore_tensors(PRESETS[name].parameters), *snncore_tensors(BEHAVIORS[name].p)]
        tensors += list(BEHAVIORS[name].s)
        assert not any(x.requires_grad for x in tensors), name
        # the exported behaviour and the registered preset hold separate tensors
        assert PRESETS[name].parameters.a.data_ptr() != BEHAVIORS[name].p.a.data_ptr()


def snncore_tensors(p):
    return [tensor for _, tensor in tensor_items(p)]


def test_training_a_preset_module_leaves_the_preset_alone():
    cell = IzhikevichCell(snn_izhikevich.tonic_spiking, learnable=("a", "d"))
    other = IzhikevichCell(behavior="tonic_spiking", learnable=("a",))
    assert cell.p_a.data_ptr() != other.p_a.data_ptr() != BEHAVIORS["tonic_spiking"].p.a.data_ptr()
    optimizer = torch.optim.SGD(cell.parameters(), lr=1.0)
    _z, s = cell(20 * torch.ones(4, 3))
    (s.v.sum() + s.u.sum()).backward()
    optimizer.step()
    assert float(cell.p_a.detach()) != 0.02  # the module learnt ...
    assert float(BEHAVIORS["tonic_spiking"].p.a) == pytest.approx(0.02)  # ... the preset did not
    assert float(PRESETS["tonic_spiking"].parameters.a) == pytest.approx(0.02)
    assert float(other.p_a.detach()) == pytest.approx(0.02)
    assert other.p_a.grad is None
    # states are fresh tensors: writing into one leaves the preset's start untouched
    _, s = IzhikevichCell(snn_izhikevich.tonic_spiking)(torch.zeros(1, 1))
    s.v.add_(100.0)
    assert float(BEHAVIORS["tonic_spiking"].s.v) == -70.0


def test_behavior_errors_are_clear():
    with pytest.raises(TypeError, match="either a spiking behaviour or p="):
        IzhikevichCell(snn_izhikevich.tonic_spiking, p=IzhikevichParameters())
    with pytest.raises(TypeError, match="one spiking behaviour"):
        IzhikevichCell(snn_izhikevich.tonic_spiking, spiking_method=snn_izhikevich.dap)
    with pytest.raises(TypeError, match="either a spiking behaviour or behavior="):
        IzhikevichCell(snn_izhikevich.tonic_spiking, behavior="dap")
    with pytest.raises(TypeError, match="IzhikevichSpikingBehavior"):
        IzhikevichCell(spiking_method="tonic_spiking")
    per_neuron = IzhikevichSpikingBehavior(
        IzhikevichParameters(), IzhikevichFeedForwardState(torch.zeros(3), torch.zeros(3))
    )
    with pytest.raises(ValueError, match="one start value for every neuron"):
        IzhikevichCell(per_neuron)
    with pytest.raises(LookupError, match="tonic_spiking"):
        IzhikevichCell(behavior="tonic_spikes")  # the miss lists close names


def test_defaults_are_the_tonic_spiking_behavior():
    x = 14.0 * torch.ones(400, 1, 1)
    z_default, s_default = Izhikevich()(x)
    z_preset, s_preset = Izhikevich(behavior="tonic_spiking")(x)
    assert torch.equal(z_default, z_preset) and z_default.sum() > 3
    assert torch.equal(s_default.u, s_preset.u)


def test_snn_info_lists_the_twenty_presets():
    result = CliRunner().invoke(cli, ["info", "izhikevich", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    info = info.get("model", info)  # (schema 1 wraps the record in "model")
    assert info["family"] == "izhikevich"
    assert [p["name"] for p in info["presets"]] == list(TABLE)
    text = CliRunner().invoke(cli, ["info", "izhikevich"]).output
    assert all(name in text for name in TABLE)
    listing = json.loads(CliRunner().invoke(cli, ["list-models", "--json"]).output)
    listing = listing["models"] if isinstance(listing, dict) else listing
    rows = [r for r in listing if r["name"] == "izhikevich"]
    assert rows and rows[0]["family"] == "izhikevich"
    assert set(rows[0]["variants"]) == {"cell", "recurrent_cell", "layer", "recurrent"}
