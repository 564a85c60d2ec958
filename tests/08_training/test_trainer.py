"""Trainer.train_epoch and evaluate against updates computed with NumPy on the side.

Reference gradients (float64):
* y = X @ W + b with MSE over all N*C entries: dY = 2 (Y - T) / (N C), dW = X.T dY, db = sum dY.
* logits Z = X @ W + b with mean cross-entropy: dZ = (softmax(Z) - onehot) / N.
Plain SGD turns any gradient error into a weight error: W <- W - lr * dW.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CosineSchedule, Trainer, clip_grad_norm, count_correct

RNG = np.random.default_rng(2024)
X = RNG.standard_normal((16, 3)).astype(np.float32)
T = RNG.standard_normal((16, 2)).astype(np.float32)
LABELS = RNG.integers(0, 4, 16)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def batches(inputs, targets, sizes):
    out, start = [], 0
    for size in sizes:
        out.append((Tensor(inputs[start:start + size]), Tensor(targets[start:start + size])))
        start += size
    return out


def mse_grads(W, b, x, t):
    dY = 2.0 * (f64(x) @ W + b - f64(t)) / np.size(t)
    return f64(x).T @ dY, dY.sum(axis=0)


def ce_grads(W, b, x, labels):
    Z = f64(x) @ W + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(len(labels)), labels] -= 1.0
    dZ = P / len(labels)
    return f64(x).T @ dZ, dZ.sum(axis=0)


def clip(gW, gb, max_norm):
    norm = math.sqrt(float(np.sum(gW**2) + np.sum(gb**2)))
    if max_norm is not None and norm > max_norm:
        return gW * (max_norm / norm), gb * (max_norm / norm), norm
    return gW, gb, norm


def reference_epoch(W, b, sizes, k, lr, loss, max_norm):
    """Windows of k micro-batches -> one SGD step each on the window's big-batch gradient."""
    norms, start = [], 0
    for w in range(0, len(sizes), k):
        n = sum(sizes[w:w + k])
        rows = slice(start, start + n)
        if loss == "mse":
            gW, gb = mse_grads(W, b, X[rows], T[rows])
        else:
            gW, gb = ce_grads(W, b, X[rows], LABELS[rows])
        gW, gb, norm = clip(gW, gb, max_norm)
        norms.append(norm)
        W, b = W - lr * gW, b - lr * gb
        start += n
    return W, b, norms


def splits(total):
    """Hypothesis strategy: a list of positive sizes summing to `total`."""
    return st.lists(st.integers(1, total), min_size=1, max_size=total).map(
        lambda cuts: _cut(total, cuts)
    )


def _cut(total, cuts):
    points = sorted({c for c in cuts if 0 < c < total})
    edges = [0, *points, total]
    return [b - a for a, b in zip(edges, edges[1:], strict=False)]


@given(splits(16), st.integers(1, 6), st.sampled_from(["mse", "ce"]), st.sampled_from([None, 0.05]))
@settings(max_examples=80, deadline=None)
def test_accumulation_equals_big_batch_updates(sizes, k, loss, max_norm):
    n_out = 2 if loss == "mse" else 4
    model = Linear(3, n_out, rng=np.random.default_rng(1))
    W0, b0 = f64(model.weight.data).copy(), f64(model.bias.data).copy()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.4),
                      MSELoss() if loss == "mse" else CrossEntropyLoss(), grad_clip_norm=max_norm)
    targets = T if loss == "mse" else LABELS
    trainer.train_epoch(batches(X, targets, sizes), accumulation_steps=k)
    W, b, norms = reference_epoch(W0, b0, sizes, k, 0.4, loss, max_norm)
    assert trainer.step == math.ceil(len(sizes) / k)
    np.testing.assert_allclose(f64(model.weight.data), W, rtol=0, atol=5e-6)
    np.testing.assert_allclose(f64(model.bias.data), b, rtol=0, atol=5e-6)
    np.testing.assert_allclose(trainer.history["grad_norms"], norms, rtol=2e-5)


@given(splits(16), st.integers(1, 5))
@settings(max_examples=40, deadline=None)
def test_epoch_loss_is_weighted_by_samples(sizes, k):
    model = Linear(3, 2, rng=np.random.default_rng(3))
    W, b = f64(model.weight.data), f64(model.bias.data)
    want = float(np.mean((f64(X) @ W + b - f64(T)) ** 2))  # lr = 0: weights fixed
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
    got = trainer.train_epoch(batches(X, T, sizes), accumulation_steps=k)
    assert type(got) is float
    assert abs(got - want) <= 1e-6 * want
    assert trainer.history["train_loss"] == [got]


def test_single_batch_windows_equal_a_plain_loop_bitwise():
    # accumulation_steps=1 does no weighting: the Trainer is exactly the four-line loop
    def build():
        model = Sequential(Linear(3, 8, rng=np.random.default_rng(0)), ReLU(),
                           Linear(8, 4, rng=np.random.default_rng(1)))
        return model, Adam(model.parameters(), lr=0.01)

    model_a, opt_a = build()
    trainer = Trainer(model_a, opt_a, CrossEntropyLoss(), grad_clip_norm=0.3)
    trainer.train_epoch(batches(X, LABELS, [5, 5, 6]))
    model_b, opt_b = build()
    loss_fn = CrossEntropyLoss()
    for x, y in batches(X, LABELS, [5, 5, 6]):
        loss_fn(model_b(x), y).backward()
        clip_grad_norm(model_b.parameters(), 0.3)
        opt_b.step()
        opt_b.zero_grad()
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_learning_rate_is_set_before_each_epoch():
    model = Linear(3, 2, rng=np.random.default_rng(1))
    opt = SGD(model.parameters(), lr=9.0)
    seen = []
    real = opt.step

    def recording_step():
        seen.append(opt.lr)
        real()

    opt.step = recording_step
    # (0.3, 0.1, 2): epoch 0 -> 0.3, epoch 1 -> 0.1 + 0.2 * (1 + cos(pi/2)) / 2 = 0.2, then 0.1
    trainer = Trainer(model, opt, MSELoss(), scheduler=CosineSchedule(0.3, 0.1, 2))
    for _ in range(4):
        trainer.train_epoch(batches(X, T, [8, 8]))
    np.testing.assert_allclose(seen, [0.3, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1], rtol=0, atol=1e-15)
    assert trainer.history["learning_rates"][0] == 0.3
    assert all(type(v) is float for v in trainer.history["learning_rates"])


def test_learning_rate_is_recorded_every_epoch_without_a_schedule():
    model = Linear(3, 2, rng=np.random.default_rng(1))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.05), MSELoss())
    for _ in range(3):
        trainer.train_epoch(batches(X, T, [8, 8]))
    assert trainer.history["learning_rates"] == [0.05, 0.05, 0.05]
    assert trainer.optimizer.lr == 0.05


@pytest.mark.parametrize("k", [1, 2])
def test_stale_gradients_are_cleared_before_the_first_window(k):
    # gradients left from a backward pass outside the trainer must not reach the first update
    def run(stale):
        model = Linear(3, 2, rng=np.random.default_rng(4))
        if stale:
            model.weight.grad = np.full((3, 2), 50.0, dtype=np.float32)
            model.bias.grad = np.full(2, -50.0, dtype=np.float32)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), MSELoss())
        trainer.train_epoch(batches(X, T, [4, 4, 8]), accumulation_steps=k)
        return model

    for a, b in zip(run(True).parameters(), run(False).parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_set_epoch_and_shuffled_order_follow_the_trainer_epoch():
    ds = TensorDataset(X, T)
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=7)
    model = Linear(3, 2, rng=np.random.default_rng(1))
    seen = []

    class Spy(MSELoss):
        def __call__(self, p, t):
            seen.append(t.data.copy())
            return super().__call__(p, t)

    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), Spy())
    trainer.epoch = 3
    loader.set_epoch(0)  # the trainer overrides it
    trainer.train_epoch(loader)
    order = loader.epoch_order(3)
    np.testing.assert_array_equal(np.concatenate(seen), T[order])


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "2", None])
def test_bad_accumulation_steps_change_nothing(bad):
    model = Linear(3, 2, rng=np.random.default_rng(1))
    before = model.weight.data.copy()
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(),
                      scheduler=CosineSchedule(0.5, 0.1, 3))
    opt_lr = trainer.optimizer.lr
    with pytest.raises(ValueError, match="accumulation_steps") as info:
        trainer.train_epoch(batches(X, T, [8, 8]), accumulation_steps=bad)
    assert repr(bad) in str(info.value)
    assert (trainer.epoch, trainer.step, trainer.optimizer.lr) == (0, 0, opt_lr)
    assert all(v == [] for v in trainer.history.values())
    np.testing.assert_array_equal(model.weight.data, before)


def test_bad_grad_clip_norm():
    model = Linear(3, 2)
    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="grad_clip_norm"):
            Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), grad_clip_norm=bad)


def test_zero_loss_leftover_window_is_a_window():
    model = Linear(3, 2, rng=np.random.default_rng(2))
    perfect = f64(model(Tensor(X)).data).astype(np.float32)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0, momentum=0.9), MSELoss())
    assert trainer.train_epoch(batches(X, perfect, [4, 4, 4, 4, ]), accumulation_steps=3) == 0.0
    assert trainer.step == 2


def test_generator_loader_and_empty_epoch():
    model = Linear(3, 2, rng=np.random.default_rng(1))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
    loss = trainer.train_epoch(b for b in batches(X, T, [7, 9]))
    assert math.isfinite(loss) and trainer.step == 2
    empty = trainer.train_epoch([])
    assert math.isnan(empty) and trainer.epoch == 2 and trainer.step == 2


def test_plain_numpy_batches_are_accepted():
    model = Linear(3, 2, rng=np.random.default_rng(1))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
    trainer.train_epoch([(X[:8], T[:8]), (X[8:], T[8:])])
    assert trainer.step == 2
    with pytest.raises(ValueError, match="pair"):
        trainer.train_epoch([(X, T, T)])


def test_nonfinite_window_is_skipped_and_reported_on_stdout(capfd):
    bad = X.copy()
    bad[4:8] = np.nan
    model = Linear(3, 2, rng=np.random.default_rng(5))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), MSELoss(),
                      grad_clip_norm=1.0)
    loss = trainer.train_epoch(batches(bad, T, [4, 4, 4, 4]), accumulation_steps=1)
    out, err = capfd.readouterr()
    assert err == "", "nothing may reach stderr"
    assert "skipped" in out
    assert trainer.skipped_steps == 1 and trainer.step == 3
    assert math.isnan(loss), "the epoch loss shows the nan"
    norms = trainer.history["grad_norms"]
    assert len(norms) == 4 and math.isnan(norms[1])
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    # the same as a run without the bad batch: the skipped window left no trace
    clean = Linear(3, 2, rng=np.random.default_rng(5))
    Trainer(clean, SGD(clean.parameters(), lr=0.1, momentum=0.9), MSELoss(),
            grad_clip_norm=1.0).train_epoch(
        batches(np.delete(X, range(4, 8), axis=0), np.delete(T, range(4, 8), axis=0), [4, 4, 4]))
    np.testing.assert_array_equal(model.weight.data, clean.weight.data)


def test_the_skipped_message_gets_a_line_of_its_own_beside_the_progress_line(capfd):
    bad = X.copy()
    bad[4:8] = np.nan
    model = Linear(3, 2, rng=np.random.default_rng(5))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), progress=True)
    trainer.train_epoch(batches(bad, T, [4, 4, 4, 4]))
    out, err = capfd.readouterr()
    assert err == ""
    lines = out.replace("\r", "\n").split("\n")
    skipped = [line for line in lines if "skipped" in line]
    assert len(skipped) == 1 and skipped[0].startswith("Trainer: epoch 0:"), out
    assert out.endswith("\n")


def test_progress_goes_to_stdout_only(capfd):
    model = Linear(3, 2, rng=np.random.default_rng(1))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), progress=True)
    trainer.train_epoch(DataLoader(TensorDataset(X, T), batch_size=4))
    out, err = capfd.readouterr()
    assert err == ""
    assert "epoch   0" in out and "batch 4/4" in out and out.endswith("\n")
    quiet = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
    quiet.train_epoch(DataLoader(TensorDataset(X, T), batch_size=4))
    assert capfd.readouterr() == ("", "")


def test_evaluate_measures_without_changing_anything():
    model = Sequential(Linear(3, 4, rng=np.random.default_rng(0)),
                       Dropout(0.5, rng=np.random.default_rng(1)))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    W, b = f64(model.parameters()[0].data), f64(model.parameters()[1].data)
    Z = f64(X) @ W + b
    logp = Z - Z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    want_loss = float(-logp[np.arange(16), LABELS].mean())
    want_acc = float(np.mean(Z.argmax(1) == LABELS))
    grads = [np.full(p.data.shape, 3.0, np.float32) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad = g.copy()
    rng_before = json.dumps(model.state_dict()["1.rng"])
    model.train()
    loss, acc = trainer.evaluate(batches(X, LABELS, [5, 5, 6]))
    assert type(loss) is float and type(acc) is float
    assert abs(loss - want_loss) < 1e-5 and abs(acc - want_acc) < 1e-12
    assert model.training is True
    assert json.dumps(model.state_dict()["1.rng"]) == rng_before
    for p, g in zip(model.parameters(), grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)
    np.testing.assert_array_equal(f64(model.parameters()[0].data), W)
    onehot = np.eye(4, dtype=np.float32)[LABELS]
    loss2, acc2 = trainer.evaluate(iter(batches(X, onehot, [16])))
    assert abs(loss2 - want_loss) < 1e-5 and acc2 == acc
    assert trainer.history["eval_loss"] == [loss, loss2]
    assert trainer.history["eval_accuracy"] == [acc, acc2]


def test_evaluate_records_no_graph():
    model = Sequential(Linear(3, 4, rng=np.random.default_rng(0)), ReLU())
    recorded = []

    def spy(outputs, targets):
        recorded.append((outputs.requires_grad, outputs._op, outputs._inputs))
        return CrossEntropyLoss()(outputs, targets)

    Trainer(model, SGD(model.parameters(), lr=0.1), spy).evaluate(batches(X, LABELS, [8, 8]))
    assert recorded == [(False, None, ())] * 2
    spy_trainer = Trainer(model, SGD(model.parameters(), lr=0.1), spy)
    spy_trainer.train_epoch(batches(X, LABELS, [16]))
    assert recorded[-1][0] is True, "training does record (the spy can tell)"


def test_evaluate_restores_mode_even_when_the_loss_fails():
    model = Sequential(Linear(3, 2), Dropout(0.5))
    model.train()

    def broken(outputs, targets):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Trainer(model, SGD(model.parameters(), lr=0.1), broken).evaluate(batches(X, T, [16]))
    assert model.training is True and all(m.training for _, m in model.named_modules())


def test_evaluate_regression_and_empty():
    model = Linear(3, 2, rng=np.random.default_rng(3))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
    Y = f64(X) @ f64(model.weight.data) + f64(model.bias.data)
    loss, acc = trainer.evaluate(batches(X, T, [3, 13]))
    assert abs(loss - float(np.mean((Y - f64(T)) ** 2))) < 1e-5 and math.isnan(acc)
    loss, acc = trainer.evaluate([])
    assert math.isnan(loss) and math.isnan(acc)


@pytest.mark.parametrize(
    ("outputs", "targets", "want"),
    [
        ([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]], np.array([1, 1, 1]), 2),
        ([[0.1, 0.9], [0.8, 0.2]], [[0.0, 1.0], [0.0, 1.0]], 1),
        ([[0.1, 0.9], [0.8, 0.2]], [[0.3, 0.7], [0.6, 0.4]], 2),  # probability targets
        ([[0.9], [0.2], [0.5], [0.4]], [[1.0], [0.0], [0.0], [1.0]], 2),  # binary, threshold 0.5
        ([0.9, 0.2], [1.0, 0.0], 2),
        ([[0.5, -1.0], [2.0, 0.3]], [[0.4, -1.1], [1.9, 0.2]], None),  # regression, 2 outputs
        ([[0.3], [2.5]], [[0.3], [2.5]], None),  # regression, 1 output
        # class indices as whole-valued floats count like integers (CrossEntropyLoss accepts them)
        ([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]], np.array([1.0, 0.0, 0.0]), 2),
        ([[0.1, 0.9]], np.array([0.0]), 0),
        ([[0.6], [0.7]], np.array([1.0, 2.0]), None),  # one output, a target that is not 0/1
    ],
)
def test_count_correct(outputs, targets, want):
    got = count_correct(Tensor(np.asarray(outputs, dtype=np.float32)), Tensor(np.asarray(targets)))
    assert got == want and (want is None or type(got) is int)
