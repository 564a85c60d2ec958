"""Generated from modules/04_losses/losses.py by `course build`; do not edit.

Change the module file and run `course build --module 04`.
"""

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
        diff = p - t.astype(p.dtype, copy=False)
        loss = np.asarray(np.mean(diff * diff), dtype=p.dtype)
        return Tensor._from_op(loss, "mse", inputs, diff)

    def __repr__(self) -> str:
        return "MSELoss()"


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
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        if t.ndim == 1:
            total = logp[np.arange(n), t].sum()
        else:
            total = (t * logp).sum()
        loss = np.asarray(-total / n, dtype=z.dtype)
        return Tensor._from_op(loss, "cross_entropy", inputs, (np.exp(logp), t))

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"


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
        pc = np.clip(p, self.eps, 1.0 - self.eps)
        tc = t.astype(p.dtype, copy=False)
        total = (tc * np.log(pc) + (1.0 - tc) * np.log(1.0 - pc)).sum()
        loss = np.asarray(-total / p.size, dtype=p.dtype)
        return Tensor._from_op(loss, "binary_cross_entropy", inputs, (pc, tc))

    def __repr__(self) -> str:
        return f"BinaryCrossEntropyLoss(eps={self.eps})"
