"""The course's settings file, ``course.toml`` in the course root.

It holds what an instructor sets once per course, in tables: where the student repository
lives, which modules are released, due dates. This module only reads and checks the file;
the code that uses a table gives it its meaning.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from coursekit.course import Course, CourseError

SETTINGS_FILE = "course.toml"


def settings_path(course: Course) -> Path:
    """Where the course's settings live."""
    return course.root / SETTINGS_FILE


def load(course: Course) -> dict[str, Any]:
    """Every table of ``course.toml`` (an empty dict when the file does not exist)."""
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
