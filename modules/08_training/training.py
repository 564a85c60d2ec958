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
# | part | what it answers | section |
# |---|---|---|
# | `CosineSchedule` | which learning rate does epoch *e* use? | 1 |
# | `clip_grad_norm` | what if one batch produces an enormous gradient? | 2 |
# | `Trainer.train_epoch` | one pass over the data, with gradient accumulation when a batch does not fit in memory | 3.1, 3.2 |
# | `Trainer.evaluate` | how good is the model, measured without changing it? | 3.3 |
# | `Trainer.save_checkpoint` / `load_checkpoint` | can a run that crashed continue *exactly* where it stopped? | 3.4-3.6 |
#
# The `Trainer` is built one job at a time: section 3 gives its frame, and each of its
# six steps (closing an accumulation window, one epoch, evaluation, saving, checking a
# checkpoint, loading) is a function you write, with its own explanation, a worked
# example and its own tests.
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
from typing import Any, NoReturn

import numpy as np

from tinytorch.core.tensor import Tensor, no_grad

# %% nbgrader={"grade": false, "grade_id": "training_demo_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
# The parts built in modules 01-07, used by the examples and tests of this notebook.
import io
import shutil
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

# %% nbgrader={"grade": true, "grade_id": "training_test_cosine", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
s = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=100)
for epoch, want in [(25, 0.0868198), (50, 0.055), (75, 0.0231802)]:
    got = s.get_lr(epoch)
    assert type(got) is float, f"get_lr must return a Python float, got {type(got).__name__}. Hint: math.cos"
    assert abs(got - want) < 1e-6, (
        f"get_lr({epoch}): expected {want} (= 0.01 + 0.09 * (1 + cos(pi * {epoch} / 100)) / 2), got {got}"
    )
print("CosineSchedule values: OK")
### BEGIN HIDDEN TESTS
# Expected values in closed form: cos(pi/4) = sqrt(2)/2, cos(pi/3) = 1/2, cos(2pi/3) = -1/2,
# cos(3pi/4) = -sqrt(2)/2.
r2 = math.sqrt(2.0) / 2.0
cases = [
    ((1.0, 0.0, 4), 1, (1 + r2) / 2),                        # 0.8535534
    ((1.0, 0.0, 4), 2, 0.5),
    ((1.0, 0.0, 4), 3, (1 - r2) / 2),                        # 0.1464466
    ((0.5, 0.1, 3), 1, 0.1 + 0.4 * (1 + 0.5) / 2),           # 0.4
    ((0.5, 0.1, 3), 2, 0.1 + 0.4 * (1 - 0.5) / 2),           # 0.2
    ((0.2, 0.2, 10), 7, 0.2),                                # constant schedule
]
for (hi, lo, total), epoch, want in cases:
    got = CosineSchedule(hi, lo, total).get_lr(epoch)
    assert type(got) is float and abs(got - want) < 1e-12, (
        f"a schedule with other settings gives a wrong rate (got {got!r}, a {type(got).__name__}). "
        "Hint: min_lr + (max_lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2, as a Python float"
    )
got = CosineSchedule(0.1, 0.01, 10).get_lr(np.int64(3))
assert type(got) is float, f"a NumPy int epoch must give a Python float too, got {type(got).__name__}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_cosine_ends", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
s = CosineSchedule(max_lr=5.2, min_lr=1.1, total_epochs=7)
assert s.get_lr(0) == 5.2, f"epoch 0 must give max_lr itself, 5.2, got {s.get_lr(0)!r}"
assert s.get_lr(7) == 1.1, f"epoch total_epochs must give min_lr itself, 1.1, got {s.get_lr(7)!r}"
got = [CosineSchedule(0.1, 0.01, 100).get_lr(e) for e in (100, 150)]
assert got == [0.01, 0.01] and all(type(v) is float for v in got), (
    f"from total_epochs on the rate is held at min_lr (a Python float): expected [0.01, 0.01], got {got}"
)
print("CosineSchedule ends: OK")
### BEGIN HIDDEN TESTS
# 0.1 + (0.3 - 0.1) is 0.30000000000000004 in floating point: the start must be max_lr itself
assert CosineSchedule(0.3, 0.1, 5).get_lr(0) == 0.3, "epoch 0 must give max_lr itself (no rounding)"
for (hi, lo, total), epoch in [((1.0, 0.0, 4), 4), ((1.0, 0.0, 4), 9), ((0.3, 0.0, 1), 1), ((0.5, 0.1, 3), 300)]:
    got = CosineSchedule(hi, lo, total).get_lr(epoch)
    assert type(got) is float and got == lo, (
        f"from total_epochs on the rate is min_lr itself, as a Python float (got {got!r}, a {type(got).__name__})"
    )
got = CosineSchedule(1, 0, 10).get_lr(20)
assert type(got) is float and got == 0.0, f"past the end with int settings: min_lr as a Python float, got {got!r}"
assert CosineSchedule(0.3, 0.0, 1).get_lr(0) == 0.3, "a one-epoch schedule starts at max_lr"
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
#   `[-1, 1]`, and compute `m * sqrt(sum((g / m)^2))`, in float64. (Summing float32
#   squares in float64 is enough for float32 gradients; float64 gradients near the ends of
#   float64's range, `1e200` or `1e-200`, need the division by `m` too.)
#
#   That float64 shortcut holds for the 1-norm and the 2-norm only, where every
#   `|g|` or `g^2` of a float32 number fits float64's range. For other `p` it does not:
#   float32 gradients of `4e37` give `(4e37)^10 = 1e377`, beyond float64's `1.8e308`, and
#   gradients of `4e-38` give `(4e-38)^10`, below float64's smallest number. So for
#   every `p` other than 1 and 2, divide by `m` first, whatever the dtype:
#   `m * (sum(|g / m|^p))^(1/p)`. The rule is the same for every norm: for finite
#   entries, the norm is finite whenever the true norm fits float64.
# * **Not finite.** If some gradient holds `inf` or `nan`, the norm is not finite and no
#   factor can repair it. Then nothing is changed and the non-finite norm is returned,
#   so the caller can skip the step (the `Trainer` does). With `error_if_nonfinite=True`
#   it raises instead.
# * **In place.** The gradient arrays are scaled in place (`g *= factor`): no new arrays,
#   and anyone holding a reference sees the clipped values.
# * **Shared arrays.** The norm is taken over the parameters as they are listed: every
#   parameter with a gradient counts with that gradient, also when two parameters hold the
#   very same array, or one parameter is listed twice (PyTorch counts them the same way).
#   But every array is **scaled once**: one multiplication of a shared array already
#   scales the gradient of each parameter that holds it, and a second one would scale them
#   by the factor squared. Worked example: parameters `a` and `b` whose `.grad` is one
#   array `[3, 4]` have the norm `sqrt(9 + 16 + 9 + 16) = sqrt(50) = 7.0711`; with
#   `max_norm = 1` the array becomes `[3, 4] / 7.0711 = [0.4243, 0.5657]`, and the norm of
#   the two parameters is then exactly 1. The given helper `_distinct` lists each array
#   once, for the scaling. (A weight shared by two layers of a model, "tied weights", is
#   one parameter: `model.parameters()` lists it once, so it counts once.)
# * **Other norms.** `norm_type` may be any `p > 0` (`(sum |g_i|^p)^(1/p)`) or `math.inf`
#   (the largest magnitude).
# * **Compared with PyTorch.** `torch.nn.utils.clip_grad_norm_` multiplies by
#   `min(1, max_norm / (norm + 1e-6))`. The `1e-6` guards against a division by zero;
#   we only divide when `norm > max_norm >= 0`, so no guard is needed, and the clipped
#   norm is exactly `max_norm` (torch's is a hair smaller, and torch also shrinks
#   gradients whose norm is within `1e-6` below `max_norm`). The returned value is the
#   same: the total norm before clipping. A tensor that appears twice in the list is
#   multiplied twice by torch (by the factor squared); we scale each array once, so that
#   after clipping the norm of the list is `max_norm`.
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
    """The arrays with repeats of the same object removed, in order: each array once, for
    scaling. (The norm still counts every parameter's gradient, shared or not.)"""
    seen: set[int] = set()
    out = []
    for array in arrays:
        if id(array) not in seen:
            seen.add(id(array))
            out.append(array)
    return out


def _total_norm(grads: list[np.ndarray], norm_type: float = 2.0) -> float:
    """The `norm_type`-norm of all `grads` taken as one vector, as a Python float.

    No overflow or underflow for any finite entries and any norm: float32 squares (p = 2)
    are summed in float64 (whose range holds them all); otherwise, and for every p other
    than 1 and 2 even in float32, the entries are divided by the largest magnitude before
    powers are taken, in float64 (the largest of all the arrays, or of each array with the
    per-array norms combined: either keeps every entry in [-1, 1]). Returns inf or nan
    when an entry is not finite, 0.0 for no gradients.
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

# %% nbgrader={"grade": false, "grade_id": "training_clip_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
def with_grad(values):
    """A parameter whose gradient is `values` (float32)."""
    t = Tensor(np.zeros(np.shape(values)), requires_grad=True)
    t.grad = np.array(values, dtype=np.float32)
    return t


@contextlib.contextmanager
def quietly():
    """No NumPy warnings about arithmetic with nan and inf inside: the tests that use it are
    about what happens to the numbers (a warning would go to stderr and fail the cell)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield

# %% nbgrader={"grade": true, "grade_id": "training_test_clip", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
a, b, c = with_grad([100.0]), with_grad([200.0]), with_grad([50.0])
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
print("clip_grad_norm: OK")
### BEGIN HIDDEN TESTS
# several parameters (matrices), a parameter without a gradient in between; NumPy on the side
rng = np.random.default_rng(3)
mats = [rng.standard_normal(shape).astype(np.float32) for shape in [(4, 3), (3,), (2, 2, 2)]]
params = [with_grad(m) for m in mats]
params.insert(1, Tensor([5.0], requires_grad=True))            # grad None: ignored
ref = math.sqrt(sum(float(np.sum(m.astype(np.float64) ** 2)) for m in mats))
got = clip_grad_norm(params, max_norm=0.5)
assert type(got) is float and abs(got - ref) < 1e-9 * ref, (
    f"global norm of three matrix gradients: wrong value {got!r}. Hint: the square root of the sum of the "
    "squares of every entry of every gradient, returned as a Python float"
)
for p, m in zip([params[0], params[2], params[3]], mats, strict=True):
    want = m.astype(np.float64) * (0.5 / ref)
    assert np.allclose(np.asarray(p.grad, dtype=np.float64), want, rtol=1e-6, atol=0), (
        "every gradient must be multiplied by the same factor max_norm / norm"
    )
assert abs(float(np.sqrt(sum(np.sum(np.asarray(p.grad, dtype=np.float64) ** 2) for p in params if p.grad is not None))) - 0.5) < 1e-6, (
    "after clipping, the global norm is max_norm"
)
assert params[1].grad is None, "a parameter without gradient keeps grad None"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_clip_below", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
small = with_grad([0.3, 0.4])
got = clip_grad_norm([small], max_norm=1.0)
assert abs(got - 0.5) < 1e-7 and np.array_equal(small.grad, np.float32([0.3, 0.4])), (
    f"a norm of 0.5 is below max_norm 1.0: the norm is returned and the gradient stays exactly as it was; "
    f"got {got} and {small.grad}"
)
got = clip_grad_norm([Tensor([1.0], requires_grad=True)], max_norm=1.0)
assert got == 0.0 and type(got) is float, f"no gradients at all: the norm is the float 0.0, got {got!r}"
### BEGIN HIDDEN TESTS
# 3-4-5 triangle exactly at the limit: nothing changes (clip only when norm > max_norm)
edge = with_grad([3.0, -4.0])
got = clip_grad_norm([edge], max_norm=5.0)
assert type(got) is float and got == 5.0 and np.array_equal(edge.grad, np.float32([3, -4])), (
    f"a norm exactly equal to max_norm: no scaling; got norm {got}, gradient {edge.grad}"
)
got = clip_grad_norm([], max_norm=1.0)
assert got == 0.0 and type(got) is float, f"no parameters: expected the float 0.0, got {got!r}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_clip_in_place", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
p = with_grad([30.0, -40.0])
held = p.grad                                    # someone holds a reference to the gradient
clip_grad_norm([p], max_norm=10.0)
assert p.grad is held and np.allclose(held, [6.0, -8.0]), (
    f"clip in place: the existing gradient array is scaled (grad *= factor), not replaced; "
    f"the held array should be [6, -8], got {held}"
)
### BEGIN HIDDEN TESTS
a, c = with_grad([[1.0, 2.0], [2.0, 4.0]]), with_grad([0.0, 5.0])   # norm sqrt(1 + 4 + 4 + 16 + 25) = sqrt(50)
grads_before = [a.grad, c.grad]
clip_grad_norm([a, c], max_norm=0.0)                                   # max_norm 0 clips everything to zero
assert a.grad is grads_before[0] and c.grad is grads_before[1], (
    "clip in place: scale the existing gradient arrays, do not replace them"
)
assert not np.any(grads_before[0]) and not np.any(grads_before[1]), "max_norm = 0: every gradient becomes zero"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_clip_range", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
t = with_grad([3e20, 4e20])                     # the squares overflow float32
got = clip_grad_norm([t], max_norm=1.0)
want = float(np.float32(3e20)) * 5.0 / 3.0       # 5e20, from the stored float32
assert math.isfinite(got) and abs(got - want) < 1e-6 * want, (
    f"norm of [3e20, 4e20]: expected {want:.6g}, got {got}. "
    "Hint: float32 squares overflow; work in float64, or divide by the largest magnitude first"
)
assert np.allclose(np.asarray(t.grad, dtype=np.float64), [0.6, 0.8], rtol=1e-6), f"clipped: expected [0.6, 0.8], got {t.grad}"
# the 10-norm of float32 [3e37, 4e37]: (4e37)^10 overflows even float64; b (1 + (a/b)^10)^(1/10), in Python floats
a10, b10 = float(np.float32(3e37)), float(np.float32(4e37))
want10 = b10 * (1.0 + (a10 / b10) ** 10) ** 0.1
got10 = clip_grad_norm([with_grad([3e37, 4e37])], max_norm=1.0, norm_type=10)
assert math.isfinite(got10) and abs(got10 - want10) < 1e-6 * want10, (
    f"10-norm of [3e37, 4e37]: expected {want10:.6g}, got {got10}. "
    "Hint: for p other than 1 and 2, divide by the largest magnitude first, also in float32"
)
### BEGIN HIDDEN TESTS
# tiny gradients: their float32 squares underflow to 0; the norm must not
t = with_grad([3e-30, 4e-30])
got = clip_grad_norm([t], max_norm=1.0)
want = float(np.float32(3e-30)) * 5.0 / 3.0
assert got > 0 and abs(got - want) < 1e-6 * want, (
    f"norm of tiny float32 gradients: got {got}. Hint: their squares underflow in float32; work in float64, "
    "or divide by the largest magnitude first"
)
assert np.array_equal(t.grad, np.float32([3e-30, 4e-30])), "tiny gradients are below max_norm and stay as they are"
# float64 gradients near the top of float64's range: dividing by the largest magnitude first is needed
big = Tensor(np.zeros(2), requires_grad=True)
big.grad = np.array([3e200, 4e200])
got = clip_grad_norm([big], max_norm=1.0)
assert math.isfinite(got) and abs(got - 5e200) < 1e-9 * 5e200, (
    f"norm of float64 gradients [3e200, 4e200]: expected 5e200, got {got}. "
    "Hint: divide each array by its largest magnitude before taking powers"
)
# other norms of float32 gradients: (4e-38)^10 underflows float64, (2e20)^20 overflows it; closed form in Python floats
a, b = float(np.float32(3e-38)), float(np.float32(4e-38))
got = clip_grad_norm([with_grad([3e-38]), with_grad([-4e-38])], max_norm=1.0, norm_type=10)
want = b * (1.0 + (a / b) ** 10) ** 0.1
assert got > 0 and abs(got - want) < 1e-6 * want, (
    f"10-norm of tiny float32 gradients: got {got}. Hint: for p other than 1 and 2, divide by the largest magnitude first"
)
a, b = float(np.float32(1e20)), float(np.float32(2e20))
got = clip_grad_norm([with_grad([1e20, -2e20])], max_norm=1.0, norm_type=20)
want = b * (1.0 + (a / b) ** 20) ** 0.05
assert math.isfinite(got) and abs(got - want) < 1e-6 * want, (
    f"20-norm of float32 gradients [1e20, -2e20]: expected {want:.6g}, got {got}. "
    "Hint: for p other than 1 and 2, divide by the largest magnitude first"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_clip_nonfinite", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
t = with_grad([1.0, np.nan, 2.0])
other = with_grad([1e3])
with quietly():
    got = clip_grad_norm([t, other], max_norm=1.0)
assert type(got) is float and math.isnan(got), f"a nan gradient gives a nan norm (a Python float), got {got!r}"
assert np.array_equal(t.grad, np.float32([1.0, np.nan, 2.0]), equal_nan=True) and other.grad[0] == 1e3, (
    "a norm that is not finite: leave every gradient unchanged"
)
try:
    with quietly():
        clip_grad_norm([t], max_norm=1.0, error_if_nonfinite=True)
    raise AssertionError("error_if_nonfinite=True with a non-finite norm must raise RuntimeError")
except RuntimeError:
    pass
### BEGIN HIDDEN TESTS
t = with_grad([1.0, -np.inf, 2.0])
other = with_grad([1e3, 7.0])
with quietly():
    got = clip_grad_norm([other, t], max_norm=1.0)
assert type(got) is float and got == math.inf, f"an inf gradient gives the norm inf (a Python float), got {got!r}"
assert np.array_equal(other.grad, np.float32([1e3, 7.0])), "a norm that is not finite: leave every gradient unchanged"
try:
    with quietly():
        clip_grad_norm([other, t], max_norm=1.0, error_if_nonfinite=True)
    raise AssertionError("error_if_nonfinite=True with an infinite norm must raise RuntimeError")
except RuntimeError:
    pass
assert np.array_equal(other.grad, np.float32([1e3, 7.0])), "raising changes no gradient either"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_clip_norm_types", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
got = clip_grad_norm([with_grad([1.0, -2.0]), with_grad([3.0])], 100.0, norm_type=1)
assert abs(got - 6.0) < 1e-12, f"1-norm of [1, -2, 3]: expected |1| + |-2| + |3| = 6.0, got {got}"
p = with_grad([4.0, -8.0])
got = clip_grad_norm([p], max_norm=2.0, norm_type=math.inf)
assert got == 8.0 and np.array_equal(p.grad, np.float32([1.0, -2.0])), (
    f"inf-norm of [4, -8]: expected 8.0 and the gradient scaled by 2 / 8 to [1, -2], got {got} and {p.grad}"
)
### BEGIN HIDDEN TESTS
# infinity norm: the largest magnitude 7; factor 3.5 / 7 = 0.5, exact in binary
p1, p2 = with_grad([[-7.0, 2.0]]), with_grad([3.0])
got = clip_grad_norm([p1, p2], max_norm=3.5, norm_type=math.inf)
assert got == 7.0, f"inf-norm over two parameters: expected the largest magnitude of all, got {got}"
assert np.array_equal(p1.grad, np.float32([[-3.5, 1.0]])) and np.array_equal(p2.grad, np.float32([1.5])), (
    "inf-norm clipping multiplies every gradient by max_norm / norm (no epsilon)"
)
# p = 3: (1 + 8 + 27)^(1/3) = 36^(1/3)
got = clip_grad_norm([with_grad([1.0, -2.0]), with_grad([3.0])], 100.0, norm_type=3)
assert abs(got - 36.0 ** (1.0 / 3.0)) < 1e-12, f"3-norm of [1, -2, 3]: expected 36^(1/3), got {got}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_clip_shared", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# the worked example: two parameters whose gradient is one array [3, 4]
shared = np.array([3.0, 4.0], dtype=np.float32)
a, b = Tensor([0.0, 0.0], requires_grad=True), Tensor([0.0, 0.0], requires_grad=True)
a.grad = b.grad = shared
got = clip_grad_norm([a, b], max_norm=1.0)
assert abs(got - math.sqrt(50.0)) < 1e-9, (
    f"two parameters that share the gradient [3, 4]: each counts, norm sqrt(9 + 16 + 9 + 16) = 7.0711; got {got}"
)
assert np.allclose(shared, np.float32([3, 4]) / math.sqrt(50.0), rtol=1e-6), (
    f"the shared array is scaled once, to [0.4243, 0.5657]; got {shared}"
)
### BEGIN HIDDEN TESTS
# a shared array [6, 8] plus one more parameter with its own gradient [5]
shared = np.array([6.0, 8.0], dtype=np.float32)
s1, s2 = Tensor([0.0, 0.0], requires_grad=True), Tensor([0.0, 0.0], requires_grad=True)
s1.grad = s2.grad = shared
alone = with_grad([5.0])
got = clip_grad_norm([s1, alone, s2], max_norm=1.0)          # sqrt(100 + 25 + 100) = 15
assert abs(got - 15.0) < 1e-9, (
    f"each parameter counts with its gradient, also when two share one array: wrong norm {got}"
)
assert np.allclose(shared, np.float32([6, 8]) / 15.0, rtol=1e-6) and np.allclose(alone.grad, [5.0 / 15.0], rtol=1e-6), (
    "each gradient array is scaled exactly once by max_norm / norm"
)
# the same parameter listed twice counts twice, and is scaled once
w = with_grad([6.0, 8.0])
got = clip_grad_norm([w, w], max_norm=1.0)
assert abs(got - math.sqrt(200.0)) < 1e-9 and np.allclose(w.grad, np.float32([6, 8]) / math.sqrt(200.0), rtol=1e-6), (
    "a parameter listed twice counts twice in the norm, and its gradient array is scaled once"
)
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
# * `history`: one list of Python floats per measurement: `train_loss` and
#   `learning_rates` (one entry per epoch), `eval_loss` and `eval_accuracy` (one per
#   evaluation) and `grad_norms` (one per accumulation window, the norm **before**
#   clipping).
#
# ### How the pieces fit
#
# The class below is the frame, and it is given: the constructor, the counters, a
# progress display, and one short public method per job. Each public method checks its
# arguments and hands the work to a function that you write in the sections that
# follow, one job at a time, each with its own tests:
#
# | you call | it runs | written in |
# |---|---|---|
# | `trainer.train_epoch(loader, accumulation_steps)` | `_train_epoch(trainer, loader, accumulation_steps)`, which calls `_close_window(trainer, params, divisor)` at the end of every window | 3.1 (window), 3.2 (epoch) |
# | `trainer.evaluate(loader)` | `_evaluate(trainer, loader)`, which calls `count_correct(outputs, targets)` | 3.3 |
# | `trainer.state_dict()`, `trainer.save_checkpoint(path)` | `_state_dict(trainer)`; saving writes it with the given `write_checkpoint` | 3.4 |
# | `trainer.load_checkpoint(path)` | `_load_checkpoint(trainer, path)`, which calls `_check_state(trainer, state, where)` | 3.5 (checks), 3.6 (loading) |
#
# Each function takes the trainer as its first argument and works on its attributes
# (`trainer.model`, `trainer.optimizer`, `trainer.history`, ...), exactly as the method
# would on `self`. The functions are looked up when a method is called, not when the
# class is defined, so the class can come first and the tests of each section can use
# a real `Trainer` as soon as that section's function is written.

# %% nbgrader={"grade": false, "grade_id": "training_trainer", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
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
        self._last_print = -math.inf  # the first progress line always shows
        self._progress_open = False   # a progress line without its newline yet

    def train_epoch(self, dataloader: Iterable[Any], accumulation_steps: int = 1) -> float:
        """Train one epoch; return its mean training loss, weighted by samples.

        Every `accumulation_steps` micro-batches (and the shorter window at the end) make
        one optimizer update, equal to the update of one batch of all their samples.
        """
        accumulation_steps = _check_int(
            accumulation_steps, "accumulation_steps", "Trainer.train_epoch", minimum=1
        )
        return _train_epoch(self, dataloader, accumulation_steps)

    def evaluate(self, dataloader: Iterable[Any]) -> tuple[float, float]:
        """Mean loss and accuracy over `dataloader`, weighted by samples, in eval mode.

        Accuracy is nan when the outputs are not class scores (see `count_correct`);
        an empty loader gives (nan, nan). The model's previous mode is restored.
        """
        return _evaluate(self, dataloader)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as a tree of dicts, lists, arrays and JSON values."""
        return _state_dict(self)

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save the complete training state to `path` (atomically, no pickle)."""
        write_checkpoint(path, self.state_dict())

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore the state saved by `save_checkpoint`. Everything is checked first; on any
        problem a CheckpointError names the file and the trainer is left unchanged."""
        _load_checkpoint(self, path)

    # ---- used by the functions below ---------------------------------------------------
    def _show_progress(self, batches: int, total: int | None, loss_sum: float, samples: int,
                       final: bool) -> None:
        """One progress line on stdout (mean loss so far), refreshed at most 5 times a second;
        prints nothing unless the trainer was made with progress=True."""
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
        self._progress_open = not final

    def _print_line(self, text: str) -> None:
        """Print `text` as a line of its own on stdout: an unfinished progress line (redrawn
        in place with "\\r") is ended first, so the two never share a line."""
        if self._progress_open:
            print(file=sys.stdout)
            self._progress_open = False
        print(text, file=sys.stdout, flush=True)

    def _apply_state(self, state: dict[str, Any]) -> None:
        """Copy a checked state into the model, optimizer, schedule and counters."""
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
# The tests of this section build tiny problems whose correct answer can be computed with
# NumPy on the side: one `Linear` layer, a loss whose gradient has a closed form, plain
# SGD (whose update is `w - lr * grad`, so any error in the gradient shows in the weights).
#
# For `y = x @ W + b` and the MSE loss over all `N * C` outputs, `dL/dy = 2 (y - t) / (N C)`,
# `dL/dW = x.T @ dL/dy`, `dL/db = sum over rows of dL/dy`. For cross-entropy on logits
# `z`, `dL/dz = (softmax(z) - onehot(t)) / N`. The helpers below compute these, and a few
# other things the tests need.

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


def busy(trainer, rng, updates=2, evaluated=False, inputs=None):
    """Change a trainer's state as one epoch would, without the functions of section 3: a few
    optimizer updates with random gradients (and Dropout draws when `inputs` are given), the
    counters and one history entry per measurement. Returns the trainer."""
    for _ in range(updates):
        if inputs is not None:
            trainer.model.train()
            trainer.model(inputs)                       # Dropout draws from its generator
        for p in trainer.model.parameters():
            p.grad = rng.standard_normal(p.data.shape).astype(p.data.dtype)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
        trainer.step += 1
        trainer.history["grad_norms"].append(float(rng.random()))
    trainer.history["learning_rates"].append(float(trainer.optimizer.lr))
    trainer.history["train_loss"].append(float(rng.random()))
    if evaluated:
        trainer.history["eval_loss"].append(float(rng.random()))
        trainer.history["eval_accuracy"].append(float(rng.random()))
    trainer.epoch += 1
    return trainer


RUN_INPUTS = Tensor(np.random.default_rng(101).standard_normal((5, 4)).astype(np.float32))   # small_run's input size


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

# %% [markdown]
# ### 3.1 Closing a window
#
# An **accumulation window** is a group of micro-batches whose gradients have been added
# up in `.grad` by their backward passes (section 3.2 explains how the epoch weights the
# losses so that this is the *sum* over the window's samples). Closing the window makes
# one update, in four steps:
#
# 1. **Average.** Divide the gradients in place by `divisor`: the number of samples in
#    the window when the epoch weighted the losses by their sample counts, and `1` when it
#    did not (with `accumulation_steps=1`, where there is nothing to average). When
#    `divisor` is 1, divide nothing. Divide each gradient array once (the given
#    `_distinct` lists each array once, as in clipping).
# 2. **Measure, clip, record.** With `trainer.grad_clip_norm` set,
#    `clip_grad_norm(params, trainer.grad_clip_norm)` clips and returns the norm before
#    clipping; without it, `_total_norm(grads)` (the L2 norm; `grads` are the gradients
#    of `params` that are not None) only measures. Either way append that norm to
#    `trainer.history["grad_norms"]`.
# 3. **Step, or skip.** A finite norm: `trainer.optimizer.step()` and `trainer.step += 1`.
#    A norm that is `inf` or `nan` would put `nan` into every parameter for good, so the
#    update is **skipped**: the optimizer is not called (its momentum or Adam buffers stay
#    as they were), `trainer.skipped_steps += 1`, and one line that contains the word
#    `skipped` is printed to **stdout**, for example
#    `Trainer: epoch 3: gradient norm is nan; update skipped`. (Not a Python warning: in
#    a notebook a warning goes to stderr, and a graded cell that writes to stderr counts
#    as failed.) The epoch's loss then shows `nan` or `inf`: a signal to look.
#    Print it with the given `trainer._print_line(text)`, not with `print`: with
#    `progress=True` the progress line is redrawn in place (`"\r"`, no newline yet), and
#    a plain `print` would glue the message to its end. `_print_line` ends an unfinished
#    progress line first, so the message gets a line of its own.
# 4. **Zero.** `trainer.optimizer.zero_grad()`, after a step and after a skip alike: the
#    next window starts from nothing.
#
# `params` is the list of the model's parameters; those whose `.grad` is None take no
# part. Return the norm (a Python float).
#
# **Worked example.** A `Linear(2, 1)` layer after a window of 4 samples holds the summed
# gradients `[[8], [-4]]` (weight) and `[2]` (bias). Closing the window with `divisor=4`
# averages them to `[[2], [-1]]` and `[0.5]`, whose norm is
# `sqrt(4 + 1 + 0.25) = sqrt(5.25) = 2.2913`. Plain SGD with `lr=0.1` then moves the
# weight by `[[-0.2], [0.1]]` and the bias by `[-0.05]`. With `grad_clip_norm=1.0` the
# averaged gradients are first scaled by `1 / 2.2913` (to `[[0.8729], [-0.4364]]` and
# `[0.2182]`), and the recorded norm is still 2.2913.

# %% nbgrader={"grade": false, "grade_id": "training_close_window", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _close_window(trainer: Trainer, params: list[Any], divisor: int) -> float:
    """End an accumulation window with one update; return the gradient norm before clipping.

    Divide the summed gradients by `divisor` (nothing when it is 1), record the norm in
    `history["grad_norms"]` (clipping first when `trainer.grad_clip_norm` is set), then
    step and count it in `trainer.step` when the norm is finite, or else skip: count it in
    `trainer.skipped_steps` and print a line containing "skipped" with
    `trainer._print_line` (stdout, on a line of its own). Zero the gradients in both cases.
    """
    ### BEGIN SOLUTION
    grads = [p.grad for p in params if p.grad is not None]
    if divisor != 1:
        for grad in _distinct(grads):
            np.divide(grad, divisor, out=grad)
    if trainer.grad_clip_norm is not None:
        norm = clip_grad_norm(params, trainer.grad_clip_norm)
    else:
        norm = _total_norm(grads, 2.0)
    trainer.history["grad_norms"].append(norm)
    if math.isfinite(norm):
        trainer.optimizer.step()
        trainer.step += 1
    else:
        trainer.skipped_steps += 1
        trainer._print_line(f"Trainer: epoch {trainer.epoch}: gradient norm is {norm}; update skipped "
                            f"and gradients discarded ({trainer.skipped_steps} skipped so far)")
    trainer.optimizer.zero_grad()
    return norm
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "training_window_example", "locked": true, "schema_version": 3, "solution": false, "task": false}
def window_example(clip):
    """The worked example: a Linear(2, 1) layer with the summed gradients of a 4-sample window."""
    layer = Linear(2, 1, rng=np.random.default_rng(0))
    trainer = Trainer(layer, SGD(layer.parameters(), lr=0.1), MSELoss(), grad_clip_norm=clip)
    before = [f64(p.data).ravel().copy() for p in layer.parameters()]
    layer.weight.grad = np.array([[8.0], [-4.0]], dtype=np.float32)
    layer.bias.grad = np.array([2.0], dtype=np.float32)
    norm = _close_window(trainer, layer.parameters(), divisor=4)
    moved = [f64(p.data).ravel() - b for p, b in zip(layer.parameters(), before, strict=True)]
    return trainer, norm, moved


# %%
for clip in (None, 1.0):
    trainer, norm, moved = window_example(clip)
    print(f"grad_clip_norm={clip}: norm {norm:.4f}, weight moved by {np.round(moved[0], 5)}, "
          f"bias by {np.round(moved[1], 5)}, step {trainer.step}, grads now {trainer.model.bias.grad}")

# %% nbgrader={"grade": true, "grade_id": "training_test_window_average", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
trainer, norm, moved = window_example(clip=None)
# by hand: averaged gradients [[2], [-1]] and [0.5], SGD lr=0.1
assert np.allclose(moved[0], [-0.2, 0.1], atol=1e-6) and np.allclose(moved[1], [-0.05], atol=1e-6), (
    f"weights moved by {moved[0]} and bias by {moved[1]}; expected [-0.2, 0.1] and [-0.05]. "
    "Hint: divide the summed gradients by divisor (4 here), then optimizer.step()"
)
assert trainer.step == 1, f"one window closed: trainer.step should be 1, got {trainer.step}"
print("closing a window, average and step: OK")
### BEGIN HIDDEN TESTS
# divisor 5 on the sums [[10], [5]], [-15] -> [[2], [1]], [-3]; then divisor 1 divides nothing: [[1], [2]], [0]
layer = linear_model(2, 1, seed=1)
W0, b0 = f64(layer.weight.data).copy(), f64(layer.bias.data).copy()
trainer = Trainer(layer, SGD(layer.parameters(), lr=0.5), MSELoss())
layer.weight.grad = np.array([[10.0], [5.0]], dtype=np.float32)
layer.bias.grad = np.array([-15.0], dtype=np.float32)
_close_window(trainer, layer.parameters(), divisor=5)
layer.weight.grad = np.array([[1.0], [2.0]], dtype=np.float32)
layer.bias.grad = np.array([0.0], dtype=np.float32)
_close_window(trainer, layer.parameters(), divisor=1)
want_W = W0 - 0.5 * np.array([[2.0], [1.0]]) - 0.5 * np.array([[1.0], [2.0]])
want_b = b0 - 0.5 * np.array([-3.0])
assert np.allclose(f64(layer.weight.data), want_W, atol=1e-6) and np.allclose(f64(layer.bias.data), want_b, atol=1e-6), (
    "two windows (divisor 5, then divisor 1): the weights are not w - lr * (summed gradient / divisor). "
    "Hint: with divisor 1 the gradient is used as it is"
)
assert trainer.step == 2, f"two windows closed: trainer.step should be 2, got {trainer.step}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_window_norm", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
trainer, norm, moved = window_example(clip=None)
assert type(norm) is float and abs(norm - math.sqrt(5.25)) < 1e-6, f"norm of the averaged gradients: expected sqrt(5.25) = 2.2913, got {norm!r}"
assert trainer.history["grad_norms"] == [norm], f"the norm is recorded in history['grad_norms'], got {trainer.history['grad_norms']}"
trainer, norm, moved = window_example(clip=1.0)
assert abs(norm - math.sqrt(5.25)) < 1e-6 and trainer.history["grad_norms"] == [norm], (
    f"with clipping, the norm BEFORE clipping is returned and recorded: expected 2.2913, got {norm}"
)
factor = 0.1 / math.sqrt(5.25)
assert np.allclose(moved[0], [-2 * factor, factor], atol=1e-6) and np.allclose(moved[1], [-0.5 * factor], atol=1e-6), (
    f"with grad_clip_norm=1.0 the averaged gradients are clipped before the step: weight moved by {moved[0]}, "
    f"expected {[-2 * factor, factor]}"
)
print("closing a window, norm and clipping: OK")
### BEGIN HIDDEN TESTS
# sums [[0], [12]], [16] over 2 samples -> [[0], [6]], [8]: norm 10; clipped to 2.5 (factor 0.25), lr 1
layer = linear_model(2, 1, seed=2)
W0, b0 = f64(layer.weight.data).copy(), f64(layer.bias.data).copy()
trainer = Trainer(layer, SGD(layer.parameters(), lr=1.0), MSELoss(), grad_clip_norm=2.5)
layer.weight.grad = np.array([[0.0], [12.0]], dtype=np.float32)
layer.bias.grad = np.array([16.0], dtype=np.float32)
got = _close_window(trainer, layer.parameters(), divisor=2)
assert type(got) is float and abs(got - 10.0) < 1e-6 and trainer.history["grad_norms"] == [got], (
    f"the averaged gradients' norm before clipping is returned and recorded (a Python float): got {got!r}, "
    f"history {trainer.history['grad_norms']}"
)
assert np.allclose(f64(layer.weight.data), W0 - np.array([[0.0], [1.5]]), atol=1e-6) and np.allclose(
    f64(layer.bias.data), b0 - 2.0, atol=1e-6), "the step uses the averaged gradients clipped to grad_clip_norm"
# below the threshold nothing is clipped; a parameter without gradient takes no part
layer = linear_model(2, 1, seed=2)
W0, b0 = f64(layer.weight.data).copy(), f64(layer.bias.data).copy()
trainer = Trainer(layer, SGD(layer.parameters(), lr=1.0), MSELoss(), grad_clip_norm=100.0)
layer.weight.grad = np.array([[3.0], [4.0]], dtype=np.float32)
got = _close_window(trainer, layer.parameters(), divisor=1)
assert abs(got - 5.0) < 1e-6 and np.allclose(f64(layer.weight.data), W0 - [[3.0], [4.0]], atol=1e-6), (
    "a norm below grad_clip_norm: the gradients are used as they are"
)
assert np.array_equal(f64(layer.bias.data), b0), "a parameter without gradient is not changed"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_window_zero", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
trainer, norm, moved = window_example(clip=None)
assert all(p.grad is None for p in trainer.model.parameters()), (
    "after the window is closed the gradients are zeroed (optimizer.zero_grad() sets them to None)"
)
print("closing a window, zeroing: OK")
### BEGIN HIDDEN TESTS
for clip in (None, 0.5):
    layer = linear_model(3, 2, seed=3)
    trainer = Trainer(layer, Adam(layer.parameters(), lr=0.01), MSELoss(), grad_clip_norm=clip)
    layer.weight.grad = np.ones((3, 2), dtype=np.float32)
    layer.bias.grad = np.full(2, np.nan, dtype=np.float32)         # a window that is skipped
    with redirect_stdout(io.StringIO()), quietly():
        _close_window(trainer, layer.parameters(), divisor=3)
    assert all(p.grad is None for p in layer.parameters()), (
        f"grad_clip_norm={clip}: after a skipped window the gradients are zeroed too"
    )
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_window_skip", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
layer = linear_model(2, 1, seed=0)
opt = SGD(layer.parameters(), lr=0.1, momentum=0.9)
trainer = Trainer(layer, opt, MSELoss())
before = [f64(p.data).copy() for p in layer.parameters()]
layer.weight.grad = np.array([[np.nan], [1.0]], dtype=np.float32)
layer.bias.grad = np.array([1.0], dtype=np.float32)
printed = io.StringIO()
with redirect_stdout(printed), quietly():
    norm = _close_window(trainer, layer.parameters(), divisor=2)
assert math.isnan(norm) and math.isnan(trainer.history["grad_norms"][0]), f"the nan norm is returned and recorded, got {norm}"
assert (trainer.step, trainer.skipped_steps) == (0, 1), (
    f"a nan gradient: no step, one skipped; got step={trainer.step}, skipped_steps={trainer.skipped_steps}"
)
assert all(np.array_equal(f64(p.data), b) for p, b in zip(layer.parameters(), before, strict=True)) and opt.state == [{}, {}], (
    "a skipped update must not call the optimizer: parameters and momentum buffers stay as they were"
)
assert "skipped" in printed.getvalue(), f"a skipped update prints a line with the word 'skipped' to stdout, got {printed.getvalue()!r}"
# with progress=True, in the middle of an epoch: the message must not end up on the progress line
shown = Trainer(layer, opt, MSELoss(), progress=True)
layer.weight.grad = np.array([[np.nan], [1.0]], dtype=np.float32)
layer.bias.grad = np.array([1.0], dtype=np.float32)
printed = io.StringIO()
with redirect_stdout(printed), quietly():
    shown._show_progress(1, 4, 0.5, 1, final=False)   # a progress line, not finished
    _close_window(shown, layer.parameters(), divisor=2)
lines = printed.getvalue().replace("\r", "\n").split("\n")
assert [line for line in lines if "skipped" in line and "| batch" not in line], (
    f"the 'skipped' message must get a line of its own, got {printed.getvalue()!r}. "
    "Hint: print it with trainer._print_line(text), which ends the progress line first"
)
print("closing a window, skipping: OK")
### BEGIN HIDDEN TESTS
# an infinite gradient with clipping on, after one good window: the good update stays, the bad one is skipped
layer = linear_model(3, 2, seed=4)
opt = Adam(layer.parameters(), lr=0.01)
trainer = Trainer(layer, opt, MSELoss(), grad_clip_norm=1.0)
layer.weight.grad = np.ones((3, 2), dtype=np.float32)
layer.bias.grad = np.ones(2, dtype=np.float32)
_close_window(trainer, layer.parameters(), divisor=1)
after_good = [f64(p.data).copy() for p in layer.parameters()]
moments = [s["exp_avg"].copy() for s in opt.state]
layer.weight.grad = np.full((3, 2), np.inf, dtype=np.float32)
layer.bias.grad = np.ones(2, dtype=np.float32)
printed = io.StringIO()
with redirect_stdout(printed), quietly():
    norm = _close_window(trainer, layer.parameters(), divisor=4)
assert norm == math.inf and trainer.history["grad_norms"][1] == math.inf, f"the inf norm is returned and recorded, got {norm}"
assert (trainer.step, trainer.skipped_steps) == (1, 1), (
    f"one update made, one skipped: got step={trainer.step}, skipped_steps={trainer.skipped_steps}"
)
assert all(np.array_equal(f64(p.data), b) for p, b in zip(layer.parameters(), after_good, strict=True)), (
    "a skipped update leaves the parameters as they were"
)
assert all(np.array_equal(s["exp_avg"], m) for s, m in zip(opt.state, moments, strict=True)), (
    "a skipped update must not call the optimizer (Adam's moments changed)"
)
assert "skipped" in printed.getvalue(), "a skipped update prints a line with the word 'skipped' to stdout"
### END HIDDEN TESTS

# %% [markdown]
# ### 3.2 One epoch
#
# `_train_epoch(trainer, dataloader, accumulation_steps)` runs one pass over the data
# (the method `train_epoch` has already checked that `accumulation_steps` is an int
# `>= 1`). In this order:
#
# 1. **Mode.** `trainer.model.train()`: Dropout is active.
# 2. **Learning rate first.** With a schedule, set
#    `trainer.optimizer.lr = trainer.scheduler.get_lr(trainer.epoch)` *before the first
#    step of the epoch*. Then append the rate this epoch runs with,
#    `float(trainer.optimizer.lr)`, to `history["learning_rates"]`: every epoch, with a
#    schedule or without one (then it is the optimizer's own rate, left as it is). (A
#    common version of this loop sets the rate after the epoch instead: then every epoch
#    runs with the rate meant for the previous one, and epoch 0 with whatever the
#    optimizer started with.)
# 3. **Data order.** If the loader has a `set_epoch` method, call
#    `dataloader.set_epoch(trainer.epoch)` before drawing any batch: the shuffled order of
#    an epoch is then fixed by the loader's seed and the epoch number, which is what makes
#    a resumed run see the same batches.
# 4. **A clean start.** Call `trainer.optimizer.zero_grad()` once before the first batch.
#    Gradients left over from outside the trainer (a backward pass run by hand, an epoch
#    that stopped half-way with an error) would otherwise be added into the first update.
# 5. **Windows.** For each batch, `inputs, targets = _unpack(batch)` and
#    `n = _batch_size(inputs)` (both given), then forward, loss and backward
#    (`loss = trainer.loss_fn(trainer.model(inputs), targets)`, then `backward()` as the
#    next paragraph says); the gradients add up in `.grad`. Every `accumulation_steps` micro-batches, **counted**,
#    close the window with `_close_window(trainer, params, divisor)`, where `params` is
#    `list(trainer.model.parameters())`. The last window of an epoch may hold fewer
#    micro-batches; close it after the loop, if it holds any. Decide by counting
#    micro-batches, never by looking at the loss (a loss can be 0, or negative for some
#    objectives).
# 6. **The epoch's loss** is the mean training loss weighted by samples: add up
#    `loss.item() * n` (the batch's mean loss as the loss function returned it) and `n`,
#    divide at the end. Append it to `history["train_loss"]` (one entry per epoch). An
#    epoch without batches has loss `nan` (nothing was measured, no division by zero),
#    recorded like any other, and still counts.
# 7. `trainer.epoch += 1`, and return the epoch's loss (a Python float).
#
# To see progress in long runs, call `trainer._show_progress(batches, total_batches,
# loss_sum, samples, final=False)` after each batch and once more with `final=True` at
# the end (given; it prints only when the trainer was made with `progress=True`).
#
# #### Gradient accumulation, exactly
#
# A loss function returns the **mean** over its batch. One big batch of `N` samples has
# gradient `(1/N) * sum over samples`. With micro-batches of sizes `n_1, ..., n_k`
# (`N = n_1 + ... + n_k`), calling `backward()` on each mean loss and adding gives
# `sum_j (1/n_j) * sum over batch j`: **k times too large** for equal sizes, and wrongly
# weighted for unequal ones (a batch of 1 would count as much as a batch of 100).
#
# Exact recipe: with `accumulation_steps > 1`, call `backward()` on the micro-batch's
# mean loss **times its sample count** `n_j` (`(loss * n).backward()`), so that the
# gradients add up to the **sum** over all samples, and close the window with
# `divisor` = the window's total number of samples `N`. The update is then the same as
# that of one batch with all the window's samples, also when the micro-batches differ in
# size and when the last window of the epoch is short. (Dividing only the *reported* loss
# by `accumulation_steps`, as one often sees, changes the printed number and not the
# gradient.)
#
# With `accumulation_steps=1` every window is a single batch and the factor would be
# `n / n`: call `backward()` on the loss as it is and close the window with
# `divisor=1`. That saves work, and the update is then bit for bit the one of a plain
# hand-written loop (`loss.backward(); optimizer.step(); optimizer.zero_grad()`).
#
# **Worked example** (run below): 8 samples in micro-batches of 3, 4 and 1 with
# `accumulation_steps=2` give two windows, `[3, 4]` (closed with `divisor=7`) and the
# short last one `[1]` (closed after the loop with `divisor=1`, since it holds one
# sample): two updates, two norms in `history["grad_norms"]`.

# %% nbgrader={"grade": false, "grade_id": "training_batches", "locked": true, "schema_version": 3, "solution": false, "task": false}
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


def _length_or_none(dataloader: Any) -> int | None:
    """`len(dataloader)`, or None for a loader without a length (a generator)."""
    try:
        return len(dataloader)
    except TypeError:
        return None

# %% nbgrader={"grade": false, "grade_id": "training_train_epoch", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _train_epoch(trainer: Trainer, dataloader: Iterable[Any], accumulation_steps: int) -> float:
    """The work of `trainer.train_epoch` (steps 1-7 of section 3.2).

    Training mode; the epoch's learning rate set from the schedule (if any) and recorded
    every epoch; `set_epoch` on the loader; gradients zeroed before the first batch;
    micro-batches grouped into windows of `accumulation_steps` (counted), each closed by
    `_close_window`; the mean loss weighted by samples recorded and returned (nan for no
    batches); `trainer.epoch` advanced by one.
    """
    total_batches = _length_or_none(dataloader)
    ### BEGIN SOLUTION
    trainer.model.train()
    if trainer.scheduler is not None:
        trainer.optimizer.lr = float(trainer.scheduler.get_lr(trainer.epoch))
    trainer.history["learning_rates"].append(float(trainer.optimizer.lr))
    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(trainer.epoch)
    params = list(trainer.model.parameters())
    trainer.optimizer.zero_grad()               # stale gradients must not leak into step 1
    weighted = accumulation_steps > 1
    loss_sum, samples, batches = 0.0, 0, 0
    window_batches, window_samples = 0, 0
    for batch in dataloader:
        inputs, targets = _unpack(batch)
        n = _batch_size(inputs)
        loss = trainer.loss_fn(trainer.model(inputs), targets)
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
            _close_window(trainer, params, window_samples if weighted else 1)
            window_batches, window_samples = 0, 0
        trainer._show_progress(batches, total_batches, loss_sum, samples, final=False)
    if window_batches > 0:                      # a short last window, decided by count
        _close_window(trainer, params, window_samples if weighted else 1)
    mean_loss = loss_sum / samples if samples > 0 else math.nan
    trainer.history["train_loss"].append(mean_loss)
    trainer._show_progress(batches, total_batches, loss_sum, samples, final=True)
    trainer.epoch += 1
    return mean_loss
    ### END SOLUTION


# %%
# The worked example: micro-batches of 3, 4 and 1 samples, accumulation_steps=2.
rng = np.random.default_rng(7)
X_demo = rng.standard_normal((8, 3)).astype(np.float32)
y_demo = np.array([0, 2, 1, 1, 0, 2, 2, 1])
demo_model = linear_model(3, 3, seed=4)
demo = Trainer(demo_model, SGD(demo_model.parameters(), lr=0.3), CrossEntropyLoss())
loss = demo.train_epoch(batches_of(X_demo, y_demo, [3, 4, 1]), accumulation_steps=2)
print(f"epoch loss {loss:.4f} | updates {demo.step} | norms {np.round(demo.history['grad_norms'], 4)} | "
      f"lr recorded {demo.history['learning_rates']}")

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_start", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
rng = np.random.default_rng(0)
X, T = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)


class EpochLoader:
    """A loader that records set_epoch calls and checks they come before the batches."""

    def __init__(self, sizes):
        self.calls, self.current, self.sizes = [], None, sizes

    def set_epoch(self, epoch):
        self.calls.append(epoch)
        self.current = epoch

    def __iter__(self):
        assert self.current is not None, "set_epoch must be called before the batches are drawn"
        self.current = None
        return iter(batches_of(X, T, self.sizes))


model = Sequential(linear_model(3, 2, seed=1), Dropout(0.5, rng=np.random.default_rng(2)))
model.eval()
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
trainer.epoch = 5
loader = EpochLoader([6])
trainer.train_epoch(loader)
trainer.train_epoch(loader)
assert loader.calls == [5, 6], f"set_epoch is called with the trainer's epoch before each epoch: expected [5, 6], got {loader.calls}"
assert trainer.epoch == 7, f"each epoch adds 1 to trainer.epoch: expected 7, got {trainer.epoch}"
assert model.training is True, "train_epoch puts the model in training mode (model.train())"
print("start of an epoch: OK")
### BEGIN HIDDEN TESTS
model = Sequential(linear_model(3, 2, seed=1), Dropout(0.2, rng=np.random.default_rng(2)))
model.eval()
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
loader = EpochLoader([2, 4])
for _ in range(3):
    trainer.train_epoch(loader, accumulation_steps=2)
assert loader.calls == [0, 1, 2] and trainer.epoch == 3 and model.training is True, (
    f"three epochs from epoch 0: set_epoch calls [0, 1, 2], epoch 3 and training mode expected; got "
    f"{loader.calls}, {trainer.epoch}, training={model.training}"
)
trainer.train_epoch(batches_of(X, T, [6]))          # a plain list has no set_epoch: fine
assert trainer.epoch == 4, "a loader without set_epoch (a list of batches) works too"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_learning_rate", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# The optimizer's step() is wrapped to record the rate it is called with.
rng = np.random.default_rng(0)
X, T = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)


def recording_sgd(model, lr, seen):
    """SGD whose step() appends the rate it is called with to `seen`."""
    opt = SGD(model.parameters(), lr=lr)
    real_step = opt.step
    opt.step = lambda: (seen.append(float(opt.lr)), real_step())[1]
    return opt


model = linear_model(3, 2, seed=1)
seen_lr = []
trainer = Trainer(model, recording_sgd(model, 5.0, seen_lr), MSELoss(), scheduler=CosineSchedule(0.3, 0.1, total_epochs=2))
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
# without a schedule the optimizer's own rate is used, left as it is, and recorded every epoch
model = linear_model(3, 2, seed=1)
trainer = Trainer(model, SGD(model.parameters(), lr=0.05), MSELoss())
trainer.train_epoch(batches_of(X, T, [6]))
trainer.train_epoch(batches_of(X, T, [6]))
assert trainer.history["learning_rates"] == [0.05, 0.05] and trainer.optimizer.lr == 0.05, (
    f"no schedule: the optimizer's rate 0.05 is recorded each epoch and not changed; got "
    f"{trainer.history['learning_rates']}, lr {trainer.optimizer.lr}"
)
print("learning rate per epoch: OK")
### BEGIN HIDDEN TESTS
# schedule (1.0, 0.0, 4) from epoch 1: rates cos-closed-form (1 + cos(pi e / 4)) / 2 for e = 1, 2, 3, then 0
model = linear_model(3, 2, seed=1)
seen_lr = []
trainer = Trainer(model, recording_sgd(model, 9.0, seen_lr), MSELoss(), scheduler=CosineSchedule(1.0, 0.0, 4))
trainer.epoch = 1
for _ in range(4):
    trainer.train_epoch(batches_of(X, T, [2, 2, 2]), accumulation_steps=3)
r2 = math.sqrt(2.0) / 2.0
want = [(1 + r2) / 2, 0.5, (1 - r2) / 2, 0.0]
assert np.allclose(seen_lr, want, rtol=0, atol=1e-12), (
    f"a schedule from another epoch on, with accumulation: the rate of each update is not the one of its "
    f"epoch (got {seen_lr}). Hint: set the rate from scheduler.get_lr(trainer.epoch) before the first step"
)
assert np.allclose(trainer.history["learning_rates"], want, rtol=0, atol=1e-12), (
    f"history['learning_rates'] should hold the rate of each epoch, got {trainer.history['learning_rates']}"
)
assert all(type(v) is float for v in trainer.history["learning_rates"]), "record Python floats"
model = linear_model(3, 2, seed=1)
trainer = Trainer(model, SGD(model.parameters(), lr=0.07), MSELoss())
for _ in range(3):
    trainer.train_epoch(batches_of(X, T, [4, 2]))
assert trainer.history["learning_rates"] == [0.07, 0.07, 0.07] and trainer.optimizer.lr == 0.07, (
    "no schedule: the optimizer's own rate is recorded every epoch and not changed"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_clean_start", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
rng = np.random.default_rng(1)
X, T = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
model = linear_model(3, 2, seed=2)
W0, b0 = f64(model.weight.data).copy(), f64(model.bias.data).copy()
model.weight.grad = np.full((3, 2), 100.0, dtype=np.float32)   # left over from a backward pass by hand
model.bias.grad = np.full(2, 100.0, dtype=np.float32)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
trainer.train_epoch(batches_of(X, T, [4]))
gW, gb = mse_grads(W0, b0, X, T)
assert np.allclose(f64(model.weight.data), W0 - 0.1 * gW, atol=1e-6), (
    "gradients left over before the epoch leaked into the first update. "
    "Hint: call optimizer.zero_grad() once before the first batch"
)
print("clean start: OK")
### BEGIN HIDDEN TESTS
model = linear_model(3, 2, seed=3)
W0, b0 = f64(model.weight.data).copy(), f64(model.bias.data).copy()
model.weight.grad = np.full((3, 2), -3.0, dtype=np.float32)      # only the weight has one
trainer = Trainer(model, SGD(model.parameters(), lr=0.2, momentum=0.5), MSELoss())
trainer.train_epoch(batches_of(X, T, [4]))
gW, gb = mse_grads(W0, b0, X, T)
assert np.allclose(f64(model.weight.data), W0 - 0.2 * gW, atol=1e-6) and np.allclose(
    f64(model.bias.data), b0 - 0.2 * gb, atol=1e-6), (
    "gradients left over before the epoch must not reach the first update (here with momentum SGD)"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_accumulation", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
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
    "close the window with divisor = the window's total sample count"
)
print("gradient accumulation (equal micro-batches): OK")
### BEGIN HIDDEN TESTS
# Unequal micro-batches [1, 5, 2] in one window == one batch of 8 (MSE, plain SGD).
model = linear_model(3, 2, seed=11)
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss())
trainer.train_epoch(batches_of(X, T, [1, 5, 2]), accumulation_steps=3)
for got, want, name in [(model.weight.data, W0 - 0.5 * gW, "weight"), (model.bias.data, b0 - 0.5 * gb, "bias")]:
    assert np.allclose(f64(got), want, rtol=0, atol=2e-6), (
        f"unequal micro-batches in one window: the {name} is not the big-batch update. "
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
model = linear_model(3, 2, seed=11)
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss(), grad_clip_norm=0.05)
trainer.train_epoch(batches_of(X, T, [3, 3, 2]), accumulation_steps=3)
assert np.allclose(f64(model.weight.data), W0 - 0.5 * cW, rtol=0, atol=1e-6) and np.allclose(
    f64(model.bias.data), b0 - 0.5 * cb, rtol=0, atol=1e-6), (
    "with clipping: the averaged gradient of the window is clipped, then one step. "
    "Hint: the window is averaged (divisor) before it is clipped"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_short_window", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# The worked example: cross-entropy, windows [3, 4] and a short last window [1]: two updates,
# the second computed from the weights after the first.
rng = np.random.default_rng(7)
X = rng.standard_normal((8, 3)).astype(np.float32)
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
print("short last window: OK")
### BEGIN HIDDEN TESTS
# A last window whose loss is exactly 0 is still a window (decide by count, not by loss).
rng = np.random.default_rng(3)
X, T = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
model = linear_model(3, 2, seed=2)
with no_grad():
    perfect = f64(model(Tensor(X)).data).astype(np.float32)       # targets = predictions
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
loss = trainer.train_epoch(batches_of(X, perfect, [3, 3, 2]), accumulation_steps=2)
assert trainer.step == 2 and len(trainer.history["grad_norms"]) == 2, (
    f"3 micro-batches, accumulation_steps=2: 2 updates even when the loss is 0, got {trainer.step}. "
    "Hint: decide whether a window is open by counting micro-batches"
)
# accumulation_steps larger than the number of batches: one short window == the big-batch update
model = linear_model(3, 2, seed=11)
W0, b0 = f64(model.weight.data).copy(), f64(model.bias.data).copy()
trainer = Trainer(model, SGD(model.parameters(), lr=0.5), MSELoss())
trainer.train_epoch((batch for batch in batches_of(X, T, [5, 3])), accumulation_steps=10)   # a generator
gW, gb = mse_grads(W0, b0, X, T)
assert trainer.step == 1 and np.allclose(f64(model.weight.data), W0 - 0.5 * gW, atol=2e-6), (
    "accumulation_steps=10 with 2 micro-batches: one short window, equal to the big-batch update"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_single_batches", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# accumulation_steps=1: bit for bit the update of a plain hand-written loop
rng = np.random.default_rng(12)
X, T = rng.standard_normal((9, 3)).astype(np.float32), rng.standard_normal((9, 2)).astype(np.float32)
by_hand, trained = linear_model(3, 2, seed=5), linear_model(3, 2, seed=5)
opt = SGD(by_hand.parameters(), lr=0.3)
for inputs, targets in batches_of(X, T, [3, 3, 3]):
    MSELoss()(by_hand(inputs), targets).backward()
    opt.step()
    opt.zero_grad()
trainer = Trainer(trained, SGD(trained.parameters(), lr=0.3), MSELoss())
trainer.train_epoch(batches_of(X, T, [3, 3, 3]))
assert all(np.array_equal(a.data, b.data) for a, b in zip(by_hand.parameters(), trained.parameters(), strict=True)), (
    "with accumulation_steps=1 the weights must equal those of a plain loop bit for bit. "
    "Hint: call backward() on the loss as it is and close each window with divisor=1"
)
print("single-batch windows: OK")
### BEGIN HIDDEN TESTS
by_hand, trained = linear_model(3, 2, seed=6), linear_model(3, 2, seed=6)
opt = SGD(by_hand.parameters(), lr=0.2, momentum=0.9)
for inputs, targets in batches_of(X, T, [5, 3, 1]):
    MSELoss()(by_hand(inputs), targets).backward()
    opt.step()
    opt.zero_grad()
trainer = Trainer(trained, SGD(trained.parameters(), lr=0.2, momentum=0.9), MSELoss())
trainer.train_epoch(batches_of(X, T, [5, 3, 1]))
assert all(np.array_equal(a.data, b.data) for a, b in zip(by_hand.parameters(), trained.parameters(), strict=True)), (
    "with accumulation_steps=1 (and momentum) the weights must equal those of a plain loop bit for bit. "
    "Hint: no multiplication of the loss and divisor=1 when accumulation_steps is 1"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_epoch_loss", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
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
got = trainer.train_epoch([])
assert type(got) is float and math.isnan(got) and trainer.epoch == 2, (
    f"an epoch without batches: loss nan (a float) and the epoch still counts; got {got!r}, epoch {trainer.epoch}"
)
print("sample-weighted epoch loss: OK")
### BEGIN HIDDEN TESTS
# with accumulation (lr = 0, weights fixed): the loss as the loss function returned it, weighted
# by samples, not the loss times n
model = linear_model(3, 2, seed=4)
Y = f64(X) @ f64(model.weight.data) + f64(model.bias.data)
want = float(np.mean((Y - f64(T)) ** 2))
trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
got = trainer.train_epoch(batches_of(X, T, [5, 1, 2]), accumulation_steps=2)
assert type(got) is float and abs(got - want) < 1e-6 * max(1.0, want), (
    "epoch loss with accumulation: the mean of the losses as the loss function returned them, "
    "weighted by samples (not the losses times n, and not the plain mean of batch losses)"
)
assert trainer.history["train_loss"] == [got], "the epoch loss is recorded in history['train_loss']"
model = linear_model(3, 2, seed=3)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
got = trainer.train_epoch((b for b in []), accumulation_steps=3)
assert type(got) is float and math.isnan(got) and (trainer.epoch, trainer.step) == (1, 0), (
    "an empty generator of batches: loss nan, epoch 1, no update"
)
assert math.isnan(trainer.history["train_loss"][0]), "the nan loss of an empty epoch is recorded too"
### END HIDDEN TESTS

# %% [markdown]
# ### 3.3 Evaluation
#
# `_evaluate(trainer, dataloader) -> (loss, accuracy)` measures the model without
# changing anything:
#
# 1. Remember the mode the model is in (`trainer.model.training`), switch to eval mode
#    (`trainer.model.eval()`: Dropout off), and put the remembered mode back at the end,
#    also when an error stops the loop half-way (`try`/`finally`).
# 2. Run the forward passes under `with no_grad():` (from module 01): nothing is recorded
#    for a backward pass, so no memory is kept for one. Parameters, gradients and random
#    generators are not touched.
# 3. Loss and accuracy are weighted by samples, so a short last batch counts for what it
#    is: add up `loss.item() * n`, the number of correct predictions and `n`. There is no
#    `len(dataloader)` anywhere: a loader may be a generator.
# 4. Append the loss to `history["eval_loss"]` and the accuracy to
#    `history["eval_accuracy"]` (every evaluation adds one entry to each), and return both
#    as Python floats. An empty loader gives `(nan, nan)`, recorded like any other: there
#    is nothing to measure, and no division by zero.
#
# `count_correct(outputs, targets)` decides what accuracy means, for one batch:
#
# | outputs | targets | a prediction is right when |
# |---|---|---|
# | `(N, C)`, `C >= 2` (class scores) | class indices `(N,)`: integers, or floats with whole values (as `CrossEntropyLoss` accepts them) | `argmax` of the row equals the target |
# | `(N, C)`, `C >= 2` | one-hot or probabilities `(N, C)`: rows `>= 0` summing to 1 (`_is_distribution`, given) | the two `argmax`es agree |
# | `(N,)` or `(N, 1)` (one probability per sample) | `N` values, each `0` or `1` (any dtype, any shape with `N` entries) | `output >= 0.5` exactly when the target is 1 |
# | anything else (regression: other targets, other shapes) | | not defined: return `None` |
#
# It returns the count as a Python `int`, or `None`. When `count_correct` gives `None`
# for any batch, the accuracy of the evaluation is `nan`.
#
# **Worked example** (the visible tests use it): a layer that scores `(x0, x1, 0)` for the
# inputs `[[2, 1], [0, 3], [-1, -2], [5, 4], [1, 2]]` predicts the classes
# `0, 1, 2, 0, 1`; with labels `[0, 1, 2, 1, 0]` three of five are right, an accuracy of
# 0.6, whether the labels come as integers, as floats or one-hot.

# %% nbgrader={"grade": false, "grade_id": "training_evaluate", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _is_distribution(rows: np.ndarray) -> bool:
    """True when every row is non-negative and sums to 1 (one-hot or class probabilities)."""
    if rows.dtype.kind not in "fiub" or rows.size == 0:
        return False
    values = rows.astype(np.float64)
    return bool(np.all(values >= 0) and np.allclose(values.sum(axis=1), 1.0, rtol=0, atol=1e-6))


def count_correct(outputs: Any, targets: Any) -> int | None:
    """How many predictions in a batch are right (an int), or None when accuracy is not defined.

    Class scores (N, C) with C >= 2: right when the row's argmax equals the class index
    (targets (N,), integers or whole-valued floats), or the argmax of one-hot/probability
    targets (N, C). One output per sample, (N,) or (N, 1), with N targets that are all 0 or
    1: right when `output >= 0.5` exactly where the target is 1. Anything else: None.
    """
    out = np.asarray(getattr(outputs, "data", outputs))
    tgt = np.asarray(getattr(targets, "data", targets))
    ### BEGIN SOLUTION
    if out.ndim == 2 and out.shape[1] >= 2:
        predicted = out.argmax(axis=1)
        if tgt.shape == out.shape and _is_distribution(tgt):
            labels = tgt.argmax(axis=1)
        elif tgt.shape == (out.shape[0],) and tgt.dtype.kind in "iuf":
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


def _evaluate(trainer: Trainer, dataloader: Iterable[Any]) -> tuple[float, float]:
    """The work of `trainer.evaluate` (section 3.3): eval mode (the previous mode is put back),
    forward passes under no_grad(), loss and accuracy weighted by samples, both recorded in
    the history and returned as floats; (nan, nan) for an empty loader."""
    ### BEGIN SOLUTION
    model = trainer.model
    was_training = bool(getattr(model, "training", True))
    model.eval()
    loss_sum, samples, correct, countable = 0.0, 0, 0, True
    try:
        with no_grad():
            for batch in dataloader:
                inputs, targets = _unpack(batch)
                n = _batch_size(inputs)
                outputs = model(inputs)
                loss_sum += float(trainer.loss_fn(outputs, targets).data) * n
                samples += n
                if countable:
                    right = count_correct(outputs, targets)
                    if right is None:
                        countable = False
                    else:
                        correct += right
    finally:
        model.train(was_training)
    loss = loss_sum / samples if samples > 0 else math.nan
    accuracy = correct / samples if (countable and samples > 0) else math.nan
    trainer.history["eval_loss"].append(loss)
    trainer.history["eval_accuracy"].append(accuracy)
    return loss, accuracy
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "training_evaluate_example", "locked": true, "schema_version": 3, "solution": false, "task": false}
def scoring_model(dropout: float = 0.5) -> Sequential:
    """The worked example's layer: class scores (x0, x1, 0), followed by Dropout."""
    model = Sequential(Linear(2, 3, rng=np.random.default_rng(0)), Dropout(dropout, rng=np.random.default_rng(1)))
    weight, bias = model.parameters()
    weight.data[...] = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    bias.data[...] = 0.0
    return model


def ce_of_scores(X, labels):
    """Mean cross-entropy of the scores (x0, x1, 0), computed with NumPy on the side."""
    scores = np.concatenate([f64(X), np.zeros((len(X), 1))], axis=1)
    shifted = scores - scores.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return float(-logp[np.arange(len(X)), labels].mean())


X_eval = np.array([[2, 1], [0, 3], [-1, -2], [5, 4], [1, 2]], dtype=np.float32)
labels_eval = np.array([0, 1, 2, 1, 0])          # argmax of the scores: 0, 1, 2, 0, 1 -> 3 of 5 right
scores_eval = Tensor(np.concatenate([X_eval, np.zeros((5, 1), dtype=np.float32)], axis=1))
print("count_correct, integer labels:", count_correct(scores_eval, Tensor(labels_eval)))
print("count_correct, float labels:  ", count_correct(scores_eval, Tensor(labels_eval.astype(np.float32))))
print("count_correct, one-hot:       ", count_correct(scores_eval, Tensor(np.eye(3, dtype=np.float32)[labels_eval])))

# %% nbgrader={"grade": true, "grade_id": "training_test_count_classes", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
got = count_correct(scores_eval, Tensor(labels_eval))
assert type(got) is int and got == 3, f"scores (x0, x1, 0) against labels [0, 1, 2, 1, 0]: expected the int 3, got {got!r}"
got = count_correct(scores_eval, Tensor(labels_eval.astype(np.float32)))
assert got == 3, f"class indices as whole-valued floats count like integers: expected 3, got {got!r}"
got = count_correct(scores_eval, Tensor(np.eye(3, dtype=np.float32)[labels_eval]))
assert got == 3, f"one-hot targets: the two argmaxes agree 3 times, got {got!r}"
print("count_correct, class scores: OK")
### BEGIN HIDDEN TESTS
scores = Tensor([[0.1, 0.7, 0.2], [2.0, -1.0, 0.5], [0.0, 0.1, 0.3], [1.0, 3.0, 2.0]])   # argmax 1, 0, 2, 1
got = count_correct(scores, Tensor(np.array([1, 0, 0, 2])))
assert type(got) is int and got == 2, f"class indices: argmax [1, 0, 2, 1] vs [1, 0, 0, 2] is 2 right, got {got!r}"
soft = Tensor(np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8], [0.0, 0.4, 0.6]], dtype=np.float32))
got = count_correct(scores, soft)                       # target argmax 1, 0, 2, 2
assert type(got) is int and got == 3, f"probability targets: the argmaxes agree 3 times, got {got!r}"
got = count_correct(scores.data, np.array([1.0, 0.0, 2.0, 1.0]))   # plain arrays, float labels
assert got == 4, f"plain NumPy arrays and whole-valued float labels: 4 right, got {got!r}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_count_binary", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
got = count_correct(Tensor([[0.9], [0.2], [0.5], [0.4]]), Tensor([[1.0], [0.0], [0.0], [1.0]]))
assert type(got) is int and got == 2, (
    f"one probability per sample: outputs >= 0.5 are class 1; [0.9, 0.2, 0.5, 0.4] vs [1, 0, 0, 1]: expected 2, got {got!r}"
)
got = count_correct(Tensor([[0.3], [2.5]]), Tensor([[0.3], [2.5]]))
assert got is None, f"targets that are not all 0 or 1 (regression): expected None, got {got!r}"
print("count_correct, one output per sample and regression: OK")
### BEGIN HIDDEN TESTS
got = count_correct(Tensor([0.7, 0.1, 0.49, 0.51, 0.0]), Tensor(np.array([1, 1, 0, 0, 0])))
assert type(got) is int and got == 3, f"outputs (N,) with integer 0/1 targets: expected 3 right, got {got!r}"
got = count_correct(Tensor([[0.6], [0.6], [0.2]]), Tensor(np.array([1.0, 1.0, 1.0])))
assert got == 2, f"outputs (N, 1) with targets (N,): expected 2 right, got {got!r}"
got = count_correct(Tensor([[0.6], [0.6]]), Tensor(np.array([1.0, 2.0])))
assert got is None, f"a target of 2 is not a 0/1 label: expected None, got {got!r}"
got = count_correct(Tensor([[0.5, -1.0], [2.0, 0.3]]), Tensor([[0.4, -1.1], [2.2, 0.1]]))
assert got is None, f"(N, C) outputs with (N, C) targets that are not probabilities (regression): None, got {got!r}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_evaluate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
model = scoring_model()
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
model.train()
loss, acc = trainer.evaluate(batches_of(X_eval, labels_eval, [3, 2]))
want_loss = ce_of_scores(X_eval, labels_eval)
assert type(loss) is float and type(acc) is float, "evaluate returns two Python floats"
assert abs(acc - 0.6) < 1e-12, f"accuracy: expected 3/5 = 0.6, got {acc}"
assert abs(loss - want_loss) < 1e-5, (
    f"eval loss: expected {want_loss:.6f} (Dropout off, weighted by samples), got {loss:.6f}"
)
assert trainer.history["eval_loss"] == [loss] and trainer.history["eval_accuracy"] == [acc], (
    "evaluate records the loss in history['eval_loss'] and the accuracy in history['eval_accuracy']"
)
print("evaluate: OK")
### BEGIN HIDDEN TESTS
# other rows and labels, batches of 1, 2, 2 and one-hot targets; argmax of the scores: 1, 0, 2, 0, 0
X2 = np.array([[1, 4], [3, -2], [-2, -1], [0.5, 0.1], [2, 1.5]], dtype=np.float32)
lab2 = np.array([1, 1, 2, 0, 0])                     # right: rows 0, 2, 3, 4 -> 4 of 5
model = scoring_model(0.3)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
loss2, acc2 = trainer.evaluate(batches_of(X2, np.eye(3, dtype=np.float32)[lab2], [1, 2, 2]))
assert abs(acc2 - 0.8) < 1e-12 and abs(loss2 - ce_of_scores(X2, lab2)) < 1e-5, (
    "evaluate with one-hot targets and batches of 1, 2, 2: the loss and the accuracy are means over samples "
    "with Dropout off"
)
loss3, acc3 = trainer.evaluate(batches_of(X_eval, labels_eval, [4, 1]))
assert trainer.history["eval_accuracy"] == [acc2, acc3] and trainer.history["eval_loss"] == [loss2, loss3], (
    "every evaluation appends its loss and accuracy to history"
)
assert type(loss3) is float and abs(acc3 - 0.6) < 1e-12, "evaluate returns Python floats"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_evaluate_untouched", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
model = scoring_model()
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
marker = [np.full(p.data.shape, 7.0, dtype=np.float32) for p in model.parameters()]
for p, g in zip(model.parameters(), marker, strict=True):
    p.grad = g.copy()
before = [f64(p.data).copy() for p in model.parameters()]
rng_state = json.dumps(model.state_dict()["1.rng"], default=str)


class RecordingLoss:
    """Cross-entropy that notes whether its input records a graph."""

    def __init__(self):
        self.recorded = []

    def __call__(self, out, t):
        self.recorded.append(out.requires_grad or out._op is not None)
        return CrossEntropyLoss()(out, t)


model.eval()
rec = RecordingLoss()
Trainer(model, SGD(model.parameters(), lr=0.1), rec).evaluate(batches_of(X_eval, labels_eval, [2, 3]))
assert model.training is False, "evaluate must put back the mode the model was in (here eval)"
for p, w, g in zip(model.parameters(), before, marker, strict=True):
    assert np.array_equal(f64(p.data), w), "evaluate must not change parameters"
    assert p.grad is not None and np.array_equal(p.grad, g), "evaluate must not touch gradients"
assert json.dumps(model.state_dict()["1.rng"], default=str) == rng_state, "evaluate must not draw random numbers"
assert rec.recorded == [False, False], "evaluate must run under no_grad(): nothing recorded"
print("evaluate changes nothing: OK")
### BEGIN HIDDEN TESTS
model = scoring_model(0.9)
model.train()
rng_state = json.dumps(model.state_dict()["1.rng"], default=str)
rec = RecordingLoss()
Trainer(model, SGD(model.parameters(), lr=0.1), rec).evaluate(batches_of(X_eval, labels_eval, [1, 1, 3]))
assert model.training is True, "evaluate must put back the mode the model was in (here train)"
assert rec.recorded == [False, False, False], "evaluate must run under no_grad(): nothing recorded"
assert json.dumps(model.state_dict()["1.rng"], default=str) == rng_state, "evaluate must not draw random numbers (Dropout off)"


class FailingLoss:
    def __call__(self, out, t):
        raise RuntimeError("loss fails on purpose")


try:
    Trainer(model, SGD(model.parameters(), lr=0.1), FailingLoss()).evaluate(batches_of(X_eval, labels_eval, [5]))
except RuntimeError:
    pass
assert model.training is True, "the mode is put back also when an error stops the evaluation (try/finally)"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_evaluate_special", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
reg = linear_model(2, 2, seed=3)
T = np.array([[0.5, -1.2], [2.0, 0.3], [0.1, 0.7]], dtype=np.float32)
Y = f64(X_eval[:3]) @ f64(reg.weight.data) + f64(reg.bias.data)
want = float(np.mean((Y - f64(T)) ** 2))
loss, acc = Trainer(reg, SGD(reg.parameters(), lr=0.1), MSELoss()).evaluate(batches_of(X_eval[:3], T, [1, 2]))
assert type(acc) is float and math.isnan(acc), f"regression: accuracy must be nan, got {acc!r}"
assert abs(loss - want) < 1e-5 * max(1, want), f"regression eval loss: expected {want}, got {loss}"
model = scoring_model()
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
loss, acc = trainer.evaluate([])
assert math.isnan(loss) and math.isnan(acc), f"an empty loader gives (nan, nan), got {(loss, acc)}"
print("evaluate, regression and empty: OK")
### BEGIN HIDDEN TESTS
model = scoring_model()
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
loss, acc = trainer.evaluate(b for b in batches_of(X_eval, labels_eval, [2, 2, 1]))
assert abs(acc - 0.6) < 1e-12, "a generator of batches works (no len())"
loss, acc = trainer.evaluate(b for b in [])
assert type(loss) is float and math.isnan(loss) and math.isnan(acc), "an empty generator gives (nan, nan)"
assert math.isnan(trainer.history["eval_loss"][-1]), "the nan of an empty evaluation is recorded too"
# accuracy undefined in one batch (targets not 0/1) only: the evaluation's accuracy is nan
single = Sequential(Linear(2, 1, rng=np.random.default_rng(0)))
Tb = np.array([[1.0], [0.0], [1.0], [0.5]], dtype=np.float32)
loss, acc = Trainer(single, SGD(single.parameters(), lr=0.1), MSELoss()).evaluate(batches_of(X_eval[:4], Tb, [3, 1]))
assert math.isnan(acc) and math.isfinite(loss), (
    f"count_correct gives None for one batch: the accuracy is nan (the loss is still measured), got {acc}"
)
### END HIDDEN TESTS

# %% [markdown]
# ### 3.4 Saving
#
# A checkpoint must hold everything the next epoch depends on. `_state_dict(trainer)`
# returns it as one dict with exactly these keys (`Trainer.STATE_KEYS`):
#
# | key | value | why |
# |---|---|---|
# | `"epoch"`, `"step"`, `"skipped_steps"` | the trainer's counters (ints) | where the run is |
# | `"grad_clip_norm"` | `trainer.grad_clip_norm` (a float, or None) | a setting of the run |
# | `"parameter_shapes"` | `{name: list(p.data.shape)}` for `trainer.model.named_parameters()` | a quick check that a file fits the model |
# | `"model"` | `trainer.model.state_dict()` | the weights by parameter name, and Dropout's generator state (its `".rng"` entries) |
# | `"optimizer"` | `trainer.optimizer.state_dict()` | hyperparameters and buffers (momentum, Adam's moments, step counts) |
# | `"scheduler"` | `trainer.scheduler.state_dict()`, or None without a schedule | the schedule's settings |
# | `"history"` | `{key: np.asarray(trainer.history[key], dtype=np.float64)}` for every key of `Trainer.HISTORY_KEYS` | the curves so far, as float64 arrays (exact, and stored as arrays in the file) |
#
# The data order needs no entry: it is a function of the loader's own seed and the
# epoch number, and the trainer passes the epoch to `set_epoch`. `save_checkpoint` (given)
# writes this dict to a file with `write_checkpoint`.
#
# For example, a trainer with a `Linear(3, 2)` model, SGD and no schedule, after one epoch
# of 2 updates, gives `epoch` 1, `step` 2, `parameter_shapes`
# `{"weight": [3, 2], "bias": [2]}`, `scheduler` None and a `history["grad_norms"]` array
# of 2 float64 numbers.
#
# **No pickle.** `pickle.load` can run arbitrary code hidden in a file, so a checkpoint
# from elsewhere would be a program. Ours is an `.npz` archive (a zip of `.npy` arrays,
# stored, not compressed) read with `allow_pickle=False`: every array under a readable
# name (`model/0.weight`, `optimizer/state/0/momentum_buffer`, ...) plus one member
# `checkpoint.json` that holds the JSON skeleton of the state, with each array replaced by
# a reference to its member. The file is the arrays' raw bytes plus small headers, and a
# newer format version is refused with a clear message instead of misread.
#
# **Atomic save.** The file is written to a temporary file in the same folder, flushed,
# `fsync`ed and then moved over the old one with `os.replace`, a single atomic step. A
# crash in the middle leaves the previous checkpoint intact, never a half-written one.
# (A process killed while writing can leave its hidden temporary file,
# `.<name>.<random>.tmp`, next to the checkpoint; it is never read and can be deleted.)
#
# The file format (writing and reading the archive) is given below: `write_checkpoint`
# and `read_checkpoint`, which raises a `CheckpointError` naming the file when it cannot
# be read (missing, truncated, corrupt, not a checkpoint, a newer version).

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



# %% nbgrader={"grade": false, "grade_id": "training_state_dict", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _state_dict(trainer: Trainer) -> dict[str, Any]:
    """The work of `trainer.state_dict` (section 3.4): the counters, grad_clip_norm, the
    parameter shapes, the model's, optimizer's and schedule's state dicts and the history as
    float64 arrays, under the keys `Trainer.STATE_KEYS`."""
    ### BEGIN SOLUTION
    scheduler = trainer.scheduler
    return {
        "epoch": trainer.epoch,
        "step": trainer.step,
        "skipped_steps": trainer.skipped_steps,
        "grad_clip_norm": trainer.grad_clip_norm,
        "parameter_shapes": {
            name: list(p.data.shape) for name, p in trainer.model.named_parameters()
        },
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "history": {
            key: np.asarray(trainer.history[key], dtype=np.float64) for key in trainer.HISTORY_KEYS
        },
    }
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "training_save_example", "locked": true, "schema_version": 3, "solution": false, "task": false}
# a trainer after one epoch of 2 updates (made by the test helper `busy`, which does what an
# epoch does to the state without running one)
save_model = linear_model(3, 2, seed=1)
save_trainer = busy(Trainer(save_model, SGD(save_model.parameters(), lr=0.1), MSELoss()), np.random.default_rng(0))

# %%
state = save_trainer.state_dict()
print({key: state[key] for key in ("epoch", "step", "skipped_steps", "grad_clip_norm", "parameter_shapes", "scheduler")})
print("history:", {key: value for key, value in state["history"].items()})

# %% nbgrader={"grade": true, "grade_id": "training_test_state_dict", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
state = save_trainer.state_dict()
assert set(state) == set(Trainer.STATE_KEYS), f"state_dict() keys: expected {sorted(Trainer.STATE_KEYS)}, got {sorted(state)}"
got = (state["epoch"], state["step"], state["skipped_steps"], state["grad_clip_norm"], state["scheduler"])
assert got == (1, 2, 0, None, None), (
    f"epoch, step, skipped_steps, grad_clip_norm, scheduler: expected (1, 2, 0, None, None), got {got}"
)
assert state["parameter_shapes"] == {"weight": [3, 2], "bias": [2]}, (
    f"parameter_shapes: expected {{'weight': [3, 2], 'bias': [2]}}, got {state['parameter_shapes']}"
)
print("state_dict, counters and settings: OK")
### BEGIN HIDDEN TESTS
trainer = busy(small_run()[0], np.random.default_rng(3), updates=3, inputs=RUN_INPUTS)
trainer.skipped_steps = 4                              # as if four windows had been skipped
state = trainer.state_dict()
assert (state["epoch"], state["step"], state["skipped_steps"]) == (1, 3, 4), (
    f"counters of a run with accumulation: expected epoch 1, step 3, skipped_steps 4; got "
    f"{(state['epoch'], state['step'], state['skipped_steps'])}"
)
assert state["grad_clip_norm"] == 0.5 and state["scheduler"] == {"max_lr": 0.1, "min_lr": 0.01, "total_epochs": 4}, (
    f"grad_clip_norm and the schedule's state_dict(): got {state['grad_clip_norm']} and {state['scheduler']}"
)
assert state["parameter_shapes"] == {"0.weight": [4, 8], "0.bias": [8], "3.weight": [8, 3], "3.bias": [3]}, (
    f"parameter_shapes by parameter name, shapes as lists: got {state['parameter_shapes']}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_state_dict_parts", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
state = save_trainer.state_dict()
model_state = save_trainer.model.state_dict()
assert set(state["model"]) == set(model_state) and all(
    np.array_equal(state["model"][k], model_state[k]) for k in model_state), "state['model'] is the model's state_dict()"
assert state["optimizer"]["type"] == "SGD" and state["optimizer"]["step"] == 2, "state['optimizer'] is the optimizer's state_dict()"
history = state["history"]
assert set(history) == set(Trainer.HISTORY_KEYS), f"history keys: expected {sorted(Trainer.HISTORY_KEYS)}, got {sorted(history)}"
assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in history.values()), (
    "every history entry is stored as a float64 array"
)
assert history["grad_norms"].shape == (2,) and history["eval_loss"].shape == (0,), (
    f"one norm per update (2), no evaluation yet (0): got shapes {history['grad_norms'].shape}, {history['eval_loss'].shape}"
)
print("state_dict, parts: OK")
### BEGIN HIDDEN TESTS
trainer = busy(small_run(seed=5)[0], np.random.default_rng(4), updates=4, evaluated=True, inputs=RUN_INPUTS)
state = trainer.state_dict()
for key in Trainer.HISTORY_KEYS:
    value = state["history"][key]
    assert isinstance(value, np.ndarray) and value.dtype == np.float64 and np.array_equal(value, trainer.history[key]), (
        f"history[{key!r}] must be the trainer's list as a float64 array"
    )
mine, theirs = arrays_of(state["model"]), arrays_of(trainer.model.state_dict())
assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine), (
    "state['model'] must be the model's state_dict()"
)
assert state["model"]["2.rng"] == trainer.model.state_dict()["2.rng"], "the model's state holds Dropout's generator"
opt_state = trainer.optimizer.state_dict()
assert state["optimizer"]["hyperparameters"] == opt_state["hyperparameters"] and all(
    np.array_equal(a, b) for a, b in zip(arrays_of(state["optimizer"]).values(), arrays_of(opt_state).values(), strict=True)
), "state['optimizer'] must be the optimizer's state_dict()"
# the whole state goes through the file unchanged
folder = tempfile.mkdtemp()
path = os.path.join(folder, "parts.ckpt")
trainer.save_checkpoint(path)
back = arrays_of(read_checkpoint(path))
assert back.keys() == arrays_of(state).keys() and all(np.array_equal(back[k], arrays_of(state)[k]) for k in back), (
    "the state read back from the file must equal state_dict()"
)
shutil.rmtree(folder, ignore_errors=True)
### END HIDDEN TESTS

# %% [markdown]
# ### 3.5 Checking a state before loading it
#
# Loading is **all or nothing**: everything is read and checked first, and only then is
# anything changed. A bad file raises one `CheckpointError` (a `ValueError`) that names
# the file and the problem, and leaves the trainer exactly as it was.
#
# `_check_state(trainer, state, where)` is the check. `state` is what `read_checkpoint`
# returned; `where` is the file name. Fail with the given `fail(message)`, which raises
# `CheckpointError(f"{where}: {message}")`, as soon as one of these does not hold:
#
# 1. `state` is a dict with every key of `Trainer.STATE_KEYS`. The message names the
#    missing keys.
# 2. `epoch`, `step` and `skipped_steps` are each an `int >= 0` (not a bool). The message
#    names the entry and its value, e.g. `epoch must be an int >= 0, got -3`.
# 3. `grad_clip_norm` is None or a finite number `>= 0`; the message names it and the
#    value. The given `_check_number(value, "grad_clip_norm", "checkpoint")` raises a
#    `ValueError` with such a message; pass its text to `fail`, which gives e.g.
#    `run.ckpt: checkpoint: grad_clip_norm must be a finite number >= 0, got -2.0`.
# 4. `parameter_shapes` equals the model's own `{name: list(p.data.shape)}`. The message
#    names a parameter that differs (its shape differs, or the model or the file lacks it).
# 5. `optimizer` is a dict whose `"type"` is the type of the trainer's optimizer
#    (`trainer.optimizer.state_dict()["type"]`). The message names both types.
# 6. `scheduler` is None exactly when the trainer has no schedule. A file saved with a
#    schedule does not fit a trainer without one, and the other way round; the message
#    names `scheduler` and says which side has one.
# 7. `history` is a dict that holds, for every key of `Trainer.HISTORY_KEYS`, a
#    one-dimensional float array. The message names the entry.
#
# The rest is checked by the parts themselves when they load: `model.load_state_dict`
# checks every name, shape and dtype, `optimizer.load_state_dict` every buffer (module 07),
# and `CosineSchedule.load_state_dict` its settings, each before changing anything. If one
# of them still refuses its part after another part was loaded, loading puts everything
# back (section 3.6).
#
# **Worked example.** A checkpoint saved by a trainer with a `CosineSchedule`, loaded into a
# trainer without one, fails with a message like
# `run.ckpt: the checkpoint was saved with a learning-rate schedule (scheduler), the trainer has none`.

# %% nbgrader={"grade": false, "grade_id": "training_check_state", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _check_state(trainer: Trainer, state: Any, where: str) -> None:
    """Raise CheckpointError("<where>: <problem>") unless `state` fits `trainer` (section 3.5):
    every entry present, the counters ints >= 0, grad_clip_norm None or a finite number >= 0,
    the parameter shapes and the optimizer type those of the trainer, a schedule on both
    sides or on neither, a history of 1-d float arrays."""

    def fail(message: str) -> NoReturn:
        raise CheckpointError(f"{where}: {message}")

    ### BEGIN SOLUTION
    if not isinstance(state, dict):
        fail(f"the checkpoint state is not a dict but a {type(state).__name__}")
    missing = [key for key in trainer.STATE_KEYS if key not in state]
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
    shapes = state["parameter_shapes"]
    own = {name: list(p.data.shape) for name, p in trainer.model.named_parameters()}
    if shapes != own:
        saved = shapes if isinstance(shapes, dict) else {}

        def shape(value: Any) -> str:
            return "no entry" if value is None else str(tuple(value)) if isinstance(value, list) else repr(value)

        for name in [*own, *saved]:
            if saved.get(name) != own.get(name):
                fail(f"parameter {name!r} has shape {shape(saved.get(name))} in the file, "
                     f"but in the model {shape(own.get(name))}")
        fail(f"parameter_shapes is not a dict of shapes: {shapes!r}")
    opt, kind = state["optimizer"], trainer.optimizer.state_dict().get("type")
    if not isinstance(opt, dict) or opt.get("type") != kind:
        saved_kind = opt.get("type") if isinstance(opt, dict) else type(opt).__name__
        fail(f"the checkpoint has a {saved_kind} optimizer, the trainer a {kind}")
    if (state["scheduler"] is None) != (trainer.scheduler is None):
        fail("the checkpoint was saved " + ("without" if state["scheduler"] is None else "with")
             + " a learning-rate schedule (scheduler), the trainer has "
             + ("one" if trainer.scheduler is not None else "none"))
    history = state["history"]
    if not isinstance(history, dict):
        fail("history is not a dict")
    for key in trainer.HISTORY_KEYS:
        values = history.get(key)
        if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "f":
            fail(f"history entry {key!r} is missing or not a 1-d float array")
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "training_check_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
def check_message(trainer, state, where="run.ckpt"):
    """The CheckpointError message of _check_state, or None when the state passes."""
    try:
        _check_state(trainer, state, where)
    except CheckpointError as error:
        return str(error)
    return None


def edited(state, **changes):
    """A copy of a state with some entries replaced (a value of DELETE removes the entry)."""
    copy = _copy_tree(state)
    for key, value in changes.items():
        if value is DELETE:
            copy.pop(key, None)
        else:
            copy[key] = value
    return copy


def saved_state(trainer):
    """The state of `trainer` as the table of section 3.4 describes it, assembled here from the
    parts, so that the tests of sections 3.5 and 3.6 do not depend on your `_state_dict`."""
    state = {key: getattr(trainer, key) for key in ("epoch", "step", "skipped_steps", "grad_clip_norm")}
    state["parameter_shapes"] = {name: list(p.data.shape) for name, p in trainer.model.named_parameters()}
    state["model"] = trainer.model.state_dict()
    state["optimizer"] = trainer.optimizer.state_dict()
    state["scheduler"] = trainer.scheduler.state_dict() if trainer.scheduler is not None else None
    state["history"] = {key: np.array(trainer.history[key], dtype=np.float64) for key in Trainer.HISTORY_KEYS}
    return state


DELETE = object()
check_trainer = busy(small_run()[0], np.random.default_rng(5), updates=3, evaluated=True, inputs=RUN_INPUTS)
good_state = saved_state(check_trainer)

# %% nbgrader={"grade": true, "grade_id": "training_test_check_entries", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert check_message(check_trainer, good_state) is None, "a state saved by the same kind of trainer passes the check"
message = check_message(check_trainer, edited(good_state, optimizer=DELETE))
assert message is not None and message.startswith("run.ckpt") and "optimizer" in message, (
    f"a state without 'optimizer': expected a CheckpointError starting with the file name and naming the entry, got {message!r}"
)
message = check_message(check_trainer, edited(good_state, epoch=-3))
assert message is not None and "epoch" in message and "-3" in message, (
    f"epoch = -3: the CheckpointError should name epoch and the value -3, got {message!r}"
)
print("checks 1-2: OK")
### BEGIN HIDDEN TESTS
message = check_message(check_trainer, edited(good_state, history=DELETE, step=DELETE), where="other/place.ckpt")
assert message is not None and message.startswith("other/place.ckpt") and "history" in message and "step" in message, (
    f"a state without 'history' and 'step': the message should start with the file name and name both, got {message!r}"
)
for key, value in (("step", 2.5), ("skipped_steps", True), ("epoch", "1"), ("step", -1)):
    message = check_message(check_trainer, edited(good_state, **{key: value}))
    assert message is not None and key in message and str(value) in message, (
        f"{key} = {value!r} is not an int >= 0: the CheckpointError should name {key} and the value, got {message!r}"
    )
message = check_message(check_trainer, [1, 2, 3])
assert message is not None, "a state that is not a dict is refused with a CheckpointError"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_check_settings", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
message = check_message(check_trainer, edited(good_state, grad_clip_norm=-2.0))
assert message is not None and "grad_clip_norm" in message and "-2.0" in message, (
    f"grad_clip_norm = -2.0: the CheckpointError should name grad_clip_norm and the value, got {message!r}"
)
message = check_message(check_trainer, edited(good_state, scheduler=None))
assert message is not None and "scheduler" in message, (
    f"a state saved without a schedule, a trainer with one: the CheckpointError should name scheduler, got {message!r}"
)
print("checks 3 and 6: OK")
### BEGIN HIDDEN TESTS
assert check_message(check_trainer, edited(good_state, grad_clip_norm=None)) is None, "grad_clip_norm None is fine"
message = check_message(check_trainer, edited(good_state, grad_clip_norm=float("nan")))
assert message is not None and "grad_clip_norm" in message and "nan" in message, (
    f"grad_clip_norm = nan is not a finite number: name it and the value, got {message!r}"
)
plain = Trainer(check_trainer.model, SGD(check_trainer.model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss())
message = check_message(plain, good_state)
assert message is not None and "scheduler" in message, (
    f"a state saved with a schedule, a trainer without one: the CheckpointError should name scheduler, got {message!r}"
)
assert check_message(plain, edited(good_state, scheduler=None)) is None, "no schedule on either side is fine"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_check_parts", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
shapes = dict(good_state["parameter_shapes"], **{"3.bias": [4]})
message = check_message(check_trainer, edited(good_state, parameter_shapes=shapes))
assert message is not None and "3.bias" in message, (
    f"parameter 3.bias has shape [4] in the file and [3] in the model: the message should name it, got {message!r}"
)
adam_trainer = Trainer(check_trainer.model, Adam(check_trainer.model.parameters(), lr=0.01), CrossEntropyLoss(),
                       scheduler=CosineSchedule(0.1, 0.01, total_epochs=4), grad_clip_norm=0.5)
message = check_message(adam_trainer, good_state)
assert message is not None and "SGD" in message and "Adam" in message, (
    f"an SGD checkpoint into an Adam trainer: the message should name both types, got {message!r}"
)
print("checks 4-5: OK")
### BEGIN HIDDEN TESTS
wide = Sequential(Linear(4, 9, rng=np.random.default_rng(0)), ReLU(), Dropout(0.25, rng=np.random.default_rng(1)),
                  Linear(9, 3, rng=np.random.default_rng(2)))
wide_trainer = Trainer(wide, SGD(wide.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss(),
                       scheduler=CosineSchedule(0.1, 0.01, total_epochs=4), grad_clip_norm=0.5)
message = check_message(wide_trainer, good_state)
assert message is not None and any(name in message for name in ("0.weight", "0.bias", "3.weight")), (
    f"a model of other shapes: the message should name a parameter that differs, got {message!r}"
)
shapes = {name: shape for name, shape in good_state["parameter_shapes"].items() if name != "0.bias"}
message = check_message(check_trainer, edited(good_state, parameter_shapes=shapes))
assert message is not None and "0.bias" in message, f"a parameter missing from the file must be named, got {message!r}"
sgd_state = edited(good_state)  # a copy
sgd_state["optimizer"]["type"] = "AdamW"
message = check_message(check_trainer, sgd_state)
assert message is not None and "AdamW" in message and "SGD" in message, (
    f"an AdamW checkpoint into an SGD trainer: the message should name both types, got {message!r}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_check_history", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
history = dict(good_state["history"])
del history["grad_norms"]
message = check_message(check_trainer, edited(good_state, history=history))
assert message is not None and "grad_norms" in message, (
    f"a history without 'grad_norms': the CheckpointError should name the entry, got {message!r}"
)
print("check 7: OK")
### BEGIN HIDDEN TESTS
for key, value in (("eval_loss", np.zeros((2, 2))), ("train_loss", np.array([1, 2])), ("learning_rates", [0.1, 0.2])):
    history = dict(good_state["history"], **{key: value})
    message = check_message(check_trainer, edited(good_state, history=history))
    assert message is not None and key in message, (
        f"history[{key!r}] is not a one-dimensional float array: the message should name it, got {message!r}"
    )
message = check_message(check_trainer, edited(good_state, history=[1.0, 2.0]))
assert message is not None and "history" in message, f"a history that is not a dict must be refused, got {message!r}"
### END HIDDEN TESTS

# %% [markdown]
# ### 3.6 Loading
#
# `_load_checkpoint(trainer, path)` puts it together:
#
# 1. `state = read_checkpoint(path)` (given; a file that cannot be read raises a
#    `CheckpointError` naming it, and nothing has changed yet);
# 2. `_check_state(trainer, state, str(path))`;
# 3. keep a copy of the trainer's current state, `before = _copy_tree(trainer.state_dict())`
#    (`_copy_tree` is given: a deep copy with the arrays copied);
# 4. `trainer._apply_state(state)` (given: it loads the model, the optimizer and the
#    schedule, then sets the counters, `grad_clip_norm` and the history);
# 5. if step 4 raises (a part refused its state, for example an optimizer whose saved
#    `momentum` is negative, after the model was already loaded), put everything back with
#    `trainer._apply_state(before)` and raise a `CheckpointError` whose message starts with
#    the file name and includes the part's own message, e.g.
#    `run.ckpt: cannot be loaded: SGD: invalid momentum=-1.0; expected momentum >= 0`.
#
# On loading, the saved configuration wins: the optimizer's hyperparameters, the schedule
# and the clipping threshold come from the file, whatever the trainer was built with. The
# file knows what the run was using.

# %% nbgrader={"grade": false, "grade_id": "training_load_checkpoint", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _load_checkpoint(trainer: Trainer, path: str | os.PathLike) -> None:
    """The work of `trainer.load_checkpoint` (section 3.6): read, check, then apply; if a part
    refuses its state, everything is put back and a CheckpointError names the file."""
    ### BEGIN SOLUTION
    state = read_checkpoint(path)
    _check_state(trainer, state, str(path))
    before = _copy_tree(trainer.state_dict())
    try:
        trainer._apply_state(state)
    except Exception as error:
        trainer._apply_state(before)                # put back what was there
        raise CheckpointError(f"{path}: cannot be loaded: {error}") from error
    ### END SOLUTION

# %% nbgrader={"grade": false, "grade_id": "training_load_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
load_folder = tempfile.mkdtemp()        # scratch folder of the loading tests, removed in section 5


def snapshot(trainer):
    """Every array, setting, counter and history entry of a trainer, read from its parts."""
    parts = {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
             "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict()}
    return (arrays_of(parts), json.dumps(parts, default=lambda array: None),
            (trainer.epoch, trainer.step, trainer.skipped_steps, trainer.grad_clip_norm),
            json.dumps(trainer.history))


def same(a, b):
    return a[0].keys() == b[0].keys() and all(np.array_equal(a[0][k], b[0][k]) for k in a[0]) and a[1:] == b[1:]


def rewrite(source, new_path, edit):
    """Copy the checkpoint `source` with its JSON header edited by `edit(header)`."""
    with np.load(source, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    header = json.loads(members["checkpoint.json"].tobytes())
    edit(header)
    members["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(new_path, "wb") as f:
        np.savez(f, **members)

# %% nbgrader={"grade": true, "grade_id": "training_test_load", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# the file is written from the parts (saved_state, section 3.5), so this tests loading alone
path = os.path.join(load_folder, "run.ckpt")
trainer = busy(small_run()[0], np.random.default_rng(1), updates=3, evaluated=True, inputs=RUN_INPUTS)
write_checkpoint(path, saved_state(trainer))
saved = snapshot(trainer)
busy(trainer, np.random.default_rng(2), inputs=RUN_INPUTS)        # change everything
trainer.load_checkpoint(path)
assert same(snapshot(trainer), saved), "after load_checkpoint every array, counter and history entry is as saved"
print("checkpoint round trip: OK")
### BEGIN HIDDEN TESTS
# the saved configuration wins: a fresh trainer built with other settings takes the file's
other = small_run(seed=9)[0]
other.optimizer.momentum = 0.5
other.grad_clip_norm = 3.0
other.scheduler.max_lr = 0.9
other.load_checkpoint(path)
assert other.grad_clip_norm == 0.5 and other.scheduler.max_lr == 0.1, "schedule and clipping come from the file"
assert other.optimizer.momentum == 0.9, "optimizer settings come from the file"
assert same(snapshot(other), saved), "a fresh trainer holds exactly the saved state after loading"
assert type(other.epoch) is int and all(type(v) is float for v in other.history["grad_norms"]), (
    "after loading, the counters are ints and the history holds Python floats"
)
# and it goes on exactly like another trainer loaded from the same file
twin = small_run()[0]
twin.load_checkpoint(path)
for t in (other, twin):
    busy(t, np.random.default_rng(6), updates=3, inputs=RUN_INPUTS)
assert all(np.array_equal(a.data, b.data) for a, b in zip(other.model.parameters(), twin.model.parameters(), strict=True)), (
    "two trainers loaded from the same file must train on identically"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_load_refused", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
path = os.path.join(load_folder, "run.ckpt")
victim = busy(small_run(seed=7)[0], np.random.default_rng(3), inputs=RUN_INPUTS)
before = snapshot(victim)
truncated = os.path.join(load_folder, "truncated.ckpt")
with open(path, "rb") as f, open(truncated, "wb") as g:
    g.write(f.read()[:2000])
try:
    victim.load_checkpoint(truncated)
    raise AssertionError("loading a truncated file must raise CheckpointError")
except CheckpointError as error:
    assert str(truncated) in str(error), f"the error must name the file: {error}"
assert same(snapshot(victim), before), "a failed load must leave the trainer exactly as it was"
no_optimizer = os.path.join(load_folder, "no_optimizer.ckpt")
rewrite(path, no_optimizer, lambda h: h["state"].pop("optimizer"))
try:
    victim.load_checkpoint(no_optimizer)
    raise AssertionError("a file without the optimizer's state must raise CheckpointError")
except CheckpointError as error:
    assert str(no_optimizer) in str(error) and "optimizer" in str(error), f"name the file and the entry: {error}"
assert same(snapshot(victim), before), "a failed load must leave the trainer exactly as it was"
print("refused checkpoints: OK")
### BEGIN HIDDEN TESTS
for name, edit, word in [
    ("bad_epoch.ckpt", lambda h: h["state"].update(epoch=-3), "epoch"),
    ("no_history.ckpt", lambda h: h["state"].pop("history"), "history"),
    ("no_scheduler.ckpt", lambda h: h["state"].update(scheduler=None), "scheduler"),
    ("newer.ckpt", lambda h: h.update(version=CHECKPOINT_VERSION + 1), "version"),
]:
    bad = os.path.join(load_folder, name)
    rewrite(path, bad, edit)
    try:
        victim.load_checkpoint(bad)
        raise AssertionError(f"loading {name} must raise CheckpointError")
    except CheckpointError as error:
        assert str(bad) in str(error) and word in str(error), f"the error must name the file and {word!r}: {error}"
    assert same(snapshot(victim), before), f"{name}: a failed load must leave the trainer exactly as it was"
missing = os.path.join(load_folder, "missing.ckpt")
try:
    victim.load_checkpoint(missing)
    raise AssertionError("loading a missing file must raise CheckpointError")
except CheckpointError as error:
    assert str(missing) in str(error), f"the error must name the file: {error}"
assert same(snapshot(victim), before), "a failed load must leave the trainer exactly as it was"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "training_test_load_rollback", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# The file passes the checks, but the optimizer refuses momentum = -1 after the model was already loaded.
path = os.path.join(load_folder, "run.ckpt")
bad_momentum = os.path.join(load_folder, "bad_momentum.ckpt")
rewrite(path, bad_momentum, lambda h: h["state"]["optimizer"]["hyperparameters"].update(momentum=-1.0))
victim = busy(small_run(seed=7)[0], np.random.default_rng(3), inputs=RUN_INPUTS)
before = snapshot(victim)
try:
    victim.load_checkpoint(bad_momentum)
    raise AssertionError("a checkpoint with momentum = -1 must raise CheckpointError")
except CheckpointError as error:
    assert str(bad_momentum) in str(error) and "momentum" in str(error), (
        f"the error must name the file and include the optimizer's message (momentum): {error}"
    )
assert same(snapshot(victim), before), (
    "everything already loaded (the model) must be put back when a later part refuses its state"
)
print("all or nothing: OK")
### BEGIN HIDDEN TESTS
# the schedule refuses min_lr > max_lr after the model and the optimizer were loaded
bad_schedule = os.path.join(load_folder, "bad_schedule.ckpt")
rewrite(path, bad_schedule, lambda h: h["state"]["scheduler"].update(min_lr=0.5))
victim = busy(small_run(seed=8)[0], np.random.default_rng(4), updates=3, inputs=RUN_INPUTS)
before = snapshot(victim)
try:
    victim.load_checkpoint(bad_schedule)
    raise AssertionError("a checkpoint whose schedule has min_lr > max_lr must raise CheckpointError")
except CheckpointError as error:
    assert str(bad_schedule) in str(error) and "min_lr" in str(error), (
        f"the error must name the file and include the schedule's message (min_lr): {error}"
    )
assert same(snapshot(victim), before), (
    "the model and the optimizer were already loaded: both must be put back"
)
### END HIDDEN TESTS

# %%
shutil.rmtree(load_folder, ignore_errors=True)  # the loading tests' scratch folder


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
# ## 5. Exact resume
#
# The test of a checkpoint system: train 4 epochs straight; separately train 2, save,
# build **new** objects (new model, optimizer, schedule, loader: as after a crash), load,
# and train 2 more. Shuffling, Dropout, momentum or Adam, the schedule, clipping and
# accumulation are all on. The two runs must end with **bitwise identical** parameters
# and history: not close, equal. Every function of section 3 takes part, so this is the
# test of the whole `Trainer`.

# %% nbgrader={"grade": false, "grade_id": "training_resume_check", "locked": true, "schema_version": 3, "solution": false, "task": false}
def resume_run(seed_dropout: int, optimizer: str, loader_seed: int = 5):
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
    return trainer, DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=loader_seed)


def check_resume(optimizer: str, folder: str, split: int = 2, accumulation: int = 2,
                 loader_seed: int = 5) -> tuple[Trainer, Trainer]:
    """4 epochs straight, and `split` epochs + save + new objects + load + the rest."""
    straight, loader = resume_run(2, optimizer, loader_seed)
    for _ in range(4):
        straight.train_epoch(loader, accumulation_steps=accumulation)
        straight.evaluate(loader)
    first, loader = resume_run(2, optimizer, loader_seed)
    for _ in range(split):
        first.train_epoch(loader, accumulation_steps=accumulation)
        first.evaluate(loader)
    path = os.path.join(folder, f"resume_{optimizer}.ckpt")
    first.save_checkpoint(path)
    resumed, loader = resume_run(99, optimizer, loader_seed)   # other Dropout seed: must be restored
    resumed.load_checkpoint(path)
    for _ in range(4 - split):
        resumed.train_epoch(loader, accumulation_steps=accumulation)
        resumed.evaluate(loader)
    return straight, resumed


resume_folder = tempfile.mkdtemp()

# %%
straight, resumed = check_resume("adam", resume_folder)
equal = all(np.array_equal(a.data, b.data) for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True))
print("Adam, 4 epochs vs 2 + resume + 2: parameters bitwise equal:", equal,
      "| history equal:", json.dumps(straight.history) == json.dumps(resumed.history))

# %% nbgrader={"grade": true, "grade_id": "training_test_resume", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
straight, resumed = check_resume("sgd", resume_folder)
for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters(), strict=True):
    assert np.array_equal(f64(a.data), f64(b.data)), (
        f"parameter {name} differs after resume (max diff {np.max(np.abs(f64(a.data) - f64(b.data)))}). "
        "Hint: the checkpoint must restore the optimizer buffers, the Dropout generator, the epoch "
        "(for set_epoch and the schedule)"
    )
assert (straight.epoch, straight.step) == (resumed.epoch, resumed.step) == (4, 16), (
    f"epoch/step expected (4, 16) for both runs, got {(straight.epoch, straight.step)} and "
    f"{(resumed.epoch, resumed.step)}"
)
assert json.dumps(straight.history) == json.dumps(resumed.history), "the history after resume equals the straight run's"
print("exact resume: OK")
### BEGIN HIDDEN TESTS
for optimizer, split, accumulation, loader_seed in (("adam", 1, 3, 11), ("sgd", 3, 1, 12)):
    straight, resumed = check_resume(optimizer, resume_folder, split, accumulation, loader_seed)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True)), (
        f"{optimizer}, resumed after {split} epochs, accumulation_steps={accumulation}: the parameters differ from "
        "the straight run. Hint: the checkpoint must restore the optimizer buffers, the Dropout generator, the epoch"
    )
    for key in Trainer.HISTORY_KEYS:
        a, b = f64(straight.history[key]), f64(resumed.history[key])
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), (
            f"{optimizer}, resumed after {split} epochs: history[{key!r}] differs from the straight run"
        )
    sa, sb = arrays_of(straight.optimizer.state_dict()), arrays_of(resumed.optimizer.state_dict())
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa), f"{optimizer}: optimizer buffers differ"
    assert straight.model.state_dict()["2.rng"] == resumed.model.state_dict()["2.rng"], "the Dropout generator differs"
    assert (straight.epoch, straight.step) == (resumed.epoch, resumed.step), "epoch and step differ"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Systems: what training costs in memory
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
# **Time.** The Trainer's own work per update (unpacking a batch, counting the window,
# the norm it records, a few Python calls) should be small next to the arithmetic of the
# forward and backward passes. The cell below measures both. The bookkeeping shows best
# on a tiny model, where there is little else to do: one epoch of 100 batches of 8 through
# a `Linear(4, 3)`, once with `train_epoch` and once as the hand-written loop from the top
# of this notebook with `clip_grad_norm` added (the same arithmetic without the Trainer).
# The arithmetic is one forward and backward pass of the MLP above at a batch of 64.
# Every timing is the fastest of several runs, the one least disturbed by other work on
# the machine; on a busy machine they still vary from run to run.

# %%
def hand_epoch(net: Any, opt: SGD, batches: list[tuple[Tensor, Tensor]]) -> None:
    """The four-line loop with clipping: the Trainer's arithmetic without the Trainer."""
    loss_fn = CrossEntropyLoss()
    for inputs, targets in batches:
        loss_fn(net(inputs), targets).backward()
        clip_grad_norm(net.parameters(), 5.0)
        opt.step()
        opt.zero_grad()


def fastest(run, repeats: int = 7) -> float:
    """Seconds of the fastest of `repeats` runs of `run()`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


time_rng = np.random.default_rng(2)
tiny_batches = [(Tensor(time_rng.standard_normal((8, 4)).astype(np.float32)), Tensor(time_rng.integers(0, 3, 8)))
                for _ in range(100)]
tiny_a, tiny_b = linear_model(4, 3, seed=0), linear_model(4, 3, seed=0)
tiny_trainer = Trainer(tiny_a, SGD(tiny_a.parameters(), lr=0.01, momentum=0.9), CrossEntropyLoss(), grad_clip_norm=5.0)
tiny_opt = SGD(tiny_b.parameters(), lr=0.01, momentum=0.9)
per_update = {"Trainer": math.inf, "loop": math.inf}
for _ in range(7):                      # alternate, so that both see the same disturbances
    per_update["Trainer"] = min(per_update["Trainer"], fastest(lambda: tiny_trainer.train_epoch(tiny_batches), 1) / 100)
    per_update["loop"] = min(per_update["loop"], fastest(lambda: hand_epoch(tiny_b, tiny_opt, tiny_batches), 1) / 100)
big_net = mlp(0)
big_x = Tensor(time_rng.standard_normal((64, 784)).astype(np.float32))
big_y = Tensor(time_rng.integers(0, 10, 64))
pass_seconds = fastest(lambda: CrossEntropyLoss()(big_net(big_x), big_y).backward(), 5)
print(f"tiny model, per update: Trainer {per_update['Trainer'] * 1e6:.0f} us, hand-written loop "
      f"{per_update['loop'] * 1e6:.0f} us: bookkeeping {(per_update['Trainer'] - per_update['loop']) * 1e6:+.0f} us")
print(f"one forward and backward pass of the 784-256-128-10 MLP at batch 64: {pass_seconds * 1e3:.2f} ms")

# %% [markdown]
# The first line's difference is the Trainer's own cost per update; the second line is
# the arithmetic of one update of a small real network. The bookkeeping does not grow with
# the batch or the model, the arithmetic does: for any network worth a training loop the
# Trainer's share of the time is small.
#
# ## Summary
#
# * `CosineSchedule` sets the rate of each epoch from a closed form, before the epoch runs.
# * `clip_grad_norm` bounds the length of the whole gradient and keeps its direction,
#   with a norm that neither overflows nor underflows; it returns the norm to log.
# * `Trainer.train_epoch` accumulates micro-batches so the update equals the big-batch
#   update exactly (`_train_epoch` weights the losses, `_close_window` averages, clips and
#   steps), and skips updates whose gradient is not finite.
# * `Trainer.evaluate` measures without changing anything.
# * Checkpoints are plain arrays and JSON, written atomically, checked before anything
#   changes, loaded all-or-nothing, and a resumed run continues bit for bit.
#
# These pieces complete the foundation: the milestones that follow train their networks
# with this `Trainer`.
