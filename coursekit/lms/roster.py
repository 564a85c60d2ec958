"""The class roster: who the course's student ids are in the LMS.

``roster.csv`` has a header row and one row per student (column names in any order, any
case; only ``student`` is required)::

    student,name,email,canvas_id,sis_user_id,sis_login_id,section,id_number
    ada,Ada Lovelace,ada@uni.example,4711,S-1815,alovelace,Math 101,1815

* ``student``: the course's id for the student (their folder in the submissions, their row
  in the gradebook): letters, digits, ``.``, ``_``, ``-``.
* ``name``: the full name as the LMS shows it ("First Last"); a Moodle download names files
  by it.
* ``email``, ``id_number``: what a Moodle grade import can identify a user by.
* ``canvas_id``, ``sis_user_id``, ``sis_login_id``, ``section``: the first columns of a
  Canvas gradebook export (its ``ID`` is ``canvas_id``); a Canvas download names files by
  ``canvas_id``.

Canvas's gradebook export (Grades, Export) has all the Canvas columns: rename ``ID`` to
``canvas_id`` and add ``student``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.course import CourseError
from coursekit.grading.records.results import STUDENT_ID_RE

COLUMNS = ("student", "name", "email", "canvas_id", "sis_user_id", "sis_login_id", "section",
           "id_number")
ALIASES = {"id": "canvas_id", "canvas id": "canvas_id", "sis user id": "sis_user_id",
           "sis login id": "sis_login_id", "email address": "email", "id number": "id_number",
           "full name": "name"}


@dataclass(frozen=True)
class Person:
    """One student of the roster."""

    student: str
    name: str = ""
    email: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    id_number: str = ""

    @property
    def first_last(self) -> tuple[str, str]:
        """``name`` split into first and last name (the last word is the last name)."""
        parts = self.name.split()
        if len(parts) < 2:
            return self.name, ""
        return " ".join(parts[:-1]), parts[-1]

    @property
    def sortable_name(self) -> str:
        """``Last, First``, as Canvas lists students."""
        first, last = self.first_last
        return f"{last}, {first}" if last else first


def name_key(name: str) -> str:
    """A name compared without case, spaces or punctuation."""
    return re.sub(r"[\W_]+", "", name.casefold())


@dataclass
class Roster:
    """Every student of the roster file, looked up by course id, Canvas id or name."""

    path: Path
    people: list[Person] = field(default_factory=list)
    columns: frozenset[str] = frozenset(COLUMNS)  # the columns the file has

    def lacks(self, column: str) -> str:
        """Why ``column`` cannot identify anyone (no such column, or no value in it); empty
        if some student has a value there."""
        if column not in self.columns:
            return f"has no {column} column"
        if not any(getattr(p, column) for p in self.people):
            return f"has an empty {column} column"
        return ""

    def gradebook_fields(self) -> dict[str, dict[str, str | None]]:
        """Student -> what nbgrader's gradebook keeps of them (``first_name``,
        ``last_name``, ``email``, ``lms_user_id``: the Canvas id), from the roster."""
        return {p.student: {"first_name": p.first_last[0] or None,
                            "last_name": p.first_last[1] or None, "email": p.email or None,
                            "lms_user_id": p.canvas_id or None} for p in self.people}

    def by_student(self) -> dict[str, Person]:
        return {p.student: p for p in self.people}

    def by_canvas_id(self) -> dict[str, Person]:
        return {p.canvas_id: p for p in self.people if p.canvas_id}

    def by_name(self) -> dict[str, list[Person]]:
        found: dict[str, list[Person]] = {}
        for p in self.people:
            if p.name:
                found.setdefault(name_key(p.name), []).append(p)
        return found


def load(path: Path, option: str = "--roster") -> Roster:
    """Read and check a roster file; a :class:`CourseError` naming the file and line."""
    if not path.is_file():
        raise CourseError(f"{option} {path}: no such file (expected a CSV file with a "
                          "'student' column)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(f"{option} {path}: cannot read it as UTF-8 text ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise CourseError(f"{option} {path}: empty (expected a header row with 'student')")
    header = [ALIASES.get(h.strip().casefold(), h.strip().casefold()) for h in rows[0]]
    if "student" not in header:
        raise CourseError(f"{option} {path}:1: no 'student' column (the course's id of each "
                          f"student); columns found: {', '.join(rows[0])}")
    roster = Roster(path, columns=frozenset(h for h in header if h in COLUMNS))
    seen: dict[str, int] = {}
    canvas: dict[str, int] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)
                  if h in COLUMNS}
        sid = values.get("student", "")
        if not STUDENT_ID_RE.match(sid):
            raise CourseError(f"{option} {path}:{lineno}: student {sid!r}: expected letters, "
                              "digits, '.', '_' or '-' (at most 64)")
        if sid in seen:
            raise CourseError(f"{option} {path}:{lineno}: student {sid!r} is already on line "
                              f"{seen[sid]}")
        seen[sid] = lineno
        cid = values.get("canvas_id", "")
        if cid:
            if not cid.isdigit():
                raise CourseError(f"{option} {path}:{lineno}: canvas_id {cid!r}: expected "
                                  "Canvas's numeric user id")
            if cid in canvas:
                raise CourseError(f"{option} {path}:{lineno}: canvas_id {cid} is already on "
                                  f"line {canvas[cid]}")
            canvas[cid] = lineno
        roster.people.append(Person(**values))
    if not roster.people:
        raise CourseError(f"{option} {path}: no students (only a header row)")
    return roster
