"""Optimizer state dicts: round trips through a checkpoint, copies, refusals."""

import json

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW, Optimizer
from tinytorch.core.tensor import Tensor

SHAPES = [(3,), (2, 2), (1,)]


def make_params(rng: np.random.Generator) -> list[Tensor]:
    return [Tensor(rng.standard_normal(shape), requires_grad=True) for shape in SHAPES]


def set_grads(params: list[Tensor], t: int) -> None:
    """Gradients of 0.5 * sum((k + 1) w^2) plus a step-dependent push; the last
    parameter gets no gradient during the first two steps (its state stays empty)."""
    for k, p in enumerate(params):
        if k == len(params) - 1 and t < 2:
            p.grad = None
        else:
            p.grad = ((k + 1) * p.data + 0.1 * np.sin(t + k)).astype(p.data.dtype)


def run(opt: Optimizer, first: int, last: int) -> None:
    for t in range(first, last):
        set_grads(opt.params, t)
        opt.step()


def to_checkpoint(state: dict, folder) -> None:
    """Arrays into an .npz (no pickle), everything else into JSON, as module 08 does."""
    arrays: dict[str, np.ndarray] = {}

    def strip(node, path):
        if isinstance(node, np.ndarray):
            arrays[path] = node
            return {"__array__": path}
        if isinstance(node, dict):
            return {k: strip(v, f"{path}/{k}") for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [strip(v, f"{path}/{i}") for i, v in enumerate(node)]
        return node

    tree = strip(state, "root")
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "tree.json").write_text(json.dumps(tree))


def from_checkpoint(folder) -> dict:
    with np.load(folder / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}

    def fill(node):
        if isinstance(node, dict):
            if set(node) == {"__array__"}:
                return arrays[node["__array__"]]
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    return fill(json.loads((folder / "tree.json").read_text()))


CONFIGS = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.2}),
]
# what the resumed optimizer is built with before loading: every value differs
OTHER = {
    SGD: {"lr": 9.0},
    Adam: {"lr": 9.0, "betas": (0.1, 0.2), "eps": 0.5, "weight_decay": 0.0},
    AdamW: {"lr": 9.0, "betas": (0.1, 0.2), "eps": 0.5, "weight_decay": 0.0},
}


@pytest.mark.parametrize("cls,hyper", CONFIGS)
@pytest.mark.parametrize("k", [0, 1, 3])
def test_resume_is_bitwise_identical(cls, hyper, k, tmp_path):
    total = 6
    straight = make_params(np.random.default_rng(0))
    run(cls(straight, **hyper), 0, total)

    first = make_params(np.random.default_rng(0))
    opt = cls(first, **hyper)
    run(opt, 0, k)
    to_checkpoint({"optimizer": opt.state_dict(), "params": [p.data for p in first]}, tmp_path)
    del opt, first

    loaded = from_checkpoint(tmp_path)
    resumed = [Tensor(data, requires_grad=True) for data in loaded["params"]]
    opt2 = cls(resumed, **OTHER[cls])
    opt2.load_state_dict(loaded["optimizer"])
    expected_hyper = cls(resumed, **hyper).hyperparameters()
    assert opt2.hyperparameters() == expected_hyper, "the saved hyperparameters win"
    assert opt2.step_count == k
    run(opt2, k, total)
    for a, b in zip(straight, resumed, strict=True):
        assert np.array_equal(a.data, b.data), f"resumed after {k} steps: {a.data} vs {b.data}"


def test_state_dict_layout_is_json_plus_arrays():
    params = make_params(np.random.default_rng(1))
    opt = Adam(params, lr=0.01, betas=(0.8, 0.9))
    run(opt, 0, 2)
    state = opt.state_dict()
    assert state["type"] == "Adam" and state["step"] == 2
    assert state["hyperparameters"] == {
        "lr": 0.01, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0
    }
    json.dumps(state["hyperparameters"])
    assert [sorted(s) for s in state["state"]] == [["exp_avg", "exp_avg_sq", "step"]] * 2 + [[]]
    for s, p in zip(state["state"][:2], params[:2], strict=True):
        assert type(s["step"]) is int and s["step"] == 2
        assert s["exp_avg"].shape == p.data.shape and s["exp_avg"].dtype == np.float32


def test_saved_arrays_are_copies():
    params = make_params(np.random.default_rng(2))
    opt = SGD(params, lr=0.1, momentum=0.9)
    run(opt, 0, 3)
    saved = opt.state_dict()
    snapshot = saved["state"][0]["momentum_buffer"].copy()
    run(opt, 3, 4)
    assert np.array_equal(saved["state"][0]["momentum_buffer"], snapshot), "saving must copy"
    opt.load_state_dict(saved)
    saved["state"][0]["momentum_buffer"][:] = 99.0
    assert not np.any(opt.state[0]["momentum_buffer"] == 99.0), "loading must copy buffers"


def test_loaded_buffers_take_the_parameter_dtype():
    params = make_params(np.random.default_rng(3))
    opt = Adam(params)
    run(opt, 0, 3)
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"] = saved["state"][0]["exp_avg"].astype(np.float64)
    opt.load_state_dict(saved)
    assert opt.state[0]["exp_avg"].dtype == np.float32


def fitted_adam() -> tuple[Adam, dict]:
    params = make_params(np.random.default_rng(4))
    opt = Adam(params, lr=0.01)
    run(opt, 0, 3)
    return opt, opt.state_dict()


def unchanged(opt: Optimizer, before: dict) -> bool:
    after = opt.state_dict()
    if after["hyperparameters"] != before["hyperparameters"] or after["step"] != before["step"]:
        return False
    for a, b in zip(after["state"], before["state"], strict=True):
        if set(a) != set(b):
            return False
        for key in a:
            if not np.array_equal(a[key], b[key]):
                return False
    return True


def test_shape_mismatch_names_index_and_shapes():
    _, saved = fitted_adam()
    shapes = [(3,), (2, 3), (1,)]
    victim = Adam([Tensor(np.zeros(shape), requires_grad=True) for shape in shapes], lr=0.5)
    before = victim.state_dict()
    pattern = r"state\[1\]\['exp_avg'\] has shape \(2, 2\).*parameter 1 has shape \(2, 3\)"
    with pytest.raises(ValueError, match=pattern):
        victim.load_state_dict(saved)
    assert unchanged(victim, before), "a refused load must change nothing"


def test_failed_load_changes_nothing_even_after_partial_match():
    opt, saved = fitted_adam()
    before = opt.state_dict()
    saved["hyperparameters"]["lr"] = 0.5
    saved["state"][2] = {"step": 1, "exp_avg": np.zeros(5), "exp_avg_sq": np.zeros(5)}
    with pytest.raises(ValueError, match=r"state\[2\]"):
        opt.load_state_dict(saved)
    assert unchanged(opt, before)
    assert opt.lr == 0.01


@pytest.mark.parametrize(
    "corrupt,pattern",
    [
        (lambda s: s.update(type="SGD"), r"'SGD'.*'Adam'"),
        (lambda s: s["state"].pop(), r"holds 2 parameters.*has 3"),
        (lambda s: s["hyperparameters"].pop("eps"), r"hyperparameters"),
        (lambda s: s["hyperparameters"].update(lr=-1.0), r"lr=-1\.0"),
        (lambda s: s["hyperparameters"].update(betas=[0.9, 1.0]), r"betas\[1\]"),
        (lambda s: s.update(step=-3), r"step"),
        (lambda s: s["state"][0].pop("exp_avg_sq"), r"state\[0\] has keys"),
        (lambda s: s["state"][0].update(step=-1), r"state\[0\]\['step'\]"),
        (lambda s: s.pop("state"), r"keys"),
    ],
)
def test_corrupt_state_dicts_are_refused(corrupt, pattern):
    opt, saved = fitted_adam()
    before = opt.state_dict()
    corrupt(saved)
    with pytest.raises(ValueError, match=pattern):
        opt.load_state_dict(saved)
    assert unchanged(opt, before)


def test_adam_state_does_not_load_into_adamw():
    _, saved = fitted_adam()
    target = AdamW(make_params(np.random.default_rng(5)))
    with pytest.raises(ValueError, match=r"'Adam'.*'AdamW'"):
        target.load_state_dict(saved)


def test_sgd_nesterov_rule_is_checked_on_load():
    params = make_params(np.random.default_rng(6))
    opt = SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    saved = opt.state_dict()
    saved["hyperparameters"]["momentum"] = 0.0
    with pytest.raises(ValueError, match="nesterov"):
        SGD(params, lr=0.1).load_state_dict(saved)


def test_empty_state_loads_back_to_empty():
    params = make_params(np.random.default_rng(7))
    opt = Adam(params)
    opt.load_state_dict(Adam(params, lr=0.3).state_dict())
    assert opt.lr == 0.3 and opt.state == [{}, {}, {}] and opt.step_count == 0


def test_a_wrongly_typed_saved_value_gets_the_constructors_type_error():
    # the same error as SGD(params, lr=0.1, nesterov="yes") and Adam(params, eps="tiny")
    params = make_params(np.random.default_rng(8))
    saved = SGD(params, lr=0.1).state_dict()
    saved["hyperparameters"]["nesterov"] = "yes"
    with pytest.raises(TypeError, match="nesterov.*yes"):
        SGD(params, lr=0.1, nesterov="yes")
    with pytest.raises(TypeError, match="nesterov.*yes"):
        SGD(params, lr=0.2).load_state_dict(saved)
    saved = Adam(params).state_dict()
    saved["hyperparameters"]["eps"] = "tiny"
    target = Adam(params, lr=0.3)
    with pytest.raises(TypeError, match="eps.*tiny"):
        target.load_state_dict(saved)
    assert target.lr == 0.3


def test_a_bare_optimizer_loads_its_own_state():
    params = make_params(np.random.default_rng(9))
    bare = Optimizer(params)
    saved = bare.state_dict()
    assert saved == {"type": "Optimizer", "hyperparameters": {}, "step": 0, "state": [{}, {}, {}]}
    bare.load_state_dict(json.loads(json.dumps(saved)))
    assert bare.state_dict() == saved
    # a buffer the base class does not know is refused like any other unknown key
    saved["state"][0] = {"momentum_buffer": np.zeros(3)}
    with pytest.raises(ValueError, match=r"state\[0\] has keys"):
        bare.load_state_dict(saved)
