"""Benchmark: training the digits MLP of milestone 3 with tinytorch, PyTorch and plain NumPy.

The workload is the one of `milestones/03_mlp_digits_1986/mlp_digits.py`: the 8x8 digits
(`data/digits.npz`, SHA-256 checked), the same stratified split (seed 1986, 1,438 train
and 359 test digits), pixels / 16 as float32, a 64-256-10 MLP with ReLU, batches of 64
reshuffled every epoch in the DataLoader's order (`default_rng([seed, epoch])`),
cross-entropy, global gradient-norm clipping at 5, SGD with momentum 0.9 and weight decay
0.001, a cosine learning rate from 0.1 to 0.001 over the epochs. All three start from the
same initial weights. Each trains the same epochs in ONE process:

* tinytorch: the package's `Trainer.train_epoch` (DataLoader, autograd, clip, SGD);
  also, for information, the same epoch as a plain loop without the Trainer;
* torch: `torch.nn` and `torch.optim.SGD` on the CPU, `clip_grad_norm_`;
* hand: forward, backward, clipping and the momentum update written out in NumPy (the floor).

The sides take turns epoch by epoch, so a burst of load from other processes hits all of
them alike. The first `--warmup` epochs are not counted; the median (and the minimum) of
the rest are reported in ms per epoch, with the goals tinytorch/torch <= 0.75 and
tinytorch/hand <= 2.5 as PASS/FAIL lines. Informational: the exit status is always 0.

Threads: small matrices are slowest with several BLAS threads on a busy machine, so every
side gets the same fixed thread count (`--threads`, default 1): OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are set before NumPy or torch is imported,
threadpoolctl (when installed) limits and reports the BLAS pools, and torch gets
`torch.set_num_threads`. The output says what was in force.

    PYTHONPATH=. /path/to/venv-with-torch/bin/python bench/mlp_bench.py [--epochs 30]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIGITS_SHA256 = "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e"
GOAL_TORCH = 0.75
GOAL_HAND = 2.5
SEED = 1986
HIDDEN = 256
BATCH = 64
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-3
CLIP = 5.0
MAX_LR = 0.1
MIN_LR = MAX_LR / 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per side (milestone: 30)")
    parser.add_argument("--warmup", type=int, default=3, help="first epochs not counted")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads, all sides")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    args = parser.parse_args()
    if args.epochs <= args.warmup:
        parser.error("--epochs must be larger than --warmup")
    return args


ARGS = parse_args()
# Before NumPy or torch is imported: their thread pools read these once, at load time.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))  # the package from this checkout when run from anywhere
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.dataloader import DataLoader, TensorDataset  # noqa: E402
from tinytorch.core.layers import Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.optimizers import SGD  # noqa: E402
from tinytorch.core.tensor import Tensor, no_grad  # noqa: E402
from tinytorch.core.training import CosineSchedule, Trainer, clip_grad_norm  # noqa: E402

try:
    import threadpoolctl
except ImportError:  # optional: the environment variables above already pin the pools
    threadpoolctl = None

torch: Any = None
if not ARGS.no_torch:
    try:
        import torch
    except ImportError:
        torch = None


# ---- data: the milestone's split ---------------------------------------------------------
def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) exactly as milestone 3 makes them."""
    path = ROOT / "data" / "digits.npz"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != DIGITS_SHA256:
        raise SystemExit(f"{path}: SHA-256 {digest} is not the course's {DIGITS_SHA256}")
    with np.load(path, allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    rng = np.random.default_rng(SEED)
    test = []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test.extend(members[: round(0.2 * len(members))])
    test_idx = np.sort(np.array(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    pixels = images.reshape(len(images), 64).astype(np.float32) / 16.0
    targets = labels.astype(np.int64)
    return pixels[train_idx], targets[train_idx], pixels[test_idx], targets[test_idx]


def epoch_order(n: int, epoch: int) -> np.ndarray:
    """The DataLoader's order of `epoch` for seed SEED (shuffle=True)."""
    return np.random.default_rng([SEED, epoch]).permutation(n)


def cosine_lr(epoch: int, epochs: int) -> float:
    """CosineSchedule(MAX_LR, MIN_LR, epochs).get_lr(epoch), written out."""
    return MIN_LR + (MAX_LR - MIN_LR) * (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0


def initial_weights() -> list[np.ndarray]:
    """[W1 (64, 256), b1, W2 (256, 10), b2]: the milestone's initial weights (float32)."""
    rng = np.random.default_rng(SEED)  # as the milestone's make_model(256, 1986)
    model = Sequential(Linear(64, HIDDEN, rng=rng), ReLU(), Linear(HIDDEN, 10, rng=rng))
    return [p.data.copy() for p in model.parameters()]


# ---- the sides -----------------------------------------------------------------------------
class TinytorchTrainerSide:
    """The package as a student uses it: Trainer(model, SGD, CrossEntropyLoss, schedule, clip)."""

    name = "tinytorch"

    def __init__(
        self, X: np.ndarray, y: np.ndarray, weights: list[np.ndarray], epochs: int
    ) -> None:
        self.model = Sequential(Linear(64, HIDDEN), ReLU(), Linear(HIDDEN, 10))
        for p, w in zip(self.model.parameters(), weights, strict=True):
            p.data[...] = w
        optimizer = SGD(self.model.parameters(), lr=MAX_LR, momentum=MOMENTUM,
                        weight_decay=WEIGHT_DECAY)
        self.trainer = Trainer(self.model, optimizer, CrossEntropyLoss(),
                               scheduler=CosineSchedule(MAX_LR, MIN_LR, epochs),
                               grad_clip_norm=CLIP)
        self.loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True, seed=SEED)

    def epoch(self, epoch: int) -> float:
        return self.trainer.train_epoch(self.loader)

    def predict(self, X: np.ndarray) -> np.ndarray:
        with no_grad():
            return self.model(Tensor(X)).data.argmax(axis=1)


class TinytorchLoopSide(TinytorchTrainerSide):
    """The same work as a plain loop over the package, without the Trainer (information)."""

    name = "tinytorch loop"

    def __init__(
        self, X: np.ndarray, y: np.ndarray, weights: list[np.ndarray], epochs: int
    ) -> None:
        super().__init__(X, y, weights, epochs)
        self.optimizer = self.trainer.optimizer
        self.loss_fn = CrossEntropyLoss()
        self.params = self.model.parameters()
        self.epochs = epochs

    def epoch(self, epoch: int) -> float:
        self.optimizer.lr = cosine_lr(epoch, self.epochs)
        self.loader.set_epoch(epoch)
        total, count = 0.0, 0
        for xb, yb in self.loader:
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            clip_grad_norm(self.params, CLIP)
            self.optimizer.step()
            self.optimizer.zero_grad()
            total += float(loss.data) * len(yb.data)
            count += len(yb.data)
        return total / count


class TorchSide:
    """torch.nn + torch.optim.SGD on the CPU, the same batches and start."""

    name = "torch"

    def __init__(
        self, X: np.ndarray, y: np.ndarray, weights: list[np.ndarray], epochs: int
    ) -> None:
        nn = torch.nn
        self.model = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
        with torch.no_grad():  # tinytorch stores W as (in, out), torch as (out, in)
            self.model[0].weight.copy_(torch.from_numpy(weights[0].T.copy()))
            self.model[0].bias.copy_(torch.from_numpy(weights[1]))
            self.model[2].weight.copy_(torch.from_numpy(weights[2].T.copy()))
            self.model[2].bias.copy_(torch.from_numpy(weights[3]))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=MAX_LR, momentum=MOMENTUM,
                                         weight_decay=WEIGHT_DECAY)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.loss_fn = nn.CrossEntropyLoss()
        self.epochs = epochs

    def epoch(self, epoch: int) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = cosine_lr(epoch, self.epochs)
        order = torch.from_numpy(epoch_order(len(self.y), epoch))
        total = 0.0
        params = list(self.model.parameters())
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            xb, yb = self.X[rows], self.y[rows]
            loss = self.loss_fn(self.model(xb), yb)
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            self.optimizer.step()
            total += loss.item() * len(rows)
        return total / len(order)

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(X)).argmax(dim=1).numpy()


class HandSide:
    """Forward, backward, clipping and SGD with momentum and weight decay, by hand in NumPy."""

    name = "hand"

    def __init__(
        self, X: np.ndarray, y: np.ndarray, weights: list[np.ndarray], epochs: int
    ) -> None:
        self.X, self.y = X, y
        self.W1, self.b1, self.W2, self.b2 = (w.copy() for w in weights)
        self.buffers: list[np.ndarray] | None = None
        self.epochs = epochs

    def epoch(self, epoch: int) -> float:
        lr = cosine_lr(epoch, self.epochs)
        X, y = self.X, self.y
        order = epoch_order(len(y), epoch)
        total = 0.0
        params = (self.W1, self.b1, self.W2, self.b2)
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            xb, yb = X[rows], y[rows]
            n = len(rows)
            # forward
            h = xb @ self.W1 + self.b1
            a = np.maximum(h, 0)
            z = a @ self.W2 + self.b2
            shifted = z - z.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            sums = e.sum(axis=1, keepdims=True)
            total += float(np.log(sums[:, 0]).sum() - shifted[np.arange(n), yb].sum())
            # backward: dz = (softmax - onehot) / n
            dz = e / sums
            dz[np.arange(n), yb] -= 1.0
            dz /= n
            grads = [None, None, a.T @ dz, dz.sum(axis=0)]
            da = dz @ self.W2.T
            da *= h > 0
            grads[0], grads[1] = xb.T @ da, da.sum(axis=0)
            # clip the global L2 norm
            norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
            if norm > CLIP:
                scale = np.float32(CLIP / norm)
                for g in grads:
                    g *= scale
            # SGD: g += wd * w; buf = mu * buf + g (buf = g on the first step); w -= lr * buf
            for g, w in zip(grads, params, strict=True):
                g += WEIGHT_DECAY * w
            if self.buffers is None:
                self.buffers = [g.copy() for g in grads]
            else:
                for buf, g in zip(self.buffers, grads, strict=True):
                    buf *= MOMENTUM
                    buf += g
            for w, buf in zip(params, self.buffers, strict=True):
                w -= np.float32(lr) * buf
        return total / len(order)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (np.maximum(X @ self.W1 + self.b1, 0) @ self.W2 + self.b2).argmax(axis=1)


# ---- the run ----------------------------------------------------------------------------------
def thread_report() -> list[str]:
    """What thread settings are in force, for the output."""
    lines = [f"threads: --threads {ARGS.threads}; OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, "
             f"MKL_NUM_THREADS = {os.environ['OPENBLAS_NUM_THREADS']} (set before import)"]
    if threadpoolctl is not None:
        for pool in threadpoolctl.threadpool_info():
            lines.append(f"  threadpoolctl: {pool.get('internal_api')} {pool.get('version')} "
                         f"{pool.get('architecture', '')} threads={pool.get('num_threads')} "
                         f"({Path(pool.get('filepath', '')).name})")
    else:
        lines.append("  threadpoolctl: not installed (pip install threadpoolctl to list the pools)")
    if torch is not None:
        lines.append(f"  torch {torch.__version__}: set_num_threads({ARGS.threads}) -> "
                     f"get_num_threads()={torch.get_num_threads()}, "
                     f"interop={torch.get_num_interop_threads()}")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        lines.append(f"  note: OPENBLAS_CORETYPE={coretype} is set; it can slow NumPy's BLAS "
                     "(see bench/README.md)")
    return lines


def main() -> int:
    if torch is not None:
        torch.set_num_threads(ARGS.threads)
        torch.set_num_interop_threads(1)
    limiter = threadpoolctl.threadpool_limits(ARGS.threads) if threadpoolctl is not None else None
    X, y, X_test, y_test = load_data()
    weights = initial_weights()
    epochs = ARGS.epochs
    print(f"workload: digits MLP 64-{HIDDEN}-10 ReLU, {len(X)} train / {len(X_test)} test, "
          f"batch {BATCH} ({-(-len(X) // BATCH)} updates per epoch), SGD momentum {MOMENTUM}, "
          f"weight decay {WEIGHT_DECAY}, clip {CLIP}, cosine lr {MAX_LR} -> {MIN_LR}, "
          f"{epochs} epochs, first {ARGS.warmup} not counted")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    for line in thread_report():
        print(line)

    kinds: list[Callable[..., Any]] = [TinytorchTrainerSide, TinytorchLoopSide, HandSide]
    if torch is not None:
        kinds.insert(1, TorchSide)
    else:
        print("torch: not importable here, its side is skipped (see bench/README.md)")
    sides = [kind(X, y, weights, epochs) for kind in kinds]
    times: dict[str, list[float]] = {side.name: [] for side in sides}
    losses: dict[str, float] = {}
    for epoch in range(epochs):
        for side in sides:  # take turns, so load from other processes hits every side alike
            start = time.perf_counter()
            losses[side.name] = side.epoch(epoch)
            elapsed = time.perf_counter() - start
            if epoch >= ARGS.warmup:
                times[side.name].append(elapsed)
    if limiter is not None:
        limiter.restore_original_limits()

    print()
    print(f"{'side':<16}{'median ms/epoch':>16}{'min ms/epoch':>14}{'last loss':>11}"
          f"{'test accuracy':>15}")
    medians = {}
    for side in sides:
        medians[side.name] = statistics.median(times[side.name])
        accuracy = float(np.mean(side.predict(X_test) == y_test))
        fastest = min(times[side.name])
        print(f"{side.name:<16}{medians[side.name] * 1e3:>16.2f}{fastest * 1e3:>14.2f}"
              f"{losses[side.name]:>11.4f}{accuracy:>15.4f}")
    print(f"(medians over {epochs - ARGS.warmup} epochs per side)")
    print()
    tiny = medians["tinytorch"]
    if "torch" in medians:
        ratio = tiny / medians["torch"]
        verdict = "PASS" if ratio <= GOAL_TORCH else "FAIL"
        print(f"tinytorch/torch = {ratio:.2f}  (goal <= {GOAL_TORCH})  {verdict}")
    else:
        print(f"tinytorch/torch = n/a  (goal <= {GOAL_TORCH})  SKIPPED: torch not importable")
    ratio = tiny / medians["hand"]
    verdict = "PASS" if ratio <= GOAL_HAND else "FAIL"
    print(f"tinytorch/hand  = {ratio:.2f}  (goal <= {GOAL_HAND})  {verdict}")
    print(f"Trainer overhead: tinytorch/tinytorch loop = {tiny / medians['tinytorch loop']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
