"""Losses: values against formulas computed independently, targets of every form, errors."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def naive_log_softmax(z):
    """log(e^z / sum e^z) term by term with the math module (fine for |z| <= 20)."""
    out = np.empty_like(z)
    for n, row in enumerate(z):
        total = sum(math.exp(v) for v in row)
        out[n] = [v - math.log(total) for v in row]
    return out


logits = st.integers(1, 6).flatmap(
    lambda n: st.integers(2, 7).flatmap(
        lambda c: hnp.arrays(np.float64, (n, c), elements=st.floats(-20, 20, allow_nan=False))
    )
)


# ---- MSE ------------------------------------------------------------------------------------


@given(
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4).flatmap(
        lambda s: st.tuples(
            *[hnp.arrays(np.float64, s, elements=st.floats(-1e3, 1e3)) for _ in range(2)]
        )
    )
)
@settings(max_examples=50, deadline=None)
def test_mse_against_a_python_sum(pt):
    p, t = pt
    want = (
        sum((a - b) ** 2 for a, b in zip(p.ravel().tolist(), t.ravel().tolist(), strict=True))
        / p.size
    )
    got = MSELoss()(Tensor(p, dtype=np.float64), t)
    assert got.shape == () and got.dtype == np.float64
    assert got.item() == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_mse_worked_example_and_records():
    loss = MSELoss()(Tensor([1.0, 2.0, 3.0], requires_grad=True), [1.0, 0.0, 0.0])
    assert loss.item() == pytest.approx(13 / 3)  # (0 + 4 + 9) / 3
    assert loss.dtype == np.float32 and loss._op == "mse" and len(loss._inputs) == 1
    np.testing.assert_array_equal(loss._ctx, [0.0, 2.0, 3.0])
    target = Tensor([0.0, 0.0, 0.0], requires_grad=True)
    assert MSELoss()(Tensor([1.0, 2.0, 3.0]), target)._inputs[1] is target
    assert MSELoss()(Tensor([1.0]), np.array([0.5], dtype=np.float64)).dtype == np.float32


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        MSELoss()(Tensor(np.zeros((4, 1))), np.zeros(4))


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_every_loss_refuses_an_empty_batch(shape):
    # torch returns nan for all three (F.mse_loss, F.cross_entropy, F.binary_cross_entropy
    # of empty tensors, torch 2.13.0); the course refuses, the same way for each loss
    with pytest.raises(ValueError, match="empty"):
        MSELoss()(Tensor(np.zeros(shape)), np.zeros(shape))
    with pytest.raises(ValueError, match="empty"):
        BinaryCrossEntropyLoss()(Tensor(np.zeros(shape)), np.zeros(shape))
    with pytest.raises(ValueError, match="empty"):
        CrossEntropyLoss()(Tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64))


# ---- cross entropy ------------------------------------------------------------------------------


@given(logits, st.data())
@settings(max_examples=60, deadline=None)
def test_cross_entropy_with_indices_against_naive_log_softmax(z, data):
    n, c = z.shape
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    want = -naive_log_softmax(z)[np.arange(n), y].mean()
    got = CrossEntropyLoss()(Tensor(z, dtype=np.float64), y)
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)
    # the same labels as floats, as a Tensor, and as one-hot rows give the same loss
    for same in (
        y.astype(np.float64),
        Tensor(y),
        np.eye(c)[y],
        Tensor(np.eye(c)[y], dtype=np.float64),
    ):
        assert CrossEntropyLoss()(Tensor(z, dtype=np.float64), same).item() == pytest.approx(
            want, rel=1e-10, abs=1e-12
        )


@given(logits, st.data())
@settings(max_examples=40, deadline=None)
def test_cross_entropy_with_soft_targets(z, data):
    t = data.draw(hnp.arrays(np.float64, z.shape, elements=st.floats(0, 1)))
    want = -(t * naive_log_softmax(z)).sum() / z.shape[0]
    got = CrossEntropyLoss()(Tensor(z, dtype=np.float64), t).item()
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("c", [2, 10, 1000])
def test_uniform_logits_give_log_c(c):
    loss = CrossEntropyLoss()(Tensor(np.full((3, c), 4.2)), np.array([0, c - 1, c // 2]))
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(math.log(c), rel=1e-6)


def test_cross_entropy_is_stable_for_huge_logits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = CrossEntropyLoss()(Tensor([[1000.0, 0.0], [0.0, -1000.0]]), [1, 1])
    # each row: -log softmax = 1000 + log(1 + e^-1000) = 1000 (to float precision)
    assert got.item() == pytest.approx(1000.0, rel=1e-6)


def test_cross_entropy_records_probabilities_and_targets():
    z = Tensor([[0.0, math.log(3.0)]], requires_grad=True, dtype=np.float64)
    loss = CrossEntropyLoss()(z, [1])
    assert loss._op == "cross_entropy" and loss._inputs == (z,)
    probs, targets = loss._ctx
    np.testing.assert_allclose(probs, [[0.25, 0.75]], rtol=1e-12)  # e^0 : e^ln3 = 1 : 3
    assert targets.dtype == np.int64 and targets.tolist() == [1]
    assert loss.item() == pytest.approx(-math.log(0.75), rel=1e-12)


def test_tensor_targets_are_inputs_only_where_they_can_carry_a_gradient():
    """Targets given as a Tensor are inputs of the op (so one that requires grad gets a
    gradient, as in PyTorch): for MSE and BCE always, for cross entropy only probability
    targets; class indices, and targets given as arrays or lists, are data."""
    z = Tensor([[0.0, 1.0], [2.0, 0.5]], requires_grad=True)
    probs_t = Tensor([[0.5, 0.5], [1.0, 0.0]], requires_grad=True)
    assert CrossEntropyLoss()(z, probs_t)._inputs == (z, probs_t)
    assert CrossEntropyLoss()(z, Tensor(np.array([1, 0])))._inputs == (z,)
    assert CrossEntropyLoss()(z, np.array([[0.5, 0.5], [1.0, 0.0]]))._inputs == (z,)
    p = Tensor([0.25, 0.5], requires_grad=True)
    t = Tensor([1.0, 0.0])
    for loss_fn in (MSELoss(), BinaryCrossEntropyLoss()):
        assert loss_fn(p, t)._inputs == (p, t)
        assert loss_fn(p, [1.0, 0.0])._inputs == (p,)


@pytest.mark.parametrize(
    ("targets", "needle"),
    [
        (np.array([0, 1, 2]), "3 targets for a batch of 2"),
        (np.array([0, 10]), "class index 10"),
        (np.array([-1, 0]), "class index -1"),
        (np.array([0.0, 2.5]), "2.5"),
        (np.array([0.0, np.nan]), "nan"),
        (np.array([True, False]), "bool"),
        (np.zeros((2, 3)), r"\(2, 10\).*\(2, 3\)"),
        (np.zeros((2, 10, 1)), r"\(2, 10, 1\)"),
    ],
)
def test_cross_entropy_bad_targets(targets, needle):
    with pytest.raises(ValueError, match=needle):
        CrossEntropyLoss()(Tensor(np.zeros((2, 10))), targets)


def test_cross_entropy_bad_logits():
    with pytest.raises(ValueError, match=r"\(N, C\).*\(10,\)"):
        CrossEntropyLoss()(Tensor(np.zeros(10)), [1])
    with pytest.raises(ValueError, match="empty"):
        CrossEntropyLoss()(Tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64))
    with pytest.raises(TypeError, match="Tensor"):
        CrossEntropyLoss()(np.zeros((2, 3)), [0, 1])


# ---- binary cross entropy --------------------------------------------------------------------


@given(
    hnp.array_shapes(min_dims=1, max_dims=2, max_side=5).flatmap(
        lambda s: st.tuples(
            hnp.arrays(np.float64, s, elements=st.floats(1e-3, 1 - 1e-3)),
            hnp.arrays(np.float64, s, elements=st.floats(0, 1)),
        )
    )
)
@settings(max_examples=50, deadline=None)
def test_bce_against_a_python_sum(pt):
    p, t = pt
    terms = [
        -(b * math.log(a) + (1 - b) * math.log(1 - a))
        for a, b in zip(p.ravel(), t.ravel(), strict=True)
    ]
    got = BinaryCrossEntropyLoss()(Tensor(p, dtype=np.float64), t)
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-10)


def test_bce_worked_example_and_dtype():
    loss = BinaryCrossEntropyLoss()(Tensor([0.8, 0.8], requires_grad=True), [1.0, 0.0])
    # (-ln 0.8 - ln 0.2) / 2 = 0.9162907318741551
    assert loss.item() == pytest.approx(0.9162907318741551, rel=1e-6)
    assert loss.dtype == np.float32 and loss._op == "binary_cross_entropy"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_clamps_saturated_probabilities(dtype):
    bce = BinaryCrossEntropyLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = bce(Tensor([0.0, 1.0], requires_grad=True, dtype=dtype), np.array([1.0, 0.0]))
    p, t = loss._ctx
    assert p.dtype == dtype and p[0] == dtype(1e-7) and p[1] == np.clip(dtype(1.0), 1e-7, 1 - 1e-7)
    assert 0 < 1 - p[1] and np.isfinite(loss.item())
    # both terms are -log(eps) up to float32 rounding of 1 - eps: about 16.1
    assert loss.item() == pytest.approx(-math.log(1e-7), rel=0.02)


def test_bce_refuses_an_eps_that_rounds_away_in_the_predictions_dtype():
    # float16: 1 - 1e-7 rounds to 1 (the float below 1 is 1 - 2**-11), so the clamp could
    # not keep log(1 - p) finite; the message names eps, the dtype and epsneg = 2**-11
    with pytest.raises(ValueError, match=r"eps=1e-07.*float16.*0\.000488"):
        BinaryCrossEntropyLoss()(Tensor([0.5, 1.0], dtype=np.float16), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="eps=1e-17.*float64"):
        BinaryCrossEntropyLoss(eps=1e-17)(Tensor([0.5], dtype=np.float64), np.array([1.0]))
    # 2**-11 itself works in float16: 1 - 2**-11 = 0.99951171875 is a float16
    smallest = float(np.finfo(np.float16).epsneg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saturated = Tensor([1.0], dtype=np.float16)
        loss = BinaryCrossEntropyLoss(eps=smallest)(saturated, np.array([0.0]))
    # -ln(2**-11) = 11 ln 2 = 7.6246, rounded to float16
    assert loss.dtype == np.float16 and loss.item() == pytest.approx(11 * math.log(2), rel=1e-3)


def test_bce_eps():
    got = BinaryCrossEntropyLoss(eps=0.1)(Tensor([0.999], dtype=np.float64), [0.0]).item()
    assert got == pytest.approx(-math.log(0.1), rel=1e-12)  # p clamped to 0.9
    for bad in (0.0, 0.5, -1.0):
        with pytest.raises(ValueError, match="eps"):
            BinaryCrossEntropyLoss(eps=bad)


@pytest.mark.parametrize(
    ("p", "t", "needle"),
    [
        ([1.5], [1.0], "predictions.*1.5"),
        ([-0.1], [1.0], "predictions.*-0.1"),
        ([float("nan")], [1.0], "predictions.*nan"),
        ([0.5], [2.0], "targets.*2.0"),
        ([0.5, 0.5], [[1.0, 0.0]], r"\(2,\).*\(1, 2\)"),
    ],
)
def test_bce_bad_input(p, t, needle):
    with pytest.raises(ValueError, match=needle):
        BinaryCrossEntropyLoss()(Tensor(p), np.array(t))
