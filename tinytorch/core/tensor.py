"""Generated from modules/01_tensor/tensor.py by `course build`; do not edit.

Change the module file and run `course build --module 01`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class _GradMode:
    """Process-wide switch: are operations recorded for autograd?"""

    enabled: bool = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations record the graph (the default)."""
    return _grad_mode.enabled


class no_grad:
    """Context manager (and decorator) that turns graph recording off.

    >>> with no_grad():
    ...     y = x * 2          # y records nothing, y.requires_grad is False
    """

    def __enter__(self) -> no_grad:
        self._previous = _grad_mode.enabled
        _grad_mode.enabled = False
        return self

    def __exit__(self, *exc: object) -> None:
        _grad_mode.enabled = self._previous

    def __call__(self, func):
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        return wrapper


def _check_axis(axis: Any, ndim: int, op: str) -> None:
    """Raise a clear ValueError when `axis` does not fit a tensor of `ndim` dimensions."""
    if axis is None:
        return
    axes = axis if isinstance(axis, tuple) else (axis,)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ValueError(f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{op}: axis {a} is out of range for a tensor with {ndim} dimension(s) "
                f"(valid: {-ndim} to {ndim - 1})"
            )


class Tensor:
    """An n-dimensional array of numbers that records the operations made on it.

    Args:
        data: numbers: a Python number, a (nested) list, a NumPy array or a Tensor.
        requires_grad: compute gradients for this tensor in ``backward()``.
        dtype: NumPy dtype to store; default float32 (integer/bool arrays are kept,
            a Tensor keeps its own dtype).
    """

    # NumPy must hand `ndarray + Tensor` to Tensor.__radd__ instead of
    # treating the tensor as an array itself.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            if dtype is None:
                dtype = data.data.dtype  # a Tensor keeps its dtype (like torch.as_tensor)
            data = data.data
        # Set `array`: the NumPy array to store, by the dtype table above.
        if dtype is not None:
            array = np.asarray(data, dtype=dtype)
        else:
            array = np.asarray(data)
            kind = array.dtype.kind
            if kind == "f":
                if array.dtype != np.float32:
                    array = array.astype(np.float32)
            elif kind in "iub":
                if not isinstance(data, np.ndarray):
                    # Python numbers and lists: the course's default float32
                    array = array.astype(np.float32)
            else:
                raise TypeError(
                    f"Tensor: data must be numbers, got an array of dtype {array.dtype} "
                    f"(from {type(data).__name__})"
                )
        if requires_grad and array.dtype.kind != "f":
            raise ValueError(
                f"Tensor: requires_grad=True needs a floating dtype, got {array.dtype}"
            )
        self.data: np.ndarray = array
        self.requires_grad: bool = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._op: str | None = None
        self._inputs: tuple[Tensor, ...] = ()
        self._ctx: Any = None

    # ---- making results (given) ------------------------------------------------
    @staticmethod
    def _from_op(data: np.ndarray, op: str, inputs: tuple[Tensor, ...], ctx: Any = None) -> Tensor:
        """Wrap `data` (no copy) as the result of `op` applied to `inputs`."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        if _grad_mode.enabled and any(t.requires_grad for t in inputs):
            out.requires_grad = True
            out._op = op
            out._inputs = inputs
            out._ctx = ctx
        else:
            out.requires_grad = False
            out._op = None
            out._inputs = ()
            out._ctx = None
        return out

    def _wrap(self, other: Any) -> Tensor:
        """`other` as a Tensor: tensors pass through, anything else becomes a constant."""
        if isinstance(other, Tensor):
            return other
        array = np.asarray(other)
        if self.data.dtype.kind == "f" and array.dtype != self.data.dtype:
            array = array.astype(self.data.dtype)
        return Tensor._from_op(array, "constant", ())  # no inputs: records nothing

    # ---- properties --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of `data`."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of `data`."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed (a matrix transposed)."""
        return self.transpose()

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._op}" if self._op else ""
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{grad}{op})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is None:
            return self.data if not copy else self.data.copy()
        return np.array(self.data, dtype=dtype, copy=copy)

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def item(self) -> float | int | bool:
        """The single number of a one-element tensor, as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, expected exactly 1")
        return self.data.reshape(()).item()

    def detach(self) -> Tensor:
        """A tensor sharing `data` that records nothing and needs no gradient."""
        return Tensor(self.data, dtype=self.data.dtype)

    def zero_grad(self) -> None:
        """Forget the gradient (set it to None)."""
        self.grad = None

    def backward(self, grad: Any = None) -> None:
        """Compute gradients of this tensor with respect to every tensor that needs one.

        The backward pass is module 06's work (`tinytorch.core.autograd.backward`).
        """
        try:
            from tinytorch.core.autograd import backward as _backward
        except ImportError as error:  # module 06 not built yet
            raise RuntimeError(
                "backward() needs module 06 (tinytorch.core.autograd), which is not available"
            ) from error
        _backward(self, grad)

    # ---- arithmetic ----------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        return Tensor._from_op(self.data + other.data, "add", (self, other))

    def __radd__(self, other: Any) -> Tensor:
        return self._wrap(other).__add__(self)

    def __sub__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        return Tensor._from_op(self.data - other.data, "sub", (self, other))

    def __rsub__(self, other: Any) -> Tensor:
        return self._wrap(other).__sub__(self)

    def __mul__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        return Tensor._from_op(self.data * other.data, "mul", (self, other))

    def __rmul__(self, other: Any) -> Tensor:
        return self._wrap(other).__mul__(self)

    def __truediv__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        return Tensor._from_op(self.data / other.data, "div", (self, other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._wrap(other).__truediv__(self)

    def __neg__(self) -> Tensor:
        return Tensor._from_op(-self.data, "neg", (self,))

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"Tensor ** exponent: exponent must be a Python number, got {type(exponent).__name__}"
            )
        return Tensor._from_op(self.data ** exponent, "pow", (self,), exponent)

    # ---- matrix product -----------------------------------------------------------
    def __matmul__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        a, b = self.shape, other.shape
        if len(a) == 0 or len(b) == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a} and {b}")
        inner_b = b[0] if len(b) == 1 else b[-2]
        if a[-1] != inner_b:
            raise ValueError(
                f"matmul: shapes {a} and {b} are not aligned: the last dimension of the left "
                f"operand ({a[-1]}) must equal the "
                f"{'first' if len(b) == 1 else 'second-to-last'} dimension of the right one ({inner_b})"
            )
        return Tensor._from_op(np.matmul(self.data, other.data), "matmul", (self, other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._wrap(other).__matmul__(self)

    def matmul(self, other: Any) -> Tensor:
        """Matrix product, the same as ``self @ other``."""
        return self.__matmul__(other)

    # ---- reductions -----------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all elements when None)."""
        _check_axis(axis, self.data.ndim, "sum")
        return Tensor._from_op(
            np.asarray(self.data.sum(axis=axis, keepdims=keepdims)), "sum", (self,), (axis, keepdims)
        )

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all elements when None)."""
        _check_axis(axis, self.data.ndim, "mean")
        return Tensor._from_op(
            np.asarray(self.data.mean(axis=axis, keepdims=keepdims)), "mean", (self,), (axis, keepdims)
        )

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis` (all elements when None)."""
        _check_axis(axis, self.data.ndim, "max")
        if self.data.size == 0:
            raise ValueError("max: the tensor is empty")
        return Tensor._from_op(
            np.asarray(self.data.max(axis=axis, keepdims=keepdims)), "max", (self,), (axis, keepdims)
        )

    # ---- shape ------------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        """The same numbers in a new shape (one dimension may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            data = self.data.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {self.shape} ({self.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None
        return Tensor._from_op(data, "reshape", (self,))

    def transpose(self, *axes: int) -> Tensor:
        """Permute the axes (NumPy's rule); with no argument, reverse them."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if axes and sorted(int(a) % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}"
            )
        axes_or_none = tuple(int(a) for a in axes) if axes else None
        return Tensor._from_op(np.transpose(self.data, axes_or_none), "transpose", (self,), axes_or_none)

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return Tensor._from_op(np.asarray(self.data[index]), "getitem", (self,), index)

    # ---- elementwise functions ----------------------------------------------------------
    def exp(self) -> Tensor:
        """e to the power of each element."""
        return Tensor._from_op(np.exp(self.data), "exp", (self,))

    def log(self) -> Tensor:
        """Natural logarithm of each element."""
        return Tensor._from_op(np.log(self.data), "log", (self,))
