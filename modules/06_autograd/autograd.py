# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 06: Autograd
#
# Training a network means nudging every weight in the direction that lowers the
# loss. For that we need the **gradient** of the loss with respect to every weight:
# hundreds of thousands of partial derivatives, after every batch. Writing them by
# hand is hopeless; computing them numerically (nudge each weight, re-run the
# network) costs one forward pass per weight. **Automatic differentiation** gets all
# of them for the price of about two forward passes.
#
# Since module 01 every operation has recorded how its result was made: the name of
# the operation (`_op`), the tensors that went in (`_inputs`) and whatever the
# derivative will need (`_ctx`). That record is a **graph**. In this module you
# walk it backwards:
#
# 1. a **backward rule** for every operation of modules 01, 02 and 04: given the
#    gradient of the loss with respect to an op's output, compute it with respect
#    to each input;
# 2. **un-broadcasting**: when an input was stretched by broadcasting, its gradient
#    is summed back to its own shape;
# 3. the **backward pass**: order the graph so that every node comes after
#    everything that uses it, then apply the rules from the loss down to the
#    weights, accumulating into `.grad`.
#
# When you are done, `loss.backward()` works for every network of this course.
#
# Each rule and each part of the backward pass has its own tests; the hidden tests
# that grade the notebook check the same rules with other numbers.
#
# **What you need**: modules 01 (Tensor), 02 (activations), 04 (losses), and the
# derivative of a product and of a composition from calculus.

# %% nbgrader={"grade": false, "grade_id": "autograd_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor, is_grad_enabled, no_grad

__all__ = [
    "BACKWARD_RULES",
    "Tensor",
    "backward",
    "is_grad_enabled",
    "no_grad",
    "topological_order",
    "unbroadcast",
]

# %% nbgrader={"grade": false, "grade_id": "autograd_notebook_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Used by the demos and tests of this notebook (not part of the package file).
import matplotlib.pyplot as plt

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss

# %% [markdown]
# ## 1. The chain rule on a graph
#
# Take a one-neuron "network" with a squared error:
#
# $$u = w \cdot x, \qquad z = u + b, \qquad L = z^2 .$$
#
# Each line is one recorded operation. Drawn as a graph, data flows left to right
# (the **forward pass**); gradients will flow right to left (the **backward pass**).
# The cell below builds it with the Tensor of module 01 and draws the record it left
# behind: every box is a tensor, labelled with the op that made it.

# %%
x = Tensor(2.0, requires_grad=True)
w = Tensor(-3.0, requires_grad=True)
b = Tensor(1.0, requires_grad=True)
u = w * x
z = u + b
L = z**2
print("L =", L.item(), "| made by", L._op, "from", [t._op for t in L._inputs])


# %% nbgrader={"grade": false, "grade_id": "autograd_draw_helper", "locked": true, "schema_version": 3, "solution": false, "task": false}
def draw_graph(root: Any, names: dict[int, str] | None = None, grads: bool = False) -> None:
    """Draw the recorded graph that ends in `root`: boxes are tensors, arrows show data flow.

    `names` maps id(tensor) to a label; with `grads=True` each leaf's `.grad` is shown too.
    """
    names = names or {}
    depth: dict[int, int] = {}
    nodes: dict[int, Any] = {}
    stack = [root]
    while stack:  # collect every node (the graph is small)
        node = stack.pop()
        if id(node) in nodes:
            continue
        nodes[id(node)] = node
        stack.extend(node._inputs)

    def level(node: Any) -> int:
        if id(node) not in depth:
            depth[id(node)] = 1 + max((level(i) for i in node._inputs), default=-1)
        return depth[id(node)]

    columns: dict[int, list[Any]] = {}
    for node in nodes.values():
        columns.setdefault(level(node), []).append(node)
    position = {}
    for col, members in columns.items():
        for row, node in enumerate(members):
            position[id(node)] = (col * 2.2, -(row - (len(members) - 1) / 2) * 1.4)
    fig, ax = plt.subplots(figsize=(2.3 * len(columns) + 1, 1.4 * max(map(len, columns.values())) + 1))
    for node in nodes.values():
        x0, y0 = position[id(node)]
        for inp in node._inputs:
            x1, y1 = position[id(inp)]
            ax.annotate("", xy=(x0 - 0.55, y0), xytext=(x1 + 0.55, y1),
                        arrowprops={"arrowstyle": "->", "color": "0.4"})
        label = names.get(id(node), node._op or "leaf")
        text = f"{label}\n{float(np.asarray(node.data).ravel()[0]):.4g}"
        if node._op:
            text = f"{label} = {node._op}\n{float(np.asarray(node.data).ravel()[0]):.4g}"
        if grads and node.grad is not None:
            text += f"\ngrad {float(np.asarray(node.grad).ravel()[0]):.4g}"
        color = "#cfe3ff" if node._op else ("#ffe2b8" if node.requires_grad else "#eeeeee")
        ax.text(x0, y0, text, ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": color, "edgecolor": "0.3"})
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 1, max(ys) + 1)
    ax.axis("off")
    plt.tight_layout()
    plt.show()


# %%
labels = {id(x): "x", id(w): "w", id(b): "b", id(u): "u", id(z): "z", id(L): "L"}
draw_graph(L, labels)

# %% [markdown]
# Orange boxes are leaves that require a gradient (the "weights"), blue boxes are
# results of operations. Each box shows its forward value: $u = -6$, $z = -5$,
# $L = 25$.
#
# ### Walking the backward pass by hand
#
# Write $\bar{v} = \partial L / \partial v$ for "the gradient of the loss with
# respect to $v$". The chain rule says: if $v$ feeds an op whose output is $y$,
# then $\bar{v} = \bar{y}\,\partial y/\partial v$. We start at the loss, where
# $\bar{L} = 1$, and go right to left, one op at a time:
#
# | step | op | local derivative | gradient |
# |---|---|---|---|
# | 1 | $L = z^2$ | $\partial L/\partial z = 2z = -10$ | $\bar z = 1 \cdot (-10) = -10$ |
# | 2 | $z = u + b$ | $\partial z/\partial u = 1,\ \partial z/\partial b = 1$ | $\bar u = -10,\ \bar b = -10$ |
# | 3 | $u = w \cdot x$ | $\partial u/\partial w = x = 2,\ \partial u/\partial x = w = -3$ | $\bar w = -20,\ \bar x = 30$ |
#
# Three things to notice:
#
# * Each step needs only **its own op's local derivative** and the gradient that
#   arrived from the right. Nobody needs the whole formula. That is why a rule per
#   op is enough.
# * An op must be processed **after** every op that uses its output (we needed
#   $\bar z$ complete before we could do step 2). That is a topological order of the
#   graph, reversed.
# * The local derivatives use **forward values** ($z$, $x$, $w$). That is why the
#   graph keeps the inputs alive: memory is the price of the backward pass.
#
# Check: $L = (wx + b)^2$, so $\partial L/\partial w = 2(wx+b)\,x = 2 \cdot (-5) \cdot 2 = -20$. Same.
#
# ## 2. What a backward rule is
#
# A rule is a function `rule(grad, out)`:
#
# * `out` is the result tensor of the op; `out._inputs` are its inputs,
#   `out._ctx` what the op saved, `out.data` its forward value;
# * `grad` is $\bar{\text{out}}$, a NumPy array of `out`'s shape;
# * it returns a tuple with one entry per input: the gradient with respect to that
#   input, a NumPy array, or `None` when the input needs no gradient (a constant).
#
# Rules compute with NumPy on `.data`, never with Tensor operations: the backward
# pass must not record a graph of its own.
#
# Two promises make the backward pass fast and safe. A rule never changes an array
# in place (not `grad`, not `.data`), and it returns either a **new** array or a
# **view of `grad`** (such as `grad` itself), never an array that lives elsewhere.
# The backward pass copies views before it stores them, so nothing it hands out can
# alias the graph.
#
# ### Elementwise arithmetic
#
# | op | forward | gradient to `a` | gradient to `b` |
# |---|---|---|---|
# | `add` | $a + b$ | $\bar y$ | $\bar y$ |
# | `sub` | $a - b$ | $\bar y$ | $-\bar y$ |
# | `mul` | $a b$ | $\bar y\, b$ | $\bar y\, a$ |
# | `div` | $a / b$ | $\bar y / b$ | $-\bar y\, a / b^2 = -\bar y\, y / b$ |
# | `neg` | $-a$ | $-\bar y$ | |
# | `pow` | $a^p$ ($p$ = `_ctx`) | $\bar y\, p\, a^{p-1}$ | |
#
# **`pow` with $p = 0$.** Then $y = a^0 = 1$ is a constant and its gradient is 0
# everywhere. The formula would compute $\bar y \cdot 0 \cdot a^{-1}$, which at $a = 0$ is
# $0 \cdot \infty$ = `nan` (with NumPy's divide-by-zero warning). So for `p == 0` return
# zeros of `grad`'s shape and dtype (`np.zeros_like(grad)`), as PyTorch does. For other
# exponents the formula stands, also where it gives `inf` at $a = 0$ (for $p = 0.5$,
# say), which is PyTorch's answer too.
#
# Shapes: here the gradients have the **output's** shape, which is larger than an
# input's when broadcasting stretched it. Do not worry about that in the rules: the
# backward pass fixes it in one place (section 3). `mul` and `div` skip the
# work for an input that does not require a gradient (return `None`): in
# `x * mask` with a constant mask there is no need to compute `grad * x`.

# %% nbgrader={"grade": false, "grade_id": "autograd_rules_arithmetic", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
GradPair = tuple[np.ndarray | None, ...]


def add_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a + b: both inputs receive `grad`."""
    ### BEGIN SOLUTION
    return grad, grad
    ### END SOLUTION


def sub_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a - b: `grad` to a, `-grad` to b."""
    ### BEGIN SOLUTION
    return grad, -grad
    ### END SOLUTION


def mul_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a * b: `grad * b` to a, `grad * a` to b (None for an input without requires_grad)."""
    a, b = out._inputs
    ### BEGIN SOLUTION
    grad_a = grad * b.data if a.requires_grad else None
    grad_b = grad * a.data if b.requires_grad else None
    return grad_a, grad_b
    ### END SOLUTION


def div_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a / b: `grad / b` to a, `-grad * y / b` to b (None for an input without requires_grad)."""
    a, b = out._inputs
    ### BEGIN SOLUTION
    grad_a = grad / b.data if a.requires_grad else None
    grad_b = -grad * out.data / b.data if b.requires_grad else None
    return grad_a, grad_b
    ### END SOLUTION


def neg_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = -a: `-grad` to a."""
    ### BEGIN SOLUTION
    return (-grad,)
    ### END SOLUTION


def pow_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a ** p with the number p saved in `out._ctx`: `grad * p * a ** (p - 1)` to a;
    zeros for p == 0 (y = 1 is constant; the formula would give nan at a = 0)."""
    p = float(out._ctx)  # a Python float keeps float32 arrays float32
    ### BEGIN SOLUTION
    if p == 0.0:
        return (np.zeros_like(grad),)
    a = out._inputs[0].data
    return (grad * p * a ** (p - 1.0),)
    ### END SOLUTION


# %% [markdown]
# Test the rules directly: build an op with module 01's Tensor, then call the rule
# with an upstream gradient of ones. For $y = a b$ with $a = 3, b = 4$:
# $\bar a = b = 4$, $\bar b = a = 3$. Three tests: `add`, `sub` and `neg`; `mul` and
# `div`; `pow`.

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_add_sub_neg", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor([3.0], requires_grad=True)
b_t = Tensor([4.0], requires_grad=True)
one = np.ones(1, dtype=np.float32)
ga, gb = add_backward(one, a_t + b_t)
assert float(ga[0]) == 1.0 and float(gb[0]) == 1.0, f"add passes grad through to both, got {ga}, {gb}"
ga, gb = sub_backward(one, a_t - b_t)
assert float(ga[0]) == 1.0 and float(gb[0]) == -1.0, f"sub: +grad to a, -grad to b, got {ga}, {gb}"
(g_neg,) = neg_backward(one, -a_t)
assert float(g_neg[0]) == -1.0, f"neg: -grad, got {g_neg}"
print("add, sub, neg rules: OK")
### BEGIN HIDDEN TESTS
g_h = np.array([[3.0, -0.5]], dtype=np.float32)
a_h = Tensor([[1.0, 2.0]], requires_grad=True)
b_h = Tensor([[5.0, 7.0]], requires_grad=True)
ga, gb = add_backward(g_h, a_h + b_h)
assert np.array_equal(ga, g_h) and np.array_equal(gb, g_h), f"add: the upstream gradient to both inputs, got {ga}, {gb}"
ga, gb = sub_backward(g_h, a_h - b_h)
assert np.array_equal(ga, g_h) and np.array_equal(gb, -g_h), f"sub: grad to a, -grad to b, got {ga}, {gb}"
(g_neg,) = neg_backward(g_h, -a_h)
assert np.array_equal(g_neg, -g_h) and g_neg.dtype == np.float32, f"neg: -grad (float32 stays float32), got {g_neg}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_mul_div", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor([3.0], requires_grad=True)
b_t = Tensor([4.0], requires_grad=True)
one = np.ones(1, dtype=np.float32)
ga, gb = mul_backward(one, a_t * b_t)
assert float(ga[0]) == 4.0 and float(gb[0]) == 3.0, \
    f"mul: d(ab)/da = b = 4 and d(ab)/db = a = 3, got {ga}, {gb}"
# d(a/b)/da = 1/b = 0.25, d(a/b)/db = -a/b^2 = -3/16
ga, gb = div_backward(one, a_t / b_t)
assert abs(float(ga[0]) - 0.25) < 1e-6, f"div: d(a/b)/da = 1/b = 0.25, got {ga}"
assert abs(float(gb[0]) + 3 / 16) < 1e-6, f"div: d(a/b)/db = -a/b^2 = -0.1875, got {gb}"
constant = Tensor([5.0])
ga, gb = mul_backward(one, a_t * constant)
assert gb is None and float(ga[0]) == 5.0, "mul: an input with requires_grad=False gets None (no work wasted)"
print("mul, div rules: OK")
### BEGIN HIDDEN TESTS
# numbers by hand: a = -2, b = 0.5, upstream gradient 3
a_h = Tensor([-2.0], requires_grad=True)
b_h = Tensor([0.5], requires_grad=True)
g3 = np.full(1, 3.0, dtype=np.float32)
ga, gb = mul_backward(g3, a_h * b_h)
assert np.allclose(np.asarray(ga, dtype=np.float64), [1.5]) and np.allclose(np.asarray(gb, dtype=np.float64), [-6.0]), \
    f"mul: grad * b to a and grad * a to b, got {ga}, {gb}"
ga, gb = div_backward(g3, a_h / b_h)
assert np.allclose(np.asarray(ga, dtype=np.float64), [6.0]), f"div: grad / b to a, got {ga}"
assert np.allclose(np.asarray(gb, dtype=np.float64), [24.0]), f"div: -grad * a / b^2 to b, got {gb}"
ga, gb = div_backward(g3, Tensor([1.0]) / b_h)
assert ga is None, "div: a constant numerator gets None"
ga, gb = mul_backward(g3, Tensor([2.0]) * a_h)
assert ga is None and np.allclose(np.asarray(gb, dtype=np.float64), [6.0]), "mul: a constant on the left gets None"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_pow", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor([3.0], requires_grad=True)
one = np.ones(1, dtype=np.float32)
# d(a^3)/da = 3 a^2 = 27
(g_pow,) = pow_backward(one, a_t**3)
assert abs(float(g_pow[0]) - 27.0) < 1e-4, f"pow: d(a^3)/da = 3a^2 = 27 at a=3, got {g_pow}"
assert g_pow.dtype == np.float32, f"float32 in, float32 out: got {g_pow.dtype}. Hint: use float(p)"
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        (g_zero,) = pow_backward(np.ones(2, dtype=np.float32), Tensor([0.0, 2.0], requires_grad=True) ** 0)
    except RuntimeWarning as warning:
        raise AssertionError(f"pow with p = 0 warned ({warning}). Hint: for p == 0 return np.zeros_like(grad)") from None
assert np.array_equal(g_zero, [0.0, 0.0]), f"p = 0: y = 1 is constant, its gradient is 0 everywhere (also at a = 0), got {g_zero}"
print("pow rule: OK")
### BEGIN HIDDEN TESTS
b_h = Tensor([0.5], requires_grad=True)
g3 = np.full(1, 3.0, dtype=np.float32)
(g_pow,) = pow_backward(g3, b_h**-1)
assert np.allclose(np.asarray(g_pow, dtype=np.float64), [-12.0]), f"pow: grad * p * a^(p-1) with p = -1, got {g_pow}"
(g_pow,) = pow_backward(g3, b_h**2.5)
# 3 * 2.5 * 0.5^1.5 = 2.6516504...
assert np.allclose(np.asarray(g_pow, dtype=np.float64), [3 * 2.5 * 0.5**1.5], rtol=1e-5), \
    f"pow: grad * p * a^(p-1) with a fractional p, got {g_pow}"
(g_pow,) = pow_backward(np.ones(2, dtype=np.float32), Tensor([2.0, -1.0], requires_grad=True) ** 2)
assert g_pow.dtype == np.float32 and np.allclose(g_pow, [4.0, -2.0]), f"pow: 2a for p = 2, float32 kept, got {g_pow}"
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        (g_zero,) = pow_backward(np.full((2, 1), 3.0), Tensor([[0.0], [-1.5]], dtype=np.float64, requires_grad=True) ** 0.0)
    except RuntimeWarning as warning:
        raise AssertionError(f"pow with p = 0 must not warn ({warning})") from None
assert g_zero.shape == (2, 1) and np.array_equal(np.asarray(g_zero, dtype=np.float64), [[0.0], [0.0]]), \
    f"p = 0.0: the gradient is 0 everywhere, also at a = 0, got {g_zero}"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Un-broadcasting
#
# `x + bias` with `x` of shape `(64, 10)` and `bias` of shape `(10,)` stretches the
# bias over 64 rows: the same 10 numbers are used 64 times. The `add` rule hands the
# bias a gradient of shape `(64, 10)`, one row per use. Since the bias was used 64
# times, its gradient is the **sum** of the 64 rows (the chain rule adds up the
# contributions of every use).
#
# Broadcasting does two things, so un-broadcasting undoes two:
#
# 1. dimensions were **added on the left** (`(10,)` became `(64, 10)`): sum over
#    those leading axes;
# 2. dimensions of size 1 were **stretched** (`(64, 1)` became `(64, 10)`): sum over
#    those axes, keeping them (`keepdims=True`).
#
# Example: a gradient of shape `(2, 3, 4)` for an input of shape `(3, 1)`: sum axis
# 0 (added), then axis 2 of the rest with keepdims (stretched from 1): `(3, 1)`.
#
# Every rule would need this, so it is written **once**: the backward pass calls
# `unbroadcast` on every gradient whose shape differs from its input's. Return the
# gradient unchanged when the shapes already agree.

# %% nbgrader={"grade": false, "grade_id": "autograd_unbroadcast", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing NumPy broadcasting.

    Leading axes that broadcasting added are summed away; axes where `shape` has a 1
    (and `grad` does not) are summed with keepdims.
    """
    ### BEGIN SOLUTION
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
    ### END SOLUTION


# %%
g_demo = np.arange(24.0).reshape(2, 3, 4)
print("(2, 3, 4) -> (3, 1):\n", unbroadcast(g_demo, (3, 1)))
print("(2, 3, 4) -> (4,):", unbroadcast(g_demo, (4,)))

# %% nbgrader={"grade": true, "grade_id": "autograd_test_unbroadcast", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
g = np.ones((64, 10), dtype=np.float32)
r = unbroadcast(g, (10,))
assert r.shape == (10,), f"(64, 10) -> (10,): sum over the batch axis, got shape {r.shape}"
assert np.all(r == 64), f"each bias entry was used 64 times, its gradient is 64, got {r[:3]}"
r = unbroadcast(g, (64, 1))
assert r.shape == (64, 1) and np.all(r == 10), \
    f"(64, 10) -> (64, 1): sum axis 1 with keepdims, got shape {r.shape}"
r = unbroadcast(g, ())
assert r.shape == () and float(r) == 640, f"to a scalar: the sum of everything (640), got {r}"
assert unbroadcast(g, (64, 10)) is g, "same shape: return the gradient itself (no copy)"
assert unbroadcast(g, (10,)).dtype == np.float32, "float32 stays float32"
print("unbroadcast: OK")
### BEGIN HIDDEN TESTS
# expected values: NumPy sums written out on the side
g = np.arange(24.0).reshape(2, 3, 4)
got = unbroadcast(g, (3, 1))
assert got.shape == (3, 1) and np.allclose(got, g.sum(axis=0).sum(axis=1, keepdims=True)), \
    f"(2, 3, 4) -> (3, 1): sum the added axis 0, then axis 2 with keepdims; got shape {got.shape}"
got = unbroadcast(g, (1, 3, 1))
# row sums by hand: (0+1+2+3)+(12+13+14+15) = 60, (4..7)+(16..19) = 92, (8..11)+(20..23) = 124
assert got.shape == (1, 3, 1) and np.allclose(got[:, :, 0], [[60.0, 92.0, 124.0]]), \
    f"(2, 3, 4) -> (1, 3, 1): sum every stretched axis with keepdims; got shape {got.shape}"
got = unbroadcast(g, (2, 1, 4))
assert got.shape == (2, 1, 4) and np.allclose(got, g.sum(axis=1, keepdims=True)), \
    f"(2, 3, 4) -> (2, 1, 4): sum the middle axis with keepdims; got shape {got.shape}"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. exp, log and the matrix product
#
# * `exp`: $y = e^a$, so $\partial y/\partial a = e^a = y$. The rule reuses the
#   forward value `out.data` instead of recomputing the exponential.
# * `log`: $y = \ln a$, so $\partial y / \partial a = 1/a$.
# * `matmul`: $Y = AB$ with $A$ of shape $(n, k)$ and $B$ of shape $(k, m)$. Each
#   $Y_{ij} = \sum_l A_{il} B_{lj}$, so $A_{il}$ meets $\bar Y_{ij}$ through
#   $B_{lj}$ for every $j$:
#
#   $$\bar A = \bar Y B^\top \quad (n, m)(m, k) = (n, k), \qquad \bar B = A^\top \bar Y \quad (k, n)(n, m) = (k, m).$$
#
#   The shapes are the easiest way to remember it: the gradient of a matrix has the
#   matrix's shape, and there is only one way to multiply $\bar Y$ with the other
#   operand to get it. Each is a full matrix product, as expensive as the forward
#   one: the backward pass of a linear layer costs **two** matrix products, which
#   is why training costs about three times as much as inference.
#
# For stacks of matrices (`(batch, n, k) @ (k, m)`) the same formulas hold with the
# last two axes swapped (`B.swapaxes(-1, -2)`, a view); the batch axes of $\bar B$ are
# summed away by `unbroadcast`. A 1-D operand is treated as a row (left) or a
# column (right) vector; that part is given.

# %% nbgrader={"grade": false, "grade_id": "autograd_rules_exp_log_matmul", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def exp_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = exp(a): `grad * y` to a."""
    ### BEGIN SOLUTION
    return (grad * out.data,)
    ### END SOLUTION


def log_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = log(a): `grad / a` to a."""
    ### BEGIN SOLUTION
    return (grad / out._inputs[0].data,)
    ### END SOLUTION


def matmul_backward(grad: np.ndarray, out: Any) -> GradPair:
    """Y = A @ B: `grad @ B^T` to A and `A^T @ grad` to B (None for an input without requires_grad)."""
    a, b = out._inputs
    A, B = a.data, b.data
    if A.ndim == 1 or B.ndim == 1:  # given: vectors as rows/columns
        return _matmul_vector_backward(grad, A, B, a.requires_grad, b.requires_grad)
    ### BEGIN SOLUTION
    grad_a = grad @ B.swapaxes(-1, -2) if a.requires_grad else None
    grad_b = A.swapaxes(-1, -2) @ grad if b.requires_grad else None
    return grad_a, grad_b
    ### END SOLUTION


def _matmul_vector_backward(
    grad: np.ndarray, A: np.ndarray, B: np.ndarray, want_a: bool, want_b: bool
) -> GradPair:
    """matmul gradients when an operand is 1-D: make it a matrix, use the 2-D formulas."""
    if A.ndim == 1 and B.ndim == 1:  # dot product: a number
        return (grad * B if want_a else None), (grad * A if want_b else None)
    A2 = A[None, :] if A.ndim == 1 else A  # row vector (1, k)
    B2 = B[:, None] if B.ndim == 1 else B  # column vector (k, 1)
    G2 = grad
    if A.ndim == 1:
        G2 = G2[..., None, :]
    if B.ndim == 1:
        G2 = G2[..., None]
    grad_a = grad_b = None
    if want_a:
        grad_a = G2 @ B2.swapaxes(-1, -2)
        grad_a = grad_a[..., 0, :] if A.ndim == 1 else grad_a
    if want_b:
        grad_b = A2.swapaxes(-1, -2) @ G2
        grad_b = grad_b[..., 0] if B.ndim == 1 else grad_b
    return grad_a, grad_b


# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_exp_log", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor([0.0, 1.0], requires_grad=True)
(g_exp,) = exp_backward(np.ones(2, dtype=np.float32), a_t.exp())
assert np.allclose(g_exp, [1.0, np.e]), f"d exp(a)/da = exp(a): [1, e], got {g_exp}"
a_t = Tensor([2.0, 4.0], requires_grad=True)
(g_log,) = log_backward(np.ones(2, dtype=np.float32), a_t.log())
assert np.allclose(g_log, [0.5, 0.25]), f"d log(a)/da = 1/a: [0.5, 0.25], got {g_log}"
print("exp, log rules: OK")
### BEGIN HIDDEN TESTS
# log at a = 0.1 with upstream 3: 3 / 0.1 = 30; exp at ln 2 with upstream 3: 3 * 2 = 6 (by hand)
(g_log,) = log_backward(np.full(1, 3.0, dtype=np.float32), Tensor([0.1], requires_grad=True).log())
assert np.allclose(np.asarray(g_log, dtype=np.float64), [30.0], rtol=1e-5), f"log: grad / a, got {g_log}"
(g_exp,) = exp_backward(np.full(1, 3.0, dtype=np.float32), Tensor([math.log(2.0)], requires_grad=True).exp())
assert np.allclose(np.asarray(g_exp, dtype=np.float64), [6.0], rtol=1e-6), f"exp: grad * y, got {g_exp}"
assert g_exp.dtype == np.float32 and g_log.dtype == np.float32, "float32 stays float32"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_matmul", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
A_t = Tensor(np.ones((2, 3)), requires_grad=True)
B_t = Tensor(np.ones((3, 4)), requires_grad=True)
gA, gB = matmul_backward(np.ones((2, 4), dtype=np.float32), A_t @ B_t)
assert gA.shape == (2, 3) and gB.shape == (3, 4), \
    f"gradients have their matrix's shape: (2, 3) and (3, 4), got {gA.shape} and {gB.shape}"
# with all ones, each entry of grad @ B^T sums m = 4 ones, each of A^T @ grad sums n = 2
assert np.all(gA == 4) and np.all(gB == 2), f"expected all 4s and all 2s, got {gA} and {gB}"
gA, gB = matmul_backward(np.ones((2, 4), dtype=np.float32), A_t @ Tensor(np.ones((3, 4))))
assert gB is None, "matmul: a constant operand gets None (its product is not computed)"
print("matmul rule: OK")
### BEGIN HIDDEN TESTS
# A = [[1, 2]], B = [[3], [4]], Y = [[11]], upstream 2:
# dY/dA = 2 * B^T = [[6, 8]], dY/dB = 2 * A^T = [[2], [4]]  (by hand)
A_h = Tensor([[1.0, 2.0]], requires_grad=True)
B_h = Tensor([[3.0], [4.0]], requires_grad=True)
gA, gB = matmul_backward(np.full((1, 1), 2.0, dtype=np.float32), A_h @ B_h)
assert np.allclose(np.asarray(gA, dtype=np.float64), [[6.0, 8.0]]), f"matmul: grad @ B^T to A, got {gA}"
assert np.allclose(np.asarray(gB, dtype=np.float64), [[2.0], [4.0]]), f"matmul: A^T @ grad to B, got {gB}"
gA, gB = matmul_backward(np.ones((1, 1), dtype=np.float32), Tensor([[1.0, 2.0]]) @ B_h)
assert gA is None, "matmul: a constant operand gets None (its product is not computed)"
# a stack (2, 1, 2) @ (2, 1): grad @ B^T per matrix; A^T @ grad per matrix (summed later by unbroadcast)
S_h = Tensor(np.array([[[1.0, 2.0]], [[3.0, 4.0]]]), requires_grad=True)
gS, gB = matmul_backward(np.ones((2, 1, 1), dtype=np.float32), S_h @ B_h)
assert gS.shape == (2, 1, 2) and np.allclose(np.asarray(gS, dtype=np.float64), [[[3.0, 4.0]], [[3.0, 4.0]]]), \
    f"stacks of matrices: grad @ B.swapaxes(-1, -2), got {gS}"
assert np.allclose(np.asarray(gB, dtype=np.float64).sum(axis=0), [[4.0], [6.0]]), \
    f"stacks of matrices: A.swapaxes(-1, -2) @ grad, one per matrix, got {gB}"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Reductions and shape operations
#
# * `sum(axis, keepdims)`: every summed element contributes with slope 1, so each
#   receives the gradient of the sum it went into. Put back the reduced axes as size
#   1 (`np.expand_dims(grad, axis)`, skipped when `keepdims` was True or `axis` is
#   None) and broadcast to the input's shape (`np.broadcast_to`: a read-only view,
#   no copy).
# * `mean`: the same, times $1/\text{count}$ where count is how many elements went
#   into each mean (`input.size / output.size`). An **empty** input (a mean over an
#   axis of size 0, such as `x.mean(axis=0)` for `x` of shape `(0, 3)`) has no
#   element to send a gradient to: its gradient is zeros of the input's shape (an
#   empty array), as in PyTorch. Return that before dividing by `input.size`,
#   which is 0 then.
# * `max`: only the maximum moved the output, so the gradient goes to the positions
#   equal to the maximum and zero elsewhere. If several elements tie, we split the
#   gradient evenly among them (as `torch.amax` does); any split that sums to the
#   upstream gradient is a valid subgradient.
# * `reshape`: the numbers are the same, only arranged differently: reshape the
#   gradient back to the input's shape.
# * `transpose(axes)`: move the gradient's axes back with the inverse permutation
#   (`np.argsort(axes)`); `axes=None` reversed the axes, and reversing is its own
#   inverse. **Negative axes**: `x.transpose(-1, 0, 1)` is legal and records
#   `(-1, 0, 1)`, but `np.argsort((-1, 0, 1))` is `[0, 1, 2]`, not the inverse
#   permutation. Make every axis non-negative first (`ax % ndim`, with `ndim` the
#   number of axes), then take `np.argsort`.
# * `getitem` (`x[index]`): the selected elements receive the gradient, the others
#   zero. Start from zeros of the input's shape and add the gradient into the
#   indexed positions. With fancy indexing the same position can be picked twice
#   (`x[[0, 0]]`), and then both gradients must be **added**: `g[index] += grad`
#   would keep only one, so use `np.add.at(g, index, grad)`. Basic indexing (ints
#   and slices) never repeats a position, and the plain assignment `g[index] = grad`
#   is faster; the helper `_is_basic_index` (given) tells which is which.

# %% nbgrader={"grade": false, "grade_id": "autograd_rules_reduce_shape", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _expand_reduced(array: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """Put back, as size-1 axes, the axes a reduction removed (a view, no copy)."""
    if axis is None or keepdims:
        return array
    return np.expand_dims(array, axis)


def _is_basic_index(index: Any) -> bool:
    """True for ints, slices, None and Ellipsis (alone or in a tuple): no position repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or isinstance(i, slice)
        or (isinstance(i, (int, np.integer)) and not isinstance(i, bool))
        for i in items
    )


def sum_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.sum(axis, keepdims) with `out._ctx == (axis, keepdims)`: grad broadcast back to a's shape."""
    axis, keepdims = out._ctx
    shape = out._inputs[0].data.shape
    ### BEGIN SOLUTION
    return (np.broadcast_to(_expand_reduced(grad, axis, keepdims), shape),)
    ### END SOLUTION


def mean_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.mean(axis, keepdims): like sum, divided by the number of elements per mean
    (zeros of a's shape when a is empty)."""
    axis, keepdims = out._ctx
    a = out._inputs[0].data
    ### BEGIN SOLUTION
    if a.size == 0:  # an empty axis: no element went into any mean
        return (np.zeros(a.shape, dtype=grad.dtype),)
    scale = out.data.size / a.size  # a Python float: float32 stays float32
    return (np.broadcast_to(_expand_reduced(grad * scale, axis, keepdims), a.shape),)
    ### END SOLUTION


def max_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.max(axis, keepdims): grad to the maximal entries (split evenly between ties)."""
    axis, keepdims = out._ctx
    a = out._inputs[0].data
    ### BEGIN SOLUTION
    peak = _expand_reduced(out.data, axis, keepdims)
    g = _expand_reduced(grad, axis, keepdims)
    mask = a == peak
    count = mask.sum(axis=axis, keepdims=True).astype(a.dtype)
    return (mask * (g / count),)
    ### END SOLUTION


def reshape_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.reshape(...): grad reshaped to a's shape."""
    ### BEGIN SOLUTION
    return (grad.reshape(out._inputs[0].data.shape),)
    ### END SOLUTION


def transpose_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.transpose(axes) with `out._ctx == axes` (None: reversed; axes may be negative):
    the inverse permutation."""
    axes = out._ctx
    ### BEGIN SOLUTION
    if axes is None:
        return (grad.transpose(),)
    ndim = grad.ndim
    return (grad.transpose(np.argsort([ax % ndim for ax in axes])),)
    ### END SOLUTION


def getitem_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a[index] with `out._ctx == index`: zeros of a's shape with grad added at index."""
    index = out._ctx
    a = out._inputs[0].data
    ### BEGIN SOLUTION
    full = np.zeros(a.shape, dtype=grad.dtype)
    if _is_basic_index(index):
        full[index] = grad
    else:
        np.add.at(full, index, grad)
    return (full,)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_sum_mean", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

a_t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
(g,) = sum_backward(np.array([1.0, 2.0], dtype=np.float32), a_t.sum(axis=1))
assert g.shape == (2, 3), f"sum: the gradient has the input's shape (2, 3), got {g.shape}"
assert np.allclose(g, [[1, 1, 1], [2, 2, 2]]), f"each row gets its sum's gradient, got\n{g}"
(g,) = mean_backward(np.array(6.0, dtype=np.float32), a_t.mean())
assert np.allclose(g, 1.0), f"mean of 6 numbers with upstream 6: each gets 6/6 = 1, got\n{g}"
empty = Tensor(np.zeros((0, 3)), requires_grad=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # NumPy warns about the mean of nothing (nan) in the forward pass
    empty_mean = empty.mean(axis=0)
try:
    (g,) = mean_backward(np.ones(3, dtype=np.float32), empty_mean)
except ZeroDivisionError:
    raise AssertionError("mean over an empty axis: return zeros of the input's shape before dividing") from None
assert g.shape == (0, 3), f"mean over an empty axis: zeros of the input's shape (0, 3), got shape {g.shape}"
print("sum, mean rules: OK")
### BEGIN HIDDEN TESTS
# mean over axis 0 of a (4, 2) tensor with keepdims: each entry gets upstream / 4
t_h = Tensor(np.ones((4, 2)), requires_grad=True)
(g,) = mean_backward(np.array([[4.0, 8.0]], dtype=np.float32), t_h.mean(axis=0, keepdims=True))
assert g.shape == (4, 2) and np.allclose(np.asarray(g, dtype=np.float64), [[1.0, 2.0]] * 4), \
    f"mean with keepdims: upstream / count to every element, got {g}"
# sum over axes (0, 2) of a (2, 3, 2) tensor: entry [i, j, k] gets upstream[j]
t_h = Tensor(np.ones((2, 3, 2)), requires_grad=True)
(g,) = sum_backward(np.array([1.0, 2.0, 3.0], dtype=np.float32), t_h.sum(axis=(0, 2)))
assert g.shape == (2, 3, 2) and np.allclose(np.asarray(g, dtype=np.float64)[1, :, 1], [1.0, 2.0, 3.0]), \
    f"sum over a tuple of axes: put them back, then broadcast; got {g}"
(g,) = mean_backward(np.array([3.0, 6.0], dtype=np.float32), Tensor(np.ones((2, 3)), requires_grad=True).mean(axis=-1))
assert np.allclose(np.asarray(g, dtype=np.float64), [[1.0] * 3, [2.0] * 3]), f"mean over axis -1: upstream / 3, got {g}"
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    empty_all = Tensor(np.zeros((2, 0)), requires_grad=True).mean()
(g,) = mean_backward(np.array(1.0, dtype=np.float32), empty_all)
assert g.shape == (2, 0), f"mean of an empty tensor: zeros of its shape (2, 0), got shape {g.shape}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_max", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
(g,) = max_backward(np.array([1.0, 1.0], dtype=np.float32), a_t.max(axis=1))
assert np.allclose(g, [[0, 0, 1], [0, 0, 1]]), f"max: gradient only at each row's maximum, got\n{g}"
ties = Tensor([2.0, 5.0, 5.0], requires_grad=True)
(g,) = max_backward(np.array(1.0, dtype=np.float32), ties.max())
assert np.allclose(g, [0.0, 0.5, 0.5]), f"two maxima tie: each gets half of the gradient, got {g}"
print("max rule: OK")
### BEGIN HIDDEN TESTS
# ties: [3, 3, 1] has two maxima; upstream 4 is split 2 / 2 (by hand)
t_h = Tensor([3.0, 3.0, 1.0], requires_grad=True)
(g,) = max_backward(np.array(4.0, dtype=np.float32), t_h.max())
assert np.allclose(np.asarray(g, dtype=np.float64), [2.0, 2.0, 0.0]), f"ties split the gradient evenly, got {g}"
# axis 0 with keepdims on [[1, 7], [4, 7]]: column 0 -> row 1; column 1 ties (7, 7): 3 / 2 each
t_h = Tensor([[1.0, 7.0], [4.0, 7.0]], requires_grad=True)
(g,) = max_backward(np.array([[2.0, 3.0]], dtype=np.float32), t_h.max(axis=0, keepdims=True))
assert np.allclose(np.asarray(g, dtype=np.float64), [[0.0, 1.5], [2.0, 1.5]]), \
    f"max over axis 0 with keepdims, ties split evenly per column, got {g}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_reshape_transpose", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
(g,) = reshape_backward(np.ones(6, dtype=np.float32), a_t.reshape(6))
assert g.shape == (2, 3), f"reshape: back to (2, 3), got {g.shape}"
(g,) = transpose_backward(np.arange(6.0).reshape(3, 2), a_t.T)
assert np.allclose(g, np.arange(6.0).reshape(3, 2).T), "transpose: transpose the gradient back"
c_t = Tensor(np.zeros((2, 3, 4)), requires_grad=True)
up = np.arange(24.0).reshape(4, 2, 3)
(g,) = transpose_backward(up, c_t.transpose(-1, 0, 1))
assert g.shape == (2, 3, 4), \
    f"transpose(-1, 0, 1): the gradient of shape (4, 2, 3) goes back to (2, 3, 4), got {g.shape}. Hint: ax % ndim"
assert float(g[1, 2, 3]) == float(up[3, 1, 2]), "element [i, j, k] of the input was element [k, i, j] of the output"
print("reshape, transpose rules: OK")
### BEGIN HIDDEN TESTS
# transpose with axes (1, 2, 0): the gradient of shape (3, 2, 2) goes back to (2, 3, 2)
t_h = Tensor(np.zeros((2, 3, 2)), requires_grad=True)
up = np.arange(12.0).reshape(3, 2, 2)
(g,) = transpose_backward(up, t_h.transpose(1, 2, 0))
assert g.shape == (2, 3, 2) and float(g[1, 2, 0]) == float(up[2, 0, 1]), \
    "transpose: move the axes back with the inverse permutation"
(g,) = transpose_backward(up, t_h.transpose(-2, -1, -3))
assert g.shape == (2, 3, 2) and float(g[1, 2, 0]) == float(up[2, 0, 1]), \
    "transpose with negative axes (-2, -1, -3): the inverse of (1, 2, 0). Hint: ax % ndim before argsort"
(g,) = reshape_backward(np.arange(12.0).reshape(3, 4), Tensor(np.zeros((2, 6)), requires_grad=True).reshape(3, 4))
assert g.shape == (2, 6) and float(g[1, 0]) == 6.0, f"reshape: the same numbers, in the input's shape, got {g.shape}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_getitem", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a_t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
(g,) = getitem_backward(np.ones(2, dtype=np.float32), a_t[0, 1:])
assert np.allclose(g, [[0, 1, 1], [0, 0, 0]]), f"getitem: ones at the selected places, got\n{g}"
(g,) = getitem_backward(np.ones((2, 3), dtype=np.float32), a_t[np.array([1, 1])])
assert np.allclose(g, [[0, 0, 0], [2, 2, 2]]), \
    f"row 1 picked twice: its gradient is 2 (use np.add.at), got\n{g}"
print("getitem rule: OK")
### BEGIN HIDDEN TESTS
# boolean mask index: the selected positions get the gradient
t_h = Tensor([1.0, -1.0, 2.0], requires_grad=True)
(g,) = getitem_backward(np.array([5.0, 7.0], dtype=np.float32), t_h[np.array([True, False, True])])
assert np.allclose(np.asarray(g, dtype=np.float64), [5.0, 0.0, 7.0]), f"a boolean mask: the gradient at the True places, got {g}"
(g,) = getitem_backward(np.array([1.0, 2.0, 4.0], dtype=np.float32), t_h[np.array([0, 2, 0])])
assert np.allclose(np.asarray(g, dtype=np.float64), [5.0, 0.0, 2.0]), f"a position picked twice adds both gradients, got {g}"
(g,) = getitem_backward(np.array(3.0, dtype=np.float32), t_h[-1])
assert g.shape == (3,) and np.allclose(np.asarray(g, dtype=np.float64), [0.0, 0.0, 3.0]), f"an int index, got {g}"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Activations
#
# Module 02 saved what these rules need (see each class's docstring there). Three of
# them have the convenient property that their derivative is a function of their
# **output**, so the rule needs nothing but `out.data`:
#
# | op | forward | derivative | `_ctx` |
# |---|---|---|---|
# | `relu` | $\max(x, 0)$ | $1$ where $y > 0$, else $0$ | `None` |
# | `sigmoid` | $\sigma(x) = 1/(1+e^{-x})$ | $\sigma(1-\sigma) = y(1-y)$ | `None` |
# | `tanh` | $\tanh x$ | $1 - y^2$ | `None` |
# | `gelu` | $\tfrac12 x(1+t)$, $t = \tanh\big(c(x + 0.044715x^3)\big)$ | $\tfrac12(1+t) + \tfrac12 x(1-t^2)\,c\,(1 + 3\cdot 0.044715\,x^2)$ | `t` |
# | `softmax` | $s_i = e^{x_i}/\sum_j e^{x_j}$ | $\bar x = s \odot (\bar s - \sum_j \bar s_j s_j)$ | `axis` |
#
# with $c = \sqrt{2/\pi}$. The ReLU derivative at exactly 0 is taken as 0, as in
# PyTorch.
#
# **Softmax** couples the entries along its axis: $\partial s_i/\partial x_j =
# s_i(\delta_{ij} - s_j)$. Multiplying this Jacobian by $\bar s$ gives
# $\bar x_j = \sum_i \bar s_i s_i(\delta_{ij} - s_j) = s_j(\bar s_j - \sum_i \bar s_i s_i)$:
# never build the $C \times C$ Jacobian, one elementwise product and one sum do it.
#
# **GELU**: module 02 clips $x$ to $[-10, 10]$ inside the tanh (where $t$ is already
# exactly $\pm 1$), so do the same with `np.clip(x, -10.0, 10.0)` in the second term:
# for large $|x|$ the factor $1 - t^2$ is exactly 0, and $x^3$ must not overflow
# to `inf` (which would give `0 * inf = nan`).

# %% nbgrader={"grade": false, "grade_id": "autograd_rules_activations", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
GELU_C = math.sqrt(2.0 / math.pi)
GELU_K = 0.044715


def relu_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = relu(x): grad where y > 0, zero elsewhere."""
    ### BEGIN SOLUTION
    return (grad * (out.data > 0),)
    ### END SOLUTION


def sigmoid_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = sigmoid(x): grad * y * (1 - y)."""
    ### BEGIN SOLUTION
    y = out.data
    return (grad * y * (1.0 - y),)
    ### END SOLUTION


def tanh_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = tanh(x): grad * (1 - y^2)."""
    ### BEGIN SOLUTION
    y = out.data
    return (grad * (1.0 - y * y),)
    ### END SOLUTION


def gelu_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = gelu(x) (tanh form) with t = tanh(c (x + k x^3)) saved in `out._ctx`."""
    t = out._ctx
    x = np.clip(out._inputs[0].data, -10.0, 10.0)
    ### BEGIN SOLUTION
    slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * x * x)
    return (grad * slope,)
    ### END SOLUTION


def softmax_backward(grad: np.ndarray, out: Any) -> GradPair:
    """s = softmax(x, axis) with the axis in `out._ctx`: s * (grad - sum(grad * s, axis))."""
    axis = out._ctx
    ### BEGIN SOLUTION
    s = out.data
    return (s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_relu_sigmoid_tanh", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x_t = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
ones3 = np.ones(3, dtype=np.float32)
(g,) = relu_backward(ones3, ReLU()(x_t))
assert np.allclose(g, [0, 0, 1]), f"relu: 1 where x > 0, 0 elsewhere (also at 0), got {g}"
(g,) = sigmoid_backward(ones3, Sigmoid()(x_t))
assert abs(float(g[1]) - 0.25) < 1e-6, f"sigmoid'(0) = 0.5 * 0.5 = 0.25, got {g[1]}"
(g,) = tanh_backward(ones3, Tanh()(x_t))
assert abs(float(g[1]) - 1.0) < 1e-6, f"tanh'(0) = 1 - 0^2 = 1, got {g[1]}"
print("relu, sigmoid, tanh rules: OK")
### BEGIN HIDDEN TESTS
up = np.array([2.0, 3.0, -1.0], dtype=np.float32)
(g,) = relu_backward(up, ReLU()(x_t))
assert np.allclose(np.asarray(g, dtype=np.float64), [0.0, 0.0, -1.0]), f"relu: the upstream gradient where y > 0, else 0; got {g}"
# sigmoid'(2) = s(1-s), s = 1/(1+e^-2) = 0.8807971 -> 0.1049936 (closed form)
s2 = 1.0 / (1.0 + math.exp(-2.0))
(g,) = sigmoid_backward(up, Sigmoid()(x_t))
assert abs(float(g[2]) + s2 * (1 - s2)) < 1e-6, f"sigmoid: grad * y * (1 - y), got {g}"
# tanh'(-1) = 1 - tanh(1)^2 = 0.4199743, upstream 2
(g,) = tanh_backward(up, Tanh()(x_t))
assert abs(float(g[0]) - 2 * (1 - math.tanh(1.0) ** 2)) < 1e-6, f"tanh: grad * (1 - y^2), got {g}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_gelu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x_t = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
ones3 = np.ones(3, dtype=np.float32)
(g,) = gelu_backward(ones3, GELU()(x_t))
assert abs(float(g[1]) - 0.5) < 1e-6, f"gelu'(0) = 0.5 (t = 0 there), got {g[1]}"
# gelu'(-1) from the table: t = tanh(c (-1 - k)), 0.5 (1 + t) - 0.5 (1 - t^2) c (1 + 3k), with math.tanh
t1 = math.tanh(GELU_C * (-1 - GELU_K))
expected = 0.5 * (1 + t1) - 0.5 * (1 - t1**2) * GELU_C * (1 + 3 * GELU_K)
assert abs(float(g[0]) - expected) < 1e-6, f"gelu'(-1) = {expected:.6f}, got {g[0]}"
print("gelu rule: OK")
### BEGIN HIDDEN TESTS
# gelu'(2): u = c (2 + k 8), t = tanh u, slope = 0.5 (1 + t) + (1 - t^2) c (1 + 12 k)
u2 = GELU_C * (2 + GELU_K * 8)
t2 = math.tanh(u2)
expected = 0.5 * (1 + t2) + 0.5 * 2 * (1 - t2**2) * GELU_C * (1 + 3 * GELU_K * 4)
(g,) = gelu_backward(ones3, GELU()(x_t))
assert abs(float(g[2]) - expected) < 1e-5, f"gelu' from the table's formula, got {g[2]} at x = 2"
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        (g,) = gelu_backward(np.ones(2, dtype=np.float32), GELU()(Tensor([1e30, -1e30], requires_grad=True)))
    except RuntimeWarning as warning:
        raise AssertionError(f"gelu' of huge inputs must not overflow ({warning}); use np.clip(x, -10, 10)") from None
assert np.allclose(np.asarray(g, dtype=np.float64), [1.0, 0.0]), f"gelu' is 1 / 0 far out, got {g}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_softmax", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x_t = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
ones3 = np.ones(3, dtype=np.float32)
(g,) = softmax_backward(ones3, Softmax()(x_t))
assert np.allclose(g, 0, atol=1e-6), \
    f"softmax sums to 1 whatever x is, so a gradient of all ones gives zero, got {g}"
# softmax of [0, 0] is [0.5, 0.5]; upstream [1, 0] -> 0.5 * ([1, 0] - 0.5) = [0.25, -0.25]
(g,) = softmax_backward(np.array([1.0, 0.0], dtype=np.float32), Softmax()(Tensor([0.0, 0.0], requires_grad=True)))
assert np.allclose(g, [0.25, -0.25]), f"s * (grad - sum(grad * s)) = [0.25, -0.25], got {g}"
print("softmax rule: OK")
### BEGIN HIDDEN TESTS
# softmax of [0, ln 3] = [1/4, 3/4]; upstream [0, 4]: sum(grad * s) = 3; s * (grad - 3) = [-3/4, 3/4]
(g,) = softmax_backward(np.array([0.0, 4.0], dtype=np.float32), Softmax()(Tensor([0.0, math.log(3.0)], requires_grad=True)))
assert np.allclose(np.asarray(g, dtype=np.float64), [-0.75, 0.75], atol=1e-6), f"softmax: s * (grad - sum(grad * s)), got {g}"
# along axis 0 of a (2, 2): each column on its own; columns [0, 0] and [0, ln 3], upstream [[1, 0], [0, 4]]
z_h = Tensor([[0.0, 0.0], [0.0, math.log(3.0)]], requires_grad=True)
(g,) = softmax_backward(np.array([[1.0, 0.0], [0.0, 4.0]], dtype=np.float32), Softmax(axis=0)(z_h))
assert np.allclose(np.asarray(g, dtype=np.float64), [[0.25, -0.75], [-0.25, 0.75]], atol=1e-6), \
    f"softmax along the axis in ctx (here 0): the sum runs along that axis, got {g}"
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Losses
#
# The losses of module 04 end a graph, so their output is a scalar and `grad` is a
# 0-d array (1.0 when `backward()` starts there). Their rules are short because the
# forward pass saved exactly what they need:
#
# * `mse`: $L = \frac1n\sum (p - t)^2$ over all $n$ elements, `_ctx` the difference
#   $d = p - t$. $\bar p = \bar L \cdot 2d/n$, and if the targets are a tensor in the
#   graph, they get $-\bar p$.
# * `cross_entropy`: `_ctx = (probs, targets)` with the softmax probabilities of
#   the logits. For class-index targets $y$ (a 1-D integer array),
#   $\bar z = \bar L\,(\text{softmax}(z) - \text{onehot}(y))/N$: the famous
#   "probabilities minus targets". For probability targets $T$ (a 2-D array),
#   $\bar z = \bar L\,(\text{softmax}(z) \sum_j T_j - T)/N$ (rows that sum to 1 give
#   $\text{softmax}(z) - T$ again).
# * `binary_cross_entropy`: `_ctx = (p, t)` with $p$ already clamped to
#   $[\varepsilon, 1-\varepsilon]$. $L = -\frac1n \sum t\ln p + (1-t)\ln(1-p)$, so
#   $\bar p = \bar L\,(p - t)/\big(p(1-p)\big)/n$.
#
# **Targets with a gradient.** Module 04 makes the targets an input of the op when
# they are given as a Tensor (for cross entropy: a Tensor of probabilities); class
# labels are data and never inputs. Then `out._inputs == (predictions, targets)`
# and the rule returns a second gradient, for the targets (or `None` when they do
# not require grad), as PyTorch does:
#
# * `mse`: $\bar t = -\bar p$;
# * `cross_entropy` with probability targets: $L = -\frac1N\sum_n\sum_c T_{nc}\ln q_{nc}$,
#   so $\bar T = -\bar L\,\ln q / N$, the log-probabilities of the logits. Do not
#   take `np.log(probs)`: a probability that rounded to 0 gives $-\infty$. The given
#   helper `_log_softmax(z)` recomputes them the stable way of module 04 from the
#   logits, `out._inputs[0].data`;
# * `binary_cross_entropy`: $\bar t = \bar L\,\big(\ln(1-p) - \ln p\big)/n$ with the
#   clamped $p$ (finite, since $p \in [\varepsilon, 1-\varepsilon]$).

# %% nbgrader={"grade": false, "grade_id": "autograd_rules_losses", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def mse_backward(grad: np.ndarray, out: Any) -> GradPair:
    """L = mean((p - t)^2) with d = p - t in `out._ctx`: 2 d / n to p, -2 d / n to t."""
    diff = out._ctx
    ### BEGIN SOLUTION
    grad_p = diff * (grad * (2.0 / diff.size))
    if len(out._inputs) == 1:
        return (grad_p,)
    return grad_p, -grad_p
    ### END SOLUTION


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """Given: log-probabilities of logits (N, C), row by row, computed stably."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_backward(grad: np.ndarray, out: Any) -> GradPair:
    """L = cross entropy of logits z with `out._ctx == (softmax(z), targets)`; a second
    gradient, -grad * log_softmax(z) / N, for probability targets that are an input."""
    probs, targets = out._ctx
    n = probs.shape[0]
    ### BEGIN SOLUTION
    scale = grad / n
    if targets.ndim == 1:  # class indices
        grad_z = probs * scale
        grad_z[np.arange(n), targets] -= scale
    else:  # probability rows
        grad_z = (probs * targets.sum(axis=1, keepdims=True) - targets) * scale
    if len(out._inputs) == 1:
        return (grad_z,)
    if not out._inputs[1].requires_grad:
        return grad_z, None
    return grad_z, -_log_softmax(out._inputs[0].data) * scale
    ### END SOLUTION


def binary_cross_entropy_backward(grad: np.ndarray, out: Any) -> GradPair:
    """L = BCE of clamped probabilities p against targets t, `out._ctx == (p, t)`; a second
    gradient, grad * (log(1 - p) - log(p)) / n, for targets that are an input."""
    p, t = out._ctx
    ### BEGIN SOLUTION
    scale = grad / p.size
    grad_p = (p - t) / (p * (1.0 - p)) * scale
    if len(out._inputs) == 1:
        return (grad_p,)
    if not out._inputs[1].requires_grad:
        return grad_p, None
    return grad_p, (np.log(1.0 - p) - np.log(p)) * scale
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_mse", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
one0 = np.array(1.0, dtype=np.float32)
p_t = Tensor([1.0, 3.0], requires_grad=True)
grads = mse_backward(one0, MSELoss()(p_t, np.array([0.0, 0.0])))
# L = (1^2 + 3^2) / 2, dL/dp = 2 p / 2 = p
assert len(grads) == 1 and np.allclose(grads[0], [1.0, 3.0]), f"mse: one input, 2 (p - t) / n = [1, 3], got {grads}"
t_t = Tensor([0.0, 1.0], requires_grad=True)
g_p, g_t = mse_backward(one0, MSELoss()(p_t, t_t))
assert np.allclose(g_p, [1.0, 2.0]) and np.allclose(g_t, [-1.0, -2.0]), f"mse with tensor targets: t gets -p's gradient, got {g_p}, {g_t}"
print("mse rule: OK")
### BEGIN HIDDEN TESTS
# mse with tensor targets: the targets get the opposite gradient; n = 2, upstream 3 (by hand)
t_h = Tensor([2.0, 0.0], requires_grad=True)
grads = mse_backward(np.array(3.0, dtype=np.float32), MSELoss()(Tensor([5.0, 1.0], requires_grad=True), t_h))
assert len(grads) == 2, f"mse: a gradient for each input (predictions, targets), got {len(grads)}"
assert np.allclose(np.asarray(grads[0], dtype=np.float64), [9.0, 3.0]), f"mse: grad * 2 (p - t) / n to p, got {grads[0]}"
assert np.allclose(np.asarray(grads[1], dtype=np.float64), [-9.0, -3.0]), f"mse: the opposite to t, got {grads[1]}"
assert np.asarray(grads[0]).dtype == np.float32, "float32 stays float32"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_cross_entropy", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
one0 = np.array(1.0, dtype=np.float32)
z_t = Tensor(np.zeros((2, 4)), requires_grad=True)
(g,) = cross_entropy_backward(one0, CrossEntropyLoss()(z_t, np.array([0, 3])))
# uniform logits: softmax = 1/4 everywhere; minus one-hot, over N = 2
expected = (np.full((2, 4), 0.25) - np.eye(4)[[0, 3]]) / 2
assert np.allclose(g, expected), f"cross entropy: (softmax - onehot) / N =\n{expected}\ngot\n{g}"
assert g.dtype == np.float32, f"float32 logits give a float32 gradient, got {g.dtype}"
soft_t = Tensor(np.full((2, 4), 0.25), requires_grad=True)
g_z, g_T = cross_entropy_backward(one0, CrossEntropyLoss()(z_t, soft_t))
# log-probabilities are all ln(1/4); -ln(1/4) / N = ln(4) / 2 = 0.693147
assert np.allclose(g_z, 0.0) and np.allclose(g_T, np.log(4.0) / 2), \
    f"probability targets as a Tensor: gradient -log_softmax(z) / N = ln(4)/2 for T, got {g_T}"
print("cross entropy rule: OK")
### BEGIN HIDDEN TESTS
# probability targets [[0.3, 0.7]] on logits [[0, ln 3]]: softmax = [0.25, 0.75] (by hand),
# gradient = softmax - targets = [-0.05, 0.05] (N = 1)
z_h = Tensor([[0.0, math.log(3.0)]], requires_grad=True)
(g,) = cross_entropy_backward(one0, CrossEntropyLoss()(z_h, np.array([[0.3, 0.7]])))
assert np.allclose(np.asarray(g, dtype=np.float64), [[-0.05, 0.05]], atol=1e-6), f"probability targets: softmax - T, got {g}"
# class index 1 on the same logits, upstream 2: 2 * [0.25, 0.75 - 1] = [0.5, -0.5]
(g,) = cross_entropy_backward(np.array(2.0, dtype=np.float32), CrossEntropyLoss()(z_h, np.array([1])))
assert np.allclose(np.asarray(g, dtype=np.float64), [[0.5, -0.5]], atol=1e-6), f"upstream 2 scales the gradient: {g}"
# the targets' gradient: -ln q / N = [-ln 0.25, -ln 0.75] = [1.386294, 0.287682] (by hand)
T_h = Tensor([[0.3, 0.7]], requires_grad=True)
g_z, g_T = cross_entropy_backward(one0, CrossEntropyLoss()(z_h, T_h))
assert np.allclose(np.asarray(g_T, dtype=np.float64), [[-math.log(0.25), -math.log(0.75)]], rtol=1e-5), \
    f"probability targets that require grad get -log_softmax(z) / N, got {g_T}"
# far apart logits: q underflows to 0 but the log-probability stays finite (-1000)
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        g_z, g_T = cross_entropy_backward(one0, CrossEntropyLoss()(Tensor([[0.0, -1000.0]], requires_grad=True), T_h))
    except RuntimeWarning as warning:
        raise AssertionError(f"use the stable log-probabilities (_log_softmax), not np.log(probs) ({warning})") from None
assert np.all(np.isfinite(g_T)) and abs(float(g_T[0, 1]) - 1000.0) < 1e-2, \
    f"use the stable log-probabilities (_log_softmax), not np.log(probs): got {g_T}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_rules_bce", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
one0 = np.array(1.0, dtype=np.float32)
q_t = Tensor([0.5, 0.5], requires_grad=True)
(g,) = binary_cross_entropy_backward(one0, BinaryCrossEntropyLoss()(q_t, np.array([1.0, 0.0])))
# (p - t) / (p (1 - p)) / n = (+-0.5) / 0.25 / 2 = +-1
assert np.allclose(g, [-1.0, 1.0]), f"bce: (p - t) / (p (1 - p)) / n = [-1, 1], got {g}"
t_t = Tensor([1.0, 0.0], requires_grad=True)
g_p, g_t = binary_cross_entropy_backward(one0, BinaryCrossEntropyLoss()(q_t, t_t))
# (ln(1 - p) - ln p) / n = (ln 0.5 - ln 0.5) / 2 = 0
assert np.allclose(g_p, [-1.0, 1.0]) and np.allclose(g_t, [0.0, 0.0]), f"bce with tensor targets: (ln(1-p) - ln p) / n = 0, got {g_t}"
print("bce rule: OK")
### BEGIN HIDDEN TESTS
# bce with p = 0.8, t = 1, n = 1: (0.8 - 1) / (0.8 * 0.2) = -1.25
(g,) = binary_cross_entropy_backward(
    one0, BinaryCrossEntropyLoss()(Tensor([0.8], requires_grad=True), np.array([1.0])))
assert np.allclose(np.asarray(g, dtype=np.float64), [-1.25], rtol=1e-5), f"bce: (p - t) / (p (1 - p)) / n, got {g}"
# the target's gradient at p = 0.8, upstream 2, n = 1: 2 (ln 0.2 - ln 0.8) = -2 ln 4 = -2.772589
g_p, g_t = binary_cross_entropy_backward(
    np.array(2.0, dtype=np.float32),
    BinaryCrossEntropyLoss()(Tensor([0.8], requires_grad=True), Tensor([0.25], requires_grad=True)))
assert np.allclose(np.asarray(g_t, dtype=np.float64), [-2 * math.log(4.0)], rtol=1e-5), \
    f"targets that require grad get grad * (ln(1 - p) - ln p) / n, got {g_t}"
# p = 1 is clamped to 1 - eps: the target's gradient is finite
g_p, g_t = binary_cross_entropy_backward(
    one0, BinaryCrossEntropyLoss()(Tensor([1.0], dtype=np.float64, requires_grad=True),
                                   Tensor([1.0], dtype=np.float64, requires_grad=True)))
assert np.all(np.isfinite(g_t)), f"use the clamped p from ctx: the target's gradient stays finite, got {g_t}"
### END HIDDEN TESTS

# %% [markdown]
# ## 8. The rule table
#
# The backward pass finds a node's rule by its op name, in one dictionary (given).
# A new op (say `sqrt`) needs only a forward method that records `"sqrt"` and one
# line here.

# %% nbgrader={"grade": false, "grade_id": "autograd_rule_table", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
BACKWARD_RULES: dict[str, Callable[[np.ndarray, Any], GradPair]] = {
    "add": add_backward,
    "sub": sub_backward,
    "mul": mul_backward,
    "div": div_backward,
    "neg": neg_backward,
    "pow": pow_backward,
    "exp": exp_backward,
    "log": log_backward,
    "matmul": matmul_backward,
    "sum": sum_backward,
    "mean": mean_backward,
    "max": max_backward,
    "reshape": reshape_backward,
    "transpose": transpose_backward,
    "getitem": getitem_backward,
    "relu": relu_backward,
    "sigmoid": sigmoid_backward,
    "tanh": tanh_backward,
    "gelu": gelu_backward,
    "softmax": softmax_backward,
    "mse": mse_backward,
    "cross_entropy": cross_entropy_backward,
    "binary_cross_entropy": binary_cross_entropy_backward,
}

# %% [markdown]
# ## 9. Ordering the graph
#
# A node's gradient is complete only when **every** op that used it has sent its
# share. So the backward pass must visit a node after all of its users. Put the
# other way round: list the nodes so that each comes **after its inputs** (a
# *topological order*), then walk that list backwards, from the root.
#
# The textbook way is a recursive depth-first search: visit the inputs, then append
# the node. Recursion has a catch in Python: the interpreter stops at about 1,000
# nested calls, and a recurrent network unrolled over a long sequence, or a
# 10,000-step chain, is deeper than that. So we keep our own stack:
#
# * the stack holds pairs `(node, iterator over node._inputs)`;
# * look at the top pair and take its next input that requires grad and has not been
#   seen: mark it seen, push it with its own iterator (a leaf, which has no inputs,
#   can go straight into the order instead: a small saving per weight);
# * when the top node has no input left, pop it and append it to the order: all of
#   its inputs are already in the list.
#
# Only nodes with `requires_grad` are visited: constants (data, labels) need no
# gradient and neither does anything below them. The root itself is always in the
# order, last, whatever its `requires_grad`: a root that does not require grad
# recorded no inputs, so its order is just `[root]` (`backward` refuses such a root
# before it orders anything). Keep track of seen nodes by
# `id(node)` in a set (a tensor is not hashable by value). Look at the order for our
# small graph: leaves first, `L` last.

# %% nbgrader={"grade": false, "grade_id": "autograd_topological_order", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def topological_order(root: Any) -> list[Any]:
    """Nodes of the graph below `root` that require grad, each after its inputs; `root` is last
    (always listed, even when it does not require grad: then the order is `[root]`).

    Iterative depth-first search (no recursion), so graphs of any depth work.
    """
    ### BEGIN SOLUTION
    order = []
    seen = {id(root)}
    stack = [(root, iter(root._inputs))]
    while stack:
        node, inputs = stack[-1]
        for inp in inputs:
            if inp.requires_grad and id(inp) not in seen:
                seen.add(id(inp))
                if inp._inputs:
                    stack.append((inp, iter(inp._inputs)))
                    break
                order.append(inp)  # a leaf: nothing below it, done at once
        else:
            stack.pop()
            order.append(node)
    return order
    ### END SOLUTION


# %%
print([labels[id(n)] for n in topological_order(L)])


# %% nbgrader={"grade": false, "grade_id": "autograd_section1_graph", "locked": true, "schema_version": 3, "solution": false, "task": false}
def section1_graph() -> tuple[Any, ...]:
    """A fresh copy of the graph of section 1, L = (w x + b)^2 at x = 2, w = -3, b = 1.

    Returns x, w, b, u, z, L and the labels that name them; the tests below use it.
    """
    x = Tensor(2.0, requires_grad=True)
    w = Tensor(-3.0, requires_grad=True)
    b = Tensor(1.0, requires_grad=True)
    u = w * x
    z = u + b
    L = z**2
    labels = {id(x): "x", id(w): "w", id(b): "b", id(u): "u", id(z): "z", id(L): "L"}
    return x, w, b, u, z, L, labels


# %% nbgrader={"grade": true, "grade_id": "autograd_test_topological_order", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x, w, b, u, z, L, labels = section1_graph()
order = topological_order(L)
names = [labels[id(n)] for n in order]
assert len(order) == 6 and order[-1] is L, f"6 nodes (x, w, b, u, z, L), the root last; got {names}"
position = {id(n): i for i, n in enumerate(order)}
assert all(position[id(inp)] < position[id(n)] for n in order for inp in n._inputs), \
    f"every node must come after its inputs: {names}"
shared = Tensor(1.0, requires_grad=True)
diamond = (shared * 2.0) + (shared * 3.0)
assert len(topological_order(diamond)) == 4, \
    "a node used twice is listed once (shared, two products, the sum). Hint: a set of ids"
assert len(topological_order(shared * Tensor(2.0))) == 2, "constants are not visited"
plain = Tensor(2.0) * 3.0
assert len(topological_order(plain)) == 1 and topological_order(plain)[0] is plain, \
    "a root that does not require grad is still listed, alone: [root]"
deep = Tensor(0.0, requires_grad=True)
for _ in range(5000):
    deep = deep + 1.0
assert len(topological_order(deep)) == 5001, "a 5,000-op chain: use a stack, not recursion"
print("topological order: OK")
### BEGIN HIDDEN TESTS
# two paths of different length to the same leaf: y = a*a*a + a
a_h = Tensor(2.0, requires_grad=True)
sq = a_h * a_h
cube = sq * a_h
y_h = cube + a_h
order = topological_order(y_h)
position = {id(n): i for i, n in enumerate(order)}
assert len(order) == 4 and position[id(a_h)] < position[id(sq)] < position[id(cube)] < position[id(y_h)], \
    "y = a*a*a + a: 4 nodes, a first, then a*a, a*a*a, the sum; each after its inputs"
deep = Tensor(0.0, requires_grad=True)
for _ in range(20000):
    deep = deep * 1.0
assert len(topological_order(deep)) == 20001, "a 20,000-op chain: use a stack, not recursion"
with no_grad():
    quiet = (a_h * a_h).sum()
assert [id(n) for n in topological_order(quiet)] == [id(quiet)], \
    "a root computed under no_grad() requires no grad and recorded nothing: its order is [root]"
### END HIDDEN TESTS

# %% [markdown]
# ## 10. The backward pass
#
# Now put it together. `backward(root, grad=None)`:
#
# 1. **Start**: if `grad` is None, the root must be a single number (a loss) and its
#    gradient is 1; otherwise `grad` is given and must have the root's shape (given
#    code, with errors that say what went wrong).
# 2. **Order** the graph with `topological_order(root)`.
# 3. **Walk it from the root** (the reversed order), keeping the gradient arrived so
#    far for each node in a dictionary `grads` keyed by `id(node)`. For each node, take
#    its gradient out of `grads` (`pop`: the array is not needed afterwards, memory is
#    released as we go), then
#    * a **leaf** (`node._op is None`) that requires grad gets it **accumulated**
#      into `node.grad`: stored if `node.grad` is None, added (`+=`) otherwise.
#      Gradients of several `backward()` calls add up, which is what gradient
#      accumulation over small batches relies on (and why optimizers have
#      `zero_grad()`). `node.grad` is always an `np.ndarray` with the shape and the
#      dtype of `node.data` (see the 0-d trap below);
#    * any other node: look up its rule in `BACKWARD_RULES` by `node._op`, call it,
#      and for every input that requires grad, **un-broadcast** the returned gradient
#      to the input's shape (the one place where this happens) and add it to what
#      that input has collected in `grads`.
#
# ### Aliasing: when adding up, never add in place into a borrowed array
#
# Rules may return `grad` itself (add, sub's first input) or a view of it (reshape,
# sum's broadcast). So the same array can arrive at two inputs: in `y = a + b`,
# `a` and `b` get *the same array object*. If we stored it as `a.grad` and later did
# `a.grad += ...`, `b.grad` would change too. The rule of the loop:
#
# * when two gradients meet in `grads`, add them into a **new** array (`old + new`);
# * a leaf stores an array it **owns**: one the backward pass made itself (by
#   un-broadcasting or adding) or a new array from a rule. A rule's result that is
#   `grad` itself or a view (`array.base is not None`) is **copied** first. Copying
#   only when needed saves a copy of every weight gradient in every step.
#
# A rule's result is a new array exactly when it is not `grad` itself and not a view:
# `g_in is not g and g_in.base is None`.
#
# **The start is no exception.** `_initial_grad(root, grad)` (given) returns the
# gradient the pass starts from *and* whether the pass owns it: `True` for an array it
# made itself (the ones of a loss, or the caller's `grad` converted to the root's
# dtype), `False` for the caller's own array, which the pass only borrows. Keep that
# flag with the array, as for every gradient in `grads` (a pair `(array, owned)` per
# node works well): a borrowed start is copied before a leaf stores it, like a view.
# Where it shows: `backward(w, g)` on a leaf `w` must store a copy of `g`; storing `g`
# itself would make the next `backward` add into the caller's array.
#
# ### The 0-d trap: NumPy scalars are not arrays
#
# NumPy arithmetic on 0-d arrays does not return a 0-d array but a NumPy **scalar**:
# `np.array(2.0, dtype=np.float32) * np.array(3.0, dtype=np.float32)` is
# `np.float32(6.0)`, and `type(np.float32(6.0))` is not `np.ndarray`. The graph of
# section 1 is all 0-d, so the rules hand such scalars to its leaves, and a `.grad`
# stored as it arrives is a scalar: `+=` on it makes a new object, and code that
# expects an array (an optimizer's in-place update) breaks. So, before a leaf stores
# or adds a gradient `g` that is not an `np.ndarray` of the leaf's dtype, turn it into
# one: `g = np.asarray(g, dtype=node.data.dtype)` (a new array, owned by the pass).
# The same line handles a gradient of another dtype: a float32 weight multiplied by
# a float64 tensor receives a float64 gradient, and its `.grad` stays float32.

# %% nbgrader={"grade": false, "grade_id": "autograd_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _initial_grad(root: Any, grad: Any) -> tuple[np.ndarray, bool]:
    """The gradient the pass starts from, and whether the pass owns that array."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: the root does not require grad, so no graph was recorded for it. "
            "Was it computed under no_grad(), or from tensors with requires_grad=False?"
        )
    data = root.data
    if grad is None:
        if data.size != 1:
            raise ValueError(
                f"backward: grad=None works only for a root with one element (a loss), "
                f"but the root has shape {data.shape}; pass grad= an array of shape {data.shape}"
            )
        return np.ones(data.shape, dtype=data.dtype), True
    if not isinstance(grad, np.ndarray) and hasattr(grad, "_inputs"):
        grad = grad.data  # a Tensor
    grad = np.asarray(grad)
    if grad.shape != data.shape:
        raise ValueError(
            f"backward: grad must have the root's shape {data.shape}, got shape {grad.shape}"
        )
    if grad.dtype != data.dtype:
        return grad.astype(data.dtype), True
    return grad, False


def backward(root: Any, grad: Any = None) -> None:
    """Accumulate d(root)/d(leaf) into `.grad` of every leaf below `root` that requires grad.

    Args:
        root: a tensor produced by recorded operations (usually a scalar loss).
        grad: the gradient of some final quantity with respect to `root`, shape of
            `root`; None means 1 and requires `root` to have a single element.
    """
    start, start_owned = _initial_grad(root, grad)
    rules = BACKWARD_RULES
    ### BEGIN SOLUTION
    grads: dict[int, tuple[np.ndarray, bool]] = {id(root): (start, start_owned)}
    for node in reversed(topological_order(root)):
        entry = grads.pop(id(node), None)
        if entry is None:  # no gradient reached this node (a rule returned None)
            continue
        g, owned = entry
        op = node._op
        if op is None:  # a leaf that requires grad
            data = node.data
            if g.dtype != data.dtype or type(g) is not np.ndarray:  # NumPy gives 0-d results as scalars
                g, owned = np.array(g, dtype=data.dtype), True
            if node.grad is None:
                node.grad = g if owned else g.copy()
            else:
                node.grad += g
            continue
        try:
            rule = rules[op]
        except KeyError:
            raise NotImplementedError(
                f"backward: no rule for op {op!r}; known ops: {sorted(rules)}"
            ) from None
        for inp, g_in in zip(node._inputs, rule(g, node), strict=True):
            if g_in is None or not inp.requires_grad:
                continue
            shape = inp.data.shape
            if g_in.shape != shape:
                g_in = unbroadcast(g_in, shape)
                if g_in.shape != shape:
                    raise ValueError(
                        f"backward: the {op!r} rule gave a gradient of shape {g_in.shape} "
                        f"for an input of shape {shape}"
                    )
                fresh = True
            else:
                fresh = g_in is not g and g_in.base is None
            key = id(inp)
            previous = grads.get(key)
            if previous is None:
                grads[key] = (g_in, fresh)
            else:
                grads[key] = (previous[0] + g_in, True)
    ### END SOLUTION


# %% [markdown]
# Run it on the graph of section 1 and compare with the table we filled in by hand:
# $\bar w = -20$, $\bar x = 30$, $\bar b = -10$.
#
# Note: `Tensor.backward()` calls the package's `tinytorch.core.autograd.backward`,
# not the one in this notebook. To test *your* code, call `backward(L)` directly.

# %%
for leaf in (x, w, b):
    leaf.zero_grad()
backward(L)
print("x.grad", x.grad, "| w.grad", w.grad, "| b.grad", b.grad)
draw_graph(L, labels, grads=True)

# %% nbgrader={"grade": true, "grade_id": "autograd_test_backward_by_hand", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x, w, b, u, z, L, labels = section1_graph()
backward(L)
assert w.grad is not None, "w requires grad, so backward must fill w.grad"
assert float(w.grad) == -20.0, f"dL/dw = 2 (wx + b) x = -20, got {w.grad}"
assert float(x.grad) == 30.0, f"dL/dx = 2 (wx + b) w = 30, got {x.grad}"
assert float(b.grad) == -10.0, f"dL/db = 2 (wx + b) = -10, got {b.grad}"
assert u.grad is None and z.grad is None, "only leaves store .grad (u and z are intermediate)"
# y = a * a uses a twice: dy/da = 2a
a_t = Tensor(3.0, requires_grad=True)
backward(a_t * a_t)
assert float(a_t.grad) == 6.0, f"a used twice: the two contributions add, 3 + 3 = 6, got {a_t.grad}"
print("backward by hand: OK")
### BEGIN HIDDEN TESTS
# x = 0.5, w = 4, b = -1: z = 1, L = z^2 = 1; dL/dz = 2; dw = 2 x = 1, dx = 2 w = 8, db = 2 (by hand)
xh = Tensor(0.5, requires_grad=True)
wh = Tensor(4.0, requires_grad=True)
bh = Tensor(-1.0, requires_grad=True)
backward((wh * xh + bh) ** 2)
got = [float(xh.grad), float(wh.grad), float(bh.grad)]
assert got == [8.0, 1.0, 2.0], f"the chain rule from the root to every leaf, node by node: got dx, dw, db = {got}"
# y = sum(exp(v) * 2) for v = [0, ln 2]: dy/dv = 2 exp(v) = [2, 4]
vh = Tensor([0.0, math.log(2.0)], requires_grad=True)
backward((vh.exp() * 2.0).sum())
assert np.allclose(np.asarray(vh.grad, dtype=np.float64), [2.0, 4.0], rtol=1e-6), f"d sum(2 exp(v))/dv = 2 exp(v), got {vh.grad}"
# a deep chain: y = a * 1.001 applied 3000 times; dy/da = 1.001^3000 (closed form)
ah = Tensor(1.0, requires_grad=True, dtype=np.float64)
yh = ah
for _ in range(3000):
    yh = yh * 1.001
backward(yh)
assert abs(float(ah.grad) - 1.001**3000) < 1e-9 * 1.001**3000, f"a 3,000-op chain: the product of the local slopes, got {ah.grad}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_backward_leaf_grads", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x, w, b, u, z, L, labels = section1_graph()
backward(L)  # the graph of section 1: every tensor is 0-d
assert isinstance(w.grad, np.ndarray), (
    f"w.grad must be a NumPy array (0-d here), got {type(w.grad).__name__}: arithmetic on 0-d arrays "
    "gives NumPy scalars; store np.asarray(g, dtype=node.data.dtype) (the 0-d trap above)"
)
assert w.grad.shape == () and w.grad.dtype == np.float32, f"w.grad has w's shape () and dtype float32, got {w.grad.shape} {w.grad.dtype}"
w32 = Tensor([1.0, 2.0], requires_grad=True)
backward((w32 * Tensor([3.0, 4.0], dtype=np.float64)).sum())
assert w32.grad.dtype == np.float32, f"a float32 leaf gets a float32 grad, even from a float64 product; got {w32.grad.dtype}"
print("leaf gradients: OK")
### BEGIN HIDDEN TESTS
# accumulation on a 0-d leaf keeps an array: 2 + 2 = 4 (by hand)
s_h = Tensor(5.0, requires_grad=True)
backward(s_h * 2.0)
backward(s_h * 2.0)
assert isinstance(s_h.grad, np.ndarray) and s_h.grad.shape == () and float(s_h.grad) == 4.0, \
    f"a 0-d leaf keeps a 0-d np.ndarray grad across backward calls (the 0-d trap), got {s_h.grad!r}"
# float64 leaves get float64 grads; a float64 leaf times a float32 tensor too
d64 = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
backward((d64 * Tensor([0.5, 0.5])).sum())
assert d64.grad.dtype == np.float64 and np.allclose(d64.grad, [0.5, 0.5]), \
    f"node.grad has the dtype of node.data (float64 here), got {d64.grad.dtype}"
m_h = Tensor(np.ones((2, 3)), requires_grad=True)
backward((m_h * m_h).sum())
assert type(m_h.grad) is np.ndarray and m_h.grad.shape == (2, 3), f"grad has the leaf's shape (2, 3), got {m_h.grad.shape}"
### END HIDDEN TESTS

# %% [markdown]
# ### Broadcasting and accumulation
#
# A linear layer `y = x @ W + b` adds a bias of shape `(out,)` to a batch of shape
# `(N, out)`; the bias gradient is the column sum of the upstream gradient. With the
# sum of all outputs as the loss, the upstream gradient is all ones, so `b.grad` is
# `N` everywhere and `W.grad = x^T @ ones`: each entry is the column sum of `x`.
#
# Calling `backward` twice without `zero_grad()` adds the two gradients: that is
# *accumulation*, used to simulate a big batch with several small ones. Three tests
# follow: un-broadcasting inside the pass, accumulation over calls, and aliasing
# (the rule of the loop above).

# %%
rng = np.random.default_rng(0)
x_batch = Tensor(rng.standard_normal((5, 3)))
W = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
bias = Tensor(np.zeros(2), requires_grad=True)
out = (x_batch @ W + bias).sum()
backward(out)
print("bias.grad", bias.grad, "(N = 5 rows)")
print("W.grad\n", W.grad, "\ncolumn sums of x", x_batch.data.sum(axis=0))
backward(out)
print("after a second backward, bias.grad", bias.grad)


# %% nbgrader={"grade": false, "grade_id": "autograd_example_batch", "locked": true, "schema_version": 3, "solution": false, "task": false}
def example_batch() -> tuple[Any, Any, Any]:
    """A fresh copy of the batch above (the same numbers): x_batch (5, 3), W (3, 2), bias (2,)."""
    rng = np.random.default_rng(0)
    x_batch = Tensor(rng.standard_normal((5, 3)))
    W = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    bias = Tensor(np.zeros(2), requires_grad=True)
    return x_batch, W, bias


# %% nbgrader={"grade": true, "grade_id": "autograd_test_backward_broadcast", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x_batch, W, bias = example_batch()
backward((x_batch @ W + bias).sum())
assert bias.grad.shape == (2,), f"bias.grad has the bias's shape (2,), got {bias.grad.shape}"
assert np.allclose(bias.grad, 5.0), f"bias used by 5 rows: gradient 5, got {bias.grad}"
expected_W = np.repeat(x_batch.data.sum(axis=0)[:, None], 2, axis=1)  # x^T @ ones, by NumPy
assert np.allclose(W.grad, expected_W, atol=1e-5), f"W.grad = x^T @ ones:\n{expected_W}\ngot\n{W.grad}"
print("broadcasting in the backward pass: OK")
### BEGIN HIDDEN TESTS
# (3, 1) + (1, 4) -> (3, 4): with upstream ones, the column gets 4 each, the row 3 each (counted)
col = Tensor(np.zeros((3, 1)), requires_grad=True)
row = Tensor(np.zeros((1, 4)), requires_grad=True)
backward((col + row).sum())
assert col.grad.shape == (3, 1) and np.allclose(col.grad, 4.0), f"a (3, 1) column stretched over 4 columns: 4 each, got {col.grad}"
assert row.grad.shape == (1, 4) and np.allclose(row.grad, 3.0), f"a (1, 4) row stretched over 3 rows: 3 each, got {row.grad}"
# scalar times matrix: ds/da for s = sum(a * M) is sum(M); M = [[1, 2], [3, 4]] -> 10
a_s = Tensor(2.0, requires_grad=True)
backward((a_s * Tensor([[1.0, 2.0], [3.0, 4.0]])).sum())
assert a_s.grad.shape == () and float(a_s.grad) == 10.0, f"a 0-d tensor used by 4 elements: the sum of their slopes, got {a_s.grad}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_backward_accumulate", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x_batch, W, bias = example_batch()
backward((x_batch @ W + bias).sum())
backward((x_batch @ W + bias).sum())
assert np.allclose(bias.grad, 10.0), f"second backward adds: 5 + 5 = 10, got {bias.grad}"
bias.zero_grad()
backward((x_batch @ W + bias).sum())
assert np.allclose(bias.grad, 5.0), f"after zero_grad() it starts again: 5, got {bias.grad}"
print("accumulation: OK")
### BEGIN HIDDEN TESTS
v_h = Tensor([1.0, -1.0], requires_grad=True)
for _ in range(3):
    backward((v_h * v_h).sum())
assert np.allclose(np.asarray(v_h.grad, dtype=np.float64), [6.0, -6.0]), f"three calls add three gradients 2v, got {v_h.grad}"
backward((v_h * 1.0).sum())
assert np.allclose(np.asarray(v_h.grad, dtype=np.float64), [7.0, -5.0]), f"a fourth call adds its gradient too, got {v_h.grad}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_backward_aliasing", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# c = a + b hands the same array to a and b; accumulating into one must not touch the other
a_t = Tensor([1.0, 2.0], requires_grad=True)
b_t = Tensor([3.0, 4.0], requires_grad=True)
backward(a_t + b_t, np.array([1.0, 1.0], dtype=np.float32))
backward(a_t * 1.0, np.array([1.0, 1.0], dtype=np.float32))
assert np.allclose(a_t.grad, 2.0) and np.allclose(b_t.grad, 1.0), \
    f"a.grad and b.grad must be separate arrays (copy views before storing): {a_t.grad}, {b_t.grad}"
upstream = np.array([1.0, 1.0], dtype=np.float32)
c_t = Tensor([0.0, 0.0], requires_grad=True)
backward(c_t + 1.0, upstream)
backward(c_t + 1.0, upstream)
assert np.allclose(upstream, 1.0), "backward must never change the caller's grad array"
leaf_root = Tensor([0.0, 0.0], requires_grad=True)
backward(leaf_root, upstream)
backward(leaf_root, upstream)
assert np.allclose(upstream, 1.0) and np.allclose(leaf_root.grad, 2.0), \
    "a leaf as the root: _initial_grad says the caller's grad is not owned, so the leaf stores a copy"
print("aliasing: OK")
### BEGIN HIDDEN TESTS
# sum's rule returns a read-only broadcast view: a leaf must store a copy it can add into
s_h = Tensor(np.zeros((2, 2)), requires_grad=True)
try:
    backward(s_h.sum())
    backward(s_h.sum())
except ValueError as error:  # "output array is read-only"
    raise AssertionError(f"a view from a rule (np.broadcast_to) must be copied before it is stored ({error})") from None
assert np.allclose(s_h.grad, 2.0), f"two backward calls through sum: 1 + 1 = 2 everywhere, got {s_h.grad}"
# reshape's rule returns a view of grad: the caller's array must stay as it was
r_h = Tensor(np.zeros(4), requires_grad=True)
up = np.ones((2, 2), dtype=np.float32)
backward(r_h.reshape(2, 2), up)
backward(r_h.reshape(2, 2), up)
assert np.allclose(up, 1.0) and np.allclose(r_h.grad, 2.0), "a view of the caller's grad must be copied, never added into"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "autograd_test_backward_start", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
v_t = Tensor([1.0, 2.0], requires_grad=True)
backward(v_t * 2.0, np.array([1.0, 0.5], dtype=np.float32))
assert np.allclose(v_t.grad, [2.0, 1.0]), f"with grad=[1, 0.5]: 2 * grad = [2, 1], got {v_t.grad}"
print("backward with a given grad: OK")
### BEGIN HIDDEN TESTS
m_h = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
backward(m_h * m_h, np.array([[1.0, 0.0], [0.5, -1.0]], dtype=np.float32))
assert np.allclose(np.asarray(m_h.grad, dtype=np.float64), [[2.0, 0.0], [3.0, -8.0]]), \
    f"the pass starts from the grad given (here 2 m * grad), got {m_h.grad}"
one_h = Tensor([3.0], requires_grad=True)
backward(one_h * 4.0)
assert np.allclose(np.asarray(one_h.grad, dtype=np.float64), [4.0]), f"grad=None on a one-element root starts from 1, got {one_h.grad}"
### END HIDDEN TESTS

# %% [markdown]
# ### Errors that help
#
# `backward()` on a tensor with many elements has no natural starting gradient
# (which of the elements is "the" loss?), so it asks for one. A root that records no
# graph has nothing to walk. Both checks are given (`_initial_grad`); see them at work:

# %%
for bad_start in (lambda: backward(Tensor([1.0, 2.0], requires_grad=True) * 2.0),
                  lambda: backward(Tensor([1.0]) * 2.0)):
    try:
        bad_start()
    except (ValueError, RuntimeError) as error:
        print(f"{type(error).__name__}: {error}")

# %% [markdown]
# ## 11. Turning recording off: `no_grad`
#
# During evaluation nobody calls `backward()`, and recording the graph would only
# keep every intermediate array alive. Module 01 put the switch where the recording
# happens; this module re-exports it, so `from tinytorch.core.autograd import no_grad`
# works as well:
#
# ```python
# with no_grad():
#     predictions = model(test_inputs)   # nothing recorded, nothing kept
# ```
#
# Inside the block, results have `requires_grad == False` and `_op is None`, so a
# `backward()` through them would raise the error above. The switch is restored when
# the block ends, even after an exception.

# %%
with no_grad():
    quiet = w * x
    print("inside no_grad: is_grad_enabled() =", is_grad_enabled(), "| recorded op:", quiet._op)
print("after the block:", is_grad_enabled(), "| recorded op:", (w * x)._op)

# %%
p_t = Tensor([1.0, 2.0], requires_grad=True)
with no_grad():
    q_t = (p_t * 3.0).sum()
print("computed under no_grad: op", q_t._op, "| requires_grad", q_t.requires_grad)
backward((p_t * 3.0).sum())
print("recorded again after the block: p.grad =", p_t.grad)

# %% [markdown]
# ## 12. Checking every rule numerically
#
# A rule can be wrong in subtle ways (a missing transpose, a sign). The independent
# check is the definition of the derivative: nudge one input entry by $\pm h$ and
# watch the loss,
#
# $$\frac{\partial L}{\partial a_i} \approx \frac{L(a + h e_i) - L(a - h e_i)}{2h}.$$
#
# This *central difference* has an error of order $h^2$; in float64 with
# $h = 10^{-6}$ it agrees with a correct analytic gradient to about 7 digits. It
# costs two forward passes per entry, fine for a test and hopeless for training.
# Below, `gradient_check` (given) compares your `backward` with it for a function
# of several float64 tensors, reducing the output to a scalar with a fixed random
# weighting (so that every output entry matters).

# %% nbgrader={"grade": false, "grade_id": "autograd_gradient_check", "locked": true, "schema_version": 3, "solution": false, "task": false}
def gradient_check(f: Callable[..., Any], *arrays: np.ndarray, h: float = 1e-6, seed: int = 0) -> float:
    """Largest difference between `backward` and central differences for f(*tensors).

    Each array becomes a float64 tensor requiring grad; the output of f is reduced
    to a scalar with fixed random weights before differentiating.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    probe = np.asarray(f(*[Tensor(a, dtype=np.float64) for a in arrays]).data)
    weights = np.random.default_rng(seed).standard_normal(probe.shape)

    def scalar(*values: np.ndarray) -> float:
        with no_grad():
            return float((np.asarray(f(*[Tensor(v, dtype=np.float64) for v in values]).data) * weights).sum())

    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = f(*tensors)
    backward(out, weights)
    worst = 0.0
    for k, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            plus, minus = [v.copy() for v in arrays], [v.copy() for v in arrays]
            plus[k][i] += h
            minus[k][i] -= h
            numeric[i] = (scalar(*plus) - scalar(*minus)) / (2 * h)
        analytic = tensors[k].grad if tensors[k].grad is not None else np.zeros_like(a)
        worst = max(worst, float(np.max(np.abs(analytic - numeric), initial=0.0)))
    return worst


# %% nbgrader={"grade": true, "grade_id": "autograd_test_gradient_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
rng = np.random.default_rng(1)
A = rng.standard_normal((3, 4))
B = rng.standard_normal((4, 2))
pos = rng.uniform(0.5, 2.0, (3, 4))
checks = {
    "add (broadcast)": (lambda a, b: a + b, A, rng.standard_normal(4)),
    "sub (broadcast)": (lambda a, b: a - b, A, rng.standard_normal((3, 1))),
    "mul (broadcast)": (lambda a, b: a * b, A, rng.standard_normal(4)),
    "div": (lambda a, b: a / b, A, pos),
    "neg, pow": (lambda a: -(a**3), A),
    "exp, log": (lambda a: (a.exp() + a.log()), pos),
    "matmul": (lambda a, b: a @ b, A, B),
    "sum, mean": (lambda a: a.sum(axis=0) + a.mean(axis=1, keepdims=True).sum(), A),
    "max": (lambda a: a.max(axis=1), A),
    "reshape, transpose": (lambda a: a.reshape(2, 6).T, A),
    "getitem": (lambda a: a[1:, ::2], A),
    "relu, sigmoid, tanh": (lambda a: ReLU()(a) + Sigmoid()(a) * Tanh()(a), A),
    "gelu": (lambda a: GELU()(a), A),
    "softmax": (lambda a: Softmax(axis=0)(a), A),
    "mse": (lambda a, b: MSELoss()(a, b), A, rng.standard_normal((3, 4))),
    "cross_entropy": (lambda a: CrossEntropyLoss()(a, np.array([0, 3, 1])), A),
    "binary_cross_entropy": (lambda a: BinaryCrossEntropyLoss()(Sigmoid()(a), np.array([[1.0, 0, 1, 0]] * 3)), A),
}
for name, (f, *arrays) in checks.items():
    error = gradient_check(f, *arrays)
    assert error < 1e-6, f"{name}: backward differs from central differences by {error:.2e}"
print("every rule agrees with central differences: OK")
### BEGIN HIDDEN TESTS
# more shapes, compared against central differences (an independent computation)
rng_h = np.random.default_rng(7)
hidden = {
    "batched matmul": (lambda a, b: a @ b, rng_h.standard_normal((2, 3, 4)), rng_h.standard_normal((4, 5))),
    "vector matmul": (lambda a, b: a @ b, rng_h.standard_normal(4), rng_h.standard_normal((4, 3))),
    "matrix-vector": (lambda a, b: a @ b, rng_h.standard_normal((3, 4)), rng_h.standard_normal(4)),
    "pow 0.5": (lambda a: a**0.5, rng_h.uniform(0.5, 2.0, (2, 3))),
    "softmax rows": (lambda a: Softmax()(a), rng_h.standard_normal((4, 5))),
    "fancy getitem": (lambda a: a[np.array([0, 2, 0])], rng_h.standard_normal((3, 2))),
    "cross entropy, soft targets": (
        lambda a: CrossEntropyLoss()(a, np.array([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]])),
        rng_h.standard_normal((2, 3)),
    ),
    "mse both sides": (lambda a, b: MSELoss()(a, b), rng_h.standard_normal(5), rng_h.standard_normal(5)),
    "transpose axes": (lambda a: a.transpose(2, 0, 1), rng_h.standard_normal((2, 3, 4))),
    "transpose negative axes": (lambda a: a.transpose(-1, 0, -2), rng_h.standard_normal((2, 3, 4))),
    "cross entropy, tensor targets": (
        lambda a, t: CrossEntropyLoss()(a, t), rng_h.standard_normal((2, 3)), rng_h.uniform(0.1, 0.9, (2, 3)),
    ),
    "bce, tensor targets": (
        lambda a, t: BinaryCrossEntropyLoss()(Sigmoid()(a), t), rng_h.standard_normal((2, 3)),
        rng_h.uniform(0.1, 0.9, (2, 3)),
    ),
    "max all": (lambda a: a.max(), rng_h.standard_normal((3, 3))),
}
for name, (f, *arrays) in hidden.items():
    error = gradient_check(f, *arrays)
    assert error < 1e-6, f"{name}: backward differs from central differences by {error:.2e}; check that op's rule"
### END HIDDEN TESTS

# %% [markdown]
# ## 13. Systems: what the backward pass costs
#
# **Time.** Every op's rule does about as much arithmetic as the op itself, and a
# matrix product's rule does two products. So a backward pass costs one to two
# forward passes; a training step (forward + backward) about three. On top comes a
# fixed Python cost per node: ordering, a dictionary lookup for the rule, a call.
# For big arrays that is negligible; for tiny ones (a small batch through a small
# network) it is most of the time, which is why the loop above avoids needless work
# (no recursion, no copies of gradients it owns, no products for constants).
#
# **Memory.** Until `backward()` runs, the graph keeps every array a rule will
# need alive: inputs of `mul` and `matmul`, outputs of `exp` and the activations,
# the softmax probabilities of the cross entropy. That is why training needs far
# more memory than inference, and why `no_grad()` matters.
#
# Below: a 3-layer MLP on a batch of 64, timing forward and backward, and counting
# the bytes the graph holds.

# %%
import time

rng = np.random.default_rng(0)
layer_sizes = [784, 256, 128, 10]
weights = [Tensor(rng.standard_normal((i, o)) * 0.05, requires_grad=True)
           for i, o in zip(layer_sizes[:-1], layer_sizes[1:], strict=True)]
biases = [Tensor(np.zeros(o), requires_grad=True) for o in layer_sizes[1:]]
images = Tensor(rng.standard_normal((64, 784)))
classes = rng.integers(0, 10, 64)
relu, cross_entropy = ReLU(), CrossEntropyLoss()


def mlp_loss() -> Any:
    h = images
    for k, (Wk, bk) in enumerate(zip(weights, biases, strict=True)):
        h = h @ Wk + bk
        if k < len(weights) - 1:
            h = relu(h)
    return cross_entropy(h, classes)


repeats = 50
start = time.perf_counter()
for _ in range(repeats):
    loss = mlp_loss()
forward_ms = (time.perf_counter() - start) / repeats * 1e3
start = time.perf_counter()
for _ in range(repeats):
    backward(loss)
backward_ms = (time.perf_counter() - start) / repeats * 1e3
with no_grad():
    start = time.perf_counter()
    for _ in range(repeats):
        mlp_loss()
    inference_ms = (time.perf_counter() - start) / repeats * 1e3


def graph_bytes(root: Any) -> int:
    """Bytes of every distinct array the graph below `root` keeps alive (data and saved context)."""
    seen, total = set(), 0
    for node in topological_order(root):
        extra = node._ctx if isinstance(node._ctx, tuple) else (node._ctx,)
        for arr in (node.data, *extra, *(i.data for i in node._inputs)):
            if isinstance(arr, np.ndarray) and id(arr) not in seen:
                seen.add(id(arr))
                total += arr.nbytes
    return total


nodes = len(topological_order(loss))
print(f"graph: {nodes} nodes, {graph_bytes(loss) / 1024:.0f} KiB held for backward")
print(f"forward {forward_ms:.2f} ms | backward {backward_ms:.2f} ms | forward under no_grad {inference_ms:.2f} ms")
plt.figure(figsize=(5, 3))
plt.bar(["forward", "backward", "no_grad forward"], [forward_ms, backward_ms, inference_ms],
        color=["#7aa6e0", "#e0a07a", "#9ccf9c"])
plt.ylabel("milliseconds per batch of 64")
plt.title("A training step is forward + backward")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Depth.** The ordering is iterative, so depth costs only time, linearly:

# %%
for depth in (1_000, 10_000):
    leaf = Tensor(1.0, requires_grad=True, dtype=np.float64)
    chain = leaf
    for _ in range(depth):
        chain = chain * 1.0001
    start = time.perf_counter()
    backward(chain)
    elapsed = time.perf_counter() - start
    print(f"{depth:>6} ops: backward {elapsed * 1e3:7.2f} ms ({elapsed / depth * 1e6:.2f} us per node), "
          f"grad {float(leaf.grad):.6f} vs 1.0001^{depth} = {1.0001**depth:.6f}")

# %% [markdown]
# ## Summary
#
# You wrote a backward rule for every op of the course, un-broadcasting in one
# place, an iterative topological order, and the backward pass that accumulates
# gradients into the leaves without aliasing. `loss.backward()` now works for every
# network built from modules 01 to 04, and module 07 uses the gradients to update
# the weights.
