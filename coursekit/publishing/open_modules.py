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

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coursekit import nbg, schedule
from coursekit.course import Course, CourseError, Module

window_end = schedule.window_end  # where the late window is worked out


def _extensions(course: Course, log: Callable[[str], None]) -> dict[str, timedelta]:
    """The longest extension per module in the gradebook the course's grading root
    (``grading/``) keeps, if there is one and it opens (read only)."""
    root = course.root / "grading"
    try:
        url = nbg.recorded_gradebook(root) if (root / nbg.ROOT_CONFIG).is_file() else None
    except CourseError as exc:
        log(f"publish: extensions not counted ({exc})")
        return {}
    if url is None or (url.startswith("sqlite:///")
                       and not Path(url[len("sqlite:///"):]).is_file()):
        return {}
    longest: dict[str, timedelta] = {}
    try:
        course_id = str(nbg.load_config(course).CourseDirectory.get("course_id", "") or "")
        with nbg.gradebook(url, course_id or None) as gb:
            for assignment in gb.assignments:
                for sub in gb.assignment_submissions(assignment.name):
                    if sub.extension:
                        longest[assignment.name] = max(longest.get(assignment.name,
                                                                   sub.extension),
                                                       sub.extension)
    except Exception as exc:  # noqa: BLE001 - a gradebook that does not open is named
        first = next((line for line in str(exc).splitlines() if line.strip()),
                     type(exc).__name__)
        log(f"publish: extensions not counted, the gradebook did not open ({first})")
        return {}
    return longest


def _span(length: timedelta) -> str:
    """``2d``, ``1d 6h``, ``45m``: an extension's length."""
    minutes = int(-(-length.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return " ".join([f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours)
                    + [f"{mins}m"] * bool(mins)) or "0m"


def _when(stamp: datetime) -> str:
    return f"{stamp:%Y-%m-%d %H:%M} UTC"


def still_open(course: Course, modules: list[Module], now: datetime | None = None,
               log: Callable[[str], None] = print) -> list[str]:
    """For each of ``modules`` that still takes submissions at ``now`` (naive UTC): why."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    dates = schedule.due_dates(course)
    late = schedule.policy(course)
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
        with_ext = f" with a student's extension of {_span(extension)}" if extension else ""
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
