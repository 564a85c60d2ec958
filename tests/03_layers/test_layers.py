"""Tests of tinytorch.core.layers: Parameter, Module, Linear, Dropout, Sequential.

Reference values are computed independently: by hand (written in comments), in closed
form, or with NumPy on the side in float64.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.layers import Dropout, Linear, Module, Parameter, Sequential
from tinytorch.core.tensor import Tensor


def double(t: Tensor) -> Tensor:
    """A parameter-free callable (stands in for an activation)."""
    return t * 2.0


class Affine(Module):
    def __init__(self, n: int, start: float = 1.0) -> None:
        super().__init__()
        self.scale = Parameter(np.full(n, start, dtype=np.float32))
        self.shift = Parameter(np.zeros(n, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class Tree(Module):
    """A sub-module, a list of sub-modules, a tuple with a Dropout, and a tied parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.first = Affine(3)
        self.blocks = [Affine(3, 2.0), Affine(2, 3.0)]
        self.extra = (Dropout(0.5, rng=np.random.default_rng(0)),)
        self.tied = self.first.scale

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks[0](self.first(x))


# ---- Parameter ------------------------------------------------------------------------


def test_parameter_is_a_tensor_that_requires_grad():
    p = Parameter(np.ones((2, 3), dtype=np.float32))
    assert isinstance(p, Tensor)
    assert p.requires_grad is True
    assert p.dtype == np.float32 and p.shape == (2, 3)
    assert Parameter([1.0, 2.0]).dtype == np.float32
    assert Parameter(np.zeros(3), dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("data", [np.array([1, 2, 3]), np.array([True, False])])
def test_parameter_refuses_integer_and_bool_data(data):
    # a Parameter requires grad, which needs a floating dtype (torch.nn.Parameter of an
    # integer tensor raises too); converting first works
    with pytest.raises(ValueError, match="requires_grad"):
        Parameter(data)
    assert Parameter(data, dtype=np.float32).dtype == np.float32


def test_results_of_ops_on_parameters_are_not_parameters():
    p = Parameter(np.ones(3, dtype=np.float32))
    assert type(p * 2.0) is Tensor


# ---- Module: discovery, names, modes --------------------------------------------------


def test_named_modules_and_parameters_order_and_uniqueness():
    tree = Tree()
    assert [n for n, _ in tree.named_modules()] == ["", "first", "blocks.0", "blocks.1", "extra.0"]
    names = [n for n, _ in tree.named_parameters()]
    # Assignment order, depth first; `tied` is first.scale and is not listed again.
    assert names == [
        "first.scale",
        "first.shift",
        "blocks.0.scale",
        "blocks.0.shift",
        "blocks.1.scale",
        "blocks.1.shift",
    ]
    params = tree.parameters()
    assert params[0] is tree.first.scale
    assert len({id(p) for p in params}) == len(params) == 6


def test_shared_module_is_listed_once_under_its_first_name():
    shared = Affine(2)

    class Reuse(Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = shared
            self.b = Sequential(shared, Affine(2))

    model = Reuse()
    assert [n for n, _ in model.named_modules()] == ["", "a", "b", "b.1"]
    assert [n for n, _ in model.named_parameters()] == [
        "a.scale",
        "a.shift",
        "b.1.scale",
        "b.1.shift",
    ]


def test_module_without_super_init_still_has_training_and_forward_is_required():
    class Bare(Module):
        def __init__(self) -> None:  # forgot super().__init__()
            self.w = Parameter(np.zeros(2, dtype=np.float32))

    bare = Bare()
    assert bare.training is True
    assert [n for n, _ in bare.named_parameters()] == ["w"]
    with pytest.raises(NotImplementedError, match="Bare"):
        bare(Tensor([1.0]))


def test_train_and_eval_reach_modules_in_lists_and_tuples():
    tree = Tree()
    assert tree.eval() is tree
    assert [m.training for _, m in tree.named_modules()] == [False] * 5
    assert tree.extra[0].training is False
    assert tree.train() is tree
    assert [m.training for _, m in tree.named_modules()] == [True] * 5
    with pytest.raises(TypeError, match="mode"):
        tree.train(1)


# ---- Module: state dicts ----------------------------------------------------------------


def test_state_dict_copies_parameters_and_saves_generators():
    tree = Tree()
    state = tree.state_dict()
    assert list(state) == [n for n, _ in tree.named_parameters()] + ["extra.0.rng"]
    state["first.scale"][:] = 42.0
    assert float(tree.first.scale.data[0]) == 1.0
    rng_state = state["extra.0.rng"]
    assert rng_state == np.random.default_rng(0).bit_generator.state
    # JSON-able, as checkpoints need.
    assert json.loads(json.dumps(rng_state)) == rng_state


def test_state_dict_lists_generators_after_all_parameters():
    class RngFirst(Module):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(1)
            self.drop = Dropout(0.5, rng=np.random.default_rng(2))
            self.inner = Affine(2)

    assert list(RngFirst().state_dict()) == ["inner.scale", "inner.shift", "rng", "drop.rng"]


def test_load_state_dict_copies_in_place_and_restores_generator():
    source, target = Tree(), Tree()
    for p in source.parameters():
        p.data[...] = np.arange(p.size, dtype=np.float32) + 10.0
    source.extra[0].rng.random(5)  # advance the source generator
    arrays_before = [p.data for p in target.parameters()]
    target.load_state_dict(source.state_dict())
    for before, (name, p) in zip(arrays_before, target.named_parameters(), strict=True):
        assert p.data is before, f"{name} was replaced instead of copied into"
        np.testing.assert_array_equal(p.data, np.arange(p.size) + 10.0)
    # Both generators now draw the same numbers.
    assert source.extra[0].rng.random() == target.extra[0].rng.random()


def test_load_state_dict_reports_all_problems_and_changes_nothing():
    tree = Tree()
    state = tree.state_dict()
    del state["first.shift"]
    state["ghost.weight"] = np.zeros(2, dtype=np.float32)
    state["blocks.1.scale"] = np.zeros((2, 2), dtype=np.float32)
    state["blocks.0.scale"] = state["blocks.0.scale"].astype(np.float64)
    state["extra.0.rng"] = {"bit_generator": "PCG64", "state": "nonsense"}
    target = Tree()
    for p in target.parameters():
        p.data[...] = 5.0
    rng_before = target.extra[0].rng.bit_generator.state
    with pytest.raises(ValueError) as info:
        target.load_state_dict(state)
    message = str(info.value)
    for word in (
        "first.shift",
        "ghost.weight",
        "blocks.1.scale",
        "(2, 2)",
        "(2,)",
        "blocks.0.scale",
        "float64",
        "extra.0.rng",
    ):
        assert word in message, f"{word!r} not in {message!r}"
    assert all(np.all(p.data == 5.0) for p in target.parameters())
    assert target.extra[0].rng.bit_generator.state == rng_before


def test_load_state_dict_rejects_non_mapping():
    with pytest.raises(TypeError, match="state"):
        Tree().load_state_dict([("first.scale", np.ones(3))])


# ---- Linear -------------------------------------------------------------------------------


def test_linear_worked_example():
    layer = Linear(2, 3, rng=np.random.default_rng(0))
    layer.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
    layer.bias.data[...] = [0.5, 0, -0.5]
    # By hand: [1*1 + 2*2, 1*0 + 2*1, 1*(-1) + 2*0] + b = [5.5, 2, -1.5]
    y = layer(Tensor([[1.0, 2.0]]))
    assert y.data.tolist() == [[5.5, 2.0, -1.5]]
    assert y.dtype == np.float32


@given(
    batch=st.integers(1, 6),
    n_in=st.integers(1, 7),
    n_out=st.integers(1, 7),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_linear_forward_matches_numpy(batch, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(n_in, n_out, bias=bias, rng=rng)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    y = layer(Tensor(x))
    want = x.astype(np.float64) @ layer.weight.data.astype(np.float64)
    if bias:
        want = want + layer.bias.data
    assert y.shape == (batch, n_out) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, want, rtol=1e-5, atol=1e-5)


def test_linear_init_recipe_and_statistics():
    # Recipe recomputed on the side: weight first, then bias, both uniform in ±1/sqrt(in).
    check = np.random.default_rng(3)
    k = 1 / math.sqrt(5)
    w = check.uniform(-k, k, size=(5, 4)).astype(np.float32)
    b = check.uniform(-k, k, size=(4,)).astype(np.float32)
    layer = Linear(5, 4, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(layer.weight.data, w)
    np.testing.assert_array_equal(layer.bias.data, b)
    assert isinstance(layer.weight, Parameter) and isinstance(layer.bias, Parameter)

    big = Linear(625, 400, rng=np.random.default_rng(1))
    k = 1 / 25  # 1/sqrt(625)
    weights = big.weight.data.astype(np.float64)
    assert np.abs(weights).max() <= k
    assert np.abs(weights).max() > 0.99 * k  # 250,000 draws reach the edges
    # Variance of U(-k, k) is k^2/3; 250,000 draws estimate it within ~0.5%.
    assert abs(weights.var() / (k * k / 3) - 1) < 0.02
    assert abs(weights.mean()) < 1e-3


def test_linear_without_bias_draws_only_the_weight():
    # recomputed on the side: the weight's draws, and nothing for a bias
    g, check = np.random.default_rng(6), np.random.default_rng(6)
    layer = Linear(3, 2, bias=False, rng=g)
    k = 1 / math.sqrt(3)
    want = check.uniform(-k, k, size=(3, 2)).astype(np.float32)
    np.testing.assert_array_equal(layer.weight.data, want)
    assert layer.bias is None
    assert g.random() == check.random()


def test_linear_rng_none_and_bad_arguments():
    assert not np.array_equal(Linear(8, 8).weight.data, Linear(8, 8).weight.data)
    with pytest.raises(TypeError, match="rng"):
        Linear(2, 2, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="in_features.*0"):
        Linear(0, 2)
    with pytest.raises(ValueError, match="out_features.*-2"):
        Linear(2, -2)
    with pytest.raises(TypeError, match="in_features"):
        Linear(2.0, 3)
    with pytest.raises(TypeError, match="in_features"):
        Linear(True, 3)
    with pytest.raises(TypeError, match="bias"):
        Linear(2, 3, bias=1)


def test_linear_bad_input_shape_names_expected_and_got():
    layer = Linear(4, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\).*\(3, 5\)"):
        layer(Tensor(np.zeros((3, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"\(\)"):
        layer(Tensor(1.0))


def test_linear_keeps_leading_dimensions_and_accepts_arrays():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(np.float32)
    y = layer(x)
    assert isinstance(y, Tensor) and y.shape == (2, 4, 2)
    np.testing.assert_allclose(y.data, x @ layer.weight.data + layer.bias.data, rtol=1e-6)


def test_linear_gradients_closed_form():
    # loss = sum(x @ W + b): dW = x^T @ ones, db = N * ones, dx = ones @ W^T.
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    x_np = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    x = Tensor(x_np, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad, x_np.T @ np.ones((4, 2)), rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, [4.0, 4.0])
    np.testing.assert_allclose(x.grad, np.ones((4, 2)) @ layer.weight.data.T, rtol=1e-6)


# ---- Dropout --------------------------------------------------------------------------------


def test_dropout_mask_recipe_and_scaling():
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    keep = np.random.default_rng(5).random((3, 4), dtype=np.float32) >= 0.4
    want = np.where(keep, x / 0.6, 0.0)
    got = Dropout(0.4, rng=np.random.default_rng(5))(Tensor(x))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.data, want, rtol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.3, 0.7])
def test_dropout_multiplies_by_the_scaled_mask_bit_for_bit(p):
    # x * mask with mask 0 or float32(1 / (1 - p)): what torch computes on the CPU. Checked
    # with torch 2.13.0 in a separate venv: for kept entries, F.dropout(x, p)[kept] equals
    # x[kept] * np.float32(1 / (1 - p)) bit for bit at p = 0.1, 0.25, 0.3, 0.7, and differs
    # from x[kept] / np.float32(1 - p) in thousands of entries of 100,000.
    x = np.random.default_rng(9).uniform(0.1, 10.0, size=(100, 100)).astype(np.float32)
    keep = np.random.default_rng(3).random(x.shape, dtype=np.float32) >= p
    mask = np.where(keep, np.float32(1 / (1 - p)), np.float32(0.0))
    got = Dropout(p, rng=np.random.default_rng(3))(Tensor(x))
    np.testing.assert_array_equal(got.data, x * mask)


@given(p=st.sampled_from([0.1, 0.25, 0.5, 0.8]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_dropout_keeps_the_mean_and_drops_about_p(p, seed):
    n = 200_000
    out = Dropout(p, rng=np.random.default_rng(seed))(Tensor(np.ones(n, dtype=np.float32))).data
    values = set(np.unique(out).tolist())
    assert values <= {0.0, float(np.float32(1 / (1 - p)))}
    # Binomial(n, p): the dropped fraction has std sqrt(p(1-p)/n) < 0.0012; allow 5 sigma.
    assert abs((out == 0).mean() - p) < 0.006
    # Mean of kept/(1-p): std sqrt(p/((1-p) n)) <= 0.0045 for p = 0.8; allow 5 sigma.
    assert abs(out.astype(np.float64).mean() - 1.0) < 0.025


def test_dropout_eval_and_zero_p_return_the_input():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0)(x) is x
    assert Dropout(0)(x) is x


def test_dropout_new_mask_each_call_and_rng_restores_it():
    model = Sequential(Dropout(0.5, rng=np.random.default_rng(2)))
    ones = Tensor(np.ones(64, dtype=np.float32))
    saved = model.state_dict()
    first = model(ones).data.copy()
    second = model(ones).data.copy()
    assert not np.array_equal(first, second)
    model.load_state_dict(saved)
    np.testing.assert_array_equal(model(ones).data, first)


def test_dropout_float64_and_gradient_is_the_mask():
    x64 = Tensor(np.ones((4, 5)), dtype=np.float64, requires_grad=True)
    layer = Dropout(0.3, rng=np.random.default_rng(7))
    y = layer(x64)
    assert y.dtype == np.float64
    y.sum().backward()
    # d(sum(x * mask))/dx = mask = keep / (1 - p); the keep pattern is where y != 0 (x = 1).
    keep = np.random.default_rng(7).random((4, 5), dtype=np.float32) >= 0.3
    np.testing.assert_allclose(x64.grad, np.where(keep, 1 / 0.7, 0.0), rtol=1e-12)


def test_dropout_p_one_zeros_everything_like_torch():
    # torch 2.13.0: torch.nn.Dropout(p=1.0)(torch.tensor([[1., -2., 3.]], requires_grad=True))
    # is [[0., -0., 0.]] and the gradient of its sum is [[0., 0., 0.]] (computed once, by hand
    # in a separate venv); p = 1 must not divide by zero (no warning, no exception)
    import warnings

    x = Tensor(np.array([[1.0, -2.0, 3.0]], dtype=np.float32), requires_grad=True)
    layer = Dropout(1.0, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [[0.0, 0.0, 0.0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0, 0.0]])
    x64 = Tensor(np.ones((2, 2)), dtype=np.float64)
    assert layer(x64).dtype == np.float64 and not layer(x64).data.any()
    assert layer.eval()(x) is x  # evaluation mode is still the identity


@pytest.mark.parametrize("p", [-0.01, 1.0000001, 1.5, float("nan"), float("inf")])
def test_dropout_rejects_p_outside_range(p):
    with pytest.raises(ValueError, match="p"):
        Dropout(p)


@pytest.mark.parametrize("p", ["0.5", None, True])
def test_dropout_rejects_non_numbers(p):
    with pytest.raises(TypeError, match="p"):
        Dropout(p)


# ---- Sequential ------------------------------------------------------------------------------


def test_sequential_forward_names_indexing():
    rng = np.random.default_rng(4)
    a, b = Linear(4, 6, rng=rng), Linear(6, 2, rng=rng)
    model = Sequential(a, double, b)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    h = 2.0 * (x.astype(np.float64) @ a.weight.data + a.bias.data)
    want = h @ b.weight.data + b.bias.data
    np.testing.assert_allclose(model(Tensor(x)).data, want, rtol=1e-5, atol=1e-5)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model) == 3 and model[0] is a and model[-1] is b and list(model) == [a, double, b]
    tail = model[1:]
    assert isinstance(tail, Sequential) and tail[1] is b
    assert [n for n, _ in tail.named_parameters()] == ["1.weight", "1.bias"]


def test_sequential_training_flag_and_state_dict_keys():
    drop = Dropout(0.2, rng=np.random.default_rng(0))
    inner = Sequential(Linear(2, 2, rng=np.random.default_rng(0)), drop)

    class Outer(Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = inner
            self.head = Linear(2, 1, rng=np.random.default_rng(1))

    outer = Outer().eval()
    assert drop.training is False and inner.training is False
    assert list(outer.state_dict()) == [
        "net.0.weight",
        "net.0.bias",
        "head.weight",
        "head.bias",
        "net.1.rng",
    ]


def test_sequential_rejects_non_callables_and_empty_is_identity():
    with pytest.raises(TypeError, match="layer 1"):
        Sequential(double, np.zeros(3))
    x = Tensor([1.0, 2.0])
    assert Sequential()(x) is x


def test_sequential_mlp_backward_matches_numpy():
    # Two Linear layers: loss = sum(h @ W2 + b2), h = x @ W1 + b1.
    # Closed form: dW2 = h^T @ 1, dh = 1 @ W2^T, dW1 = x^T @ dh, db1 = column sums of dh.
    rng = np.random.default_rng(9)
    model = Sequential(Linear(3, 4, rng=rng), Linear(4, 2, rng=rng))
    x = rng.standard_normal((5, 3))
    model(Tensor(x.astype(np.float32))).sum().backward()
    w1, b1 = model[0].weight.data.astype(np.float64), model[0].bias.data.astype(np.float64)
    w2 = model[1].weight.data.astype(np.float64)
    h = x @ w1 + b1
    ones = np.ones((5, 2))
    dh = ones @ w2.T
    np.testing.assert_allclose(model[1].weight.grad, h.T @ ones, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model[1].bias.grad, [5.0, 5.0])
    np.testing.assert_allclose(model[0].weight.grad, x.T @ dh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model[0].bias.grad, dh.sum(axis=0), rtol=1e-5)


def test_mlp_parameter_count_and_bytes():
    # 784*256 + 256 + 256*128 + 128 + 128*10 + 10 = 235,146 (by hand), 4 bytes each.
    rng = np.random.default_rng(0)
    mlp = Sequential(
        Linear(784, 256, rng=rng),
        double,
        Linear(256, 128, rng=rng),
        double,
        Linear(128, 10, rng=rng),
    )
    assert sum(p.size for p in mlp.parameters()) == 235_146
    assert sum(p.data.nbytes for p in mlp.parameters()) == 940_584
    assert all(p.dtype == np.float32 for p in mlp.parameters())


def test_activation_from_module_02_works_in_sequential():
    activations = pytest.importorskip("tinytorch.core.activations")
    model = Sequential(Linear(2, 3, rng=np.random.default_rng(0)), activations.ReLU())
    out = model(Tensor([[1.0, -1.0]]))
    assert out.shape == (1, 3) and float(out.data.min()) >= 0.0
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
