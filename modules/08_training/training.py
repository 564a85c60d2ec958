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
# # Module 08: Training
#
# Seven modules gave you the parts: tensors that record their graph, activations,
# layers, losses, a data loader, a backward pass and optimizers. None of them learns
# on its own. Learning is a loop:
#
# ```python
# for inputs, targets in loader:
#     loss = loss_fn(model(inputs), targets)   # forward
#     loss.backward()                          # gradients
#     optimizer.step()                         # update
#     optimizer.zero_grad()
# ```
#
# Four lines. A training *system* is what surrounds them so that a run of hours can be
# left alone and trusted afterwards:
#
# | part | what it answers |
# |---|---|
# | `CosineSchedule` | which learning rate does epoch *e* use? |
# | `clip_grad_norm` | what if one batch produces an enormous gradient? |
# | `Trainer.train_epoch` | one pass over the data, with gradient accumulation when a batch does not fit in memory |
# | `Trainer.evaluate` | how good is the model, measured without changing it? |
# | `Trainer.save_checkpoint` / `load_checkpoint` | can a run that crashed continue *exactly* where it stopped? |
#
# The standard for all of them is **exactness**: a schedule that is one epoch late, an
# accumulated gradient that is four times too big, or a resumed run that differs from
# an uninterrupted one in the last digit are all bugs, and the tests here are written
# to find them.
#
# **What you need**: modules 01-07. This notebook imports them from the reference
# package `tinytorch.core`, so it does not depend on your own earlier notebooks.

# %% nbgrader={"grade": false, "grade_id": "training_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor, no_grad

# %% nbgrader={"grade": false, "grade_id": "training_demo_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
# The parts built in modules 01-07, used by the examples and tests of this notebook.
import io
import tracemalloc
import warnings
from contextlib import redirect_stdout

import matplotlib.pyplot as plt

from tinytorch.core.activations import ReLU
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam

# %% [markdown]
# ## 0. Checking arguments
#
# Every public function here checks its arguments first and says exactly what is wrong:
# the name of the argument, the value it got and what it expected. These helpers are
# given; read them, you will call them.

# %% nbgrader={"grade": false, "grade_id": "training_checks", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
def _is_real(value: Any) -> bool:
    """True for Python and NumPy ints and floats; False for bools and everything else."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


def _check_number(value: Any, name: str, where: str, minimum: float = 0.0) -> float:
    """`value` as a float, or a ValueError naming `name` unless it is a finite number >= minimum."""
    if not _is_real(value) or not math.isfinite(float(value)) or float(value) < minimum:
        raise ValueError(f"{where}: {name} must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def _check_int(value: Any, name: str, where: str, minimum: int) -> int:
    """`value` as an int, or a ValueError naming `name` unless it is an int >= minimum (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# %% [markdown]
# ## 1. The learning-rate schedule
#
# Early in training the parameters are far from any good solution and big steps make
# fast progress. Late in training the same big steps jump back and forth across the
# valley the model has found. A schedule gives both: a large rate at the start, a small
# one at the end.
#
# **Cosine annealing** goes from `max_lr` at epoch 0 down to `min_lr` at epoch
# `total_epochs` along half a cosine wave:
#
# $$\text{lr}(e) = \text{min\_lr} + (\text{max\_lr} - \text{min\_lr})\,\frac{1 + \cos(\pi e / \text{total\_epochs})}{2}, \qquad 0 \le e < \text{total\_epochs},$$
#
# and `min_lr` from `total_epochs` on. At `e = 0` the cosine is 1 and the fraction is 1:
# `max_lr`. Halfway, the cosine is 0: exactly the midpoint. At the end it is -1: `min_lr`.
# The curve is flat at both ends and steepest in the middle.
#
# For `max_lr=0.1, min_lr=0.01, total_epochs=100`:
#
# | epoch | 0 | 25 | 50 | 75 | 100 |
# |---|---|---|---|---|---|
# | lr | 0.1000 | 0.0868 | 0.0550 | 0.0232 | 0.0100 |
#
# (Epoch 25: `0.01 + 0.09 * (1 + cos(pi/4)) / 2 = 0.01 + 0.09 * 0.85355 = 0.08682`.
# Rounded tables sometimes quote 0.085 and 0.025 for epochs 25 and 75; the formula gives
# 0.0868 and 0.0232.)
#
# **After the end.** We hold `min_lr` for every epoch `>= total_epochs`. PyTorch's
# `CosineAnnealingLR` does something else: its closed form keeps following the cosine,
# so past `T_max` the rate climbs back up towards the maximum (the schedule is periodic
# with period `2 * T_max`). Holding the minimum is the safer default when a run is
# extended by a few epochs.
#
# A schedule is a pure function of the epoch number: it does not touch the model or the
# optimizer. The `Trainer` asks it for the rate of each epoch and sets it on the
# optimizer. Because it has settings, it also has a `state_dict`, so a checkpoint
# restores the very same schedule.
#
# **Exact ends.** In floating point `min_lr + (max_lr - min_lr)` is not always exactly
# `max_lr` (`1.1 + (5.2 - 1.1)` gives `5.199999999999999`): return `max_lr` itself at
# epoch 0 and `min_lr` itself from `total_epochs` on.
#
# **Your task**: write `get_lr`. It must return a plain Python `float` (use `math.cos`,
# not `np.cos`, which returns a NumPy scalar).

# %% nbgrader={"grade": false, "grade_id": "training_cosine_schedule", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class CosineSchedule:
    """Cosine annealing of the learning rate from `max_lr` (epoch 0) to `min_lr`.

    lr(e) = min_lr + (max_lr - min_lr) * (1 + cos(pi * e / total_epochs)) / 2 for
    e < total_epochs, and min_lr for every epoch from total_epochs on.

    Args:
        max_lr: the rate of epoch 0, a finite number >= min_lr.
        min_lr: the final rate, a finite number >= 0.
        total_epochs: the epoch at which min_lr is reached, an int >= 1.
    """

    def __init__(self, max_lr: float = 0.1, min_lr: float = 0.01, total_epochs: int = 100) -> None:
        self.max_lr = _check_number(max_lr, "max_lr", "CosineSchedule")
        self.min_lr = _check_number(min_lr, "min_lr", "CosineSchedule")
        self.total_epochs = _check_int(total_epochs, "total_epochs", "CosineSchedule", minimum=1)
        if self.min_lr > self.max_lr:
            raise ValueError(
                f"CosineSchedule: min_lr must be <= max_lr, got min_lr={min_lr!r} > max_lr={max_lr!r}"
            )

    def get_lr(self, epoch: int) -> float:
        """The learning rate of `epoch` (an int >= 0), as a Python float."""
        epoch = _check_int(epoch, "epoch", "CosineSchedule.get_lr", minimum=0)
        ### BEGIN SOLUTION
        if epoch >= self.total_epochs:
            return self.min_lr
        if epoch == 0:
            return self.max_lr       # min_lr + (max_lr - min_lr) can miss max_lr by a rounding
        fraction = (1.0 + math.cos(math.pi * epoch / self.total_epochs)) / 2.0
        return self.min_lr + (self.max_lr - self.min_lr) * fraction
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """The settings of the schedule (a JSON-able dict)."""
        return {"max_lr": self.max_lr, "min_lr": self.min_lr, "total_epochs": self.total_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore settings saved by `state_dict`; checks everything before changing anything."""
        missing = [key for key in ("max_lr", "min_lr", "total_epochs") if key not in state]
        if missing:
            raise ValueError(f"CosineSchedule.load_state_dict: state is missing {missing}")
        checked = CosineSchedule(state["max_lr"], state["min_lr"], state["total_epochs"])
        self.max_lr, self.min_lr, self.total_epochs = (
            checked.max_lr, checked.min_lr, checked.total_epochs,
        )

    def __repr__(self) -> str:
        return (
            f"CosineSchedule(max_lr={self.max_lr}, min_lr={self.min_lr}, "
            f"total_epochs={self.total_epochs})"
        )


# %%
schedule = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=100)
for e in (0, 25, 50, 75, 100, 150):
    print(f"epoch {e:>3}: lr = {schedule.get_lr(e):.4f}")

# %%
epochs = np.arange(0, 131)
plt.figure(figsize=(6, 3.2))
plt.plot(epochs, [schedule.get_lr(int(e)) for e in epochs], label="CosineSchedule")
plt.axvline(100, color="grey", linestyle=":", label="total_epochs")
plt.xlabel("epoch")
plt.ylabel("learning rate")
plt.title("Cosine annealing: 0.1 down to 0.01 over 100 epochs, then held")
plt.legend()
plt.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% nbgrader={"grade": true, "grade_id": "training_test_cosine", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
s = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=100)
for epoch, want in [(0, 0.1), (50, 0.055), (100, 0.01), (250, 0.01)]:
    got = s.get_lr(epoch)
    assert type(got) is float, f"get_lr must return a Python float, got {type(got).__name__}. Hint: math.cos"
    assert abs(got - want) < 1e-12, f"get_lr({epoch}): expected {want}, got {got}"
got = s.get_lr(25)
assert abs(got - 0.0868198) < 1e-6, (
    f"get_lr(25): expected 0.0868198 (= 0.01 + 0.09 * (1 + cos(pi/4)) / 2), got {got}"
)
try:
    CosineSchedule(max_lr=0.01, min_lr=0.1)
    raise AssertionError("min_lr > max_lr must raise ValueError")
except ValueError as error:
    assert "min_lr" in str(error), f"the error should name min_lr: {error}"
print("CosineSchedule: OK")
### BEGIN HIDDEN TESTS
# Expected values in closed form: cos(pi/4) = sqrt(2)/2, cos(pi/3) = 1/2, cos(2pi/3) = -1/2,
# cos(3pi/4) = -sqrt(2)/2.
r2 = math.sqrt(2.0) / 2.0
cases = [
    ((0.1, 0.01, 100), 25, 0.01 + 0.09 * (1 + r2) / 2),      # 0.0868198...
    ((0.1, 0.01, 100), 75, 0.01 + 0.09 * (1 - r2) / 2),      # 0.0231802...
    ((1.0, 0.0, 4), 1, (1 + r2) / 2),                        # 0.8535534
    ((1.0, 0.0, 4), 2, 0.5),
    ((1.0, 0.0, 4), 3, (1 - r2) / 2),                        # 0.1464466
    ((1.0, 0.0, 4), 4, 0.0),
    ((0.5, 0.1, 3), 1, 0.1 + 0.4 * (1 + 0.5) / 2),           # 0.4
    ((0.5, 0.1, 3), 2, 0.1 + 0.4 * (1 - 0.5) / 2),           # 0.2
    ((0.5, 0.1, 3), 3, 0.1),
    ((0.2, 0.2, 10), 7, 0.2),                                # constant schedule
    ((0.3, 0.0, 1), 0, 0.3),                                 # one epoch: max, then min
    ((0.3, 0.0, 1), 1, 0.0),
    ((0.1, 0.01, 100), 150, 0.01),  # held at min_lr; torch's closed form would give 0.055 here
]
# the ends are max_lr and min_lr exactly, even where min + (max - min) rounds differently
assert CosineSchedule(5.2, 1.1, 7).get_lr(0) == 5.2, "epoch 0 must give max_lr exactly"
assert CosineSchedule(5.2, 1.1, 7).get_lr(7) == 1.1, "epoch total_epochs must give min_lr exactly"
for (hi, lo, total), epoch, want in cases:
    got = CosineSchedule(hi, lo, total).get_lr(epoch)
    assert type(got) is float, f"get_lr must return a Python float, got {type(got).__name__}"
    assert abs(got - want) < 1e-12, (
        f"CosineSchedule({hi}, {lo}, {total}).get_lr({epoch}): expected {want!r}, got {got!r}. "
        "Hint: min_lr + (max_lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2"
    )
assert type(CosineSchedule(0.1, 0.01, 10).get_lr(np.int64(3))) is float, "NumPy ints are epochs too"
assert type(CosineSchedule(1, 0, 10).get_lr(20)) is float, "past the end: min_lr as a float"
for bad in [dict(total_epochs=0), dict(total_epochs=2.5), dict(total_epochs=True),
            dict(min_lr=-0.1), dict(max_lr=float("nan")), dict(max_lr=float("inf")),
            dict(max_lr=0.001, min_lr=0.01)]:
    try:
        CosineSchedule(**bad)
        raise AssertionError(f"CosineSchedule(**{bad}) must raise ValueError")
    except ValueError as error:
        assert list(bad)[0] in str(error) or "min_lr" in str(error), f"name the argument: {error}"
for bad_epoch in [-1, 1.5, True, None]:
    try:
        CosineSchedule().get_lr(bad_epoch)
        raise AssertionError(f"get_lr({bad_epoch!r}) must raise ValueError")
    except ValueError as error:
        assert "epoch" in str(error), f"name the argument: {error}"
restored = CosineSchedule(1.0, 0.5, 3)
restored.load_state_dict(CosineSchedule(0.3, 0.1, 7).state_dict())
assert (restored.max_lr, restored.min_lr, restored.total_epochs) == (0.3, 0.1, 7), "load_state_dict"
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Clipping the gradient by its global norm
#
# Now and then one batch produces a gradient thousands of times larger than usual (a
# rare input, a steep cliff in the loss surface). One such step can throw the
# parameters so far that training never recovers, or overflow into `inf` and `nan`.
#
# **Clipping by global norm** treats all gradients of the model as one long vector
# `g` and measures its length
#
# $$\|g\| = \sqrt{\textstyle\sum_{\text{params}} \sum_{\text{entries}} g_i^2}.$$
#
# If it is longer than `max_norm`, every gradient is multiplied by the same factor
# `max_norm / ||g||`: the vector keeps its **direction** and gets length `max_norm`.
# Clipping each entry separately to `[-1, 1]` would instead change the direction: every
# large component becomes 1 and the information "this parameter needs a twice larger
# step than that one" is lost.
#
# Worked example: gradients `[100, 200, 50]` have norm `sqrt(10000 + 40000 + 2500) =
# sqrt(52500) = 229.13` (not 230, as sometimes quoted). With `max_norm = 1` the factor is
# `1 / 229.13 = 0.004364`, and the clipped gradients are `[0.436, 0.873, 0.218]`: norm 1,
# the second still twice the first.
#
# The function returns the norm **before** clipping. That is the number worth watching
# in a training log: it shows how often, and by how much, clipping was needed.
#
# ### Details that matter
#
# * **Floating-point range.** Squaring a float32 gradient of `1e20` gives `1e40`, beyond
#   float32's largest number `3.4e38`: the norm would come out `inf` although the true
#   norm is fine. Squaring `1e-30` gives `1e-60`, below float32's smallest: the norm would
#   be 0. The cure is to divide by the largest magnitude `m` first, so every entry lies in
#   `[-1, 1]`, and compute `m * sqrt(sum((g / m)^2))`, in float64.
# * **Not finite.** If some gradient holds `inf` or `nan`, the norm is not finite and no
#   factor can repair it. Then nothing is changed and the non-finite norm is returned,
#   so the caller can skip the step (the `Trainer` does). With `error_if_nonfinite=True`
#   it raises instead.
# * **In place.** The gradient arrays are scaled in place (`g *= factor`): no new arrays,
#   and anyone holding a reference sees the clipped values. If two parameters share one
#   gradient array, it must be scaled only once.
# * **Other norms.** `norm_type` may be any `p > 0` (`(sum |g_i|^p)^(1/p)`) or `math.inf`
#   (the largest magnitude).
# * **Compared with PyTorch.** `torch.nn.utils.clip_grad_norm_` multiplies by
#   `min(1, max_norm / (norm + 1e-6))`. The `1e-6` guards against a division by zero;
#   we only divide when `norm > max_norm >= 0`, so no guard is needed, and the clipped
#   norm is exactly `max_norm` (torch's is a hair smaller, and torch also shrinks
#   gradients whose norm is within `1e-6` below `max_norm`). The returned value is the
#   same: the total norm before clipping.
#
# **Your task**: write `_total_norm` (the safe global norm) and `clip_grad_norm`.

# %% nbgrader={"grade": false, "grade_id": "training_clip_grad_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _check_norm_type(norm_type: Any) -> float:
    """`norm_type` as a float: a number > 0 or math.inf."""
    if not _is_real(norm_type) or math.isnan(float(norm_type)) or float(norm_type) <= 0:
        raise ValueError(f"clip_grad_norm: norm_type must be a number > 0 or math.inf, got {norm_type!r}")
    return float(norm_type)


def _distinct(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The arrays with repeats of the same object removed (shared gradients count once)."""
    seen: set[int] = set()
    out = []
    for array in arrays:
        if id(array) not in seen:
            seen.add(id(array))
            out.append(array)
    return out


def _total_norm(grads: list[np.ndarray], norm_type: float = 2.0) -> float:
    """The `norm_type`-norm of all `grads` taken as one vector, as a Python float.

    No overflow or underflow for any finite entries: float32 squares are summed in
    float64 (whose range holds them all); otherwise each array is divided by its largest
    magnitude before powers are taken, in float64. Returns inf or nan when an
    entry is not finite, 0.0 for no gradients.
    """
    ### BEGIN SOLUTION
    if not grads:
        return 0.0
    if norm_type == 2.0 and all(g.dtype.kind == "f" and g.dtype.itemsize <= 4 for g in grads):
        # float32 (or float16) entries: their squares summed in float64 can neither
        # overflow nor underflow, so the common case needs no scaling (nan/inf propagate)
        total = 0.0
        for grad in grads:
            flat = grad.ravel().astype(np.float64)
            total += float(np.dot(flat, flat))
        return math.sqrt(total)
    with np.errstate(all="ignore"):
        norms = np.empty(len(grads), dtype=np.float64)
        for i, grad in enumerate(grads):
            if grad.size == 0:
                norms[i] = 0.0
                continue
            biggest = float(np.max(np.abs(grad)))     # nan if any nan, inf if any inf
            if norm_type == math.inf or biggest == 0.0 or not math.isfinite(biggest):
                norms[i] = biggest
                continue
            scaled = np.divide(grad, biggest, dtype=np.float64)   # entries in [-1, 1]
            if norm_type == 2.0:
                norms[i] = biggest * math.sqrt(float(np.dot(scaled.ravel(), scaled.ravel())))
            else:
                norms[i] = biggest * float(np.sum(np.abs(scaled) ** norm_type)) ** (1.0 / norm_type)
        if np.isnan(norms).any():
            return math.nan
        biggest = float(norms.max())
        if norm_type == math.inf or biggest == 0.0 or biggest == math.inf:
            return biggest
        ratios = norms / biggest
        if norm_type == 2.0:
            return biggest * math.sqrt(float(np.dot(ratios, ratios)))
        return biggest * float(np.sum(ratios ** norm_type)) ** (1.0 / norm_type)
    ### END SOLUTION


def clip_grad_norm(
    parameters: Iterable[Any],
    max_norm: float = 1.0,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so that their global norm is at most `max_norm`.

    Args:
        parameters: tensors (or one tensor); those whose `.grad` is None are ignored.
        max_norm: the largest allowed global norm, a finite number >= 0.
        norm_type: p of the p-norm (> 0), or math.inf for the largest magnitude.
        error_if_nonfinite: raise RuntimeError when the norm is inf or nan.

    Returns:
        The global norm before clipping, as a Python float (0.0 when no gradients).
        When it is not finite, the gradients are left unchanged.
    """
    max_norm = _check_number(max_norm, "max_norm", "clip_grad_norm")
    norm_type = _check_norm_type(norm_type)
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    ### BEGIN SOLUTION
    total = _total_norm(grads, norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(
                f"clip_grad_norm: the total gradient norm is {total}, not finite; "
                "the gradients were left unchanged"
            )
        return total
    if total > max_norm:
        factor = np.float64(max_norm / total)
        for grad in _distinct(grads):
            np.multiply(grad, factor, out=grad, casting="same_kind")   # float64 product, rounded once
    return total
    ### END SOLUTION


# %%
g = Tensor([100.0, 200.0, 50.0], requires_grad=True)
g.grad = np.array([100.0, 200.0, 50.0], dtype=np.float32)
norm = clip_grad_norm([g], max_norm=1.0)
print(f"norm before: {norm:.2f}   clipped gradient: {np.round(g.grad, 3)}   "
      f"norm after: {np.linalg.norm(g.grad):.6f}")

big = Tensor([0.0, 0.0], requires_grad=True)
big.grad = np.array([3e20, 4e20], dtype=np.float32)
with np.errstate(over="ignore"):
    print("float32 sum of squares of [3e20, 4e20]:", np.sum(big.grad * big.grad))
print("clip_grad_norm norm:", clip_grad_norm([big], max_norm=1.0), "-> clipped", big.grad)

# %% nbgrader={"grade": true, "grade_id": "training_test_clip", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
def _with_grad(values):
    t = Tensor(np.zeros(np.shape(values)), requires_grad=True)
    t.grad = np.array(values, dtype=np.float32)
    return t

a, b, c = _with_grad([100.0]), _with_grad([200.0]), _with_grad([50.0])
got = clip_grad_norm([a, b, c], max_norm=1.0)
assert type(got) is float, f"clip_grad_norm must return a Python float, got {type(got).__name__}"
assert abs(got - 229.128784747792) < 1e-4, (
    f"norm of [100, 200, 50]: expected sqrt(52500) = 229.1288, got {got}. "
    "Hint: the norm is taken over all gradients together"
)
clipped = np.concatenate([a.grad, b.grad, c.grad]).astype(np.float64)
assert np.allclose(clipped, [0.436436, 0.872872, 0.218218], atol=1e-6), (
    f"clipped gradients: expected [0.436436, 0.872872, 0.218218], got {clipped}"
)
small = _with_grad([0.3, 0.4])
got = clip_grad_norm([small], max_norm=1.0)
assert abs(got - 0.5) < 1e-7 and np.array_equal(small.grad, np.float32([0.3, 0.4])), (
    "a norm of 0.5 is below max_norm 1.0: the gradient must stay exactly as it was"
)
assert clip_grad_norm([Tensor([1.0], requires_grad=True)], max_norm=1.0) == 0.0, "no gradients: 0.0"
print("clip_grad_norm: OK")
### BEGIN HIDDEN TESTS
# [100, 200, 50] = 50 * [2, 4, 1]: norm 50 * sqrt(21); clipped = [2, 4, 1] / sqrt(21).
r21 = math.sqrt(21.0)
a, b, c = _with_grad([100.0]), _with_grad([200.0]), _with_grad([50.0])
grads_before = [a.grad, b.grad, c.grad]
got = clip_grad_norm((p for p in [a, b, c]), max_norm=1.0)      # a generator of parameters works
assert abs(got - 50 * r21) < 1e-9 * 50 * r21, f"norm: expected {50 * r21!r}, got {got!r}"
clipped = np.asarray(np.concatenate([a.grad, b.grad, c.grad]), dtype=np.float64)
want = np.array([2.0, 4.0, 1.0]) / r21
assert np.allclose(clipped, want, rtol=2e-7, atol=0), f"clipped: expected {want}, got {clipped}"
assert abs(float(np.linalg.norm(clipped)) - 1.0) < 1e-6, "after clipping, the norm is max_norm"
assert a.grad is grads_before[0] and c.grad is grads_before[2], (
    "clip in place: scale the existing gradient arrays (grad *= factor), do not replace them"
)
# 3-4-5 triangle exactly at the limit: nothing changes (clip only when norm > max_norm)
edge = _with_grad([3.0, -4.0])
got = clip_grad_norm([edge], max_norm=5.0)
assert type(got) is float and got == 5.0 and np.array_equal(edge.grad, np.float32([3, -4])), (
    f"norm exactly max_norm: no scaling; got norm {got}, grads {edge.grad}"
)
# several parameters, matrices, parameters without a gradient in between
rng = np.random.default_rng(3)
mats = [rng.standard_normal(shape).astype(np.float32) for shape in [(4, 3), (3,), (2, 2, 2)]]
params = [_with_grad(m) for m in mats]
params.insert(1, Tensor([5.0], requires_grad=True))            # grad None: ignored
ref = math.sqrt(sum(float(np.sum(m.astype(np.float64) ** 2)) for m in mats))   # NumPy on the side
got = clip_grad_norm(params, max_norm=0.5)
assert abs(got - ref) < 1e-12 * ref, f"global norm of three matrices: expected {ref!r}, got {got!r}"
for p, m in zip([params[0], params[2], params[3]], mats, strict=True):
    want = m.astype(np.float64) * (0.5 / ref)
    assert np.allclose(np.asarray(p.grad, dtype=np.float64), want, rtol=1e-6, atol=0), "scaled grads"
assert params[1].grad is None, "a parameter without gradient keeps grad None"
# max_norm = 0 clips everything to zero
z = _with_grad([1.0, -2.0])
assert abs(clip_grad_norm([z], max_norm=0.0) - math.sqrt(5)) < 1e-6 and not np.any(z.grad), "max_norm 0"
# no gradients at all, empty list
got = clip_grad_norm([], max_norm=1.0)
assert got == 0.0 and type(got) is float, f"no parameters: expected the float 0.0, got {got!r}"
# infinity norm: the largest magnitude 7; factor 3.5 / 7 = 0.5, exact in binary
p1, p2 = _with_grad([[-7.0, 2.0]]), _with_grad([3.0])
got = clip_grad_norm([p1, p2], max_norm=3.5, norm_type=math.inf)
assert got == 7.0, f"inf-norm of [-7, 2, 3]: expected 7.0, got {got}"
assert np.array_equal(p1.grad, np.float32([[-3.5, 1.0]])) and np.array_equal(p2.grad, np.float32([1.5])), (
    f"inf-norm clipping by the factor 3.5 / 7 = 0.5: expected [[-3.5, 1.0]] and [1.5] exactly, got "
    f"{p1.grad.tolist()} and {p2.grad.tolist()}. Hint: the factor is max_norm / norm, with no epsilon"
)
# p = 1: |1| + |-2| + |3| = 6
got = clip_grad_norm([_with_grad([1.0, -2.0, 3.0])], 100.0, norm_type=1)
assert abs(got - 6.0) < 1e-12, f"1-norm of [1, -2, 3]: expected 6.0, got {got}"
# float32 range: squares of 3e20 overflow, squares of 3e-30 underflow; the norm must not
for scale in (1e20, 1e-30):
    t = _with_grad([3.0 * scale, 4.0 * scale])
    got = clip_grad_norm([t], max_norm=1.0)
    want = float(np.float32(3.0 * scale)) * 5.0 / 3.0          # 5 * scale, from the stored float32
    assert math.isfinite(got) and abs(got - want) < 1e-6 * want, (
        f"norm of [3, 4] * {scale:g}: expected {want:.6g}, got {got}. "
        "Hint: divide by the largest magnitude before squaring, and work in float64"
    )
    if scale > 1:
        g64 = np.asarray(t.grad, dtype=np.float64)
        assert np.allclose(g64, [0.6, 0.8], rtol=1e-6), f"clipped [3e20, 4e20]: expected [0.6, 0.8], got {g64}"
    else:
        assert np.array_equal(t.grad, np.float32([3e-30, 4e-30])), "tiny gradients stay as they are"
# not finite: returned, gradients untouched; raises on request
for bad in (np.nan, np.inf):
    t = _with_grad([1.0, bad, 2.0])
    before = t.grad.copy()
    got = clip_grad_norm([t, _with_grad([1e3])], max_norm=1.0)
    assert type(got) is float and not math.isfinite(got), f"a {bad} gradient gives a non-finite norm, got {got}"
    assert (math.isnan(got) if np.isnan(bad) else got == math.inf), f"expected {bad}, got {got}"
    assert np.array_equal(t.grad, before, equal_nan=True), "non-finite norm: leave the gradients unchanged"
    try:
        clip_grad_norm([t], max_norm=1.0, error_if_nonfinite=True)
        raise AssertionError("error_if_nonfinite=True with a non-finite norm must raise")
    except RuntimeError:
        pass
# invalid max_norm
for bad in (-1.0, float("nan"), float("inf"), True, "1", None):
    try:
        clip_grad_norm([_with_grad([1.0])], max_norm=bad)
        raise AssertionError(f"max_norm={bad!r} must raise ValueError")
    except ValueError as error:
        assert "max_norm" in str(error) and repr(bad) in str(error), f"name max_norm and the value: {error}"
# one array shared by two parameters is scaled once
shared = np.array([6.0, 8.0], dtype=np.float32)
s1, s2 = Tensor([0.0, 0.0], requires_grad=True), Tensor([0.0, 0.0], requires_grad=True)
s1.grad = s2.grad = shared
got = clip_grad_norm([s1, s2], max_norm=1.0)          # norm sqrt(2 * 100)
assert abs(got - math.sqrt(200.0)) < 1e-9, f"shared gradient counted for both parameters: {got}"
assert np.allclose(shared, np.float32([6, 8]) / math.sqrt(200.0), rtol=1e-6), "shared array scaled once"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The Trainer
#
# The `Trainer` holds the model, the optimizer, the loss function and optionally a
# schedule and a clipping threshold, and counts where the run is:
#
# * `epoch`: epochs completed (the next `train_epoch` runs epoch `epoch`);
# * `step`: optimizer updates applied;
# * `skipped_steps`: updates skipped because the gradient was not finite;
# * `history`: one list per measurement: `train_loss`, `eval_loss`, `eval_accuracy` and
#   `learning_rates` (one entry per epoch or evaluation) and `grad_norms` (one per update,
#   the norm **before** clipping).
#
# ### `train_epoch(dataloader, accumulation_steps=1)`
#
# 1. **Mode.** `model.train()`: Dropout is active.
# 2. **Learning rate first.** With a schedule, `optimizer.lr = scheduler.get_lr(epoch)`
#    *before the first step of the epoch*, and the rate is recorded. (A common version of
#    this loop sets the rate after the epoch instead: then every epoch runs with the rate
#    meant for the previous one, and epoch 0 with whatever the optimizer started with.)
# 3. **Data order.** If the loader has `set_epoch`, call it with the trainer's epoch: the
#    shuffled order of an epoch is then fixed by the loader's seed and the epoch number,
#    which is what makes a resumed run see the same batches.
# 4. **Accumulation windows.** The batches are grouped into windows of
#    `accumulation_steps` micro-batches. Each gets forward, loss and backward; the
#    gradients add up in `.grad`. When a window closes, the gradient is averaged,
#    measured, clipped, and the optimizer steps **once**; then the gradients are zeroed.
#    The last window of an epoch may be shorter; it is closed all the same. Whether a
#    window is still open is decided by **counting** micro-batches, never by looking at
#    the loss (a loss can be 0, or negative for some objectives).
# 5. **Return** the mean training loss of the epoch, weighted by samples. An epoch without
#    batches returns `nan` (nothing was measured) and still counts as an epoch.
#
# ### Gradient accumulation, exactly
#
# A loss function returns the **mean** over its batch. One big batch of `N` samples has
# gradient `(1/N) * sum over samples`. With micro-batches of sizes `n_1, ..., n_k`
# (`N = n_1 + ... + n_k`), calling `backward()` on each mean loss and adding gives
# `sum_j (1/n_j) * sum over batch j`: **k times too large** for equal sizes, and wrongly
# weighted for unequal ones (a batch of 1 would count as much as a batch of 100).
#
# Exact recipe: multiply each micro-batch's mean loss by its sample count `n_j` before
# `backward()`, so the gradients add up to the **sum** over all samples, and divide the
# accumulated gradients by the window's total `N` when the window closes, before
# clipping and stepping. The update is then the same as that of one batch with all the
# window's samples, also when the micro-batches differ in size and when the last window
# of the epoch is short. (Dividing only the *reported* loss by `accumulation_steps`, as
# one often sees, changes the printed number and not the gradient.)
#
# With `accumulation_steps=1` every window is a single batch and the factor is `n/n`:
# the code skips the multiplication and the division, which saves work and rounding.
#
# ### A step whose gradient is not finite
#
# When the window's gradient norm is `inf` or `nan`, applying the step would put `nan`
# into every parameter for good. The Trainer **skips** it: gradients are zeroed, the
# optimizer is not called, `skipped_steps` grows by one, the norm is still recorded in
# `history["grad_norms"]`, and a line is **printed to stdout**. (Not a Python warning:
# in a notebook a warning goes to stderr, and a graded cell that writes to stderr counts
# as failed.) The epoch's loss then shows `nan` or `inf`: a signal to look.
#
# ### `evaluate(dataloader) -> (loss, accuracy)`
#
# Switch to eval mode (Dropout off), run forward passes under `no_grad()` (nothing is
# recorded, no memory is kept for a backward pass), and measure. Parameters, gradients
# and random generators are not touched, and the mode the model was in is restored at
# the end. Loss and accuracy are weighted by samples, so a short last batch counts for
# what it is. There is no `len(dataloader)` anywhere: a loader may be a generator.
#
# `count_correct(outputs, targets)` decides what accuracy means:
#
# | outputs | targets | a prediction is right when |
# |---|---|---|
# | `(N, C)`, `C >= 2` (class scores) | integers `(N,)` | `argmax` of the row is the target |
# | `(N, C)`, `C >= 2` | one-hot or probabilities `(N, C)`: rows `>= 0` summing to 1 | the two `argmax`es agree |
# | `(N,)` or `(N, 1)` (one probability) | `0`/`1` values, `N` of them | `output >= 0.5` matches the target |
# | anything else (regression) | | not defined: `None`, and the accuracy is `nan` |
#
# An empty loader gives `(nan, nan)`: there is nothing to measure, and no division by zero.
#
# ### Checkpoints
#
# A checkpoint must hold everything the next epoch depends on:
#
# | what | why |
# |---|---|
# | format name and version | a newer file is refused with a clear message instead of misread |
# | `epoch`, `step`, `skipped_steps`, `grad_clip_norm` | counters and settings of the run |
# | model `state_dict()` by parameter name, and the shapes | the weights; Dropout's generator state (its `".rng"` entries) |
# | optimizer `state_dict()` | hyperparameters and buffers (momentum, Adam's moments, step count) |
# | scheduler `state_dict()` | the schedule's settings |
# | `history` | the curves so far |
#
# The data order needs no entry: it is a function of the loader's own seed and the
# epoch number, and the trainer passes the epoch to `set_epoch`. On loading, the saved
# configuration wins: the optimizer's hyperparameters, the schedule and the clipping
# threshold come from the file.
#
# **No pickle.** `pickle.load` can run arbitrary code hidden in a file, so a checkpoint
# from elsewhere would be a program. Ours is an `.npz` archive (a zip of `.npy` arrays,
# stored, not compressed) read with `allow_pickle=False`: every array under a readable
# name (`model/0.weight`, `optimizer/state/0/momentum_buffer`, ...) plus one member
# `checkpoint.json` that holds the JSON skeleton of the state, with each array replaced by
# a reference to its member. The file is the arrays' raw bytes plus small headers.
#
# **Atomic save.** The file is written to a temporary file in the same folder, flushed,
# `fsync`ed and then moved over the old one with `os.replace`, a single atomic step. A
# crash in the middle leaves the previous checkpoint intact, never a half-written one.
# (A process killed while writing can leave its hidden temporary file,
# `.<name>.<random>.tmp`, next to the checkpoint; it is never read and can be deleted.)
#
# **All or nothing on load.** Everything is read and checked first (readable archive,
# format version, every entry present, every parameter name and shape, optimizer type and
# buffer shapes, schedule settings, history); only then is anything changed. A bad file
# raises one `CheckpointError` naming the file and the problem, and leaves the trainer
# exactly as it was. As a second line of defence, if the model, optimizer or schedule
# still refuses its part while being loaded, everything already loaded is put back from a
# copy taken just before.
#
# The file format (writing and reading the archive) is given below; the `Trainer` decides
# what goes in and checks what comes out.

# %% nbgrader={"grade": false, "grade_id": "training_checkpoint_files", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
CHECKPOINT_FORMAT = "tinytorch-checkpoint"
CHECKPOINT_VERSION = 1
_JSON_MEMBER = "checkpoint.json"
_ARRAY_REF = "__array__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, incomplete, newer or not matching."""


def _split_arrays(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able copy of a state tree, each array moved to `arrays` and left as a reference."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"checkpoint entry {key!r}: object arrays cannot be stored without pickle")
        arrays[key] = value
        return {_ARRAY_REF: key}
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise TypeError(f"checkpoint entry {key!r}: keys must be strings, got {name!r}")
            out[name] = _split_arrays(item, f"{key}/{name}" if key else name, arrays)
        return out
    if isinstance(value, (list, tuple)):
        return [_split_arrays(item, f"{key}/{i}", arrays) for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()                      # NumPy scalar -> Python number (exact)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint entry {key!r}: cannot store a {type(value).__name__}")


def _join_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of `_split_arrays`: references replaced by their arrays."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY_REF}:
            name = value[_ARRAY_REF]
            if name not in arrays:
                raise KeyError(f"array member {name!r} is missing")
            return arrays[name]
        return {name: _join_arrays(item, arrays) for name, item in value.items()}
    if isinstance(value, list):
        return [_join_arrays(item, arrays) for item in value]
    return value


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a state tree to `path` as an uncompressed .npz, atomically (temp file + os.replace)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split_arrays(state, "", arrays)
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state": skeleton}
    text = json.dumps(header, allow_nan=True, separators=(",", ":")).encode("utf-8")
    members = {_JSON_MEMBER: np.frombuffer(text, dtype=np.uint8), **arrays}
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **members)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):          # make the rename itself durable (POSIX)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state tree stored at `path`; CheckpointError (naming the file) if it cannot be used."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: no such checkpoint file") from error
    except Exception as error:  # noqa: BLE001 - any failure to parse means the same thing
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a checkpoint (a single .npy array, not an .npz archive)")
    try:
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # noqa: BLE001 - truncated or corrupt member, bad CRC, ...
        raise CheckpointError(
            f"{path}: checkpoint is truncated or corrupt ({type(error).__name__}: {error})"
        ) from error
    raw = arrays.pop(_JSON_MEMBER, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: not a tinytorch checkpoint (no {_JSON_MEMBER} member)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as error:
        raise CheckpointError(f"{path}: {_JSON_MEMBER} is not valid JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tinytorch checkpoint (format {header.get('format')!r})"
                              if isinstance(header, dict) else f"{path}: not a tinytorch checkpoint")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid checkpoint format version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: written in checkpoint format version {version}, but this tinytorch reads "
            f"versions up to {CHECKPOINT_VERSION}; update tinytorch to load it"
        )
    if "state" not in header:
        raise CheckpointError(f"{path}: checkpoint has no 'state' entry")
    try:
        return _join_arrays(header["state"], arrays)
    except KeyError as error:
        raise CheckpointError(f"{path}: checkpoint is incomplete: {error.args[0]}") from error


def _copy_tree(value: Any) -> Any:
    """A deep copy of a state tree (arrays copied, JSON values shared)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copy_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_tree(item) for item in value]
    return value


# %% [markdown]
# ### Writing the Trainer
#
# The constructor, progress display and a few helpers are given. Write:
#
# * `count_correct(outputs, targets)` (the accuracy table above);
# * `train_epoch` and `_close_window` (one accumulation window: average, measure, clip,
#   step or skip, zero);
# * `evaluate`;
# * `state_dict`, `load_checkpoint` and its check `_check_state`
#   (`save_checkpoint` is one line on top of `state_dict`).

# %% nbgrader={"grade": false, "grade_id": "training_trainer", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _batch_size(inputs: Any) -> int:
    """Number of samples in a batch: the length of its first dimension."""
    shape = getattr(inputs, "shape", None)
    if shape is None:
        shape = np.shape(inputs)
    if len(shape) == 0:
        raise ValueError("Trainer: a batch of inputs needs a batch dimension, got a 0-d value")
    return int(shape[0])


def _as_tensor(value: Any) -> Tensor:
    """Tensors pass through; arrays and lists are wrapped (integer labels keep their dtype)."""
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def _unpack(batch: Any) -> tuple[Tensor, Tensor]:
    """(inputs, targets) of a batch, as Tensors."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = f"{len(batch)} items" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"Trainer: each batch must be a pair (inputs, targets), got {got}")
    return _as_tensor(batch[0]), _as_tensor(batch[1])


def _is_distribution(rows: np.ndarray) -> bool:
    """True when every row is non-negative and sums to 1 (one-hot or class probabilities)."""
    if rows.dtype.kind not in "fiub" or rows.size == 0:
        return False
    values = rows.astype(np.float64)
    return bool(np.all(values >= 0) and np.allclose(values.sum(axis=1), 1.0, rtol=0, atol=1e-6))


def count_correct(outputs: Any, targets: Any) -> int | None:
    """How many predictions in a batch are right, or None when accuracy is not defined.

    Class scores (N, C) with C >= 2 are compared by argmax with integer targets (N,) or
    one-hot/probability targets (N, C) (rows >= 0 summing to 1). One output per sample, (N,) or (N, 1), with 0/1
    targets is read as the probability of class 1 (right when `output >= 0.5` matches).
    Anything else (regression) gives None.
    """
    out = np.asarray(getattr(outputs, "data", outputs))
    tgt = np.asarray(getattr(targets, "data", targets))
    ### BEGIN SOLUTION
    if out.ndim == 2 and out.shape[1] >= 2:
        predicted = out.argmax(axis=1)
        if tgt.shape == out.shape and _is_distribution(tgt):
            labels = tgt.argmax(axis=1)
        elif tgt.shape == (out.shape[0],) and tgt.dtype.kind in "iu":
            labels = tgt
        else:
            return None
        return int(np.count_nonzero(predicted == labels))
    single = out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)
    if single and tgt.size == out.shape[0] and tgt.size > 0:
        flat = tgt.reshape(-1)
        if np.all((flat == 0) | (flat == 1)):
            return int(np.count_nonzero((out.reshape(-1) >= 0.5) == (flat == 1)))
    return None
    ### END SOLUTION


class Trainer:
    """Trains a model: epochs with schedule, clipping and accumulation; evaluation; checkpoints.

    Args:
        model: a Module: `model(x)`, `parameters()`, `named_parameters()`, `train()`,
            `eval()`, `training`, `state_dict()`, `load_state_dict()`.
        optimizer: `lr`, `step()`, `zero_grad()`, `state_dict()`, `load_state_dict()`.
        loss_fn: `loss_fn(outputs, targets)` -> scalar Tensor, the mean over the batch.
        scheduler: optional; `get_lr(epoch)` sets the rate at the start of each epoch.
        grad_clip_norm: optional max global L2 norm of the gradient of each update.
        progress: print a progress line to stdout while training (never to stderr).
    """

    HISTORY_KEYS = ("train_loss", "eval_loss", "eval_accuracy", "learning_rates", "grad_norms")
    STATE_KEYS = ("epoch", "step", "skipped_steps", "grad_clip_norm", "parameter_shapes",
                  "model", "optimizer", "scheduler", "history")

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Any,
        scheduler: Any = None,
        grad_clip_norm: float | None = None,
        progress: bool = False,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = (
            None if grad_clip_norm is None
            else _check_number(grad_clip_norm, "grad_clip_norm", "Trainer")
        )
        self.progress = bool(progress)
        self.epoch = 0
        self.step = 0
        self.skipped_steps = 0
        self.history: dict[str, list[float]] = {key: [] for key in self.HISTORY_KEYS}
        self._last_print = 0.0

    # ---- progress (given) -------------------------------------------------------------
    def _show_progress(self, batches: int, total: int | None, loss_sum: float, samples: int,
                       final: bool) -> None:
        """One progress line on stdout (mean loss so far), refreshed at most 5 times a second."""
        if not self.progress:
            return
        now = time.perf_counter()
        if not final and now - self._last_print < 0.2:
            return
        self._last_print = now
        loss = loss_sum / samples if samples > 0 else math.nan
        of = f"/{total}" if total is not None else ""
        line = (f"epoch {self.epoch:>3} | batch {batches}{of} | loss {loss:.4f} | "
                f"lr {float(self.optimizer.lr):.4g} | steps {self.step}")
        print("\r" + line, end="\n" if final else "", file=sys.stdout, flush=True)

    # ---- training ---------------------------------------------------------------------
    def train_epoch(self, dataloader: Iterable[Any], accumulation_steps: int = 1) -> float:
        """Train one epoch; return its mean training loss, weighted by samples.

        Every `accumulation_steps` micro-batches (and the shorter window at the end) make
        one optimizer update, equal to the update of one batch of all their samples.
        """
        accumulation_steps = _check_int(
            accumulation_steps, "accumulation_steps", "Trainer.train_epoch", minimum=1
        )
        try:
            total_batches: int | None = len(dataloader)  # type: ignore[arg-type]
        except TypeError:
            total_batches = None                         # a generator: no length, no problem
        ### BEGIN SOLUTION
        self.model.train()
        if self.scheduler is not None:
            self.optimizer.lr = float(self.scheduler.get_lr(self.epoch))
        self.history["learning_rates"].append(float(self.optimizer.lr))
        if hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        params = list(self.model.parameters())
        self.optimizer.zero_grad()                  # stale gradients must not leak into step 1
        weighted = accumulation_steps > 1
        loss_sum, samples, batches = 0.0, 0, 0
        window_batches, window_samples = 0, 0
        for batch in dataloader:
            inputs, targets = _unpack(batch)
            n = _batch_size(inputs)
            loss = self.loss_fn(self.model(inputs), targets)
            if weighted:
                (loss * float(n)).backward()        # gradient of the *sum* over the micro-batch
            else:
                loss.backward()
            loss_sum += float(loss.data) * n
            samples += n
            batches += 1
            window_batches += 1
            window_samples += n
            if window_batches == accumulation_steps:
                self._close_window(params, window_samples if weighted else 1)
                window_batches, window_samples = 0, 0
            self._show_progress(batches, total_batches, loss_sum, samples, final=False)
        if window_batches > 0:                      # a short last window, decided by count
            self._close_window(params, window_samples if weighted else 1)
        mean_loss = loss_sum / samples if samples > 0 else math.nan
        self.history["train_loss"].append(mean_loss)
        self._show_progress(batches, total_batches, loss_sum, samples, final=True)
        self.epoch += 1
        return mean_loss
        ### END SOLUTION

    def _close_window(self, params: list[Any], samples: int) -> None:
        """End an accumulation window: divide the summed gradients by `samples`, record the
        norm, clip, then step (or skip when the norm is not finite), and zero the gradients."""
        ### BEGIN SOLUTION
        grads = [p.grad for p in params if p.grad is not None]
        if samples > 1:
            for grad in _distinct(grads):
                np.divide(grad, samples, out=grad)
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
        else:
            norm = _total_norm(grads, 2.0)
        self.history["grad_norms"].append(norm)
        if math.isfinite(norm):
            self.optimizer.step()
            self.step += 1
        else:
            self.skipped_steps += 1
            print(f"Trainer: epoch {self.epoch}: gradient norm is {norm}; update skipped and "
                  f"gradients discarded ({self.skipped_steps} skipped so far)", file=sys.stdout)
        self.optimizer.zero_grad()
        ### END SOLUTION

    # ---- evaluation -------------------------------------------------------------------
    def evaluate(self, dataloader: Iterable[Any]) -> tuple[float, float]:
        """Mean loss and accuracy over `dataloader`, weighted by samples, in eval mode.

        Accuracy is nan when the outputs are not class scores (see `count_correct`);
        an empty loader gives (nan, nan). The model's previous mode is restored.
        """
        ### BEGIN SOLUTION
        was_training = bool(getattr(self.model, "training", True))
        self.model.eval()
        loss_sum, samples, correct, countable = 0.0, 0, 0, True
        try:
            with no_grad():
                for batch in dataloader:
                    inputs, targets = _unpack(batch)
                    n = _batch_size(inputs)
                    outputs = self.model(inputs)
                    loss_sum += float(self.loss_fn(outputs, targets).data) * n
                    samples += n
                    if countable:
                        right = count_correct(outputs, targets)
                        if right is None:
                            countable = False
                        else:
                            correct += right
        finally:
            self.model.train(was_training)
        loss = loss_sum / samples if samples > 0 else math.nan
        accuracy = correct / samples if (countable and samples > 0) else math.nan
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        return loss, accuracy
        ### END SOLUTION

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as a tree of dicts, lists, arrays and JSON values."""
        ### BEGIN SOLUTION
        scheduler = self.scheduler
        return {
            "epoch": self.epoch,
            "step": self.step,
            "skipped_steps": self.skipped_steps,
            "grad_clip_norm": self.grad_clip_norm,
            "parameter_shapes": {
                name: list(p.data.shape) for name, p in self.model.named_parameters()
            },
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "history": {
                key: np.asarray(self.history[key], dtype=np.float64) for key in self.HISTORY_KEYS
            },
        }
        ### END SOLUTION

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save the complete training state to `path` (atomically, no pickle)."""
        ### BEGIN SOLUTION
        write_checkpoint(path, self.state_dict())
        ### END SOLUTION

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore the state saved by `save_checkpoint`. Everything is checked first; on any
        problem a CheckpointError names the file and the trainer is left unchanged."""
        ### BEGIN SOLUTION
        state = read_checkpoint(path)
        self._check_state(state, str(path))
        before = _copy_tree(self.state_dict())
        try:
            self._apply_state(state)
        except Exception as error:
            self._apply_state(before)                # put back what was there
            raise CheckpointError(f"{path}: cannot be loaded: {error}") from error
        ### END SOLUTION

    def _optimizer_params(self) -> list[Any]:
        """The optimizer's parameters in its order (the model's when it does not expose them)."""
        params = getattr(self.optimizer, "params", None)
        if isinstance(params, (list, tuple)) and all(hasattr(p, "data") for p in params):
            return list(params)
        return list(self.model.parameters())

    def _check_state(self, state: Any, where: str) -> None:
        """Raise CheckpointError (prefixed with `where`) unless `state` fits this trainer."""

        def fail(message: str) -> None:
            raise CheckpointError(f"{where}: {message}")

        ### BEGIN SOLUTION
        if not isinstance(state, dict):
            fail("the checkpoint state is not a dict")
        missing = [key for key in self.STATE_KEYS if key not in state]
        if missing:
            fail(f"missing entries {missing}")
        for key in ("epoch", "step", "skipped_steps"):
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                fail(f"{key} must be an int >= 0, got {value!r}")
        if state["grad_clip_norm"] is not None:
            try:
                _check_number(state["grad_clip_norm"], "grad_clip_norm", "checkpoint")
            except ValueError as error:
                fail(str(error))
        # model: same parameter names and shapes, same extra entries (generator states)
        saved, current = state["model"], self.model.state_dict()
        if not isinstance(saved, dict):
            fail("model state is not a dict")
        if set(saved) != set(current):
            fail(f"model entries do not match: missing {sorted(set(current) - set(saved))}, "
                 f"unexpected {sorted(set(saved) - set(current))}")
        for name, value in current.items():
            if isinstance(value, np.ndarray):
                got = saved[name]
                if not isinstance(got, np.ndarray):
                    fail(f"model entry {name!r} is not an array")
                if got.shape != value.shape:
                    fail(f"parameter {name!r} has shape {got.shape} in the file, "
                         f"but the model's is {value.shape}")
                if got.dtype.kind != value.dtype.kind:
                    fail(f"parameter {name!r} has dtype {got.dtype} in the file, model {value.dtype}")
            elif type(saved[name]) is not type(value):
                fail(f"model entry {name!r} is a {type(saved[name]).__name__} in the file, "
                     f"expected a {type(value).__name__}")
        shapes = state["parameter_shapes"]
        own = {name: list(p.data.shape) for name, p in self.model.named_parameters()}
        if shapes != own:
            fail(f"parameter shapes {shapes} do not match the model's {own}")
        # optimizer: same kind, one state per parameter, buffers shaped like their parameter
        opt, opt_now = state["optimizer"], self.optimizer.state_dict()
        if not isinstance(opt, dict) or not isinstance(opt_now, dict):
            fail("optimizer state is not a dict")
        for key in opt_now:
            if key not in opt:
                fail(f"optimizer state is missing {key!r}")
        if opt.get("type") != opt_now.get("type"):
            fail(f"the checkpoint has a {opt.get('type')} optimizer, the trainer a {opt_now.get('type')}")
        if isinstance(opt_now.get("state"), list):
            per_param = opt.get("state")
            params = self._optimizer_params()
            if not isinstance(per_param, list) or len(per_param) != len(opt_now["state"]):
                fail(f"optimizer state has {len(per_param) if isinstance(per_param, list) else '?'} "
                     f"parameter entries, the optimizer {len(opt_now['state'])}")
            for i, entry in enumerate(per_param):
                if not isinstance(entry, dict):
                    fail(f"optimizer state entry {i} is not a dict")
                for name, buffer in entry.items():
                    if (isinstance(buffer, np.ndarray) and buffer.ndim > 0
                            and i < len(params) and buffer.shape != params[i].data.shape):
                        fail(f"optimizer buffer {name!r} of parameter {i} has shape {buffer.shape}, "
                             f"the parameter {params[i].data.shape}")
        # scheduler
        if (state["scheduler"] is None) != (self.scheduler is None):
            fail("the checkpoint was saved " + ("without" if state["scheduler"] is None else "with")
                 + " a learning-rate schedule, the trainer has "
                 + ("one" if self.scheduler is not None else "none"))
        if isinstance(self.scheduler, CosineSchedule):
            try:
                CosineSchedule().load_state_dict(state["scheduler"])
            except (ValueError, TypeError) as error:
                fail(f"scheduler state: {error}")
        # history: every key, one-dimensional float arrays
        history = state["history"]
        if not isinstance(history, dict):
            fail("history is not a dict")
        for key in self.HISTORY_KEYS:
            values = history.get(key)
            if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "f":
                fail(f"history entry {key!r} is missing or not a 1-d float array")
        ### END SOLUTION

    def _apply_state(self, state: dict[str, Any]) -> None:
        """Copy a checked state into the model, optimizer, schedule and counters (given)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.skipped_steps = int(state["skipped_steps"])
        clip = state["grad_clip_norm"]
        self.grad_clip_norm = None if clip is None else float(clip)
        self.history = {
            key: [float(x) for x in np.asarray(state["history"][key], dtype=np.float64)]
            for key in self.HISTORY_KEYS
        }


# %% [markdown]
# ## 4. Training a small network
#
# A three-class spiral in the plane: points of each class wind around the origin, so no
# straight line separates them. An MLP with Dropout, Adam, a cosine schedule and clipping
# learns it in a few seconds.

# %%
def make_spiral(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points of three interleaved spiral arms, float32 inputs and int64 labels."""
    xs, ys = [], []
    for label in range(3):
        radius = np.linspace(0.05, 1.0, n_per_class)
        angle = label * 2 * np.pi / 3 + 3.0 * radius + rng.normal(0, 0.15, n_per_class)
        xs.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        ys.append(np.full(n_per_class, label))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


data_rng = np.random.default_rng(0)
X_all, y_all = make_spiral(150, data_rng)
order = data_rng.permutation(len(X_all))
X_train, y_train = X_all[order[:360]], y_all[order[:360]]
X_val, y_val = X_all[order[360:]], y_all[order[360:]]

init = np.random.default_rng(1)
spiral_model = Sequential(Linear(2, 64, rng=init), ReLU(), Dropout(0.1, rng=np.random.default_rng(2)),
                          Linear(64, 64, rng=init), ReLU(), Linear(64, 3, rng=init))
EPOCHS = 40
spiral_trainer = Trainer(
    spiral_model,
    Adam(spiral_model.parameters(), lr=0.02),
    CrossEntropyLoss(),
    scheduler=CosineSchedule(max_lr=0.02, min_lr=0.001, total_epochs=EPOCHS),
    grad_clip_norm=1.0,
)
train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True, seed=0)
val_loader = DataLoader(TensorDataset(X_val, y_val), batch_size=64)
start = time.perf_counter()
for _ in range(EPOCHS):
    spiral_trainer.train_epoch(train_loader)
    spiral_trainer.evaluate(val_loader)
h = spiral_trainer.history
print(f"{EPOCHS} epochs in {time.perf_counter() - start:.2f} s, {spiral_trainer.step} updates")
print(f"final train loss {h['train_loss'][-1]:.4f} | eval loss {h['eval_loss'][-1]:.4f} | "
      f"eval accuracy {h['eval_accuracy'][-1]:.1%}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
axes[0].plot(h["train_loss"], label="train (Dropout on)")
axes[0].plot(h["eval_loss"], label="eval")
axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="Loss by epoch")
axes[0].legend()
axes[1].plot(h["eval_accuracy"], color="tab:green")
axes[1].set(xlabel="epoch", ylabel="accuracy", title="Eval accuracy", ylim=(0, 1.02))
axes[2].plot(h["learning_rates"], color="tab:purple")
axes[2].set(xlabel="epoch", ylabel="lr", title="Learning rate used in each epoch")
for ax in axes:
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Watching the clipper
#
# Inputs that were not normalised (here the spiral's coordinates times 10) and a large
# learning rate give gradients far above 1. With clipping at 1.0, the norm before
# clipping (what `clip_grad_norm` returns and `history["grad_norms"]` records) jumps
# around, the norm after clipping is never above 1.0. Both are measured below over three
# epochs of such a run, with the clipper used on its own in a hand-written loop.

# %%
clip_model = Sequential(Linear(2, 64, rng=np.random.default_rng(5)), ReLU(),
                        Linear(64, 3, rng=np.random.default_rng(6)))
clip_opt = SGD(clip_model.parameters(), lr=0.5, momentum=0.9)
loss_fn = CrossEntropyLoss()
before_clip, after_clip = [], []
clip_loader = DataLoader(TensorDataset(X_train * 10, y_train), batch_size=32, shuffle=True, seed=1)
for _ in range(3):
    for inputs, targets in clip_loader:
        loss_fn(clip_model(inputs), targets).backward()
        before_clip.append(clip_grad_norm(clip_model.parameters(), max_norm=1.0))
        after_clip.append(math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2))
                                        for p in clip_model.parameters())))
        clip_opt.step()
        clip_opt.zero_grad()
plt.figure(figsize=(6, 3.2))
plt.semilogy(before_clip, marker=".", label="before clipping (returned)")
plt.semilogy(after_clip, marker=".", label="after clipping")
plt.axhline(1.0, color="grey", linestyle=":", label="max_norm")
plt.xlabel("update")
plt.ylabel("global gradient norm")
plt.title("Clipping bounds the step, not the gradient")
plt.legend()
plt.grid(alpha=0.3)
plt.tight_layout()
plt.show()
print(f"largest norm before: {max(before_clip):.3g}, after: {max(after_clip):.6f}")

# %% [markdown]
# ## 5. Testing the Trainer
#
# The tests build tiny problems whose correct answer can be computed with NumPy on the
# side: one `Linear` layer, a loss whose gradient has a closed form, plain SGD (whose
# update is `w - lr * grad`, so any error in the gradient shows in the weights).
#
# For `y = x @ W + b` and the MSE loss over all `N * C` outputs, `dL/dy = 2 (y - t) / (N C)`,
# `dL/dW = x.T @ dL/dy`, `dL/db = sum over rows of dL/dy`. For cross-entropy on logits
# `z`, `dL/dz = (softmax(z) - onehot(t)) / N`.

# %% nbgrader={"grade": false, "grade_id": "training_test_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
def linear_model(n_in: int, n_out: int, seed: int) -> Linear:
    """A Linear layer with weights drawn from a seeded generator."""
    return Linear(n_in, n_out, rng=np.random.default_rng(seed))


def batches_of(X: np.ndarray, T: np.ndarray, sizes: list[int]) -> list[tuple[Tensor, Tensor]]:
    """Consecutive micro-batches of the given sizes, as a plain list of (inputs, targets)."""
    out, start = [], 0
    for size in sizes:
        out.append((Tensor(X[start:start + size]), Tensor(T[start:start + size])))
        start += size
    return out


def mse_grads(W, b, X, T):
    """Gradient of MSE (mean over all entries) for y = X @ W + b, in float64."""
    X, T, W, b = (np.asarray(a, dtype=np.float64) for a in (X, T, W, b))
    dY = 2.0 * (X @ W + b - T) / T.size
    return X.T @ dY, dY.sum(axis=0)


def ce_grads(W, b, X, labels):
    """Gradient of mean cross-entropy for logits X @ W + b and integer labels, in float64."""
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    Z = X @ W + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(len(labels)), labels] -= 1.0
    dZ = P / len(labels)
    return X.T @ dZ, dZ.sum(axis=0)


def clipped(gW, gb, max_norm):
    """Both gradients scaled by max_norm / norm when their global norm exceeds max_norm."""
    norm = math.sqrt(float(np.sum(gW ** 2) + np.sum(gb ** 2)))
    factor = max_norm / norm if norm > max_norm else 1.0
    return gW * factor, gb * factor, norm


def f64(x):
    return np.asarray(x, dtype=np.float64)


def small_run(seed: int = 0):
    """A small model with Dropout, momentum SGD, cosine schedule and clipping, and its data."""
    data = np.random.default_rng(100)
    X = data.standard_normal((40, 4)).astype(np.float32)
    y = data.integers(0, 3, 40)
    model = Sequential(Linear(4, 8, rng=np.random.default_rng(seed)), ReLU(),
                       Dropout(0.25, rng=np.random.default_rng(seed + 1)),
                       Linear(8, 3, rng=np.random.default_rng(seed + 2)))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss(),
                      scheduler=CosineSchedule(0.1, 0.01, total_epochs=4), grad_clip_norm=0.5)
    loader = DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, seed=3)
    return trainer, loader


def arrays_of(tree, prefix=""):
    """Every array in a state tree, by path (for comparing two states)."""
    out = {}
    if isinstance(tree, np.ndarray):
        out[prefix] = tree.copy()
    elif isinstance(tree, dict):
        for k, v in tree.items():
            out.update(arrays_of(v, f"{prefix}/{k}"))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(arrays_of(v, f"{prefix}/{i}"))
    return out


# %% nbgrader={"grade": true, "grade_id": "training_test_learning_rate", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# The optimizer's step() is wrapped to record the rate it is called with.
rng = np.random.default_rng(0)
X, T = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)
model = linear_model(3, 2, seed=1)
opt = SGD(model.parameters(), lr=5.0)
seen_lr = []
real_step = opt.step
opt.step = lambda: (seen_lr.append(float(opt.lr)), real_step())[1]
trainer = Trainer(model, opt, MSELoss(), scheduler=CosineSchedule(0.3, 0.1, total_epochs=2))
for _ in range(3):
    trainer.train_epoch(batches_of(X, T, [3, 3]))
# closed form: epoch 0 -> 0.3; epoch 1 -> 0.1 + 0.2 * (1 + cos(pi/2)) / 2 = 0.2; epoch 2 -> 0.1
want = [0.3, 0.3, 0.2, 0.2, 0.1, 0.1]
assert len(seen_lr) == 6 and np.allclose(seen_lr, want, rtol=0, atol=1e-12), (
    f"optimizer.lr at each step: expected {want}, got {seen_lr}. Hint: set the rate of epoch e "
    "from scheduler.get_lr(e) before the first step of the epoch, not after it"
)
assert np.allclose(trainer.history["learning_rates"], [0.3, 0.2, 0.1], rtol=0, atol=1e-12), (
    f"history['learning_rates']: expected [0.3, 0.2, 0.1], got {trainer.history['learning_rates']}"
)
assert trainer.epoch == 3 and trainer.step == 6, f"epoch/step: expected 3/6, got {trainer.epoch}/{trainer.step}"
print("learning rate per epoch: OK")
### BEGIN HIDDEN TESTS
assert all(type(v) is float for v in trainer.history["learning_rates"]), "record Python floats"
# without a schedule the optimizer's own rate is used and recorded
model = linear_model(3, 2, seed=1)
opt = SGD(model.parameters(), lr=0.05)
trainer = Trainer(model, opt, MSELoss())
trainer.train_epoch(batches_of(X, T, [6]))
assert trainer.history["learning_rates"] == [0.05] and float(opt.lr) == 0.05, "no schedule: lr unchanged"
# set_epoch is called with the trainer's epoch, before the batches are drawn
class EpochLoader:
    def __init__(self):
        self.calls, self.current = [], None
    def set_epoch(self, epoch):
        self.calls.append(epoch)
        self.current = epoch
    def __iter__(self):
        assert self.current is not None, "set_epoch must be called before iterating"
        return iter(batches_of(X, T, [6]))
loader = EpochLoader()
model = linear_model(3, 2, 1)
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
trainer.epoch = 5
trainer.train_epoch(loader)
trainer.train_epoch(loader)
assert loader.calls == [5, 6], f"set_epoch calls: expected [5, 6], got {loader.calls}"
# accumulation_steps must be a positive int, checked before anything changes
model = linear_model(3, 2, 1)
w_before = f64(model.weight.data).copy()
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), scheduler=CosineSchedule(0.3, 0.1, 2))
for bad in (0, -1, 1.0, 2.5, True, "2", None):
    try:
        trainer.train_epoch(batches_of(X, T, [3, 3]), accumulation_steps=bad)
        raise AssertionError(f"accumulation_steps={bad!r} must raise ValueError")
    except ValueError as error:
        assert "accumulation_steps" in str(error), f"name the argument: {error}"
assert trainer.epoch == 0 and trainer.step == 0 and trainer.history["learning_rates"] == [], (
    "a bad accumulation_steps must be rejected before any state changes"
)
assert np.array_equal(f64(model.weight.data), w_before), "weights unchanged after a rejected call"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_accumulation", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Two equal micro-batches accumulated == one batch of 8, computed with NumPy on the side.
rng = np.random.default_rng(7)
X, T = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
model = linear_model(3, 2, seed=11)
W0, b0 = f64(model.weight.data).copy(), f64(model.bias.data).copy()
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss())
trainer.train_epoch(batches_of(X, T, [4, 4]), accumulation_steps=2)
gW, gb = mse_grads(W0, b0, X, T)
assert trainer.step == 1, f"two micro-batches with accumulation_steps=2 make one update, got {trainer.step}"
got = f64(model.weight.data)
assert np.allclose(got, W0 - 0.5 * gW, rtol=0, atol=2e-6), (
    f"weights after one accumulated update: expected\n{W0 - 0.5 * gW}\ngot\n{got}\n"
    "Hint: each micro-batch's mean loss times its sample count before backward(); "
    "divide the gradients by the window's total sample count before the step"
)
print("gradient accumulation (equal micro-batches): OK")
### BEGIN HIDDEN TESTS
# Unequal micro-batches [1, 5, 2] in one window == one batch of 8 (MSE, plain SGD).
model = linear_model(3, 2, seed=11)
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss())
trainer.train_epoch(batches_of(X, T, [1, 5, 2]), accumulation_steps=3)
for got, want, name in [(model.weight.data, W0 - 0.5 * gW, "weight"), (model.bias.data, b0 - 0.5 * gb, "bias")]:
    assert np.allclose(f64(got), want, rtol=0, atol=2e-6), (
        f"unequal micro-batches [1, 5, 2]: {name} expected {want.tolist()}, got {f64(got).tolist()}. "
        "Hint: weight each micro-batch by its number of samples, not by 1/accumulation_steps"
    )
assert trainer.step == 1 and len(trainer.history["grad_norms"]) == 1, (
    f"one window of 3 micro-batches: expected 1 update and 1 recorded norm, got step={trainer.step}, "
    f"{len(trainer.history['grad_norms'])} norms"
)
assert abs(trainer.history["grad_norms"][0] - math.sqrt(np.sum(gW ** 2) + np.sum(gb ** 2))) < 1e-5, (
    "grad_norms records the norm of the averaged (big-batch) gradient"
)
# The same with clipping: the big-batch gradient clipped to 0.05, then the step.
cW, cb, norm = clipped(gW, gb, 0.05)
assert norm > 0.05, "test setup: clipping must be active"
model = linear_model(3, 2, seed=11)
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss(), grad_clip_norm=0.05)
trainer.train_epoch(batches_of(X, T, [3, 3, 2]), accumulation_steps=3)
assert np.allclose(f64(model.weight.data), W0 - 0.5 * cW, rtol=0, atol=1e-6), (
    "with clipping: the averaged gradient of the window is clipped, then one step. "
    "Hint: divide by the sample count before clip_grad_norm"
)
assert np.allclose(f64(model.bias.data), b0 - 0.5 * cb, rtol=0, atol=1e-6), (
    f"bias with clipping: expected {(b0 - 0.5 * cb).tolist()}, got {f64(model.bias.data).tolist()}"
)
assert abs(trainer.history["grad_norms"][0] - norm) < 1e-5 * norm, (
    f"grad_norms: expected the pre-clip norm {norm}, got {trainer.history['grad_norms'][0]}"
)
# Cross-entropy, windows [3, 4] and a short last window [1], no clipping: two updates,
# the second computed from the weights after the first.
labels = np.array([0, 2, 1, 1, 0, 2, 2, 1])
model = linear_model(3, 3, seed=4)
W, b = f64(model.weight.data).copy(), f64(model.bias.data).copy()
trainer = Trainer(model, SGD(model.parameters(), lr=0.3), CrossEntropyLoss())
trainer.train_epoch(batches_of(X, labels, [3, 4, 1]), accumulation_steps=2)
gW, gb = ce_grads(W, b, X[:7], labels[:7])
W, b = W - 0.3 * gW, b - 0.3 * gb
gW, gb = ce_grads(W, b, X[7:], labels[7:])
W, b = W - 0.3 * gW, b - 0.3 * gb
assert trainer.step == 2, f"windows [3, 4] and [1]: expected 2 updates, got {trainer.step}"
assert np.allclose(f64(model.weight.data), W, rtol=0, atol=2e-6) and np.allclose(f64(model.bias.data), b, atol=2e-6), (
    "cross-entropy with a short last window: the leftover micro-batch is one more update "
    "with its own (1-sample) average gradient"
)
# The same with clipping at 0.1 on each window.
model = linear_model(3, 3, seed=4)
W, b = f64(model.weight.data).copy(), f64(model.bias.data).copy()
trainer = Trainer(model, SGD(model.parameters(), lr=0.3), CrossEntropyLoss(), grad_clip_norm=0.1)
trainer.train_epoch(batches_of(X, labels, [3, 4, 1]), accumulation_steps=2)
norms = []
for rows in (slice(0, 7), slice(7, 8)):
    gW, gb, n = clipped(*ce_grads(W, b, X[rows], labels[rows]), 0.1)
    norms.append(n)
    W, b = W - 0.3 * gW, b - 0.3 * gb
assert np.allclose(f64(model.weight.data), W, rtol=0, atol=2e-6), "clipped windows with cross-entropy"
assert np.allclose(trainer.history["grad_norms"], norms, rtol=1e-5), (
    f"pre-clip norms of the two windows: expected {norms}, got {trainer.history['grad_norms']}"
)
# A last window whose loss is exactly 0 is still a window (decide by count, not by loss).
model = linear_model(3, 2, seed=2)
with no_grad():
    perfect = f64(model(Tensor(X)).data).astype(np.float32)       # targets = predictions
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
loss = trainer.train_epoch(batches_of(X, perfect, [3, 3, 2]), accumulation_steps=2)
assert trainer.step == 2 and len(trainer.history["grad_norms"]) == 2, (
    f"3 micro-batches, accumulation_steps=2: 2 updates even when the loss is 0, got {trainer.step}"
)
assert loss == 0.0, f"targets equal to the predictions: the epoch loss is 0.0, got {loss}"
# accumulation_steps larger than the number of batches: one short window
model = linear_model(3, 2, seed=11)
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss())
trainer.train_epoch(batches_of(X, T, [5, 3]), accumulation_steps=10)
gW, gb = mse_grads(W0, b0, X, T)
assert trainer.step == 1 and np.allclose(f64(model.weight.data), W0 - 0.5 * gW, atol=2e-6), (
    "accumulation_steps=10 with 2 micro-batches: one short window, equal to the big-batch update"
)
# a generator (no len()) works
model = linear_model(3, 2, seed=11)
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss())
trainer.train_epoch((batch for batch in batches_of(X, T, [2, 6])), accumulation_steps=2)
assert np.allclose(f64(model.weight.data), W0 - 0.5 * gW, atol=2e-6), "a generator of batches"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Batches of 6 and 2 samples with lr = 0 (weights fixed): the epoch loss is the MSE over
# all 8 samples, computed with NumPy on the side, not the plain mean of the two batch losses.
rng = np.random.default_rng(8)
X, T = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
model = linear_model(3, 2, seed=3)
Y = f64(X) @ f64(model.weight.data) + f64(model.bias.data)
want = float(np.mean((Y - f64(T)) ** 2))
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
got = trainer.train_epoch(batches_of(X, T, [6, 2]))
assert type(got) is float, f"train_epoch must return a Python float, got {type(got).__name__}"
assert abs(got - want) < 1e-6 * max(1.0, want), (
    f"epoch loss: expected {want:.7f} (mean over all samples), got {got:.7f}. "
    "Hint: add loss * batch_size and divide by the number of samples"
)
assert trainer.history["train_loss"] == [got], "the epoch loss is recorded in history['train_loss']"
print("sample-weighted epoch loss: OK")
### BEGIN HIDDEN TESTS
# with accumulation, and with a learning rate: losses are those of the forward passes as they happened
model = linear_model(3, 2, seed=3)
W, b = f64(model.weight.data).copy(), f64(model.bias.data).copy()
trainer = Trainer(model, SGD(model.parameters(), lr=0.2), MSELoss())
got = trainer.train_epoch(batches_of(X, T, [5, 1, 2]), accumulation_steps=2)
first = np.sum((f64(X[:6]) @ W + b - f64(T[:6])) ** 2) / 2       # sum over samples of per-sample mean
gW, gb = mse_grads(W, b, X[:6], T[:6])
W, b = W - 0.2 * gW, b - 0.2 * gb
second = np.sum((f64(X[6:]) @ W + b - f64(T[6:])) ** 2) / 2
want = float((first + second) / 8)
assert type(got) is float and abs(got - want) < 1e-6 * max(1.0, want), (
    f"epoch loss with windows [5, 1] and [2]: expected {want}, got {got}"
)
# empty epoch: nan, no ZeroDivisionError, the epoch still counts
model = linear_model(3, 2, seed=3)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
got = trainer.train_epoch([])
assert type(got) is float and math.isnan(got) and trainer.epoch == 1 and trainer.step == 0, (
    f"an empty epoch: expected loss nan (a float), epoch 1, step 0; got {got!r}, "
    f"epoch {trainer.epoch}, step {trainer.step}. Hint: no ZeroDivisionError; the epoch still counts"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_nonfinite", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# A batch of NaN inputs gives a NaN gradient: that update is skipped, the others happen.
rng = np.random.default_rng(9)
X, T = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)
X_bad = X.copy()
X_bad[2:4] = np.nan
model = linear_model(3, 2, seed=5)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), MSELoss())
printed = io.StringIO()
with np.errstate(all="ignore"), warnings.catch_warnings(), redirect_stdout(printed):
    warnings.simplefilter("ignore")
    trainer.train_epoch(batches_of(X_bad, T, [2, 2, 2]))
assert trainer.skipped_steps == 1 and trainer.step == 2, (
    f"expected 1 skipped and 2 applied updates, got skipped_steps={trainer.skipped_steps}, step={trainer.step}"
)
assert all(np.all(np.isfinite(p.data)) for p in model.parameters()), "parameters must stay finite"
assert "skipped" in printed.getvalue(), "a skipped update is reported on stdout"
print("non-finite gradients: OK")
### BEGIN HIDDEN TESTS
norms = trainer.history["grad_norms"]
assert len(norms) == 3 and math.isnan(norms[1]) and math.isfinite(norms[0]) and math.isfinite(norms[2]), (
    f"grad_norms records every window, the skipped one as nan: got {norms}"
)
assert all(p.grad is None or not np.any(p.grad) for p in model.parameters()), "gradients zeroed after the epoch"
# the skipped window leaves no trace: result equals training on the two good batches only
clean = linear_model(3, 2, seed=5)
clean_trainer = Trainer(clean, SGD(clean.parameters(), lr=0.1, momentum=0.9), MSELoss())
clean_trainer.train_epoch(batches_of(np.concatenate([X[:2], X[4:]]), np.concatenate([T[:2], T[4:]]), [2, 2]))
assert np.array_equal(f64(model.weight.data), f64(clean.weight.data)), (
    "a skipped update must not touch parameters or momentum: the run equals one without that batch"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_evaluate", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Known weights make the class scores known: W = [[1, 0, 0], [0, 1, 0]] scores x0, x1, 0.
model = Sequential(Linear(2, 3, rng=np.random.default_rng(0)), Dropout(0.5, rng=np.random.default_rng(1)))
lin = model.parameters()
lin[0].data[...] = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
lin[1].data[...] = 0.0
X = np.array([[2, 1], [0, 3], [-1, -2], [5, 4], [1, 2]], dtype=np.float32)
labels = np.array([0, 1, 2, 1, 0])          # argmax of the scores: 0, 1, 2, 0, 1 -> 3 of 5 right
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
model.train()
loss, acc = trainer.evaluate(batches_of(X, labels, [3, 2]))
scores = np.concatenate([f64(X), np.zeros((5, 1))], axis=1)
logp = scores - scores.max(1, keepdims=True) - np.log(np.exp(scores - scores.max(1, keepdims=True)).sum(1, keepdims=True))
want_loss = float(-logp[np.arange(5), labels].mean())
assert type(loss) is float and type(acc) is float, "evaluate returns two Python floats"
assert abs(acc - 0.6) < 1e-12, f"accuracy: expected 3/5 = 0.6, got {acc}"
assert abs(loss - want_loss) < 1e-5, (
    f"eval loss: expected {want_loss:.6f} (Dropout off, weighted by samples), got {loss:.6f}"
)
assert model.training is True, "evaluate must restore the mode the model was in (train)"
print("evaluate: OK")
### BEGIN HIDDEN TESTS
# one-hot targets: same answer
onehot = np.eye(3, dtype=np.float32)[labels]
loss2, acc2 = trainer.evaluate(batches_of(X, onehot, [2, 2, 1]))
assert abs(acc2 - 0.6) < 1e-12 and abs(loss2 - want_loss) < 1e-5, f"one-hot targets: got {loss2}, {acc2}"
assert trainer.history["eval_accuracy"] == [acc, acc2] and trainer.history["eval_loss"] == [loss, loss2], (
    f"evaluate records into history: expected eval_loss {[loss, loss2]} and eval_accuracy {[acc, acc2]}, "
    f"got {trainer.history['eval_loss']} and {trainer.history['eval_accuracy']}"
)
# parameters, gradients and the Dropout generator untouched; eval mode kept when it was on
marker = [np.full(p.data.shape, 7.0, dtype=np.float32) for p in model.parameters()]
for p, g in zip(model.parameters(), marker, strict=True):
    p.grad = g.copy()
before = [f64(p.data).copy() for p in model.parameters()]
rng_state = json.dumps(model.state_dict()["1.rng"], default=str)
model.eval()
trainer.evaluate(batches_of(X, labels, [5]))
assert model.training is False, "evaluate must restore eval mode when the model was in eval mode"
for p, w, g in zip(model.parameters(), before, marker, strict=True):
    assert np.array_equal(f64(p.data), w), "evaluate must not change parameters"
    assert p.grad is not None and np.array_equal(p.grad, g), "evaluate must not touch gradients"
assert json.dumps(model.state_dict()["1.rng"], default=str) == rng_state, "evaluate must not draw random numbers"
# outputs do not record a graph: a loss that checks it
class RecordingLoss:
    def __init__(self):
        self.recorded = []
    def __call__(self, out, t):
        self.recorded.append(out.requires_grad or out._op is not None)
        return CrossEntropyLoss()(out, t)
rec = RecordingLoss()
Trainer(model, SGD(model.parameters(), lr=0.1), rec).evaluate(batches_of(X, labels, [5]))
assert rec.recorded == [False], "evaluate must run under no_grad(): nothing recorded"
# regression outputs: accuracy nan, loss sample-weighted
reg = linear_model(2, 2, seed=3)
T = np.array([[0.5, -1.2], [2.0, 0.3], [0.1, 0.7]], dtype=np.float32)
Y = f64(X[:3]) @ f64(reg.weight.data) + f64(reg.bias.data)
want = float(np.mean((Y - f64(T)) ** 2))
loss, acc = Trainer(reg, SGD(reg.parameters(), lr=0.1), MSELoss()).evaluate(batches_of(X[:3], T, [1, 2]))
assert math.isnan(acc) and type(acc) is float, f"regression: accuracy must be nan, got {acc}"
assert abs(loss - want) < 1e-5 * max(1, want), f"regression eval loss: expected {want}, got {loss}"
# empty loader and a generator
loss, acc = trainer.evaluate([])
assert math.isnan(loss) and math.isnan(acc), "an empty loader gives (nan, nan)"
loss, acc = trainer.evaluate(b for b in batches_of(X, labels, [4, 1]))
assert abs(acc - 0.6) < 1e-12, "a generator of batches works (no len())"
# binary: one probability per sample and 0/1 targets
got = count_correct(Tensor([[0.9], [0.2], [0.5], [0.4]]), Tensor([[1.0], [0.0], [0.0], [1.0]]))
assert got == 2, f"binary: outputs >= 0.5 are class 1; [0.9, 0.2, 0.5, 0.4] vs [1, 0, 0, 1]: expected 2, got {got}"
got = count_correct(Tensor([[0.1, 0.9], [0.8, 0.2]]), Tensor(np.array([1, 1])))
assert got == 1 and type(got) is int, f"argmax [1, 0] vs labels [1, 1]: expected the int 1, got {got!r}"
got = count_correct(Tensor([[0.3], [2.5]]), Tensor([[0.3], [2.5]]))
assert got is None, f"regression targets (not 0/1): expected None, got {got!r}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_checkpoint", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
import shutil

folder = tempfile.mkdtemp()
path = os.path.join(folder, "run.ckpt")
trainer, loader = small_run()
trainer.train_epoch(loader, accumulation_steps=2)
trainer.evaluate(loader)
trainer.save_checkpoint(path)
saved = arrays_of(trainer.state_dict())
counters = (trainer.epoch, trainer.step, json.dumps(trainer.history))
trainer.train_epoch(loader)                      # change everything
trainer.load_checkpoint(path)
now = arrays_of(trainer.state_dict())
assert (trainer.epoch, trainer.step, json.dumps(trainer.history)) == counters, "counters and history restored"
assert saved.keys() == now.keys(), f"state entries differ: {sorted(saved.keys() ^ now.keys())}"
for key in saved:
    assert np.array_equal(saved[key], now[key]), f"{key} not restored exactly"
print("checkpoint round trip: OK")
### BEGIN HIDDEN TESTS
# every counter, the optimizer's settings and the generator states, compared as plain values
state = trainer.state_dict()
assert type(trainer.epoch) is int and trainer.epoch == 1 and type(trainer.step) is int, (
    f"after loading: epoch must be the int 1 and step an int, got {trainer.epoch!r}, {trainer.step!r}"
)
assert state["optimizer"]["type"] == "SGD", f"optimizer type: expected 'SGD', got {state['optimizer']['type']!r}"
assert float(trainer.optimizer.lr) == float(state["optimizer"]["hyperparameters"]["lr"]), "optimizer lr restored"
assert trainer.history["learning_rates"] == [0.1], "the rate of epoch 0 is max_lr = 0.1"
assert json.dumps(trainer.model.state_dict()["2.rng"], default=str) != "", "Dropout generator state kept"
# the saved configuration wins: a trainer built with other settings takes the file's
other, _ = small_run()
other.optimizer.momentum = 0.5
other.grad_clip_norm = 3.0
other.scheduler.max_lr = 0.9
other.load_checkpoint(path)
assert other.grad_clip_norm == 0.5 and other.scheduler.max_lr == 0.1, "schedule and clipping come from the file"
assert float(other.optimizer.state_dict()["hyperparameters"]["momentum"]) == 0.9, "optimizer settings from the file"
for key, value in arrays_of(other.state_dict()).items():
    assert np.array_equal(value, saved[key]), f"fresh trainer: {key} differs after load"
# no pickle: the file opens with allow_pickle=False and has named members
with np.load(path, allow_pickle=False) as archive:
    names = set(archive.files)
    assert "model/0.weight" in names and "checkpoint.json" in names, f"members: {sorted(names)}"
    header = json.loads(archive["checkpoint.json"].tobytes())
assert header["version"] == CHECKPOINT_VERSION and header["state"]["epoch"] == 1, (
    f"checkpoint.json: expected version {CHECKPOINT_VERSION} and epoch 1, got {header['version']}, "
    f"{header['state'].get('epoch')}"
)


def unchanged_after_failure(trainer, bad_path, must_mention):
    before = arrays_of(trainer.state_dict())
    counters = (trainer.epoch, trainer.step, json.dumps(trainer.history), trainer.grad_clip_norm)
    try:
        trainer.load_checkpoint(bad_path)
        raise AssertionError(f"loading {bad_path} must raise CheckpointError")
    except CheckpointError as error:
        message = str(error)
        assert str(bad_path) in message, f"the error must name the file: {message}"
        assert must_mention.lower() in message.lower(), f"the error should mention {must_mention!r}: {message}"
    assert isinstance(CheckpointError("x"), ValueError), "CheckpointError is a ValueError"
    assert (trainer.epoch, trainer.step, json.dumps(trainer.history), trainer.grad_clip_norm) == counters, (
        "a failed load must leave epoch, step, history and grad_clip_norm as they were"
    )
    after = arrays_of(trainer.state_dict())
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before), (
        "a failed load must leave the trainer exactly as it was"
    )


victim, victim_loader = small_run(seed=7)
victim.train_epoch(victim_loader)
data = open(path, "rb").read()
truncated = os.path.join(folder, "truncated.ckpt")
with open(truncated, "wb") as f:
    f.write(data[: len(data) // 2])
unchanged_after_failure(victim, truncated, "")
garbage = os.path.join(folder, "garbage.ckpt")
with open(garbage, "wb") as f:
    f.write(b"not a checkpoint at all")
unchanged_after_failure(victim, garbage, "")
corrupt = os.path.join(folder, "corrupt.ckpt")
flipped = bytearray(data)
weight_at = data.find(b"model/0.weight.npy") + 200       # inside the first weight's bytes
flipped[weight_at] ^= 0xFF
with open(corrupt, "wb") as f:
    f.write(bytes(flipped))
unchanged_after_failure(victim, corrupt, "")
unchanged_after_failure(victim, os.path.join(folder, "missing.ckpt"), "")


def rewrite(new_path, edit):
    """Copy the checkpoint with its JSON header edited by `edit(header)`."""
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    header = json.loads(members["checkpoint.json"].tobytes())
    edit(header)
    members["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(new_path, "wb") as f:
        np.savez(f, **members)


newer = os.path.join(folder, "newer.ckpt")
rewrite(newer, lambda h: h.update(version=CHECKPOINT_VERSION + 1))
unchanged_after_failure(victim, newer, "version")
no_optimizer = os.path.join(folder, "no_optimizer.ckpt")
rewrite(no_optimizer, lambda h: h["state"].pop("optimizer"))
unchanged_after_failure(victim, no_optimizer, "optimizer")
bad_epoch = os.path.join(folder, "bad_epoch.ckpt")
rewrite(bad_epoch, lambda h: h["state"].update(epoch=-3))
unchanged_after_failure(victim, bad_epoch, "epoch")
# the optimizer refuses momentum = -1 after the model was already loaded: all must be put back
bad_momentum = os.path.join(folder, "bad_momentum.ckpt")
rewrite(bad_momentum, lambda h: h["state"]["optimizer"]["hyperparameters"].update(momentum=-1.0))
unchanged_after_failure(victim, bad_momentum, "momentum")
# a model of another shape: the parameter is named
wide = Sequential(Linear(4, 9, rng=np.random.default_rng(0)), ReLU(), Dropout(0.25, rng=np.random.default_rng(1)),
                  Linear(9, 3, rng=np.random.default_rng(2)))
wide_trainer = Trainer(wide, SGD(wide.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss(),
                       scheduler=CosineSchedule(0.1, 0.01, total_epochs=4), grad_clip_norm=0.5)
unchanged_after_failure(wide_trainer, path, "0.weight")
# an Adam trainer cannot load a momentum-SGD checkpoint
adam_model = Sequential(Linear(4, 8, rng=np.random.default_rng(0)), ReLU(), Dropout(0.25, rng=np.random.default_rng(1)),
                        Linear(8, 3, rng=np.random.default_rng(2)))
adam_trainer = Trainer(adam_model, Adam(adam_model.parameters(), lr=0.01), CrossEntropyLoss(),
                       scheduler=CosineSchedule(0.1, 0.01, total_epochs=4), grad_clip_norm=0.5)
unchanged_after_failure(adam_trainer, path, "optimizer")
# atomic save: a failing write leaves the previous file intact and no temporary files behind
good = open(path, "rb").read()
broken = small_run()[0]
broken.history["train_loss"] = [object()]            # cannot be stored
try:
    broken.save_checkpoint(path)
except (TypeError, ValueError):
    pass
assert open(path, "rb").read() == good, "a failed save must leave the previous checkpoint intact"
assert sorted(os.listdir(folder)) == sorted(["run.ckpt", "truncated.ckpt", "garbage.ckpt", "corrupt.ckpt",
                                             "newer.ckpt", "no_optimizer.ckpt", "bad_epoch.ckpt",
                                             "bad_momentum.ckpt"]), (
    f"temporary files left behind: {sorted(os.listdir(folder))}"
)
### END HIDDEN TESTS
shutil.rmtree(folder, ignore_errors=True)  # the test's scratch folder

# %% [markdown]
# ## 6. Exact resume
#
# The test of a checkpoint system: train 4 epochs straight; separately train 2, save,
# build **new** objects (new model, optimizer, schedule, loader: as after a crash), load,
# and train 2 more. Shuffling, Dropout, momentum or Adam, the schedule, clipping and
# accumulation are all on. The two runs must end with **bitwise identical** parameters
# and history: not close, equal.

# %%
def resume_run(seed_dropout: int, optimizer: str):
    data = np.random.default_rng(42)
    X = data.standard_normal((50, 4)).astype(np.float32)
    y = data.integers(0, 3, 50)
    model = Sequential(Linear(4, 16, rng=np.random.default_rng(0)), ReLU(),
                       Dropout(0.3, rng=np.random.default_rng(seed_dropout)),
                       Linear(16, 3, rng=np.random.default_rng(1)))
    opt = (Adam(model.parameters(), lr=0.01) if optimizer == "adam"
           else SGD(model.parameters(), lr=0.05, momentum=0.9))
    trainer = Trainer(model, opt, CrossEntropyLoss(),
                      scheduler=CosineSchedule(0.05, 0.005, total_epochs=4), grad_clip_norm=0.5)
    return trainer, DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=5)


def check_resume(optimizer: str, folder: str) -> tuple[Trainer, Trainer]:
    straight, loader = resume_run(seed_dropout=2, optimizer=optimizer)
    for _ in range(4):
        straight.train_epoch(loader, accumulation_steps=2)
        straight.evaluate(loader)
    first, loader = resume_run(seed_dropout=2, optimizer=optimizer)
    for _ in range(2):
        first.train_epoch(loader, accumulation_steps=2)
        first.evaluate(loader)
    path = os.path.join(folder, f"resume_{optimizer}.ckpt")
    first.save_checkpoint(path)
    resumed, loader = resume_run(seed_dropout=99, optimizer=optimizer)   # other Dropout seed: must be restored
    resumed.load_checkpoint(path)
    for _ in range(2):
        resumed.train_epoch(loader, accumulation_steps=2)
        resumed.evaluate(loader)
    return straight, resumed


resume_folder = tempfile.mkdtemp()
straight, resumed = check_resume("adam", resume_folder)
same = all(np.array_equal(a.data, b.data) for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True))
print("Adam, 4 epochs vs 2 + resume + 2: parameters bitwise equal:", same,
      "| history equal:", json.dumps(straight.history) == json.dumps(resumed.history))

# %% nbgrader={"grade": true, "grade_id": "training_test_resume", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
for optimizer in ("sgd", "adam"):
    straight, resumed = check_resume(optimizer, resume_folder)
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        assert np.array_equal(f64(a.data), f64(b.data)), (
            f"{optimizer}: parameter {name} differs after resume (max diff "
            f"{np.max(np.abs(f64(a.data) - f64(b.data)))}). Hint: the checkpoint must restore the "
            "optimizer buffers, the Dropout generator, the epoch (for set_epoch and the schedule)"
        )
    assert (straight.epoch, straight.step) == (resumed.epoch, resumed.step) == (4, 16), (
        f"{optimizer}: epoch/step expected (4, 16) for both runs, got "
        f"{(straight.epoch, straight.step)} and {(resumed.epoch, resumed.step)}"
    )
print("exact resume: OK")
### BEGIN HIDDEN TESTS
for optimizer in ("sgd", "adam"):
    straight, resumed = check_resume(optimizer, resume_folder)
    for key in Trainer.HISTORY_KEYS:
        a = f64(straight.history[key])
        b = f64(resumed.history[key])
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), (
            f"{optimizer}: history[{key!r}] differs after resume:\n{a}\n{b}"
        )
        assert all(type(v) is float for v in resumed.history[key]), f"history[{key!r}] holds Python floats"
    sa, sb = arrays_of(straight.optimizer.state_dict()), arrays_of(resumed.optimizer.state_dict())
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa), f"{optimizer} buffers"
    assert straight.model.state_dict()["2.rng"] == resumed.model.state_dict()["2.rng"], "Dropout generator"
    assert len(straight.history["grad_norms"]) == straight.step == 16, "4 epochs x 4 windows of 2 batches"
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Systems: what training costs in memory
#
# Training holds more than the model: for every parameter there is a gradient of the
# same size, and the optimizer keeps its own buffers (momentum: one per parameter;
# Adam: two). On top come the **activations**: every intermediate result of the forward
# pass that the backward pass needs, which grows with the batch size.
#
# We measure each part with the package on an MLP `784 -> 256 -> 128 -> 10` (a
# digit classifier) and a batch of 64:
#
# * parameters, gradients and optimizer buffers by their `nbytes`;
# * the peak of one forward + backward pass with `tracemalloc` (NumPy reports its array
#   allocations to it), minus the gradients, is what the activations and temporaries cost;
# * the checkpoint size on disk, against the parameters' bytes.

# %%
def mlp(seed: int) -> Sequential:
    r = np.random.default_rng(seed)
    return Sequential(Linear(784, 256, rng=r), ReLU(), Linear(256, 128, rng=r), ReLU(), Linear(128, 10, rng=r))


def buffer_bytes(optimizer) -> int:
    return sum(a.nbytes for a in arrays_of(optimizer.state_dict()).values())


mem_rng = np.random.default_rng(0)
x_mem = Tensor(mem_rng.standard_normal((64, 784)).astype(np.float32))
y_mem = Tensor(mem_rng.integers(0, 10, 64))
rows = {}
for label, make in [("SGD", lambda p: SGD(p, lr=0.01)),
                    ("SGD momentum", lambda p: SGD(p, lr=0.01, momentum=0.9)),
                    ("Adam", lambda p: Adam(p, lr=0.001))]:
    net = mlp(0)
    opt = make(net.parameters())
    trainer = Trainer(net, opt, CrossEntropyLoss())
    trainer.train_epoch([(x_mem, y_mem)])                        # one step creates the buffers
    params_b = sum(p.data.nbytes for p in net.parameters())
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    CrossEntropyLoss()(net(x_mem), y_mem).backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grads_b = sum(p.grad.nbytes for p in net.parameters())
    opt.zero_grad()
    ckpt_path = os.path.join(resume_folder, f"mem_{label.replace(' ', '_')}.ckpt")
    trainer.save_checkpoint(ckpt_path)
    rows[label] = dict(params=params_b, grads=grads_b, optimizer=buffer_bytes(opt),
                       activations=max(0, peak - base - grads_b), checkpoint=os.path.getsize(ckpt_path))
shutil.rmtree(resume_folder, ignore_errors=True)  # scratch checkpoints, measured

n_params = sum(p.data.size for p in mlp(0).parameters())
print(f"{n_params:,} parameters = {rows['SGD']['params'] / 1e6:.3f} MB in float32\n")
print(f"{'':>13} {'params':>8} {'grads':>8} {'optim':>8} {'activ.':>8} {'total':>8} {'x params':>9} {'ckpt':>8}")
for label, r in rows.items():
    total = r["params"] + r["grads"] + r["optimizer"] + r["activations"]
    print(f"{label:>13} " + " ".join(f"{r[k] / 1e6:8.3f}" for k in ("params", "grads", "optimizer", "activations"))
          + f" {total / 1e6:8.3f} {total / r['params']:9.2f} {r['checkpoint'] / 1e6:8.3f}")

# %%
labels_ = list(rows)
bottom = np.zeros(len(labels_))
plt.figure(figsize=(6.5, 3.6))
for part, color in [("params", "tab:blue"), ("grads", "tab:orange"), ("optimizer", "tab:green"),
                    ("activations", "tab:red")]:
    values = np.array([rows[k][part] / 1e6 for k in labels_])
    plt.bar(labels_, values, bottom=bottom, label=part, color=color)
    bottom += values
plt.ylabel("MB")
plt.title("Training memory of a 784-256-128-10 MLP, batch 64 (measured)")
plt.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The activations are the part that depends on the batch. The same measurement for
# several batch sizes (forward + backward peak, minus the gradients):

# %%
def activation_bytes(net: Sequential, batch: int, rng: np.random.Generator) -> int:
    """Peak memory of one forward + backward pass beyond the gradients, by tracemalloc."""
    x = Tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, batch))
    for p in net.parameters():
        p.grad = None
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    CrossEntropyLoss()(net(x), y).backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return max(0, peak - base - sum(p.grad.nbytes for p in net.parameters()))


sweep_net, sweep_rng = mlp(0), np.random.default_rng(1)
param_bytes = rows["SGD"]["params"]
batch_sizes = [16, 64, 256, 1024]
acts = [activation_bytes(sweep_net, b, sweep_rng) for b in batch_sizes]
print(f"{'batch':>6} {'activations MB':>15} {'per sample KB':>14} {'SGD total x':>12} {'Adam total x':>13}")
for b, a in zip(batch_sizes, acts, strict=True):
    print(f"{b:>6} {a / 1e6:15.3f} {a / b / 1e3:14.2f} {(2 * param_bytes + a) / param_bytes:12.2f} "
          f"{(4 * param_bytes + a) / param_bytes:13.2f}")
plt.figure(figsize=(6, 3.2))
plt.loglog(batch_sizes, [a / 1e6 for a in acts], marker="o", label="activations + temporaries")
plt.axhline(param_bytes / 1e6, color="tab:blue", linestyle=":", label="parameters")
plt.axhline(3 * param_bytes / 1e6, color="tab:green", linestyle=":", label="grads + Adam state")
plt.xlabel("batch size")
plt.ylabel("MB")
plt.title("Activation memory grows with the batch, the rest does not")
plt.legend()
plt.grid(alpha=0.3, which="both")
plt.tight_layout()
plt.show()

# %% [markdown]
# **What the measurement says.** Parameters, gradients and optimizer buffers come out
# exactly as counted: the gradients are 1x the parameters, the optimizer adds 0x (plain
# SGD), 1x (momentum) or 2x (Adam). So the fixed part of training memory is 2x, 3x or 4x
# the model, set by the optimizer alone.
#
# The claim one often reads, "training needs 4-6x the model's memory", is therefore only
# right for some settings. With Adam and a moderate batch the total does land there
# (measured above: about 4.4x at a batch of 64, 5.6x at 256). With plain SGD and a small
# batch it is closer to 2x. And no fixed ratio holds in general, because the activations scale with
# the batch (a few kilobytes per sample for this MLP, linear in the batch size): at a
# batch of 1024 they alone are several times the parameters and the total is around 10x.
# For large models with long inputs the activations are usually the biggest item, which
# is exactly when gradient accumulation (smaller micro-batches, the same update) helps:
# it divides the activation memory by the number of micro-batches and changes nothing else.
#
# The checkpoint stores parameters and optimizer buffers (plus a few kilobytes of
# headers and history), so its size is 1x, 2x or 3x the parameters for SGD, momentum and
# Adam: the raw bytes, no compression, no hidden copies.
#
# **Time.** The Trainer's own work per update (a norm over the gradients, a division when
# accumulating, a few Python calls) is small next to the forward and backward passes:
# `bench/trainer_bench.py` measures it against a hand-written loop doing the same work.
#
# ## Summary
#
# * `CosineSchedule` sets the rate of each epoch from a closed form, before the epoch runs.
# * `clip_grad_norm` bounds the length of the whole gradient and keeps its direction,
#   with a norm that neither overflows nor underflows; it returns the norm to log.
# * `Trainer.train_epoch` accumulates micro-batches so the update equals the big-batch
#   update exactly, and skips updates whose gradient is not finite.
# * `Trainer.evaluate` measures without changing anything.
# * Checkpoints are plain arrays and JSON, written atomically, loaded all-or-nothing, and
#   a resumed run continues bit for bit.
#
# These pieces complete the foundation: the milestones that follow train their networks
# with this `Trainer`.
