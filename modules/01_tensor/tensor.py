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
# # Module 01: Tensor
#
# Everything a neural network does is arithmetic on arrays of numbers: inputs,
# weights, activations, gradients. In this module you build the one data structure
# the rest of the course stands on, the **Tensor**: a thin wrapper around a NumPy
# array that
#
# 1. holds the numbers (`data`), with a shape and a dtype;
# 2. does arithmetic with broadcasting, matrix products and reductions;
# 3. reshapes, transposes and indexes;
# 4. **remembers how it was made**: every result of an operation keeps the name of
#    the operation and the tensors that went into it. Module 06 walks this record
#    backwards to compute gradients (autograd), so the record is built here, from
#    the start, not bolted on later.
#
# You write the parts marked `YOUR CODE HERE`; the tests after each part tell you
# whether it works. The hidden tests that grade the notebook check the same ideas
# with other numbers.
#
# **What you need**: Python and a first acquaintance with NumPy arrays.

# %% nbgrader={"grade": false, "grade_id": "tensor_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

from typing import Any

import numpy as np

# %% [markdown]
# ## 1. Recording the graph, and turning it off
#
# When a network is trained, every operation records its inputs so that the
# gradient can flow back through it. When a network is only *used* (evaluation,
# inference) that record is wasted memory: each saved input keeps a whole array
# alive. PyTorch has `torch.no_grad()` for this; we have the same.
#
# The switch lives here, in the tensor module, because this is where recording
# happens. The code is given: read it, you will use it.

# %% nbgrader={"grade": false, "grade_id": "tensor_grad_mode", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
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


# %% [markdown]
# ## 2. The Tensor class
#
# ### Data and dtype
#
# A tensor stores its numbers in `self.data`, a NumPy array. Deep learning works in
# **float32**: half the memory of NumPy's default float64, twice the numbers per
# cache line, and precise enough for training. So the rule is:
#
# | what you pass | dtype of `data` |
# |---|---|
# | Python numbers, lists, NumPy scalars, float arrays | `float32` |
# | integer or bool NumPy arrays (`np.ndarray`: class labels, masks) | kept as they are |
# | a `Tensor` | its own dtype, kept (a float64 tensor stays float64) |
# | anything, with `dtype=` given | that dtype (`float64` for gradient checks) |
#
# A single Python number gives a 0-d tensor: shape `()`, one element.
#
# `np.asarray` is used, not `np.array`: an array that already has the right dtype
# is **shared, not copied** (like `torch.as_tensor`). A batch of a million numbers
# is not duplicated just to be wrapped. Careful with `astype`: `a.astype(np.float32)`
# copies even when `a` already is float32; `np.asarray(a, dtype=np.float32)` converts
# only when it must.
#
# A `Tensor` given as `data` keeps its dtype, as `torch.as_tensor(t)` does: the first
# lines of `__init__` (given) unwrap it into its array and, when no `dtype=` was given,
# take that array's dtype as the `dtype` asked for. Your code then sees a NumPy array
# and a `dtype`, like any other call with `dtype=` given.
#
# **Your part of `__init__`** turns `data` into the NumPy array to store, following
# the table, and leaves it in a variable named `array`: the given lines after your
# code check it (`requires_grad` needs a floating dtype) and store it as `self.data`.
#
# The properties `shape` (a tuple), `dtype` and `size` (the number of elements, a
# plain Python `int`) read the array.
#
# Besides `data`, every tensor has
#
# * `requires_grad`: should gradients be computed for it? (weights: yes; data: no)
# * `grad`: the gradient, a NumPy array of the same shape, filled by `backward()`
#   (module 06); `None` until then;
# * the graph record `_op`, `_inputs`, `_ctx`: which operation made it, from which
#   tensors, and anything the backward rule will need (an axis, a saved value).
#
# ### Making results: `_from_op`
#
# Every operation ends the same way: wrap the new array, and record the graph *if*
# recording is on and some input needs a gradient. That logic is written once, in
# `Tensor._from_op` (given). Your operations compute the new array with NumPy and
# call `Tensor._from_op(new_data, "op_name", (inputs...), ctx)`.
#
# ### Operations and the names they record
#
# | operation | `_op` | `_inputs` | `_ctx` |
# |---|---|---|---|
# | `a + b`, `a - b`, `a * b`, `a / b` | `"add"`, `"sub"`, `"mul"`, `"div"` | `(a, b)` | `None` |
# | `-a` | `"neg"` | `(a,)` | `None` |
# | `a ** p` (p a number) | `"pow"` | `(a,)` | `p` |
# | `a @ b` | `"matmul"` | `(a, b)` | `None` |
# | `a.sum/mean/max(axis, keepdims)` | `"sum"`, `"mean"`, `"max"` | `(a,)` | `(axis, keepdims)` |
# | `a.reshape(*shape)` | `"reshape"` | `(a,)` | `None` (the input's shape is `_inputs[0].shape`) |
# | `a.transpose(*axes)`, `a.T` | `"transpose"` | `(a,)` | `axes` as given (a tuple, negative axes kept; `None` for reversed) |
# | `a[index]` | `"getitem"` | `(a,)` | `index` |
# | `a.exp()`, `a.log()` | `"exp"`, `"log"` | `(a,)` | `None` |
#
# A number or array on either side of `+ - * / @` is wrapped as a constant tensor
# (`requires_grad=False`) of the other side's float dtype: `x * 2` stays float32.
# Every result is a `Tensor`, and every operation keeps float32 data float32 (NumPy
# does that by itself when both sides are float32).
#
# ### Broadcasting
#
# `a + b` follows NumPy's broadcasting: shapes are lined up from the right, and a
# dimension of size 1 (or a missing one) is stretched. A `(64, 10)` batch plus a
# `(10,)` bias gives `(64, 10)`. Module 06 has to undo this stretching when the
# gradient flows back ("un-broadcasting"): the bias's gradient is summed over the
# batch.

# %% nbgrader={"grade": false, "grade_id": "tensor_class", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
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
        ### BEGIN SOLUTION
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
        ### END SOLUTION
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
        ### BEGIN SOLUTION
        return self.data.shape
        ### END SOLUTION

    @property
    def dtype(self) -> np.dtype:
        """The dtype of `data`."""
        ### BEGIN SOLUTION
        return self.data.dtype
        ### END SOLUTION

    @property
    def size(self) -> int:
        """Number of elements."""
        ### BEGIN SOLUTION
        return int(self.data.size)
        ### END SOLUTION

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
        ### BEGIN SOLUTION
        return Tensor._from_op(self.data + other.data, "add", (self, other))
        ### END SOLUTION

    def __radd__(self, other: Any) -> Tensor:
        return self._wrap(other).__add__(self)

    def __sub__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        ### BEGIN SOLUTION
        return Tensor._from_op(self.data - other.data, "sub", (self, other))
        ### END SOLUTION

    def __rsub__(self, other: Any) -> Tensor:
        return self._wrap(other).__sub__(self)

    def __mul__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        ### BEGIN SOLUTION
        return Tensor._from_op(self.data * other.data, "mul", (self, other))
        ### END SOLUTION

    def __rmul__(self, other: Any) -> Tensor:
        return self._wrap(other).__mul__(self)

    def __truediv__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        ### BEGIN SOLUTION
        return Tensor._from_op(self.data / other.data, "div", (self, other))
        ### END SOLUTION

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._wrap(other).__truediv__(self)

    def __neg__(self) -> Tensor:
        ### BEGIN SOLUTION
        return Tensor._from_op(-self.data, "neg", (self,))
        ### END SOLUTION

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"Tensor ** exponent: exponent must be a Python number, got {type(exponent).__name__}"
            )
        ### BEGIN SOLUTION
        return Tensor._from_op(self.data ** exponent, "pow", (self,), exponent)
        ### END SOLUTION

    # ---- matrix product -----------------------------------------------------------
    def __matmul__(self, other: Any) -> Tensor:
        other = self._wrap(other)
        a, b = self.shape, other.shape
        ### BEGIN SOLUTION
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
        ### END SOLUTION

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._wrap(other).__matmul__(self)

    def matmul(self, other: Any) -> Tensor:
        """Matrix product, the same as ``self @ other``."""
        return self.__matmul__(other)

    # ---- reductions -----------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all elements when None)."""
        _check_axis(axis, self.data.ndim, "sum")
        ### BEGIN SOLUTION
        return Tensor._from_op(
            np.asarray(self.data.sum(axis=axis, keepdims=keepdims)), "sum", (self,), (axis, keepdims)
        )
        ### END SOLUTION

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all elements when None)."""
        _check_axis(axis, self.data.ndim, "mean")
        ### BEGIN SOLUTION
        return Tensor._from_op(
            np.asarray(self.data.mean(axis=axis, keepdims=keepdims)), "mean", (self,), (axis, keepdims)
        )
        ### END SOLUTION

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis` (all elements when None)."""
        _check_axis(axis, self.data.ndim, "max")
        if self.data.size == 0:
            raise ValueError("max: the tensor is empty")
        ### BEGIN SOLUTION
        return Tensor._from_op(
            np.asarray(self.data.max(axis=axis, keepdims=keepdims)), "max", (self,), (axis, keepdims)
        )
        ### END SOLUTION

    # ---- shape ------------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        """The same numbers in a new shape (one dimension may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        ### BEGIN SOLUTION
        try:
            data = self.data.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {self.shape} ({self.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None
        return Tensor._from_op(data, "reshape", (self,))
        ### END SOLUTION

    def transpose(self, *axes: int) -> Tensor:
        """Permute the axes (NumPy's rule); with no argument, reverse them."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if axes and sorted(int(a) % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}"
            )
        ### BEGIN SOLUTION
        axes_or_none = tuple(int(a) for a in axes) if axes else None
        return Tensor._from_op(np.transpose(self.data, axes_or_none), "transpose", (self,), axes_or_none)
        ### END SOLUTION

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        ### BEGIN SOLUTION
        return Tensor._from_op(np.asarray(self.data[index]), "getitem", (self,), index)
        ### END SOLUTION

    # ---- elementwise functions ----------------------------------------------------------
    def exp(self) -> Tensor:
        """e to the power of each element."""
        ### BEGIN SOLUTION
        return Tensor._from_op(np.exp(self.data), "exp", (self,))
        ### END SOLUTION

    def log(self) -> Tensor:
        """Natural logarithm of each element."""
        ### BEGIN SOLUTION
        return Tensor._from_op(np.log(self.data), "log", (self,))
        ### END SOLUTION


# %% [markdown]
# ## 3. Creating tensors
#
# Try it: a tensor from a list is float32, from an integer NumPy array keeps its
# integers, and `dtype=` wins over both. A tensor made from a tensor keeps its dtype.

# %%
x = Tensor([[1, 2, 3], [4, 5, 6]])
labels = Tensor(np.array([0, 2, 1]))
precise = Tensor([0.1, 0.2], dtype=np.float64)
print(x)
print("shape", x.shape, "dtype", x.dtype, "size", x.size)
print("labels dtype", labels.dtype, "| precise dtype", precise.dtype)
print("Tensor(precise) dtype", Tensor(precise).dtype, "| Tensor(precise, dtype=np.float32) dtype",
      Tensor(precise, dtype=np.float32).dtype)

# %% nbgrader={"grade": true, "grade_id": "tensor_test_dtype", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert Tensor([[1, 2, 3], [4, 5, 6]]).dtype == np.float32, \
    "lists become float32. Hint: np.asarray(data, dtype=np.float32) (it copies only when it must convert)"
assert Tensor(np.array([1, 2])).dtype.kind == "i", "an integer NumPy array keeps its integer dtype"
assert Tensor(np.zeros(3)).dtype == np.float32, "a float64 array becomes float32"
assert Tensor([1.0], dtype=np.float64).dtype == np.float64, "dtype= wins"
arr32 = np.arange(4, dtype=np.float32)
assert np.shares_memory(Tensor(arr32).data, arr32), "a float32 array is shared, not copied (np.asarray)"
print("dtype rules: OK")
### BEGIN HIDDEN TESTS
# each row of the table, with other inputs
assert Tensor(7).dtype == np.float32 and Tensor(3.5).dtype == np.float32, \
    "Python numbers become float32 (first row of the table)"
assert Tensor(np.array([True, False])).dtype == np.bool_, "bool arrays keep their dtype (second row)"
assert Tensor(np.zeros(2, dtype=np.float16)).dtype == np.float32, "any float array becomes float32 (first row)"
assert Tensor([1, 2], dtype=np.int64).dtype == np.int64, "with dtype= given, that dtype (third row)"
arr_h = np.ones((2, 3), dtype=np.float32)
assert np.shares_memory(Tensor(arr_h).data, arr_h), "a float32 array is shared, not copied (np.asarray)"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_properties", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
t = Tensor([[1, 2, 3], [4, 5, 6]])
assert t.shape == (2, 3), f"shape: expected (2, 3), got {t.shape}"
assert t.dtype == np.float32, f"dtype: expected float32, got {t.dtype}"
assert t.size == 6 and type(t.size) is int, f"size: expected the int 6, got {t.size!r}"
assert t.requires_grad is False and t.grad is None, "a new tensor needs no gradient and has none"
print("properties: OK")
### BEGIN HIDDEN TESTS
# counted by hand
assert Tensor(3.5).shape == () and Tensor(3.5).size == 1, "a Python number gives a 0-d tensor: shape (), size 1"
t3 = Tensor(np.ones((2, 3, 4)))
assert t3.shape == (2, 3, 4) and t3.size == 24 and type(t3.size) is int, \
    f"shape is the array's shape and size the number of elements (a plain int), got {t3.shape}, {t3.size!r}"
assert Tensor(np.zeros(3, dtype=np.int64)).dtype == np.int64, "dtype reads the array's dtype"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Arithmetic and broadcasting
#
# Each operator computes with NumPy and records itself. Worked example: a batch of
# two rows plus a bias of three numbers: the bias is added to every row.

# %%
batch = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
bias = Tensor([10.0, 20.0, 30.0], requires_grad=True)
out = batch + bias
print(out)
print("recorded:", out._op, "from shapes", [t.shape for t in out._inputs])
print("x * 2 keeps float32:", (batch * 2).dtype)

# %% nbgrader={"grade": true, "grade_id": "tensor_test_arithmetic", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a = Tensor([1.0, 2.0, 3.0])
b = Tensor([4.0, 5.0, 6.0])
np.testing.assert_allclose((a + b).data, [5, 7, 9], err_msg="a + b")
np.testing.assert_allclose((a - b).data, [-3, -3, -3], err_msg="a - b")
np.testing.assert_allclose((a * b).data, [4, 10, 18], err_msg="a * b")
np.testing.assert_allclose((b / a).data, [4, 2.5, 2], err_msg="b / a")
np.testing.assert_allclose((2 - a).data, [1, 0, -1], err_msg="2 - a uses __rsub__")
a_rg = Tensor([1.0, 2.0], requires_grad=True)
assert [(a_rg + 1)._op, (a_rg - 1)._op, (a_rg * 1)._op, (a_rg / 1)._op] == ["add", "sub", "mul", "div"], \
    "record the ops 'add', 'sub', 'mul', 'div' (see the table)"
print("arithmetic: OK")
### BEGIN HIDDEN TESTS
# by hand: [2, -1] and [0.5, 4]
c = Tensor([2.0, -1.0])
d = Tensor([0.5, 4.0], requires_grad=True)
got = [np.asarray(r.data, dtype=np.float64).tolist() for r in (c + d, c - d, c * d, c / d)]
assert got == [[2.5, 3.0], [1.5, -5.0], [1.0, -4.0], [4.0, -0.25]], \
    f"a + b, a - b, a * b, a / b element by element, got {got}"
got = [np.asarray(r.data, dtype=np.float64).tolist() for r in (3 + c, 3 - c, 3 * c, 3 / d)]
assert got == [[5.0, 2.0], [1.0, 4.0], [6.0, -3.0], [6.0, 0.75]], \
    f"a number on the left works too (__radd__, __rsub__, ...), got {got}"
r = c * d
assert r._op == "mul" and r._inputs == (c, d) and r._ctx is None, \
    "c * d records op 'mul', _inputs (c, d) and _ctx None"
assert (c / d)._op == "div" and (c - d)._op == "sub" and (c + d)._op == "add", "record the names of the table"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_broadcasting", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
batch = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
out = batch + Tensor([10.0, 20.0, 30.0])
assert out.shape == (2, 3), f"(2, 3) + (3,) broadcasts to (2, 3), got {out.shape}"
assert np.array_equal(out.data, [[11, 22, 33], [14, 25, 36]]), f"the bias is added to every row, got {out.data.tolist()}"
assert (batch * 2).dtype == np.float32, f"batch * 2 should stay float32, got {(batch * 2).dtype}"
assert type(np.ones(3) + batch) is Tensor, "ndarray + Tensor gives a Tensor (via __radd__)"
print("broadcasting: OK")
### BEGIN HIDDEN TESTS
# broadcasting worked by hand: rows [1,2],[3,4] plus column [[10],[20]]
m = Tensor([[1.0, 2.0], [3.0, 4.0]])
got = np.asarray((m + Tensor([[10.0], [20.0]])).data, dtype=np.float64)
assert got.shape == (2, 2) and np.array_equal(got, [[11, 12], [23, 24]]), \
    f"(2, 2) + (2, 1) broadcasting: the column is added to every column, got {got.tolist()}"
got = np.asarray((m * Tensor([2.0, 3.0])).data, dtype=np.float64)
assert np.array_equal(got, [[2, 6], [6, 12]]), f"(2, 2) * (2,): the row multiplies every row, got {got.tolist()}"
assert (m / 3).dtype == np.float32 and (1.5 - m).dtype == np.float32, "numbers keep float32 results float32"
assert type(m + 1) is Tensor and type(1 + m) is Tensor, "results must be Tensors"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_neg_pow", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
np.testing.assert_allclose((-a).data, [-1, -2, -3], err_msg="-a")
np.testing.assert_allclose((a ** 2).data, [1, 4, 9], err_msg="a ** 2")
assert (-a)._op == "neg" and (-a)._inputs[:1] == (a,), "-a records op 'neg' with _inputs (a,)"
sq = a ** 2
assert sq._op == "pow" and sq._inputs[:1] == (a,) and sq._ctx == 2, "a ** 2 records op 'pow', _inputs (a,) and _ctx 2"
print("neg and pow: OK")
### BEGIN HIDDEN TESTS
m = Tensor([[1.0, 4.0], [9.0, 0.25]], requires_grad=True)
got = np.asarray((m ** 0.5).data, dtype=np.float64)
assert np.allclose(got, [[1, 2], [3, 0.5]], rtol=1e-6), f"m ** 0.5 is the square root of every element, got {got.tolist()}"
assert (m ** 0.5).dtype == np.float32, "a ** p keeps float32"
assert (m ** -1)._ctx == -1 and (m ** 3)._op == "pow", "pow records its exponent as _ctx"
assert np.array_equal(np.asarray((-m).data, dtype=np.float64), [[-1, -4], [-9, -0.25]]), "-m negates every element"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. The graph record
#
# An operation on tensors that need gradients records itself; with `no_grad()` or
# with inputs that need no gradient, nothing is kept.

# %%
w = Tensor([2.0, 3.0], requires_grad=True)
y = (w * Tensor([4.0, 5.0])).sum()
print("y =", y.item(), "| made by", y._op, "from", y._inputs[0]._op)
with no_grad():
    z = (w * 2).sum()
print("under no_grad:", z._op, z.requires_grad)

# %% nbgrader={"grade": true, "grade_id": "tensor_test_graph", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
w = Tensor([1.0, 2.0], requires_grad=True)
c = Tensor([3.0, 4.0])
p = w * c
assert p._inputs == (w, c), "the inputs must be the very tensors used"
assert p.requires_grad, "a result of an input that requires grad requires grad"
q = c * 3
assert q._op is None and q._inputs == () and not q.requires_grad, \
    "no input requires grad: nothing is recorded (Tensor._from_op decides)"
with no_grad():
    r = w * c
assert r._op is None and not r.requires_grad, "under no_grad() nothing is recorded"
print("graph record: OK")
### BEGIN HIDDEN TESTS
# every op of the table goes through Tensor._from_op: its result records or not, by the rule
s = (w - c).sum(axis=0, keepdims=True)
assert s._op == "sum" and s._inputs[0]._op == "sub" and s._inputs[0]._inputs[0] is w, \
    "a chain of ops records a chain: sum -> sub -> w"
with no_grad():
    quiet = [w + c, w - c, w * c, w / c, -w, w ** 2, w @ c, w.sum(), w.mean(), w.max(),
             w.reshape(2, 1), w.T, w[0], w.exp(), w.log()]
assert all(t._op is None and not t.requires_grad for t in quiet), \
    "under no_grad() no operation records anything: build every result with Tensor._from_op"
plain = [c + c, c - c, c * c, c / c, -c, c ** 2, c @ c, c.sum(), c.reshape(2, 1), c[0], c.exp()]
assert all(t._op is None and not t.requires_grad for t in plain), \
    "with no input that requires grad nothing is recorded: build every result with Tensor._from_op"
assert (w * c).requires_grad, "recording resumes after no_grad()"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Matrix products
#
# `a @ b` multiplies an `(n, k)` matrix by a `(k, m)` one: entry `(i, j)` is the dot
# product of row `i` of `a` and column `j` of `b`, `k` multiplications and additions.
# A layer of a network is exactly this: a batch `(64, 784)` times weights
# `(784, 128)`. Mismatched shapes are the most common bug in deep learning code, so
# the error must say which shapes met.
#
# `@` follows NumPy's `np.matmul`: a 1-D operand is a vector (two vectors give their
# dot product, a 0-d tensor), and stacks of matrices are multiplied matrix by matrix,
# their leading axes broadcast: `(5, 2, 3) @ (3, 4)` is `(5, 2, 4)`. When the inner
# dimensions differ, raise a `ValueError` that names both shapes.

# %%
A = Tensor([[1.0, 2.0], [3.0, 4.0]])
B = Tensor([[5.0, 6.0], [7.0, 8.0]])
print(A @ B)
try:
    Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
except ValueError as error:
    print("ValueError:", error)

# %% nbgrader={"grade": true, "grade_id": "tensor_test_matmul", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
A = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
B = Tensor([[5.0, 6.0], [7.0, 8.0]])
got = (A @ B).data
assert np.array_equal(got, [[19, 22], [43, 50]]), f"A @ B: expected [[19, 22], [43, 50]], got {got.tolist()}"
assert (A @ B)._op == "matmul" and (A @ B)._inputs[1:] == (B,), "record op 'matmul' with _inputs (A, B)"
assert float((Tensor([1.0, 2.0]) @ Tensor([3.0, 4.0])).item()) == 11.0, "(2,) @ (2,): the dot product 1*3 + 2*4 = 11"
print("matmul: OK")
### BEGIN HIDDEN TESTS
# by hand: [1,2,3] . [4,5,6] = 32; (1x3)@(3x2) with columns [1,0,1],[0,1,0]
v = Tensor([1.0, 2.0, 3.0])
got = float((v @ Tensor([4.0, 5.0, 6.0])).item())
assert got == 32.0, f"a vector times a vector is their dot product, got {got}"
M = Tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
got = np.asarray((v @ M).data, dtype=np.float64)
assert np.array_equal(got, [4, 2]), f"(3,) @ (3, 2) gives (2,): the vector times each column, got {got.tolist()}"
got = np.asarray((Tensor(np.ones((5, 2, 3))) @ Tensor(np.ones((3, 4)))).data)
assert got.shape == (5, 2, 4) and np.all(got == 3), \
    f"(5, 2, 3) @ (3, 4): a stack of matrix products (np.matmul), got shape {got.shape}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_matmul_errors", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
try:
    Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
except ValueError as error:
    assert "(2, 3)" in str(error) and "(4, 5)" in str(error), f"name both shapes in the error: {error}"
else:
    raise AssertionError("a (2, 3) @ (4, 5) product must raise ValueError")
print("matmul names mismatched shapes: OK")
### BEGIN HIDDEN TESTS
for left, right in (((2,), (3,)), ((3, 4), (3, 4)), ((2, 2, 5), (4, 1))):
    try:
        Tensor(np.ones(left)) @ Tensor(np.ones(right))
    except ValueError as error:
        assert str(left) in str(error) and str(right) in str(error), \
            f"a {left} @ {right} product: the ValueError must name both shapes, got: {error}"
    else:
        raise AssertionError(f"a {left} @ {right} product must raise ValueError")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Reductions, shapes and indexing
#
# `sum`, `mean` and `max` take an `axis` (or a tuple of axes, or `None` for all;
# negative axes count from the end) and `keepdims`. On a `(batch, features)`
# tensor, `axis=0` reduces over the batch (one number per feature), `axis=1` over
# the features (one per sample).
#
# `reshape` and `transpose` change how the same numbers are viewed: NumPy returns
# a *view* (no copy) whenever it can, which is why they are cheap. `reshape(*shape)`
# takes the sizes one by one or as a tuple, and one size may be `-1` (NumPy works it
# out); a shape with another number of elements is a `ValueError` that names both
# shapes. `transpose(*axes)` follows NumPy's rule (axes may be negative, counted
# from the end), with no axes it reverses them, like `.T`.
#
# `a[index]` takes anything NumPy takes: integers, slices, integer arrays ("fancy"
# indexing), boolean masks, and a Tensor (used as its array).

# %%
m = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
print("sum axis 0:", m.sum(axis=0).data, "| mean axis 1:", m.mean(axis=1).data, "| max:", m.max().item())
print("reshape (3, 2):", m.reshape(3, 2).data.tolist())
print("transpose:", m.T.shape, "| row 1:", m[1].data, "| column 2:", m[:, 2].data)

# %% nbgrader={"grade": true, "grade_id": "tensor_test_sum_mean", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
m = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
assert float(m.sum().item()) == 21.0, f"sum of all: expected 21, got {m.sum().item()}"
assert np.array_equal(m.sum(axis=0).data, [5, 7, 9]), f"sum axis 0: got {m.sum(axis=0).data}"
assert np.allclose(m.mean(axis=1).data, [3, 4]), f"mean axis 1: got {m.mean(axis=1).data}"
assert m.sum(axis=1, keepdims=True).shape == (2, 1), "keepdims keeps a dimension of size 1"
rec = m.mean(axis=1, keepdims=True)
assert rec._op == "mean" and rec._ctx == (1, True), f"mean records op 'mean' and _ctx (axis, keepdims), got {rec._op}, {rec._ctx}"
print("sum and mean: OK")
### BEGIN HIDDEN TESTS
t3 = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
# sum over axes (0, 2) of arange(24).reshape(2,3,4): row j sums 4j..4j+3 and 12+4j..15+4j
got = np.asarray(t3.sum(axis=(0, 2)).data, dtype=np.float64)
assert np.array_equal(got, [60, 92, 124]), f"sum over a tuple of axes (0, 2): got {got.tolist()}"
assert float(t3.mean().item()) == 11.5, "mean() with axis None averages all elements"
assert t3.mean(axis=-1, keepdims=True).shape == (2, 3, 1), "a negative axis counts from the end; keepdims keeps it as 1"
assert t3.sum().shape == () and t3.sum().dtype == np.float32, "a full reduction gives a 0-d float32 tensor"
assert t3.sum(axis=(0, 2))._ctx == ((0, 2), False) and t3.sum()._op == "sum", \
    "sum records op 'sum' and _ctx (axis, keepdims), axis as given"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_max", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
m = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
assert np.array_equal(m.max(axis=1).data, [5, 6]), f"max axis 1: got {m.max(axis=1).data}"
assert float(m.max().item()) == 6.0, f"max of all: expected 6, got {m.max().item()}"
assert m.max(axis=0, keepdims=True).shape == (1, 3), "keepdims keeps a dimension of size 1"
assert m.max(axis=0)._op == "max" and m.max(axis=0)._ctx == (0, False), "record op 'max' and _ctx (axis, keepdims)"
print("max: OK")
### BEGIN HIDDEN TESTS
t3 = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
got = np.asarray(t3.max(axis=(0, 2)).data, dtype=np.float64)
assert np.array_equal(got, [15, 19, 23]), f"max over a tuple of axes (0, 2): got {got.tolist()}"
assert t3.max(axis=-1, keepdims=True).shape == (2, 3, 1), "a negative axis counts from the end; keepdims keeps it as 1"
assert float(t3.max().item()) == 23.0 and t3.max().dtype == np.float32, "max() over everything: a 0-d float32 tensor"
assert t3.max()._ctx == (None, False), "max records _ctx (axis, keepdims)"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_reshape", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
m = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
assert m.reshape(3, 2).shape == (3, 2) and m.reshape((6,)).shape == (6,) and m.reshape(-1, 1).shape == (6, 1)
assert np.array_equal(m.reshape(3, 2).data, [[1, 5], [3, 4], [2, 6]]), "reshape keeps the numbers in order"
assert m.reshape(6)._op == "reshape" and m.reshape(6)._inputs[:1] == (m,), "record op 'reshape' with _inputs (m,)"
try:
    m.reshape(4, 2)
except ValueError as error:
    assert "(2, 3)" in str(error), f"name the original shape in the error: {error}"
else:
    raise AssertionError("reshaping 6 elements into (4, 2) must raise ValueError")
print("reshape: OK")
### BEGIN HIDDEN TESTS
t3 = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
got = np.asarray(t3.reshape(4, -1).data, dtype=np.float64)
assert got.shape == (4, 6) and float(got[2, 1]) == 13.0, f"reshape(4, -1) of 24 numbers: shape (4, 6), same order, got {got.shape}"
assert t3.reshape((3, 8)).shape == (3, 8), "reshape also takes the shape as one tuple"
try:
    t3.reshape(5, 5)
except ValueError as error:
    assert "(2, 3, 4)" in str(error) and "(5, 5)" in str(error), f"the ValueError must name both shapes, got: {error}"
else:
    raise AssertionError("reshaping 24 elements into (5, 5) must raise ValueError")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_transpose", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
m = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
assert np.array_equal(m.T.data, [[1, 4], [5, 2], [3, 6]]), f"transpose: got {m.T.data.tolist()}"
t3 = Tensor(np.zeros((2, 3, 4)), requires_grad=True)
assert t3.transpose(1, 0, 2).shape == (3, 2, 4), "transpose(1, 0, 2): axis 1 first, then 0, then 2"
assert t3.transpose(-1, 0, 1).shape == (4, 2, 3), "a negative axis counts from the end"
assert t3.transpose(2, 0, 1)._op == "transpose" and t3.transpose(2, 0, 1)._ctx == (2, 0, 1), "record the axes as _ctx"
assert t3.T._ctx is None, "with no axes (reversed), _ctx is None"
print("transpose: OK")
### BEGIN HIDDEN TESTS
ref = np.arange(24).reshape(2, 3, 4)
t3 = Tensor(ref.astype(np.float32), requires_grad=True)
assert float(t3.transpose(2, 0, 1)[3, 1, 2].item()) == float(ref[1, 2, 3]), \
    "transpose(2, 0, 1): element [i, j, k] of the result is element [j, k, i] of the input"
assert t3.T.shape == (4, 3, 2) and t3.transpose().shape == (4, 3, 2), "no axes: reverse them"
assert t3.transpose((0, 2, 1)).shape == (2, 4, 3), "the axes may come as one tuple"
assert t3.transpose(0, -1, -2).shape == (2, 4, 3), "negative axes count from the end"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_getitem", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
m = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
assert np.array_equal(m[0].data, [1, 5, 3]) and float(m[1, 2].item()) == 6.0, "indexing: a row, an element"
assert np.array_equal(m[:, 2].data, [3, 6]), f"slicing: column 2, got {m[:, 2].data}"
assert np.array_equal(m[np.array([1, 1])].data, [[4, 2, 6], [4, 2, 6]]), "fancy indexing: row 1 twice"
assert m[1]._op == "getitem" and m[1]._ctx == 1, "record op 'getitem' with the index as _ctx"
print("indexing: OK")
### BEGIN HIDDEN TESTS
t3 = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
assert t3[:, 1:, ::2].shape == (2, 2, 2), f"slices with steps, got {t3[:, 1:, ::2].shape}"
got = np.asarray(t3[np.array([1, 0]), 0, 0].data, dtype=np.float64)
assert np.array_equal(got, [12, 0]), f"an integer array picks positions (fancy indexing), got {got.tolist()}"
got = np.asarray(t3[t3.data > 20].data, dtype=np.float64)
assert np.array_equal(got, [21, 22, 23]), f"a boolean mask picks the True positions, got {got.tolist()}"
assert t3[Tensor(np.array([1]))].shape == (1, 3, 4), "a Tensor used as an index works like its array"
assert t3[0, 2]._ctx == (0, 2), "getitem records the index as given (here the tuple (0, 2))"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "tensor_test_exp_log", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
e = Tensor([0.0, 1.0, 2.0], requires_grad=True)
assert np.allclose(e.exp().data, np.exp([0.0, 1.0, 2.0])), f"exp: got {e.exp().data}"
assert np.allclose(Tensor([1.0, np.e]).log().data, [0.0, 1.0]), "log(1) = 0, log(e) = 1"
assert e.exp().dtype == np.float32, "exp keeps float32"
pos = Tensor([0.5, 2.0], requires_grad=True)
assert pos.exp()._op == "exp" and pos.log()._op == "log" and pos.log()._inputs[:1] == (pos,), "record ops 'exp' and 'log'"
print("exp and log: OK")
### BEGIN HIDDEN TESTS
got = float(Tensor([2.0]).log().exp().item())
assert abs(got - 2.0) < 1e-6, f"exp(log(x)) gives x back, got {got} for x = 2"
x64 = Tensor([[0.5, 3.0]], dtype=np.float64)
got = np.asarray(x64.log().data, dtype=np.float64)
assert x64.exp().dtype == np.float64 and x64.log().shape == (1, 2), "float64 stays float64, the shape is kept"
assert np.allclose(got, [[-0.6931471805599453, 1.0986122886681098]], rtol=1e-12), \
    f"log is the natural logarithm of every element, got {got.tolist()}"
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Systems: what a tensor costs
#
# **Memory.** A tensor costs `size x itemsize` bytes: 4 per float32 number, 8 per
# float64. The weights of a `784 -> 128` layer are 100,352 numbers: 392 KiB in
# float32, 784 KiB in float64. Below we measure it with `.data.nbytes`.
#
# **Views.** `reshape`, `transpose` and basic slicing share memory with their input
# (no copy); fancy indexing (`t[[0, 2]]`) copies.
#
# **Time.** A matrix product of `(n, n)` by `(n, n)` does `2 n^3` floating-point
# operations (a multiply and an add per term). Doubling `n` makes it 8 times the work.
# The plot measures how many of those NumPy (through its BLAS) gets done per second.

# %%
layer = Tensor(np.zeros((784, 128)))
print(f"784x128 float32: {layer.data.nbytes:,} bytes; float64 would be {layer.data.nbytes * 2:,}")
print("reshape shares memory:", np.shares_memory(layer.reshape(-1).data, layer.data))
print("fancy indexing copies:", not np.shares_memory(layer[np.array([0, 1])].data, layer.data))

# %%
import time

import matplotlib.pyplot as plt

sizes = [32, 64, 128, 256, 384, 512]
gflops = []
rng = np.random.default_rng(0)
for n in sizes:
    a_n = Tensor(rng.standard_normal((n, n)))
    b_n = Tensor(rng.standard_normal((n, n)))
    repeats = max(1, int(2e7 // n**3))
    start = time.perf_counter()
    for _ in range(repeats):
        a_n @ b_n
    seconds = (time.perf_counter() - start) / repeats
    gflops.append(2 * n**3 / seconds / 1e9)
plt.figure(figsize=(6, 3.5))
plt.plot(sizes, gflops, marker="o")
plt.xlabel("n (multiplying two n x n float32 matrices)")
plt.ylabel("GFLOP/s")
plt.title("Bigger matrices use the hardware better")
plt.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Small products are dominated by fixed costs (Python, the call into BLAS); large
# ones approach the machine's arithmetic speed. That is why deep learning batches
# its data: one `(64, 784) @ (784, 128)` product is far faster than 64 separate
# vector products.
#
# ## Summary
#
# You built a Tensor that holds float32 data, does arithmetic with broadcasting,
# matrix products, reductions, reshapes and indexing, and records the graph of every
# operation. Module 02 builds activation functions on it; module 06 walks the graph
# backwards to compute gradients.
