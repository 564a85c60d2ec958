"""Bad arguments are refused with messages that name the argument and the value."""

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW, Optimizer
from tinytorch.core.tensor import Tensor


def params() -> list[Tensor]:
    return [Tensor([1.0, 2.0], requires_grad=True)]


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: SGD(params(), lr=-0.1), r"lr=-0\.1"),
        (lambda: SGD(params(), lr=float("nan")), r"lr=nan"),
        (lambda: SGD(params(), lr=0.1, momentum=-0.9), r"momentum=-0\.9"),
        (lambda: SGD(params(), lr=0.1, dampening=1.5), r"dampening=1\.5"),
        (lambda: SGD(params(), lr=0.1, weight_decay=-1e-4), r"weight_decay=-0\.0001"),
        (lambda: SGD(params(), lr=0.1, nesterov=True), r"nesterov.*momentum=0"),
        (
            lambda: SGD(params(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            r"nesterov.*dampening=0\.1",
        ),
        (lambda: Adam(params(), lr=-1e-3), r"lr=-0\.001"),
        (lambda: Adam(params(), betas=(1.0, 0.999)), r"betas\[0\]=1\.0"),
        (lambda: Adam(params(), betas=(-0.1, 0.999)), r"betas\[0\]=-0\.1"),
        (lambda: Adam(params(), betas=(0.9, 1.0)), r"betas\[1\]=1\.0"),
        (lambda: Adam(params(), betas=(0.9,)), r"betas"),
        (lambda: Adam(params(), eps=-1e-8), r"eps=-1e-08"),
        (lambda: Adam(params(), weight_decay=-0.1), r"weight_decay=-0\.1"),
        (lambda: AdamW(params(), weight_decay=-0.01), r"weight_decay=-0\.01"),
        (lambda: SGD([], lr=0.1), r"empty"),
        (lambda: Adam(iter([])), r"empty"),
    ],
)
def test_invalid_arguments_raise_value_error(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: SGD(params(), lr="0.1"), r"lr must be a number"),
        (lambda: SGD(params(), lr=True), r"lr must be a number"),
        (lambda: SGD(params(), lr=0.1, nesterov="yes"), r"nesterov"),
        (lambda: Adam(params(), betas=0.9), r"betas"),
        (lambda: SGD(Tensor([1.0, 2.0], requires_grad=True), lr=0.1), r"iterable of tensors"),
        (lambda: SGD([np.zeros(3)], lr=0.1), r"params\[0\]"),
        (lambda: SGD([Tensor(np.arange(3))], lr=0.1), r"params\[0\].*int64"),
    ],
)
def test_wrong_types_raise_type_error(make, pattern):
    with pytest.raises(TypeError, match=pattern):
        make()


def test_duplicate_parameters_are_refused():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"params\[2\] is the same tensor as params\[0\]"):
        SGD([w, Tensor([2.0], requires_grad=True), w], lr=0.1)


def test_boundary_values_are_accepted():
    SGD(params(), lr=0.0, momentum=0.0, dampening=1.0, weight_decay=0.0)
    Adam(params(), lr=0.0, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0)
    opt = Adam(params(), lr=np.float32(0.5), betas=[0.5, 0.5])
    assert type(opt.lr) is float and opt.betas == (0.5, 0.5)


def test_base_class_step_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer(params()).step()


def test_lr_can_be_changed_between_steps():
    # lr 0.1 then 0.5 on grad = 1: 1 - 0.1 - 0.5 = 0.4
    w = Tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1)
    w.grad = np.ones(1, dtype=np.float32)
    opt.step()
    opt.lr = 0.5
    opt.step()
    assert float(w.data[0]) == pytest.approx(0.4, rel=1e-6)
    assert opt.hyperparameters()["lr"] == 0.5
    assert repr(opt).startswith("SGD(lr=0.5")
