"""The course's settings file, ``course.toml`` in the course root.

It holds what an instructor sets once per course, in tables: where the student repository
lives, which modules are released, due dates. This module only reads and checks the file;
the code that uses a table gives it its meaning.
"""

from __future__ import annotations

import copy
import tomllib
import weakref
from pathlib import Path
from typing import Any

from coursekit.course import Course, CourseError

SETTINGS_FILE = "course.toml"
# courses whose settings read differently from their file (see with_tables)
_OVERRIDDEN: weakref.WeakKeyDictionary[Course, dict[str, Any]] = weakref.WeakKeyDictionary()


def settings_path(course: Course) -> Path:
    """Where the course's settings live."""
    return course.root / SETTINGS_FILE


def load(course: Course) -> dict[str, Any]:
    """Every table of ``course.toml`` (an empty dict when the file does not exist)."""
    if course in _OVERRIDDEN:
        return _OVERRIDDEN[course]
    path = settings_path(course)
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(f"{SETTINGS_FILE}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(f"{SETTINGS_FILE}: cannot read it: {exc}") from exc


def table(course: Course, name: str) -> dict[str, Any]:
    """The table ``[name]`` of ``course.toml`` ({} when it is not there)."""
    value = load(course).get(name, {})
    if not isinstance(value, dict):
        raise CourseError(f"{SETTINGS_FILE}: '{name}' must be a table ([{name}]), "
                          f"not {type(value).__name__} {value!r}")
    return value


def with_tables(course: Course, **tables: dict[str, Any] | None) -> Course:
    """A copy of ``course`` whose settings read as ``course.toml`` with ``tables`` in place
    of its own (None leaves a table out), the file untouched: what a computation that
    reads the settings would give under other ones."""
    view = copy.copy(course)
    changed = dict(load(course))
    for name, value in tables.items():
        if value is None:
            changed.pop(name, None)
        else:
            changed[name] = value
    _OVERRIDDEN[view] = changed
    return view

