"""Generated from modules/05_dataloader/dataloader.py by `course build`; do not edit.

Change the module file and run `course build --module 05`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tinytorch.core.tensor import Tensor


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


class TensorDataset:
    """A data set of arrays (or Tensors) sharing their first dimension: example i is
    `tuple(array[i] for array in arrays)`.

    Floating arrays are stored as float32, integer/bool arrays keep their dtype, Tensors
    keep theirs. Raises ValueError for no arrays or different first dimensions.
    """

    def __init__(self, *arrays: Any) -> None:
        self.arrays: tuple[np.ndarray, ...]
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

    def __len__(self) -> int:
        """Number of examples (the common first dimension)."""
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        """Row(s) `index` of every array: an int gives one example, a slice or an index array a batch."""
        return tuple(array[index] for array in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.shape} {a.dtype}" for a in self.arrays)
        return f"TensorDataset({shapes})"


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
        if len(dataset) == 0:
            raise ValueError("DataLoader: dataset is empty (len(dataset) == 0), there is nothing to batch")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = _check_bool("shuffle", shuffle)
        self.drop_last = _check_bool("drop_last", drop_last)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self.seed = _check_int("seed", seed, 0)
        self.epoch = 0
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
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order in which epoch `epoch` visits the examples: a permutation of
        0..N-1 from `default_rng([seed, epoch])` when shuffling, else 0, 1, ..., N-1."""
        epoch = _check_int("epoch", epoch, 0)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iterator use the order of epoch `epoch`."""
        self.epoch = _check_int("epoch", epoch, 0)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        """Batches of the current epoch; advances `epoch` by one right away."""
        epoch = self.epoch
        self.epoch = epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, ...]]:
        """Generator of the batches of epoch `epoch`."""
        n = len(self.dataset)
        size = self.batch_size
        stop = n - n % size if self.drop_last else n
        order = self.epoch_order(epoch) if self.shuffle else None
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

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to repeat the batches: seed, epoch, batch_size, shuffle, drop_last."""
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict()`: checks every key and value first, then sets them all."""
        if not isinstance(state, Mapping):
            raise TypeError(f"DataLoader.load_state_dict: state must be a dict, got {type(state).__name__}")
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

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.dataset)} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, epoch={self.epoch})"
        )
