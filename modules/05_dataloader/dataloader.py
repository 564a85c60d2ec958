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
# # Module 05: DataLoader
#
# A network does not learn from the whole data set at once, nor from one example
# at a time: it learns from **mini-batches**, a few dozen examples stacked into one
# array. Batches are big enough for fast matrix products and for a gradient that is
# not too noisy, and small enough to take many steps per pass over the data.
#
# Feeding batches looks like a detail, but it decides three things that matter:
#
# * **correctness**: every example is seen exactly once per pass (an *epoch*), and
#   the inputs and their labels stay together;
# * **reproducibility**: the shuffled order of every epoch can be recomputed, so a
#   run stopped and resumed from a checkpoint sees the same batches;
# * **speed**: a batch is cut out of the arrays with one NumPy operation, not a
#   Python loop over samples.
#
# You build:
#
# 1. **`Dataset`**: what a data set is (anything with `len()` and indexing);
# 2. **`TensorDataset`**: a data set made of arrays that share their first dimension;
# 3. **`DataLoader`**: batches, shuffling with its own seeded generator, epochs, and a
#    state dict for checkpoints.
#
# **What you need**: module 01 (`Tensor`).

# %% nbgrader={"grade": false, "grade_id": "dataloader_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. What is a data set?
#
# For the loader, a data set is anything that answers two questions:
# *how many examples are there?* (`len(dataset)`) and *give me example i*
# (`dataset[i]`). An example is usually a tuple `(input, target)`.
#
# Python calls such an informal interface a **protocol**. `typing.Protocol` writes it
# down; with `@runtime_checkable`, `isinstance(obj, Dataset)` checks that the two
# methods exist. No class has to inherit from `Dataset`: a list of pairs is a
# data set too.
#
# The cell also gives `_as_array`, the rule that turns data into arrays the way
# `Tensor` would: floating data becomes float32, integer and bool arrays (class
# labels, masks) keep their dtype, and a `Tensor` keeps the dtype it already has.

# %% nbgrader={"grade": false, "grade_id": "dataloader_dataset_protocol", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
@runtime_checkable
class Dataset(Protocol):
    """Anything with `len(dataset)` and `dataset[i]` (one example, often a tuple)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> Any: ...


def _as_array(value: Any, where: str) -> np.ndarray:
    """`value` as an array with Tensor's dtype rule: floating -> float32, integer/bool kept,
    a Tensor's data as it is (no copy when nothing changes)."""
    if isinstance(value, Tensor):
        return value.data
    array = np.asarray(value)
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32, copy=False)
    if kind in "iub":
        return array
    raise TypeError(f"{where}: expected numbers, got an array of dtype {array.dtype}")

# %% [markdown]
# ## 2. TensorDataset: arrays that belong together
#
# The most common data set is a few arrays with **one row per example**: images
# `X` of shape `(N, 784)` and labels `y` of shape `(N,)`. Example `i` is
# `(X[i], y[i])`. The one thing that can go wrong is arrays of different lengths:
# then some inputs would have no label, and an error at construction is much
# better than a mysterious one in the middle of training. The error names every
# length, so you can see which array is off.
#
# Conversion happens **once**, here: float64 data is turned into float32 when the
# data set is built, not again for every batch. An array that already has the right
# dtype (float32 data, integer labels) is stored as it is, without a copy: a data set
# of a large array costs no second copy of it. The given `_as_array` does exactly this.
#
# Two mistakes are refused with a `ValueError`: no arrays at all, and arrays of
# different lengths (the message lists every array's length).
#
# `__getitem__` simply indexes every array with the same index and returns the
# tuple. Because NumPy indexing accepts an integer, a slice or an array of indices,
# `dataset[5]`, `dataset[0:64]` and `dataset[np.array([3, 1, 2])]` all work: the last
# two return whole batches at once, which the loader will use.
#
# ```python
# ds = TensorDataset(np.zeros((4, 2)), np.array([0, 1, 1, 0]))
# len(ds)   # 4
# ds[1]     # (array([0., 0.], dtype=float32), np.int64(1))
# ```

# %% nbgrader={"grade": false, "grade_id": "dataloader_tensordataset", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class TensorDataset:
    """A data set of arrays (or Tensors) sharing their first dimension: example i is
    `tuple(array[i] for array in arrays)`.

    Floating arrays are stored as float32, integer/bool arrays keep their dtype, Tensors
    keep theirs. Raises ValueError for no arrays or different first dimensions.
    """

    def __init__(self, *arrays: Any) -> None:
        self.arrays: tuple[np.ndarray, ...]
        ### BEGIN SOLUTION
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array, got none")
        converted = tuple(_as_array(a, f"TensorDataset: array {i}") for i, a in enumerate(arrays))
        for i, array in enumerate(converted):
            if array.ndim == 0:
                raise ValueError(
                    f"TensorDataset: array {i} is a single number (shape ()), expected one row per example"
                )
        lengths = [len(array) for array in converted]
        if len(set(lengths)) > 1:
            listed = ", ".join(f"array {i}: {n}" for i, n in enumerate(lengths))
            raise ValueError(
                f"TensorDataset: all arrays must have the same first dimension (one row per example), "
                f"got lengths {listed}"
            )
        self.arrays = converted
        ### END SOLUTION

    def __len__(self) -> int:
        """Number of examples (the common first dimension)."""
        ### BEGIN SOLUTION
        return len(self.arrays[0])
        ### END SOLUTION

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        """Row(s) `index` of every array: an int gives one example, a slice or an index array a batch."""
        ### BEGIN SOLUTION
        return tuple(array[index] for array in self.arrays)
        ### END SOLUTION

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.shape} {a.dtype}" for a in self.arrays)
        return f"TensorDataset({shapes})"

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_tensordataset", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(12, dtype=np.float64).reshape(6, 2)
y = np.array([0, 1, 2, 0, 1, 2])
ds = TensorDataset(X, y)
assert len(ds) == 6, f"len(TensorDataset) should be the number of rows, 6; got {len(ds)}"
xi, yi = ds[2]
assert np.asarray(xi, dtype=np.float64).tolist() == [4.0, 5.0] and int(yi) == 2, f"ds[2] should be ([4., 5.], 2), got ({xi}, {yi})"
xb, yb = ds[1:3]
assert np.asarray(xb, dtype=np.float64).tolist() == [[2.0, 3.0], [4.0, 5.0]] and yb.tolist() == [1, 2], (
    f"ds[1:3] should be rows 1 and 2 of every array, got ({xb}, {yb})"
)
### BEGIN HIDDEN TESTS
# an index array gives a batch at once: rows 4, 0 of X are [8, 9] and [0, 1] (X = arange(12) in rows of 2)
xb, yb = ds[np.array([4, 0])]
assert np.asarray(xb, dtype=np.float64).tolist() == [[8.0, 9.0], [0.0, 1.0]] and yb.tolist() == [1, 0], (
    f"an index array should give those rows of every array, got ({xb}, {yb})"
)
# three arrays: an example is a 3-tuple
three = TensorDataset(np.zeros((3, 2)), np.arange(3), np.arange(3) * 10)
assert len(three) == 3 and len(three[1]) == 3 and int(three[1][2]) == 10, (
    f"with three arrays, example 1 should be a 3-tuple ending in 10, got {three[1]}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_tensordataset_dtypes", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(12, dtype=np.float64).reshape(6, 2)
y = np.array([0, 1, 2, 0, 1, 2])
ds = TensorDataset(X, y)
assert ds.arrays[0].dtype == np.float32, f"float64 data should be stored as float32 (Tensor's rule), got {ds.arrays[0].dtype}"
assert ds.arrays[1].dtype == y.dtype, f"integer labels keep their dtype {y.dtype}, got {ds.arrays[1].dtype}"
assert ds.arrays[1] is y, "an array that already has the right dtype is stored as it is, without a copy"
### BEGIN HIDDEN TESTS
# a Tensor keeps its dtype, a list of floats becomes float32, bool stays bool
t64 = Tensor(np.ones((3, 2)), dtype=np.float64)
ds2 = TensorDataset(t64, [1.0, 2.0, 3.0], np.array([True, False, True]))
assert [a.dtype for a in ds2.arrays] == [np.float64, np.float32, np.bool_], (
    f"dtypes of a float64 Tensor, a list of floats and a bool array: expected float64, float32, bool, "
    f"got {[a.dtype for a in ds2.arrays]}"
)
# float32 data is not copied
X32 = np.zeros((5, 3), dtype=np.float32)
assert TensorDataset(X32).arrays[0] is X32, "float32 data should be stored as it is, without a copy"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_tensordataset_errors", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
try:
    TensorDataset(np.zeros((6, 2)), np.zeros(5))
except ValueError as error:
    assert "6" in str(error) and "5" in str(error), f"the error should show both lengths, 6 and 5: {error}"
else:
    raise AssertionError("arrays with 6 and 5 rows must raise ValueError")
### BEGIN HIDDEN TESTS
try:
    TensorDataset()
except ValueError:
    pass
else:
    raise AssertionError("TensorDataset() with no arrays must raise ValueError")
# three arrays: every length is named
try:
    TensorDataset(np.zeros(3), np.zeros(3), np.zeros(7))
except ValueError as error:
    assert "7" in str(error) and "3" in str(error), f"the error should list every length (here 3, 3 and 7): {error}"
else:
    raise AssertionError("arrays of different lengths must raise ValueError")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. DataLoader: batches, shuffling and epochs
#
# `DataLoader(dataset, batch_size=32, shuffle=False, drop_last=False, seed=None)`
# turns a data set into batches. Iterating over it gives one epoch:
#
# ```python
# for inputs, targets in loader:     # each a Tensor with batch_size rows
#     ...
# ```
#
# ### Batches
#
# With `N` examples and batch size `B`, the batches cover positions
# `[0, B), [B, 2B), ...`. The last batch is smaller when `B` does not divide `N`;
# `drop_last=True` skips it (some training tricks want equal batch sizes).
# `len(loader)` is the number of batches: `ceil(N / B)`, or `floor(N / B)` with
# `drop_last`. Example: `N = 10`, `B = 4` gives batches of 4, 4, 2 (3 batches), or
# 4, 4 with `drop_last` (2 batches).
#
# ### Shuffling you can reproduce
#
# Data are often sorted (all the zeros, then all the ones...). Unshuffled, every batch
# would hold one class and the gradient would swing from class to class. So each
# epoch visits the examples in a new random order.
#
# The order must be reproducible, and it must not depend on anything outside the
# loader (NumPy's global generator, how many random numbers the model drew before).
# So the loader owns its randomness: the order of epoch `e` is a function of the
# loader's `seed` and `e` alone,
#
# ```python
# order = np.random.default_rng([seed, e]).permutation(N)
# ```
#
# A fresh generator per epoch, seeded by the pair: epoch 7 can be computed without
# drawing epochs 0 to 6 first, which is what resuming from a checkpoint needs.
# With `seed=None` the loader draws a seed once, at construction
# (`np.random.SeedSequence().entropy`, a large random integer), and keeps it in
# `self.seed`, so even an "unseeded" run can be saved and repeated.
#
# ### Epochs
#
# The loader counts epochs in `self.epoch` (starting at 0). **Creating an iterator**
# (`iter(loader)`, which a `for` loop does) uses the order of the current epoch and
# then advances `epoch` by one. So two `for` loops over the loader see two epochs
# with two different orders. `set_epoch(e)` jumps to epoch `e`.
#
# ### Fast batches
#
# For a `TensorDataset` (`isinstance(dataset, TensorDataset)`, subclasses included) the
# loader cuts each batch out of each of its `arrays` with **one** NumPy operation: a
# slice `array[start:stop]` when not shuffled (a view: the batch shares memory with the
# data set, nothing is copied), or fancy indexing `array[order[start:stop]]` when
# shuffled (one copy of the batch). It never calls `dataset[i]` for a `TensorDataset`.
# Other data sets get the generic path: fetch the examples one by one with
# `dataset[i]` and stack each field with `np.stack` (given, `_collate`); they use the
# same order of epoch `e`.
#
# Each batch is a tuple of `Tensor`s, one per array: `(inputs, targets)` for two
# arrays. Dtypes are those of the data set: float32 inputs, integer labels, and float64
# inputs for a data set built from a float64 `Tensor`. So wrap each batch with
# `Tensor(batch, dtype=array.dtype)`: a plain `Tensor(batch)` would apply Tensor's rule
# again and turn float64 rows into float32 (the given `_collate` does the same for
# other data sets).
#
# ### Checking the arguments
#
# The constructor is where mistakes are cheapest to catch. Refuse an empty data set
# (`ValueError`, say it is empty), and check `batch_size` (an `int >= 1`; `True` is an
# `int` in Python but certainly not a batch size), `shuffle`, `drop_last` and `seed`
# with the given helpers `_check_int(name, value, minimum)` and `_check_bool(name, value)`:
# their errors name the argument and the value. Then draw the seed if it is None and
# start at epoch 0.
#
# ### A state dict
#
# `state_dict()` returns the five settings that decide the batches, as plain JSON values:
#
# ```python
# {"seed": 7, "epoch": 2, "batch_size": 6, "shuffle": True, "drop_last": False}
# ```
#
# `load_state_dict(state)` restores all five. It checks first and changes nothing when
# the state does not fit, in this order:
#
# 1. the keys: every missing and every unexpected key, named together in one
#    `ValueError`;
# 2. the values, in the order `seed`, `epoch`, `batch_size`, `shuffle`, `drop_last`,
#    each with the same check as in the constructor (`_check_int`, `_check_bool`), so
#    with the same error: a `TypeError` for a value of the wrong type, a `ValueError`
#    for a number out of range, naming the key and the value. The first bad value
#    raises. A `seed` of `None` is refused like any other non-integer (a `TypeError`):
#    a saved state always holds the seed that was used, never `None`;
# 3. last, as in the constructor, `drop_last=True` with a `batch_size` larger than
#    the data set (a `ValueError`: no batch at all).

# %% nbgrader={"grade": false, "grade_id": "dataloader_dataloader", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _check_int(name: str, value: Any, minimum: int) -> int:
    """`value` as an int >= minimum, or an error naming the argument and value (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"DataLoader: {name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"DataLoader: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    """`value` if it is True or False, else a TypeError naming the argument."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"DataLoader: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _collate(examples: list[Any]) -> tuple[Tensor, ...]:
    """Given: stack a list of examples (tuples of fields, or single values) into a tuple of
    Tensors, one per field."""
    first = examples[0]
    if not isinstance(first, (tuple, list)):
        examples = [(example,) for example in examples]
        first = examples[0]
    n_fields = len(first)
    for i, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != n_fields:
            raise ValueError(
                f"DataLoader: every example must have {n_fields} fields like the first one, "
                f"example {i} of the batch is {type(example).__name__} of length "
                f"{len(example) if isinstance(example, (tuple, list)) else 1}"
            )
    batch = []
    for field in zip(*examples, strict=True):
        if isinstance(field[0], Tensor):
            stacked = np.stack([value.data for value in field])
        else:
            stacked = _as_array(np.stack(field), "DataLoader")
        batch.append(Tensor(stacked, dtype=stacked.dtype))
    return tuple(batch)


class DataLoader:
    """Iterate over a data set in batches of Tensors.

    Args:
        dataset: anything with `len()` and `[i]`; a TensorDataset is batched without a
            Python loop over examples.
        batch_size: examples per batch (int >= 1).
        shuffle: visit the examples in a new order each epoch.
        drop_last: skip the last batch if it is smaller than batch_size.
        seed: seed of the shuffling (int >= 0); None draws one now and keeps it.

    The order of epoch e is `np.random.default_rng([seed, e]).permutation(len(dataset))`.
    Creating an iterator uses the current `epoch` and then advances it by one.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"DataLoader: dataset must have __len__ and __getitem__, got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size: int
        self.shuffle: bool
        self.drop_last: bool
        self.seed: int
        self.epoch: int
        ### BEGIN SOLUTION
        if len(dataset) == 0:
            raise ValueError("DataLoader: dataset is empty (len(dataset) == 0), there is nothing to batch")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = _check_bool("shuffle", shuffle)
        self.drop_last = _check_bool("drop_last", drop_last)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self.seed = _check_int("seed", seed, 0)
        self.epoch = 0
        ### END SOLUTION
        self._check_not_empty()

    def _check_not_empty(self) -> None:
        """Given: refuse a setting that would give no batch at all."""
        if self.drop_last and len(self.dataset) < self.batch_size:
            raise ValueError(
                f"DataLoader: drop_last=True with batch_size={self.batch_size} and only "
                f"{len(self.dataset)} examples gives no batch at all; use a smaller batch_size"
            )

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        ### BEGIN SOLUTION
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)
        ### END SOLUTION

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order in which epoch `epoch` visits the examples: a permutation of
        0..N-1 from `default_rng([seed, epoch])` when shuffling, else 0, 1, ..., N-1."""
        epoch = _check_int("epoch", epoch, 0)
        ### BEGIN SOLUTION
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)
        ### END SOLUTION

    def set_epoch(self, epoch: int) -> None:
        """Make the next iterator use the order of epoch `epoch`."""
        self.epoch = _check_int("epoch", epoch, 0)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        """Batches of the current epoch; advances `epoch` by one right away."""
        ### BEGIN SOLUTION
        epoch = self.epoch
        self.epoch = epoch + 1
        return self._batches(epoch)
        ### END SOLUTION

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, ...]]:
        """Generator of the batches of epoch `epoch`."""
        n = len(self.dataset)
        size = self.batch_size
        stop = n - n % size if self.drop_last else n
        order = self.epoch_order(epoch) if self.shuffle else None
        ### BEGIN SOLUTION
        if isinstance(self.dataset, TensorDataset):
            arrays = self.dataset.arrays
            for start in range(0, stop, size):
                rows = slice(start, start + size) if order is None else order[start : start + size]
                yield tuple([Tensor(array[rows], dtype=array.dtype) for array in arrays])
        else:
            dataset = self.dataset
            for start in range(0, stop, size):
                end = min(start + size, n)
                indices = range(start, end) if order is None else order[start:end].tolist()
                yield _collate([dataset[i] for i in indices])
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to repeat the batches: seed, epoch, batch_size, shuffle, drop_last."""
        ### BEGIN SOLUTION
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }
        ### END SOLUTION

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict()`: checks every key and value first, then sets them all."""
        if not isinstance(state, Mapping):
            raise TypeError(f"DataLoader.load_state_dict: state must be a dict, got {type(state).__name__}")
        ### BEGIN SOLUTION
        expected = ["seed", "epoch", "batch_size", "shuffle", "drop_last"]
        missing = [key for key in expected if key not in state]
        unexpected = [key for key in state if key not in expected]
        if missing or unexpected:
            raise ValueError(
                f"DataLoader.load_state_dict: expected keys {expected}; "
                f"missing {missing}, unexpected {unexpected}"
            )
        seed = _check_int("seed", state["seed"], 0)
        epoch = _check_int("epoch", state["epoch"], 0)
        batch_size = _check_int("batch_size", state["batch_size"], 1)
        shuffle = _check_bool("shuffle", state["shuffle"])
        drop_last = _check_bool("drop_last", state["drop_last"])
        if drop_last and len(self.dataset) < batch_size:
            raise ValueError(
                f"DataLoader.load_state_dict: drop_last=True with batch_size={batch_size} and only "
                f"{len(self.dataset)} examples gives no batch at all"
            )
        self.seed, self.epoch, self.batch_size = seed, epoch, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        ### END SOLUTION

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, epoch={self.epoch})"
        )

# %% [markdown]
# Try it: ten examples in batches of four.

# %%
X = np.arange(20, dtype=np.float32).reshape(10, 2)
y = np.arange(10) % 3
loader = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=0)
print(loader, "->", len(loader), "batches")
for inputs, targets in loader:
    print("inputs", inputs.shape, inputs.dtype, "targets", targets.data, targets.dtype)
print("epoch is now", loader.epoch, "; order of epoch 0:", loader.epoch_order(0))

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_batches", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
X = np.arange(20, dtype=np.float32).reshape(10, 2)
y = np.arange(10)
loader = DataLoader(TensorDataset(X, y), batch_size=4)
batches = list(loader)
assert len(loader) == 3 and len(batches) == 3, f"10 examples in batches of 4: 3 batches (4, 4, 2), got len {len(loader)}, {len(batches)} yielded"
assert all(isinstance(b, tuple) and len(b) == 2 and all(isinstance(t, Tensor) for t in b) for b in batches), (
    "each batch is a tuple of Tensors (inputs, targets)"
)
assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)], f"input shapes should be (4, 2), (4, 2), (2, 2), got {[b[0].shape for b in batches]}"
assert batches[0][1].data.tolist() == [0, 1, 2, 3], f"unshuffled, the first batch holds examples 0-3, got targets {batches[0][1].data.tolist()}"
for data_set, want in ((TensorDataset(X, y), (np.float32, y.dtype)),
                       (TensorDataset(Tensor(X, dtype=np.float64), y), (np.float64, y.dtype))):
    first = next(iter(DataLoader(data_set, batch_size=4)))
    assert (first[0].dtype, first[1].dtype) == want, (
        f"batches keep the data set's dtypes {want}, got {first[0].dtype} / {first[1].dtype}. "
        "Hint: Tensor(batch, dtype=array.dtype)"
    )
### BEGIN HIDDEN TESTS
# the last batch holds rows 8 and 9 of X: [16, 17], [18, 19]
assert np.asarray(batches[2][0].data, dtype=np.float64).tolist() == [[16.0, 17.0], [18.0, 19.0]], (
    f"the last, shorter batch should hold the last examples, got {batches[2][0].data.tolist()}"
)
# lengths in closed form for many sizes: ceil(n / b) batches
for n in (1, 5, 7, 64, 65):
    for b in (1, 3, 7, 64):
        loader_n = DataLoader(TensorDataset(np.zeros(n)), batch_size=b)
        assert len(loader_n) == -(-n // b) == len(list(loader_n)), (
            f"n={n}, b={b}: expected ceil(n / b) = {-(-n // b)} batches, got len {len(loader_n)}"
        )
# one array gives 1-tuples; a batch larger than the data set gives one batch with everything
single = next(iter(DataLoader(TensorDataset(Tensor(X, dtype=np.float64)), batch_size=3, shuffle=True, seed=1)))
assert isinstance(single, tuple) and len(single) == 1 and single[0].shape == (3, 2) and single[0].dtype == np.float64, \
    "one array in, batches are (inputs,), with the data set's dtype (float64 here, also shuffled)"
whole = list(DataLoader(TensorDataset(X, y), batch_size=100))
assert len(whole) == 1 and whole[0][0].shape == (10, 2), "batch_size=100 on 10 examples: one batch of 10"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_drop_last", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(20, dtype=np.float32).reshape(10, 2)
y = np.arange(10)
loader = DataLoader(TensorDataset(X, y), batch_size=4, drop_last=True)
kept = [b[1].data.tolist() for b in loader]
assert len(loader) == 2 and kept == [[0, 1, 2, 3], [4, 5, 6, 7]], (
    f"with drop_last, 10 examples in batches of 4 give 10 // 4 = 2 batches, [[0..3], [4..7]]; "
    f"got len {len(loader)} and {kept}"
)
### BEGIN HIDDEN TESTS
for n in (5, 7, 64, 65):
    for b in (1, 3, 5):
        loader_d = DataLoader(TensorDataset(np.arange(n)), batch_size=b, drop_last=True)
        got = [t.data.tolist() for (t,) in loader_d]
        assert len(loader_d) == n // b == len(got) and all(len(batch) == b for batch in got), (
            f"n={n}, b={b}, drop_last: expected n // b = {n // b} full batches, got len {len(loader_d)} "
            f"and sizes {[len(batch) for batch in got]}"
        )
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_fast_batches", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(20, dtype=np.float32).reshape(10, 2)
y = np.arange(10)
inputs, targets = next(iter(DataLoader(TensorDataset(X, y), batch_size=4)))
assert np.shares_memory(inputs.data, X) and np.shares_memory(targets.data, y), (
    "unshuffled batches of a TensorDataset are slices of its arrays: views that share memory with them"
)
### BEGIN HIDDEN TESTS
# a TensorDataset (here a subclass that counts its calls) is batched by indexing its arrays,
# never example by example
calls = []


class CountingDataset(TensorDataset):
    def __getitem__(self, index):
        calls.append(index)
        return super().__getitem__(index)


for shuffle in (False, True):
    got = np.concatenate([t.data for _, t in DataLoader(CountingDataset(X, y), batch_size=4, shuffle=shuffle, seed=0)])
assert calls == [], (
    f"a TensorDataset should be batched with one index per array, not dataset[i] per example ({len(calls)} calls)"
)
assert sorted(got.tolist()) == list(range(10)), "the shuffled epoch still visits every example once"
last = list(DataLoader(TensorDataset(X, y), batch_size=3))[-1][0]
assert np.shares_memory(last.data, X), "every unshuffled batch, also the last, is a view of the data set's arrays"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_shuffle", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
X = np.arange(50, dtype=np.float32).reshape(50, 1)
y = np.arange(50)
loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=123)
epoch0 = np.concatenate([t.data for _, t in loader])
epoch1 = np.concatenate([t.data for _, t in loader])
assert sorted(epoch0.tolist()) == list(range(50)), "each epoch must visit every example exactly once"
assert not np.array_equal(epoch0, epoch1), "two epochs should have different orders"
# the documented recipe, recomputed with NumPy on the side:
expected0 = np.random.default_rng([123, 0]).permutation(50)
assert epoch0.tolist() == expected0.tolist(), "the order of epoch e must be np.random.default_rng([seed, e]).permutation(N)"
### BEGIN HIDDEN TESTS
# another seed, batch size and epoch: the recipe of epoch 1 of seed 5
loader = DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=5)
list(loader)
got = np.concatenate([t.data for _, t in loader])
assert got.tolist() == np.random.default_rng([5, 1]).permutation(50).tolist(), (
    "the order of epoch e must be np.random.default_rng([seed, e]).permutation(N) (checked for another seed and epoch)"
)
# inputs and targets stay together: here input value == label
for inputs, targets in DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=5):
    assert np.array_equal(inputs.data[:, 0].astype(np.int64), targets.data), "shuffling must keep each input with its label"
# independent of NumPy's global generator: drawing from it changes nothing
np.random.random(10)
again = DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=5)
assert np.concatenate([t.data for _, t in again]).tolist() == np.random.default_rng([5, 0]).permutation(50).tolist(), (
    "the order must depend only on (seed, epoch), not on NumPy's global generator"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_epochs", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(50, dtype=np.float32).reshape(50, 1)
y = np.arange(50)
loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=123)
assert loader.epoch == 0, f"a new loader starts at epoch 0, got {loader.epoch}"
list(loader)
assert loader.epoch == 1, f"one pass advances epoch to 1, got {loader.epoch}"
loader.set_epoch(6)
order6 = np.concatenate([t.data for _, t in loader])
assert order6.tolist() == np.random.default_rng([123, 6]).permutation(50).tolist() and loader.epoch == 7, (
    "set_epoch(6) makes the next pass use epoch 6's order, and the pass advances epoch to 7"
)
assert np.array_equal(loader.epoch_order(6), order6), "epoch_order(6) is the order that epoch 6 visits"
### BEGIN HIDDEN TESTS
# the epoch advances when the iterator is created, before any batch is drawn
loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=9)
iterator = iter(loader)
assert loader.epoch == 1, f"iter(loader) should advance epoch to 1 right away, got {loader.epoch}"
first_batch = next(iterator)[1].data
assert first_batch.tolist() == np.random.default_rng([9, 0]).permutation(50)[:8].tolist(), (
    "the iterator created at epoch 0 uses epoch 0's order"
)
loader.set_epoch(4)
assert np.array_equal(loader.epoch_order(4), np.random.default_rng([9, 4]).permutation(50)), "epoch_order(4)"
# unshuffled: the same order every epoch; the epoch still advances
plain = DataLoader(TensorDataset(X, y), batch_size=8)
list(plain)
assert plain.epoch == 1 and np.concatenate([t.data for _, t in plain]).tolist() == list(range(50)), (
    "unshuffled loaders keep the data order every epoch, and count epochs too"
)
assert plain.epoch_order(3).tolist() == list(range(50)), "unshuffled: epoch_order is 0, 1, ..., N-1"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_seed", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(50, dtype=np.float32).reshape(50, 1)
y = np.arange(50)
auto = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
assert isinstance(auto.seed, int) and auto.seed >= 0, f"seed=None should draw and keep an int seed, got {auto.seed!r}"
copy = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=auto.seed)
assert np.array_equal(np.concatenate([t.data for _, t in auto]), np.concatenate([t.data for _, t in copy])), (
    "the kept seed reproduces the order"
)
### BEGIN HIDDEN TESTS
seeds = {DataLoader(TensorDataset(X, y), shuffle=True).seed for _ in range(3)}
assert len(seeds) == 3 and all(type(s) is int for s in seeds), (
    f"seed=None draws a new seed for each loader (an int), got {seeds}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_state_dict", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(40, dtype=np.float32).reshape(20, 2)
y = np.arange(20)
loader = DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, seed=7)
list(loader)
list(loader)
state = loader.state_dict()
assert state == {"seed": 7, "epoch": 2, "batch_size": 6, "shuffle": True, "drop_last": False}, f"unexpected state {state}"
expected_next = [t.data.tolist() for _, t in loader]  # epoch 2 of the original run
resumed = DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, seed=0)
resumed.load_state_dict(state)
assert resumed.epoch == 2 and resumed.seed == 7, "load_state_dict should restore seed and epoch"
assert [t.data.tolist() for _, t in resumed] == expected_next, "a resumed loader must give the same batches"
### BEGIN HIDDEN TESTS
# every key is restored, not only seed and epoch
other = DataLoader(TensorDataset(X, y), batch_size=3, shuffle=False, drop_last=False, seed=1)
other.load_state_dict({"seed": 4, "epoch": 9, "batch_size": 5, "shuffle": True, "drop_last": True})
assert (other.seed, other.epoch, other.batch_size, other.shuffle, other.drop_last) == (4, 9, 5, True, True), (
    f"all five entries should be restored, got {other.state_dict()}"
)
assert len(other) == 4, f"20 examples, batch_size 5: 4 batches, got {len(other)}"
# the state is plain JSON data
import json

assert json.loads(json.dumps(other.state_dict())) == other.state_dict(), "the state dict should survive JSON"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_state_refused", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
X = np.arange(40, dtype=np.float32).reshape(20, 2)
y = np.arange(20)
loader = DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, seed=7)
try:
    loader.load_state_dict({"seed": 3, "epoch": 1, "batch_size": 6, "shuffle": True})
except ValueError as error:
    assert "drop_last" in str(error), f"the error should name the missing key drop_last: {error}"
else:
    raise AssertionError("a state without drop_last must raise ValueError")
assert (loader.seed, loader.epoch) == (7, 0), "a refused state must not change the loader"
try:
    loader.load_state_dict({"seed": None, "epoch": 1, "batch_size": 6, "shuffle": True, "drop_last": False})
except TypeError as error:
    assert "seed" in str(error) and "None" in str(error), f"the error should name seed and None: {error}"
else:
    raise AssertionError("a seed of None must raise TypeError (_check_int), as in a state it must be the seed used")
assert (loader.seed, loader.epoch) == (7, 0), "a refused state must not change the loader"
### BEGIN HIDDEN TESTS
for bad, words in (
    ({"seed": 4, "epoch": 0, "batch_size": 5, "shuffle": True, "drop_last": False, "lr": 0.1}, ["lr"]),
    ({"seed": 4, "epoch": -1, "batch_size": 5, "shuffle": True, "drop_last": False}, ["epoch", "-1"]),
    ({"seed": 4, "epoch": 0, "batch_size": 0, "shuffle": True, "drop_last": False}, ["batch_size", "0"]),
    ({"seed": 4, "epoch": 0, "batch_size": 5, "shuffle": "yes", "drop_last": False}, ["shuffle", "yes"]),
    ({"seed": 2.5, "epoch": 0, "batch_size": 5, "shuffle": True, "drop_last": False}, ["seed", "2.5"]),
):
    try:
        loader.load_state_dict(bad)
    except (ValueError, TypeError) as error:
        assert all(word in str(error) for word in words), f"the error should name {words}: {error}"
    else:
        raise AssertionError(f"load_state_dict({bad}) should raise")
    assert (loader.seed, loader.epoch, loader.batch_size, loader.shuffle) == (7, 0, 6, True), (
        "a refused state must not change the loader"
    )
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_errors", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
ds = TensorDataset(np.zeros((10, 2)), np.zeros(10, dtype=np.int64))
for bad in (0, -3):
    try:
        DataLoader(ds, batch_size=bad)
    except ValueError as error:
        assert "batch_size" in str(error) and str(bad) in str(error), f"the error should name batch_size and {bad}: {error}"
    else:
        raise AssertionError(f"batch_size={bad} must raise ValueError")
for bad in (True, 2.5, "8"):
    try:
        DataLoader(ds, batch_size=bad)
    except TypeError as error:
        assert "batch_size" in str(error), f"the error should name batch_size: {error}"
    else:
        raise AssertionError(f"batch_size={bad!r} must raise TypeError: it must be an int (bool is refused)")
### BEGIN HIDDEN TESTS
for kwargs, word in (({"shuffle": "yes"}, "shuffle"), ({"drop_last": 1}, "drop_last"), ({"seed": -1}, "seed"),
                     ({"seed": 1.5}, "seed")):
    try:
        DataLoader(ds, **kwargs)
    except (TypeError, ValueError) as error:
        assert word in str(error) and str(list(kwargs.values())[0]) in str(error), (
            f"the error should name {word} and its value: {error}"
        )
    else:
        raise AssertionError(f"DataLoader(ds, **{kwargs}) must raise")
assert len(DataLoader(ds, batch_size=np.int64(4))) == 3, "batch_size may be a NumPy integer"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_empty", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
try:
    DataLoader(TensorDataset(np.zeros((0, 2))), batch_size=4)
except ValueError as error:
    assert "empty" in str(error), f"the error should say that the data set is empty: {error}"
else:
    raise AssertionError("an empty data set must raise ValueError")
### BEGIN HIDDEN TESTS
try:
    DataLoader([], batch_size=1, shuffle=True, seed=0)
except ValueError as error:
    assert "empty" in str(error), f"the error should say that the data set is empty: {error}"
else:
    raise AssertionError("an empty list as data set must raise ValueError")
### END HIDDEN TESTS

# %% [markdown]
# ### Any data set works
#
# The loader does not need a `TensorDataset`. A plain list of `(x, label)` pairs
# has `len()` and indexing, so it is a `Dataset`; the loader fetches the examples
# of each batch one by one and stacks them (`_collate`). That is slower, a Python
# loop per example, but it works for data computed on the fly (e.g. images read
# from disk or augmented at random).

# %% nbgrader={"grade": true, "grade_id": "dataloader_test_generic", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
pairs = [(np.array([i, 2 * i], dtype=np.float64), i % 2) for i in range(7)]
assert isinstance(pairs, Dataset), "a list is a Dataset: it has __len__ and __getitem__"
batches = list(DataLoader(pairs, batch_size=3))
assert len(batches) == 3, f"7 examples in batches of 3 give 3 batches, got {len(batches)}"
xb, yb = batches[0]
assert xb.shape == (3, 2) and xb.dtype == np.float32, f"inputs stacked to (3, 2) float32, got {xb.shape} {xb.dtype}"
assert yb.data.tolist() == [0, 1, 0] and yb.dtype.kind == "i", f"labels stacked to integers [0, 1, 0], got {yb.data.tolist()} {yb.dtype}"
### BEGIN HIDDEN TESTS
# Shuffled generic batches follow the same recipe: labels i % 2 of the permuted indices.
order = np.random.default_rng([3, 0]).permutation(7)
got = np.concatenate([b[1].data for b in DataLoader(pairs, batch_size=3, shuffle=True, seed=3)])
assert got.tolist() == (order % 2).tolist(), "the generic path must use the same epoch order as TensorDataset"
# Inputs: row i is [i, 2i]; check the first shuffled batch by hand from the order.
first = next(iter(DataLoader(pairs, batch_size=3, shuffle=True, seed=3)))[0]
assert np.asarray(first.data, dtype=np.float64).tolist() == [[float(i), 2.0 * i] for i in order[:3]], "stacked inputs in the wrong order"
# A data set of single values gives 1-tuples.
values = list(DataLoader([1.5, 2.5, 3.5], batch_size=2))
assert len(values) == 2 and len(values[0]) == 1 and values[0][0].data.tolist() == [1.5, 2.5], f"got {values}"
### END HIDDEN TESTS

# %% [markdown]
# ### Picture: what shuffling does to batches
#
# Left: 48 examples, batches of 8, six epochs. Each row is an epoch, each column an
# example, the colour the batch it landed in. Unshuffled (top row) the batches are
# fixed blocks; shuffled, every epoch mixes them differently, and every example
# still appears exactly once per epoch.
#
# Right: the same data sorted by class (16 of each of 3 classes). The bars count
# the classes in each batch of one epoch: unshuffled, each batch holds a single
# class; shuffled, each batch is a small sample of all three.

# %%
import matplotlib.pyplot as plt

n, size = 48, 8
labels = np.repeat(np.arange(3), 16)
data = TensorDataset(np.arange(n, dtype=np.float32), labels)
plain = DataLoader(data, batch_size=size)
mixed = DataLoader(data, batch_size=size, shuffle=True, seed=0)

grid = np.zeros((6, n), dtype=np.int64)
for b, (inputs, _) in enumerate(plain):
    grid[0, inputs.data.astype(np.int64)] = b
for e in range(1, 6):
    for b, (inputs, _) in enumerate(mixed):
        grid[e, inputs.data.astype(np.int64)] = b

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.5), gridspec_kw={"width_ratios": [2, 1]})
ax1.imshow(grid, aspect="auto", cmap="tab10", interpolation="nearest")
ax1.set_yticks(range(6), ["unshuffled"] + [f"epoch {e}" for e in range(5)])
ax1.set_xlabel("example index")
ax1.set_title("batch of each example (colour)")

mixed.set_epoch(0)
ticks, tick_labels = [], []
for group, (loader_, name) in enumerate(((plain, "unshuffled"), (mixed, "shuffled"))):
    counts = np.array([np.bincount(t.data, minlength=3) for _, t in loader_])
    left = np.arange(len(counts)) + group * (len(counts) + 1)
    bottom = np.zeros(len(counts))
    for c in range(3):
        ax2.bar(left, counts[:, c], bottom=bottom, width=0.8, color=f"C{c}", label=f"class {c}" if group == 0 else None)
        bottom += counts[:, c]
    ticks.append(left.mean())
    tick_labels.append(f"{name}\n(batches 0-{len(counts) - 1})")
ax2.set_xticks(ticks, tick_labels)
ax2.set_ylabel("examples per class")
ax2.set_title("class mix per batch")
ax2.set_ylim(0, size + 2.5)
ax2.legend(fontsize=8, ncol=3, loc="upper center")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Systems: memory of a batch, copies and views
#
# **Memory.** A batch of 64 MNIST-sized images in float32 is
# `64 × 784 × 4 = 200,704` bytes, about 196 KiB, plus `64 × 8 = 512` bytes of int64
# labels. That fits in a CPU's L2 cache, one reason batch sizes of tens to
# hundreds are fast.
#
# **Copies and views.** Unshuffled, a batch is a slice `X[start:stop]`: NumPy
# returns a **view** that shares the memory of `X`, costs nothing to make, and
# copies no bytes. Shuffled, a batch is `X[indices]` with an index array: NumPy
# must gather scattered rows into a new array, a **copy** of the batch's bytes
# each time. Over one epoch the shuffled loader therefore copies the whole data
# set once; the unshuffled one copies nothing.
#
# A view has a price too: the batch *is* the data set. Changing `inputs.data` in
# place would change `X`. Nothing in training does that, but keep it in mind.
#
# Let us measure both, with plain NumPy indexing as the reference: the loader's work
# beyond NumPy is wrapping each batch into Tensors.

# %%
import time

rng = np.random.default_rng(0)
X = rng.random((10_000, 784), dtype=np.float32)
y = rng.integers(0, 10, size=10_000)
ds = TensorDataset(X, y)
inputs, targets = next(iter(DataLoader(ds, batch_size=64)))
print(f"one batch: inputs {inputs.data.nbytes:,} bytes, targets {targets.data.nbytes:,} bytes")
print("unshuffled batch shares memory with X:", np.shares_memory(inputs.data, X))
inputs, targets = next(iter(DataLoader(ds, batch_size=64, shuffle=True, seed=0)))
print("shuffled batch shares memory with X:  ", np.shares_memory(inputs.data, X))


def best_of(function, repeats: int = 3) -> float:
    """Shortest of a few runs, in seconds (the least disturbed by other work)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_epoch(order: np.ndarray | None) -> None:
    for start in range(0, len(X), 64):
        rows = slice(start, start + 64) if order is None else order[start : start + 64]
        X[rows], y[rows]


def loader_epoch(loader: DataLoader) -> None:
    for _ in loader:
        pass


order = np.random.default_rng([0, 0]).permutation(len(X))
for name, shuffle in (("unshuffled", False), ("shuffled", True)):
    reference = best_of(lambda shuffle=shuffle: numpy_epoch(order if shuffle else None))
    ours = best_of(lambda shuffle=shuffle: loader_epoch(DataLoader(ds, batch_size=64, shuffle=shuffle, seed=0)))
    print(f"{name:10s}: NumPy {reference * 1e3:6.2f} ms, DataLoader {ours * 1e3:6.2f} ms per epoch "
          f"({ours / reference:.2f}x), {(ours - reference) / len(range(0, len(X), 64)) * 1e6:.1f} µs extra per batch")

# %% [markdown]
# What the numbers say:
#
# * Shuffled, both sides spend their time copying rows; the loader adds a
#   small, fixed cost per batch, so it stays close to plain NumPy.
# * Unshuffled, a slice costs almost nothing, so the fixed cost of wrapping two
#   Tensors per batch is the whole difference: a few microseconds per batch, well under
#   a millisecond per epoch here, negligible next to a forward and backward pass.
# * A loop over examples in Python (the generic path) would cost about a
#   microsecond *per example*: try `DataLoader(list(zip(X, y)), batch_size=64)`.
#
# ## Summary
#
# * A `Dataset` is anything with `len()` and indexing; `TensorDataset` checks that its
#   arrays have one row per example and converts floats to float32 once.
# * `DataLoader` yields tuples of Tensors; `len()` counts batches (`drop_last` aware).
# * The order of epoch `e` is `default_rng([seed, e]).permutation(N)`: reproducible,
#   independent of any other randomness, and restorable from `state_dict()`.
# * Unshuffled batches are views, shuffled batches one fancy-indexed copy per array.
#
# Next: module 06 computes gradients (autograd), and module 08 puts the loader, a
# model, a loss and an optimizer together in a training loop.
