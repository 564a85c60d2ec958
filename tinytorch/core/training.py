"""Generated from modules/08_training/training.py by `course build`; do not edit.

Change the module file and run `course build --module 08`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from tinytorch.core.tensor import Tensor, no_grad


def _is_real(value: Any) -> bool:
    """True for Python and NumPy ints and floats; False for bools and everything else."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


def _check_number(value: Any, name: str, where: str, minimum: float = 0.0) -> float:
    """`value` as a float, or a ValueError naming `name` unless it is a finite number >= minimum."""
    if not _is_real(value) or not math.isfinite(float(value)) or float(value) < minimum:
        raise ValueError(f"{where}: {name} must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def _check_int(value: Any, name: str, where: str, minimum: int) -> int:
    """`value` as an int, or a ValueError naming `name` unless it is an int >= minimum (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class CosineSchedule:
    """Cosine annealing of the learning rate from `max_lr` (epoch 0) to `min_lr`.

    lr(e) = min_lr + (max_lr - min_lr) * (1 + cos(pi * e / total_epochs)) / 2 for
    e < total_epochs, and min_lr for every epoch from total_epochs on.

    Args:
        max_lr: the rate of epoch 0, a finite number >= min_lr.
        min_lr: the final rate, a finite number >= 0.
        total_epochs: the epoch at which min_lr is reached, an int >= 1.
    """

    def __init__(self, max_lr: float = 0.1, min_lr: float = 0.01, total_epochs: int = 100) -> None:
        self.max_lr = _check_number(max_lr, "max_lr", "CosineSchedule")
        self.min_lr = _check_number(min_lr, "min_lr", "CosineSchedule")
        self.total_epochs = _check_int(total_epochs, "total_epochs", "CosineSchedule", minimum=1)
        if self.min_lr > self.max_lr:
            raise ValueError(
                f"CosineSchedule: min_lr must be <= max_lr, got min_lr={min_lr!r} > max_lr={max_lr!r}"
            )

    def get_lr(self, epoch: int) -> float:
        """The learning rate of `epoch` (an int >= 0), as a Python float."""
        epoch = _check_int(epoch, "epoch", "CosineSchedule.get_lr", minimum=0)
        if epoch >= self.total_epochs:
            return self.min_lr
        if epoch == 0:
            return self.max_lr       # min_lr + (max_lr - min_lr) can miss max_lr by a rounding
        fraction = (1.0 + math.cos(math.pi * epoch / self.total_epochs)) / 2.0
        return self.min_lr + (self.max_lr - self.min_lr) * fraction

    def state_dict(self) -> dict[str, Any]:
        """The settings of the schedule (a JSON-able dict)."""
        return {"max_lr": self.max_lr, "min_lr": self.min_lr, "total_epochs": self.total_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore settings saved by `state_dict`; checks everything before changing anything."""
        missing = [key for key in ("max_lr", "min_lr", "total_epochs") if key not in state]
        if missing:
            raise ValueError(f"CosineSchedule.load_state_dict: state is missing {missing}")
        checked = CosineSchedule(state["max_lr"], state["min_lr"], state["total_epochs"])
        self.max_lr, self.min_lr, self.total_epochs = (
            checked.max_lr, checked.min_lr, checked.total_epochs,
        )

    def __repr__(self) -> str:
        return (
            f"CosineSchedule(max_lr={self.max_lr}, min_lr={self.min_lr}, "
            f"total_epochs={self.total_epochs})"
        )


def _check_norm_type(norm_type: Any) -> float:
    """`norm_type` as a float: a number > 0 or math.inf."""
    if not _is_real(norm_type) or math.isnan(float(norm_type)) or float(norm_type) <= 0:
        raise ValueError(f"clip_grad_norm: norm_type must be a number > 0 or math.inf, got {norm_type!r}")
    return float(norm_type)


def _distinct(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The arrays with repeats of the same object removed, in order: each array once, for
    scaling. (The norm still counts every parameter's gradient, shared or not.)"""
    seen: set[int] = set()
    out = []
    for array in arrays:
        if id(array) not in seen:
            seen.add(id(array))
            out.append(array)
    return out


def _total_norm(grads: list[np.ndarray], norm_type: float = 2.0) -> float:
    """The `norm_type`-norm of all `grads` taken as one vector, as a Python float.

    No overflow or underflow for any finite entries and any norm: float32 squares (p = 2)
    are summed in float64 (whose range holds them all); otherwise, and for every p other
    than 1 and 2 even in float32, the entries are divided by the largest magnitude before
    powers are taken, in float64 (the largest of all the arrays, or of each array with the
    per-array norms combined: either keeps every entry in [-1, 1]). Returns inf or nan
    when an entry is not finite, 0.0 for no gradients.
    """
    if not grads:
        return 0.0
    if norm_type == 2.0 and all(g.dtype.kind == "f" and g.dtype.itemsize <= 4 for g in grads):
        # float32 (or float16) entries: their squares summed in float64 can neither
        # overflow nor underflow, so the common case needs no scaling (nan/inf propagate)
        total = 0.0
        for grad in grads:
            flat = grad.ravel().astype(np.float64)
            total += float(np.dot(flat, flat))
        return math.sqrt(total)
    with np.errstate(all="ignore"):
        norms = np.empty(len(grads), dtype=np.float64)
        for i, grad in enumerate(grads):
            if grad.size == 0:
                norms[i] = 0.0
                continue
            biggest = float(np.max(np.abs(grad)))     # nan if any nan, inf if any inf
            if norm_type == math.inf or biggest == 0.0 or not math.isfinite(biggest):
                norms[i] = biggest
                continue
            scaled = np.divide(grad, biggest, dtype=np.float64)   # entries in [-1, 1]
            if norm_type == 2.0:
                norms[i] = biggest * math.sqrt(float(np.dot(scaled.ravel(), scaled.ravel())))
            else:
                norms[i] = biggest * float(np.sum(np.abs(scaled) ** norm_type)) ** (1.0 / norm_type)
        if np.isnan(norms).any():
            return math.nan
        biggest = float(norms.max())
        if norm_type == math.inf or biggest == 0.0 or biggest == math.inf:
            return biggest
        ratios = norms / biggest
        if norm_type == 2.0:
            return biggest * math.sqrt(float(np.dot(ratios, ratios)))
        return biggest * float(np.sum(ratios ** norm_type)) ** (1.0 / norm_type)


def clip_grad_norm(
    parameters: Iterable[Any],
    max_norm: float = 1.0,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so that their global norm is at most `max_norm`.

    Args:
        parameters: tensors (or one tensor); those whose `.grad` is None are ignored.
        max_norm: the largest allowed global norm, a finite number >= 0.
        norm_type: p of the p-norm (> 0), or math.inf for the largest magnitude.
        error_if_nonfinite: raise RuntimeError when the norm is inf or nan.

    Returns:
        The global norm before clipping, as a Python float (0.0 when no gradients).
        When it is not finite, the gradients are left unchanged.
    """
    max_norm = _check_number(max_norm, "max_norm", "clip_grad_norm")
    norm_type = _check_norm_type(norm_type)
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = _total_norm(grads, norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(
                f"clip_grad_norm: the total gradient norm is {total}, not finite; "
                "the gradients were left unchanged"
            )
        return total
    if total > max_norm:
        factor = np.float64(max_norm / total)
        for grad in _distinct(grads):
            np.multiply(grad, factor, out=grad, casting="same_kind")   # float64 product, rounded once
    return total


class Trainer:
    """Trains a model: epochs with schedule, clipping and accumulation; evaluation; checkpoints.

    Args:
        model: a Module: `model(x)`, `parameters()`, `named_parameters()`, `train()`,
            `eval()`, `training`, `state_dict()`, `load_state_dict()`.
        optimizer: `lr`, `step()`, `zero_grad()`, `state_dict()`, `load_state_dict()`.
        loss_fn: `loss_fn(outputs, targets)` -> scalar Tensor, the mean over the batch.
        scheduler: optional; `get_lr(epoch)` sets the rate at the start of each epoch.
        grad_clip_norm: optional max global L2 norm of the gradient of each update.
        progress: print a progress line to stdout while training (never to stderr).
    """

    HISTORY_KEYS = ("train_loss", "eval_loss", "eval_accuracy", "learning_rates", "grad_norms")
    STATE_KEYS = ("epoch", "step", "skipped_steps", "grad_clip_norm", "parameter_shapes",
                  "model", "optimizer", "scheduler", "history")

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Any,
        scheduler: Any = None,
        grad_clip_norm: float | None = None,
        progress: bool = False,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = (
            None if grad_clip_norm is None
            else _check_number(grad_clip_norm, "grad_clip_norm", "Trainer")
        )
        self.progress = bool(progress)
        self.epoch = 0
        self.step = 0
        self.skipped_steps = 0
        self.history: dict[str, list[float]] = {key: [] for key in self.HISTORY_KEYS}
        self._last_print = -math.inf  # the first progress line always shows
        self._progress_open = False   # a progress line without its newline yet

    def train_epoch(self, dataloader: Iterable[Any], accumulation_steps: int = 1) -> float:
        """Train one epoch; return its mean training loss, weighted by samples.

        Every `accumulation_steps` micro-batches (and the shorter window at the end) make
        one optimizer update, equal to the update of one batch of all their samples.
        """
        accumulation_steps = _check_int(
            accumulation_steps, "accumulation_steps", "Trainer.train_epoch", minimum=1
        )
        return _train_epoch(self, dataloader, accumulation_steps)

    def evaluate(self, dataloader: Iterable[Any]) -> tuple[float, float]:
        """Mean loss and accuracy over `dataloader`, weighted by samples, in eval mode.

        Accuracy is nan when the outputs are not class scores (see `count_correct`);
        an empty loader gives (nan, nan). The model's previous mode is restored.
        """
        return _evaluate(self, dataloader)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as a tree of dicts, lists, arrays and JSON values."""
        return _state_dict(self)

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save the complete training state to `path` (atomically, no pickle)."""
        write_checkpoint(path, self.state_dict())

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore the state saved by `save_checkpoint`. Everything is checked first; on any
        problem a CheckpointError names the file and the trainer is left unchanged."""
        _load_checkpoint(self, path)

    # ---- used by the functions below ---------------------------------------------------
    def _show_progress(self, batches: int, total: int | None, loss_sum: float, samples: int,
                       final: bool) -> None:
        """One progress line on stdout (mean loss so far), refreshed at most 5 times a second;
        prints nothing unless the trainer was made with progress=True."""
        if not self.progress:
            return
        now = time.perf_counter()
        if not final and now - self._last_print < 0.2:
            return
        self._last_print = now
        loss = loss_sum / samples if samples > 0 else math.nan
        of = f"/{total}" if total is not None else ""
        line = (f"epoch {self.epoch:>3} | batch {batches}{of} | loss {loss:.4f} | "
                f"lr {float(self.optimizer.lr):.4g} | steps {self.step}")
        print("\r" + line, end="\n" if final else "", file=sys.stdout, flush=True)
        self._progress_open = not final

    def _print_line(self, text: str) -> None:
        """Print `text` as a line of its own on stdout: an unfinished progress line (redrawn
        in place with "\\r") is ended first, so the two never share a line."""
        if self._progress_open:
            print(file=sys.stdout)
            self._progress_open = False
        print(text, file=sys.stdout, flush=True)

    def _apply_state(self, state: dict[str, Any]) -> None:
        """Copy a checked state into the model, optimizer, schedule and counters."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.skipped_steps = int(state["skipped_steps"])
        clip = state["grad_clip_norm"]
        self.grad_clip_norm = None if clip is None else float(clip)
        self.history = {
            key: [float(x) for x in np.asarray(state["history"][key], dtype=np.float64)]
            for key in self.HISTORY_KEYS
        }


def _close_window(trainer: Trainer, params: list[Any], divisor: int) -> float:
    """End an accumulation window with one update; return the gradient norm before clipping.

    Divide the summed gradients by `divisor` (nothing when it is 1), record the norm in
    `history["grad_norms"]` (clipping first when `trainer.grad_clip_norm` is set), then
    step and count it in `trainer.step` when the norm is finite, or else skip: count it in
    `trainer.skipped_steps` and print a line containing "skipped" with
    `trainer._print_line` (stdout, on a line of its own). Zero the gradients in both cases.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if divisor != 1:
        for grad in _distinct(grads):
            np.divide(grad, divisor, out=grad)
    if trainer.grad_clip_norm is not None:
        norm = clip_grad_norm(params, trainer.grad_clip_norm)
    else:
        norm = _total_norm(grads, 2.0)
    trainer.history["grad_norms"].append(norm)
    if math.isfinite(norm):
        trainer.optimizer.step()
        trainer.step += 1
    else:
        trainer.skipped_steps += 1
        trainer._print_line(f"Trainer: epoch {trainer.epoch}: gradient norm is {norm}; update skipped "
                            f"and gradients discarded ({trainer.skipped_steps} skipped so far)")
    trainer.optimizer.zero_grad()
    return norm


def _batch_size(inputs: Any) -> int:
    """Number of samples in a batch: the length of its first dimension."""
    shape = getattr(inputs, "shape", None)
    if shape is None:
        shape = np.shape(inputs)
    if len(shape) == 0:
        raise ValueError("Trainer: a batch of inputs needs a batch dimension, got a 0-d value")
    return int(shape[0])


def _as_tensor(value: Any) -> Tensor:
    """Tensors pass through; arrays and lists are wrapped (integer labels keep their dtype)."""
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def _unpack(batch: Any) -> tuple[Tensor, Tensor]:
    """(inputs, targets) of a batch, as Tensors."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = f"{len(batch)} items" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"Trainer: each batch must be a pair (inputs, targets), got {got}")
    return _as_tensor(batch[0]), _as_tensor(batch[1])


def _length_or_none(dataloader: Any) -> int | None:
    """`len(dataloader)`, or None for a loader without a length (a generator)."""
    try:
        return len(dataloader)
    except TypeError:
        return None


def _train_epoch(trainer: Trainer, dataloader: Iterable[Any], accumulation_steps: int) -> float:
    """The work of `trainer.train_epoch` (steps 1-7 of section 3.2).

    Training mode; the epoch's learning rate set from the schedule (if any) and recorded
    every epoch; `set_epoch` on the loader; gradients zeroed before the first batch;
    micro-batches grouped into windows of `accumulation_steps` (counted), each closed by
    `_close_window`; the mean loss weighted by samples recorded and returned (nan for no
    batches); `trainer.epoch` advanced by one.
    """
    total_batches = _length_or_none(dataloader)
    trainer.model.train()
    if trainer.scheduler is not None:
        trainer.optimizer.lr = float(trainer.scheduler.get_lr(trainer.epoch))
    trainer.history["learning_rates"].append(float(trainer.optimizer.lr))
    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(trainer.epoch)
    params = list(trainer.model.parameters())
    trainer.optimizer.zero_grad()               # stale gradients must not leak into step 1
    weighted = accumulation_steps > 1
    loss_sum, samples, batches = 0.0, 0, 0
    window_batches, window_samples = 0, 0
    for batch in dataloader:
        inputs, targets = _unpack(batch)
        n = _batch_size(inputs)
        loss = trainer.loss_fn(trainer.model(inputs), targets)
        if weighted:
            (loss * float(n)).backward()        # gradient of the *sum* over the micro-batch
        else:
            loss.backward()
        loss_sum += float(loss.data) * n
        samples += n
        batches += 1
        window_batches += 1
        window_samples += n
        if window_batches == accumulation_steps:
            _close_window(trainer, params, window_samples if weighted else 1)
            window_batches, window_samples = 0, 0
        trainer._show_progress(batches, total_batches, loss_sum, samples, final=False)
    if window_batches > 0:                      # a short last window, decided by count
        _close_window(trainer, params, window_samples if weighted else 1)
    mean_loss = loss_sum / samples if samples > 0 else math.nan
    trainer.history["train_loss"].append(mean_loss)
    trainer._show_progress(batches, total_batches, loss_sum, samples, final=True)
    trainer.epoch += 1
    return mean_loss


def _is_distribution(rows: np.ndarray) -> bool:
    """True when every row is non-negative and sums to 1 (one-hot or class probabilities)."""
    if rows.dtype.kind not in "fiub" or rows.size == 0:
        return False
    values = rows.astype(np.float64)
    return bool(np.all(values >= 0) and np.allclose(values.sum(axis=1), 1.0, rtol=0, atol=1e-6))


def count_correct(outputs: Any, targets: Any) -> int | None:
    """How many predictions in a batch are right (an int), or None when accuracy is not defined.

    Class scores (N, C) with C >= 2: right when the row's argmax equals the class index
    (targets (N,), integers or whole-valued floats), or the argmax of one-hot/probability
    targets (N, C). One output per sample, (N,) or (N, 1), with N targets that are all 0 or
    1: right when `output >= 0.5` exactly where the target is 1. Anything else: None.
    """
    out = np.asarray(getattr(outputs, "data", outputs))
    tgt = np.asarray(getattr(targets, "data", targets))
    if out.ndim == 2 and out.shape[1] >= 2:
        predicted = out.argmax(axis=1)
        if tgt.shape == out.shape and _is_distribution(tgt):
            labels = tgt.argmax(axis=1)
        elif tgt.shape == (out.shape[0],) and tgt.dtype.kind in "iuf":
            labels = tgt
        else:
            return None
        return int(np.count_nonzero(predicted == labels))
    single = out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)
    if single and tgt.size == out.shape[0] and tgt.size > 0:
        flat = tgt.reshape(-1)
        if np.all((flat == 0) | (flat == 1)):
            return int(np.count_nonzero((out.reshape(-1) >= 0.5) == (flat == 1)))
    return None


def _evaluate(trainer: Trainer, dataloader: Iterable[Any]) -> tuple[float, float]:
    """The work of `trainer.evaluate` (section 3.3): eval mode (the previous mode is put back),
    forward passes under no_grad(), loss and accuracy weighted by samples, both recorded in
    the history and returned as floats; (nan, nan) for an empty loader."""
    model = trainer.model
    was_training = bool(getattr(model, "training", True))
    model.eval()
    loss_sum, samples, correct, countable = 0.0, 0, 0, True
    try:
        with no_grad():
            for batch in dataloader:
                inputs, targets = _unpack(batch)
                n = _batch_size(inputs)
                outputs = model(inputs)
                loss_sum += float(trainer.loss_fn(outputs, targets).data) * n
                samples += n
                if countable:
                    right = count_correct(outputs, targets)
                    if right is None:
                        countable = False
                    else:
                        correct += right
    finally:
        model.train(was_training)
    loss = loss_sum / samples if samples > 0 else math.nan
    accuracy = correct / samples if (countable and samples > 0) else math.nan
    trainer.history["eval_loss"].append(loss)
    trainer.history["eval_accuracy"].append(accuracy)
    return loss, accuracy


CHECKPOINT_FORMAT = "tinytorch-checkpoint"
CHECKPOINT_VERSION = 1
_JSON_MEMBER = "checkpoint.json"
_ARRAY_REF = "__array__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, incomplete, newer or not matching."""


def _split_arrays(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able copy of a state tree, each array moved to `arrays` and left as a reference."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"checkpoint entry {key!r}: object arrays cannot be stored without pickle")
        arrays[key] = value
        return {_ARRAY_REF: key}
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise TypeError(f"checkpoint entry {key!r}: keys must be strings, got {name!r}")
            out[name] = _split_arrays(item, f"{key}/{name}" if key else name, arrays)
        return out
    if isinstance(value, (list, tuple)):
        return [_split_arrays(item, f"{key}/{i}", arrays) for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()                      # NumPy scalar -> Python number (exact)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint entry {key!r}: cannot store a {type(value).__name__}")


def _join_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of `_split_arrays`: references replaced by their arrays."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY_REF}:
            name = value[_ARRAY_REF]
            if name not in arrays:
                raise KeyError(f"array member {name!r} is missing")
            return arrays[name]
        return {name: _join_arrays(item, arrays) for name, item in value.items()}
    if isinstance(value, list):
        return [_join_arrays(item, arrays) for item in value]
    return value


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a state tree to `path` as an uncompressed .npz, atomically (temp file + os.replace)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split_arrays(state, "", arrays)
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state": skeleton}
    text = json.dumps(header, allow_nan=True, separators=(",", ":")).encode("utf-8")
    members = {_JSON_MEMBER: np.frombuffer(text, dtype=np.uint8), **arrays}
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **members)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):          # make the rename itself durable (POSIX)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state tree stored at `path`; CheckpointError (naming the file) if it cannot be used."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: no such checkpoint file") from error
    except Exception as error:  # noqa: BLE001 - any failure to parse means the same thing
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: not a checkpoint (a single .npy array, not an .npz archive)")
    try:
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # noqa: BLE001 - truncated or corrupt member, bad CRC, ...
        raise CheckpointError(
            f"{path}: checkpoint is truncated or corrupt ({type(error).__name__}: {error})"
        ) from error
    raw = arrays.pop(_JSON_MEMBER, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: not a tinytorch checkpoint (no {_JSON_MEMBER} member)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as error:
        raise CheckpointError(f"{path}: {_JSON_MEMBER} is not valid JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tinytorch checkpoint (format {header.get('format')!r})"
                              if isinstance(header, dict) else f"{path}: not a tinytorch checkpoint")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid checkpoint format version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: written in checkpoint format version {version}, but this tinytorch reads "
            f"versions up to {CHECKPOINT_VERSION}; update tinytorch to load it"
        )
    if "state" not in header:
        raise CheckpointError(f"{path}: checkpoint has no 'state' entry")
    try:
        return _join_arrays(header["state"], arrays)
    except KeyError as error:
        raise CheckpointError(f"{path}: checkpoint is incomplete: {error.args[0]}") from error


def _copy_tree(value: Any) -> Any:
    """A deep copy of a state tree (arrays copied, JSON values shared)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copy_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_tree(item) for item in value]
    return value


def _state_dict(trainer: Trainer) -> dict[str, Any]:
    """The work of `trainer.state_dict` (section 3.4): the counters, grad_clip_norm, the
    parameter shapes, the model's, optimizer's and schedule's state dicts and the history as
    float64 arrays, under the keys `Trainer.STATE_KEYS`."""
    scheduler = trainer.scheduler
    return {
        "epoch": trainer.epoch,
        "step": trainer.step,
        "skipped_steps": trainer.skipped_steps,
        "grad_clip_norm": trainer.grad_clip_norm,
        "parameter_shapes": {
            name: list(p.data.shape) for name, p in trainer.model.named_parameters()
        },
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "history": {
            key: np.asarray(trainer.history[key], dtype=np.float64) for key in trainer.HISTORY_KEYS
        },
    }


def _check_state(trainer: Trainer, state: Any, where: str) -> None:
    """Raise CheckpointError("<where>: <problem>") unless `state` fits `trainer` (section 3.5):
    every entry present, the counters ints >= 0, grad_clip_norm None or a finite number >= 0,
    the parameter shapes and the optimizer type those of the trainer, a schedule on both
    sides or on neither, a history of 1-d float arrays."""

    def fail(message: str) -> NoReturn:
        raise CheckpointError(f"{where}: {message}")

    if not isinstance(state, dict):
        fail(f"the checkpoint state is not a dict but a {type(state).__name__}")
    missing = [key for key in trainer.STATE_KEYS if key not in state]
    if missing:
        fail(f"missing entries {missing}")
    for key in ("epoch", "step", "skipped_steps"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail(f"{key} must be an int >= 0, got {value!r}")
    if state["grad_clip_norm"] is not None:
        try:
            _check_number(state["grad_clip_norm"], "grad_clip_norm", "checkpoint")
        except ValueError as error:
            fail(str(error))
    shapes = state["parameter_shapes"]
    own = {name: list(p.data.shape) for name, p in trainer.model.named_parameters()}
    if shapes != own:
        saved = shapes if isinstance(shapes, dict) else {}

        def shape(value: Any) -> str:
            return "no entry" if value is None else str(tuple(value)) if isinstance(value, list) else repr(value)

        for name in [*own, *saved]:
            if saved.get(name) != own.get(name):
                fail(f"parameter {name!r} has shape {shape(saved.get(name))} in the file, "
                     f"but in the model {shape(own.get(name))}")
        fail(f"parameter_shapes is not a dict of shapes: {shapes!r}")
    opt, kind = state["optimizer"], trainer.optimizer.state_dict().get("type")
    if not isinstance(opt, dict) or opt.get("type") != kind:
        saved_kind = opt.get("type") if isinstance(opt, dict) else type(opt).__name__
        fail(f"the checkpoint has a {saved_kind} optimizer, the trainer a {kind}")
    if (state["scheduler"] is None) != (trainer.scheduler is None):
        fail("the checkpoint was saved " + ("without" if state["scheduler"] is None else "with")
             + " a learning-rate schedule (scheduler), the trainer has "
             + ("one" if trainer.scheduler is not None else "none"))
    history = state["history"]
    if not isinstance(history, dict):
        fail("history is not a dict")
    for key in trainer.HISTORY_KEYS:
        values = history.get(key)
        if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "f":
            fail(f"history entry {key!r} is missing or not a 1-d float array")


def _load_checkpoint(trainer: Trainer, path: str | os.PathLike) -> None:
    """The work of `trainer.load_checkpoint` (section 3.6): read, check, then apply; if a part
    refuses its state, everything is put back and a CheckpointError names the file."""
    state = read_checkpoint(path)
    _check_state(trainer, state, str(path))
    before = _copy_tree(trainer.state_dict())
    try:
        trainer._apply_state(state)
    except Exception as error:
        trainer._apply_state(before)                # put back what was there
        raise CheckpointError(f"{path}: cannot be loaded: {error}") from error
