"""``course export``: the gradebook as a grade-import file for an LMS, or a plain table.

One row per student of the roster, one column per released assignment in the gradebook
(:mod:`coursekit.released`); a score is the gradebook's (manual grades included) less the
late penalty, as in ``grades.csv``. A notebook not handed in while its due date is still
ahead gets an empty cell, not a zero.

* ``canvas``: the layout of Canvas's gradebook export, which its gradebook import reads
  back: ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per
  assignment, and a ``Points Possible`` row first. Canvas finds students by ``ID`` (the
  roster's ``canvas_id``) or the SIS ids, and an assignment column by its title; a title
  it does not know becomes a new assignment. Titles default to the module folder
  (``01_tensor``); ``course.toml``'s ``[lms] columns`` table maps a module to the title of
  an existing Canvas assignment (``01_tensor = "Tensor (4821)"``, the number being the
  Canvas assignment id Canvas's own export puts in the title).
* ``moodle``: the columns of Moodle's grade export (``First name, Last name, ID number,
  Email address``), then one column per assignment. Moodle's "Import grades from CSV file"
  asks which column identifies a user (map ``Email address`` to email address, or ``ID
  number`` to ID number) and which grade item each assignment column goes to.
* ``csv``: ``student, name, email``, one column per assignment, ``total`` and ``max_total``.

Students in the gradebook but not in the roster are left out (and named); roster students
without a gradebook row get empty cells (an LMS import leaves those grades alone).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from coursekit.course import Course, CourseError
from coursekit.text import number
from coursekit.grading.records.results import NOT_DUE, RunRecord, gradebook_results
from coursekit.released import released_modules
from coursekit.lms.roster import Person, Roster
from coursekit.settings import SETTINGS_FILE, table

FORMATS = ("canvas", "moodle", "csv")


def column_titles(course: Course, assignments: list[str]) -> dict[str, str]:
    """Assignment -> its column title (``[lms] columns`` of course.toml, else its name)."""
    columns = table(course, "lms").get("columns", {})
    if not isinstance(columns, dict):
        raise CourseError(f"{SETTINGS_FILE} [lms] columns: expected a table of module = "
                          "\"LMS column title\"")
    titles = {a: a for a in assignments}
    for key, title in columns.items():
        try:
            (module,) = course.select([str(key)])
        except CourseError:
            raise CourseError(f"{SETTINGS_FILE} [lms] columns: {key}: no such module") from None
        if not isinstance(title, str) or not title.strip():
            raise CourseError(f"{SETTINGS_FILE} [lms] columns: {key} = {title!r}: expected "
                              "the LMS column title as text")
        if module.folder in titles:
            titles[module.folder] = title.strip()
    return titles


def export(course: Course, fmt: str, db_url: str, course_id: str | None, grading_root: Path,
           out: Path, roster: Roster | None,
           log: Callable[[str], None] = print) -> Path:
    """Write the ``fmt`` file ``out`` from the gradebook; its path."""
    if fmt not in FORMATS:
        raise CourseError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt != "csv" and roster is None:
        raise CourseError(f"--format {fmt} needs --roster (the LMS's ids of the students)")
    if roster is not None:
        _check_ids(fmt, roster)
    released = {m.folder for m in released_modules(course)}
    results = gradebook_results(db_url, course_id, RunRecord(grading_root).latest(), released,
                                lambda line: log(f"export: {line}"))
    assignments = sorted({r.assignment for r in results})
    if not assignments:
        raise CourseError(f"gradebook {grading_root}: no assignments graded yet "
                          "(run `course grade` first)")
    maxima = {r.assignment: r.max_score for r in results}
    # a notebook not due yet has no grade: its cell stays empty (an import leaves it alone)
    scores = {(r.student, r.assignment): r.score for r in results if r.status != NOT_DUE}
    students = sorted({r.student for r in results})
    if roster is None:
        people = [Person(s) for s in students]
    else:
        people = roster.people
        left_out = [s for s in students if s not in roster.by_student()]
        if left_out:
            log(f"export: not in the roster, left out: {', '.join(left_out)}")
    titles = column_titles(course, assignments)
    rows: list[list[str]] = []
    if fmt == "canvas":
        rows.append(["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                     *(titles[a] for a in assignments)])
        rows.append(["Points Possible", "", "", "", "",
                     *(number(maxima[a]) for a in assignments)])
        for p in people:
            rows.append([p.sortable_name or p.student, p.canvas_id, p.sis_user_id,
                         p.sis_login_id, p.section, *_cells(p, assignments, scores)])
    elif fmt == "moodle":
        rows.append(["First name", "Last name", "ID number", "Email address",
                     *(titles[a] for a in assignments)])
        for p in people:
            first, last = p.first_last
            rows.append([first, last, p.id_number, p.email, *_cells(p, assignments, scores)])
    else:
        rows.append(["student", "name", "email", *(titles[a] for a in assignments), "total",
                     "max_total"])
        for p in people:
            cells = _cells(p, assignments, scores)
            graded = [scores[(p.student, a)] for a in assignments if (p.student, a) in scores]
            total = number(sum(graded)) if graded else ""
            rows.append([p.student, p.name, p.email, *cells, total,
                         number(sum(maxima.values()))])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    tmp.replace(out)
    log(f"export: {fmt} grades of {len(people)} student(s), {len(assignments)} assignment(s) "
        f"written to {out}")
    return out


def _check_ids(fmt: str, roster: Roster) -> None:
    """Refuse a roster whose students the LMS could not find: a Canvas ID column that would
    be empty, a Moodle file with neither email addresses nor ID numbers, or students with
    no id the LMS matches (their grades would be dropped by the import)."""
    if fmt == "canvas":
        lack = roster.lacks("canvas_id")
        if lack:
            raise CourseError(f"--roster {roster.path} {lack}: the ID column Canvas finds "
                              "students by would be empty; add Canvas's ID (the ID column of "
                              "its gradebook export) as canvas_id (nothing was written)")
        fields = ("canvas_id", "sis_user_id", "sis_login_id")
    elif fmt == "moodle":
        if roster.lacks("email") and roster.lacks("id_number"):
            raise CourseError(f"--roster {roster.path}: no email or id_number values; Moodle "
                              "finds students by one of them (nothing was written)")
        fields = ("email", "id_number")
    else:
        return
    unmatched = [p.student for p in roster.people if not any(getattr(p, f) for f in fields)]
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (" ..." if len(unmatched) > 10 else "")
        raise CourseError(f"--roster {roster.path}: {len(unmatched)} student(s) without "
                          f"{' or '.join(fields)} ({shown}): the {fmt.capitalize()} import "
                          "could not find them; fill them in (nothing was written)")


def _cells(person: Person, assignments: list[str],
           scores: dict[tuple[str, str], float]) -> list[str]:
    return [number(scores[(person.student, a)]) if (person.student, a) in scores else ""
            for a in assignments]
