"""Due dates and the late policy, as the course settings (``course.toml``) set them.

::

    [due]
    timezone = "Europe/Berlin"           # for due dates written without an offset (default UTC)
    01_tensor = 2026-02-06T23:59:00      # a module's folder, name or number; a TOML date-time
    activations = 2026-02-13T23:59:00+01:00
    "03" = 2026-02-20                    # a date alone: due at the end of that day

    [late]
    grace_minutes = 15                   # this late still counts as on time
    penalty_per_day = 10                 # percent of the notebook's score, per started day late
    max_penalty = 100                    # percent; at most this much is taken off
    # or: policy = "zero" (any late work scores 0), policy = "none" (lateness only shown)

This module reads and checks the two tables and works out what they mean (a penalty, the
end of a module's late window); grading applies them
(:mod:`coursekit.grading.records.deadlines`), publishing waits for the late window
(:mod:`coursekit.publishing.open_modules`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, UTC
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coursekit.course import Course, CourseError
from coursekit.settings import SETTINGS_FILE, table

POLICIES = ("per_day", "zero", "none")


@dataclass(frozen=True)
class Policy:
    """The late-work policy of the ``[late]`` table."""

    policy: str = "none"
    penalty_per_day: float = 0.0  # percent of the score
    grace_minutes: float = 0.0
    max_penalty: float = 100.0  # percent of the score

    def penalty(self, score: float, seconds_late: float) -> float:
        """Points taken off a notebook that scored ``score`` and came ``seconds_late`` late."""
        late = seconds_late - self.grace_minutes * 60
        if late <= 0 or score <= 0 or self.policy == "none":
            return 0.0
        if self.policy == "zero":
            return float(score)
        days = math.ceil(late / 86400)
        percent = min(self.max_penalty, self.penalty_per_day * days)
        return float(score) * percent / 100


def _number(value: Any, key: str, low: float, high: float | None = None) -> float:
    where = f"{SETTINGS_FILE} [late] {key}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CourseError(f"{where} = {value!r}: expected a number")
    if value < low or (high is not None and value > high):
        bounds = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
        raise CourseError(f"{where} = {value!r}: expected {bounds}")
    return float(value)


def policy_from(late: dict[str, Any]) -> Policy:
    """The :class:`Policy` of a ``[late]`` table; a :class:`CourseError` naming a bad key."""
    known = {"policy", "penalty_per_day", "grace_minutes", "max_penalty"}
    for key in late:
        if key not in known:
            raise CourseError(f"{SETTINGS_FILE} [late] {key}: unknown setting; expected "
                              f"{', '.join(sorted(known))}")
    kind = late.get("policy", "per_day" if "penalty_per_day" in late else "none")
    if kind not in POLICIES:
        raise CourseError(f"{SETTINGS_FILE} [late] policy = {kind!r}: expected one of "
                          f"{', '.join(POLICIES)}")
    per_day = _number(late.get("penalty_per_day", 0), "penalty_per_day", 0, 100)
    if kind == "per_day" and per_day == 0:
        raise CourseError(f"{SETTINGS_FILE} [late] policy = \"per_day\" needs "
                          "penalty_per_day (percent per day late, above 0)")
    return Policy(kind, per_day, _number(late.get("grace_minutes", 0), "grace_minutes", 0),
                  _number(late.get("max_penalty", 100), "max_penalty", 0, 100))


def policy(course: Course) -> Policy:
    """The course's late-work policy (no penalty when ``[late]`` is absent)."""
    return policy_from(table(course, "late"))


def _zone(name: Any) -> timezone | ZoneInfo:
    if name in (None, "UTC", "utc"):
        return UTC
    if not isinstance(name, str):
        raise CourseError(f"{SETTINGS_FILE} [due] timezone = {name!r}: expected a time zone "
                          "name such as \"Europe/Berlin\"")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CourseError(f"{SETTINGS_FILE} [due] timezone = {name!r}: unknown time zone; "
                          "expected a name such as \"Europe/Berlin\" or \"UTC\"") from None


def to_utc(value: Any, key: str, zone: timezone | ZoneInfo) -> datetime:
    """A ``[due]`` value as a naive UTC datetime (how nbgrader stores due dates)."""
    where = f"{SETTINGS_FILE} [due] {key}"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise CourseError(f"{where} = {value!r}: not a date; expected e.g. "
                              "2026-02-06T23:59:00 or 2026-02-06T23:59:00+01:00") from None
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=zone)
    elif isinstance(value, date):
        stamp = datetime.combine(value, time(23, 59, 59), tzinfo=zone)
    else:
        raise CourseError(f"{where} = {value!r}: expected a date-time such as "
                          "2026-02-06T23:59:00")
    return stamp.astimezone(UTC).replace(tzinfo=None)


def due_timezone(course: Course) -> str | None:
    """The ``[due]`` table's time zone name (None: UTC)."""
    name = table(course, "due").get("timezone")
    _zone(name)
    return name


def due_zone(course: Course) -> timezone | ZoneInfo:
    """The time zone of dates written without an offset (``[due] timezone``, else UTC)."""
    return _zone(table(course, "due").get("timezone"))


def due_dates(course: Course) -> dict[str, datetime]:
    """Module folder -> due date (naive UTC) from the ``[due]`` table."""
    due = dict(table(course, "due"))
    zone = _zone(due.pop("timezone", None))
    out: dict[str, datetime] = {}
    for key, value in due.items():
        try:
            (module,) = course.select([str(key)])
        except (CourseError, ValueError):
            known = ", ".join(m.folder for m in course.modules())
            raise CourseError(f"{SETTINGS_FILE} [due] {key}: no such module; expected a "
                              f"module folder, name or number ({known})") from None
        out[module.folder] = to_utc(value, str(key), zone)
    return out


def window_end(due: datetime, late: Policy) -> datetime | None:
    """When late work of a module due at ``due`` stops earning points under ``late``
    (None: never): the grace minutes; with a penalty per day, the days until it reaches
    100 %; under ``policy = "zero"`` the grace alone; never under ``policy = "none"`` or a
    ``max_penalty`` below 100."""
    grace = timedelta(minutes=late.grace_minutes)
    if late.policy == "zero":
        return due + grace
    if late.policy == "per_day" and late.max_penalty >= 100:
        # day n late (started) costs n * penalty_per_day percent: the last day that leaves
        # something is the one before the penalty reaches 100 %
        return due + grace + timedelta(days=math.ceil(100 / late.penalty_per_day) - 1)
    return None

