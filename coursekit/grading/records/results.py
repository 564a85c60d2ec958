"""What grading produces: jobs, results, ``grades.csv`` and the console tables.

``grades.csv`` is written from the gradebook, so it always holds every student and every
assignment the gradebook knows, whichever subset a run graded, and it shows grades entered
by hand in nbgrader's formgrader. What the gradebook does not hold (why a submission could
not be graded, what was flagged for review) comes from the grading root's run record,
``results.jsonl``: one line per graded submission, appended as each one is saved.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, UTC
from enum import StrEnum
from pathlib import Path
from typing import Any

from coursekit import nbg
from coursekit.course import Module
from coursekit.text import duration, number

STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

CSV_FIELDS = ["student", "assignment", "score", "max_score", "status", "reason", "flagged",
              "sandboxed", "submitted", "late", "penalty", "extension"]
class Status(StrEnum):
    """What became of a submission (the ``status`` column of ``grades.csv``)."""

    GRADED = "graded"  # its notebook ran; the score is what its tests earned
    ERROR = "error"  # grading stopped early (a limit, a dead kernel) or failed
    MISSING = "missing"  # no notebook where it belongs
    NOT_DUE = "not due"  # not handed in, and its (extended) due date is still to come
    EMPTY = "empty"  # an empty file
    CORRUPT = "corrupt"  # not JSON, or not a notebook
    INVALID = "invalid"  # not a valid notebook, or a student id that cannot be one
    NOT_GRADED = "not graded"  # grading was interrupted before it


NOT_DUE = Status.NOT_DUE  # the status of a notebook not handed in before its (extended) due date
RECORD_FILE = "results.jsonl"
MAX_REASON = 500  # characters of a reason kept in grades.csv


@dataclass
class Job:
    """One submission to grade: a student's notebook for one module (it may be missing)."""

    student: str
    module: Module
    path: Path
    hint: str = ""  # for a missing notebook: a file nearby that may be the one meant

@dataclass
class Result:
    """The outcome of grading one submission (one row of ``grades.csv``)."""

    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # one of Status
    reason: str = ""
    feedback: str = ""
    failed: list[str] = field(default_factory=list)
    flagged: str = ""  # for the instructor's review: why, "; "-separated
    sandboxed: bool = True  # its kernel ran sealed off (False: graded with --no-sandbox)
    submitted: str = ""  # submission time, ISO 8601 UTC (from the gradebook)
    late: str = ""  # how late, e.g. "1d 2h" (empty: on time or no due date)
    penalty: str = ""  # late penalty in points, taken off the score
    extension: str = ""  # an extension of the due date, e.g. "2d (until 2026-02-08T22:59:00Z)"
    retry: bool = False  # the grading workers failed, not the submission: grade it again

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    def row(self) -> dict[str, str]:
        """The CSV row (one line per cell: reasons are folded onto one line)."""
        data = {k: str(v) for k, v in asdict(self).items() if k in CSV_FIELDS}
        data["score"] = number(self.score)
        data["max_score"] = number(self.max_score)
        data["reason"] = one_line(self.reason)
        data["flagged"] = one_line(self.flagged)
        data["sandboxed"] = "yes" if self.sandboxed else "no"
        return {k: data.get(k, "") for k in CSV_FIELDS}

def one_line(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."

def late_text(seconds: float) -> str:
    """How late, for people: ``""`` if on time, else e.g. ``2d 3h 5m``."""
    if not seconds or seconds <= 0:
        return ""
    minutes = int(-(-seconds // 60))  # a late second counts as a late minute
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{mins}m"] * bool(mins)
    return " ".join(parts)

def utc_text(stamp: datetime | None) -> str:
    """A gradebook timestamp (naive UTC, as nbgrader stores it) as ISO 8601 with ``Z``."""
    if stamp is None:
        return ""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp.isoformat(timespec="seconds") + "Z"


class RunRecord:
    """The grading root's record of how each submission was last graded (``results.jsonl``).

    One JSON line per result, appended and flushed as the result is saved in the gradebook,
    so an interrupted run leaves a record of everything it saved. Each line also holds the
    fingerprint of what was graded (the submission and the grader, see
    :func:`coursekit.grading.dispatch.bundle.grader_digest`), so that the next run grades only what
    is new or changed.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / RECORD_FILE

    def add(self, result: Result, fingerprint: str = "") -> None:
        """Append ``result`` (graded from what ``fingerprint`` names; empty: grade it again
        next time)."""
        data = {k: v for k, v in asdict(result).items() if k != "failed"}
        data["graded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        data["fingerprint"] = fingerprint
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(data) + "\n")
            fh.flush()

    def _lines(self) -> Iterator[tuple[Result, str]]:
        if not self.path.is_file():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
                data.pop("graded_at", None)
                fingerprint = str(data.pop("fingerprint", "") or "")
                result = Result(**data)
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by a crash
            yield result, fingerprint

    def latest(self) -> dict[tuple[str, str], Result]:
        """The last result recorded for each (student, assignment)."""
        return {(r.student, r.assignment): r for r, _ in self._lines()}

    def fingerprints(self) -> dict[tuple[str, str], tuple[Result, str]]:
        """The last result recorded for each (student, assignment) and its fingerprint."""
        return {(r.student, r.assignment): (r, f) for r, f in self._lines()}


def is_placeholder(sub: Any) -> bool:
    """Whether a gradebook submission holds nothing handed in: the row ``course extend``
    makes to record an extension for a student who has not submitted (no submission time,
    no score of any cell)."""
    return sub.timestamp is None and not any(
        g.auto_score is not None or g.manual_score is not None
        for nb in sub.notebooks for g in nb.grades)


def extension_text(extension: timedelta | None, due: datetime | None) -> str:
    """An extension for people: ``2d 4h``, with the deadline it gives when there is a due
    date (``2d (until 2026-02-08T22:59:00Z)``); empty when there is none."""
    if not extension:
        return ""
    length = late_text(extension.total_seconds()) or "0m"
    return f"{length} (until {utc_text(due + extension)})" if due else length


def gradebook_results(db_url: str, course_id: str | None,
                      record: dict[tuple[str, str], Result],
                      assignments: Collection[str] | None = None,
                      log: Callable[[str], None] | None = None,
                      now: datetime | None = None) -> list[Result]:
    """A result for every student and assignment in the gradebook, plus recorded results the
    gradebook has no row for (a submission that could not be graded for an invalid id).

    Scores come from the gradebook (manual grades included, late penalty taken off); status,
    reason and flags from ``record`` where it has them. Only the ``assignments`` named are
    listed (the modules released; others in the gradebook are left out, and named to
    ``log``). A notebook not handed in while its due date (with the student's extension)
    is still ahead is ``not due``, not missing. ``now`` is naive UTC (default: now).
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    out: list[Result] = []
    seen: set[tuple[str, str]] = set()
    with nbg.gradebook(db_url, course_id) as gb:
        students = sorted(s.id for s in gb.students)
        every = sorted(gb.assignments, key=lambda a: a.name)
        chosen = [a for a in every if assignments is None or a.name in assignments]
        left_out = [a.name for a in every if a not in chosen]
        if left_out and log is not None:
            log(f"not released, left out: {', '.join(left_out)} (in the gradebook from an "
                "earlier run)")
        for assignment in chosen:
            subs = {s.student_id: s for s in gb.assignment_submissions(assignment.name)}
            due = assignment.duedate
            for student in students:
                key = (student, assignment.name)
                seen.add(key)
                rec = record.get(key)
                sub = subs.get(student)
                extension = sub.extension if sub is not None else None
                if sub is None or is_placeholder(sub):
                    if rec is not None and rec.status not in ("graded", NOT_DUE):
                        result = _copy(rec, score=0, max_score=float(assignment.max_score))
                    else:
                        result = Result(student, assignment.name, 0,
                                        float(assignment.max_score), "missing",
                                        "no submission in the gradebook")
                    deadline = due + extension if due and extension else due
                    if result.status == "missing" and deadline is not None and deadline > now:
                        result.status = NOT_DUE
                        result.reason = f"due {utc_text(deadline)}; nothing handed in yet"
                    result.extension = extension_text(extension, due)
                    out.append(result)
                    continue
                raw = float(sub.score)
                penalty = float(sub.late_submission_penalty or 0)
                result = Result(student, assignment.name, max(0.0, raw - penalty),
                                float(sub.max_score), rec.status if rec else "graded",
                                rec.reason if rec else "graded outside `course grade`",
                                feedback=rec.feedback if rec else "",
                                flagged=rec.flagged if rec else "",
                                sandboxed=rec.sandboxed if rec else False)
                manual = sum(1 for nb in sub.notebooks for g in nb.grades
                             if g.manual_score is not None)
                if manual:
                    result.reason += f"; {manual} cell(s) graded by hand"
                if sub.needs_manual_grade:
                    result.reason += "; needs manual grading (formgrader)"
                result.submitted = utc_text(sub.timestamp)
                result.late = late_text(sub.total_seconds_late)
                result.penalty = number(penalty) if penalty else ""
                result.extension = extension_text(extension, due)
                out.append(result)
    for key, rec in record.items():
        if key not in seen and (assignments is None or key[1] in assignments):
            out.append(rec)
    return out


def _copy(result: Result, **changes: object) -> Result:
    data = asdict(result)
    data.update(changes)
    return Result(**data)

def max_points(source_notebook: Path) -> float:
    """Total points of the graded cells of a source notebook."""
    nb = json.loads(source_notebook.read_text(encoding="utf-8"))
    total = 0.0
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            total += float(meta.get("points", 0))
    return total

def write_csv(results: Iterable[Result], path: Path) -> None:
    """Write ``grades.csv`` (:data:`CSV_FIELDS`), sorted by student and assignment; the file
    is replaced in one step, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in sorted(results, key=lambda r: (r.student, r.assignment)):
            writer.writerow(r.row())
    os.replace(tmp, path)

def print_table(results: list[Result], log: Callable[[str], None] = print) -> None:
    """Print the grades as a plain-text table: the score with the late penalty taken off
    (as in ``grades.csv``), and, when any is late or extended, how late, what it cost and
    the extension."""
    rows = [["student", "assignment", "score", "status", "late", "reason"]]
    for r in sorted(results, key=lambda r: (r.student, r.assignment)):
        reason = r.reason if len(r.reason) <= 70 else r.reason[:67] + "..."
        late = r.late + (f" -{r.penalty}" if r.penalty else "")
        if r.extension:
            late += f" (extension {r.extension.split(' (')[0]})"
        rows.append([r.student, r.assignment, f"{number(r.score)}/{number(r.max_score)}",
                     r.status, late.strip(), reason])
    if not any(row[4] for row in rows[1:]):
        rows = [row[:4] + row[5:] for row in rows]  # nobody late: no column for it
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for i, row in enumerate(rows):
        log("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
            + "  " + row[-1])
        if i == 0:
            log("  ".join("-" * w for w in widths) + "  " + "-" * 6)


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)

def print_summary(results: list[Result], seconds: float,
                  log: Callable[[str], None] = print, kept: int = 0) -> None:
    """Graded, failed with reason, flagged for review (``kept`` of ``results`` were graded by
    an earlier run and kept)."""
    graded = [r for r in results if r.status == "graded"]
    failed = [r for r in results if r.status not in ("graded", NOT_DUE)]
    flagged = [r for r in results if r.flagged]
    before = f" ({kept} kept from an earlier run)" if kept else ""
    waiting = len(results) - len(graded) - len(failed)
    not_due = f", {waiting} not handed in and not due yet" if waiting else ""
    log(f"grade: {len(results)} submissions{before} in {duration(seconds)}: "
        f"{len(graded)} graded, {len(failed)} failed or incomplete{not_due}, {len(flagged)} "
        "flagged for review")
    for r in sorted(failed, key=lambda r: (r.student, r.assignment)):
        log(f"  failed   {r.student} {r.assignment} ({r.status}, "
            f"{number(r.score)}/{number(r.max_score)}): {r.reason}")
    for r in sorted(flagged, key=lambda r: (r.student, r.assignment)):
        log(f"  flagged  {r.student} {r.assignment}: {r.flagged}")
