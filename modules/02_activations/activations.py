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
# # Module 02: Activations
#
# A linear layer computes $xW + b$. Stack two of them and you get
# $(xW_1 + b_1)W_2 + b_2 = x(W_1W_2) + (b_1W_2 + b_2)$: one linear layer again. Without
# something non-linear in between, a hundred layers can draw nothing but straight
# lines (the XOR milestone of this course is exactly a problem no straight line
# solves). An **activation function** is that something: a simple function applied
# to every number between two layers.
#
# In this module you write five of them on the Tensor of module 01:
#
# | class | formula | used for |
# |---|---|---|
# | `ReLU` | $\max(x, 0)$ | the default hidden activation |
# | `Sigmoid` | $1/(1 + e^{-x})$ | probabilities of yes/no answers |
# | `Tanh` | $(e^x - e^{-x})/(e^x + e^{-x})$ | zero-centred squashing, recurrent networks |
# | `GELU` | $\tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715x^3)))$ | transformers |
# | `Softmax` | $e^{x_i} / \sum_j e^{x_j}$ | a probability distribution over classes |
#
# Each is a small class without parameters, called like a function:
# `ReLU()(x)` returns a new Tensor and records its op (`"relu"`, ...) so that module
# 06 can differentiate it. Two things make these more than one-liners: **numerical
# stability** (`exp(1000)` is `inf` in any float format) and **float32**: the result
# keeps the input's shape and dtype (float32 stays float32, float64 stays float64).
# The input itself is never changed: its array keeps its numbers.
#
# Each activation has its own tests; the hidden tests that grade the notebook check
# the same rules with other numbers.
#
# **What you need**: module 01 (Tensor, `Tensor._from_op`), and `np.exp`, `np.tanh`.

# %% nbgrader={"grade": false, "grade_id": "activations_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor

__all__ = ["GELU", "ReLU", "Sigmoid", "Softmax", "Tanh"]


def _check_input(x: Any, name: str) -> np.ndarray:
    """The data of `x` if it is a floating-point Tensor; a clear error otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name}: x must be a Tensor, got {type(x).__name__}; wrap the data first: Tensor(x)"
        )
    if x.data.dtype.kind != "f":
        raise TypeError(
            f"{name}: x must have a floating dtype, got {x.data.dtype}; "
            "convert it, e.g. Tensor(x.data, dtype=np.float32)"
        )
    return x.data


# %% [markdown]
# The helper `_check_input` (given) turns a wrong argument into a message that says
# what was passed and what to do, instead of a NumPy error three calls deep.
#
# ## 1. ReLU
#
# $$\text{ReLU}(x) = \max(x, 0)$$
#
# Zero for negative inputs, the identity for positive ones. It costs one comparison,
# its slope is exactly 1 wherever it is active (gradients pass through deep stacks
# undiminished), and it made deep networks trainable around 2010. Its slope at 0 is
# taken as 0.
#
# Use `np.maximum(data, 0)`: with a Python `0` NumPy keeps float32 (a Python number
# adapts to the array's dtype). Then record the op:
# `Tensor._from_op(result, "relu", (x,))`. The backward rule needs only the output
# (the slope is 1 where the output is positive), so nothing goes into `_ctx`.

# %% nbgrader={"grade": false, "grade_id": "activations_relu", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class ReLU:
    """max(x, 0) elementwise.

    Records op ``"relu"`` with ``_inputs == (x,)`` and ``_ctx is None`` (the backward
    rule uses the output: slope 1 where ``out > 0``, else 0).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "ReLU")
        ### BEGIN SOLUTION
        return Tensor._from_op(np.maximum(data, 0), "relu", (x,))
        ### END SOLUTION

    def __repr__(self) -> str:
        return "ReLU()"


# %%
print(ReLU()(Tensor([-2.0, -0.5, 0.0, 0.5, 2.0])))

# %% nbgrader={"grade": true, "grade_id": "activations_test_relu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
r = ReLU()(Tensor([-2.0, 0.0, 3.0]))
assert isinstance(r, Tensor), f"ReLU must return a Tensor, got {type(r).__name__}"
assert np.array_equal(r.data, [0.0, 0.0, 3.0]), f"ReLU([-2, 0, 3]) = [0, 0, 3], got {r.data}"
assert r.dtype == np.float32, f"float32 in, float32 out; got {r.dtype}. Hint: compare with a Python 0"
assert ReLU()(Tensor([-1.0], dtype=np.float64)).dtype == np.float64, "float64 in, float64 out"
x_rg = Tensor([1.0, -1.0], requires_grad=True)
out_rg = ReLU()(x_rg)
assert out_rg._op == "relu" and out_rg._inputs[:1] == (x_rg,), \
    "record the op with Tensor._from_op(data, 'relu', (x,))"
assert np.array_equal(x_rg.data, [1.0, -1.0]), f"x itself must not change, got {x_rg.data}"
print("ReLU: OK")
### BEGIN HIDDEN TESTS
# values by hand; float64 and a 2-D shape are kept
r64 = ReLU()(Tensor([[-1e30, 1e30], [0.0, -0.0]], dtype=np.float64))
assert np.dtype(r64.dtype) == np.float64 and tuple(r64.shape) == (2, 2), \
    f"ReLU keeps the input's shape and dtype (float64 stays float64), got {r64.shape} {r64.dtype}"
assert np.array_equal(np.asarray(r64.data, dtype=np.float64), [[0.0, 1e30], [0.0, 0.0]]), \
    f"ReLU(x) = max(x, 0) element by element, got {r64.data}"
x_h = Tensor([0.25, -0.25])
ReLU()(x_h)
assert np.array_equal(x_h.data, np.array([0.25, -0.25], dtype=np.float32)), \
    f"the input itself must not change (return a new array), got {x_h.data}"
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Sigmoid, computed without overflow
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}}$$
#
# squashes any number into $(0, 1)$: $\sigma(0) = \tfrac12$, $\sigma(x) \to 1$ for
# large $x$, $\sigma(-x) = 1 - \sigma(x)$.
#
# The formula as written breaks for $x = -1000$: $e^{1000}$ overflows to `inf`
# (NumPy warns, and in a graded notebook a warning on stderr fails the test). The
# answer, $1/(1+\infty) = 0$, happens to be right, but only by luck, and the
# warning still escapes. The fix is to **never exponentiate a positive number**.
# With $e = e^{-|x|}$, which lies in $(0, 1]$:
#
# $$\sigma(x) = \begin{cases} \dfrac{1}{1 + e} & x \ge 0 \\[2mm] \dfrac{e}{1 + e} & x < 0 \end{cases}$$
#
# (for $x < 0$, multiply numerator and denominator of $1/(1+e^{-x})$ by $e^{x}$).
# Compute `e = np.exp(-np.abs(data))` and `r = 1 / (1 + e)` once (the second case
# is `e * r`), then choose per element with `np.where`: both branches are finite
# everywhere, so nothing overflows.
#
# The backward rule uses the output: $\sigma' = \sigma(1-\sigma)$. `_ctx` stays None.

# %% nbgrader={"grade": false, "grade_id": "activations_sigmoid", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Sigmoid:
    """1 / (1 + exp(-x)) elementwise, without overflow for any finite x.

    Records op ``"sigmoid"`` with ``_inputs == (x,)`` and ``_ctx is None`` (the
    backward rule uses the output s: slope ``s * (1 - s)``).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "Sigmoid")
        ### BEGIN SOLUTION
        e = np.exp(-np.abs(data))  # in (0, 1]: never overflows
        r = 1.0 / (1.0 + e)  # sigmoid(|x|)
        out = np.where(data >= 0, r, e * r)
        return Tensor._from_op(out, "sigmoid", (x,))
        ### END SOLUTION

    def __repr__(self) -> str:
        return "Sigmoid()"


# %% [markdown]
# Two tests: the values of the sigmoid (with its dtype and its record), then inputs
# far from 0, where the formula as written overflows.

# %% nbgrader={"grade": true, "grade_id": "activations_test_sigmoid", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
s = Sigmoid()(Tensor([0.0, 2.0, -2.0]))
assert isinstance(s, Tensor), f"Sigmoid must return a Tensor, got {type(s).__name__}"
assert abs(float(s.data[0]) - 0.5) < 1e-7, f"sigmoid(0) = 0.5, got {s.data[0]}"
# 1 / (1 + e^-2) = 0.8807970779778823 (closed form, math.exp)
assert abs(float(s.data[1]) - 1 / (1 + math.exp(-2))) < 1e-6, f"sigmoid(2) = 0.880797, got {s.data[1]}"
assert abs(float(s.data[1] + s.data[2]) - 1.0) < 1e-6, "sigmoid(-x) = 1 - sigmoid(x)"
assert s.dtype == np.float32, f"float32 in, float32 out; got {s.dtype}"
assert Sigmoid()(Tensor([1.0], dtype=np.float64)).dtype == np.float64, "float64 in, float64 out"
assert Sigmoid()(Tensor([1.0], requires_grad=True))._op == "sigmoid", "record op 'sigmoid'"
print("Sigmoid: OK")
### BEGIN HIDDEN TESTS
# the formula 1 / (1 + e^-x) per element with math.exp, in float64
xs = [-30.0, -3.0, 0.5, 30.0]
got = np.asarray(Sigmoid()(Tensor(xs, dtype=np.float64)).data, dtype=np.float64)
want = [1 / (1 + math.exp(-v)) for v in xs]
assert np.allclose(got, want, rtol=1e-12, atol=0), \
    f"in float64, sigmoid must match 1 / (1 + e^-x) to float64 precision, also far from 0; got {got}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "activations_test_sigmoid_stable", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("error")  # an overflow warning becomes an error here
    try:
        far = Sigmoid()(Tensor([-1000.0, 1000.0]))
    except RuntimeWarning as warning:
        raise AssertionError(
            f"sigmoid(+-1000) overflowed ({warning}). Hint: only ever compute exp(-|x|)"
        ) from None
assert np.array_equal(far.data, [0.0, 1.0]), f"sigmoid(-1000) = 0, sigmoid(1000) = 1, got {far.data}"
print("Sigmoid without overflow: OK")
### BEGIN HIDDEN TESTS
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        big = Sigmoid()(Tensor([-1e38, 1e38, -1e300, 1e300], dtype=np.float64))
    except RuntimeWarning as warning:
        raise AssertionError(f"sigmoid of huge inputs must not warn ({warning}). "
                             "Hint: only ever compute exp(-|x|)") from None
assert np.array_equal(np.asarray(big.data, dtype=np.float64), [0.0, 1.0, 0.0, 1.0]), \
    f"far from 0 the sigmoid is exactly 0 (left) or 1 (right), got {big.data}"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Tanh
#
# $$\tanh(x) = \frac{e^x - e^{-x}}{e^x + e^{-x}} = 2\sigma(2x) - 1$$
#
# has the S shape of the sigmoid, but from $-1$ to $1$ and centred at 0, which keeps
# the next layer's inputs centred. `np.tanh` computes it stably (it does not
# evaluate the fraction above). The backward rule uses the output:
# $\tanh' = 1 - \tanh^2$. `_ctx` stays None.

# %% nbgrader={"grade": false, "grade_id": "activations_tanh", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Tanh:
    """tanh(x) elementwise.

    Records op ``"tanh"`` with ``_inputs == (x,)`` and ``_ctx is None`` (the backward
    rule uses the output y: slope ``1 - y**2``).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "Tanh")
        ### BEGIN SOLUTION
        return Tensor._from_op(np.tanh(data), "tanh", (x,))
        ### END SOLUTION

    def __repr__(self) -> str:
        return "Tanh()"


# %% nbgrader={"grade": true, "grade_id": "activations_test_tanh", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

t = Tanh()(Tensor([0.0, 1.0, -1000.0]))
assert isinstance(t, Tensor), f"Tanh must return a Tensor, got {type(t).__name__}"
assert float(t.data[0]) == 0.0, f"tanh(0) = 0, got {t.data[0]}"
assert abs(float(t.data[1]) - math.tanh(1.0)) < 1e-6, f"tanh(1) = 0.761594, got {t.data[1]}"
assert float(t.data[2]) == -1.0, f"tanh(-1000) = -1 (np.tanh never overflows), got {t.data[2]}"
assert t.dtype == np.float32, f"float32 in, float32 out; got {t.dtype}"
assert Tanh()(Tensor([1.0], requires_grad=True))._op == "tanh", "record op 'tanh'"
print("Tanh: OK")
### BEGIN HIDDEN TESTS
# the formula per element with math.tanh, in float64
got = np.asarray(Tanh()(Tensor([[-0.3, 2.0]], dtype=np.float64)).data, dtype=np.float64)
assert got.shape == (1, 2), f"Tanh keeps the input's shape, got {got.shape}"
assert np.allclose(got, [[math.tanh(-0.3), math.tanh(2.0)]], rtol=1e-12), \
    f"in float64, Tanh must match tanh(x) to float64 precision (float64 stays float64), got {got}"
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        far = np.asarray(Tanh()(Tensor([-1e30, 1e30])).data, dtype=np.float64)
    except RuntimeWarning as warning:
        raise AssertionError(f"tanh of huge inputs must not warn ({warning}); use np.tanh") from None
assert np.array_equal(far, [-1.0, 1.0]), f"tanh is -1 / 1 far out, got {far}"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. GELU
#
# The Gaussian Error Linear Unit weights its input by the probability that a
# standard normal variable is below it: $\text{GELU}(x) = x\,\Phi(x)$, with $\Phi$
# the normal distribution function. It looks like a ReLU with a smooth elbow (and a
# small dip below 0 around $x \approx -0.75$), and it is the activation of BERT
# and GPT. $\Phi$ needs the error function; the original paper also gives a tanh
# approximation, which is what we compute:
#
# $$\text{GELU}(x) \approx \tfrac12\,x\,\big(1 + \tanh(u)\big), \qquad u = \sqrt{2/\pi}\,\big(x + 0.044715\,x^3\big).$$
#
# The two differ by less than $5 \cdot 10^{-4}$. PyTorch's `torch.nn.GELU()` uses
# the exact erf form by default; `torch.nn.GELU(approximate="tanh")` is the one
# that matches ours.
#
# **Write the cube as `x * x * x`, not `x ** 3`.** NumPy turns only a few exponents
# into cheap operations (`** 2` is a multiplication, `** 0.5` a square root, `** -1` a
# division); any other `**` calls the general power function element by element,
# which has to handle every real exponent and is slow, slowest of all on negative
# numbers. Here a million float32 values (half of them negative) take tens of
# milliseconds with `x ** 3` and about a millisecond with `x * x * x`, which gives the
# same cube up to rounding in the last bit (section 8 measures both on your machine).
#
# **Overflow.** In float32, $x^3$ overflows for $|x| > 7 \cdot 10^{12}$. No network
# feeds such numbers on purpose, but the function should still not warn. Since
# $\tanh(u)$ is exactly $\pm 1$ (in float32 and float64) once $|x| \ge 10$, compute
# $u$ from `np.clip(x, -10.0, 10.0)`: nothing changes in the result and $x^3$
# stays small.
#
# The backward rule needs $t = \tanh(u)$: save it, `_ctx = t` (the array).

# %% nbgrader={"grade": false, "grade_id": "activations_gelu", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
GELU_C = math.sqrt(2.0 / math.pi)
GELU_K = 0.044715


class GELU:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) elementwise (the tanh form).

    Matches ``torch.nn.GELU(approximate="tanh")``. Records op ``"gelu"`` with
    ``_inputs == (x,)`` and ``_ctx = t``, the array ``tanh(u)`` (u computed from x
    clipped to [-10, 10], where tanh is already exactly +-1).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "GELU")
        ### BEGIN SOLUTION
        xc = np.clip(data, -10.0, 10.0)
        t = np.tanh(GELU_C * (xc + GELU_K * xc * xc * xc))
        return Tensor._from_op(0.5 * data * (1.0 + t), "gelu", (x,), t)
        ### END SOLUTION

    def __repr__(self) -> str:
        return "GELU()"


# %% nbgrader={"grade": true, "grade_id": "activations_test_gelu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
g = GELU()(Tensor([0.0, 1.0, -1.0, 20.0, -20.0]))
assert isinstance(g, Tensor), f"GELU must return a Tensor, got {type(g).__name__}"
assert float(g.data[0]) == 0.0, f"GELU(0) = 0, got {g.data[0]}"
# tanh form at 1: 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411920 (computed with math.tanh)
expected_1 = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
assert abs(float(g.data[1]) - expected_1) < 1e-6, f"GELU(1) = {expected_1:.6f}, got {g.data[1]}"
assert float(g.data[3]) == 20.0 and float(g.data[4]) == 0.0, f"far out: x and 0, got {g.data[3:]}"
assert g.dtype == np.float32, f"float32 in, float32 out; got {g.dtype}"
recorded = GELU()(Tensor([0.5], requires_grad=True))
# t = tanh(sqrt(2/pi) (0.5 + 0.044715 * 0.125)), with math.tanh
t_half = math.tanh(math.sqrt(2 / math.pi) * (0.5 + 0.044715 * 0.125))
assert recorded._op == "gelu" and isinstance(recorded._ctx, np.ndarray), \
    "record op 'gelu' and save t = tanh(u) (an array) as ctx"
assert abs(float(recorded._ctx[0]) - t_half) < 1e-6, f"ctx holds t = tanh(u) = {t_half:.6f}, got {recorded._ctx}"
print("GELU: OK")
### BEGIN HIDDEN TESTS
# float64 against the formula, evaluated with math.tanh per element
vals = [-3.0, -0.75, 0.3, 2.5]
out64 = GELU()(Tensor(vals, dtype=np.float64))
got = np.asarray(out64.data, dtype=np.float64)
want = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in vals]
assert np.dtype(out64.dtype) == np.float64, f"float64 in, float64 out; got {out64.dtype}"
assert np.allclose(got, want, rtol=1e-12, atol=1e-15), \
    f"in float64, GELU must match the tanh form to float64 precision, got {got}"
t_want = [math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)) for v in vals]
ctx = GELU()(Tensor(vals, dtype=np.float64, requires_grad=True))._ctx
assert np.allclose(np.asarray(ctx, dtype=np.float64), t_want, rtol=1e-12), \
    f"ctx must hold t = tanh(u) for every element, got {ctx}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "activations_test_gelu_large", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        huge = GELU()(Tensor([1e20, -1e20]))  # x^3 = 1e60 does not fit in float32
    except RuntimeWarning as warning:
        raise AssertionError(f"GELU overflowed ({warning}). Hint: compute u from np.clip(x, -10, 10)") from None
assert np.array_equal(huge.data, np.array([1e20, 0.0], dtype=np.float32)), \
    f"far out GELU(x) is x (right) and 0 (left), got {huge.data}"
print("GELU without overflow: OK")
### BEGIN HIDDEN TESTS
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        far = GELU()(Tensor([1e30, -1e30]))
        far64 = GELU()(Tensor([1e200, -1e200], dtype=np.float64))
    except RuntimeWarning as warning:
        raise AssertionError(f"GELU of huge inputs must not warn ({warning}). "
                             "Hint: compute u from np.clip(x, -10, 10)") from None
assert np.array_equal(np.asarray(far.data, dtype=np.float64), [float(np.float32(1e30)), 0.0]), \
    f"far out GELU(x) is x (right) and 0 (left), got {far.data}"
assert np.array_equal(np.asarray(far64.data, dtype=np.float64), [1e200, 0.0]), \
    f"far out GELU(x) is x (right) and 0 (left), also in float64, got {far64.data}"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Softmax, the stable way
#
# Softmax turns a row of scores (logits) into probabilities:
#
# $$\text{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}} .$$
#
# Every entry is positive and the row sums to 1. Worked example: for $x = (1, 2, 3)$,
# $e^x = (2.718, 7.389, 20.09)$, the sum is $30.19$, and
# $\text{softmax}(x) = (0.090, 0.245, 0.665)$.
#
# **Stability.** Logits of 1000 give $e^{1000} = \infty$ and $\infty/\infty$ =
# `nan`. But softmax does not change when the same number is subtracted from every
# entry: $e^{x_i - m}/\sum_j e^{x_j - m} = e^{x_i}/\sum_j e^{x_j}$ because $e^{-m}$
# cancels. Choose $m = \max_j x_j$: then every exponent is $\le 0$, every $e^{\cdot}$
# is in $[0, 1]$, and the largest is exactly 1, so the sum is at least 1 (no
# division by zero either). Subtract the max **along the softmax axis** with
# `keepdims=True`, so it broadcasts back.
#
# **The subtraction itself can overflow** for finite but extreme logits: in float32,
# $-3 \cdot 10^{38} - 3 \cdot 10^{38}$ is beyond the largest float32 ($3.4 \cdot 10^{38}$)
# and NumPy returns $-\infty$ with an overflow warning. The result is still right:
# $e^{-\infty} = 0$, and that entry's true probability is far below anything float32
# can hold. So the overflow is harmless, and only its warning must go: compute the
# difference inside `with np.errstate(over="ignore"):`. Then softmax of
# $(-3 \cdot 10^{38}, 3 \cdot 10^{38})$ is $(0, 1)$ without a warning, as in PyTorch.
# Only the subtraction can overflow: after it, every number is $\le 0$.
#
# **Axis.** `Softmax(axis=-1)` normalises along the last axis (one distribution per
# row of a batch). The constructor checks the type of `axis`; `__call__` checks that
# it fits the input and records the op with `_ctx = axis` (the backward rule sums
# along it).

# %% nbgrader={"grade": false, "grade_id": "activations_softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Softmax:
    """exp(x) / sum(exp(x)) along `axis`, computed with the maximum subtracted.

    Records op ``"softmax"`` with ``_inputs == (x,)`` and ``_ctx = axis`` (an int;
    the backward rule uses the output s: ``s * (g - sum(g * s, axis))``).
    """

    def __init__(self, axis: int = -1) -> None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Softmax: axis must be an int, got {axis!r} ({type(axis).__name__})")
        self.axis = int(axis)

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "Softmax")
        ndim = data.ndim
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"Softmax: axis={self.axis} is out of range for a tensor of shape {data.shape} "
                f"({ndim} dimension(s)); use an axis from {-ndim} to {ndim - 1}"
                if ndim
                else f"Softmax: axis={self.axis} needs a tensor with at least 1 dimension, got shape ()"
            )
        ### BEGIN SOLUTION
        with np.errstate(over="ignore"):  # extreme finite logits: the difference may be -inf
            shifted = data - data.max(axis=self.axis, keepdims=True)
        e = np.exp(shifted)
        out = e / e.sum(axis=self.axis, keepdims=True)
        return Tensor._from_op(out, "softmax", (x,), self.axis)
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Softmax(axis={self.axis})"


# %%
print(Softmax()(Tensor([1.0, 2.0, 3.0])))
print(Softmax()(Tensor([1000.0, 1001.0, 1002.0])), "(the same: only differences matter)")
print(Softmax()(Tensor([-3e38, 3e38])), "(the difference overflows to -inf: e^-inf = 0)")

# %% nbgrader={"grade": true, "grade_id": "activations_test_softmax", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
p = Softmax()(Tensor([1.0, 2.0, 3.0]))
assert isinstance(p, Tensor), f"Softmax must return a Tensor, got {type(p).__name__}"
e123 = np.exp([1.0, 2.0, 3.0])  # the definition, on the side
assert np.allclose(p.data, e123 / e123.sum(), atol=1e-7), f"softmax([1, 2, 3]) = {e123 / e123.sum()}, got {p.data}"
rows = Softmax()(Tensor([[1.0, 1.0], [0.0, 3.0]]))
assert np.allclose(rows.data.sum(axis=1), 1.0), f"each row sums to 1 with axis=-1, got {rows.data}"
cols = Softmax(axis=0)(Tensor([[1.0, 1.0], [1.0, 3.0]]))
assert np.allclose(cols.data.sum(axis=0), 1.0), f"axis=0: each column sums to 1, got\n{cols.data}"
column = Softmax(axis=-2)(Tensor([[1.0], [1.0]]))
assert np.allclose(column.data, [[0.5], [0.5]]), f"a negative axis counts from the end: [[0.5], [0.5]], got {column.data}"
assert p.dtype == np.float32, f"float32 in, float32 out; got {p.dtype}"
rec = Softmax(axis=0)(Tensor([[1.0]], requires_grad=True))
assert rec._op == "softmax" and type(rec._ctx) is int and rec._ctx == 0, f"record op 'softmax' with ctx = axis, got {rec._op}, {rec._ctx}"
print("Softmax: OK")
### BEGIN HIDDEN TESTS
# [0, ln 3] -> [1/4, 3/4] (by hand), float64 kept
q64 = Softmax()(Tensor([0.0, math.log(3.0)], dtype=np.float64))
q = np.asarray(q64.data, dtype=np.float64)
assert np.dtype(q64.dtype) == np.float64, f"float64 in, float64 out; got {q64.dtype}"
assert np.allclose(q, [0.25, 0.75], rtol=1e-12), f"softmax must match e^x / sum(e^x) in float64, got {q}"
# 3-D, middle axis, against NumPy on the side
cube = np.random.default_rng(3).standard_normal((2, 3, 4))
got = np.asarray(Softmax(axis=1)(Tensor(cube, dtype=np.float64)).data, dtype=np.float64)
ref = np.exp(cube) / np.exp(cube).sum(axis=1, keepdims=True)
assert got.shape == (2, 3, 4) and np.allclose(got, ref, rtol=1e-12), \
    "Softmax(axis=1) on a 3-D tensor: normalise along axis 1 only (keepdims=True)"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "activations_test_softmax_stable", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        big = Softmax()(Tensor([1000.0, 1001.0, 1002.0]))
    except RuntimeWarning as warning:
        raise AssertionError(f"softmax of large logits overflowed ({warning}). Hint: subtract the max") from None
small = Softmax()(Tensor([0.0, 1.0, 2.0]))
assert np.allclose(big.data, small.data, atol=1e-6), f"shifting all logits changes nothing, got {big.data}"
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        extreme = Softmax()(Tensor([-3e38, 3e38]))
    except RuntimeWarning as warning:
        raise AssertionError(f"softmax of [-3e38, 3e38] warned ({warning}): x - max overflows to -inf, "
                             "which is harmless. Hint: subtract inside np.errstate(over='ignore')") from None
assert np.array_equal(extreme.data, [0.0, 1.0]), f"softmax([-3e38, 3e38]) = [0, 1], got {extreme.data}"
print("Softmax without overflow: OK")
### BEGIN HIDDEN TESTS
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        mixed = Softmax()(Tensor([[-1000.0, 0.0, 1000.0], [500.0, 500.0, 500.0]]))
        cols = Softmax(axis=0)(Tensor([[800.0, -800.0], [801.0, -799.0]], dtype=np.float64))
        edge = Softmax(axis=0)(Tensor([[1.5e308, 1.0], [-1.5e308, 2.0]], dtype=np.float64))
        edge32 = Softmax()(Tensor([[3.4e38, -3.4e38, 0.0]]))
    except RuntimeWarning as warning:
        raise AssertionError(f"softmax of large logits must not warn ({warning}). "
                             "Hint: subtract the max along the softmax axis") from None
assert np.allclose(np.asarray(mixed.data, dtype=np.float64), [[0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]]), \
    f"large logits: the same probabilities as after subtracting the row max, got {mixed.data}"
# each column is softmax([0, 1]) after the shift: [1/(1+e), e/(1+e)]
e = math.e
assert np.allclose(np.asarray(cols.data, dtype=np.float64), [[1 / (1 + e)] * 2, [e / (1 + e)] * 2], rtol=1e-12), \
    f"axis=0 with large logits: subtract the max along axis 0, got {cols.data}"
# extreme finite logits: -1.5e308 - 1.5e308 and -3.4e38 - 3.4e38 overflow to -inf, e^-inf = 0;
# column 1 of edge is softmax([1, 2]) = [1/(1+e), e/(1+e)] (by hand)
got = np.asarray(edge.data, dtype=np.float64)
assert np.array_equal(got[:, 0], [1.0, 0.0]) and np.allclose(got[:, 1], [1 / (1 + e), e / (1 + e)], rtol=1e-12), \
    f"extreme logits (float64, axis=0): the entry far below the max gets 0, got {got}"
assert np.array_equal(np.asarray(edge32.data, dtype=np.float64), [[1.0, 0.0, 0.0]]), \
    f"extreme float32 logits [3.4e38, -3.4e38, 0]: [1, 0, 0], got {edge32.data}"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Bad input
#
# A list instead of a Tensor, an integer tensor, or an axis the tensor does not
# have: each gets an error that names the argument, what it was, and what was
# expected. These checks are given (`_check_input`, the start of `Softmax`); see
# them at work:

# %%
for bad_call in (lambda: ReLU()([1.0, 2.0]), lambda: Sigmoid()(Tensor(np.array([1, 2]))),
                 lambda: Softmax(axis=2)(Tensor([[1.0, 2.0]])), lambda: Softmax(axis=1.5)):
    try:
        bad_call()
    except (TypeError, ValueError) as error:
        print(f"{type(error).__name__}: {error}")

# %% [markdown]
# ## 7. The five curves and their slopes
#
# The left plot shows the functions, the right one their derivatives (estimated
# here by finite differences of the curves, independent of module 06). Note the
# sigmoid's slope never exceeds $0.25$ and tanh's never exceeds 1: a chain of many
# such layers multiplies small numbers, so gradients **vanish** in deep sigmoid
# networks. ReLU's slope is exactly 1 for positive inputs, and GELU's is close to it.
# For softmax we plot the first entry of `softmax([x, 0])`, which is
# $\sigma(x)$: with two classes, softmax *is* the sigmoid.

# %%
import matplotlib.pyplot as plt

grid = np.linspace(-4, 4, 801)
curves = {
    "ReLU": ReLU()(Tensor(grid)).data,
    "Sigmoid": Sigmoid()(Tensor(grid)).data,
    "Tanh": Tanh()(Tensor(grid)).data,
    "GELU": GELU()(Tensor(grid)).data,
    "Softmax([x, 0])[0]": Softmax()(Tensor(np.stack([grid, np.zeros_like(grid)], axis=1))).data[:, 0],
}
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, values in curves.items():
    style = "--" if name.startswith("Softmax") else "-"
    ax_f.plot(grid, values, style, label=name)
    ax_d.plot(grid, np.gradient(values.astype(np.float64), grid), style, label=name)
ax_f.set_title("activation f(x)")
ax_d.set_title("slope f'(x)")
for ax in (ax_f, ax_d):
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlabel("x")
    ax.grid(alpha=0.3)
ax_f.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 8. Systems: cost, and memory kept for the backward pass
#
# **Time.** ReLU is one comparison per element; sigmoid, tanh and GELU call a
# transcendental function (an `exp` or `tanh`, tens of cycles); softmax does an
# `exp` plus two reductions along the axis. All of them are *memory-bound* on large
# arrays: reading and writing the data takes longer than the arithmetic, so each
# extra temporary array (GELU builds several) costs real time.
#
# One operation is not memory-bound: a power. `x ** 3` calls the general power
# function for every element (NumPy shortcuts only `** 2`, `** 0.5`, `** -1` and a few
# others), and on negative numbers it is tens of times slower than `x * x * x`. Written
# with `x ** 3`, GELU spends most of its time in that one power; written with
# `x * x * x`, its cost is its tanh and its temporary arrays. The cell
# measures both ways of cubing the same batch.
#
# **Memory.** When the graph is recorded, each activation keeps arrays alive until
# `backward()`: its output (which the next layer holds anyway) and, for GELU, the
# array `t` of the same size. A network's activation memory grows with
# batch x width x depth, which is why large models run out of memory in training
# but not in inference (`no_grad`).

# %%
import time

rng = np.random.default_rng(0)
batch = Tensor(rng.standard_normal((1000, 1000)))
print(f"input: {batch.shape}, {batch.data.nbytes / 2**20:.1f} MiB of float32")
for act in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax()):
    repeats = 5
    start = time.perf_counter()
    for _ in range(repeats):
        y = act(batch)
    ms = (time.perf_counter() - start) / repeats * 1e3
    rec = act(Tensor(batch.data, requires_grad=True))
    saved = rec.data.nbytes + (rec._ctx.nbytes if isinstance(rec._ctx, np.ndarray) else 0)
    print(f"{act!r:18} {ms:7.2f} ms   kept for backward: {saved / 2**20:.1f} MiB (output + saved ctx)")

values = batch.data  # a million float32 numbers, about half of them negative
for label, cube in (("x ** 3", lambda v: v**3), ("x * x * x", lambda v: v * v * v)):
    start = time.perf_counter()
    for _ in range(repeats):
        cube(values)
    ms = (time.perf_counter() - start) / repeats * 1e3
    print(f"cube as {label:10} {ms:7.2f} ms")

# %% [markdown]
# ## Summary
#
# You wrote ReLU, a sigmoid that never overflows, tanh, the tanh form of GELU, and
# a softmax made stable by subtracting the maximum. Each records its op for module
# 06, whose backward rules use the outputs (and GELU's saved `t`). Module 03 puts
# them between linear layers; module 04 reuses the max-subtraction trick in the
# cross-entropy loss.
