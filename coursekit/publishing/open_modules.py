"""Before ``course publish`` hands out a module's reference code: does that module still
take submissions?

Publishing modules 01 .. NN puts the reference code (the solutions) of 01 .. NN-1 into the
student repository. A module still takes submissions until its due date (``course.toml``
``[due]``) plus the late window of the ``[late]`` policy: the grace minutes, and for a
penalty per day the days until the penalty reaches 100 % (late work after that scores
nothing); under ``policy = "zero"`` the window is the grace alone; under ``policy = "none"``
(or no ``[late]``) or a ``max_penalty`` below 100, late work keeps some credit, so the window
has no end. The longest extension a student has in the grading root's gradebook
(``course extend``) moves the end. A module without a due date is not checked.

:func:`check_open_modules` refuses (naming the module and the date) unless forced; forced,
it returns the sentence the publish commit carries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from coursekit.course import Course, CourseError, Module

if TYPE_CHECKING:  # imported when used: `course --help` need not load nbgrader
    from coursekit.grading.records.deadlines import Policy


def window_end(due: datetime, late: Policy) -> datetime | None:
    """When late work of a module due at ``due`` stops earning points (None: never)."""
    grace = timedelta(minutes=late.grace_minutes)
    if late.policy == "zero":
        return due + grace
    if late.policy == "per_day" and late.max_penalty >= 100:
        # day n late (started) costs n * penalty_per_day percent: the last day that leaves
        # something is the one before the penalty reaches 100 %
        return due + grace + timedelta(days=math.ceil(100 / late.penalty_per_day) - 1)
    return None


def _extensions(course: Course, log: Callable[[str], None]) -> dict[str, timedelta]:
    """The longest extension per module in the course's grading root (``grading/``), if
    there is one and its gradebook opens."""
    from coursekit.grading.grade import existing_root
    from coursekit.grading.records.extensions import extensions
    from coursekit.grading.records.root import ROOT_CONFIG

    root = course.root / "grading"
    if not (root / ROOT_CONFIG).is_file():
        return {}
    try:
        groot = existing_root(course, root, who="publish", log=lambda line: None)
        found = extensions(groot)
    except CourseError as exc:
        log(f"publish: extensions not counted, the gradebook did not open ({exc})")
        return {}
    longest: dict[str, timedelta] = {}
    for ext in found:
        longest[ext.assignment] = max(longest.get(ext.assignment, ext.length), ext.length)
    return longest


def _when(stamp: datetime) -> str:
    return f"{stamp:%Y-%m-%d %H:%M} UTC"


def still_open(course: Course, modules: list[Module], now: datetime | None = None,
               log: Callable[[str], None] = print) -> list[str]:
    """For each of ``modules`` that still takes submissions at ``now`` (naive UTC): why."""
    from coursekit.grading.records import deadlines
    from coursekit.grading.records.results import late_text

    now = now or datetime.now(UTC).replace(tzinfo=None)
    dates = deadlines.due_dates(course)
    late = deadlines.policy(course)
    if not any(m.folder in dates for m in modules):
        return []
    longest = _extensions(course, log)
    out: list[str] = []
    for module in modules:
        due = dates.get(module.folder)
        if due is None:
            continue
        extension = longest.get(module.folder, timedelta(0))
        end = window_end(due + extension, late)
        with_ext = (f" with a student's extension of {late_text(extension.total_seconds())}"
                    if extension else "")
        if end is None:
            rule = ("late work keeps full credit ([late] policy none)" if late.policy == "none"
                    else f"late work keeps at least {100 - late.max_penalty:g} % "
                    f"([late] max_penalty = {late.max_penalty:g})")
            out.append(f"{module.folder} (due {_when(due)}{with_ext}) takes submissions with "
                       f"no end: {rule}")
        elif end > now:
            out.append(f"{module.folder} takes submissions until {_when(end)} (due "
                       f"{_when(due)}{with_ext}, then the late window of [late])")
    return out


def check_open_modules(course: Course, modules: list[Module], *, force: bool = False,
                       now: datetime | None = None, log: Callable[[str], None] = print) -> str:
    """Refuse to publish the reference code of ``modules`` while one still takes
    submissions (a :class:`CourseError` naming it and the date); with ``force``, go on and
    return the note for the commit message (empty when nothing was open)."""
    why = still_open(course, modules, now, log)
    if not why:
        return ""
    listed = "; ".join(why)
    if not force:
        raise CourseError(f"publishing would hand out the reference code of a module that "
                          f"still takes submissions: {listed}. Publish after that date, or "
                          "with --force (the commit says so)")
    log(f"publish: --force: the reference code goes out while {listed}")
    return f"Published with --force while {listed}."
