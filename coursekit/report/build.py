"""``course report``: read the gradebook and the grading root, work out the numbers, write
``report.html`` and its CSV files."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from coursekit.course import Course, CourseError
from coursekit.report import analysis, gradebook, messages, source
from coursekit.report.analysis import Behind, Entry, Item, ModuleStats

GRADES_CSV = "grades.csv"
TRACKED = {"modules", "source_notebooks", "release", "tinytorch", "coursekit", "tests",
           "examples", "docs"}


@dataclass
class Report:
    """Everything the page shows."""

    course_id: str
    source: source.Source
    generated: datetime
    students: list[str]
    modules: list[gradebook.Module]
    stats: list[ModuleStats]
    entries: dict[tuple[str, str], Entry]
    items: dict[str, list[Item]]
    prose: list[Item]
    behind: list[Behind]
    notes: list[str] = field(default_factory=list)


def read_grades_csv(root: Path | None, notes: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """``grades.csv`` of the grading root by (student, assignment); {} with a note when it is
    not there."""
    if root is None:
        notes.append("No grading root: statuses, reasons and flags come from the gradebook "
                     "alone, and no failure messages are shown.")
        return {}
    path = root / GRADES_CSV
    if not path.is_file():
        notes.append(f"{path} is missing: statuses, reasons and flags come from the "
                     "gradebook alone (`course grade` writes it).")
        return {}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            wanted = {"student", "assignment", "status"}
            if not wanted <= set(reader.fieldnames or ()):
                raise CourseError(f"{path}: not the grades.csv of `course grade` (needs the "
                                  f"columns {', '.join(sorted(wanted))})")
            return {(r["student"], r["assignment"]): r for r in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CourseError(f"{path}: cannot read it ({exc})") from None


def _feedback_pages(root: Path | None) -> set[str]:
    """Every file under the grading root's ``feedback/`` (one walk, not a look-up per page)."""
    found: set[str] = set()
    if root is None or not (root / "feedback").is_dir():
        return found
    for folder, _, files in os.walk(root / "feedback"):
        found.update(os.path.join(folder, name) for name in files)
    return found


def _entries(book: gradebook.Gradebook, students: list[str],
             rows: dict[tuple[str, str], dict[str, str]], root: Path | None
             ) -> dict[tuple[str, str], Entry]:
    out: dict[tuple[str, str], Entry] = {}
    pages = _feedback_pages(root)
    for mod in book.modules:
        index = {s: i for i, s in enumerate(mod.students)}
        scores, late = mod.scores().tolist(), (mod.seconds_late() > 0).tolist()
        penalty, flagged = mod.penalty.tolist(), mod.flagged.tolist()
        notebook = mod.notebooks[0] if len(mod.notebooks) == 1 else None
        for student in students:
            row = rows.get((student, mod.name), {})
            i = index.get(student)
            flags = [f.strip() for f in (row.get("flagged") or "").split(";") if f.strip()]
            if i is None:
                out[(student, mod.name)] = Entry(None, row.get("status") or "missing",
                                                 row.get("reason", ""), flags)
                continue
            if flagged[i]:
                flags.append("flagged in the formgrader")
            page = None
            if notebook is not None and pages:
                candidate = os.path.join(str(root), "feedback", student, mod.name,
                                         f"{notebook}.html")
                page = Path(candidate) if candidate in pages else None
            out[(student, mod.name)] = Entry(
                scores[i], row.get("status") or "graded", row.get("reason", ""), flags,
                row.get("late") or ("yes" if late[i] else ""), penalty[i], page)
    return out


def _failures(root: Path | None, mod: gradebook.Module) -> dict[str, dict[str, str] | None]:
    """student -> failure messages of their autograded notebooks (None: not readable), for
    every submission that failed a test."""
    out: dict[str, dict[str, str] | None] = {}
    if root is None:
        return out
    tests = [j for j, c in enumerate(mod.cells) if c.kind == "test"]
    if not tests:
        return out
    limits = np.array([mod.cells[j].max_score for j in tests]) - analysis.EPS
    failing = mod.base[:, tests] < limits
    if not (root / "autograded" / "").is_dir():
        return {mod.students[i]: None for i in np.flatnonzero(failing.any(axis=1))}
    for i in np.flatnonzero(failing.any(axis=1)):
        student = mod.students[i]
        failed = [mod.cells[tests[k]] for k in np.flatnonzero(failing[i])]
        found: dict[str, str] | None = {}
        for notebook in sorted({c.notebook for c in failed}):
            path = root / "autograded" / student / mod.name / f"{notebook}.ipynb"
            names = {c.name for c in failed if c.notebook == notebook}
            read = messages.notebook_failures(path, names)
            if read is None:
                found = None
                break
            found.update(read)
        out[student] = found
    return out


def collect(course: Course, src: source.Source, wanted: list[str] | None = None,
            engine: object | None = None) -> Report:
    """The report's numbers for the modules ``wanted`` (folder names; None: all)."""
    notes: list[str] = []
    own = engine is None
    eng = source.engine(src) if own else engine
    try:
        book = gradebook.read(eng, src.course_id, src.shown_url, wanted)
    finally:
        if own:
            eng.dispose()  # type: ignore[attr-defined]
    if wanted:
        present = {m.name for m in book.modules}
        for name in wanted:
            if name not in present:
                notes.append(f"{name}: not in the gradebook yet (no assignment); grade it with "
                             f"`course grade --module {name[:2]}`.")
    if not any(m.students for m in book.modules):
        names = ", ".join(m.name for m in book.modules)
        raise CourseError(f"gradebook {src.shown_url}: no submissions of {names} yet; grade "
                          "them with `course grade` first")
    for mod in book.modules:
        if not mod.students:
            notes.append(f"{mod.name}: no submissions in the gradebook yet.")
    rows = read_grades_csv(src.root, notes)
    rows = {k: v for k, v in rows.items() if k[1] in {m.name for m in book.modules}}
    students = analysis.class_students(book, rows)
    entries = _entries(book, students, rows, src.root)
    by_folder = {m.folder: m for m in course.modules()}
    stats, items = [], {}
    read_any = False
    for mod in book.modules:
        stats.append(analysis.module_stats(
            mod, {s: entries[(s, mod.name)] for s in students}, len(students)))
        known = by_folder.get(mod.name)
        lines = analysis.cell_lines(known.source) if known else {}
        if known is None:
            notes.append(f"{mod.name}: no module file modules/{mod.name}/ in {course.root}; "
                         "test cells are shown without their place.")
        failures = _failures(src.root, mod)
        read_any |= any(v is not None for v in failures.values())
        items[mod.name] = analysis.items(mod, lines, known.rel_source if known else "",
                                         failures)
    unread = sum(it.unread for its in items.values() for it in its)
    if src.root is not None and unread:
        where = src.root / "autograded"
        notes.append(f"{unread} failed test(s) have no failure message: their autograded "
                     f"notebook is not in {where}." if read_any else
                     f"No autograded notebooks in {where}: failure messages are not shown.")
    if not any(m.duedate for m in book.modules):
        notes.append("No module has a due date in the gradebook (course.toml [due]): "
                     "nothing is late.")
    if not any(t for m in book.modules for t in m.timestamps):
        notes.append("No submission has a submission time (timestamp.txt or `course "
                     "collect`): no curve of submissions over time.")
    every = [it for its in items.values() for it in its]
    return Report(book.course_id, src, datetime.now(UTC), students, book.modules, stats,
                  entries, items, analysis.prose_list(every),
                  analysis.behind(students, book.modules, entries), notes)


def out_folder(course: Course, out: Path | None, src: source.Source) -> Path:
    """Where the page goes (default: the grading root); a :class:`CourseError` for a folder
    inside the course's tracked folders (the report holds every student's grades)."""
    if out is None:
        if src.root is None:
            raise CourseError("--out: needed when there is no grading root")
        return src.root
    folder = out.resolve()
    inside = folder.relative_to(course.root).parts if folder.is_relative_to(course.root) else ()
    if inside and inside[0] in TRACKED:
        raise CourseError(f"--out {folder}: inside the tracked folder {inside[0]}/; the report "
                          "holds every student's grades: write it e.g. into grading/")
    if folder.exists() and not folder.is_dir():
        raise CourseError(f"--out {folder}: not a folder")
    return folder


def write_report(course: Course, out: Path | None = None, modules: list[str] | None = None,
                 grading: Path | None = None, db_url: str | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Write ``report.html`` and its CSV files for the grading root ``grading`` (default
    ``grading/``) into ``out`` (default: the grading root); the page's path."""
    from coursekit.report.page import write

    wanted = [m.folder for m in course.select(modules)] if modules else None
    src = source.locate(course, grading, db_url)
    folder = out_folder(course, out, src)
    report = collect(course, src, wanted)
    page = write(report, folder)
    graded = sum(len(m.students) for m in report.modules)
    log(f"report: {page} ({len(report.students)} students, {len(report.modules)} modules, "
        f"{graded} submissions; the numbers behind each figure in {folder}/report-*.csv)")
    for note in report.notes:
        log(f"report: note: {note}")
    return page
