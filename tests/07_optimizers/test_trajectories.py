"""Trajectories of SGD, Adam and AdamW against torch.optim's update rules.

The expected numbers come from two independent sources:

* literals worked out by hand (the derivation is in the comment next to each one);
* ``reference_run`` below: the algorithms as torch.optim documents them, written one
  Python float at a time (no NumPy), so that longer runs with several parameters,
  missing gradients and a learning rate changed between steps can be compared.
  The reference itself is checked against the hand literals first.
"""

import math

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor

# ---------------------------------------------------------------------------------
# Reference implementation: plain Python floats, one number at a time.
# ---------------------------------------------------------------------------------


def reference_run(kind, start, grad_fn, lrs, **hyper):
    """Run ``kind`` ("sgd", "adam", "adamw") from ``start`` (a list of lists of floats).

    ``grad_fn(t, weights)`` returns one gradient list (or None) per parameter;
    ``lrs[t]`` is the learning rate of step t. Returns the weights after every step.
    """
    weights = [list(map(float, w)) for w in start]
    state = [None] * len(weights)
    history = []
    for t, lr in enumerate(lrs):
        grads = grad_fn(t, [list(w) for w in weights])
        for i, g in enumerate(grads):
            if g is None:
                continue
            w = weights[i]
            if kind == "sgd":
                mu = hyper.get("momentum", 0.0)
                damp = hyper.get("dampening", 0.0)
                wd = hyper.get("weight_decay", 0.0)
                nesterov = hyper.get("nesterov", False)
                for j in range(len(w)):
                    d = g[j] + wd * w[j]
                    if mu != 0:
                        if state[i] is None:
                            state[i] = [None] * len(w)
                        if state[i][j] is None:
                            state[i][j] = d  # first buffer: the gradient itself
                        else:
                            state[i][j] = mu * state[i][j] + (1 - damp) * d
                        d = d + mu * state[i][j] if nesterov else state[i][j]
                    w[j] = w[j] - lr * d
            else:
                b1, b2 = hyper.get("betas", (0.9, 0.999))
                eps = hyper.get("eps", 1e-8)
                wd = hyper.get("weight_decay", 0.01 if kind == "adamw" else 0.0)
                if state[i] is None:
                    state[i] = {"t": 0, "m": [0.0] * len(w), "v": [0.0] * len(w)}
                s = state[i]
                s["t"] += 1
                for j in range(len(w)):
                    gj = g[j]
                    if kind == "adamw":
                        w[j] = w[j] * (1 - lr * wd)
                    else:
                        gj = gj + wd * w[j]
                    s["m"][j] = b1 * s["m"][j] + (1 - b1) * gj
                    s["v"][j] = b2 * s["v"][j] + (1 - b2) * gj * gj
                    m_hat = s["m"][j] / (1 - b1 ** s["t"])
                    v_hat = s["v"][j] / (1 - b2 ** s["t"])
                    w[j] = w[j] - lr * m_hat / (math.sqrt(v_hat) + eps)
        history.append([list(w) for w in weights])
    return history


def tinytorch_run(cls, start, grad_fn, lrs, dtype=np.float64, **hyper):
    """The same run with tinytorch tensors; the learning rate is set before each step."""
    params = [Tensor(np.array(w, dtype=dtype), requires_grad=True, dtype=dtype) for w in start]
    opt = cls(params, lr=lrs[0], **hyper)
    history = []
    for t, lr in enumerate(lrs):
        grads = grad_fn(t, [p.data.astype(np.float64).tolist() for p in params])
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else np.array(g, dtype=dtype)
        opt.lr = lr
        opt.step()
        history.append([p.data.astype(np.float64).tolist() for p in params])
    return history


def quadratic(curvatures):
    """grad of 0.5 * sum(c * w^2) for each parameter (c a list per parameter)."""

    def grad_fn(t, weights):
        pairs = zip(curvatures, weights, strict=True)
        return [[c * x for c, x in zip(cs, w, strict=True)] for cs, w in pairs]

    return grad_fn


def first_column(history):
    return [step[0][0] for step in history]


# ---------------------------------------------------------------------------------
# Hand-derived literals (checked against both the reference and tinytorch).
# ---------------------------------------------------------------------------------

HAND = [
    # plain SGD, lr=0.1, grad = w from 1: w <- 0.9 w
    ("sgd", SGD, {}, 0.1, [0.9, 0.81, 0.729]),
    # momentum 0.9: b = 1, 1.8, 2.34 (b = 0.9 b + g); w = 1 - 0.1, 0.9 - 0.18, 0.72 - 0.234
    ("sgd", SGD, {"momentum": 0.9}, 0.1, [0.9, 0.72, 0.486]),
    # dampening 0.5 from step 2: b = 1, 0.9 + 0.45 = 1.35, 1.215 + 0.3825 = 1.5975
    ("sgd", SGD, {"momentum": 0.9, "dampening": 0.5}, 0.1, [0.9, 0.765, 0.60525]),
    # Nesterov: d = g + 0.9 b: 1.9, 0.81 + 0.9 * 1.71 = 2.349, 0.5751 + 0.9 * 2.1141 = 2.47779
    ("sgd", SGD, {"momentum": 0.9, "nesterov": True}, 0.1, [0.81, 0.5751, 0.327321]),
    # weight decay 0.1: d = 1.1 w, w <- (1 - 0.11) w
    ("sgd", SGD, {"weight_decay": 0.1}, 0.1, [0.89, 0.7921, 0.704969]),
    # weight decay + momentum: d = 1.1, 0.979, 0.76241; b = 1.1, 1.969, 2.53451
    ("sgd", SGD, {"momentum": 0.9, "weight_decay": 0.1}, 0.1, [0.89, 0.6931, 0.439649]),
    # Nesterov + weight decay: d = 1.1 w = 1.1, 0.8701, 0.5902391; b = 1.1, 1.8601, 2.2643291;
    # step direction d + 0.9 b = 2.09, 2.54419, 2.62813529
    ("sgd", SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, 0.1,
     [0.791, 0.536581, 0.273767471]),
    # Adam lr=0.1: t=1 step 0.1; t=2 m_hat = 0.18/0.19, v_hat = 0.001809/0.001999 -> step 0.0995878;
    # t=3 m_hat = 0.2420412/0.271, v_hat = 0.002447851/0.002997001 -> step 0.0988260
    ("adam", Adam, {}, 0.1, [0.900000, 0.800412, 0.701586]),
    # AdamW default weight_decay 0.01: shrink by 0.999, then the Adam step
    # (0.1, 0.0995820, 0.0988093: the Adam recurrence on the shrunk weights)
    ("adamw", AdamW, {}, 0.1, [0.899, 0.798519, 0.698911]),
]


@pytest.mark.parametrize("kind,cls,hyper,lr,expected", HAND)
def test_hand_derived_trajectories(kind, cls, hyper, lr, expected):
    grad_fn = quadratic([[1.0]])
    reference = first_column(reference_run(kind, [[1.0]], grad_fn, [lr] * 3, **hyper))
    assert reference == pytest.approx(expected, rel=2e-6), "reference != hand values"
    for dtype, rel in [(np.float64, 2e-6), (np.float32, 3e-6)]:
        got = first_column(tinytorch_run(cls, [[1.0]], grad_fn, [lr] * 3, dtype=dtype, **hyper))
        assert got == pytest.approx(expected, rel=rel), f"{cls.__name__}({hyper}), {dtype.__name__}"


def test_momentum_overshoots_in_the_stiff_direction():
    # grad = 4 w from -2, lr 0.1, momentum 0.9: b = -8, -12, -10.8 -> w = -1.2, 0.0, 1.08
    got = first_column(tinytorch_run(SGD, [[-2.0]], quadratic([[4.0]]), [0.1] * 3, momentum=0.9))
    assert got == pytest.approx([-1.2, 0.0, 1.08], abs=1e-12)


def test_adamw_decays_before_the_adaptive_step():
    # constant grad 1: every Adam step is exactly lr (m_hat = 1, v_hat = 1) up to eps.
    # shrink first: 1 * 0.95 - 0.1 = 0.85, 0.85 * 0.95 - 0.1 = 0.7075,
    # 0.7075 * 0.95 - 0.1 = 0.572125.
    # (shrinking after the step would give 0.9 * 0.95 = 0.855 first.)
    def constant(t, weights):
        return [[1.0]]

    got = first_column(tinytorch_run(AdamW, [[1.0]], constant, [0.1] * 3, weight_decay=0.5))
    assert got == pytest.approx([0.85, 0.7075, 0.572125], rel=1e-7)
    # Adam's L2 on the same problem: the decay is normalised away on the first step (0.9), and
    # step 2 moves by 0.1 * 1.473684 / 1.475199 = 0.0998973 (m = 0.28, v = 0.00435025).
    got = first_column(tinytorch_run(Adam, [[1.0]], constant, [0.1] * 3, weight_decay=0.5))
    assert got == pytest.approx([0.9, 0.800103, 0.700382], rel=2e-6)


def test_adam_eps_goes_after_the_square_root():
    # g = eps = 1e-3: first step = lr * g / (|g| + eps) = lr / 2. Inside the root it would be
    # 0.1 * 1e-3 / sqrt(1e-6 + 1e-3) = 0.00316.
    w = Tensor([0.0], requires_grad=True)
    w.grad = np.array([1e-3], dtype=np.float32)
    Adam([w], lr=0.1, eps=1e-3).step()
    assert float(w.data[0]) == pytest.approx(-0.05, rel=1e-6)


# ---------------------------------------------------------------------------------
# Longer runs against the reference: several parameters, missing grads, lr changes.
# ---------------------------------------------------------------------------------

START = [[1.0, -2.0, 0.5], [3.0, 0.25]]
CURVATURES = [[1.0, 4.0, 0.3], [2.0, 0.5]]


def gappy_grads(t, weights):
    """Quadratic gradients plus an offset; parameter 1 has no gradient at steps 0 and 3."""
    pairs = zip(CURVATURES, weights, strict=True)
    grads = [[c * x + 0.1 for c, x in zip(cs, w, strict=True)] for cs, w in pairs]
    if t in (0, 3):
        grads[1] = None
    return grads


LRS = [0.1, 0.1, 0.05, 0.08, 0.02, 0.1, 0.03, 0.1]

CONFIGS = [
    ("sgd", SGD, {}),
    ("sgd", SGD, {"momentum": 0.9}),
    ("sgd", SGD, {"momentum": 0.8, "dampening": 0.3}),
    ("sgd", SGD, {"momentum": 0.9, "nesterov": True}),
    ("sgd", SGD, {"momentum": 0.5, "dampening": 0.1, "weight_decay": 0.05}),
    ("sgd", SGD, {"weight_decay": 0.2}),
    ("sgd", SGD, {"momentum": 0.7, "nesterov": True, "weight_decay": 0.3}),
    ("adam", Adam, {}),
    ("adam", Adam, {"betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1}),
    ("adam", Adam, {"betas": (0.0, 0.0)}),
    ("adamw", AdamW, {}),
    ("adamw", AdamW, {"betas": (0.5, 0.9), "weight_decay": 0.3, "eps": 1e-6}),
]


@pytest.mark.parametrize("kind,cls,hyper", CONFIGS)
def test_long_runs_match_the_reference(kind, cls, hyper):
    expected = reference_run(kind, START, gappy_grads, LRS, **hyper)
    got = tinytorch_run(cls, START, gappy_grads, LRS, **hyper)
    for t, (want_step, got_step) in enumerate(zip(expected, got, strict=True)):
        for want, have in zip(want_step, got_step, strict=True):
            np.testing.assert_allclose(have, want, rtol=1e-10, atol=1e-12, err_msg=f"step {t}")
    got32 = tinytorch_run(cls, START, gappy_grads, LRS, dtype=np.float32, **hyper)
    for want, have in zip(expected[-1], got32[-1], strict=True):
        np.testing.assert_allclose(have, want, rtol=2e-5, atol=1e-6)


def test_adam_counts_steps_per_parameter():
    # b gets its first gradient at the second step: its bias correction uses t = 1 (a full
    # lr step); the optimizer's global count would give t = 2 and a step of
    # 0.1 * (0.1 / 0.19) / sqrt(0.001 / 0.001999) = 0.0744.
    a = Tensor([1.0], requires_grad=True)
    b = Tensor([1.0], requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(1, dtype=np.float32)
    opt.step()
    assert opt.state[1] == {}
    a.grad = np.ones(1, dtype=np.float32)
    b.grad = np.ones(1, dtype=np.float32)
    opt.step()
    assert float(b.data[0]) == pytest.approx(0.9, rel=1e-6)
    assert (opt.state[0]["step"], opt.state[1]["step"], opt.step_count) == (2, 1, 2)


# ---------------------------------------------------------------------------------
# In place, lazy state, skipping, odd layouts.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.5),
        lambda ps: Adam(ps, lr=0.1, weight_decay=0.1),
        lambda ps: AdamW(ps, lr=0.1),
    ],
)
def test_updates_are_in_place_and_skip_missing_grads(make):
    w = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    frozen = Tensor([7.0, 8.0], requires_grad=True)
    storage, view = w.data, w.data[1]
    opt = make([w, frozen])
    assert opt.state == [{}, {}], "state must be created lazily"
    for _ in range(3):
        w.grad = np.ones((2, 3), dtype=np.float32)
        before = view.copy()
        opt.step()
        assert w.data is storage, "p.data must be updated in place"
        assert not np.array_equal(view, before), "a view of p.data must see the update"
    assert frozen.data.tolist() == [7.0, 8.0]
    assert opt.state[1] == {}, "a parameter without gradients gets no state"
    assert opt.step_count == 3


def test_plain_sgd_keeps_no_state():
    w = Tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1, weight_decay=0.1)
    w.grad = np.ones(1, dtype=np.float32)
    opt.step()
    assert opt.state == [{}]


def test_buffers_are_float32_for_float32_parameters():
    w = Tensor([1.0, 2.0], requires_grad=True)
    for opt in (SGD([w], lr=0.1, momentum=0.9), Adam([w])):
        w.grad = np.ones(2, dtype=np.float32)
        opt.step()
        for value in opt.state[0].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


def test_non_contiguous_and_mixed_dtype_parameters():
    # A transposed (non-contiguous) float32 parameter next to a float64 one: each updates
    # exactly like the same parameter on its own (SGD momentum: w - 0.1 * g at the first step).
    base = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    expected = base.T - 0.2  # computed before the step: the tensor shares base's memory
    w = Tensor(base.T, requires_grad=True)
    assert not w.data.flags.c_contiguous
    v = Tensor(np.array([1.0, 2.0]), requires_grad=True, dtype=np.float64)
    opt = SGD([w, v], lr=0.1, momentum=0.9)
    w.grad = np.full((3, 2), 2.0, dtype=np.float32)
    v.grad = np.array([10.0, 20.0])
    opt.step()
    np.testing.assert_allclose(w.data, expected, rtol=1e-6)
    assert np.shares_memory(w.data, base), "the update must reach the original array"
    np.testing.assert_allclose(v.data, [0.0, 0.0], atol=1e-15)
    assert w.data.dtype == np.float32 and v.data.dtype == np.float64


def test_grad_with_the_wrong_shape_is_refused():
    w = Tensor([1.0, 2.0], requires_grad=True)
    w.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"params\[0\]\.grad has shape \(3,\).*\(2,\)"):
        SGD([w], lr=0.1).step()


def test_zero_grad_sets_every_grad_to_none():
    ps = [Tensor(np.ones(2), requires_grad=True) for _ in range(3)]
    for p in ps:
        p.grad = np.ones(2, dtype=np.float32)
    Adam(ps).zero_grad()
    assert [p.grad for p in ps] == [None, None, None]


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.1),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda ps: Adam(ps, weight_decay=0.1),
        lambda ps: AdamW(ps),
    ],
)
def test_steps_allocate_no_parameter_sized_arrays(make):
    import tracemalloc

    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((256, 256)), requires_grad=True)  # 256 KiB of float32
    w.grad = rng.standard_normal((256, 256)).astype(np.float32)
    opt = make([w])
    opt.step()  # the first step creates the buffers and the scratch space
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < w.data.nbytes // 4, f"a step allocated {peak} bytes at its peak"
