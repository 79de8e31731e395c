"""snncore.compat.norse: the reference library's API on snncore (issue: Norse drop-in
compatibility).  Each test names the issue item it covers.  Tests that compare with
the reference (norse 1.1.0) skip where it is not installed; the rest need only snncore.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import pytest
import torch
from torch.testing import assert_close

import snncore
from snncore.compat.norse import _superspike


def _reference():
    return pytest.importorskip("norse.torch", reason="the reference norse 1.1.0 is not installed")


# -- the namespace ---------------------------------------------------------------------------
def test_import_snncore_does_not_import_the_compat_namespace():
    code = "import snncore, sys; print(any(m.startswith('snncore.compat') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_reference_module_paths_hold_our_classes(norse_compat):
    import snn_lif
    import snn_lsnn
    from snncore.compat.norse.torch import LIFCell
    from snncore.compat.norse.torch.functional.lif import LIFParameters, lif_step
    from snncore.compat.norse.torch.module.lif import LIFCell as same

    assert LIFCell is same and issubclass(LIFCell, snn_lif.LIFCell)
    assert LIFParameters is snn_lif.LIFParameters and lif_step is snn_lif.functional.lif_step
    assert norse_compat.torch.functional.lsnn.lsnn_step is snn_lsnn.functional.lsnn_step
    assert norse_compat.torch.SequentialState is snncore.SequentialState


def test_an_unmapped_name_says_where_the_gaps_are_listed(norse_compat):
    with pytest.raises(AttributeError, match=r"porting-from-norse\.md"):
        norse_compat.torch.IAFCell  # noqa: B018 - a family snncore does not claim


def test_compat_modules_pickle_and_keep_their_class(norse_compat):
    cell = norse_compat.torch.LIFCell()
    again = pickle.loads(pickle.dumps(cell))
    assert type(again) is norse_compat.torch.LIFCell


# -- item 1: input shapes ----------------------------------------------------------------------
def test_unbatched_and_extra_leading_dimensions_are_accepted():
    import snn_lif

    assert snn_lif.LIFRecurrent(6, 6)(torch.ones(10, 6))[0].shape == (10, 6)
    assert snn_lif.LIFRecurrentCell(6, 5)(torch.ones(3, 2, 6))[0].shape == (3, 2, 5)
    assert snn_lif.LIF()(torch.ones(6))[0].shape == (6,)
    out, state = snn_lif.LIFRecurrent(4, 5)(torch.ones(7, 2, 3, 4))
    assert out.shape == (7, 2, 3, 5) and state.v.shape == (2, 3, 5)


def test_unbatched_recurrent_matches_the_reference():
    norse = _reference()
    import snn_lif

    torch.manual_seed(0)
    theirs = norse.LIFRecurrent(6, 4)
    ours = snn_lif.LIFRecurrent(
        6, 4, input_weights=theirs.input_weights, recurrent_weights=theirs.recurrent_weights
    )
    x = torch.rand(30, 6) * 4
    assert_close(ours(x)[0], theirs(x)[0])


# -- item 2: initial state that requires grad ---------------------------------------------------
def test_a_backward_whose_only_leaf_is_the_initial_state(norse_compat):
    out, state = norse_compat.torch.LIFCell()(torch.ones(5, 2))
    assert state.v.requires_grad
    out.sum().backward()  # the reference's behaviour: no "does not require grad" error


def test_our_classes_spend_no_autograd_memory_unless_asked():
    import snn_lif

    out, state = snn_lif.LIF()(torch.ones(10, 2, 3))
    assert not out.requires_grad and not state.v.requires_grad
    out, state = snn_lif.LIF(initial_state_grad=True)(torch.ones(10, 2, 3) * 5)
    assert out.requires_grad
    with torch.no_grad():
        assert not snn_lif.LIF(initial_state_grad=True)(torch.ones(3, 2))[0].requires_grad


# -- item 3: tensors of p that require grad stay attached ------------------------------------
def test_a_parameter_inside_p_learns_as_in_the_reference(norse_compat):
    norse = _reference()
    norse_compat.reference_superspike(True)
    x = torch.rand(50, 3, 4, generator=torch.Generator().manual_seed(1)) * 8
    grads = []
    for lib in (norse, norse_compat.torch):
        tau = torch.nn.Parameter(torch.tensor(100.0))
        out, state = lib.LIF(lib.LIFParameters(tau_mem_inv=tau))(x)
        (out.sum() + state.v.sum()).backward()
        grads.append(tau.grad)
    assert grads[1] is not None and grads[1] != 0
    assert_close(grads[1], grads[0])


# -- item 4: the NamedTuple protocol on parameter records ------------------------------------
def test_parameter_records_follow_the_namedtuple_protocol():
    from snn_lif import LIFParameters

    p = LIFParameters(v_th=0.5)
    assert p._fields[:2] == ("tau_syn_inv", "tau_mem_inv") and len(p) == len(p._fields)
    assert p._replace(v_th=0.7).v_th == pytest.approx(0.7) and p.v_th == pytest.approx(0.5)
    tau_syn_inv, tau_mem_inv, *rest = p
    assert float(tau_syn_inv) == 200.0 and len(rest) == len(p) - 2
    assert float(tau_mem_inv) == 100.0 and tuple(p)[3] is p.v_th and p[3] is p.v_th
    assert list(p._asdict()) == list(p._fields)
    with pytest.raises(ValueError, match="tau_mem_inv"):
        p._replace(tau_mem_inv=-1.0)  # still validated: attrs underneath


# -- item 5: the step functions added ----------------------------------------------------------
def test_added_step_functions_match_the_reference(norse_compat):
    norse = _reference()
    from norse.torch.functional import lif as theirs
    from norse.torch.functional import lif_mc as theirs_mc

    ours = norse_compat.torch.functional
    x = torch.rand(20, 2, 3, generator=torch.Generator().manual_seed(2)) * 3
    s = norse.LIFFeedForwardState(v=torch.zeros(2, 3), i=torch.zeros(2, 3))
    p_t, p_o = theirs.LIFParameters(), ours.lif.LIFParameters()
    z_t, st_t = theirs.lif_feed_forward_integral(x, s, p_t)
    z_o, st_o = ours.lif.lif_feed_forward_integral(x, ours.lif.LIFFeedForwardState(*s), p_o)
    assert_close(z_o, z_t)
    assert_close(st_o.v, st_t.v)
    v = torch.zeros(2, 3)
    assert_close(
        ours.lif.lif_current_encoder(x[0], v, p_o)[1], theirs.lif_current_encoder(x[0], v, p_t)[1]
    )
    g = torch.rand(3, 3, generator=torch.Generator().manual_seed(3))
    mc_t = theirs_mc.lif_mc_feed_forward_step(x[0], s, g, p_t)
    mc_o = ours.lif_mc.lif_mc_feed_forward_step(x[0], ours.lif.LIFFeedForwardState(*s), g, p_o)
    assert_close(mc_o[1].v, mc_t[1].v)
    z_sparse, _ = ours.lif.lif_feed_forward_step_sparse(x[0].to_sparse(), st_o, p_o)
    assert z_sparse.is_sparse


def test_single_adjoint_steps_equal_the_plain_step_forward(norse_compat):
    from snn_lif import LIFFeedForwardState
    from snn_lif.functional import lif_feed_forward_step

    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True) * 3
    s = LIFFeedForwardState(torch.full((2, 3), 0.9, dtype=torch.float64), torch.zeros(2, 3))
    adjoint = norse_compat.torch.functional.adjoint.lif_adjoint
    z, new = adjoint.lif_feed_forward_adjoint_step(x, s)
    z_ref, new_ref = lif_feed_forward_step(x, s)
    assert_close(z, z_ref)
    assert_close(new.v, new_ref.v)
    new.v.sum().backward()


# -- item 6: containers and extension API ------------------------------------------------------
def test_a_custom_neuron_on_the_reference_base_classes(norse_compat):
    from snncore.compat.norse.torch.module.snn import SNN, SNNCell

    def leaky(x, state, p, dt):
        v = state + dt * p * (x - state)
        return (v > 0.5).float(), v

    layer = SNN(leaky, lambda x: torch.zeros_like(x[0]), p=100.0, record_states=True)
    out, states = layer(torch.ones(5, 2))
    assert out.shape == (5, 2) and states.shape == (5, 2)
    assert isinstance(norse_compat.torch.LIFCell(), SNNCell)  # ours count as subclasses


def test_recurrent_sequential_feeds_its_output_back(norse_compat):
    from snncore.compat.norse.torch.module.sequential import RecurrentSequential

    net = RecurrentSequential(torch.nn.Identity(), torch.nn.Identity())
    out1, state = net(torch.ones(2))
    assert_close(out1, torch.ones(2))
    out2, _ = net(torch.ones(2), state)
    assert_close(out2, torch.full((2,), 2.0))


def test_lift_applies_a_step_function_over_time(norse_compat):
    from snn_lif import LIFFeedForwardState
    from snncore.compat.norse.torch.functional.lif import LIFParameters, lif_feed_forward_step
    from snncore.compat.norse.torch.functional.lift import lift

    x = torch.ones(4, 2) * 3
    start = LIFFeedForwardState(torch.zeros(2), torch.zeros(2))
    out, state = lift(lif_feed_forward_step, p=LIFParameters())(x, start)
    assert out.shape == (4, 2) and state.v.shape == (2,)


def test_a_lifted_step_takes_keywords_for_every_step(norse_compat):
    """The reference's lifted call passes its keywords (``p``, ``input_weights``, ...) to each
    step: a lifted ``li_step`` equals the loop written out."""
    from snncore.compat.norse.torch.functional.leaky_integrator import (
        LIParameters,
        LIState,
        li_step,
    )
    from snncore.compat.norse.torch.functional.lift import lift

    x = torch.rand(5, 2, 3, generator=torch.Generator().manual_seed(1))
    weights = torch.rand(4, 3, generator=torch.Generator().manual_seed(2))
    start = LIState(v=torch.zeros(2, 4), i=torch.zeros(2, 4))
    p = LIParameters(tau_mem_inv=torch.tensor(50.0))
    out, state = lift(li_step)(x, state=start, input_weights=weights, p=p)
    expected, s = [], start
    for x_t in x:
        v, s = li_step(x_t, s, weights, p)
        expected.append(v)
    assert_close(out, torch.stack(expected))
    assert_close(state.i, s.i)


# -- item 8: input and error types -------------------------------------------------------------
def test_bool_and_integer_spikes_are_cast():
    import snn_lif

    counts = torch.randint(0, 3, (10, 2, 4), generator=torch.Generator().manual_seed(0))
    layer = snn_lif.LIF()
    assert_close(layer(counts)[0], layer(counts.float())[0])
    assert layer(counts > 0)[0].dtype == torch.get_default_dtype()
    assert snn_lif.LIF().double()(counts)[0].dtype == torch.float64


def test_an_unknown_method_is_a_value_error_and_a_lookup_error():
    import snn_lif

    for kind in (ValueError, LookupError, snncore.UnknownNameError):
        with pytest.raises(kind, match="unknown surrogate 'nope'"):
            snn_lif.LIFCell(snn_lif.LIFParameters(method="nope"))


def test_a_reference_parameter_record_gets_the_conversion_in_the_message():
    norse = _reference()
    import snn_lif

    with pytest.raises(
        TypeError, match=r"reference library's .*LIFParameters\(\*\*p._asdict\(\)\)"
    ):
        snn_lif.LIFCell(norse.LIFParameters())


# -- item 9: the SuperSpike switch --------------------------------------------------------------
def test_the_switch_reproduces_the_reference_superspike_bit_for_bit(norse_compat):
    _reference()
    from norse.torch.functional.threshold import threshold as theirs

    x = torch.randn(1000, requires_grad=True, generator=torch.Generator().manual_seed(4))
    g_ref = torch.autograd.grad(theirs(x, "super", 100.0).sum(), x)[0]
    ours = norse_compat.torch.functional.threshold.threshold
    g_alpha = torch.autograd.grad(ours(x, "super", 100.0).sum(), x)[0]
    norse_compat.reference_superspike(True)
    g_switch = torch.autograd.grad(ours(x, "super", 100.0).sum(), x)[0]
    assert torch.equal(g_switch, g_ref) and not torch.allclose(g_alpha, g_ref)
    norse_compat.reference_superspike(False)
    assert torch.equal(torch.autograd.grad(ours(x, "super", 100.0).sum(), x)[0], g_alpha)


def test_undecided_warns_once_and_choosing_is_warning_free(norse_compat):
    _superspike._choice["warned"] = False
    with pytest.warns(norse_compat.NorseCompatWarning, match="reference_superspike"):
        norse_compat.torch.LIFCell()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norse_compat.torch.LIFCell()  # once only
        _superspike._choice["warned"] = False
        norse_compat.reference_superspike(False)
        norse_compat.torch.LIFCell()  # decided: no warning


def test_the_environment_variable_chooses(monkeypatch, norse_compat):
    monkeypatch.setenv("SNNCORE_NORSE_SUPERSPIKE", "reference")
    _superspike.choose_from_environment()
    assert norse_compat.uses_reference_superspike() is True
    assert snncore.get_surrogate("super").name == "super_unscaled"
    monkeypatch.setenv("SNNCORE_NORSE_SUPERSPIKE", "maybe")
    with pytest.raises(ValueError, match="SNNCORE_NORSE_SUPERSPIKE must be"):
        _superspike.choose_from_environment()
