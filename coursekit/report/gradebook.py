"""The gradebook as the report needs it, read with plain SQL (SQLAlchemy Core) from nbgrader's
tables: assignments and their graded cells, students, submissions and every cell's score.

Only the columns read are declared here (nbgrader 0.9's schema); SQLAlchemy's column types
turn SQLite's stored text into datetimes and intervals as nbgrader's own models would.
A cell's score is nbgrader's: the manual score if there is one, else the automatic score,
plus any extra credit (nothing when neither score is set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from coursekit.course import CourseError

_TABLES: Any = None


def tables() -> Any:
    """The subset of nbgrader's tables the report reads (built once)."""
    global _TABLES
    if _TABLES is None:
        from sqlalchemy import (Boolean, Column, DateTime, Float, Interval, MetaData, String,
                                Table)

        md = MetaData()
        s = String
        _TABLES = {
            "course": Table("course", md, Column("id", s, primary_key=True)),
            "assignment": Table("assignment", md, Column("id", s, primary_key=True),
                                Column("name", s), Column("duedate", DateTime),
                                Column("course_id", s)),
            "notebook": Table("notebook", md, Column("id", s, primary_key=True),
                              Column("name", s), Column("assignment_id", s)),
            "base_cell": Table("base_cell", md, Column("id", s, primary_key=True),
                               Column("name", s), Column("notebook_id", s), Column("type", s)),
            "grade_cells": Table("grade_cells", md, Column("id", s, primary_key=True),
                                 Column("max_score", Float), Column("cell_type", s)),
            "task_cells": Table("task_cells", md, Column("id", s, primary_key=True),
                                Column("max_score", Float)),
            "student": Table("student", md, Column("id", s, primary_key=True)),
            "submitted_assignment": Table(
                "submitted_assignment", md, Column("id", s, primary_key=True),
                Column("assignment_id", s), Column("student_id", s),
                Column("timestamp", DateTime), Column("extension", Interval)),
            "submitted_notebook": Table(
                "submitted_notebook", md, Column("id", s, primary_key=True),
                Column("assignment_id", s), Column("notebook_id", s),
                Column("flagged", Boolean), Column("late_submission_penalty", Float)),
            "grade": Table("grade", md, Column("id", s, primary_key=True),
                           Column("notebook_id", s), Column("cell_id", s),
                           Column("auto_score", Float), Column("manual_score", Float),
                           Column("extra_credit", Float),
                           Column("needs_manual_grade", Boolean)),
        }
    return _TABLES


@dataclass
class Cell:
    """A graded cell of an assignment."""

    name: str  # nbgrader's grade_id
    notebook: str  # the notebook's name (without .ipynb)
    max_score: float
    kind: str  # "test" (autograded code), "answer" (graded by hand), "task"


@dataclass
class Module:
    """One assignment of the gradebook and every submission of it.

    Row ``i`` of the arrays is the submission of ``students[i]``; column ``j`` is
    ``cells[j]``.
    """

    name: str  # the assignment, e.g. 01_tensor
    duedate: datetime | None  # naive UTC, as nbgrader stores it
    cells: list[Cell]
    students: list[str] = field(default_factory=list)
    base: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # manual, else auto
    extra: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # extra credit
    graded: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # a score set
    penalty: np.ndarray = field(default_factory=lambda: np.zeros(0))  # late penalty, points
    flagged: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # formgrader flag
    needs_manual: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    timestamps: list[datetime | None] = field(default_factory=list)
    due: list[datetime | None] = field(default_factory=list)  # with the extension

    @property
    def max_score(self) -> float:
        """The assignment's points (nbgrader's ``Assignment.max_score``)."""
        return float(sum(c.max_score for c in self.cells))

    @property
    def notebooks(self) -> list[str]:
        """The assignment's notebooks, in order."""
        return sorted({c.notebook for c in self.cells})

    def raw_scores(self) -> np.ndarray:
        """Each submission's score before the late penalty (the sum of its cells' scores)."""
        return (self.base + self.extra).sum(axis=1)

    def scores(self) -> np.ndarray:
        """Each submission's score: late penalty taken off, never below zero."""
        return np.maximum(0.0, self.raw_scores() - self.penalty)

    def seconds_late(self) -> np.ndarray:
        """How late each submission came (0: on time, no due date or no time)."""
        out = np.zeros(len(self.students))
        for i, (stamp, due) in enumerate(zip(self.timestamps, self.due, strict=True)):
            if stamp is not None and due is not None:
                out[i] = max(0.0, (stamp - due).total_seconds())
        return out


@dataclass
class Gradebook:
    """What the report reads from the gradebook."""

    course_id: str
    students: list[str]
    modules: list[Module]


def _check_tables(conn: Any, shown: str) -> None:
    from sqlalchemy import inspect

    names = set(inspect(conn).get_table_names())
    missing = [t for t in tables() if t not in names]
    if not names:
        raise CourseError(f"gradebook {shown}: an empty database (no tables); grade into it "
                          "with `course grade` first")
    if len(missing) == len(tables()):
        raise CourseError(f"gradebook {shown}: not an nbgrader gradebook (none of nbgrader's "
                          "tables)")
    if missing:
        raise CourseError(f"gradebook {shown}: not an nbgrader gradebook (no table "
                          f"{', '.join(missing)})")


def read(engine: Any, course_id: str, shown: str, modules: list[str] | None = None) -> Gradebook:
    """Everything the report needs from the gradebook behind ``engine``: the assignments of
    ``course_id`` (all courses if empty), restricted to ``modules`` when given."""
    from sqlalchemy import select

    t = tables()
    with engine.connect() as conn:
        _check_tables(conn, shown)
        a = t["assignment"]
        query = select(a.c.id, a.c.name, a.c.duedate)
        if course_id:
            known = [r[0] for r in conn.execute(select(t["course"].c.id))]
            if known and course_id not in known:
                raise CourseError(
                    f"gradebook {shown}: holds no course {course_id!r} (the course id of "
                    f"grader_config.py); it holds: {', '.join(sorted(known)) or 'none'}")
            query = query.where(a.c.course_id == course_id)
        rows = conn.execute(query).all()
        if not rows:
            raise CourseError(f"gradebook {shown}: holds no assignments; grade into it with "
                              "`course grade` first")
        assignments = {r.id: r for r in rows}
        if modules is not None:
            names = {r.name for r in rows}
            absent = [m for m in modules if m not in names]
            if len(absent) == len(modules):
                raise CourseError(f"--module: the gradebook {shown} holds no assignment "
                                  f"{', '.join(absent)}; grade it with `course grade "
                                  f"--module {absent[0][:2]}` first")
            assignments = {k: r for k, r in assignments.items() if r.name in modules}
        students = sorted(r[0] for r in conn.execute(select(t["student"].c.id)))

        nb, bc = t["notebook"], t["base_cell"]
        notebooks = {r.id: (r.name, r.assignment_id) for r in conn.execute(
            select(nb.c.id, nb.c.name, nb.c.assignment_id)) if r.assignment_id in assignments}
        cells: dict[str, tuple[str, int]] = {}  # cell id -> (assignment id, column)
        per_assignment: dict[str, list[Cell]] = {k: [] for k in assignments}
        solution = {(r.name, r.notebook_id) for r in conn.execute(
            select(bc.c.name, bc.c.notebook_id).where(bc.c.type == "SolutionCell"))}
        gc, tc = t["grade_cells"], t["task_cells"]
        graded_cells = conn.execute(
            select(bc.c.id, bc.c.name, bc.c.notebook_id, gc.c.max_score, gc.c.cell_type)
            .join(gc, gc.c.id == bc.c.id)).all()
        task_cells = conn.execute(
            select(bc.c.id, bc.c.name, bc.c.notebook_id, tc.c.max_score)
            .join(tc, tc.c.id == bc.c.id)).all()
        for r in sorted(graded_cells, key=lambda r: r.name):
            if r.notebook_id not in notebooks:
                continue
            nb_name, aid = notebooks[r.notebook_id]
            kind = ("answer" if (r.name, r.notebook_id) in solution or r.cell_type != "code"
                    else "test")
            cells[r.id] = (aid, len(per_assignment[aid]))
            per_assignment[aid].append(Cell(r.name, nb_name, float(r.max_score), kind))
        for r in sorted(task_cells, key=lambda r: r.name):
            if r.notebook_id not in notebooks:
                continue
            nb_name, aid = notebooks[r.notebook_id]
            cells[r.id] = (aid, len(per_assignment[aid]))
            per_assignment[aid].append(Cell(r.name, nb_name, float(r.max_score), "task"))

        sa = t["submitted_assignment"]
        subs: dict[str, tuple[str, int]] = {}  # submission id -> (assignment id, row)
        built = {aid: Module(r.name, r.duedate, per_assignment[aid])
                 for aid, r in assignments.items()}
        for r in sorted(conn.execute(select(sa.c.id, sa.c.assignment_id, sa.c.student_id,
                                            sa.c.timestamp, sa.c.extension)),
                        key=lambda r: r.student_id or ""):
            mod = built.get(r.assignment_id)
            if mod is None:
                continue
            subs[r.id] = (r.assignment_id, len(mod.students))
            mod.students.append(r.student_id)
            mod.timestamps.append(r.timestamp)
            due = mod.duedate
            if due is not None and isinstance(r.extension, timedelta):
                due = due + r.extension
            mod.due.append(due)
        for mod in built.values():
            n, c = len(mod.students), len(mod.cells)
            mod.base, mod.extra = np.zeros((n, c)), np.zeros((n, c))
            mod.graded = np.zeros((n, c), bool)
            mod.penalty, mod.flagged = np.zeros(n), np.zeros(n, bool)
            mod.needs_manual = np.zeros(n, bool)

        sn = t["submitted_notebook"]
        sub_of_nb: dict[str, tuple[str, int]] = {}
        for r in conn.execute(select(sn.c.id, sn.c.assignment_id, sn.c.flagged,
                                     sn.c.late_submission_penalty)):
            where = subs.get(r.assignment_id)
            if where is None:
                continue
            sub_of_nb[r.id] = where
            mod, row = built[where[0]], where[1]
            mod.penalty[row] += float(r.late_submission_penalty or 0)
            mod.flagged[row] |= bool(r.flagged)

        g = t["grade"]
        for r in conn.execute(select(g.c.notebook_id, g.c.cell_id, g.c.auto_score,
                                     g.c.manual_score, g.c.extra_credit,
                                     g.c.needs_manual_grade)):
            where = sub_of_nb.get(r.notebook_id)
            col = cells.get(r.cell_id)
            if where is None or col is None:
                continue
            mod, row = built[where[0]], where[1]
            score = r.manual_score if r.manual_score is not None else r.auto_score
            if score is not None:
                mod.base[row, col[1]] = score
                mod.extra[row, col[1]] = r.extra_credit or 0.0
                mod.graded[row, col[1]] = True
            if r.needs_manual_grade:
                mod.needs_manual[row] = True
    return Gradebook(course_id, students, sorted(built.values(), key=lambda m: m.name))
