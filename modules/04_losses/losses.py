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
# # Module 04: Losses
#
# Training needs one number that says how wrong the network is: the **loss**. It
# has to be small when predictions match targets, large when they don't, and
# smooth enough that its gradient points somewhere useful. This module builds the
# three losses that cover most of deep learning:
#
# | loss | predictions | targets | task |
# |---|---|---|---|
# | `MSELoss` | any real numbers | same shape | regression |
# | `CrossEntropyLoss` | logits `(N, C)` | class indices `(N,)` or probabilities `(N, C)` | classification into C classes |
# | `BinaryCrossEntropyLoss` | probabilities in `[0, 1]` | 0/1 (or in between), same shape | yes/no questions |
#
# Each is called like a function, `loss_fn(predictions, targets)`, and returns a
# **scalar Tensor** (shape `()`): the mean over the batch, so the size of the batch
# does not change the scale of the gradients. The result records its op (`"mse"`,
# `"cross_entropy"`, `"binary_cross_entropy"`) and saves in `_ctx` what module 06's
# backward rule needs. The result keeps the predictions' dtype (float32 stays
# float32, float64 stays float64), whatever the targets' dtype.
#
# **An empty batch** has no mean (it would be 0/0), so each loss refuses it with a
# `ValueError` that says the batch is empty. PyTorch returns `nan` instead; a loss of
# `nan` is found only later, in a training curve, and an empty batch is always a bug
# in the data pipeline. The checks are given at the start of each loss.
#
# **Inputs of the op.** The predictions always; the targets too when they are given
# as a Tensor that can carry a gradient (for MSE and BCE any Tensor, for cross
# entropy a Tensor of probabilities), as in PyTorch, where a target that requires
# grad gets one. Class indices are data, never inputs. This choice is given code in
# each loss (the variable `inputs`): pass it to `Tensor._from_op`.
#
# **What you need**: modules 01 (Tensor) and 02 (the max-subtraction trick of softmax).

# %% nbgrader={"grade": false, "grade_id": "losses_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor

__all__ = ["BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss"]


def _predictions(x: Any, name: str) -> np.ndarray:
    """The data of a floating-point prediction Tensor; a clear error otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name}: predictions must be a Tensor, got {type(x).__name__}; wrap them: Tensor(...)"
        )
    if x.data.dtype.kind != "f":
        raise TypeError(f"{name}: predictions must have a floating dtype, got {x.data.dtype}")
    return x.data


def _as_array(targets: Any) -> np.ndarray:
    """Targets given as a Tensor, an array or a list, as a NumPy array (not copied)."""
    return targets.data if isinstance(targets, Tensor) else np.asarray(targets)


# %% [markdown]
# Two helpers are given: `_predictions` checks the first argument and returns its
# array, `_as_array` accepts targets as a Tensor, a NumPy array or a list.
#
# ## 1. Mean squared error
#
# $$\text{MSE}(p, t) = \frac1n \sum_{i=1}^n (p_i - t_i)^2$$
#
# averaged over **all** $n$ elements (PyTorch's default, `reduction="mean"`). Squaring
# makes every error positive and punishes big errors more than small ones.
# Worked example: $p = (1, 2, 3)$, $t = (1, 0, 0)$: errors $(0, 2, 3)$, squares
# $(0, 4, 9)$, $\text{MSE} = 13/3 \approx 4.333$.
#
# Shapes must match exactly. PyTorch broadcasts `(N, 1)` against `(N,)` into an
# `(N, N)` matrix with only a warning, a classic silent bug; we refuse with a
# `ValueError` that names both shapes. Predictions with no elements (an empty batch)
# are a `ValueError` too (given). Targets are converted to the predictions'
# dtype (float64 targets must not turn a float32 network into float64).
#
# Graph record: inputs `(predictions,)`, plus the targets when they are a Tensor
# (given: `inputs`); `_ctx` is the difference $d = p - t$ (an array in the
# predictions' dtype), which the backward rule scales by $2/n$.

# %% nbgrader={"grade": false, "grade_id": "losses_mse", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class MSELoss:
    """Mean of (predictions - targets)^2 over all elements.

    Records op ``"mse"`` with ``_inputs == (predictions,)`` or
    ``(predictions, targets)`` when targets is a Tensor, and ``_ctx = d``, the array
    ``predictions - targets`` (in the predictions' dtype).
    """

    def __call__(self, predictions: Tensor, targets: Any) -> Tensor:
        p = _predictions(predictions, "MSELoss")
        t = _as_array(targets)
        if t.shape != p.shape:
            raise ValueError(
                f"MSELoss: targets must have the predictions' shape {p.shape}, got shape {t.shape}"
            )
        if p.size == 0:
            raise ValueError(f"MSELoss: the batch is empty (predictions of shape {p.shape})")
        inputs = (predictions, targets) if isinstance(targets, Tensor) else (predictions,)
        ### BEGIN SOLUTION
        diff = p - t.astype(p.dtype, copy=False)
        loss = np.asarray(np.mean(diff * diff), dtype=p.dtype)
        return Tensor._from_op(loss, "mse", inputs, diff)
        ### END SOLUTION

    def __repr__(self) -> str:
        return "MSELoss()"


# %% nbgrader={"grade": true, "grade_id": "losses_test_mse", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
mse = MSELoss()
loss = mse(Tensor([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 0.0]))
assert isinstance(loss, Tensor) and loss.shape == (), f"a loss is a scalar Tensor (shape ()), got {loss!r}"
assert abs(loss.item() - 13 / 3) < 1e-6, f"MSE = (0 + 4 + 9) / 3 = 4.3333, got {loss.item()}"
assert loss.dtype == np.float32, f"float32 predictions give a float32 loss, got {loss.dtype}"
p_rg = Tensor([1.0, 4.0], requires_grad=True)
rec = mse(p_rg, [0.0, 1.0])
assert rec._op == "mse" and rec._inputs == (p_rg,), f"record op 'mse' with inputs (predictions,), got {rec._op}, {rec._inputs}"
assert np.allclose(rec._ctx, [1.0, 3.0]), f"ctx = predictions - targets = [1, 3], got {rec._ctx}"
print("MSELoss: OK")
### BEGIN HIDDEN TESTS
# (2, 2) batch: errors 1, -1, 2, 0 -> squares 1, 1, 4, 0 -> mean 1.5 (by hand)
got = mse(Tensor([[1.0, 1.0], [2.0, 0.0]], dtype=np.float64), np.array([[0.0, 2.0], [0.0, 0.0]]))
assert got.dtype == np.float64 and got.shape == (), f"float64 predictions give a float64 scalar, got {got.dtype} {got.shape}"
assert got.item() == 1.5, f"MSE is the mean of the squared errors over all elements, got {got.item()}"
assert mse(Tensor([0.0]), np.array([0.1], dtype=np.float64)).dtype == np.float32, \
    "float64 targets must not turn float32 predictions into a float64 loss"
t_rg = Tensor([1.0, 2.0], requires_grad=True)
rec = mse(Tensor([0.0, 0.0], requires_grad=True), t_rg)
assert len(rec._inputs) == 2 and rec._inputs[1] is t_rg, "a Tensor target is an input of the op (use the given `inputs`)"
assert np.allclose(np.asarray(rec._ctx, dtype=np.float64), [-1.0, -2.0]), "ctx = predictions - targets"
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Cross entropy, from logits
#
# A classifier outputs one score per class, the **logits** $z$ (any real numbers).
# Softmax turns them into probabilities $q = \text{softmax}(z)$, and the cross
# entropy is the negative log-probability of the true class $y$, averaged over the
# batch of $N$:
#
# $$L = -\frac1N \sum_{n=1}^N \ln q_{n, y_n}.$$
#
# A confident right answer ($q_y \to 1$) costs almost nothing; a confident wrong one
# costs a lot ($-\ln 0.001 \approx 6.9$). **Worked example**: with uniform logits
# (all equal) every class gets $q = 1/C$, so $L = \ln C$: $\ln 10 \approx 2.303$ for
# ten classes. That is the loss of an untrained network, worth checking in the first
# step of every training run.
#
# ### Why log-softmax, and how to make it stable
#
# Computing softmax first and then its log fails in two ways: $e^{z}$ overflows for
# large logits, and a tiny probability rounds to 0 and its log becomes $-\infty$.
# Instead compute the log-probabilities directly:
#
# $$\ln q_i = z_i - \ln \sum_j e^{z_j} = (z_i - m) - \ln \sum_j e^{z_j - m}, \qquad m = \max_j z_j .$$
#
# After subtracting $m$ every exponent is $\le 0$ and one of them is exactly 0, so the
# sum lies in $[1, C]$: its log is between $0$ and $\ln C$, never $-\infty$ and never
# overflowing. A log-probability of $-1000$ stays $-1000$ instead of $\ln 0$. This is
# the *log-sum-exp trick*; PyTorch's `cross_entropy` does the same (it takes
# logits, never probabilities, for this reason).
#
# ### Targets
#
# * **class indices**, shape `(N,)`: integers in `[0, C)`. An integer array, a float
#   array of whole numbers (labels loaded from a CSV) or a Tensor holding either.
#   Then $L = -\frac1N\sum_n \ln q_{n,y_n}$: pick one log-probability per row with
#   `logp[np.arange(N), y]`.
# * **probabilities**, shape `(N, C)` (one-hot rows, or soft labels such as label
#   smoothing): $L = -\frac1N \sum_n \sum_c T_{nc} \ln q_{nc}$.
#
# Anything else is a `ValueError` that names the shapes: a batch-size mismatch, an
# out-of-range class, a non-integral "index". The helper `_class_targets` below
# (given) does that checking and returns either an `int64` index array or a float
# array of probabilities in the logits' dtype.
#
# Graph record: inputs `(logits,)`, or `(logits, targets)` for probability targets
# given as a Tensor (given: `inputs`); `_ctx = (probs, targets)` with
# `probs = exp(logp)`, the softmax, and the targets as `_class_targets` returned them
# (int64 indices, or probabilities in the logits' dtype); the backward rule needs
# both.

# %% nbgrader={"grade": false, "grade_id": "losses_cross_entropy", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _class_targets(targets: Any, n: int, c: int, dtype: np.dtype) -> np.ndarray:
    """Validated cross-entropy targets: int64 indices (N,) or probabilities (N, C) of `dtype`."""
    t = _as_array(targets)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(
                f"CrossEntropyLoss: {t.shape[0]} targets for a batch of {n} (logits of shape ({n}, {c}))"
            )
        if t.dtype.kind == "f":
            if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
                bad = t[~(np.isfinite(t) & (t == np.round(t)))][0]
                raise ValueError(
                    f"CrossEntropyLoss: class-index targets must be whole numbers, got {bad}"
                )
        elif t.dtype.kind not in "iu":
            raise ValueError(
                f"CrossEntropyLoss: class-index targets must be integers, got dtype {t.dtype}"
            )
        idx = t.astype(np.int64)
        if n and (idx.min() < 0 or idx.max() >= c):
            bad = int(idx[(idx < 0) | (idx >= c)][0])
            raise ValueError(
                f"CrossEntropyLoss: class index {bad} is out of range for {c} classes "
                f"(valid: 0 to {c - 1})"
            )
        return idx
    if t.ndim == 2:
        if t.shape != (n, c):
            raise ValueError(
                f"CrossEntropyLoss: probability targets must have the logits' shape ({n}, {c}), "
                f"got shape {t.shape}"
            )
        return t.astype(dtype, copy=False)
    raise ValueError(
        f"CrossEntropyLoss: targets must be class indices of shape ({n},) or probabilities "
        f"of shape ({n}, {c}), got shape {t.shape}"
    )


class CrossEntropyLoss:
    """Cross entropy of logits (N, C) against class indices (N,) or probabilities (N, C).

    Uses a stable log-softmax; the mean over the batch. Records op ``"cross_entropy"``
    with ``_inputs == (logits,)`` (``(logits, targets)`` for probability targets given
    as a Tensor) and ``_ctx = (probs, targets)``: ``probs`` the
    softmax of the logits (N, C), ``targets`` the int64 indices (N,) or the
    probability rows (N, C) in the logits' dtype.
    """

    def __call__(self, logits: Tensor, targets: Any) -> Tensor:
        z = _predictions(logits, "CrossEntropyLoss")
        if z.ndim != 2:
            raise ValueError(
                f"CrossEntropyLoss: logits must have shape (N, C), got shape {z.shape}"
            )
        n, c = z.shape
        if n == 0:
            raise ValueError("CrossEntropyLoss: the batch is empty (logits of shape (0, C))")
        t = _class_targets(targets, n, c, z.dtype)
        inputs = (logits, targets) if isinstance(targets, Tensor) and t.ndim == 2 else (logits,)
        ### BEGIN SOLUTION
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        if t.ndim == 1:
            total = logp[np.arange(n), t].sum()
        else:
            total = (t * logp).sum()
        loss = np.asarray(-total / n, dtype=z.dtype)
        return Tensor._from_op(loss, "cross_entropy", inputs, (np.exp(logp), t))
        ### END SOLUTION

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"


# %%
ce = CrossEntropyLoss()
print("uniform logits, 10 classes:", ce(Tensor(np.zeros((4, 10))), np.array([0, 3, 7, 9])).item(),
      "vs ln 10 =", np.log(10))
print("confident and right:", ce(Tensor([[10.0, 0.0, 0.0]]), [0]).item())
print("confident and wrong:", ce(Tensor([[10.0, 0.0, 0.0]]), [2]).item())
print("huge logits, still finite:", ce(Tensor([[1000.0, 0.0]]), [1]).item())

# %% nbgrader={"grade": true, "grade_id": "losses_test_cross_entropy", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
ce = CrossEntropyLoss()
loss = ce(Tensor(np.zeros((4, 10))), np.array([0, 3, 7, 9]))
assert loss.shape == () and loss.dtype == np.float32, f"a float32 scalar, got shape {loss.shape}, {loss.dtype}"
assert abs(loss.item() - np.log(10)) < 1e-6, f"uniform logits: ln C = ln 10 = 2.302585, got {loss.item()}"
# logits [0, ln 3]: softmax [1/4, 3/4]; class 1 costs -ln(3/4) = 0.287682 (by hand)
loss = ce(Tensor([[0.0, np.log(3.0)]]), [1])
assert abs(loss.item() + np.log(0.75)) < 1e-6, f"-ln(3/4) = 0.287682, got {loss.item()}"
z_rg = Tensor([[0.0, np.log(3.0)]], requires_grad=True)
rec = ce(z_rg, [1])
assert rec._op == "cross_entropy" and rec._inputs == (z_rg,), "record 'cross_entropy' with inputs (logits,)"
probs, saved = rec._ctx
assert np.allclose(probs, [[0.25, 0.75]]) and saved.dtype == np.int64, "ctx = (softmax of the logits, int64 targets)"
print("CrossEntropyLoss: OK")
### BEGIN HIDDEN TESTS
# batch of 2 against NumPy's log-softmax written out on the side, float64
zh = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
lp = zh - np.log(np.exp(zh).sum(axis=1, keepdims=True))
got = ce(Tensor(zh, dtype=np.float64), np.array([2, 0]))
assert got.dtype == np.float64, f"float64 logits give a float64 loss, got {got.dtype}"
assert abs(got.item() - (-(lp[0, 2] + lp[1, 0]) / 2)) < 1e-12, \
    "L = -(1/N) sum_n ln softmax(z_n)[y_n], to float64 precision"
rec = ce(Tensor(zh, requires_grad=True), np.array([2, 0]))
probs, saved = rec._ctx
assert np.allclose(np.asarray(probs, dtype=np.float64), np.exp(lp), atol=1e-6), "ctx[0] = softmax of the logits, row by row"
assert saved.dtype == np.int64 and saved.tolist() == [2, 0], "ctx[1] = the int64 class indices"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "losses_test_cross_entropy_stable", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

ce = CrossEntropyLoss()
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        big = ce(Tensor([[1000.0, 0.0]]), [1])
        tiny = ce(Tensor([[0.0, -200.0]]), [1])
    except RuntimeWarning as warning:
        raise AssertionError(f"large logits overflowed ({warning}). Hint: subtract the row max") from None
assert abs(big.item() - 1000.0) < 1e-3, f"-log softmax([1000, 0])[1] = 1000 (log-sum-exp), got {big.item()}"
assert abs(tiny.item() - 200.0) < 1e-3, f"a probability of e^-200 costs 200, not inf, got {tiny.item()}"
print("CrossEntropyLoss without overflow: OK")
### BEGIN HIDDEN TESTS
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        far = ce(Tensor([[0.0, -1000.0], [3000.0, 2990.0]]), [1, 1])
        far64 = ce(Tensor([[2000.0, 0.0, -1000.0]], dtype=np.float64), [2])
    except RuntimeWarning as warning:
        raise AssertionError(f"large logits must not warn ({warning}). Hint: the log-sum-exp trick") from None
# row 1: -ln softmax([3000, 2990])[1] = ln(1 + e^10) = 10.0000454 (by hand); mean with 1000
expected = (1000.0 + np.log1p(np.exp(10.0))) / 2
assert abs(far.item() - expected) < 1e-2, f"log-probabilities far below 0 stay finite (log-sum-exp), got {far.item()}"
assert abs(far64.item() - 3000.0) < 1e-9, f"float64: -ln softmax([2000, 0, -1000])[2] = 3000, got {far64.item()}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "losses_test_cross_entropy_probs", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
ce = CrossEntropyLoss()
same = ce(Tensor([[0.0, np.log(3.0)]]), np.array([[0.0, 1.0]]))
assert abs(same.item() + np.log(0.75)) < 1e-6, f"one-hot targets give the same loss as the index: -ln(3/4), got {same.item()}"
# soft targets [0.5, 0.5] on softmax [1/4, 3/4]: -(0.5 ln 0.25 + 0.5 ln 0.75) = 0.836988 (by hand)
soft = ce(Tensor([[0.0, np.log(3.0)]]), np.array([[0.5, 0.5]]))
assert abs(soft.item() + 0.5 * np.log(0.25) + 0.5 * np.log(0.75)) < 1e-6, f"soft targets: 0.836988, got {soft.item()}"
z_rg = Tensor([[0.0, 1.0]], requires_grad=True)
t_rg = Tensor([[0.5, 0.5]], requires_grad=True)
rec = ce(z_rg, t_rg)
assert rec._inputs[:1] == (z_rg,) and rec._inputs[1:] == (t_rg,), \
    "probability targets given as a Tensor are an input of the op (use the given `inputs`)"
print("CrossEntropyLoss with probabilities: OK")
### BEGIN HIDDEN TESTS
zh = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
lp = zh - np.log(np.exp(zh).sum(axis=1, keepdims=True))
soft = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
got = ce(Tensor(zh, dtype=np.float64), soft).item()
# -(0.5 lp[0, 0] + 0.5 lp[0, 1] + lp[1, 2]) / 2, NumPy on the side
assert abs(got + (0.5 * lp[0, 0] + 0.5 * lp[0, 1] + lp[1, 2]) / 2) < 1e-12, \
    "probability targets: L = -(1/N) sum_n sum_c T_nc ln q_nc, to float64 precision"
rec = ce(Tensor(zh, requires_grad=True), soft)
assert rec._ctx[1].dtype == np.float32 and rec._ctx[1].shape == (2, 3), \
    "ctx[1] holds the probability targets in the logits' dtype"
### END HIDDEN TESTS

# %% [markdown]
# ### Mistakes the loss catches
#
# A label array of the wrong length, a label 10 for a 10-class problem, or a label
# 2.5: each would silently give a wrong loss (NumPy's negative indices even count
# from the end), so each raises a `ValueError` that names the numbers. The checks
# are given (`_class_targets` and the start of `__call__`); see them at work:

# %%
for bad_targets in (np.array([0, 1, 2]), np.array([0, 10]), np.array([0, -1]), np.array([0.0, 2.5]),
                    np.zeros((2, 3))):
    try:
        ce(Tensor(np.zeros((2, 10))), bad_targets)
    except ValueError as error:
        print(f"targets {bad_targets.tolist()}: ValueError: {error}")

# %% [markdown]
# ## 3. Binary cross entropy
#
# For a yes/no answer the network outputs one probability $p = P(\text{yes})$
# (usually a sigmoid), and the target $t$ is 1 or 0:
#
# $$\text{BCE}(p, t) = -\frac1n \sum_i \big[t_i \ln p_i + (1 - t_i)\ln(1 - p_i)\big].$$
#
# Worked example: $p = 0.8$ for a "yes" costs $-\ln 0.8 = 0.223$; for a "no" it
# costs $-\ln 0.2 = 1.609$.
#
# **Clamping.** A saturated sigmoid returns exactly 0.0 or 1.0, and $\ln 0 = -\infty$
# turns the loss into `inf` (and the gradient into `nan`). We clamp the probabilities
# to $[\varepsilon, 1 - \varepsilon]$ with $\varepsilon = 10^{-7}$ (the `eps`
# argument) before taking logs: the largest possible loss per element is then
# $-\ln 10^{-7} \approx 16.1$. PyTorch's `BCELoss` does something different with the
# same aim: it clamps each **log** at $-100$, so its largest loss per element is 100.
# The two agree whenever $\varepsilon \le p \le 1 - \varepsilon$, which covers every
# prediction that is not saturated.
#
# The clamp works in the predictions' dtype: clip with `np.clip(p, eps, 1 - eps)` on
# the predictions' array, and the bounds are rounded to that dtype. In float32,
# $1 - 10^{-7}$ rounds to $1 - 1.19 \cdot 10^{-7}$ (the second float below 1; the first
# is $1 - 5.96 \cdot 10^{-8}$), so the clamp still keeps $1 - p > 0$; in float64 nothing
# is lost. Larger `eps` (such as `1e-4`) give a gentler loss; `eps` must lie in
# $(0, 0.5)$.
#
# **float16.** Half precision has 11 significant bits: the float below 1 is
# $1 - 2^{-11} \approx 0.99951$, and $1 - 10^{-7}$ rounds to exactly 1. The clamp would
# then keep a saturated prediction at 1, and $\ln(1 - p) = -\infty$. So the loss refuses
# (given code, a `ValueError`) an `eps` for which $1 - \varepsilon$ rounds to 1 in the
# predictions' dtype, and names the smallest `eps` that works there,
# `np.finfo(dtype).epsneg`: $2^{-11} \approx 0.000488$ for float16, about $6 \cdot 10^{-8}$
# for float32 (so the default `1e-7` fits float32 and float64). For float16 predictions
# pass `eps=1e-3`, or compute the loss in float32. PyTorch, which clamps the logs at
# $-100$ instead of the probabilities, needs no such rule.
#
# Predictions must lie in $[0, 1]$ (they are probabilities; for raw scores use a
# sigmoid first) and targets too: anything else is a `ValueError` naming the value
# found. Shapes must match.
#
# Graph record: inputs `(predictions,)`, or `(predictions, targets)` when the targets
# are a Tensor (given: `inputs`); `_ctx = (p, t)` with the **clamped** $p$ and the
# targets in $p$'s dtype.

# %% nbgrader={"grade": false, "grade_id": "losses_bce", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class BinaryCrossEntropyLoss:
    """Mean binary cross entropy of probabilities (clamped to [eps, 1 - eps]) against targets.

    Records op ``"binary_cross_entropy"`` with ``_inputs == (predictions,)`` (or
    ``(predictions, targets)`` when targets is a Tensor) and ``_ctx = (p, t)``: the
    clamped probabilities and the targets, both in the predictions' dtype.
    """

    def __init__(self, eps: float = 1e-7) -> None:
        if not 0.0 < eps < 0.5:
            raise ValueError(f"BinaryCrossEntropyLoss: eps must be in (0, 0.5), got {eps}")
        self.eps = float(eps)

    def __call__(self, predictions: Tensor, targets: Any) -> Tensor:
        p = _predictions(predictions, "BinaryCrossEntropyLoss")
        t = _as_array(targets)
        if t.shape != p.shape:
            raise ValueError(
                f"BinaryCrossEntropyLoss: targets must have the predictions' shape {p.shape}, "
                f"got shape {t.shape}"
            )
        if p.size == 0:
            raise ValueError(f"BinaryCrossEntropyLoss: the batch is empty (predictions of shape {p.shape})")
        if p.dtype.type(1.0 - self.eps) >= 1 or p.dtype.type(self.eps) <= 0:
            raise ValueError(
                f"BinaryCrossEntropyLoss: eps={self.eps} is too small for {p.dtype} predictions: "
                f"1 - eps rounds to 1 in {p.dtype}, so a prediction of 1 would give an infinite loss; "
                f"use eps >= {np.finfo(p.dtype).epsneg:.3g} (np.finfo({p.dtype}).epsneg) or float32 predictions"
            )
        for name, values in (("predictions", p), ("targets", t)):
            low, high = values.min(), values.max()
            if not (low >= 0 and high <= 1):  # also catches nan
                bad = low if not low >= 0 else high
                raise ValueError(
                    f"BinaryCrossEntropyLoss: {name} must be probabilities in [0, 1], found {bad}"
                    + ("; apply a Sigmoid first" if name == "predictions" else "")
                )
        inputs = (predictions, targets) if isinstance(targets, Tensor) else (predictions,)
        ### BEGIN SOLUTION
        pc = np.clip(p, self.eps, 1.0 - self.eps)
        tc = t.astype(p.dtype, copy=False)
        total = (tc * np.log(pc) + (1.0 - tc) * np.log(1.0 - pc)).sum()
        loss = np.asarray(-total / p.size, dtype=p.dtype)
        return Tensor._from_op(loss, "binary_cross_entropy", inputs, (pc, tc))
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"BinaryCrossEntropyLoss(eps={self.eps})"


# %% nbgrader={"grade": true, "grade_id": "losses_test_bce", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
bce = BinaryCrossEntropyLoss()
loss = bce(Tensor([0.8, 0.8]), np.array([1.0, 0.0]))
# (-ln 0.8 - ln 0.2) / 2 = (0.223144 + 1.609438) / 2 = 0.916291 (by hand)
assert loss.shape == () and abs(loss.item() - 0.9162907) < 1e-6, f"expected 0.916291, got {loss.item()}"
assert loss.dtype == np.float32, f"float32 in, float32 out; got {loss.dtype}"
q_rg = Tensor([0.5, 0.25], requires_grad=True)
rec = bce(q_rg, [1.0, 0.0])
assert rec._op == "binary_cross_entropy" and rec._inputs == (q_rg,), "record 'binary_cross_entropy' with inputs (predictions,)"
assert np.allclose(rec._ctx[0], [0.5, 0.25]) and np.allclose(rec._ctx[1], [1.0, 0.0]), "ctx = (clamped p, targets)"
t_rg = Tensor([1.0, 0.0], requires_grad=True)
assert bce(q_rg, t_rg)._inputs[1:] == (t_rg,), "targets given as a Tensor are an input of the op (use the given `inputs`)"
print("BinaryCrossEntropyLoss: OK")
### BEGIN HIDDEN TESTS
# float64, soft target 0.25 at p = 0.5: -(0.25 ln 0.5 + 0.75 ln 0.5) = ln 2 (by hand)
got = bce(Tensor([[0.5]], dtype=np.float64), np.array([[0.25]]))
assert got.dtype == np.float64 and got.shape == (), f"float64 predictions give a float64 scalar, got {got.dtype} {got.shape}"
assert abs(got.item() - np.log(2.0)) < 1e-12, "BCE with a target between 0 and 1 follows the formula, to float64 precision"
# three elements, by hand: (-ln 0.9 - ln 0.6 - ln 0.5) / 3
got = bce(Tensor([0.9, 0.4, 0.5], dtype=np.float64), np.array([1.0, 0.0, 1.0])).item()
assert abs(got - (-np.log(0.9) - np.log(0.6) - np.log(0.5)) / 3) < 1e-12, "BCE is the mean over all elements"
rec = bce(Tensor([0.25], requires_grad=True), Tensor([1.0]))
assert rec._ctx[1].dtype == np.float32 and len(rec._inputs) == 2, "ctx[1] holds the targets in p's dtype; a Tensor target is an input"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "losses_test_bce_clamp", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

bce = BinaryCrossEntropyLoss()
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        sure = bce(Tensor([0.0, 1.0]), np.array([1.0, 0.0]))
    except RuntimeWarning as warning:
        raise AssertionError(f"log(0) happened ({warning}). Hint: clip p to [eps, 1 - eps]") from None
assert np.isfinite(sure.item()) and 15 < sure.item() < 17, \
    f"p = 0 for a 'yes' is clamped to 1e-7: loss about -ln 1e-7 = 16.1, got {sure.item()}"
print("BinaryCrossEntropyLoss clamping: OK")
### BEGIN HIDDEN TESTS
# eps = 0.1: p = 0.999 is clamped to 0.9, loss for a "no" = -ln(0.1) (by hand)
got = BinaryCrossEntropyLoss(eps=0.1)(Tensor([0.999], dtype=np.float64), np.array([0.0])).item()
assert abs(got + np.log(0.1)) < 1e-12, f"p is clamped to [eps, 1 - eps] with the eps given: expected -ln(eps) here, got {got}"
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        rec = bce(Tensor([0.0, 1.0, 0.5], requires_grad=True, dtype=np.float64), np.array([1.0, 1.0, 1.0]))
    except RuntimeWarning as warning:
        raise AssertionError(f"log(0) happened ({warning}). Hint: clip p to [eps, 1 - eps]") from None
pc, tc = rec._ctx
assert float(pc[0]) == 1e-7 and float(pc[2]) == 0.5 and float(pc[1]) == 1 - 1e-7, \
    f"ctx[0] holds the clamped probabilities, got {pc}"
assert abs(rec.item() + np.log(1e-7) / 3 + np.log(1 - 1e-7) / 3 + np.log(0.5) / 3) < 1e-12, \
    "the loss uses the clamped probabilities"
### END HIDDEN TESTS

# %% [markdown]
# Two more refusals, both given: an empty batch, and float16 predictions with an `eps`
# that float16 cannot tell from 0 next to 1. See them at work:

# %%
for bad_call in (lambda: MSELoss()(Tensor(np.zeros((0, 3))), np.zeros((0, 3))),
                 lambda: bce(Tensor([0.5, 1.0], dtype=np.float16), np.array([1.0, 0.0]))):
    try:
        bad_call()
    except ValueError as error:
        print(f"ValueError: {error}")
half = BinaryCrossEntropyLoss(eps=1e-3)(Tensor([0.5, 1.0], dtype=np.float16), np.array([1.0, 0.0]))
print("float16 with eps=1e-3:", half.item(), half.dtype)

# %% [markdown]
# ## 4. Which loss for which output
#
# The plot shows the loss of a single prediction against the true answer. The
# cross entropy (binary, for a "yes") grows without bound as the prediction gets
# confidently wrong, which keeps pushing; the squared error of a probability is at
# most 1, which is why classifiers use cross entropy and not MSE.

# %%
import matplotlib.pyplot as plt

prob = np.linspace(0.001, 0.999, 500)
bce_curve = [bce(Tensor([q]), [1.0]).item() for q in prob]
mse_curve = [MSELoss()(Tensor([q]), [1.0]).item() for q in prob]
plt.figure(figsize=(6, 3.5))
plt.plot(prob, bce_curve, label="binary cross entropy, target 1")
plt.plot(prob, mse_curve, label="squared error, target 1")
plt.xlabel("predicted probability of the true class")
plt.ylabel("loss")
plt.ylim(0, 7)
plt.legend()
plt.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Systems: cost and memory
#
# **Stability costs little.** The stable log-softmax does one extra pass (the row
# maximum and a subtraction) over the `(N, C)` logits; the exponentials and the log
# dominate. Softmax and then log would save nothing and break on large logits.
#
# **Memory.** The loss keeps for backward the softmax probabilities, an array as
# large as the logits: for a batch of 64 over 10 classes that is 2.5 KiB, for a
# language model with 50,000 classes and 8,192 tokens per batch it is 1.5 GiB in
# float32, more than the model's weights. Large models therefore fuse the last
# layer and the loss, or compute them in chunks.

# %%
import time

rng = np.random.default_rng(0)
for n, c in ((64, 10), (256, 1000), (1024, 10000)):
    logits = Tensor(rng.standard_normal((n, c)), requires_grad=True)
    labels = rng.integers(0, c, n)
    start = time.perf_counter()
    rec = ce(logits, labels)
    ms = (time.perf_counter() - start) * 1e3
    probs, _ = rec._ctx
    print(f"logits ({n:>5}, {c:>5}): {ms:7.2f} ms, probabilities kept for backward: "
          f"{probs.nbytes / 2**10:9.1f} KiB")

# %% [markdown]
# ## Summary
#
# You wrote the mean squared error, a cross entropy that takes logits and computes
# log-probabilities with the log-sum-exp trick, and a binary cross entropy that
# clamps its probabilities. Each returns a scalar tensor and records what module 06
# needs to send the gradient back: the difference for MSE, the softmax for cross
# entropy, the clamped probabilities for BCE.
