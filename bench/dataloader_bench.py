"""Benchmark: one epoch of tinytorch's DataLoader against plain NumPy indexing.

Data: 60,000 x 784 float32 samples (uniform random from a seeded generator) and int64
labels, batches of 64. Both sides cut the same batches out of the same arrays in the
same run: unshuffled with slices, shuffled with one fancy index per array per batch
(the NumPy side also draws the same permutation, `default_rng([seed, epoch])`).
The loader's extra work is wrapping each batch into Tensors.

Prints the time per epoch, the ratio and a PASS/FAIL line per mode against the goal
(loader within 1.5x of NumPy). Informational: the exit status is always 0.

    .venv/bin/python bench/dataloader_bench.py [--samples N] [--repeats R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from tinytorch.core.dataloader import DataLoader, TensorDataset

GOAL = 1.5
BATCH = 64
SEED = 0


def numpy_epoch(X: np.ndarray, y: np.ndarray, shuffle: bool, epoch: int) -> int:
    """One epoch with plain NumPy; returns the number of batches."""
    n = len(X)
    order = np.random.default_rng([SEED, epoch]).permutation(n) if shuffle else None
    batches = 0
    for start in range(0, n, BATCH):
        rows = slice(start, start + BATCH) if order is None else order[start : start + BATCH]
        X[rows], y[rows]  # the batch is made and dropped, as the loader's is
        batches += 1
    return batches


def loader_epoch(loader: DataLoader) -> int:
    """One epoch of the loader; returns the number of batches."""
    batches = 0
    for _xb, _yb in loader:
        batches += 1
    return batches


def best_time(function: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Shortest wall time of `repeats` calls (least disturbed by other processes)."""
    best, result = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60_000, help="number of samples")
    parser.add_argument("--repeats", type=int, default=5, help="epochs timed per side, best kept")
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    X = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=args.samples)
    dataset = TensorDataset(X, y)
    print(
        f"data: X {X.shape} {X.dtype} ({X.nbytes / 2**20:.0f} MiB), "
        f"y {y.shape} {y.dtype}; batch {BATCH}"
    )

    verdicts = []
    for mode, shuffle in (("unshuffled", False), ("shuffled", True)):
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=shuffle, seed=SEED)

        # Same epoch on both sides: fix the loader's epoch before each timed run.
        def run_loader(loader: DataLoader = loader) -> int:
            loader.set_epoch(0)
            return loader_epoch(loader)

        def run_numpy(shuffle: bool = shuffle) -> int:
            return numpy_epoch(X, y, shuffle, 0)

        run_loader(), run_numpy()  # warm-up
        t_numpy, n_numpy = best_time(run_numpy, args.repeats)
        t_loader, n_loader = best_time(run_loader, args.repeats)
        assert n_numpy == n_loader == len(loader), (n_numpy, n_loader, len(loader))
        ratio = t_loader / t_numpy
        extra = (t_loader - t_numpy) / n_loader * 1e6
        verdict = "PASS" if ratio <= GOAL else "FAIL"
        verdicts.append((mode, verdict, ratio))
        print(
            f"{mode:10s}: numpy {t_numpy * 1e3:8.2f} ms  loader {t_loader * 1e3:8.2f} ms  "
            f"ratio {ratio:5.2f}x  ({extra:+.2f} us per batch, {n_loader} batches)"
        )
    for mode, verdict, ratio in verdicts:
        print(f"{verdict}: {mode} loader/numpy = {ratio:.2f}x (goal <= {GOAL}x)")
    if any(mode == "unshuffled" and verdict == "FAIL" for mode, verdict, _ in verdicts):
        print(
            "note: unshuffled batches are views, so the NumPy side does almost no work per batch;\n"
            "      the gap is the fixed cost of wrapping two Tensors per batch ('us per batch')."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
