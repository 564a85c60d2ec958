"""What grading produces: jobs, results, ``grades.csv`` and the console tables."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from coursekit.course import Module

STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

CSV_FIELDS = ["student", "assignment", "score", "max_score", "status", "reason", "flagged",
              "sandboxed"]


@dataclass
class Job:
    """One submission to grade: a student's notebook for one module (it may be missing)."""

    student: str
    module: Module
    path: Path


@dataclass
class Result:
    """The outcome of grading one submission (one row of ``grades.csv``)."""

    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # graded | missing | empty | corrupt | invalid | error
    reason: str = ""
    feedback: str = ""
    failed: list[str] = field(default_factory=list)
    flagged: str = ""  # for the instructor's review: why, "; "-separated
    sandboxed: bool = True  # its kernel ran sealed off (False: graded with --no-sandbox)

    def row(self) -> dict[str, str]:
        """The CSV row."""
        data = asdict(self)
        data["score"] = _num(self.score)
        data["max_score"] = _num(self.max_score)
        data["sandboxed"] = "yes" if self.sandboxed else "no"
        return {k: str(data[k]) for k in CSV_FIELDS}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def max_points(source_notebook: Path) -> float:
    """Total points of the graded cells of a source notebook."""
    nb = json.loads(source_notebook.read_text(encoding="utf-8"))
    total = 0.0
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            total += float(meta.get("points", 0))
    return total


def write_csv(results: list[Result], path: Path) -> None:
    """Write ``grades.csv``: student, assignment, score, max_score, status, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in sorted(results, key=lambda r: (r.student, r.assignment)):
            writer.writerow(r.row())


def print_table(results: list[Result], log: Callable[[str], None] = print) -> None:
    """Print the grades as a plain-text table."""
    rows = [["student", "assignment", "score", "status", "reason"]]
    for r in sorted(results, key=lambda r: (r.student, r.assignment)):
        reason = r.reason if len(r.reason) <= 70 else r.reason[:67] + "..."
        rows.append([r.student, r.assignment, f"{_num(r.score)}/{_num(r.max_score)}",
                     r.status, reason])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        log("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
            + "  " + row[4])
        if i == 0:
            log("  ".join("-" * w for w in widths) + "  " + "-" * 6)


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def print_summary(results: list[Result], seconds: float,
                  log: Callable[[str], None] = print) -> None:
    """Graded, failed with reason, flagged for review."""
    graded = [r for r in results if r.status == "graded"]
    failed = [r for r in results if r.status != "graded"]
    flagged = [r for r in results if r.flagged]
    log(f"grade: {len(results)} submissions in {_duration(seconds)}: {len(graded)} graded, "
        f"{len(failed)} failed or incomplete, {len(flagged)} flagged for review")
    for r in sorted(failed, key=lambda r: (r.student, r.assignment)):
        log(f"  failed   {r.student} {r.assignment} ({r.status}, "
            f"{_num(r.score)}/{_num(r.max_score)}): {r.reason}")
    for r in sorted(flagged, key=lambda r: (r.student, r.assignment)):
        log(f"  flagged  {r.student} {r.assignment}: {r.flagged}")
