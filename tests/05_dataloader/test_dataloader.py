"""Tests of tinytorch.core.dataloader: Dataset, TensorDataset, DataLoader.

Expected orders are recomputed on the side with NumPy from the documented recipe
(`np.random.default_rng([seed, epoch]).permutation(n)`); batch counts in closed form.
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.dataloader import DataLoader, Dataset, TensorDataset
from tinytorch.core.tensor import Tensor


def make_data(n: int, features: int = 3):
    """Inputs whose first column is the example index, labels index % 5 (int64)."""
    X = np.zeros((n, features), dtype=np.float32)
    X[:, 0] = np.arange(n)
    y = np.arange(n, dtype=np.int64) % 5
    return X, y


def epoch_indices(loader: DataLoader) -> list[int]:
    """Run one epoch and return the example indices in the order seen (from column 0)."""
    return [int(i) for batch in loader for i in batch[0].data[:, 0]]


# ---- TensorDataset ----------------------------------------------------------------------


def test_tensordataset_len_getitem_and_dtypes():
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.array([3, 1, 4, 1, 5, 9], dtype=np.int32)
    ds = TensorDataset(X, y)
    assert len(ds) == 6
    assert isinstance(ds, Dataset)
    assert ds.arrays[0].dtype == np.float32 and ds.arrays[1].dtype == np.int32
    xi, yi = ds[4]
    assert xi.tolist() == [8.0, 9.0] and int(yi) == 5  # row 4 of arange(12) in rows of 2
    xb, yb = ds[np.array([5, 0])]
    assert xb.tolist() == [[10.0, 11.0], [0.0, 1.0]] and yb.tolist() == [9, 3]


def test_tensordataset_keeps_tensor_dtype_and_does_not_copy_float32():
    X32 = np.ones((4, 2), dtype=np.float32)
    t64 = Tensor(np.zeros((4, 3)), dtype=np.float64)
    ds = TensorDataset(X32, t64, np.array([True, False, True, True]))
    assert ds.arrays[0] is X32
    assert ds.arrays[1].dtype == np.float64
    assert ds.arrays[2].dtype == np.bool_


def test_tensordataset_errors_name_every_length():
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match=r"array 0: 4, array 1: 4, array 2: 3"):
        TensorDataset(np.zeros(4), np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match="array 1"):
        TensorDataset(np.zeros(4), np.float32(2.0))
    with pytest.raises(TypeError, match="array 0"):
        TensorDataset(np.array(["a", "b"]))


# ---- DataLoader: batches ----------------------------------------------------------------


@given(n=st.integers(1, 200), size=st.integers(1, 70), drop_last=st.booleans())
@settings(max_examples=80, deadline=None)
def test_number_and_sizes_of_batches(n, size, drop_last):
    if drop_last and n < size:
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(TensorDataset(np.zeros(n)), batch_size=size, drop_last=drop_last)
        return
    loader = DataLoader(TensorDataset(np.zeros(n)), batch_size=size, drop_last=drop_last)
    sizes = [batch[0].shape[0] for batch in loader]
    full, rest = divmod(n, size)  # closed form
    expected = [size] * full + ([rest] if rest and not drop_last else [])
    assert sizes == expected
    assert len(loader) == len(expected)


def test_unshuffled_batches_are_views_in_data_order():
    X, y = make_data(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    batches = list(loader)
    assert all(type(b) is tuple and len(b) == 2 for b in batches)
    inputs, targets = batches[1]
    assert isinstance(inputs, Tensor) and isinstance(targets, Tensor)
    assert inputs.data[:, 0].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert targets.data.tolist() == [4, 0, 1, 2]  # (4, 5, 6, 7) % 5
    assert inputs.dtype == np.float32 and targets.dtype == np.int64
    assert np.shares_memory(inputs.data, X)
    assert inputs.requires_grad is False


def test_shuffled_batches_are_copies():
    X, y = make_data(10)
    inputs, _ = next(iter(DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=1)))
    assert not np.shares_memory(inputs.data, X)


def test_tensordataset_is_batched_without_per_example_getitem():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    X, y = make_data(100)
    for shuffle in (False, True):
        list(DataLoader(Counting(X, y), batch_size=8, shuffle=shuffle, seed=0))
    assert Counting.calls == 0


# ---- DataLoader: shuffling and epochs ----------------------------------------------------


@given(
    n=st.integers(1, 120),
    size=st.integers(1, 40),
    seed=st.integers(0, 2**64),
    epoch=st.integers(0, 1000),
)
@settings(max_examples=60, deadline=None)
def test_epoch_order_follows_recipe_and_covers_every_example_once(n, size, seed, epoch):
    X, y = make_data(n)
    loader = DataLoader(TensorDataset(X, y), batch_size=size, shuffle=True, seed=seed)
    loader.set_epoch(epoch)
    seen = epoch_indices(loader)
    assert seen == np.random.default_rng([seed, epoch]).permutation(n).tolist()
    assert sorted(seen) == list(range(n))
    assert loader.epoch == epoch + 1


def test_inputs_and_labels_stay_paired_when_shuffled():
    X, y = make_data(97)
    for inputs, targets in DataLoader(TensorDataset(X, y), batch_size=10, shuffle=True, seed=3):
        np.testing.assert_array_equal(inputs.data[:, 0].astype(np.int64) % 5, targets.data)


def test_epoch_advances_when_the_iterator_is_created():
    X, y = make_data(30)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=11)
    assert loader.epoch == 0
    it0 = iter(loader)
    assert loader.epoch == 1
    it1 = iter(loader)
    assert loader.epoch == 2
    # Each iterator keeps the epoch it was created for, however they interleave.
    first1 = next(it1)[0].data[:, 0].tolist()
    first0 = next(it0)[0].data[:, 0].tolist()
    assert first0 == np.random.default_rng([11, 0]).permutation(30)[:4].tolist()
    assert first1 == np.random.default_rng([11, 1]).permutation(30)[:4].tolist()
    assert len(loader) == 8 and loader.epoch == 2  # len() does not advance


def test_order_does_not_depend_on_outside_randomness():
    X, y = make_data(40)
    a = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=5)
    expected = epoch_indices(a)
    np.random.default_rng().random(1000)
    b = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=5)
    assert epoch_indices(b) == expected


def test_unshuffled_order_is_the_same_every_epoch_and_epoch_order_helper():
    X, y = make_data(9)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    assert epoch_indices(loader) == epoch_indices(loader) == list(range(9))
    assert loader.epoch == 2
    assert loader.epoch_order(7).tolist() == list(range(9))


def test_seed_none_draws_and_keeps_a_seed():
    X, y = make_data(50)
    a = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    b = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    assert type(a.seed) is int and a.seed >= 0 and a.seed != b.seed
    same = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=a.seed)
    assert epoch_indices(a) == epoch_indices(same)


# ---- DataLoader: state dict ----------------------------------------------------------------


@given(epochs_done=st.integers(0, 5), seed=st.integers(0, 2**32), size=st.integers(1, 9))
@settings(max_examples=30, deadline=None)
def test_resumed_loader_gives_the_same_batches(epochs_done, seed, size):
    X, y = make_data(23)
    original = DataLoader(TensorDataset(X, y), batch_size=size, shuffle=True, seed=seed)
    for _ in range(epochs_done):
        list(original)
    state = json.loads(json.dumps(original.state_dict()))  # as a checkpoint stores it
    resumed = DataLoader(TensorDataset(X, y), batch_size=5, shuffle=False, seed=0)
    resumed.load_state_dict(state)
    for _ in range(2):
        a = [(i.data.tolist(), t.data.tolist()) for i, t in original]
        b = [(i.data.tolist(), t.data.tolist()) for i, t in resumed]
        assert a == b


def test_state_dict_contents():
    X, y = make_data(20)
    loader = DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, drop_last=True, seed=8)
    list(loader)
    assert loader.state_dict() == {
        "seed": 8,
        "epoch": 1,
        "batch_size": 6,
        "shuffle": True,
        "drop_last": True,
    }


@pytest.mark.parametrize(
    ("change", "word", "error"),
    [
        ({"epoch": None}, "epoch", TypeError),
        ({"seed": None}, "seed.*None", TypeError),
        ({"epoch": -1}, "epoch", ValueError),
        ({"seed": -5}, "seed", ValueError),
        ({"batch_size": 0}, "batch_size", ValueError),
        ({"batch_size": True}, "batch_size", TypeError),
        ({"shuffle": "no"}, "shuffle", TypeError),
        ({"batch_size": 50, "drop_last": True}, "batch_size", ValueError),
        ({"momentum": 0.9}, "momentum", ValueError),
    ],
)
def test_load_state_dict_validates_before_changing_anything(change, word, error):
    X, y = make_data(20)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=2)
    before = loader.state_dict()
    bad = {**before, **change}
    with pytest.raises(error, match=word):
        loader.load_state_dict(bad)
    assert loader.state_dict() == before


def test_load_state_dict_checks_keys_then_values_in_order_then_the_combination():
    X, y = make_data(20)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    good = loader.state_dict()
    # a missing key and bad values: the keys are reported (all of them), not the values
    keys_wrong = {**good, "seed": None, "lr": 1}
    del keys_wrong["drop_last"]
    with pytest.raises(ValueError, match=r"missing \['drop_last'\], unexpected \['lr'\]"):
        loader.load_state_dict(keys_wrong)
    # several bad values: the first in the order seed, epoch, batch_size, shuffle, drop_last
    with pytest.raises(TypeError, match="seed"):
        loader.load_state_dict({**good, "seed": None, "epoch": -1, "shuffle": "no"})
    with pytest.raises(ValueError, match="epoch"):
        loader.load_state_dict({**good, "epoch": -1, "batch_size": 0, "shuffle": "no"})
    with pytest.raises(TypeError, match="shuffle"):
        loader.load_state_dict({**good, "shuffle": "no", "drop_last": "no"})
    # the drop_last / batch_size combination comes last, after every value passed
    with pytest.raises(ValueError, match="no batch"):
        loader.load_state_dict({**good, "batch_size": 50, "drop_last": True})


def test_batches_keep_the_data_sets_float64():
    # a data set built from a float64 Tensor keeps float64 (TensorDataset), and so do its
    # batches, sliced or fancy-indexed, and the batches of a generic data set
    X, y = make_data(10)
    data = TensorDataset(Tensor(X, dtype=np.float64), y)
    for shuffle in (False, True):
        for inputs, labels in DataLoader(data, batch_size=4, shuffle=shuffle, seed=0):
            assert inputs.dtype == np.float64 and labels.dtype == np.int64
    pairs = [(Tensor(X[i], dtype=np.float64), int(y[i])) for i in range(10)]
    generic = next(iter(DataLoader(pairs, batch_size=4)))
    assert generic[0].dtype == np.float64


def test_load_state_dict_missing_key_and_non_mapping():
    X, y = make_data(20)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    state = loader.state_dict()
    del state["seed"]
    with pytest.raises(ValueError, match="seed"):
        loader.load_state_dict(state)
    with pytest.raises(TypeError, match="state"):
        loader.load_state_dict([1, 2, 3])


# ---- DataLoader: argument errors ------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1])
def test_batch_size_below_one(bad):
    with pytest.raises(ValueError, match=f"batch_size.*{bad}"):
        DataLoader(TensorDataset(np.zeros(5)), batch_size=bad)


@pytest.mark.parametrize("bad", [True, False, 2.0, "4", None])
def test_batch_size_not_an_int(bad):
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(TensorDataset(np.zeros(5)), batch_size=bad)


def test_other_bad_arguments():
    ds = TensorDataset(np.zeros(5))
    with pytest.raises(ValueError, match="empty"):
        DataLoader(TensorDataset(np.zeros((0, 2))))
    with pytest.raises(ValueError, match="empty"):
        DataLoader([])
    with pytest.raises(TypeError, match="dataset"):
        DataLoader(object())
    with pytest.raises(TypeError, match="shuffle"):
        DataLoader(ds, shuffle=1)
    with pytest.raises(TypeError, match="drop_last"):
        DataLoader(ds, drop_last="yes")
    with pytest.raises(ValueError, match="seed"):
        DataLoader(ds, seed=-3)
    with pytest.raises(TypeError, match="seed"):
        DataLoader(ds, seed=1.0)
    with pytest.raises(ValueError, match="epoch"):
        DataLoader(ds).set_epoch(-1)
    assert len(DataLoader(ds, batch_size=np.int32(2))) == 3  # ceil(5 / 2)


# ---- Generic data sets ----------------------------------------------------------------------


@given(
    n=st.integers(1, 40), size=st.integers(1, 12), shuffle=st.booleans(), seed=st.integers(0, 99)
)
@settings(max_examples=40, deadline=None)
def test_generic_dataset_gives_the_same_batches_as_tensordataset(n, size, shuffle, seed):
    X, y = make_data(n)
    fast = DataLoader(TensorDataset(X, y), batch_size=size, shuffle=shuffle, seed=seed)
    pairs = [(X[i].astype(np.float64), int(y[i])) for i in range(n)]
    slow = DataLoader(pairs, batch_size=size, shuffle=shuffle, seed=seed)
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        assert xs.dtype == np.float32 and ys.dtype.kind == "i"
        np.testing.assert_array_equal(xf.data, xs.data)
        np.testing.assert_array_equal(yf.data, ys.data)


def test_generic_dataset_of_tensors_and_single_values():
    tensors = [(Tensor(np.full(2, i), dtype=np.float64), Tensor(np.array(i))) for i in range(5)]
    xb, yb = next(iter(DataLoader(tensors, batch_size=3)))
    assert xb.dtype == np.float64 and xb.data.tolist() == [[0, 0], [1, 1], [2, 2]]
    assert yb.data.tolist() == [0, 1, 2]
    (values,) = next(iter(DataLoader([0.5, 1.5, 2.5], batch_size=2)))
    assert values.dtype == np.float32 and values.data.tolist() == [0.5, 1.5]


def test_generic_dataset_with_ragged_examples_is_refused():
    ragged = [(np.zeros(2), 1), (np.zeros(2),)]
    with pytest.raises(ValueError, match="example 1"):
        list(DataLoader(ragged, batch_size=2))
