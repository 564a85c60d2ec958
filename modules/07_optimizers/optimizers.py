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
# # Module 07: Optimizers
#
# Autograd (module 06) tells every parameter which way is uphill: after
# `loss.backward()`, `p.grad` holds the derivative of the loss with respect to `p`.
# An **optimizer** decides what to do with that information: how far to step, and
# whether to remember the steps it took before. It is the only part of the framework
# that changes the weights of a model.
#
# In this module you build the four optimizers that train almost every network:
#
# 1. `Optimizer`: the base class that holds the parameters, their per-parameter
#    state (buffers), and saves and restores that state for checkpoints;
# 2. `SGD`: gradient descent, with momentum, dampening, Nesterov momentum and
#    weight decay;
# 3. `Adam`: a step size for every single number, from running averages of the
#    gradient and of its square;
# 4. `AdamW`: Adam with *decoupled* weight decay, the default for transformers.
#
# Every rule here is the rule of `torch.optim`: a model trained with tinytorch and one
# trained with PyTorch from the same start take the same steps, up to floating-point
# rounding in the last digits. Other texts on optimizers (lecture notes, slides,
# blog posts) often write variants of these rules; where a common variant takes
# different steps, this notebook writes the variant out, says how it differs and why
# we follow PyTorch. You need no other text to follow it.
#
# You write the parts marked `YOUR CODE HERE`; the tests after each part tell you
# whether it works. The hidden tests that grade the notebook check the same ideas
# with other numbers.

# %% nbgrader={"grade": false, "grade_id": "optimizers_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. The optimizer's job, and its state
#
# Training repeats three moves: compute the loss, `backward()` to fill every `p.grad`,
# then `optimizer.step()` to move every parameter. Between two steps the gradients
# must be cleared: autograd *adds* into `p.grad` (that is what makes gradient
# accumulation over several micro-batches work), so forgetting `zero_grad()` means
# every step uses the sum of all gradients so far. `zero_grad()` sets each `p.grad`
# to `None`, as PyTorch does by default: no array is kept or filled with zeros, and a
# parameter that received no gradient at all is recognisable (`grad is None`) and is
# skipped by `step()`.
#
# **State.** Plain gradient descent remembers nothing. Momentum remembers a velocity
# per parameter; Adam remembers two running averages per parameter. These buffers
# are created **lazily**, on a parameter's first step with a gradient: an optimizer
# built over a model costs no memory until it is used, and a parameter that never
# receives a gradient never gets buffers.
#
# **In place.** A step changes `p.data` *in place* (`p.data -= ...`), never by
# rebinding (`p.data = p.data - ...`). Rebinding would allocate a new array on every
# step and, worse, break every other reference to the old one: a view taken by a
# layer, a model's `state_dict` loading into the existing arrays, a benchmark holding
# the weights. Many texts write the update as `param.data = param.data - ...` while
# calling the optimizer the only component that modifies the weights in place; here
# the code does what that sentence says.
#
# **State dicts.** A checkpoint must restore the optimizer too, or momentum and
# Adam's averages restart from zero after a resume and the run takes different steps.
# `state_dict()` returns a tree of plain values:
#
# ```python
# {"type": "Adam",
#  "hyperparameters": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0},
#  "step": 12,                                   # calls of step() so far
#  "state": [{"step": 12, "exp_avg": array(...), "exp_avg_sq": array(...)},  # parameter 0
#            {}]}                                # parameter 1: no gradient yet, no buffers
# ```
#
# Its leaves are NumPy arrays (saved in an `.npz` file) or JSON values (saved as
# JSON): no pickle. Arrays are **copied** when saving and when loading, so a saved
# state never changes behind your back. `load_state_dict` checks everything (type,
# number of parameters, every buffer's shape) **before** it changes anything, so a
# failed load leaves the optimizer as it was; on success the saved hyperparameters
# replace the current ones (the checkpoint knows what the run was using).
#
# The helpers below are given: hyperparameter checks whose messages name the
# argument, and two scratch arrays per parameter (`_workspace`) so that a step can
# compute intermediate results without allocating new arrays.

# %% nbgrader={"grade": false, "grade_id": "optimizers_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
def _number(owner: str, name: str, value: Any, expected: str, ok: Callable[[float], bool]) -> float:
    """Return ``value`` as a float, or raise naming the argument, its value and the rule."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not (math.isfinite(number) and ok(number)):
        raise ValueError(f"{owner}: invalid {name}={value!r}; expected {expected}")
    return number


def _betas(owner: str, betas: Any) -> tuple[float, float]:
    """Check Adam's ``betas``: a pair of numbers, each in [0, 1)."""
    try:
        pair = tuple(betas)
    except TypeError:
        raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}") from None
    if len(pair) != 2:
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    return (
        _number(owner, "betas[0]", pair[0], "0 <= beta1 < 1", lambda b: 0.0 <= b < 1.0),
        _number(owner, "betas[1]", pair[1], "0 <= beta2 < 1", lambda b: 0.0 <= b < 1.0),
    )


def _json_value(value: Any) -> Any:
    """A hyperparameter as a JSON value (tuples become lists)."""
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bool):
        return value
    return float(value)

# %% [markdown]
# ### Your turn: the base class
#
# `Optimizer.__init__` is given: it lists the parameters (any iterable works, e.g. a
# generator), rejects an empty list, and prepares one empty state dict per parameter.
# Subclasses name their hyperparameters in `_hyperparameter_names`, the keys of a
# parameter's state in `_state_keys`, and check hyperparameter values in
# `_validated`. The base class itself has no hyperparameters and no buffers: its
# `_validated()` takes no hyperparameters and returns `{}`, so a bare `Optimizer`
# (the first tests use one) saves a state with `"hyperparameters": {}` and empty
# per-parameter states, and loads such a state back like any optimizer.
#
# Write:
#
# * `zero_grad()`: set every parameter's `grad` to `None`.
# * `state_dict()`: the dictionary shown above. Copy every array.
# * `load_state_dict(state_dict)`: check, then apply. Fail with a `ValueError` whose
#   message shows what does not fit when
#
#   | what differs | the message names |
#   |---|---|
#   | the type, against `type(self).__name__` | both types, e.g. `'Adam'` and `'SGD'` |
#   | the hyperparameter names, against `_hyperparameter_names` | the expected names and the saved ones |
#   | the number of parameters | both numbers |
#   | the keys of a parameter's state, against `_state_keys` (an empty state is fine) | the entry as `state[i]` and its keys |
#   | a buffer's shape, against its parameter's | the entry as `state[i]` and both shapes |
#
#   The hyperparameter *values* are the constructor's business: run the saved
#   hyperparameters through `self._validated(**hyperparameters)` before accepting them
#   and let its error through unchanged, so a saved value is refused exactly as the
#   constructor refuses it: `lr=-1` with the `ValueError` of `SGD(params, lr=-1)`,
#   `nesterov="yes"` with the `TypeError` of `SGD(params, lr=0.1, nesterov="yes")`.
#   (Every other refusal is a `ValueError`, as in the table.)
#   Only when all is checked, set the hyperparameters, `step_count` and `state` (copied
#   arrays with the parameter's dtype). A refused state dict leaves the optimizer
#   exactly as it was.
#
#   For example, loading the state of an Adam over a parameter of shape `(2,)` into an
#   Adam whose first parameter has shape `(3,)` fails with a message like
#   `Adam.load_state_dict: state[0]['exp_avg'] has shape (2,), but parameter 0 has shape (3,)`.

# %% nbgrader={"grade": false, "grade_id": "optimizers_base", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Optimizer:
    """Base class of the optimizers: parameters, per-parameter state, state dicts.

    Args:
        params: an iterable of tensors (``.data`` a floating NumPy array, ``.grad``
            an array of the same shape or None), e.g. ``model.parameters()``.
    """

    _hyperparameter_names: tuple[str, ...] = ()
    _state_keys: tuple[str, ...] = ()
    lr: float

    def __init__(self, params: Iterable[Tensor]) -> None:
        owner = type(self).__name__
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError(
                f"{owner}: params must be an iterable of tensors (e.g. [w, b] or "
                f"model.parameters()), got a single {type(params).__name__}"
            )
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError(
                f"{owner}: params is empty; pass the tensors to train, e.g. model.parameters()"
            )
        seen: dict[int, int] = {}
        for i, p in enumerate(self.params):
            data = getattr(p, "data", None)
            if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
                kind = f"dtype {data.dtype}" if isinstance(data, np.ndarray) else type(p).__name__
                raise TypeError(
                    f"{owner}: params[{i}] must be a tensor with floating-point .data, got {kind}"
                )
            if id(p) in seen:
                raise ValueError(
                    f"{owner}: params[{i}] is the same tensor as params[{seen[id(p)]}]; "
                    "list each parameter once"
                )
            seen[id(p)] = i
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self.step_count: int = 0
        self._flat: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}
        self._views: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.params)

    # ---- given helpers ------------------------------------------------------------
    @classmethod
    def _validated(cls, **hyperparameters: Any) -> dict[str, Any]:
        """Check hyperparameter values; return them normalised. The base class has none and
        returns {}; each subclass with hyperparameters defines its own."""
        if hyperparameters:
            raise NotImplementedError(
                f"{cls.__name__} does not define _validated for {sorted(hyperparameters)}"
            )
        return {}

    def _set_hyperparameters(self, **hyperparameters: Any) -> None:
        """Validate, then store each hyperparameter as an attribute (``self.lr``, ...)."""
        for name, value in self._validated(**hyperparameters).items():
            setattr(self, name, value)

    def hyperparameters(self) -> dict[str, Any]:
        """The current hyperparameters as JSON values, e.g. ``{"lr": 0.1, ...}``."""
        return {name: _json_value(getattr(self, name)) for name in self._hyperparameter_names}

    def _grad(self, i: int) -> np.ndarray | None:
        """``params[i].grad``, checked to have the parameter's shape (or None)."""
        p = self.params[i]
        grad = p.grad
        if grad is not None and grad.shape != p.data.shape:
            raise ValueError(
                f"{type(self).__name__}.step: params[{i}].grad has shape {grad.shape}, "
                f"expected the parameter's shape {p.data.shape}"
            )
        return grad

    def _workspace(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Two scratch arrays with the shape and dtype of ``params[i].data``.

        They are views into two flat buffers shared by all parameters of a dtype and
        sized for the largest one: steps allocate nothing, and the scratch memory is
        twice the largest parameter, not twice the model. Their contents are garbage
        until you write them, and the next parameter's step overwrites them.
        """
        data = self.params[i].data
        views = self._views[i]
        if views is None or views[0].shape != data.shape or views[0].dtype != data.dtype:
            flat = self._flat.get(data.dtype)
            if flat is None or flat[0].size < data.size:
                size = max(p.data.size for p in self.params if p.data.dtype == data.dtype)
                size = max(size, data.size)
                flat = (np.empty(size, data.dtype), np.empty(size, data.dtype))
                self._flat[data.dtype] = flat
                self._views = [None] * len(self.params)
            views = (flat[0][: data.size].reshape(data.shape), flat[1][: data.size].reshape(data.shape))
            self._views[i] = views
        return views

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    def step(self) -> None:
        """Update every parameter that has a gradient (each optimizer defines it)."""
        raise NotImplementedError(f"{type(self).__name__}.step is not defined: use SGD, Adam or AdamW")

    # ---- your part -----------------------------------------------------------------
    def zero_grad(self) -> None:
        """Forget the gradients: set ``p.grad = None`` for every parameter."""
        ### BEGIN SOLUTION
        for p in self.params:
            p.grad = None
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """Type, hyperparameters, step count and per-parameter buffers (arrays copied)."""
        ### BEGIN SOLUTION
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "step": self.step_count,
            "state": [
                {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for s in self.state
            ],
        }
        ### END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``: everything is checked before anything changes."""
        ### BEGIN SOLUTION
        owner = f"{type(self).__name__}.load_state_dict"
        expected_keys = {"type", "hyperparameters", "step", "state"}
        if not isinstance(state_dict, dict) or set(state_dict) != expected_keys:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{owner}: expected a dict with keys {sorted(expected_keys)}, got {got}")
        if state_dict["type"] != type(self).__name__:
            raise ValueError(
                f"{owner}: the state was saved by a {state_dict['type']!r} optimizer, "
                f"this one is {type(self).__name__!r}"
            )
        saved_hyper = state_dict["hyperparameters"]
        if not isinstance(saved_hyper, dict) or set(saved_hyper) != set(self._hyperparameter_names):
            got = sorted(saved_hyper) if isinstance(saved_hyper, dict) else saved_hyper
            raise ValueError(
                f"{owner}: hyperparameters {got} do not match "
                f"{sorted(self._hyperparameter_names)}"
            )
        hyper = self._validated(**saved_hyper)
        step = state_dict["step"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"{owner}: step must be a non-negative integer, got {step!r}")
        saved_state = state_dict["state"]
        if not isinstance(saved_state, (list, tuple)) or len(saved_state) != len(self.params):
            n = len(saved_state) if isinstance(saved_state, (list, tuple)) else saved_state
            raise ValueError(
                f"{owner}: the state holds {n} parameters, this optimizer has {len(self.params)}"
            )
        new_state: list[dict[str, Any]] = []
        for i, (entry, p) in enumerate(zip(saved_state, self.params, strict=True)):
            if not isinstance(entry, dict):
                raise ValueError(f"{owner}: state[{i}] must be a dict, got {type(entry).__name__}")
            if not entry:
                new_state.append({})
                continue
            if set(entry) != set(self._state_keys):
                raise ValueError(
                    f"{owner}: state[{i}] has keys {sorted(entry)}, expected "
                    f"{sorted(self._state_keys)} (or an empty dict)"
                )
            restored: dict[str, Any] = {}
            for key, value in entry.items():
                if key == "step":
                    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                        raise ValueError(
                            f"{owner}: state[{i}]['step'] must be a non-negative integer, got {value!r}"
                        )
                    restored[key] = int(value)
                    continue
                array = np.asarray(value)
                if array.shape != p.data.shape:
                    raise ValueError(
                        f"{owner}: state[{i}][{key!r}] has shape {array.shape}, but parameter "
                        f"{i} has shape {p.data.shape}"
                    )
                if array.dtype.kind not in "fiu":
                    raise ValueError(
                        f"{owner}: state[{i}][{key!r}] must hold numbers, got dtype {array.dtype}"
                    )
                restored[key] = np.array(array, dtype=p.data.dtype, copy=True)
            new_state.append(restored)
        # everything checked: apply
        for name, value in hyper.items():
            setattr(self, name, value)
        self.step_count = int(step)
        self.state = new_state
        ### END SOLUTION

# %% [markdown]
# The tests use a small helper that checks an error is raised and that its message
# names what it should.

# %% nbgrader={"grade": false, "grade_id": "optimizers_test_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
def expect_error(error: type[Exception], action: Callable[[], Any], *words: str) -> None:
    """Run ``action``; check it raises ``error`` whose message contains every word."""
    try:
        action()
    except error as exc:
        message = str(exc)
        for word in words:
            assert word in message, f"the {error.__name__} message should mention {word!r}; it was: {message!r}"
        return
    raise AssertionError(f"expected {error.__name__} (mentioning {', '.join(map(repr, words))}), nothing was raised")


def values(tensor: Tensor) -> np.ndarray:
    """A tensor's numbers as float64, for comparisons."""
    return np.asarray(tensor.data, dtype=np.float64)

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_zero_grad", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, 2.0], requires_grad=True)
b = Tensor([0.5], requires_grad=True)
w.grad = np.ones(2, dtype=np.float32)
b.grad = np.ones(1, dtype=np.float32)
base = Optimizer(p for p in [w, b])  # a generator is fine: the optimizer lists it
base.zero_grad()
assert w.grad is None and b.grad is None, (
    f"zero_grad() should set every grad to None, got {w.grad!r} and {b.grad!r}"
)
### BEGIN HIDDEN TESTS
# four parameters: zero_grad must reach every one of them, and a second call is harmless
ps = [Tensor(np.zeros(3), requires_grad=True) for _ in range(4)]
for p in ps:
    p.grad = np.ones(3, dtype=np.float32)
opt = Optimizer(ps)
opt.zero_grad()
opt.zero_grad()
assert all(p.grad is None for p in ps), (
    f"zero_grad() should set the grad of every parameter to None, got {[p.grad for p in ps]}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_state_dict_fresh", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, 2.0], requires_grad=True)
b = Tensor([0.5], requires_grad=True)
sd = Optimizer([w, b]).state_dict()
assert sorted(sd) == ["hyperparameters", "state", "step", "type"], f"state_dict() keys: got {sorted(sd)}"
assert sd["type"] == "Optimizer" and sd["step"] == 0, f"state_dict() of a fresh optimizer: got {sd}"
assert sd["state"] == [{}, {}], f"a fresh optimizer has one empty state per parameter, got {sd['state']}"
### BEGIN HIDDEN TESTS
# four parameters: four empty states; the base class has no hyperparameters
sd = Optimizer([Tensor(np.zeros(3), requires_grad=True) for _ in range(4)]).state_dict()
assert sd["state"] == [{}, {}, {}, {}] and sd["hyperparameters"] == {} and sd["step"] == 0, (
    f"a fresh optimizer over 4 parameters: expected 4 empty states, no hyperparameters, step 0; got {sd}"
)
### END HIDDEN TESTS

# %% [markdown]
# A bare `Optimizer` has no hyperparameters (its `_validated()` returns `{}`) and no
# buffers, so its state dict is small, and it loads back like any other:

# %%
bare = Optimizer([w, b])
bare.load_state_dict(bare.state_dict())
print(bare.state_dict())

# %% [markdown]
# ## 2. Gradient descent and momentum: `SGD`
#
# **Gradient descent.** The gradient $g = \nabla L(\theta)$ points where the loss grows
# fastest, so a small step against it lowers the loss:
#
# $$\theta \leftarrow \theta - \text{lr}\cdot g.$$
#
# With a mini-batch instead of the whole data set, $g$ is a noisy estimate: that is
# *stochastic* gradient descent. Its only state is nothing at all.
#
# **Momentum: a velocity.** Picture a heavy ball rolling on the loss surface. It keeps
# a velocity $b$ (PyTorch calls it the momentum buffer), adds the new gradient to it
# with a friction factor $\mu$, and moves by the velocity:
#
# $$b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1-\text{dampening})\, g_t, \qquad \theta \leftarrow \theta - \text{lr}\cdot b_t.$$
#
# Gradients that point the same way step after step add up: with a steady gradient
# $g$ the velocity grows to $g/(1-\mu)$, ten times $g$ for $\mu=0.9$, so momentum moves
# along a long gentle slope ten times faster. Gradients that flip sign (across a
# narrow valley) cancel out. Section 6 shows both at once.
#
# The rules, exactly as in `torch.optim.SGD`:
#
# * **First step**: the buffer is the gradient itself, $b_1 = g_1$. (A common variant
#   starts the buffer at zeros and applies the general formula from the first step on:
#   the same thing when there is no dampening, but with dampening it would give
#   $b_1 = (1-d)\,g_1$ instead.)
# * **Dampening** $d$ scales the *new* gradient by $1-d$ from the second step on.
#   With $d=\mu$ the buffer is an exponential moving average ("90% history, 10% new
#   slope"). PyTorch's default is $d=0$: the buffer is a *sum*, not an average. So the
#   often-heard description of momentum 0.9 as "90% history blended with 10% of the
#   new slope" fits only $d = 0.9$; with the default $d = 0$ the new gradient enters
#   whole, which is why momentum $0.9$ makes steps up to ten times larger.
# * **Nesterov** momentum looks ahead: the step uses $g_t + \mu\, b_t$ instead of $b_t$.
#   PyTorch allows it only with $\mu>0$ and dampening $0$; anything else is an error.
# * **Weight decay** $\lambda$ (L2 regularisation, a penalty $\tfrac{\lambda}{2}\lVert\theta\rVert^2$
#   on the loss) adds $\lambda\theta$ to the gradient before anything else:
#   $g \leftarrow g + \lambda\theta$. It pulls every weight towards zero.
#
# Putting it together, one step for one parameter:
#
# ```
# d = g + weight_decay * theta            (if weight_decay != 0)
# if momentum != 0:
#     b = copy of d on the first step, else  b = momentum * b + (1 - dampening) * d
#     d = d + momentum * b  if nesterov  else  b
# theta -= lr * d
# ```
#
# ### Your turn: `SGD.step`
#
# Loop over the parameters, skip those whose gradient is `None` (use `self._grad(i)`),
# create the momentum buffer lazily in `self.state[i]["momentum_buffer"]`, update
# `p.data` in place, and count the step in `self.step_count`.
#
# For speed, avoid allocating arrays: `buf *= momentum`, `buf += d`, and
# `np.multiply(x, c, out=work)` with the scratch arrays from `self._workspace(i)`.
# A correct but allocating version (`p.data -= lr * d`) passes the tests too; the
# systems section measures the difference.

# %% nbgrader={"grade": false, "grade_id": "optimizers_sgd", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Args:
        params: tensors to update.
        lr: learning rate (>= 0).
        momentum: momentum factor mu (>= 0); 0 means plain gradient descent.
        dampening: scales each new gradient by ``1 - dampening`` in the buffer (in [0, 1]).
        weight_decay: L2 penalty added to the gradient, ``g + weight_decay * theta`` (>= 0).
        nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    """

    _hyperparameter_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    _state_keys = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params)
        self._set_hyperparameters(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
        )

    @classmethod
    def _validated(
        cls, lr: Any, momentum: Any, dampening: Any, weight_decay: Any, nesterov: Any
    ) -> dict[str, Any]:
        """Check SGD's hyperparameters; return them as floats and a bool."""
        owner = cls.__name__
        checked = {
            "lr": _number(owner, "lr", lr, "lr >= 0", lambda x: x >= 0),
            "momentum": _number(owner, "momentum", momentum, "momentum >= 0", lambda x: x >= 0),
            "dampening": _number(owner, "dampening", dampening, "0 <= dampening <= 1", lambda x: 0 <= x <= 1),
            "weight_decay": _number(owner, "weight_decay", weight_decay, "weight_decay >= 0", lambda x: x >= 0),
        }
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"{owner}: nesterov must be True or False, got {nesterov!r}")
        if nesterov and (checked["momentum"] <= 0 or checked["dampening"] != 0):
            raise ValueError(
                f"{owner}: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        checked["nesterov"] = bool(nesterov)
        return checked

    def step(self) -> None:
        """One SGD step for every parameter whose grad is not None (in place)."""
        ### BEGIN SOLUTION
        lr, momentum, dampening, weight_decay = self.lr, self.momentum, self.dampening, self.weight_decay
        for i, p in enumerate(self.params):
            grad = self._grad(i)
            if grad is None:
                continue
            work, scratch = self._workspace(i)
            d = grad
            if weight_decay != 0:
                np.multiply(p.data, weight_decay, out=work)
                work += grad
                d = work
            if momentum != 0:
                buf = self.state[i].get("momentum_buffer")
                if buf is None:
                    # first step: the buffer is (a copy of) the gradient, no dampening
                    buf = np.array(d, dtype=p.data.dtype, copy=True)
                    self.state[i]["momentum_buffer"] = buf
                else:
                    buf *= momentum
                    if dampening == 0:
                        buf += d
                    else:
                        np.multiply(d, 1.0 - dampening, out=scratch)
                        buf += scratch
                if self.nesterov:
                    np.multiply(buf, momentum, out=scratch)
                    scratch += d
                    d = scratch
                else:
                    d = buf
            np.multiply(d, lr, out=scratch)
            p.data -= scratch
        self.step_count += 1
        ### END SOLUTION

# %% [markdown]
# The tests below use a tiny problem whose steps you can follow with pencil and paper:
# two numbers $w = (w_0, w_1)$ and the loss $L = \tfrac12 (w_0^2 + 4 w_1^2)$, so the
# gradient is $g = (w_0,\ 4 w_1)$. After each step we write the new gradient by hand,
# as `backward()` would.

# %% nbgrader={"grade": false, "grade_id": "optimizers_quadratic", "locked": true, "schema_version": 3, "solution": false, "task": false}
def quadratic_grad(p: Tensor, curvature: list[float]) -> None:
    """Set p.grad for L = 0.5 * sum(curvature * p**2), i.e. grad = curvature * p."""
    p.grad = (np.asarray(curvature, dtype=np.float32) * p.data).astype(p.data.dtype)


def trajectory_of(opt: Optimizer, w: Tensor, curvature: list[float], steps: int = 3) -> list[list[float]]:
    """Take `steps` steps on L = 0.5 * sum(curvature * w**2); the weights after each one."""
    out = []
    for _ in range(steps):
        quadratic_grad(w, curvature)
        opt.step()
        out.append(values(w).tolist())
    return out

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_sgd", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, -2.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.1), w, [1.0, 4.0])
# by hand: w0 <- w0 - 0.1 * w0 = 0.9 * w0; w1 <- w1 - 0.1 * 4 * w1 = 0.6 * w1
expected = [[0.9, -1.2], [0.81, -0.72], [0.729, -0.432]]
assert np.allclose(got, expected, rtol=1e-6), (
    f"plain SGD (lr=0.1) should give {expected}, got {got}. Hint: theta -= lr * grad"
)
### BEGIN HIDDEN TESTS
# lr=0.25 on L = 0.5 * (2 w0^2 + 1 w1^2), w = (3, 8): w0 <- (1 - 0.5) w0, w1 <- (1 - 0.25) w1
# by hand: w0: 3 -> 1.5 -> 0.75; w1: 8 -> 6 -> 4.5 (torch.optim.SGD gives the same)
w = Tensor([3.0, 8.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.25), w, [2.0, 1.0], steps=2)
assert np.allclose(got, [[1.5, 6.0], [0.75, 4.5]], rtol=1e-6), (
    f"plain SGD with another rate and curvature: the weights after each step are not theta - lr * grad "
    f"(got {got}). Hint: theta -= lr * grad"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_sgd_in_place", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, -2.0], requires_grad=True)
storage = w.data  # the optimizer must update this very array
quadratic_grad(w, [1.0, 1.0])
SGD([w], lr=0.1).step()
assert w.data is storage, "step() must update p.data in place (p.data -= ...), not bind a new array"
assert np.allclose(np.asarray(storage, dtype=np.float64), [0.9, -1.8]), f"the array itself must hold the update, got {storage}"
### BEGIN HIDDEN TESTS
# a view of one row sees the update: [1, 2] - 0.5 * 1 = [0.5, 1.5] (by hand)
w = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
row = w.data[0]
w.grad = np.ones((2, 2), dtype=np.float32)
SGD([w], lr=0.5, momentum=0.9).step()
assert np.allclose(np.asarray(row, dtype=np.float64), [0.5, 1.5]), (
    f"a view of p.data must see the update (in place, also with momentum), got {row}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_sgd_bookkeeping", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, -2.0], requires_grad=True)
frozen = Tensor([5.0], requires_grad=True)  # never gets a gradient
opt = SGD([w, frozen], lr=0.1)
trajectory_of(opt, w, [1.0, 4.0])
assert opt.step_count == 3, f"step_count should count calls of step(): expected 3, got {opt.step_count}"
assert values(frozen).tolist() == [5.0], "a parameter whose grad is None must be skipped"
assert opt.state == [{}, {}], "SGD without momentum keeps no state"
### BEGIN HIDDEN TESTS
# the frozen parameter first, five steps
w = Tensor([2.0], requires_grad=True)
frozen = Tensor([-1.0, 4.0], requires_grad=True)
opt = SGD([frozen, w], lr=0.5)
trajectory_of(opt, w, [1.0], steps=5)
assert opt.step_count == 5 and values(frozen).tolist() == [-1.0, 4.0], (
    f"five calls of step(): expected step_count 5 and the gradient-less parameter untouched, got "
    f"{opt.step_count} and {values(frozen).tolist()}"
)
assert opt.state == [{}, {}], "SGD without momentum keeps no state"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_momentum", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0], requires_grad=True)
opt = SGD([w], lr=0.1, momentum=0.9)
got = trajectory_of(opt, w, [1.0])
# by hand (grad = w):
#   step 1: g = 1,    b = g = 1 (first buffer = gradient)    w = 1 - 0.1 * 1      = 0.9
#   step 2: g = 0.9,  b = 0.9 * 1 + 0.9    = 1.8             w = 0.9 - 0.18       = 0.72
#   step 3: g = 0.72, b = 0.9 * 1.8 + 0.72 = 2.34            w = 0.72 - 0.234     = 0.486
expected = [[0.9], [0.72], [0.486]]
assert np.allclose(got, expected, rtol=1e-6), (
    f"SGD momentum=0.9 should give {expected}, got {got}. Hint: the first buffer is the "
    "gradient itself; then b = momentum * b + grad and theta -= lr * b"
)
buffer = opt.state[0]["momentum_buffer"]
assert np.allclose(np.asarray(buffer, dtype=np.float64), [2.34], rtol=1e-6), (
    f"the momentum buffer after 3 steps should be 2.34, got {buffer}"
)
### BEGIN HIDDEN TESTS
# the stiff direction overshoots: w1 = -2, grad = 4 w1, lr=0.1, momentum=0.9 (by hand, and torch.optim.SGD)
#   step 1: g = -8,   b = -8                          w1 = -2 + 0.8 = -1.2
#   step 2: g = -4.8, b = 0.9 * -8 - 4.8 = -12        w1 = -1.2 + 1.2 = 0
#   step 3: g = 0,    b = 0.9 * -12 + 0 = -10.8       w1 = 0 + 1.08 = 1.08
w = Tensor([-2.0], requires_grad=True)
opt = SGD([w], lr=0.1, momentum=0.9)
got = trajectory_of(opt, w, [4.0])
assert np.allclose(got, [[-1.2], [0.0], [1.08]], rtol=1e-6, atol=1e-6), (
    f"SGD with momentum from another start and curvature: the steps do not follow b = momentum * b + grad, "
    f"theta -= lr * b (got {got}). Hint: the first buffer is the gradient itself"
)
buffer = opt.state[0]["momentum_buffer"]
assert np.allclose(np.asarray(buffer, dtype=np.float64), [-10.8], rtol=1e-6), (
    f"the momentum buffer after these 3 steps is not momentum * b + grad (got {buffer})"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_momentum_buffer", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, 1.0], requires_grad=True)
opt = SGD([w], lr=0.1, momentum=0.9)
assert opt.state == [{}], f"no momentum buffer before the first step, got {opt.state}"
g = np.array([3.0, -1.0], dtype=np.float32)
w.grad = g
opt.step()
g[:] = 50.0  # the caller reuses its gradient array
assert np.allclose(np.asarray(opt.state[0]["momentum_buffer"], dtype=np.float64), [3.0, -1.0]), (
    "the first momentum buffer must be a copy of the gradient: changing the grad array afterwards "
    f"must not change it, got {opt.state[0]['momentum_buffer']}"
)
### BEGIN HIDDEN TESTS
w = Tensor([1.0, 1.0], requires_grad=True)
frozen = Tensor([2.0], requires_grad=True)
opt = SGD([frozen, w], lr=0.1, momentum=0.5)
g = np.array([1.0, 2.0], dtype=np.float32)
w.grad = g
opt.step()
g[:] = 100.0
assert opt.state[0] == {}, "a parameter without a gradient gets no momentum buffer"
assert np.allclose(np.asarray(opt.state[1]["momentum_buffer"], dtype=np.float64), [1.0, 2.0]), (
    f"the first momentum buffer must be a copy of the gradient, got {opt.state[1]['momentum_buffer']}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_dampening", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.1, momentum=0.5, dampening=0.5), w, [2.0])
# by hand (grad = 2w), torch.optim.SGD gives the same:
#   step 1: g = 2,    b = 2 (no dampening on the first step)      w = 1 - 0.2 = 0.8
#   step 2: g = 1.6,  b = 0.5 * 2 + 0.5 * 1.6 = 1.8              w = 0.8 - 0.18 = 0.62
#   step 3: g = 1.24, b = 0.5 * 1.8 + 0.5 * 1.24 = 1.52          w = 0.62 - 0.152 = 0.468
expected = [[0.8], [0.62], [0.468]]
assert np.allclose(got, expected, rtol=1e-6), (
    f"SGD momentum=0.5 dampening=0.5 should give {expected}, got {got}. "
    "Hint: no dampening on the first step (b = g), then b = momentum * b + (1 - dampening) * g"
)
### BEGIN HIDDEN TESTS
# grad = w, lr=0.1, momentum=0.9, dampening=0.5 (by hand, and torch.optim.SGD):
#   step 1: g = 1,     b = 1                                          w = 0.9
#   step 2: g = 0.9,   b = 0.9 * 1 + 0.5 * 0.9 = 1.35                 w = 0.9 - 0.135 = 0.765
#   step 3: g = 0.765, b = 0.9 * 1.35 + 0.5 * 0.765 = 1.5975          w = 0.765 - 0.15975 = 0.60525
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.1, momentum=0.9, dampening=0.5), w, [1.0])
assert np.allclose(got, [[0.9], [0.765], [0.60525]], rtol=1e-6), (
    f"SGD with other momentum and dampening values: the steps do not follow the dampening rule (got {got}). "
    "Hint: no dampening on the first step (b = g), then b = momentum * b + (1 - dampening) * g"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_nesterov", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
w = Tensor([2.0], requires_grad=True)
opt = SGD([w], lr=0.1, momentum=0.5, nesterov=True)
got = trajectory_of(opt, w, [1.0])
# by hand (grad = w), torch.optim.SGD gives the same: the step uses d = g + 0.5 * b
#   step 1: g = 2,     b = 2,                       d = 2 + 1 = 3              w = 2 - 0.3 = 1.7
#   step 2: g = 1.7,   b = 0.5 * 2 + 1.7 = 2.7,     d = 1.7 + 1.35 = 3.05      w = 1.7 - 0.305 = 1.395
#   step 3: g = 1.395, b = 1.35 + 1.395 = 2.745,    d = 1.395 + 1.3725 = 2.7675
#                                                                             w = 1.395 - 0.27675 = 1.11825
expected = [[1.7], [1.395], [1.11825]]
assert np.allclose(got, expected, rtol=1e-6), (
    f"Nesterov (lr=0.1, momentum=0.5) should give {expected}, got {got}. "
    "Hint: the buffer is updated as usual, the step uses grad + momentum * buffer"
)
assert np.allclose(np.asarray(opt.state[0]["momentum_buffer"], dtype=np.float64), [2.745], rtol=1e-6), (
    f"with Nesterov the buffer is the ordinary momentum buffer (2.745 here), got {opt.state[0]['momentum_buffer']}"
)
### BEGIN HIDDEN TESTS
# grad = w from 1, lr=0.1, momentum=0.9 (by hand, and torch.optim.SGD):
#   step 1: g = 1,      b = 1,                                d = 1.9          w = 0.81
#   step 2: g = 0.81,   b = 1.71,                             d = 2.349        w = 0.5751
#   step 3: g = 0.5751, b = 0.9 * 1.71 + 0.5751 = 2.1141,     d = 2.47779      w = 0.327321
w = Tensor([1.0], requires_grad=True)
opt = SGD([w], lr=0.1, momentum=0.9, nesterov=True)
got = trajectory_of(opt, w, [1.0])
assert np.allclose(got, [[0.81], [0.5751], [0.327321]], rtol=1e-6), (
    f"Nesterov with another momentum: the steps do not use grad + momentum * buffer (got {got})"
)
assert np.allclose(np.asarray(opt.state[0]["momentum_buffer"], dtype=np.float64), [2.1141], rtol=1e-6), (
    "with Nesterov the buffer is the ordinary momentum buffer (b = momentum * b + g)"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_sgd_weight_decay", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.1, weight_decay=0.1), w, [1.0])
# by hand: d = g + 0.1 * w = 1.1 w, so w <- w - 0.1 * 1.1 w = 0.89 w: 0.89, 0.7921, 0.704969
expected = [[0.89], [0.7921], [0.704969]]
assert np.allclose(got, expected, rtol=1e-6), (
    f"SGD weight_decay=0.1 should give {expected}, got {got}. Hint: add weight_decay * theta "
    "to the gradient first"
)
### BEGIN HIDDEN TESTS
# weight decay together with momentum: d = 1.1 w enters the buffer, lr=0.1, momentum=0.9
# (by hand, and torch.optim.SGD):
#   step 1: d = 1.1,                b = 1.1                        w = 1 - 0.11 = 0.89
#   step 2: d = 1.1 * 0.89 = 0.979, b = 0.99 + 0.979 = 1.969       w = 0.89 - 0.1969 = 0.6931
#   step 3: d = 0.76241,            b = 1.7721 + 0.76241 = 2.53451 w = 0.6931 - 0.253451 = 0.439649
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1), w, [1.0])
assert np.allclose(got, [[0.89], [0.6931], [0.439649]], rtol=1e-6), (
    f"weight decay with momentum: the decayed gradient g + weight_decay * theta must enter the buffer "
    f"(got {got})"
)
# Nesterov with weight decay: the look-ahead adds the decayed gradient d = 1.1 w, not the raw grad
#   step 1: d = 1.1,       b = 1.1,                       d + 0.9 b = 2.09         w = 0.791
#   step 2: d = 0.8701,    b = 0.99 + 0.8701 = 1.8601,    d + 0.9 b = 2.54419      w = 0.536581
#   step 3: d = 0.5902391, b = 2.2643291,                 d + 0.9 b = 2.62813529   w = 0.273767471
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True), w, [1.0])
assert np.allclose(got, [[0.791], [0.536581], [0.273767471]], rtol=1e-6), (
    f"weight decay with Nesterov: got {got}. Hint: the weight decay term is part of the gradient "
    "everywhere it is used, also in the look-ahead"
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. One step size per number: `Adam`
#
# SGD uses one learning rate for every weight. But gradients differ in scale by orders
# of magnitude between parameters (a rarely used embedding row, a busy output bias):
# a rate small enough for the big ones freezes the small ones. **Adam** (adaptive
# moment estimation) divides each number's step by a running estimate of that number's
# gradient size. It keeps two buffers per parameter:
#
# * the **first moment** $m$, a moving average of the gradient (momentum with
#   dampening): $m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t$;
# * the **second moment** $v$, a moving average of the squared gradient:
#   $v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2$.
#
# **Bias correction.** Both start at zero, so early on they are too small: after one
# step $m_1 = (1-\beta_1) g_1$, only a tenth of the gradient for $\beta_1 = 0.9$. If the
# gradient were constant, $m_t = (1-\beta_1^t)\, g$ exactly; dividing by
# $1-\beta_1^t$ removes the bias:
#
# $$\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
# \theta \leftarrow \theta - \text{lr}\cdot \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}.$$
#
# Here $t$ counts this parameter's steps, starting at $t=1$ on its first update
# (PyTorch keeps the count per parameter; a parameter that skipped steps because its
# gradient was `None` is not penalised for them). A common variant uses the optimizer's
# global step count $t$ for every parameter instead; that agrees only when every
# parameter gets a gradient at every step.
#
# On the very first step $\hat m_1 = g$ and $\sqrt{\hat v_1} = |g|$, so every number moves
# by $\text{lr}\cdot g/(|g|+\varepsilon)$: almost exactly `lr`, whatever the size of the
# gradient. That is the sense in which `lr` is Adam's step size.
#
# **Where $\varepsilon$ goes.** PyTorch adds $\varepsilon$ *after* the square root of the
# bias-corrected $\hat v_t$, as written above. Putting it inside the root, or adding it
# before the bias correction, gives visibly different steps when gradients are tiny.
#
# **Weight decay in `Adam`** is L2, as in SGD: $g \leftarrow g + \lambda\theta$ before the
# moments.
#
# ### Your turn: `Adam`
#
# `_adam_update(i, grad)` does the moments, the bias correction and the update of
# `params[i]` for a given gradient; `step()` loops over the parameters, skips missing
# gradients, adds the L2 term and calls `_adam_update`. AdamW (next section) reuses
# `_adam_update` with its own kind of weight decay.
#
# Create the state lazily: `self.state[i]` gets `"step"` (0, an int), `"exp_avg"` and
# `"exp_avg_sq"` (zeros like `p.data`) on the parameter's first update. In
# `_adam_update` the gradient may live in the first scratch array `work` (that is where
# `step()` puts $g + \lambda\theta$): finish reading it before you overwrite `work`.

# %% nbgrader={"grade": false, "grade_id": "optimizers_adam", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Adam(Optimizer):
    """Adam with L2 weight decay, as ``torch.optim.Adam``.

    Args:
        params: tensors to update.
        lr: step size (>= 0).
        betas: decay rates (beta1, beta2) of the first and second moment, each in [0, 1).
        eps: added to the square root of the second moment (>= 0).
        weight_decay: L2 penalty added to the gradient, ``g + weight_decay * theta`` (>= 0).
    """

    _hyperparameter_names = ("lr", "betas", "eps", "weight_decay")
    _state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        self._set_hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    @classmethod
    def _validated(cls, lr: Any, betas: Any, eps: Any, weight_decay: Any) -> dict[str, Any]:
        """Check Adam's hyperparameters; return them as floats (betas as a tuple)."""
        owner = cls.__name__
        return {
            "lr": _number(owner, "lr", lr, "lr >= 0", lambda x: x >= 0),
            "betas": _betas(owner, betas),
            "eps": _number(owner, "eps", eps, "eps >= 0", lambda x: x >= 0),
            "weight_decay": _number(owner, "weight_decay", weight_decay, "weight_decay >= 0", lambda x: x >= 0),
        }

    def _adam_update(self, i: int, grad: np.ndarray) -> None:
        """Update moments of ``params[i]`` with ``grad`` and take the bias-corrected step."""
        ### BEGIN SOLUTION
        p = self.params[i]
        state = self.state[i]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = self.betas
        m, v = state["exp_avg"], state["exp_avg_sq"]
        work, scratch = self._workspace(i)
        # moments: m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
        m *= beta1
        np.multiply(grad, 1.0 - beta1, out=scratch)
        m += scratch
        v *= beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - beta2
        v += scratch
        # denominator sqrt(v / (1 - beta2^t)) + eps (grad is no longer needed: work is free)
        np.sqrt(v, out=work)
        work /= math.sqrt(1.0 - beta2**t)
        work += self.eps
        # theta -= lr / (1 - beta1^t) * m / denominator
        np.divide(m, work, out=work)
        work *= self.lr / (1.0 - beta1**t)
        p.data -= work
        ### END SOLUTION

    def step(self) -> None:
        """One Adam step for every parameter whose grad is not None (in place)."""
        ### BEGIN SOLUTION
        for i, p in enumerate(self.params):
            grad = self._grad(i)
            if grad is None:
                continue
            if self.weight_decay != 0:
                work, _ = self._workspace(i)
                np.multiply(p.data, self.weight_decay, out=work)
                work += grad
                grad = work
            self._adam_update(i, grad)
        self.step_count += 1
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_adam", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# the first step moves every number by (almost exactly) lr, whatever the gradient's size
w = Tensor([1.0, -3.0, 2.0], requires_grad=True)
w.grad = np.array([0.1, -50.0, 7.0], dtype=np.float32)
before = values(w)
Adam([w], lr=0.01).step()
moved = before - values(w)
assert np.allclose(moved, [0.01, -0.01, 0.01], rtol=1e-4), (
    f"Adam's first step should be lr * sign(grad) = [0.01, -0.01, 0.01], got {moved.tolist()}. "
    "Hint: with bias correction m_hat = g and sqrt(v_hat) = |g| at t = 1"
)
# three steps on L = 0.5 w^2 (grad = w), lr=0.1, default betas and eps; by hand:
#   t=1: g=1,        m=0.1,       v=0.001,     m_hat=1,        v_hat=1,         step=0.1/(1+1e-8)  w=0.900000
#   t=2: g=0.9,      m=0.18,      v=0.001809,  m_hat=0.18/0.19=0.947368,  v_hat=0.001809/0.001999=0.904952,
#        sqrt=0.951290, step=0.1*0.947368/0.951290=0.0995878                                      w=0.800412
#   t=3: g=0.800412, m=0.162+0.0800412=0.2420412, v=0.001807191+0.000640660=0.002447851,
#        m_hat=0.2420412/0.271=0.893141, v_hat=0.002447851/0.002997001=0.816767, sqrt=0.903751,
#        step=0.0988260                                                                         w=0.701586
w = Tensor([1.0], requires_grad=True)
opt = Adam([w], lr=0.1)
got = trajectory_of(opt, w, [1.0])
expected = [[0.900000], [0.800412], [0.701586]]
assert np.allclose(got, expected, rtol=2e-6), (
    f"Adam (lr=0.1) on grad = w should give {expected}, got {got}. Hint: t starts at 1; "
    "divide m by 1 - beta1**t and v by 1 - beta2**t; eps goes after the square root"
)
assert opt.state[0]["step"] == 3, (
    f"Adam counts each parameter's steps in state['step']: expected 3, got {opt.state[0]['step']}"
)
### BEGIN HIDDEN TESTS
# the same recurrence from w = -2 with grad = 4 w (step by step like above; torch.optim.Adam agrees):
#   t=1: g=-8,        m=-0.8,      v=0.064,       m_hat=-8,       v_hat=64,       step=-0.1*8/(8+1e-8)   w=-1.900000
#   t=2: g=-7.6,      m=-1.48,     v=0.121696,    m_hat=-7.789474, v_hat=60.878439, sqrt=7.802464,
#        step=-0.0998335                                                                      w=-1.800166
#   t=3: g=-7.200666, m=-2.052067, v=0.173424,    m_hat=-7.572201, v_hat=57.865811, sqrt=7.606958,
#        step=-0.0995431                                                                      w=-1.700623
w = Tensor([-2.0], requires_grad=True)
opt = Adam([w], lr=0.1)
got = trajectory_of(opt, w, [4.0])
assert np.allclose(got, [[-1.9], [-1.800166], [-1.700623]], rtol=2e-6), (
    f"Adam from another start and curvature: the steps do not follow the bias-corrected rule (got {got}). "
    "Hint: t starts at 1; divide m by 1 - beta1**t and v by 1 - beta2**t; eps goes after the square root"
)
assert opt.state[0]["step"] == 3, "Adam counts each parameter's steps in state['step']"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_adam_eps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# eps after the square root of the bias-corrected v: with g = eps = 1e-2 the first step is
# lr * g / (|g| + eps) = lr / 2 = 0.1 (torch.optim.Adam gives the same)
w = Tensor([0.0], requires_grad=True)
w.grad = np.array([1e-2], dtype=np.float32)
Adam([w], lr=0.2, eps=1e-2).step()
assert np.allclose(values(w), [-0.1], rtol=1e-5), (
    f"with grad = eps = 1e-2 the first step should be lr/2 = 0.1, got {-float(w.data[0])}. "
    "Hint: eps is added after sqrt(v_hat)"
)
### BEGIN HIDDEN TESTS
# g = eps = 1e-3, lr = 0.1: the first step is 0.05. (eps inside the root: 0.1 * 1e-3 / sqrt(1e-6 + 1e-3)
# = 0.00316; eps before the bias correction: 0.1 * 1e-3 / ((sqrt(1e-9) + 1e-3) / sqrt(1e-3)) = 0.00307)
w = Tensor([0.0], requires_grad=True)
w.grad = np.array([1e-3], dtype=np.float32)
Adam([w], lr=0.1, eps=1e-3).step()
assert np.allclose(values(w), [-0.05], rtol=1e-5), (
    f"with grad = eps the first step should be lr/2, got {-float(w.data[0])} for lr 0.1. "
    "Hint: eps is added after sqrt(v_hat)"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_adam_weight_decay", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# a zero gradient with weight_decay=0.5: the L2 term 0.5 * w = 1 is the whole gradient, and the
# first Adam step moves by lr (torch.optim.Adam: 1.9); without weight decay w would not move
w = Tensor([2.0], requires_grad=True)
w.grad = np.zeros(1, dtype=np.float32)
Adam([w], lr=0.1, weight_decay=0.5).step()
assert np.allclose(values(w), [1.9], rtol=1e-6), (
    f"Adam weight_decay=0.5 with grad 0 from w = 2: expected 1.9, got {values(w)}. "
    "Hint: in Adam, weight decay is L2: g + weight_decay * theta goes into the moments"
)
### BEGIN HIDDEN TESTS
# w = 1, constant grad 1, wd = 0.5, lr = 0.1 (by hand; torch.optim.Adam agrees):
#   t=1: g' = 1 + 0.5 * 1 = 1.5, first step = lr                                     w = 0.9
#   t=2: g' = 1.45, m = 0.135 + 0.145 = 0.28, v = 0.00224775 + 0.00210250 = 0.00435025,
#        m_hat = 1.473684, v_hat = 2.176213, sqrt = 1.475199, step = 0.0998973       w = 0.800103
#   t=3: g' = 1.400051, m = 0.392005, v = 0.00630604, m_hat = 1.446513, v_hat = 2.104118,
#        sqrt = 1.450558, step = 0.0997212                                          w = 0.700382
w = Tensor([1.0], requires_grad=True)
opt = Adam([w], lr=0.1, weight_decay=0.5)
got = []
for _ in range(3):
    w.grad = np.ones(1, dtype=np.float32)
    opt.step()
    got.append(float(w.data[0]))
assert np.allclose(got, [0.9, 0.800103, 0.700382], rtol=2e-6), (
    f"Adam with L2 weight decay over three steps: got {got}. "
    "Hint: g + weight_decay * theta goes into both moments"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_adam_per_parameter", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# lazy state and per-parameter step count: b has no gradient at the first step
a = Tensor([1.0], requires_grad=True)
b = Tensor([1.0], requires_grad=True)
opt = Adam([a, b], lr=0.05)
assert opt.state == [{}, {}], "Adam's buffers are created on a parameter's first update, not before"
a.grad = np.ones(1, dtype=np.float32)
opt.step()
assert opt.state[1] == {} and values(b).tolist() == [1.0], "a parameter without grad gets no state and no step"
a.grad = np.ones(1, dtype=np.float32)
b.grad = np.ones(1, dtype=np.float32)
opt.step()
# b's first update has its own t = 1: a full step of lr (torch.optim.Adam: b = 0.95)
assert np.allclose(values(b), [0.95], rtol=1e-6), (
    f"b's first update should be a full lr step (t counts b's own steps), got b = {float(b.data[0])}"
)
assert (opt.state[0]["step"], opt.state[1]["step"], opt.step_count) == (2, 1, 2), (
    f"steps per parameter (2, 1) and calls of step() 2 expected, got "
    f"{(opt.state[0]['step'], opt.state[1]['step'], opt.step_count)}"
)
assert opt.state[1]["exp_avg"].dtype == np.float32, (
    f"buffers are zeros like p.data, with its dtype float32; got {opt.state[1]['exp_avg'].dtype}"
)
### BEGIN HIDDEN TESTS
# three parameters, lr = 0.1: c gets its first gradient at the third step. Its first update is a full
# step of lr = 0.1 (with the global t = 3 it would be 0.1 * (0.1 / 0.271) / sqrt(0.001 / 0.002997) = 0.0639)
a, b, c = (Tensor([1.0], requires_grad=True) for _ in range(3))
opt = Adam([a, b, c], lr=0.1)
for step in range(3):
    a.grad = np.ones(1, dtype=np.float32)
    b.grad = np.ones(1, dtype=np.float32)
    if step == 2:
        c.grad = np.ones(1, dtype=np.float32)
    opt.step()
assert np.allclose(values(c), [0.9], rtol=1e-6), (
    f"a parameter's first update is a full lr step (t counts its own steps), got {float(c.data[0])}"
)
assert [s["step"] for s in opt.state] == [3, 3, 1] and opt.step_count == 3, (
    f"steps per parameter: expected [3, 3, 1], got {[s.get('step') for s in opt.state]}"
)
assert opt.state[2]["exp_avg"].dtype == np.float32, "buffers should have the parameter's dtype (float32)"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Decoupled weight decay: `AdamW`
#
# In Adam, L2 weight decay goes through the moments: the pull $\lambda\theta$ is added to
# the gradient and then divided by $\sqrt{\hat v}$ like the rest. A weight with large,
# noisy gradients has a large $\sqrt{\hat v}$, so its decay is divided away; a weight with
# tiny gradients is decayed hard. On the first step it is gone entirely: the step is
# `lr` whatever $g + \lambda\theta$ is. The penalty no longer does what L2 does in SGD (pull
# every weight towards zero in proportion to its size).
#
# **AdamW** (Loshchilov and Hutter, *Decoupled Weight Decay Regularization*) takes the
# decay out of the gradient and applies it to the weights directly, at the same rate
# for every weight:
#
# $$\theta \leftarrow \theta\,(1 - \text{lr}\cdot\lambda), \qquad \text{then the Adam step with the plain gradient } g.$$
#
# **Order.** `torch.optim.AdamW` shrinks the weights *first* and then takes the adaptive
# step; so does this course. A common variant applies the decay *after* the Adam step,
# $\theta \leftarrow (\theta - \text{lr}\,u)(1 - \text{lr}\,\lambda)$ with $u$ the Adam
# update. The two differ: shrinking afterwards also shrinks the step just taken,
#
# $$(\theta - \text{lr}\,u)(1-\text{lr}\,\lambda) = \theta(1-\text{lr}\,\lambda) - \text{lr}\,u + \text{lr}^2\lambda\, u,$$
#
# an extra $\text{lr}^2\lambda u$ per step. Small for `lr = 1e-3`, but it is not the
# algorithm of the paper (whose decay uses the weights before the step), the numbers
# no longer match PyTorch's, and with a large `lr * weight_decay` the difference is
# easy to see (the test below: 0.85 versus 0.855 after one step). Also note that
# PyTorch scales the decay by `lr`: a schedule that lowers the learning rate lowers the
# decay with it.

# %% nbgrader={"grade": false, "grade_id": "optimizers_adamw", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Each step first shrinks the weights, ``theta *= 1 - lr * weight_decay``, then takes
    the Adam step with the plain gradient.

    Args:
        params: tensors to update.
        lr: step size (>= 0).
        betas: decay rates (beta1, beta2), each in [0, 1).
        eps: added to the square root of the second moment (>= 0).
        weight_decay: decoupled decay rate (>= 0), default 0.01.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def step(self) -> None:
        """Shrink each weight by ``lr * weight_decay``, then the Adam step (in place)."""
        ### BEGIN SOLUTION
        for i, p in enumerate(self.params):
            grad = self._grad(i)
            if grad is None:
                continue
            if self.weight_decay != 0:
                p.data *= 1.0 - self.lr * self.weight_decay
            self._adam_update(i, grad)
        self.step_count += 1
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_adamw", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0], requires_grad=True)
opt = AdamW([w], lr=0.1, weight_decay=0.5)
trajectory = []
for _ in range(3):
    w.grad = np.ones(1, dtype=np.float32)  # constant gradient: every Adam step is exactly lr
    opt.step()
    trajectory.append(float(w.data[0]))
# by hand: shrink by 1 - 0.1 * 0.5 = 0.95, then subtract 0.1:
#   1 * 0.95 - 0.1 = 0.85;  0.85 * 0.95 - 0.1 = 0.7075;  0.7075 * 0.95 - 0.1 = 0.572125
# (the decay after the step, the variant of section 4, would give (1 - 0.1) * 0.95 = 0.855 first)
expected = [0.85, 0.7075, 0.572125]
assert np.allclose(trajectory, expected, rtol=1e-6), (
    f"AdamW (lr=0.1, weight_decay=0.5, grad=1) should give {expected}, got {trajectory}. "
    "Hint: shrink the weights by (1 - lr * weight_decay) BEFORE the Adam step; do not add the "
    "decay to the gradient"
)
### BEGIN HIDDEN TESTS
# weight_decay=0.01 with grad = w, lr = 0.1 (the Adam recurrence after a 0.999 shrink; torch.optim.AdamW agrees):
#   t=1: g = 1, shrink: 0.999, step 0.1                                          w = 0.899
#   t=2: g = 0.899, shrink: 0.898101, m = 0.1799, v = 0.0018072, m_hat = 0.946842,
#        v_hat = 0.904053, sqrt = 0.950817, step = 0.0995820                        w = 0.798519
#   t=3: g = 0.798519, shrink: 0.797720, m = 0.241762, v = 0.00244303, m_hat = 0.892110,
#        v_hat = 0.815157, sqrt = 0.902860, step = 0.0988093                        w = 0.698911
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(AdamW([w], lr=0.1, weight_decay=0.01), w, [1.0])
assert np.allclose(got, [[0.899], [0.798519], [0.698911]], rtol=2e-6), (
    f"AdamW with another weight decay and a gradient that follows the weights: got {got}. "
    "Hint: the gradient is taken at the weights before the shrink; shrink, then the Adam step"
)
# with weight_decay=0 AdamW is Adam: same numbers as the Adam test (0.9, 0.800412, 0.701586)
w = Tensor([1.0], requires_grad=True)
got = trajectory_of(AdamW([w], lr=0.1, weight_decay=0.0), w, [1.0])
assert np.allclose(got, [[0.9], [0.800412], [0.701586]], rtol=2e-6), (
    f"AdamW with weight_decay=0 should take Adam's steps, got {got}"
)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Saving and restoring optimizer state
#
# A checkpoint taken after $k$ steps and restored into a fresh optimizer must continue
# exactly as if the run had never stopped: same buffers, same per-parameter step
# counts, same hyperparameters. The tests below check that; that a saved state is a
# copy (training on does not change it, and changing it does not change the optimizer);
# that a state saved for a different model is refused with a message that shows what
# does not fit (the table in section 1); and that a refused state changes nothing.

# %% nbgrader={"grade": false, "grade_id": "optimizers_state_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
def make_params() -> list[Tensor]:
    return [Tensor([1.0, -2.0], requires_grad=True), Tensor([[0.5], [3.0]], requires_grad=True)]


def train(opt: Optimizer, steps: int) -> None:
    for _ in range(steps):
        for p in opt.params:
            quadratic_grad(p, [1.0])
        opt.step()

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_state_dict", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# uninterrupted: 5 steps
straight = make_params()
train(Adam(straight, lr=0.1), 5)
# interrupted after 2 steps: save, build everything anew, load, continue for 3 steps
first = make_params()
opt = Adam(first, lr=0.1)
train(opt, 2)
saved = opt.state_dict()
resumed = [Tensor(p.data.copy(), requires_grad=True) for p in first]
opt2 = Adam(resumed, lr=0.5)  # different lr: the saved hyperparameters win
opt2.load_state_dict(saved)
assert opt2.lr == 0.1, f"after load_state_dict the saved lr (0.1) should be used, got {opt2.lr}"
train(opt2, 3)
for a_, b_ in zip(straight, resumed, strict=True):
    assert np.array_equal(a_.data, b_.data), (
        "save after 2 steps + load + 3 steps must give exactly the weights of 5 uninterrupted steps; "
        f"got {b_.data.tolist()} instead of {a_.data.tolist()}"
    )
### BEGIN HIDDEN TESTS
# SGD with Nesterov momentum: 2 steps, save, load into an SGD built with other settings, 1 more step each
p1 = make_params()
sgd = SGD(p1, lr=0.1, momentum=0.9, nesterov=True)
train(sgd, 2)
state = sgd.state_dict()
p2 = [Tensor(p.data.copy(), requires_grad=True) for p in p1]
sgd2 = SGD(p2, lr=1.0)
sgd2.load_state_dict(state)
assert (sgd2.lr, sgd2.momentum, sgd2.nesterov, sgd2.step_count) == (0.1, 0.9, True, sgd.step_count), (
    "after load_state_dict the saved hyperparameters and step count are used; got "
    f"lr={sgd2.lr}, momentum={sgd2.momentum}, nesterov={sgd2.nesterov}, step_count={sgd2.step_count}"
)
train(sgd, 1)
train(sgd2, 1)
assert all(np.array_equal(x.data, y.data) for x, y in zip(p1, p2, strict=True)), (
    "SGD with momentum: a saved and loaded state must continue exactly like the original optimizer"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_state_copies", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
opt = Adam(make_params(), lr=0.1)
train(opt, 2)
saved = opt.state_dict()
kept = saved["state"][0]["exp_avg"].copy()
train(opt, 1)  # the saved state must not change when the optimizer goes on
assert saved["state"][0]["step"] == 2 and np.array_equal(saved["state"][0]["exp_avg"], kept), (
    "state_dict() must copy: later steps changed the saved state"
)
### BEGIN HIDDEN TESTS
# loading copies too: changing the dict afterwards does not reach the optimizer
fresh = Adam(make_params())
fresh.load_state_dict(saved)
saved["state"][1]["exp_avg_sq"][:] = 123.0
saved["state"][0]["exp_avg"][:] = 123.0
assert not np.any(fresh.state[0]["exp_avg"] == 123.0) and not np.any(fresh.state[1]["exp_avg_sq"] == 123.0), (
    "load_state_dict must copy the arrays it loads: changing the dict afterwards changed the optimizer"
)
# and a momentum buffer in a state dict is not the optimizer's own array
sgd = SGD(make_params(), lr=0.1, momentum=0.9)
train(sgd, 1)
sd = sgd.state_dict()
sd["state"][1]["momentum_buffer"][:] = -7.0
assert not np.any(sgd.state[1]["momentum_buffer"] == -7.0), "state_dict() must copy the momentum buffers"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_load_refusals", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
opt = Adam(make_params(), lr=0.1)
train(opt, 2)
saved = opt.state_dict()
# a state saved for another model is refused, and the message shows what does not fit
other = Adam([Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([[0.5], [3.0]], requires_grad=True)])
expect_error(ValueError, lambda: other.load_state_dict(saved), "state[0]", "(2,)", "(3,)")
expect_error(ValueError, lambda: SGD(make_params(), lr=0.1).load_state_dict(saved), "Adam", "SGD")
### BEGIN HIDDEN TESTS
# wrong number of parameters: both numbers
expect_error(ValueError, lambda: Adam(make_params() + make_params()).load_state_dict(saved), "2", "4")
# the second parameter's buffer does not fit: state[1] and both shapes
expect_error(ValueError, lambda: Adam([make_params()[0], Tensor([7.0], requires_grad=True)]).load_state_dict(saved),
             "state[1]", "(2, 1)", "(1,)")
# other hyperparameter names: the expected names are listed (here the missing 'eps')
bad = Adam(make_params()).state_dict()
del bad["hyperparameters"]["eps"]
expect_error(ValueError, lambda: Adam(make_params()).load_state_dict(bad), "eps")
# other keys in a parameter's state: state[0] and the keys
bad = SGD(make_params(), lr=0.1, momentum=0.9).state_dict()
bad["state"][0] = {"velocity": np.zeros(2, dtype=np.float32)}
expect_error(ValueError, lambda: SGD(make_params(), lr=0.1, momentum=0.9).load_state_dict(bad), "state[0]", "velocity")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_load_unchanged", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# parameter 0 fits the saved state, parameter 1 does not: the refused load changes nothing
opt = Adam(make_params(), lr=0.1)
train(opt, 2)
saved = opt.state_dict()
victim = Adam([Tensor([1.0, -2.0], requires_grad=True), Tensor([[1.0, 2.0]], requires_grad=True)], lr=0.3)
try:
    victim.load_state_dict(saved)
except ValueError:
    pass
assert victim.lr == 0.3 and victim.step_count == 0 and victim.state == [{}, {}], (
    f"load_state_dict must check everything before changing anything; after a refused load got "
    f"lr={victim.lr}, step_count={victim.step_count}, state={victim.state}"
)
### BEGIN HIDDEN TESTS
# an SGD that has momentum buffers keeps them when a state with another parameter count is refused
ps = make_params()
sgd = SGD(ps, lr=0.2, momentum=0.5)
train(sgd, 1)
before = [s["momentum_buffer"].copy() for s in sgd.state]
steps_before = sgd.step_count
bad = SGD(make_params() + make_params(), lr=0.9, momentum=0.1).state_dict()
try:
    sgd.load_state_dict(bad)
except ValueError:
    pass
assert (sgd.lr, sgd.momentum, sgd.step_count) == (0.2, 0.5, steps_before) and all(
    np.array_equal(s["momentum_buffer"], b) for s, b in zip(sgd.state, before, strict=True)
), "a refused state dict must leave hyperparameters, step count and buffers as they were"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "optimizers_test_load_validation", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# a state dict is checked like the constructor's arguments: a saved lr of -1 is refused
p = [Tensor([1.0], requires_grad=True)]
opt = SGD(p, lr=0.1, momentum=0.9)
bad = opt.state_dict()
bad["hyperparameters"]["lr"] = -1.0
expect_error(ValueError, lambda: opt.load_state_dict(bad), "lr", "-1.0")
assert opt.lr == 0.1, f"a refused state dict must not change lr: got {opt.lr}"
# a value of the wrong type: the constructor's TypeError, passed through unchanged
bad = opt.state_dict()
bad["hyperparameters"]["nesterov"] = "yes"
expect_error(TypeError, lambda: opt.load_state_dict(bad), "nesterov", "yes")
### BEGIN HIDDEN TESTS
# the saved hyperparameters go through the same checks as the constructor's (_validated)
bad = Adam(p).state_dict()
bad["hyperparameters"]["betas"] = [0.9, 1.5]
expect_error(ValueError, lambda: Adam(p).load_state_dict(bad), "betas[1]", "1.5")
bad = SGD(p, lr=0.1, momentum=0.9, nesterov=True).state_dict()
bad["hyperparameters"]["dampening"] = 0.5
expect_error(ValueError, lambda: SGD(p, lr=0.1).load_state_dict(bad), "nesterov")
bad = Adam(p).state_dict()
bad["hyperparameters"]["eps"] = "tiny"
expect_error(TypeError, lambda: Adam(p).load_state_dict(bad), "eps", "tiny")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Why SGD struggles in ravines
#
# Loss surfaces of real networks are full of **ravines**: directions where the loss is
# steep next to directions where it is almost flat. The simplest ravine is
#
# $$f(x, y) = \tfrac12\,(x^2 + 50\,y^2), \qquad \nabla f = (x,\ 50\,y).$$
#
# Gradient descent is stable only if $\text{lr} < 2/50 = 0.04$ (otherwise the steep $y$
# direction blows up). At such a rate, each step shrinks $x$ by only a factor
# $1-\text{lr}$: hundreds of steps to cross the flat direction while $y$ bounces from wall
# to wall. Momentum averages the bouncing out and builds speed along $x$; Adam rescales
# each coordinate by its own gradient size, so both directions move at about `lr` per
# step.
#
# Below, the three optimizers of this module run 60 steps from the same point, with
# the gradient written by hand (no autograd needed). SGD gets `lr = 0.035`, close to the
# largest rate it survives. Momentum gets a smaller one, `lr = 0.01`: with $\mu = 0.9$
# its velocity builds up to ten times the gradient, so its effective step is about
# $\text{lr}/(1-\mu)$.

# %%
import matplotlib.pyplot as plt


def ravine(opt_factory: Callable[[list[Tensor]], Optimizer], steps: int = 60) -> np.ndarray:
    """Run an optimizer on f(x, y) = 0.5 (x^2 + 50 y^2); return the visited points."""
    point = Tensor([-9.0, 1.2], requires_grad=True)
    opt = opt_factory([point])
    path = [point.data.copy()]
    for _ in range(steps):
        x, y = point.data
        point.grad = np.array([x, 50.0 * y], dtype=np.float32)
        opt.step()
        path.append(point.data.copy())
    return np.array(path)


runs = {
    "SGD lr=0.035": ravine(lambda ps: SGD(ps, lr=0.035)),
    "SGD+momentum 0.9, lr=0.01": ravine(lambda ps: SGD(ps, lr=0.01, momentum=0.9)),
    "Adam lr=0.5": ravine(lambda ps: Adam(ps, lr=0.5)),
}
xs, ys = np.meshgrid(np.linspace(-10, 3, 200), np.linspace(-1.6, 1.6, 200))
fig, (ax_path, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.2))
ax_path.contour(xs, ys, 0.5 * (xs**2 + 50 * ys**2), levels=np.geomspace(0.05, 120, 14), cmap="Greys", linewidths=0.7)
for label, path in runs.items():
    ax_path.plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1, label=label)
    ax_loss.semilogy(0.5 * (path[:, 0] ** 2 + 50 * path[:, 1] ** 2), label=label)
ax_path.plot([0], [0], "k*", markersize=10)
ax_path.set(xlabel="x (flat direction)", ylabel="y (steep direction)", title="f(x, y) = 0.5 (x² + 50 y²)")
ax_path.legend(fontsize=8)
ax_loss.set(xlabel="step", ylabel="f (log scale)", title="Loss along the way")
ax_loss.grid(alpha=0.3)
plt.tight_layout()
plt.show()
for label, path in runs.items():
    x, y = path[-1]
    print(f"{label:28s} after 60 steps: f = {0.5 * (x * x + 50 * y * y):.4f}")

# %% [markdown]
# Plain SGD zig-zags across the ravine at first and then crawls along its floor: after
# 60 steps it is still far from the middle, and a larger rate would make the steep
# direction blow up. Momentum rolls along the floor, overshoots (a heavy ball does) and
# comes back. Adam moves along both axes at about the same speed from the start, since
# each coordinate's step is divided by that coordinate's own gradient size. None of
# this makes one optimizer best everywhere; it shows what each one's state buys.
#
# ## 7. Systems: the memory tax of optimizer state
#
# Training holds, for every parameter, the weights and a gradient of the same size.
# The optimizer adds its buffers: none for SGD, one (the velocity) for momentum, two
# ($m$ and $v$) for Adam and AdamW. So the memory for the weights and everything that
# lives as long as they do is about
#
# | optimizer | arrays per parameter | multiple of the weights |
# |---|---|---|
# | SGD | weights, grad | 2x |
# | SGD + momentum | weights, grad, velocity | 3x |
# | Adam / AdamW | weights, grad, m, v | 4x |
#
# (plus the activations of the forward pass, which depend on the batch, and this
# module's two scratch arrays, as large as the largest single parameter.) Tables that
# put momentum at 2x and Adam at 3x the weights (for 10 billion parameters, 80 GB
# against 120 GB) leave out one array per parameter: the gradient, momentum's
# velocity, or one of Adam's two buffers. In float32, 10 billion parameters are 40 GB of weights, 40 GB of
# gradients, and 80 GB of Adam state: 160 GB in all. We measure it rather than trust a table: the bytes
# below come from the arrays themselves (`nbytes`), on a 784-256-128-10 MLP.

# %%
def mlp_parameters(sizes: list[int], rng: np.random.Generator) -> list[Tensor]:
    """Weights and biases of an MLP with the given layer sizes, as plain tensors."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(Tensor(rng.uniform(-bound, bound, (fan_in, fan_out)), requires_grad=True))
        params.append(Tensor(rng.uniform(-bound, bound, (fan_out,)), requires_grad=True))
    return params


def memory_after_one_step(opt_factory: Callable[[list[Tensor]], Optimizer]) -> dict[str, int]:
    """Bytes of weights, gradients and optimizer buffers after one step."""
    rng = np.random.default_rng(0)
    params = mlp_parameters([784, 256, 128, 10], rng)
    for p in params:
        p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
    opt = opt_factory(params)
    opt.step()
    buffers = sum(
        value.nbytes
        for entry in opt.state_dict()["state"]
        for value in entry.values()
        if isinstance(value, np.ndarray)
    )
    return {
        "weights": sum(p.data.nbytes for p in params),
        "gradients": sum(p.grad.nbytes for p in params),
        "optimizer state": buffers,
    }


optimizers_to_measure = {
    "SGD": lambda ps: SGD(ps, lr=0.01),
    "SGD+momentum": lambda ps: SGD(ps, lr=0.01, momentum=0.9),
    "Adam": lambda ps: Adam(ps),
    "AdamW": lambda ps: AdamW(ps),
}
memory = {name: memory_after_one_step(factory) for name, factory in optimizers_to_measure.items()}
weights_bytes = memory["SGD"]["weights"]
print(f"parameters: {weights_bytes // 4:,} float32 numbers = {weights_bytes / 2**20:.2f} MiB")
for name, parts in memory.items():
    total = sum(parts.values())
    print(f"{name:13s} weights {parts['weights'] / 2**20:.2f} MiB + grads {parts['gradients'] / 2**20:.2f} MiB"
          f" + state {parts['optimizer state'] / 2**20:.2f} MiB = {total / 2**20:.2f} MiB"
          f"  ({total / weights_bytes:.0f}x the weights)")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
names = list(memory)
bottom = np.zeros(len(names))
for part, color in [("weights", "tab:blue"), ("gradients", "tab:orange"), ("optimizer state", "tab:red")]:
    heights = np.array([memory[name][part] for name in names]) / 2**20
    ax.bar(names, heights, bottom=bottom, label=part, color=color)
    bottom += heights
for i, name in enumerate(names):
    ax.text(i, bottom[i] + 0.05, f"{sum(memory[name].values()) / weights_bytes:.0f}x", ha="center")
ax.set(ylabel="MiB", title="Memory of a 784-256-128-10 MLP during training (float32)")
ax.set_ylim(0, bottom.max() * 1.15)
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **Time.** A step touches every byte of this state once or twice, so its cost grows
# with the number of parameters and the number of buffers, not with the batch size.
# Doing it in place matters: `p.data = p.data - lr * g` allocates two new arrays per
# parameter per step (the product and the difference), while the in-place version with
# scratch arrays allocates none. The cell below times one step of each optimizer, and
# the same plain SGD step written with fresh arrays for comparison.

# %%
import time


def time_step(step: Callable[[], None], repeats: int = 50) -> float:
    """Median seconds per call of ``step``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


rng = np.random.default_rng(1)
params = mlp_parameters([784, 256, 128, 10], rng)
for p in params:
    p.grad = (1e-3 * rng.standard_normal(p.data.shape)).astype(np.float32)
for name, factory in optimizers_to_measure.items():
    opt = factory(params)
    print(f"{name:13s} {time_step(opt.step) * 1e6:8.0f} us per step")


def allocating_sgd_step() -> None:
    for p in params:
        p.data = p.data - 0.01 * p.grad  # new arrays every step; other references go stale


print(f"{'SGD, rebinding':13s} {time_step(allocating_sgd_step) * 1e6:8.0f} us per step")

# %% [markdown]
# ## Summary
#
# * An optimizer owns the parameters' update rule and their state; `zero_grad()` clears
#   gradients (autograd accumulates), `step()` updates `p.data` in place and skips
#   parameters without a gradient.
# * `SGD` with momentum keeps a velocity: the first buffer is the gradient, dampening
#   applies from the second step, Nesterov looks ahead; weight decay is L2 in the
#   gradient.
# * `Adam` keeps moving averages of $g$ and $g^2$ per number, bias-corrected with the
#   parameter's own step count $t \ge 1$, and adds $\varepsilon$ after the square root.
# * `AdamW` decouples weight decay: shrink the weights first, then the Adam step.
# * State dicts hold hyperparameters, step counts and copied buffers; loading checks
#   everything before changing anything, so a resumed run continues bit for bit.
# * The memory tax: 2x the weights for SGD, 3x with momentum, 4x for Adam.
#
# Module 08 puts the optimizer in a training loop with a learning-rate schedule,
# gradient clipping and checkpoints.
