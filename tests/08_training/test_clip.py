"""clip_grad_norm against NumPy float64 references: norms, scaling, ranges, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import clip_grad_norm


def with_grad(values, dtype=np.float32):
    t = Tensor(np.zeros(np.shape(values)), requires_grad=True, dtype=dtype)
    t.grad = np.array(values, dtype=dtype)
    return t


def reference_norm(grads, p=2.0):
    """The p-norm of all entries, from NumPy in float64 (small, safe inputs only)."""
    flat = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
    return float(np.linalg.norm(flat, ord=p)) if flat.size else 0.0


def test_worked_example():
    # [100, 200, 50] = 50 * [2, 4, 1]: norm 50 sqrt(21) = 229.1288, clipped [2, 4, 1] / sqrt(21)
    ps = [with_grad([100.0]), with_grad([200.0]), with_grad([50.0])]
    norm = clip_grad_norm(ps, max_norm=1.0)
    assert type(norm) is float
    assert abs(norm - 50 * math.sqrt(21)) < 1e-12 * norm
    got = np.concatenate([p.grad for p in ps]).astype(np.float64)
    np.testing.assert_allclose(got, np.array([2.0, 4.0, 1.0]) / math.sqrt(21), rtol=2e-7)
    assert [f"{v:.3f}" for v in got] == ["0.436", "0.873", "0.218"]


grad_arrays = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    elements=st.floats(-1e3, 1e3, allow_nan=False, width=32),
)


@given(st.lists(grad_arrays, min_size=1, max_size=4), st.floats(1e-3, 1e3))
@settings(max_examples=100, deadline=None)
def test_matches_float64_reference_and_keeps_direction(grads, max_norm):
    params = [with_grad(g) for g in grads]
    arrays_before = [p.grad for p in params]
    want = reference_norm(grads)
    got = clip_grad_norm(params, max_norm=max_norm)
    assert type(got) is float
    assert abs(got - want) <= 1e-12 * max(want, 1e-30)
    factor = max_norm / want if want > max_norm else 1.0
    for p, g, arr in zip(params, grads, arrays_before, strict=True):
        assert p.grad is arr, "scaled in place"
        expected = np.asarray(g, dtype=np.float64) * factor
        # float32 result, rounded once from the float64 product
        np.testing.assert_array_equal(p.grad, expected.astype(np.float32))
    if want > max_norm:
        assert abs(reference_norm([p.grad for p in params]) - max_norm) <= 1e-6 * max_norm


@given(st.lists(grad_arrays, min_size=1, max_size=3), st.sampled_from([1.0, 1.5, 3.0, math.inf]))
@settings(max_examples=60, deadline=None)
def test_other_norm_types(grads, p):
    params = [with_grad(g) for g in grads]
    want = reference_norm(grads, p)
    got = clip_grad_norm(params, max_norm=1e9, norm_type=p)
    assert abs(got - want) <= 1e-12 * max(want, 1e-30)


def test_float64_gradients_and_max_norm_zero():
    t = with_grad([3.0, -4.0], dtype=np.float64)
    assert clip_grad_norm([t], max_norm=2.5) == 5.0
    np.testing.assert_array_equal(t.grad, [1.5, -2.0])
    assert t.grad.dtype == np.float64
    z = with_grad([1.0, -2.0])
    clip_grad_norm(z, max_norm=0.0)  # a single tensor is accepted too
    assert not np.any(z.grad)


@pytest.mark.parametrize("scale", [1e20, 1e30, 1e-30, 1e-40])
def test_no_overflow_or_underflow_in_float32(scale):
    t = with_grad([3.0 * scale, 4.0 * scale])
    stored = t.grad.astype(np.float64)  # what float32 actually holds (1e-40 is subnormal)
    want = float(np.hypot(*stored))
    got = clip_grad_norm([t], max_norm=1.0)
    assert math.isfinite(got) and got > 0
    assert abs(got - want) <= 1e-12 * want
    if want > 1.0:
        np.testing.assert_allclose(t.grad.astype(np.float64), stored / want, rtol=1e-6)
    else:
        np.testing.assert_array_equal(t.grad.astype(np.float64), stored)


@pytest.mark.parametrize("p", [3.0, 10.0, 20.0, 0.5])
@pytest.mark.parametrize("scale", [1e37, 1e20, 1e-30, 1e-38])
def test_other_norms_of_float32_gradients_neither_overflow_nor_underflow(p, scale):
    # float32 [3 s, -4 s]: the p-norm in closed form, b (1 + (a / b)^p)^(1/p) in Python
    # floats; the powers alone would leave float64's range for most of these (4e37^10)
    t = with_grad([3.0 * scale, -4.0 * scale])
    a, b = (abs(float(v)) for v in t.grad)
    want = b * (1.0 + (a / b) ** p) ** (1.0 / p)
    got = clip_grad_norm([t], max_norm=1e300, norm_type=p)
    assert math.isfinite(got) and got > 0
    assert abs(got - want) <= 1e-12 * want


def test_float64_near_the_top_of_the_range():
    t = with_grad([3e200, 4e200], dtype=np.float64)
    assert abs(clip_grad_norm([t], max_norm=1.0) - 5e200) <= 1e-15 * 5e200
    np.testing.assert_allclose(t.grad, [0.6, 0.8], rtol=1e-15)


def test_no_gradients_and_none_entries():
    assert clip_grad_norm([], max_norm=1.0) == 0.0
    none = Tensor([1.0], requires_grad=True)
    assert clip_grad_norm([none, none], max_norm=1.0) == 0.0
    assert none.grad is None
    zero = with_grad([0.0, 0.0])
    assert clip_grad_norm([zero], 1.0) == 0.0
    np.testing.assert_array_equal(zero.grad, [0.0, 0.0])


def test_exactly_at_the_limit_is_not_scaled():
    t = with_grad([3.0, 4.0])
    assert clip_grad_norm([t], max_norm=5.0) == 5.0
    np.testing.assert_array_equal(t.grad, np.float32([3, 4]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_norm_is_returned_and_changes_nothing(bad, recwarn):
    t, u = with_grad([1.0, bad]), with_grad([100.0])
    before = [t.grad.copy(), u.grad.copy()]
    got = clip_grad_norm([t, u], max_norm=1.0)
    assert type(got) is float and not math.isfinite(got)
    assert math.isnan(got) if np.isnan(bad) else got == math.inf
    np.testing.assert_array_equal(t.grad, before[0])
    np.testing.assert_array_equal(u.grad, before[1])
    with pytest.raises(RuntimeError, match="not finite"):
        clip_grad_norm([t, u], max_norm=1.0, error_if_nonfinite=True)
    assert len(recwarn) == 0, "no NumPy warnings escape"


def test_nan_after_inf_is_still_nan():
    # max() over per-array norms must not let inf hide a nan (order independent)
    assert math.isnan(clip_grad_norm([with_grad([np.inf]), with_grad([np.nan])], 1.0))
    assert math.isnan(clip_grad_norm([with_grad([np.nan]), with_grad([np.inf])], 1.0))


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), True, False, "1.0", None])
def test_bad_max_norm(bad):
    with pytest.raises(ValueError, match="max_norm") as info:
        clip_grad_norm([with_grad([1.0])], max_norm=bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [0, -2.0, float("nan"), True, "2"])
def test_bad_norm_type(bad):
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm([with_grad([1.0])], max_norm=1.0, norm_type=bad)


def test_shared_gradient_array_scaled_once():
    shared = np.array([6.0, 8.0], dtype=np.float32)
    a, b = Tensor([0.0, 0.0], requires_grad=True), Tensor([0.0, 0.0], requires_grad=True)
    a.grad = b.grad = shared
    norm = clip_grad_norm([a, b], max_norm=1.0)
    assert abs(norm - math.sqrt(200.0)) < 1e-12
    np.testing.assert_allclose(shared, np.float32([6, 8]) / math.sqrt(200.0), rtol=1e-7)


def test_a_parameter_listed_twice_counts_twice_and_is_scaled_once():
    # torch.nn.utils.clip_grad_norm_([w, w], 1.0) with w.grad = [6, 8] (torch 2.13.0, CPU)
    # returns sqrt(200) = 14.1421 like this, but then multiplies w.grad twice, to
    # [0.03, 0.04]; here each array is scaled once, so the list's norm becomes max_norm.
    w = with_grad([6.0, 8.0])
    norm = clip_grad_norm([w, w], max_norm=1.0)
    assert abs(norm - math.sqrt(200.0)) < 1e-12
    np.testing.assert_allclose(w.grad, np.float32([6, 8]) / math.sqrt(200.0), rtol=1e-7)
    assert abs(math.sqrt(2 * float(np.sum(w.grad.astype(np.float64) ** 2))) - 1.0) < 1e-6


def test_tied_weights_count_once_through_model_parameters():
    # one Linear used twice is one parameter set: model.parameters() lists it once (as torch does)
    layer = Linear(2, 2, rng=np.random.default_rng(0))
    model = Sequential(layer, layer)
    params = model.parameters()
    assert len(params) == 2
    layer.weight.grad = np.full((2, 2), 3.0, dtype=np.float32)
    layer.bias.grad = np.full(2, 4.0, dtype=np.float32)
    norm = clip_grad_norm(params, max_norm=100.0)
    assert abs(norm - math.sqrt(4 * 9 + 2 * 16)) < 1e-12
