"""Generated from modules/06_autograd/autograd.py by `course build`; do not edit.

Change the module file and run `course build --module 06`.
"""

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


GradPair = tuple[np.ndarray | None, ...]


def add_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a + b: both inputs receive `grad`."""
    return grad, grad


def sub_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a - b: `grad` to a, `-grad` to b."""
    return grad, -grad


def mul_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a * b: `grad * b` to a, `grad * a` to b (None for an input without requires_grad)."""
    a, b = out._inputs
    grad_a = grad * b.data if a.requires_grad else None
    grad_b = grad * a.data if b.requires_grad else None
    return grad_a, grad_b


def div_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a / b: `grad / b` to a, `-grad * y / b` to b (None for an input without requires_grad)."""
    a, b = out._inputs
    grad_a = grad / b.data if a.requires_grad else None
    grad_b = -grad * out.data / b.data if b.requires_grad else None
    return grad_a, grad_b


def neg_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = -a: `-grad` to a."""
    return (-grad,)


def pow_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a ** p with the number p saved in `out._ctx`: `grad * p * a ** (p - 1)` to a;
    zeros for p == 0 (y = 1 is constant; the formula would give nan at a = 0)."""
    p = float(out._ctx)  # a Python float keeps float32 arrays float32
    if p == 0.0:
        return (np.zeros_like(grad),)
    a = out._inputs[0].data
    return (grad * p * a ** (p - 1.0),)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing NumPy broadcasting.

    Leading axes that broadcasting added are summed away; axes where `shape` has a 1
    (and `grad` does not) are summed with keepdims.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def exp_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = exp(a): `grad * y` to a."""
    return (grad * out.data,)


def log_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = log(a): `grad / a` to a."""
    return (grad / out._inputs[0].data,)


def matmul_backward(grad: np.ndarray, out: Any) -> GradPair:
    """Y = A @ B: `grad @ B^T` to A and `A^T @ grad` to B (None for an input without requires_grad)."""
    a, b = out._inputs
    A, B = a.data, b.data
    if A.ndim == 1 or B.ndim == 1:  # given: vectors as rows/columns
        return _matmul_vector_backward(grad, A, B, a.requires_grad, b.requires_grad)
    grad_a = grad @ B.swapaxes(-1, -2) if a.requires_grad else None
    grad_b = A.swapaxes(-1, -2) @ grad if b.requires_grad else None
    return grad_a, grad_b


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
    return (np.broadcast_to(_expand_reduced(grad, axis, keepdims), shape),)


def mean_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.mean(axis, keepdims): like sum, divided by the number of elements per mean
    (zeros of a's shape when a is empty)."""
    axis, keepdims = out._ctx
    a = out._inputs[0].data
    if a.size == 0:  # an empty axis: no element went into any mean
        return (np.zeros(a.shape, dtype=grad.dtype),)
    scale = out.data.size / a.size  # a Python float: float32 stays float32
    return (np.broadcast_to(_expand_reduced(grad * scale, axis, keepdims), a.shape),)


def max_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.max(axis, keepdims): grad to the maximal entries (split evenly between ties)."""
    axis, keepdims = out._ctx
    a = out._inputs[0].data
    peak = _expand_reduced(out.data, axis, keepdims)
    g = _expand_reduced(grad, axis, keepdims)
    mask = a == peak
    count = mask.sum(axis=axis, keepdims=True).astype(a.dtype)
    return (mask * (g / count),)


def reshape_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.reshape(...): grad reshaped to a's shape."""
    return (grad.reshape(out._inputs[0].data.shape),)


def transpose_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a.transpose(axes) with `out._ctx == axes` (None: reversed; axes may be negative):
    the inverse permutation."""
    axes = out._ctx
    if axes is None:
        return (grad.transpose(),)
    ndim = grad.ndim
    return (grad.transpose(np.argsort([ax % ndim for ax in axes])),)


def getitem_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = a[index] with `out._ctx == index`: zeros of a's shape with grad added at index."""
    index = out._ctx
    a = out._inputs[0].data
    full = np.zeros(a.shape, dtype=grad.dtype)
    if _is_basic_index(index):
        full[index] = grad
    else:
        np.add.at(full, index, grad)
    return (full,)


GELU_C = math.sqrt(2.0 / math.pi)
GELU_K = 0.044715


def relu_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = relu(x): grad where y > 0, zero elsewhere."""
    return (grad * (out.data > 0),)


def sigmoid_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = sigmoid(x): grad * y * (1 - y)."""
    y = out.data
    return (grad * y * (1.0 - y),)


def tanh_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = tanh(x): grad * (1 - y^2)."""
    y = out.data
    return (grad * (1.0 - y * y),)


def gelu_backward(grad: np.ndarray, out: Any) -> GradPair:
    """y = gelu(x) (tanh form) with t = tanh(c (x + k x^3)) saved in `out._ctx`."""
    t = out._ctx
    x = np.clip(out._inputs[0].data, -10.0, 10.0)
    slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * x * x)
    return (grad * slope,)


def softmax_backward(grad: np.ndarray, out: Any) -> GradPair:
    """s = softmax(x, axis) with the axis in `out._ctx`: s * (grad - sum(grad * s, axis))."""
    axis = out._ctx
    s = out.data
    return (s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)


def mse_backward(grad: np.ndarray, out: Any) -> GradPair:
    """L = mean((p - t)^2) with d = p - t in `out._ctx`: 2 d / n to p, -2 d / n to t."""
    diff = out._ctx
    grad_p = diff * (grad * (2.0 / diff.size))
    if len(out._inputs) == 1:
        return (grad_p,)
    return grad_p, -grad_p


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """Given: log-probabilities of logits (N, C), row by row, computed stably."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_backward(grad: np.ndarray, out: Any) -> GradPair:
    """L = cross entropy of logits z with `out._ctx == (softmax(z), targets)`; a second
    gradient, -grad * log_softmax(z) / N, for probability targets that are an input."""
    probs, targets = out._ctx
    n = probs.shape[0]
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


def binary_cross_entropy_backward(grad: np.ndarray, out: Any) -> GradPair:
    """L = BCE of clamped probabilities p against targets t, `out._ctx == (p, t)`; a second
    gradient, grad * (log(1 - p) - log(p)) / n, for targets that are an input."""
    p, t = out._ctx
    scale = grad / p.size
    grad_p = (p - t) / (p * (1.0 - p)) * scale
    if len(out._inputs) == 1:
        return (grad_p,)
    if not out._inputs[1].requires_grad:
        return grad_p, None
    return grad_p, (np.log(1.0 - p) - np.log(p)) * scale


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


def topological_order(root: Any) -> list[Any]:
    """Nodes of the graph below `root` that require grad, each after its inputs; `root` is last
    (always listed, even when it does not require grad: then the order is `[root]`).

    Iterative depth-first search (no recursion), so graphs of any depth work.
    """
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
