"""Backward rules where a first version differed from PyTorch, checked against torch's numbers.

The expected numbers were computed once with torch 2.13.0 (CPU) in a separate virtual
environment (``pip install torch==2.13.0``; torch is not a dependency of the course), with
the script written next to each test, in float64.
"""

import math
import warnings

import numpy as np
import pytest

from tinytorch.core.autograd import backward
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _mean_quietly(x: Tensor, **kwargs) -> Tensor:
    """x.mean(...) without NumPy's warnings about the mean of nothing (it is nan)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return x.mean(**kwargs)


@pytest.mark.parametrize(
    ("shape", "kwargs", "upstream"),
    [
        ((0, 3), {"axis": 0}, [1.0, 2.0, 3.0]),
        ((2, 0), {"axis": 1}, [1.0, 1.0]),
        ((0,), {}, 1.0),
        ((2, 0, 3), {"axis": (0, 1), "keepdims": True}, np.ones((1, 1, 3))),
    ],
)
def test_mean_over_an_empty_axis_gives_zeros_of_the_input_shape(shape, kwargs, upstream):
    # torch: x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    #        y = x.mean(dim=...); y.backward(upstream)   -> y is nan, x.grad is an empty
    #        tensor of x's shape (torch.Size([0, 3]), [2, 0], [0], [2, 0, 3])
    x = Tensor(np.zeros(shape), dtype=np.float64, requires_grad=True)
    y = _mean_quietly(x, **kwargs)
    assert np.all(np.isnan(y.data))
    backward(y, np.asarray(upstream, dtype=np.float64))
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == shape
    assert x.grad.dtype == np.float64


def test_mean_over_an_empty_axis_inside_a_graph():
    # torch: a = torch.ones(3, requires_grad=True); e = torch.zeros((0, 3), requires_grad=True)
    #        ((a * 2).sum() + e.mean(dim=0).nansum()).backward() -> a.grad = [2, 2, 2],
    #        e.grad an empty (0, 3) tensor
    a = Tensor(np.ones(3), requires_grad=True)
    e = Tensor(np.zeros((0, 3)), requires_grad=True)
    # nansum is not an op of the course: the empty mean's gradient comes in through grad=
    backward(_mean_quietly(e, axis=0), np.ones(3, dtype=np.float32))
    backward((a * 2.0).sum())
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])
    assert e.grad.shape == (0, 3)


def test_binary_cross_entropy_gives_a_target_that_requires_grad_its_gradient():
    # torch: p = torch.tensor([0.2, 0.7, 0.9], dtype=torch.float64, requires_grad=True)
    #        t = torch.tensor([0.0, 1.0, 0.25], dtype=torch.float64, requires_grad=True)
    #        loss = F.binary_cross_entropy(p, t); loss.backward()
    torch_loss = 0.7776991479709777
    torch_p_grad = [0.4166666666666666, -0.4761904761904762, 2.407407407407408]
    torch_t_grad = [0.46209812037329684, -0.28243262012906784, -0.7324081924454066]
    p = Tensor([0.2, 0.7, 0.9], dtype=np.float64, requires_grad=True)
    t = Tensor([0.0, 1.0, 0.25], dtype=np.float64, requires_grad=True)
    loss = BinaryCrossEntropyLoss()(p, t)
    assert loss.item() == pytest.approx(torch_loss, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(p.grad, torch_p_grad, rtol=1e-12)
    np.testing.assert_allclose(t.grad, torch_t_grad, rtol=1e-12)
    # by hand, the same: dL/dt = (ln(1 - p) - ln p) / n
    np.testing.assert_allclose(
        t.grad, [(math.log(1 - v) - math.log(v)) / 3 for v in (0.2, 0.7, 0.9)], rtol=1e-12)


def test_cross_entropy_gives_probability_targets_that_require_grad_their_gradient():
    # torch: z = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64,
    #                         requires_grad=True)
    #        T = torch.tensor([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]], dtype=torch.float64,
    #                         requires_grad=True)
    #        loss = F.cross_entropy(z, T); loss.backward()
    torch_loss = 2.0901263439326874
    torch_z_grad = [[0.015611948811074514, 0.06426585960588121, -0.07987780841695576],
                    [-0.47669368871101303, 0.008573912772760194, 0.4681197759382529]]
    torch_t_grad = [[0.7321843920539725, 0.23218439205397245, 0.9821843920539725],
                    [1.5329419518787146, 2.0329419518787146, 0.03294195187871456]]
    z = Tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=np.float64, requires_grad=True)
    targets = Tensor([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]], dtype=np.float64, requires_grad=True)
    loss = CrossEntropyLoss()(z, targets)
    assert loss.item() == pytest.approx(torch_loss, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(z.grad, torch_z_grad, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(targets.grad, torch_t_grad, rtol=1e-12)


def test_target_gradients_stay_finite_where_probabilities_underflow():
    # log-probabilities of [0, -1000] are [0, -1000] (log-sum-exp); softmax rounds the second
    # to 0, so -log(softmax) would be inf; the targets' gradient is -logp / N = [0, 1000]
    z = Tensor([[0.0, -1000.0]], requires_grad=True)
    targets = Tensor([[0.5, 0.5]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CrossEntropyLoss()(z, targets).backward()
    np.testing.assert_allclose(targets.grad, [[0.0, 1000.0]], rtol=1e-6)
    # BCE clamps p to [eps, 1 - eps]: a target's gradient at p = 0 is finite
    p = Tensor([0.0, 1.0], dtype=np.float64, requires_grad=True)
    t = Tensor([0.5, 0.5], dtype=np.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BinaryCrossEntropyLoss()(p, t).backward()
    eps = 1e-7
    want = (math.log(1 - eps) - math.log(eps)) / 2
    np.testing.assert_allclose(t.grad, [want, -want], rtol=1e-9)


def test_targets_without_requires_grad_get_nothing():
    z = Tensor([[1.0, 2.0]], requires_grad=True)
    targets = Tensor([[0.5, 0.5]])
    CrossEntropyLoss()(z, targets).backward()
    assert targets.grad is None and z.grad is not None


@pytest.mark.parametrize("exponent", [0, 0.0])
def test_pow_with_exponent_zero_has_gradient_zero_also_at_zero(exponent):
    # torch: x = torch.tensor([0.0, 2.0, -1.5], dtype=torch.float64, requires_grad=True)
    #        (x ** 0).sum().backward()   -> x.grad = [0., 0., 0.]
    # (the formula p * a ** (p - 1) would give 0 * inf = nan at a = 0)
    x = Tensor([0.0, 2.0, -1.5], dtype=np.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backward((x**exponent).sum())
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


def test_pow_keeps_torchs_infinite_gradients_at_zero():
    # torch: (x ** 0.5).sum().backward() at x = [0, 2] -> [inf, 0.3536]; x ** -1.0 -> [-inf, -0.25]
    for exponent, want in ((0.5, [math.inf, 0.5 / math.sqrt(2.0)]), (-1.0, [-math.inf, -0.25])):
        x = Tensor([0.0, 2.0], dtype=np.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's divide by zero at a = 0
            backward((x**exponent).sum())
        np.testing.assert_allclose(x.grad, want, rtol=1e-12)
