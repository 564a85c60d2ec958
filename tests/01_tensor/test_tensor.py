"""Tests of tinytorch.core.tensor against NumPy (the reference for every forward op)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.tensor import Tensor, is_grad_enabled, no_grad

floats = st.floats(-100, 100, allow_nan=False, width=32)


def arrays(shape):
    return hnp.arrays(np.float32, shape, elements=floats)


broadcastable = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)


@given(st.data(), broadcastable)
@settings(max_examples=60, deadline=None)
def test_binary_ops_match_numpy_with_broadcasting(data, shapes):
    a = data.draw(arrays(shapes.input_shapes[0]))
    b = data.draw(arrays(shapes.input_shapes[1]))
    ta, tb = Tensor(a), Tensor(b)
    for got, want in [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b)]:
        assert got.shape == shapes.result_shape
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.data, want)


@given(arrays(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)), st.data())
@settings(max_examples=60, deadline=None)
def test_reductions_match_numpy(a, data):
    axis = data.draw(st.none() | st.integers(-a.ndim, a.ndim - 1))
    keepdims = data.draw(st.booleans())
    t = Tensor(a)
    np.testing.assert_allclose(
        t.sum(axis, keepdims).data, a.sum(axis, keepdims=keepdims), rtol=1e-5, atol=1e-3
    )
    np.testing.assert_allclose(
        t.mean(axis, keepdims).data, a.mean(axis, keepdims=keepdims), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_array_equal(t.max(axis, keepdims).data, a.max(axis, keepdims=keepdims))


@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.data())
@settings(max_examples=40, deadline=None)
def test_matmul_matches_numpy(n, k, m, data):
    a = data.draw(arrays((n, k)))
    b = data.draw(arrays((k, m)))
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b, rtol=1e-5, atol=1e-2)


def test_dtype_rules():
    assert Tensor([1, 2]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype
    assert Tensor(np.zeros(2)).dtype == np.float32
    assert Tensor(np.zeros(2), dtype=np.float64).dtype == np.float64
    x64 = Tensor([1.0], dtype=np.float64)
    assert (x64 * 2).dtype == np.float64
    assert (Tensor([1.0]) * 2.5).dtype == np.float32
    assert (Tensor([1.0]) + np.float64(2.0)).dtype == np.float32


def test_float32_array_is_shared_not_copied():
    a = np.ones(4, dtype=np.float32)
    assert np.shares_memory(Tensor(a).data, a)


def test_a_tensor_given_as_data_keeps_its_dtype():
    # the rule of torch.as_tensor(t): a tensor keeps its dtype and shares its data
    # unless another dtype is asked for
    x64 = Tensor([0.1, 0.2], dtype=np.float64)
    again = Tensor(x64)
    assert again.dtype == np.float64 and np.shares_memory(again.data, x64.data)
    labels = Tensor(np.array([2, 0], dtype=np.int16))
    assert Tensor(labels).dtype == np.int16
    narrowed = Tensor(x64, dtype=np.float32)
    assert narrowed.dtype == np.float32 and not np.shares_memory(narrowed.data, x64.data)
    # float32([0.1, 0.2]) read back as float64: rounded once, by NumPy on the side
    np.testing.assert_array_equal(narrowed.data, np.array([0.1, 0.2], dtype=np.float32))
    assert Tensor(Tensor([1.0]), requires_grad=True).requires_grad


def test_the_dtype_hint_of_the_notebook_shares_float32_arrays():
    # the hint printed by the notebook's dtype test, followed by hand: it converts a list
    # and keeps a float32 array shared (astype would copy it)
    a = np.arange(4, dtype=np.float32)
    assert np.shares_memory(np.asarray(a, dtype=np.float32), a)
    assert not np.shares_memory(a.astype(np.float32), a)
    assert np.asarray([[1, 2, 3]], dtype=np.float32).dtype == np.float32


def test_bad_input_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match="axis 3"):
        Tensor(np.ones((2, 3))).sum(axis=3)
    with pytest.raises(ValueError, match="cannot reshape"):
        Tensor(np.ones(6)).reshape(4, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        Tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="exponent"):
        Tensor([1.0]) ** Tensor([2.0])
    with pytest.raises(TypeError, match="dtype"):
        Tensor(np.array(["a"]))
    with pytest.raises(ValueError, match="permutation"):
        Tensor(np.ones((2, 3))).transpose(0, 0)


def test_graph_is_recorded_only_when_needed():
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = (w * 3).sum()
    assert y._op == "sum" and y._inputs[0]._op == "mul" and y._inputs[0]._inputs[0] is w
    c = Tensor([1.0]) * 3
    assert c._op is None and c._inputs == () and not c.requires_grad


def test_no_grad_restores_previous_state_even_on_error():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError), no_grad():
        assert not is_grad_enabled()
        raise RuntimeError("boom")
    assert is_grad_enabled()
    with no_grad(), no_grad():
        pass
    assert is_grad_enabled() and (w * 2).requires_grad

    @no_grad()
    def f(x):
        return x * 2

    assert not f(w).requires_grad


def test_numpy_on_the_left_defers_to_tensor():
    out = np.array([1.0, 2.0]) + Tensor([1.0, 1.0])
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.data, [2.0, 3.0])
    assert isinstance(np.array([[1.0, 0.0], [0.0, 1.0]]) @ Tensor([[2.0], [3.0]]), Tensor)


def test_item_and_views():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert t[1, 2].item() == 5.0 and isinstance(t.sum().item(), float)
    with pytest.raises(ValueError, match="exactly 1"):
        t.item()
    assert np.shares_memory(t.reshape(3, 2).data, t.data)
    assert np.shares_memory(t.T.data, t.data)
    assert np.array_equal(np.asarray(t), t.data)
