"""Checkpoints: round trip, exact resume, all-or-nothing loading, atomic saving, file size."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.training import (
    CHECKPOINT_VERSION,
    CheckpointError,
    CosineSchedule,
    Trainer,
    read_checkpoint,
    write_checkpoint,
)

DATA = np.random.default_rng(42)
X = DATA.standard_normal((53, 5)).astype(np.float32)
Y = DATA.integers(0, 3, 53)

OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.05),
    "momentum": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: Adam(p, lr=0.01),
    "adamw": lambda p: AdamW(p, lr=0.01, weight_decay=0.05),
}


def make(optimizer="momentum", dropout_seed=2, hidden=16, schedule=True, clip=0.5):
    model = Sequential(Linear(5, hidden, rng=np.random.default_rng(0)), ReLU(),
                       Dropout(0.3, rng=np.random.default_rng(dropout_seed)),
                       Linear(hidden, 3, rng=np.random.default_rng(1)))
    trainer = Trainer(model, OPTIMIZERS[optimizer](model.parameters()), CrossEntropyLoss(),
                      scheduler=CosineSchedule(0.05, 0.005, 5) if schedule else None,
                      grad_clip_norm=clip)
    loader = DataLoader(TensorDataset(X, Y), batch_size=6, shuffle=True, seed=11)
    return trainer, loader


def run(trainer, loader, epochs):
    for _ in range(epochs):
        trainer.train_epoch(loader, accumulation_steps=4)  # 9 batches: windows 4, 4, 1
        trainer.evaluate(loader)


def arrays_of(tree, prefix=""):
    out = {}
    if isinstance(tree, np.ndarray):
        out[prefix] = tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            out.update(arrays_of(v, f"{prefix}/{k}"))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(arrays_of(v, f"{prefix}/{i}"))
    return out


def snapshot(trainer):
    """Every array (copied) and every JSON value of the trainer's state."""
    state = trainer.state_dict()
    arrays = {k: v.copy() for k, v in arrays_of(state).items()}
    scalars = json.dumps(state, default=lambda a: a.tolist(), sort_keys=True)
    return arrays, scalars, json.dumps(trainer.history), trainer.grad_clip_norm


def assert_same(a, b):
    arrays_a, scalars_a, hist_a, clip_a = a
    arrays_b, scalars_b, hist_b, clip_b = b
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        assert arrays_a[key].dtype == arrays_b[key].dtype, key
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    assert scalars_a == scalars_b and hist_a == hist_b and clip_a == clip_b


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_exact_resume(optimizer, tmp_path):
    straight, loader = make(optimizer)
    run(straight, loader, 4)
    first, loader = make(optimizer)
    run(first, loader, 2)
    first.save_checkpoint(tmp_path / "mid.ckpt")
    # a new process would build everything anew; another Dropout seed proves it is restored
    resumed, loader = make(optimizer, dropout_seed=1234)
    resumed.load_checkpoint(tmp_path / "mid.ckpt")
    run(resumed, loader, 2)
    assert_same(snapshot(straight), snapshot(resumed))
    assert straight.epoch == 4 and straight.step == 12 and len(straight.history["grad_norms"]) == 12
    for key, values in resumed.history.items():
        assert all(type(v) is float for v in values), key


def test_round_trip_every_array_and_counter(tmp_path):
    trainer, loader = make("adam")
    run(trainer, loader, 2)
    path = tmp_path / "a.ckpt"
    trainer.save_checkpoint(path)
    saved = snapshot(trainer)
    run(trainer, loader, 1)
    trainer.optimizer.lr = 123.0
    trainer.grad_clip_norm = 9.0
    trainer.scheduler.max_lr = 7.0
    trainer.load_checkpoint(path)
    assert_same(saved, snapshot(trainer))
    assert trainer.optimizer.lr == trainer.state_dict()["optimizer"]["hyperparameters"]["lr"]
    assert trainer.scheduler.max_lr == 0.05 and trainer.grad_clip_norm == 0.5
    assert type(trainer.epoch) is int and type(trainer.step) is int


def test_no_schedule_no_clip_round_trip(tmp_path):
    trainer, loader = make("sgd", schedule=False, clip=None)
    run(trainer, loader, 1)
    trainer.save_checkpoint(tmp_path / "b.ckpt")
    other, _ = make("sgd", schedule=False, clip=None)
    other.load_checkpoint(tmp_path / "b.ckpt")
    assert_same(snapshot(trainer), snapshot(other))


def test_no_pickle_named_members_and_json(tmp_path):
    trainer, loader = make("momentum")
    run(trainer, loader, 1)
    path = tmp_path / "c.ckpt"
    trainer.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        header = json.loads(archive["checkpoint.json"].tobytes())
        np.testing.assert_array_equal(archive["model/0.weight"], trainer.model.parameters()[0].data)
    assert {"model/0.weight", "model/3.bias", "optimizer/state/0/momentum_buffer",
            "history/train_loss"} <= names
    assert header["format"] == "tinytorch-checkpoint" and header["version"] == CHECKPOINT_VERSION
    assert header["state"]["parameter_shapes"] == {
        "0.weight": [5, 16], "0.bias": [16], "3.weight": [16, 3], "3.bias": [3]}
    assert b"pickle" not in path.read_bytes()


def test_file_size_is_raw_bytes_plus_small_headers(tmp_path):
    # raw = the bytes of every array in the state (params, Adam's two moments, history)
    for hidden, ratio_bound in [(4096, 1.05), (16, None)]:
        trainer, loader = make("adam", hidden=hidden)
        run(trainer, loader, 1)
        path = tmp_path / f"size{hidden}.ckpt"
        trainer.save_checkpoint(path)
        arrays = arrays_of(trainer.state_dict())
        raw = sum(a.nbytes for a in arrays.values())
        size = path.stat().st_size
        header = len(read_header_bytes(path))
        # measured: about 380 bytes of zip + .npy headers per member, plus the JSON
        assert size - raw <= 512 * (len(arrays) + 1) + header
        if ratio_bound:
            assert size <= ratio_bound * raw, (size, raw)


def read_header_bytes(path):
    with np.load(path, allow_pickle=False) as archive:
        return archive["checkpoint.json"].tobytes()


# ---- loading is all or nothing ------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    trainer, loader = make("momentum")
    run(trainer, loader, 2)
    path = tmp_path / "good.ckpt"
    trainer.save_checkpoint(path)
    return path


def victim():
    trainer, loader = make("momentum", dropout_seed=5)
    run(trainer, loader, 1)
    return trainer


def assert_refused(trainer, path, *words):
    before = snapshot(trainer)
    with pytest.raises(CheckpointError) as info:
        trainer.load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word.lower() in message.lower(), message
    assert_same(before, snapshot(trainer))


def rewrite(src, dst, edit_header=None, edit_members=None):
    with np.load(src, allow_pickle=False) as archive:
        members = {k: archive[k] for k in archive.files}
    header = json.loads(members["checkpoint.json"].tobytes())
    if edit_header:
        edit_header(header)
    if edit_members:
        edit_members(members)
    members["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **members)
    return dst


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.5, 0.9, 0.9999])
def test_truncated_file(saved, tmp_path, keep):
    data = saved.read_bytes()
    n = int(len(data) * keep)
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[:n])
    assert_refused(victim(), path)


def test_flipped_byte_in_an_array_is_caught_by_the_crc(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    data[data.find(b"model/0.weight.npy") + 300] ^= 0x55
    path = tmp_path / "flip.ckpt"
    path.write_bytes(bytes(data))
    assert_refused(victim(), path, "corrupt")


def test_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00" * 100)
    assert_refused(victim(), garbage)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    assert_refused(victim(), npy, "not a checkpoint")
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    assert_refused(victim(), plain, "checkpoint.json")
    assert_refused(victim(), tmp_path / "missing.ckpt", "no such")


def test_newer_version(saved, tmp_path):
    path = rewrite(saved, tmp_path / "v2.ckpt",
                   edit_header=lambda h: h.update(version=CHECKPOINT_VERSION + 1))
    assert_refused(victim(), path, "version")


@pytest.mark.parametrize("key", ["optimizer", "model", "history", "epoch", "scheduler"])
def test_missing_entry(saved, tmp_path, key):
    path = rewrite(saved, tmp_path / "missing.ckpt", edit_header=lambda h: h["state"].pop(key))
    assert_refused(victim(), path, key)


def test_missing_array_member(saved, tmp_path):
    path = rewrite(saved, tmp_path / "noarray.ckpt",
                   edit_members=lambda m: m.pop("model/3.bias"))
    assert_refused(victim(), path, "model/3.bias")


def test_wrong_shapes_and_kinds(saved, tmp_path):
    wide, _ = make("momentum", hidden=17)
    assert_refused(wide, saved, "0.weight", "(5, 16)", "(5, 17)")
    adam, _ = make("adam")
    assert_refused(adam, saved, "optimizer", "SGD", "Adam")
    no_schedule, _ = make("momentum", schedule=False)
    assert_refused(no_schedule, saved, "schedule")
    # and the other way round: a file saved without a schedule, a trainer with one
    path = rewrite(saved, tmp_path / "nosched.ckpt",
                   edit_header=lambda h: h["state"].update(scheduler=None))
    assert_refused(victim(), path, "schedule")
    path = rewrite(saved, tmp_path / "buf.ckpt", edit_members=lambda m: m.update(
        {"optimizer/state/1/momentum_buffer": np.zeros(5, np.float32)}))
    assert_refused(victim(), path, "momentum_buffer")
    path = rewrite(saved, tmp_path / "hist.ckpt", edit_members=lambda m: m.update(
        {"history/train_loss": np.zeros((2, 2))}))
    assert_refused(victim(), path, "train_loss")
    path = rewrite(saved, tmp_path / "epoch.ckpt",
                   edit_header=lambda h: h["state"].update(epoch=-1))
    assert_refused(victim(), path, "epoch")
    path = rewrite(saved, tmp_path / "sched.ckpt",
                   edit_header=lambda h: h["state"]["scheduler"].update(min_lr=1.0))
    assert_refused(victim(), path, "min_lr")


def test_failure_late_in_loading_rolls_everything_back(saved, tmp_path):
    # momentum = -1 passes the trainer's own checks; SGD.load_state_dict refuses it after
    # the model was already loaded: the trainer must put the model back.
    def bad_momentum(header):
        header["state"]["optimizer"]["hyperparameters"]["momentum"] = -1.0

    path = rewrite(saved, tmp_path / "late.ckpt", edit_header=bad_momentum)
    assert_refused(victim(), path, "momentum")


# ---- saving is atomic ----------------------------------------------------------------


def test_failed_save_keeps_the_previous_file(saved, monkeypatch):
    good = saved.read_bytes()
    trainer, _ = make("momentum")

    def exploding_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(saved)
    assert saved.read_bytes() == good
    assert sorted(p.name for p in saved.parent.iterdir()) == ["good.ckpt"], "no temporary left"


def test_unstorable_state_fails_before_touching_the_file(saved):
    good = saved.read_bytes()
    trainer, _ = make("momentum")
    trainer.history["train_loss"].append(object())
    with pytest.raises((TypeError, ValueError)):
        trainer.save_checkpoint(saved)
    assert saved.read_bytes() == good
    assert sorted(p.name for p in saved.parent.iterdir()) == ["good.ckpt"]


def test_crash_in_the_middle_of_a_save_leaves_the_old_checkpoint(saved, tmp_path):
    # a real crash: the process dies (os._exit) while the archive is being written
    script = textwrap.dedent(f"""
        import os, numpy as np
        from tinytorch.core.training import write_checkpoint
        real = np.savez
        def dying(file, *args, **kwargs):
            file.write(b"PK partial")
            file.flush()
            os._exit(3)
        np.savez = dying
        write_checkpoint({str(saved)!r}, {{"x": np.zeros(10)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 3
    trainer, _ = make("momentum")
    trainer.load_checkpoint(saved)  # still the complete old file
    assert trainer.epoch == 2
    leftovers = [p.name for p in saved.parent.iterdir() if p.name != "good.ckpt"]
    assert all(name.startswith(".good.ckpt.") and name.endswith(".tmp") for name in leftovers)


def test_write_and_read_any_state_tree(tmp_path):
    state = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": [1, 2.5, None, "x", True],
             "c": {"d": np.float32(1.5), "e": [np.zeros((0, 2)), {"f": np.array(3.0)}]},
             "big": 2**100}
    path = tmp_path / "sub" / "tree.ckpt"
    write_checkpoint(path, state)
    back = read_checkpoint(path)
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["a"].dtype == np.int16
    assert back["b"] == [1, 2.5, None, "x", True] and back["big"] == 2**100
    assert back["c"]["d"] == 1.5 and back["c"]["e"][0].shape == (0, 2)
    assert back["c"]["e"][1]["f"].shape == ()
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    with pytest.raises(TypeError, match="object"):
        write_checkpoint(tmp_path / "o.ckpt", {"o": np.array([object()])})
    with pytest.raises(TypeError, match="keys must be strings"):
        write_checkpoint(tmp_path / "k.ckpt", {"o": {1: 2}})
