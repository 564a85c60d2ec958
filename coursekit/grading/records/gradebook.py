"""The course gradebook and the workers' gradebooks: copy one submission's grades across."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from coursekit import nbg
from coursekit.course import CourseError, Module
from coursekit.grading.records import deadlines
from coursekit.grading.records.root import GradingRoot

def submission_detail(db_url: str, assignment: str, student: str,
                      course_id: str | None = None) -> dict[str, Any] | None:
    """Everything autograde stored for one submission, as JSON-able data (None if none)."""
    from nbgrader.api import MissingEntry

    with nbg.gradebook(db_url, course_id) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        return {
            "timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
            "notebooks": [{
                "name": nb.name,
                "flagged": bool(nb.flagged),
                "late_submission_penalty": nb.late_submission_penalty,
                "grades": [{"name": g.name, "auto_score": g.auto_score,
                            "manual_score": g.manual_score, "extra_credit": g.extra_credit,
                            "needs_manual_grade": bool(g.needs_manual_grade)}
                           for g in nb.grades],
                "comments": [{"name": c.name, "auto_comment": c.auto_comment,
                              "manual_comment": c.manual_comment} for c in nb.comments],
            } for nb in sub.notebooks],
        }

@contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C back while a submission is rewritten (raised once it is written), so an
    interrupt never leaves a submission half-replaced. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _kept_by_hand(gb: Any, assignment: str, student: str) -> dict[str, Any] | None:
    """What an instructor entered for a submission (manual scores, extra credit, comments,
    flags, an extension), to put back after a regrade; None if there is no submission."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    return {
        "extension": sub.extension,
        "notebooks": {nb.name: {
            "flagged": bool(nb.flagged),
            "grades": {g.name: (g.manual_score, g.extra_credit) for g in nb.grades
                       if g.manual_score is not None or g.extra_credit is not None},
            "comments": {c.name: c.manual_comment for c in nb.comments
                         if c.manual_comment is not None},
        } for nb in sub.notebooks},
    }


def merge_submission(db_url: str, assignment: str, student: str,
                     detail: dict[str, Any] | None, course_id: str | None = None,
                     late: deadlines.Policy | None = None) -> None:
    """Write one submission's grades (from a worker) into the course gradebook.

    The submission is replaced, but what was entered by hand in the formgrader survives a
    regrade, as it does with nbgrader's own autograde: manual scores and extra credit (the
    cell is then marked as needing manual grading again, so the grade is looked at once
    more), manual comments, a notebook's flag and an extension. With a kept extension or
    manual score, the late penalty is worked out again with the ``late`` policy, as nbgrader
    would have with them in place. A submission that can no longer be graded (``detail``
    None) is removed; an extension it had stays, on a row without a notebook (as ``course
    extend`` records one for a student who has not handed in).
    """
    with _deferred_interrupt(), nbg.gradebook(db_url, course_id) as gb:
        gb.update_or_create_student(student)
        kept = _kept_by_hand(gb, assignment, student)
        if kept is not None:
            gb.remove_submission(assignment, student)
        if detail is None:
            if kept is not None and kept["extension"] is not None:
                # nothing handed in (yet): the extension stays, on a row of its own
                gb.add_submission(assignment, student).extension = kept["extension"]
                gb.db.commit()
            return
        stamp = detail.get("timestamp")
        sub = gb.add_submission(assignment, student,
                                timestamp=datetime.fromisoformat(stamp) if stamp else None)
        if kept is not None and kept["extension"] is not None:
            sub.extension = kept["extension"]
        for nbd in detail["notebooks"]:
            subnb = gb.find_submission_notebook(nbd["name"], assignment, student)
            old = (kept or {}).get("notebooks", {}).get(nbd["name"],
                                                        {"flagged": False, "grades": {},
                                                         "comments": {}})
            subnb.flagged = nbd["flagged"] or old["flagged"]
            subnb.late_submission_penalty = nbd["late_submission_penalty"]
            for g in nbd["grades"]:
                grade = gb.find_grade(g["name"], nbd["name"], assignment, student)
                grade.auto_score = g["auto_score"]
                grade.manual_score = g["manual_score"]
                grade.extra_credit = g["extra_credit"]
                grade.needs_manual_grade = g["needs_manual_grade"]
                if g["name"] in old["grades"]:
                    manual, extra = old["grades"][g["name"]]
                    grade.manual_score = manual
                    grade.extra_credit = extra
                    grade.needs_manual_grade = manual is not None or grade.needs_manual_grade
            for c in nbd["comments"]:
                comment = gb.find_comment(c["name"], nbd["name"], assignment, student)
                comment.auto_comment = c["auto_comment"]
                comment.manual_comment = old["comments"].get(c["name"], c["manual_comment"])
        gb.db.commit()
        if late is not None and kept is not None and (
                kept["extension"] is not None
                or any(nb["grades"] for nb in kept["notebooks"].values())):
            # the worker's gradebook knew neither the extension nor the manual scores
            reassess_penalty(sub, late)
            gb.db.commit()


def record_names(db_url: str, course_id: str | None,
                 people: dict[str, dict[str, str | None]]) -> int:
    """Give the gradebook's students what the roster knows of them (nbgrader's
    ``first_name``, ``last_name``, ``email``, ``lms_user_id``), for the formgrader and
    nbgrader's exports; students not in the gradebook are not added. The number changed."""
    changed = 0
    with nbg.gradebook(db_url, course_id) as gb:
        for student in gb.students:
            fields = people.get(student.id)
            if fields is None:
                continue
            if any(getattr(student, k) != v for k, v in fields.items()):
                for key, value in fields.items():
                    setattr(student, key, value)
                changed += 1
        gb.db.commit()
    return changed


def reassess_penalty(sub: Any, late: deadlines.Policy) -> None:
    """Work out a submission's late penalty again with the ``late`` policy, from what the
    gradebook holds now (its due date, the extension, manual scores), as nbgrader's
    ``AssignLatePenalties`` does at autograde (the caller commits)."""
    seconds = sub.total_seconds_late
    for subnb in sub.notebooks:
        if seconds <= 0:
            subnb.late_submission_penalty = None
            continue
        score = float(subnb.score)
        subnb.late_submission_penalty = min(max(late.penalty(score, seconds), 0.0), score)


def make_template(groot: GradingRoot, modules: list[Module], path: Path) -> Path:
    """A SQLite gradebook holding the assignments and their due dates, and no student
    (copied for every worker, and shipped to Dask workers in the grading bundle).

    When the course gradebook is a SQLite file, ``fill_root`` has just registered the
    assignments in it, so a copy of it serves, with every student's rows deleted; a new
    gradebook would cost another generate_assignment, seconds before the first submission
    starts. Otherwise (a database server) the assignments are generated into a new SQLite
    file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    course_db = _sqlite_file(groot.db_url)
    if course_db is not None and course_db.is_file():
        with closing(sqlite3.connect(course_db)) as src, closing(sqlite3.connect(path)) as dest:
            src.backup(dest)                      # consistent even while others read it
        _forget_students(path)
        return path
    url = "sqlite:///" + str(path)
    cfg = nbg.load_config(groot.course, root=groot.root, db_url=url)
    nbg.create_gradebook(url)
    for module in modules:
        result = nbg.run("generate_assignment", cfg, module.folder)
        if not result.get("success"):
            raise CourseError(f"grading root {groot.root}: generate_assignment {module.folder} "
                              "(worker template gradebook) failed:\n" + nbg.failure_text(result))
    # late penalties are worked out in the worker: it needs the due dates too
    dates = deadlines.due_dates(groot.course)
    deadlines.set_due_dates(url, groot.course_id, {m.folder: dates.get(m.folder)
                                                   for m in modules})
    return path

def _forget_students(path: Path) -> None:
    """Delete every student's rows (grades, comments, submissions, the students) from a
    SQLite gradebook, and the freed pages with them."""
    from nbgrader import api

    tables = [api.Comment, api.Grade, api.SubmittedNotebook, api.SubmittedAssignment,
              api.Student]
    with closing(sqlite3.connect(path)) as db:
        for table in tables:
            db.execute(f"DELETE FROM {table.__tablename__}")  # noqa: S608 - nbgrader's names
        db.commit()
        db.execute("VACUUM")


def _sqlite_file(db_url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL, or None for any other database."""
    prefix = "sqlite:///"
    return Path(db_url[len(prefix):]) if db_url.startswith(prefix) else None
