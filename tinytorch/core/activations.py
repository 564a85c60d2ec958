"""Generated from modules/02_activations/activations.py by `course build`; do not edit.

Change the module file and run `course build --module 02`.
"""

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


class ReLU:
    """max(x, 0) elementwise.

    Records op ``"relu"`` with ``_inputs == (x,)`` and ``_ctx is None`` (the backward
    rule uses the output: slope 1 where ``out > 0``, else 0).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "ReLU")
        return Tensor._from_op(np.maximum(data, 0), "relu", (x,))

    def __repr__(self) -> str:
        return "ReLU()"


class Sigmoid:
    """1 / (1 + exp(-x)) elementwise, without overflow for any finite x.

    Records op ``"sigmoid"`` with ``_inputs == (x,)`` and ``_ctx is None`` (the
    backward rule uses the output s: slope ``s * (1 - s)``).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "Sigmoid")
        e = np.exp(-np.abs(data))  # in (0, 1]: never overflows
        r = 1.0 / (1.0 + e)  # sigmoid(|x|)
        out = np.where(data >= 0, r, e * r)
        return Tensor._from_op(out, "sigmoid", (x,))

    def __repr__(self) -> str:
        return "Sigmoid()"


class Tanh:
    """tanh(x) elementwise.

    Records op ``"tanh"`` with ``_inputs == (x,)`` and ``_ctx is None`` (the backward
    rule uses the output y: slope ``1 - y**2``).
    """

    def __call__(self, x: Tensor) -> Tensor:
        data = _check_input(x, "Tanh")
        return Tensor._from_op(np.tanh(data), "tanh", (x,))

    def __repr__(self) -> str:
        return "Tanh()"


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
        xc = np.clip(data, -10.0, 10.0)
        t = np.tanh(GELU_C * (xc + GELU_K * xc * xc * xc))
        return Tensor._from_op(0.5 * data * (1.0 + t), "gelu", (x,), t)

    def __repr__(self) -> str:
        return "GELU()"


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
        with np.errstate(over="ignore"):  # extreme finite logits: the difference may be -inf
            shifted = data - data.max(axis=self.axis, keepdims=True)
        e = np.exp(shifted)
        out = e / e.sum(axis=self.axis, keepdims=True)
        return Tensor._from_op(out, "softmax", (x,), self.axis)

    def __repr__(self) -> str:
        return f"Softmax(axis={self.axis})"
