"""The backward pass: start, order, un-broadcasting, accumulation, aliasing, dtypes, errors."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch.core.tensor as tensor_module
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import (
    BACKWARD_RULES,
    backward,
    is_grad_enabled,
    no_grad,
    topological_order,
    unbroadcast,
)
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor

OPS_OF_MODULES_01_02_04 = {
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "pow",
    "matmul",
    "sum",
    "mean",
    "max",
    "reshape",
    "transpose",
    "getitem",
    "exp",
    "log",
    "relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    "mse",
    "cross_entropy",
    "binary_cross_entropy",
}


def test_every_op_has_a_rule():
    assert OPS_OF_MODULES_01_02_04 <= set(BACKWARD_RULES)


def test_the_example_walked_by_hand():
    # L = (w x + b)^2 at x = 2, w = -3, b = 1: z = -5, dL/dz = 2z = -10,
    # dL/dw = -10 x = -20, dL/dx = -10 w = 30, dL/db = -10 (by hand)
    x, w, b = (Tensor(v, requires_grad=True) for v in (2.0, -3.0, 1.0))
    u = w * x
    z = u + b
    loss = z**2
    loss.backward()
    assert (float(x.grad), float(w.grad), float(b.grad)) == (30.0, -20.0, -10.0)
    assert type(w.grad) is np.ndarray and w.grad.shape == () and w.grad.dtype == np.float32
    assert u.grad is None and z.grad is None and loss.grad is None, "only leaves store .grad"


# ---- un-broadcasting ---------------------------------------------------------------------


@given(
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4), st.data()
)
@settings(max_examples=60, deadline=None)
def test_unbroadcast_inverts_broadcasting(shapes, data):
    # summing the broadcast gradient back must equal NumPy's sum over the stretched copies:
    # check it against the adjoint identity <broadcast_to(v), G> = <v, unbroadcast(G)>
    small = shapes.input_shapes[0]
    big = shapes.result_shape
    g = data.draw(hnp.arrays(np.float64, big, elements=st.integers(-5, 5).map(float)))
    v = data.draw(hnp.arrays(np.float64, small, elements=st.integers(-5, 5).map(float)))
    reduced = unbroadcast(g, small)
    assert reduced.shape == small
    assert float((np.broadcast_to(v, big) * g).sum()) == float((v * reduced).sum())


def test_unbroadcast_examples():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=0).sum(axis=1, keepdims=True))
    assert unbroadcast(g, (2, 3, 4)) is g


def test_bias_gradient_is_summed_over_the_batch():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 3)))
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    b = Tensor(np.zeros(2), requires_grad=True)
    (x @ w + b).sum().backward()
    np.testing.assert_array_equal(b.grad, [5.0, 5.0])  # each bias entry used by 5 rows
    # W.grad = x^T @ ones((5, 2)): both columns equal the column sums of x (NumPy on the side)
    np.testing.assert_allclose(w.grad, np.repeat(x.data.sum(axis=0)[:, None], 2, axis=1), rtol=1e-6)


def test_broadcast_both_sides_and_scalars():
    col = Tensor(np.zeros((3, 1)), requires_grad=True)
    row = Tensor(np.zeros((1, 4)), requires_grad=True)
    s = Tensor(2.0, requires_grad=True)
    ((col + row) * s).sum().backward()
    np.testing.assert_array_equal(col.grad, np.full((3, 1), 8.0))  # 4 columns x s = 2
    np.testing.assert_array_equal(row.grad, np.full((1, 4), 6.0))  # 3 rows x s = 2
    assert s.grad.shape == () and float(s.grad) == 0.0  # sum of col + row is 0


# ---- accumulation and aliasing -----------------------------------------------------------


def test_gradients_accumulate_across_calls():
    a = Tensor([1.0, 2.0], requires_grad=True)
    (a * 3.0).sum().backward()
    (a * a).sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0 + 2.0, 3.0 + 4.0])  # 3 + 2a
    a.zero_grad()
    (a * 3.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])


def test_a_node_used_twice_gets_both_contributions():
    a = Tensor([3.0], requires_grad=True)
    (a * a + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [7.0])  # 2a + 1


def test_leaves_never_share_a_gradient_array():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    upstream = np.ones(2, dtype=np.float32)
    backward(a + b, upstream)  # add hands the same array to both inputs
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, upstream) and not np.shares_memory(b.grad, upstream)
    backward(a * 1.0, upstream)
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    np.testing.assert_array_equal(upstream, [1.0, 1.0])


def test_gradients_do_not_alias_graph_arrays():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x.sum(axis=0)  # the rule returns a read-only broadcast view
    y.backward(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert x.grad.flags.writeable and x.grad.base is None
    x.grad += 1.0  # must be possible, and must not change anything else
    r = Tensor([1.0, -1.0], requires_grad=True)
    out = r.reshape(2, 1)
    out.backward(np.ones((2, 1), dtype=np.float32))
    assert not np.shares_memory(r.grad, out.data) and not np.shares_memory(r.grad, r.data)


def test_reused_graph_accumulates_again():
    a = Tensor([2.0], requires_grad=True)
    loss = (a * a).sum()
    loss.backward()
    loss.backward()
    np.testing.assert_array_equal(a.grad, [8.0])  # 2 * 2a


# ---- which tensors get .grad, and of which dtype -----------------------------------------


def test_only_leaves_that_require_grad_receive_grad():
    w = Tensor([1.0, 2.0], requires_grad=True)
    data = Tensor([3.0, 4.0])
    hidden = w * data
    hidden.sum().backward()
    assert data.grad is None and hidden.grad is None
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_grad_dtype_is_the_tensor_dtype():
    x32 = Tensor([1.0, 2.0], requires_grad=True)
    x64 = Tensor([3.0, 4.0], requires_grad=True, dtype=np.float64)
    out = (x32 * x64).sum()  # float64 result
    assert out.dtype == np.float64
    out.backward()
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    np.testing.assert_array_equal(x32.grad, [3.0, 4.0])
    np.testing.assert_array_equal(x64.grad, [1.0, 2.0])


def test_float32_stays_float32_through_a_network():
    rng = np.random.default_rng(1)
    w = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    loss = CrossEntropyLoss()(ReLU()(Tensor(rng.standard_normal((6, 4))) @ w + b), np.arange(6) % 3)
    loss.backward()
    assert w.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_constant_inputs_are_not_differentiated():
    # the matmul rule skips the product for an input without requires_grad
    x = Tensor(np.ones((2, 3)))
    w = Tensor(np.ones((3, 4)), requires_grad=True)
    out = x @ w
    ga, gb = BACKWARD_RULES["matmul"](np.ones((2, 4), dtype=np.float32), out)
    assert ga is None and gb.shape == (3, 4)


# ---- starting the pass, and errors ---------------------------------------------------------


def test_non_scalar_root_needs_grad():
    v = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        (v * 2.0).backward()
    (v * 2.0).backward(np.array([1.0, 0.5]))
    np.testing.assert_array_equal(v.grad, [2.0, 1.0])


def test_grad_of_the_wrong_shape():
    v = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        backward(v * 2.0, np.ones(3))


def test_grad_given_as_a_tensor_and_one_element_roots():
    v = Tensor([[1.0, 2.0]], requires_grad=True)
    backward(v * 3.0, Tensor([[1.0, 1.0]]))
    np.testing.assert_array_equal(v.grad, [[3.0, 3.0]])
    s = Tensor([[5.0]], requires_grad=True)  # one element, shape (1, 1): grad=None is fine
    (s * 2.0).backward()
    np.testing.assert_array_equal(s.grad, [[2.0]])


def test_root_without_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2.0).backward()
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2.0
    with pytest.raises(RuntimeError):
        y.backward()


def test_leaf_root():
    x = Tensor(3.0, requires_grad=True)
    x.backward()
    assert float(x.grad) == 1.0


def test_a_leaf_root_stores_a_copy_of_the_callers_grad():
    # _initial_grad says the caller's array is not owned: the leaf copies it, so the
    # second call adds into the leaf's own array, never into the caller's
    upstream = np.array([1.0, 2.0], dtype=np.float32)
    w = Tensor([0.0, 0.0], requires_grad=True)
    backward(w, upstream)
    assert w.grad is not upstream and not np.shares_memory(w.grad, upstream)
    backward(w, upstream)
    np.testing.assert_array_equal(upstream, [1.0, 2.0])
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_unknown_op_names_the_op():
    x = Tensor([1.0], requires_grad=True)
    weird = Tensor._from_op(x.data * 2, "frobnicate", (x,))
    with pytest.raises(NotImplementedError, match="frobnicate"):
        weird.sum().backward()


# ---- no_grad --------------------------------------------------------------------------------


def test_no_grad_is_reexported_from_tensor():
    assert no_grad is tensor_module.no_grad and is_grad_enabled is tensor_module.is_grad_enabled
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0
    assert is_grad_enabled()
    assert y._op is None and not y.requires_grad


def test_no_grad_restores_the_mode_after_an_error():
    with pytest.raises(ZeroDivisionError), no_grad():
        raise ZeroDivisionError("inside the block")
    assert is_grad_enabled()


# ---- depth and order --------------------------------------------------------------------------


def test_ten_thousand_op_chain_without_recursion():
    x = Tensor(1.0, requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100)  # a recursive walk would fail at once
    try:
        backward(y)
    finally:
        sys.setrecursionlimit(limit)
    # d/dx (1.0001^10000 x) = 1.0001^10000 (closed form)
    assert abs(float(x.grad) - 1.0001**10_000) < 1e-9


def test_topological_order_puts_inputs_first():
    a = Tensor(2.0, requires_grad=True)
    c = Tensor(5.0)  # constant: not visited
    sq = a * a
    y = sq * a + c
    order = topological_order(y)
    position = {id(n): i for i, n in enumerate(order)}
    assert id(c) not in position
    assert order[-1] is y and len(order) == len(position) == 4  # a, sq, sq*a, y
    for node in order:
        for inp in node._inputs:
            if inp.requires_grad:
                assert position[id(inp)] < position[id(node)]


def test_topological_order_of_a_root_without_grad_is_the_root_alone():
    plain = Tensor([1.0, 2.0]) * 3.0
    assert [id(n) for n in topological_order(plain)] == [id(plain)]
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        quiet = x * 2.0
    assert [id(n) for n in topological_order(quiet)] == [id(quiet)]


@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_random_dags_match_forward_mode_by_hand(n_ops, seed):
    # random DAG of adds and muls over 3 scalar leaves; the derivative is propagated forward
    # alongside the values (dual numbers), independently of backward()
    rng = np.random.default_rng(seed)
    leaves = [Tensor(float(v), requires_grad=True, dtype=np.float64) for v in rng.uniform(-2, 2, 3)]
    nodes = list(leaves)
    duals = [
        (float(t.data), [1.0 if i == j else 0.0 for j in range(3)]) for i, t in enumerate(leaves)
    ]
    for _ in range(n_ops):
        i, j = rng.integers(0, len(nodes), 2)
        (vi, di), (vj, dj) = duals[i], duals[j]
        if rng.random() < 0.5:
            nodes.append(nodes[i] + nodes[j])
            duals.append((vi + vj, [p + q for p, q in zip(di, dj, strict=True)]))
        else:
            nodes.append(nodes[i] * nodes[j])
            duals.append((vi * vj, [p * vj + vi * q for p, q in zip(di, dj, strict=True)]))
    root = nodes[-1]
    backward(root)
    for k, leaf in enumerate(leaves):
        got = 0.0 if leaf.grad is None else float(leaf.grad)
        assert abs(got - duals[-1][1][k]) <= 1e-9 * max(1.0, abs(duals[-1][1][k]))


# ---- duck typing ---------------------------------------------------------------------------------


class Node:
    """A minimal object with the Tensor attributes backward() uses (not a Tensor)."""

    def __init__(self, data, requires_grad=False, op=None, inputs=(), ctx=None):
        self.data = np.asarray(data, dtype=np.float64)
        self.requires_grad = requires_grad
        self.grad = None
        self._op, self._inputs, self._ctx = op, inputs, ctx


def test_backward_works_on_any_object_with_the_tensor_attributes():
    a = Node([1.0, 2.0], requires_grad=True)
    b = Node([3.0, 4.0], requires_grad=True)
    prod = Node(a.data * b.data, True, "mul", (a, b))
    total = Node(prod.data.sum(), True, "sum", (prod,), (None, False))
    backward(total)
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])
    assert prod.grad is None
