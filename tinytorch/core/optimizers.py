"""Generated from modules/07_optimizers/optimizers.py by `course build`; do not edit.

Change the module file and run `course build --module 07`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor


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
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """Type, hyperparameters, step count and per-parameter buffers (arrays copied)."""
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "step": self.step_count,
            "state": [
                {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for s in self.state
            ],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``: everything is checked before anything changes."""
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

    def step(self) -> None:
        """One Adam step for every parameter whose grad is not None (in place)."""
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
        for i, p in enumerate(self.params):
            grad = self._grad(i)
            if grad is None:
                continue
            if self.weight_decay != 0:
                p.data *= 1.0 - self.lr * self.weight_decay
            self._adam_update(i, grad)
        self.step_count += 1
