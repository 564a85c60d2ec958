"""Every backward rule against central differences, in float64, over random shapes.

The reference is independent of the rules: the scalar s = sum(f(inputs) * weights)
(fixed random weights) is evaluated at inputs nudged by +-h, and
(s(x + h e_i) - s(x - h e_i)) / 2h is compared with what backward() put in .grad.
"""

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import backward
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor, no_grad

H = 1e-6
SETTINGS = settings(max_examples=25, deadline=None)


def check(op: str, f: Callable[..., Tensor], *arrays: np.ndarray, rtol=1e-5, atol=1e-6) -> None:
    """Compare backward() with central differences for each input of f (failures name both)."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    with no_grad():
        probe = np.asarray(f(*[Tensor(a, dtype=np.float64) for a in arrays]).data)
    weights = np.random.default_rng(0).standard_normal(probe.shape)

    def scalar(values):
        with no_grad():
            out = f(*[Tensor(v, dtype=np.float64) for v in values])
        return float((np.asarray(out.data) * weights).sum())

    leaves = [Tensor(a.copy(), requires_grad=True, dtype=np.float64) for a in arrays]
    out = f(*leaves)
    assert out.data.dtype == np.float64, (
        f"{op}: float64 inputs must give float64, got {out.data.dtype}"
    )
    backward(out, weights)
    for k, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            plus = [v.copy() for v in arrays]
            minus = [v.copy() for v in arrays]
            plus[k][i] += H
            minus[k][i] -= H
            numeric[i] = (scalar(plus) - scalar(minus)) / (2 * H)
        got = leaves[k].grad
        assert got is not None, f"{op}: input {k} (shape {a.shape}) received no gradient"
        assert got.shape == a.shape, (
            f"{op}: input {k} gradient has shape {got.shape}, expected {a.shape}"
        )
        assert got.dtype == np.float64, (
            f"{op}: input {k} gradient dtype {got.dtype}, expected float64"
        )
        np.testing.assert_allclose(
            got,
            numeric,
            rtol=rtol,
            atol=atol,
            err_msg=f"{op}: gradient of input {k} (shape {a.shape}) != central differences",
        )


def floats(lo=-3.0, hi=3.0):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def arr(shape, lo=-3.0, hi=3.0):
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi))


def spaced(shape, avoid_zero=False):
    """Distinct values on a grid of step 1/64 (far apart compared with H): no ties, no kinks."""
    values = st.integers(-192, 192)
    if avoid_zero:
        values = values.filter(lambda i: i != 0)
    return hnp.arrays(np.float64, shape, elements=values.map(lambda i: i / 64), unique=True)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


# ---- module 01 ops -----------------------------------------------------------------


@given(st.data(), pairs, st.sampled_from(["add", "sub", "mul", "div"]))
@SETTINGS
def test_binary_arithmetic_with_broadcasting(data, shape_pair, op):
    a = data.draw(arr(shape_pair.input_shapes[0]))
    if op == "div":
        b = data.draw(arr(shape_pair.input_shapes[1], 0.5, 3.0)) * data.draw(
            st.sampled_from([1, -1])
        )
    else:
        b = data.draw(arr(shape_pair.input_shapes[1]))
    f = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
    }[op]
    check(op, f, a, b)


@given(st.data(), shapes)
@SETTINGS
def test_neg_exp(data, shape):
    check("neg", lambda x: -x, data.draw(arr(shape)))
    check("exp", lambda x: x.exp(), data.draw(arr(shape)))


@given(st.data(), shapes)
@SETTINGS
def test_log(data, shape):
    check("log", lambda x: x.log(), data.draw(arr(shape, 0.2, 5.0)))


@given(st.data(), shapes, st.sampled_from([2, 3, -1, 0.5, 1.5, -2.5]))
@SETTINGS
def test_pow(data, shape, p):
    positive = p != int(p) or p < 0
    a = data.draw(arr(shape, 0.3, 3.0) if positive else arr(shape))
    check(f"pow (p={p})", lambda x: x**p, a)


@given(st.data(), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
@SETTINGS
def test_matmul_shapes(data, n, k, m, batch):
    check("matmul (n,k)@(k,m)", lambda x, y: x @ y, data.draw(arr((n, k))), data.draw(arr((k, m))))
    check(
        "matmul (b,n,k)@(k,m)",
        lambda x, y: x @ y,
        data.draw(arr((batch, n, k))),
        data.draw(arr((k, m))),
    )
    check(
        "matmul (n,k)@(b,k,m)",
        lambda x, y: x @ y,
        data.draw(arr((n, k))),
        data.draw(arr((batch, k, m))),
    )
    check("matmul (k,)@(k,m)", lambda x, y: x @ y, data.draw(arr((k,))), data.draw(arr((k, m))))
    check("matmul (n,k)@(k,)", lambda x, y: x @ y, data.draw(arr((n, k))), data.draw(arr((k,))))
    check("matmul (k,)@(k,)", lambda x, y: x @ y, data.draw(arr((k,))), data.draw(arr((k,))))


def axes_for(ndim):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    single = st.integers(-ndim, ndim - 1) if ndim else st.nothing()
    several = (
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
        if ndim
        else st.nothing()
    )
    return st.none() | single | several


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), st.booleans())
@SETTINGS
def test_reductions(data, shape, keepdims):
    axis = data.draw(axes_for(len(shape)))
    a = data.draw(spaced(shape))
    check(f"sum (axis={axis}, keepdims={keepdims})", lambda x: x.sum(axis, keepdims), a)
    check(f"mean (axis={axis}, keepdims={keepdims})", lambda x: x.mean(axis, keepdims), a)
    check(f"max (axis={axis}, keepdims={keepdims})", lambda x: x.max(axis, keepdims), a)


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
@SETTINGS
def test_reshape_transpose(data, shape):
    a = data.draw(arr(shape))
    check("reshape (-1)", lambda x: x.reshape(-1), a)
    check("reshape (reversed)", lambda x: x.reshape(*shape[::-1]), a)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    check(f"transpose {perm}", lambda x: x.transpose(*perm), a)
    check("transpose ()", lambda x: x.transpose(), a)
    check("T", lambda x: x.T, a)


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
@SETTINGS
def test_getitem(data, shape):
    a = data.draw(arr(shape))
    basic = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    check(f"getitem {basic!r}", lambda x: x[basic], a)
    rows = data.draw(
        hnp.arrays(np.int64, st.integers(1, 5), elements=st.integers(-shape[0], shape[0] - 1))
    )
    check(f"getitem fancy {rows.tolist()} (repeats allowed)", lambda x: x[rows], a)
    mask = data.draw(hnp.arrays(np.bool_, shape))
    check("getitem boolean mask", lambda x: x[mask], a)
    if len(shape) >= 2:
        cols = data.draw(hnp.arrays(np.int64, rows.shape, elements=st.integers(0, shape[1] - 1)))
        check("getitem (rows, cols)", lambda x: x[rows, cols], a)


# ---- module 02 activations ------------------------------------------------------------


@given(st.data(), shapes)
@SETTINGS
def test_elementwise_activations(data, shape):
    check("relu", ReLU(), data.draw(spaced(shape, avoid_zero=True)))
    check("sigmoid", Sigmoid(), data.draw(arr(shape, -8, 8)))
    check("tanh", Tanh(), data.draw(arr(shape)))
    check("gelu", GELU(), data.draw(arr(shape, -6, 6)))


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
@SETTINGS
def test_softmax_any_axis(data, shape):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check(f"softmax (axis={axis})", Softmax(axis=axis), data.draw(arr(shape)))


def test_gelu_far_out_has_the_limit_slopes():
    # GELU(x) = x for large x (slope 1) and 0 for very negative x (slope 0): by the formula's limits
    x = Tensor([50.0, -50.0, 1e20, -1e20], requires_grad=True)
    backward(GELU()(x).sum())
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0, 0.0])


# ---- module 04 losses --------------------------------------------------------------------


@given(st.data(), shapes)
@SETTINGS
def test_mse(data, shape):
    p, t = data.draw(arr(shape)), data.draw(arr(shape))
    check("mse (array targets)", lambda x: MSELoss()(x, t), p)
    check("mse (tensor targets)", lambda x, y: MSELoss()(x, y), p, t)


@given(st.data(), st.integers(1, 5), st.integers(2, 6))
@SETTINGS
def test_cross_entropy(data, n, c):
    z = data.draw(arr((n, c), -5, 5))
    labels = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    check("cross_entropy (indices)", lambda x: CrossEntropyLoss()(x, labels), z)
    soft = data.draw(arr((n, c), 0.0, 1.0))
    check(
        "cross_entropy (soft targets, rows not normalised)",
        lambda x: CrossEntropyLoss()(x, soft),
        z,
    )
    onehot = np.eye(c)[labels]
    check("cross_entropy (one-hot)", lambda x: CrossEntropyLoss()(x, onehot), z)


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))
@SETTINGS
def test_binary_cross_entropy(data, shape):
    p = data.draw(arr(shape, 0.05, 0.95))
    t = data.draw(arr(shape, 0.0, 1.0))
    check("binary_cross_entropy", lambda x: BinaryCrossEntropyLoss()(x, t), p)
    logits = data.draw(arr(shape, -4, 4))
    check(
        "binary_cross_entropy after sigmoid",
        lambda x: BinaryCrossEntropyLoss()(Sigmoid()(x), t),
        logits,
    )


# ---- compositions ------------------------------------------------------------------------


@given(st.data(), st.integers(1, 4), st.integers(1, 4), st.integers(2, 4))
@SETTINGS
def test_two_layer_network(data, n, d, c):
    x = data.draw(arr((n, d)))
    labels = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))

    def net(w1, b1, w2, b2):
        return CrossEntropyLoss()(Tanh()(x @ w1 + b1) @ w2 + b2, labels)

    check(
        "two-layer network",
        net,
        data.draw(arr((d, 5))),
        data.draw(arr((5,))),
        data.draw(arr((5, c))),
        data.draw(arr((c,))),
    )


@given(st.data(), shapes)
@SETTINGS
def test_shared_input_used_by_many_ops(data, shape):
    a = data.draw(arr(shape, 0.3, 2.0))
    check(
        "x * x + x / (x + 1) - x.exp() * x.log()",
        lambda x: x * x + x / (x + 1.0) - x.exp() * x.log(),
        a,
    )
