"""Properties of the update rules that hold for any numbers (hypothesis)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor

shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)
finite = st.floats(-10, 10, allow_nan=False, width=64)
lrs = st.floats(1e-4, 1.0)


def pair(data, dtype=np.float64, elements=finite):
    """A parameter and a gradient of the same (drawn) shape."""
    shape = data.draw(shapes)
    w = data.draw(hnp.arrays(dtype, shape, elements=elements))
    g = data.draw(hnp.arrays(dtype, shape, elements=elements))
    return w, g


def tensor(array):
    return Tensor(array.copy(), requires_grad=True, dtype=array.dtype)


@given(st.data(), lrs)
@settings(max_examples=80, deadline=None)
def test_sgd_without_momentum_is_a_plain_gradient_step(data, lr):
    w, g = pair(data)
    p = tensor(w)
    opt = SGD([p], lr=lr, momentum=0.0)
    for _ in range(2):  # no state: every step is the same rule
        before = p.data.copy()
        p.grad = g
        opt.step()
        np.testing.assert_allclose(p.data, before - lr * g, rtol=1e-12, atol=1e-12)
    assert opt.state == [{}]


@given(st.data(), lrs, st.floats(0.0, 0.99), st.integers(1, 8))
@settings(max_examples=60, deadline=None)
def test_momentum_with_constant_gradient_has_the_closed_form(data, lr, mu, n):
    # b_t = g (1 + mu + ... + mu^(t-1)), so after n steps the weights moved by
    # lr * g * sum_{t=1..n} sum_{k<t} mu^k.
    w, g = pair(data)
    p = tensor(w)
    opt = SGD([p], lr=lr, momentum=mu)
    for _ in range(n):
        p.grad = g
        opt.step()
    factor = sum(sum(mu**k for k in range(t)) for t in range(1, n + 1))
    np.testing.assert_allclose(p.data, w - lr * factor * g, rtol=1e-9, atol=1e-9)


# Gradients whose square underflows (|g| < 1e-154 in float64) make v = 0 and the step
# g / eps huge or 0 / 0, in any floating-point implementation: keep them out.
representable = st.floats(-10, 10).filter(lambda x: x == 0 or abs(x) > 1e-100)
eps_values = st.just(0.0) | st.floats(1e-12, 1e-3)


@given(st.data(), lrs, st.floats(0.0, 0.999), st.floats(0.0, 0.9999), eps_values)
@settings(max_examples=80, deadline=None)
def test_adam_first_step_is_at_most_lr(data, lr, beta1, beta2, eps):
    # At t = 1: m_hat = g, sqrt(v_hat) = |g|, so each number moves by lr * |g| / (|g| + eps) <= lr.
    w, g = pair(data, elements=representable)
    assume(eps > 0 or np.all(g != 0))  # eps = 0 and g = 0 is 0 / 0
    p = tensor(w)
    p.grad = g
    Adam([p], lr=lr, betas=(beta1, beta2), eps=eps).step()
    moved = np.abs(p.data - w)
    assert np.all(moved <= lr * (1 + 1e-9) + 1e-12)
    # and it moves against the gradient
    assert np.all(np.sign(w - p.data)[moved > 1e-12] == np.sign(g)[moved > 1e-12])


@given(st.data(), lrs)
@settings(max_examples=40, deadline=None)
def test_adam_first_step_in_float32_stays_within_lr_plus_rounding(data, lr):
    w, g = pair(data, np.float32, st.floats(-10, 10, width=32))
    p = Tensor(w.copy(), requires_grad=True)
    p.grad = g
    Adam([p], lr=lr).step()
    slack = 2 * np.spacing(np.maximum(np.abs(w), np.abs(p.data)))  # rounding of w itself
    assert np.all(np.abs(p.data.astype(np.float64) - w) <= lr * (1 + 1e-6) + slack)


nonzero = st.floats(0.01, 10) | st.floats(-10, -0.01)


@given(st.data(), st.floats(0.01, 100), st.integers(1, 5))
@settings(max_examples=50, deadline=None)
def test_adam_without_eps_ignores_the_gradient_scale(data, scale, n):
    # m scales by c and sqrt(v) by c, so m_hat / sqrt(v_hat) does not change.
    w, g = pair(data, elements=nonzero)
    a, b = tensor(w), tensor(w)
    opt_a = Adam([a], lr=0.1, eps=0.0)
    opt_b = Adam([b], lr=0.1, eps=0.0)
    for t in range(n):
        a.grad = g * (t + 1)
        b.grad = g * (t + 1) * scale
        opt_a.step()
        opt_b.step()
    np.testing.assert_allclose(a.data, b.data, rtol=1e-9, atol=1e-12)


@given(st.data(), lrs, st.floats(0.0, 0.5), st.integers(1, 4))
@settings(max_examples=50, deadline=None)
def test_adamw_is_a_shrink_then_an_adam_step(data, lr, wd, n):
    # AdamW with decay wd == (w *= 1 - lr * wd) followed by Adam (wd = 0) with the same gradient.
    w, g = pair(data)
    a, b = tensor(w), tensor(w)
    opt_w = AdamW([a], lr=lr, weight_decay=wd)
    opt_a = Adam([b], lr=lr)
    for _ in range(n):
        a.grad = g.copy()
        b.grad = g.copy()
        opt_w.step()
        b.data *= 1 - lr * wd
        opt_a.step()
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)


@given(st.data())
@settings(max_examples=30, deadline=None)
def test_zero_grad_then_step_changes_nothing(data):
    w, g = pair(data)
    p = tensor(w)
    for opt in (SGD([p], lr=0.1, momentum=0.9), Adam([p]), AdamW([p])):
        p.grad = g
        opt.zero_grad()
        assert p.grad is None
        opt.step()
        assert np.array_equal(p.data, w)
        assert opt.state == [{}]


@given(st.data(), st.integers(0, 4), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.05, weight_decay=0.01),
    lambda ps: AdamW(ps, lr=0.05),
])
def test_state_dict_round_trip_for_random_gradients(make, data, k, rest):
    w, _ = pair(data)
    grads = [data.draw(hnp.arrays(np.float64, w.shape, elements=finite)) for _ in range(k + rest)]
    straight = tensor(w)
    opt = make([straight])
    for g in grads:
        straight.grad = g
        opt.step()
    first = tensor(w)
    opt = make([first])
    for g in grads[:k]:
        first.grad = g
        opt.step()
    resumed = tensor(first.data)
    opt2 = make([resumed])
    opt2.load_state_dict(opt.state_dict())
    for g in grads[k:]:
        resumed.grad = g
        opt2.step()
    assert np.array_equal(straight.data, resumed.data)
