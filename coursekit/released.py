"""Which modules the course has released: those handed out to students so far.

A module is released when it is in the student repository: modules 01 .. ``through`` of
``[student_repository]`` in ``course.toml`` (every module when ``through`` is not set), the
same setting ``course publish`` follows. Due dates do not release a module (one can be
handed out weeks before it is due); they only say when work is late. Only released modules
are graded (``course grade``), given extensions (``course extend``), listed in
``grades.csv`` and exported for an LMS; raising ``through`` releases the next one.
"""

from __future__ import annotations

from coursekit.course import Course, CourseError, Module
from coursekit.settings import SETTINGS_FILE, table

WHERE = f"{SETTINGS_FILE} [student_repository] through"


def through_setting(course: Course) -> str | None:
    """``through`` as written in course.toml (None when it is not set)."""
    value = table(course, "student_repository").get("through")
    return None if value is None else str(value)


def released_modules(course: Course) -> list[Module]:
    """The modules released so far, in order."""
    modules = course.modules()
    value = through_setting(course)
    if value is None:
        return modules
    try:
        (last,) = course.select([value])
    except (CourseError, ValueError):
        known = ", ".join(m.number for m in modules)
        raise CourseError(f"{WHERE} = {value!r}: not a module of this course (modules: "
                          f"{known})") from None
    return [m for m in modules if m.number <= last.number]


def require_released(course: Course, modules: list[Module], option: str = "--module") -> None:
    """A :class:`CourseError` naming the first of ``modules`` not released yet."""
    released = released_modules(course)
    for module in modules:
        if module not in released:
            raise CourseError(f"{option} {module.number}: module {module.folder} is not "
                              f"released yet ({WHERE} = \"{through_setting(course)}\"); "
                              "raise through once it is handed out")
