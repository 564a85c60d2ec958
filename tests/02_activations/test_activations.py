"""Activations: values against independent closed forms, dtypes, graph records, errors."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor, no_grad

ALL = [ReLU(), Sigmoid(), Tanh(), GELU(), Softmax()]
OP_NAMES = ["relu", "sigmoid", "tanh", "gelu", "softmax"]

shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)
f64 = st.floats(-30, 30, allow_nan=False)


def arrays64(shape=shapes):
    return hnp.arrays(np.float64, shape, elements=f64)


@given(arrays64())
@settings(max_examples=50, deadline=None)
def test_values_against_per_element_closed_forms(a):
    # every element recomputed with the math module, one at a time
    flat = a.ravel().tolist()
    expect = {
        "relu": [max(v, 0.0) for v in flat],
        "sigmoid": [1 / (1 + math.exp(-v)) for v in flat],
        "tanh": [math.tanh(v) for v in flat],
        "gelu": [
            0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in flat
        ],
    }
    for act, name in zip(ALL[:4], OP_NAMES[:4], strict=True):
        got = act(Tensor(a, dtype=np.float64)).data
        assert got.dtype == np.float64 and got.shape == a.shape
        # GELU's 1 + tanh(u) cancels for negative x: allow a few ulps of 1 in absolute terms
        atol = 1e-14 if name == "gelu" else 0.0
        np.testing.assert_allclose(got.ravel(), expect[name], rtol=1e-12, atol=atol, err_msg=name)


@given(arrays64(), st.data())
@settings(max_examples=50, deadline=None)
def test_softmax_any_axis_against_the_definition(a, data):
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    got = Softmax(axis=axis)(Tensor(a, dtype=np.float64)).data
    e = np.exp(a)  # |a| <= 30: the plain definition does not overflow in float64
    np.testing.assert_allclose(got, e / e.sum(axis=axis, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(got.sum(axis=axis), 1.0, rtol=1e-12)


@given(arrays64(), st.floats(-500, 500))
@settings(max_examples=30, deadline=None)
def test_softmax_is_shift_invariant(a, shift):
    base = Softmax()(Tensor(a, dtype=np.float64)).data
    moved = Softmax()(Tensor(a + shift, dtype=np.float64)).data
    np.testing.assert_allclose(moved, base, rtol=1e-9, atol=1e-15)


@given(arrays64())
@settings(max_examples=30, deadline=None)
def test_sigmoid_symmetry_and_tanh_identity(a):
    s = Sigmoid()(Tensor(a, dtype=np.float64)).data
    s_neg = Sigmoid()(Tensor(-a, dtype=np.float64)).data
    np.testing.assert_allclose(s + s_neg, 1.0, rtol=1e-12)
    # tanh(x) = 2 sigmoid(2x) - 1
    s2 = Sigmoid()(Tensor(2 * a, dtype=np.float64)).data
    np.testing.assert_allclose(Tanh()(Tensor(a, dtype=np.float64)).data, 2 * s2 - 1, atol=1e-12)


def test_gelu_is_close_to_the_exact_erf_form():
    x = np.linspace(-6, 6, 1201)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])  # x * Phi(x)
    got = GELU()(Tensor(x, dtype=np.float64)).data
    assert np.max(np.abs(got - exact)) < 5e-4


@pytest.mark.parametrize("act", ALL, ids=OP_NAMES)
def test_float32_is_kept_and_the_op_recorded(act):
    x = Tensor(np.linspace(-3, 3, 12).reshape(3, 4), requires_grad=True)
    y = act(x)
    assert isinstance(y, Tensor) and y.dtype == np.float32 and y.shape == (3, 4)
    assert y._op == OP_NAMES[ALL.index(act)] and y._inputs == (x,)
    assert y.requires_grad
    with no_grad():
        quiet = act(x)
    assert quiet._op is None and not quiet.requires_grad


def test_documented_contexts():
    x = Tensor([[-1.0, 0.5, 2.0]], requires_grad=True)
    for act in (ReLU(), Sigmoid(), Tanh()):
        assert act(x)._ctx is None
    t = GELU()(x)._ctx
    np.testing.assert_allclose(
        t, np.tanh(np.sqrt(2 / np.pi) * (x.data + 0.044715 * x.data**3)), rtol=1e-6
    )
    assert Softmax(axis=0)(x)._ctx == 0 and Softmax()(x)._ctx == -1


@pytest.mark.parametrize("act", ALL, ids=OP_NAMES)
def test_extreme_inputs_give_no_warnings(act):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            big = np.finfo(dtype).max  # softmax: -big - big overflows to -inf, silently
            y = act(Tensor([-1000.0, 1000.0, -big, big, 0.0], dtype=dtype)).data
            assert np.all(np.isfinite(y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_the_most_extreme_finite_logits(dtype):
    # the largest finite number of the dtype against its negative: the difference
    # overflows to -inf and e^-inf = 0; torch.softmax gives [0, 1] too, without a warning
    big = np.finfo(dtype).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = Softmax()(Tensor([[-big, big], [big, -big]], dtype=dtype))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, [[0.0, 1.0], [1.0, 0.0]])


def test_extreme_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(Sigmoid()(Tensor([-1000.0, 1000.0])).data, [0.0, 1.0])
        np.testing.assert_array_equal(Tanh()(Tensor([-1000.0, 1000.0])).data, [-1.0, 1.0])
        np.testing.assert_array_equal(GELU()(Tensor([-1000.0, 1000.0])).data, [0.0, 1000.0])
        np.testing.assert_array_equal(
            Softmax()(Tensor([1000.0, 0.0, -1000.0])).data, [1.0, 0.0, 0.0]
        )
    # sigmoid(-30) = 1 / (1 + e^30) = 9.357622968840175e-14 (math.exp), not rounded to 0
    assert Sigmoid()(Tensor([-30.0], dtype=np.float64)).data[0] == pytest.approx(
        1 / (1 + math.exp(30)), rel=1e-12
    )


def test_worked_examples():
    # softmax([1, 2, 3]) = e^i / (e + e^2 + e^3) = [0.0900306, 0.2447285, 0.6652410]
    np.testing.assert_allclose(
        Softmax()(Tensor([1.0, 2.0, 3.0])).data, [0.0900306, 0.2447285, 0.6652410], rtol=1e-6
    )
    assert Sigmoid()(Tensor([0.0])).data[0] == 0.5
    assert GELU()(Tensor([0.0])).data[0] == 0.0
    np.testing.assert_array_equal(ReLU()(Tensor([-2.0, 0.0, 3.0])).data, [0.0, 0.0, 3.0])


def test_inputs_are_not_modified():
    data = np.array([-1.0, 2.0], dtype=np.float32)
    x = Tensor(data)
    for act in ALL:
        act(x)
    np.testing.assert_array_equal(data, [-1.0, 2.0])


@pytest.mark.parametrize("act", ALL, ids=OP_NAMES)
def test_non_tensor_input(act):
    with pytest.raises(TypeError, match="Tensor.*list"):
        act([1.0, 2.0])


@pytest.mark.parametrize("act", ALL, ids=OP_NAMES)
def test_integer_tensor_input(act):
    with pytest.raises(TypeError, match="int64"):
        act(Tensor(np.array([1, 2])))


def test_softmax_bad_axis():
    with pytest.raises(ValueError, match=r"axis=2.*\(2, 3\)"):
        Softmax(axis=2)(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"axis=-3"):
        Softmax(axis=-3)(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        Softmax()(Tensor(1.0))
    with pytest.raises(TypeError, match="axis"):
        Softmax(axis="rows")
    with pytest.raises(TypeError, match="axis"):
        Softmax(axis=True)
