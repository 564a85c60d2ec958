"""CosineSchedule: closed-form values, bounds and monotonicity, argument checks, state."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.training import CosineSchedule

R2 = math.sqrt(2.0) / 2.0  # cos(pi/4)


@pytest.mark.parametrize(
    ("settings_", "epoch", "want"),
    [
        # the notebook's table: 0.1 / 0.01 / 100
        ((0.1, 0.01, 100), 0, 0.1),
        ((0.1, 0.01, 100), 25, 0.01 + 0.09 * (1 + R2) / 2),  # 0.0868198
        ((0.1, 0.01, 100), 50, 0.055),  # cos(pi/2) = 0: the midpoint
        ((0.1, 0.01, 100), 75, 0.01 + 0.09 * (1 - R2) / 2),  # 0.0231802
        ((0.1, 0.01, 100), 100, 0.01),
        # cos(pi/3) = 1/2 and cos(2pi/3) = -1/2
        ((0.5, 0.1, 3), 1, 0.4),
        ((0.5, 0.1, 3), 2, 0.2),
        ((1.0, 0.0, 4), 3, (1 - R2) / 2),
        # held at min_lr after the end (torch's closed form would climb back up)
        ((0.1, 0.01, 100), 150, 0.01),
        ((0.1, 0.01, 100), 10**9, 0.01),
        ((0.3, 0.3, 5), 2, 0.3),
    ],
)
def test_values_in_closed_form(settings_, epoch, want):
    got = CosineSchedule(*settings_).get_lr(epoch)
    assert type(got) is float
    assert abs(got - want) < 1e-12


def test_printed_table_rounds_as_documented():
    s = CosineSchedule(0.1, 0.01, 100)
    assert [f"{s.get_lr(e):.4f}" for e in (0, 25, 50, 75, 100)] == [
        "0.1000", "0.0868", "0.0550", "0.0232", "0.0100",
    ]


lrs = st.floats(0.0, 10.0, allow_nan=False)


@given(lrs, lrs, st.integers(1, 500))
@settings(max_examples=100, deadline=None)
def test_monotone_bounded_and_pinned_at_the_ends(a, b, total):
    hi, lo = max(a, b), min(a, b)
    s = CosineSchedule(hi, lo, total)
    values = [s.get_lr(e) for e in range(total + 3)]
    assert values[0] == hi
    assert all(v == lo for v in values[total:])
    tol = 1e-12 * max(1.0, hi)
    assert all(lo - tol <= v <= hi + tol for v in values)
    assert all(later <= earlier + tol for earlier, later in zip(values, values[1:], strict=False))


@given(st.integers(1, 400), st.data())
@settings(max_examples=60, deadline=None)
def test_symmetric_about_the_midpoint(total, data):
    # (1 + cos(pi - x)) / 2 = 1 - (1 + cos(x)) / 2: lr(e) + lr(total - e) = max + min
    e = data.draw(st.integers(1, total - 1)) if total > 1 else 0
    s = CosineSchedule(0.7, 0.1, total)
    if total > 1:
        assert abs(s.get_lr(e) + s.get_lr(total - e) - 0.8) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"total_epochs": 0}, "total_epochs"),
        ({"total_epochs": 10.0}, "total_epochs"),
        ({"total_epochs": True}, "total_epochs"),
        ({"min_lr": -1e-3}, "min_lr"),
        ({"max_lr": float("nan")}, "max_lr"),
        ({"max_lr": float("inf")}, "max_lr"),
        ({"max_lr": "0.1"}, "max_lr"),
        ({"max_lr": 0.01, "min_lr": 0.1}, "min_lr"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CosineSchedule(**kwargs)


@pytest.mark.parametrize("epoch", [-1, 2.0, True, None, "3"])
def test_bad_epoch(epoch):
    with pytest.raises(ValueError, match="epoch") as info:
        CosineSchedule().get_lr(epoch)
    assert repr(epoch) in str(info.value)


def test_state_dict_round_trip_and_validation():
    s = CosineSchedule(0.2, 0.02, 30)
    t = CosineSchedule()
    t.load_state_dict(s.state_dict())
    assert [t.get_lr(e) for e in range(35)] == [s.get_lr(e) for e in range(35)]
    with pytest.raises(ValueError, match="total_epochs"):
        t.load_state_dict({"max_lr": 0.1, "min_lr": 0.0})
    with pytest.raises(ValueError, match="min_lr"):
        t.load_state_dict({"max_lr": 0.1, "min_lr": 0.5, "total_epochs": 3})
    assert t.state_dict() == s.state_dict(), "a rejected state leaves the schedule unchanged"
