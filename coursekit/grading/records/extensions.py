"""``course extend``: more time for one student on one module, recorded in the gradebook.

An extension is nbgrader's own (``SubmittedAssignment.extension``, as
``Gradebook.grant_extension`` sets it): a length of time added to the module's due date for
that student, so moving the due date in ``course.toml`` moves the student's deadline with
it. A student who has not handed in yet gets a submission row without a notebook to hold
it (``grades.csv`` shows it as not handed in). Granting, changing or removing one works the
late penalty out again at once (``grades.csv`` is written anew); the next ``course grade``
grades the submission again with it (its fingerprint holds the extension), feedback
included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from coursekit import nbg
from coursekit.course import Course, CourseError, Module
from coursekit.grading.records import deadlines
from coursekit.grading.records.database import masked
from coursekit.grading.records.gradebook import reassess_penalty
from coursekit.grading.records.results import (
    STUDENT_ID_RE,
    extension_text,
    is_placeholder,
    utc_text,
)
from coursekit.grading.records.root import GradingRoot, fill_root
from coursekit.released import require_released


@dataclass(frozen=True)
class Extension:
    """One extension in the gradebook."""

    student: str
    assignment: str
    length: timedelta
    due: datetime | None  # the assignment's due date in the gradebook (naive UTC)

    @property
    def until(self) -> datetime | None:
        """The student's deadline (naive UTC), None without a due date."""
        return self.due + self.length if self.due else None


def parse_until(text: str, course: Course) -> datetime:
    """``--until``'s date as naive UTC: an ISO date-time (in ``[due] timezone`` unless it
    has an offset) or a date alone (the end of that day)."""
    value: date | datetime
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise CourseError(f"--until {text}: not a date; expected e.g. 2026-02-08T23:59 "
                              "or 2026-02-08 (the end of that day)") from None
    return deadlines.to_utc(value, "--until", deadlines.due_zone(course))


def length_of(course: Course, module: Module, *, until: str | None = None,
              days: float | None = None) -> timedelta:
    """The extension ``--until DATE`` or ``--days N`` gives ``module`` (it must have a due
    date: an extension extends one)."""
    due = deadlines.due_dates(course).get(module.folder)
    if due is None:
        raise CourseError(f"{module.folder} has no due date (course.toml [due]); an extension "
                          "extends a due date")
    if days is not None:
        if not math.isfinite(days) or days <= 0:
            raise CourseError(f"--days {days:g}: expected a number of days above 0")
        return timedelta(days=days)
    assert until is not None
    when = parse_until(until, course)
    if when <= due:
        raise CourseError(f"--until {until}: {utc_text(when)} is not after {module.folder}'s "
                          f"due date {utc_text(due)}")
    return when - due


def grant(groot: GradingRoot, module: Module, student: str, length: timedelta | None,
          known: Collection[str] | None = None,
          log: Callable[[str], None] = print) -> Extension | None:
    """Record ``length`` as ``student``'s extension of ``module`` (None: remove it) in the
    grading root's gradebook and work the late penalty out again; the extension now.

    ``student`` must be a student of the gradebook or of ``known`` (the roster), so that a
    typing error makes no new student.
    """
    from nbgrader.api import MissingEntry

    course = groot.course
    require_released(course, [module], option="MODULE")
    if not STUDENT_ID_RE.match(student):
        raise CourseError(f"STUDENT {student!r}: expected letters, digits, '.', '_' or '-'")
    late = deadlines.policy(course)
    nbg.create_gradebook(groot.db_url)
    with nbg.gradebook(groot.db_url, groot.course_id) as gb:
        students = {s.id for s in gb.students}
        has_assignment = module.folder in {a.name for a in gb.assignments}
    if student not in students and student not in (known or ()):
        shown = ", ".join(sorted(students)[:10]) or "none yet"
        hint = "" if known else "; give --roster if they have not handed in anything yet"
        raise CourseError(f"STUDENT {student}: not a student of the gradebook "
                          f"{masked(groot.db_url)} (students: {shown}) or the roster{hint}")
    if not has_assignment:
        fill_root(groot, [module], log)  # the assignment, as `course grade` registers it
    deadlines.apply(groot, [module], log=lambda line: None)
    with nbg.gradebook(groot.db_url, groot.course_id) as gb:
        gb.update_or_create_student(student)
        try:
            sub = gb.find_submission(module.folder, student)
        except MissingEntry:
            if length is None:
                return None
            sub = gb.add_submission(module.folder, student)  # nothing handed in yet
        if length is None:
            gb.grant_extension(module.folder, student)  # no length: nbgrader removes it
        else:
            gb.grant_extension(module.folder, student, minutes=length.total_seconds() / 60)
        if length is None and is_placeholder(sub):
            gb.remove_submission(module.folder, student)  # it held only the extension
            return None
        reassess_penalty(sub, late)
        gb.db.commit()
        due = sub.assignment.duedate
        return Extension(student, module.folder, sub.extension, due) if sub.extension else None


def extensions(groot: GradingRoot, assignments: Collection[str] | None = None
               ) -> list[Extension]:
    """Every extension in the grading root's gradebook (of ``assignments`` only, if given)."""
    out: list[Extension] = []
    nbg.create_gradebook(groot.db_url)
    with nbg.gradebook(groot.db_url, groot.course_id) as gb:
        for assignment in gb.assignments:
            if assignments is not None and assignment.name not in assignments:
                continue
            for sub in gb.assignment_submissions(assignment.name):
                if sub.extension:
                    out.append(Extension(sub.student_id, assignment.name, sub.extension,
                                         assignment.duedate))
    return sorted(out, key=lambda e: (e.student, e.assignment))


def describe(ext: Extension) -> str:
    """One line on an extension: who, which module, how long, until when."""
    return f"{ext.student} {ext.assignment}: {extension_text(ext.length, ext.due)}"


def grading_root_path(course: Course, grading: str | None) -> Path:
    """The grading root ``--grading`` names (default ``grading/`` in the course root)."""
    return (Path(grading) if grading else course.root / "grading").resolve()
