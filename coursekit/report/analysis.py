"""The report's numbers: per module, per graded test cell (item analysis), per student.

Definitions (the page's "Method" section says the same):

* A submission's **score** is nbgrader's: the sum of its cells' scores, less the late penalty,
  never below zero (as ``grades.csv``). Means, medians and the histogram are over the
  submissions the gradebook holds.
* A test cell is **passed** when its score (manual, else automatic; without extra credit)
  reaches the cell's points; otherwise **failed**. **Difficulty** is the share of
  submissions that fail it.
* **Discrimination** is the point-biserial correlation between passing the cell (1/0) and
  the rest of the module's score ``R`` (the submission's score before the late penalty less
  this cell's score): ``r = (M1 - M0) / s * sqrt(p * q)``, with ``M1`` and ``M0`` the mean of
  ``R`` over the submissions that pass and fail, ``s`` the standard deviation of ``R`` over
  all of them (dividing by n), ``p`` the share passing and ``q = 1 - p``. It is Pearson's
  correlation of the two; undefined when everyone passes, everyone fails or ``R`` is
  constant.
* **Strong students** for a cell: ``R`` at least :data:`STRONG_SHARE` of the rest of the
  module's points. A test that at least :data:`PROSE_MIN` strong students and at least
  :data:`PROSE_SHARE` of them fail is listed under **check the prose**: students who got the
  rest right miss it, a sign that the notebook does not state what the test checks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from coursekit.report.gradebook import Cell, Gradebook, Module
from coursekit.report.messages import NO_ERROR, normalise

STRONG_SHARE = 0.8
PROSE_SHARE = 0.3
PROSE_MIN = 2
BEHIND_SHARE = 0.5  # of the points of the modules so far
BEHIND_MISSED = 2  # modules without a graded submission
HIST_EDGES = tuple(range(0, 101, 10))  # percent of the module's points
TOP_MESSAGES = 3  # message groups shown per cell on the page
NOT_GRADABLE = ("empty", "corrupt", "invalid", "error")
EPS = 1e-9

_GRADE_ID_RE = re.compile(r'"grade_id"\s*:\s*"([^"]+)"')


@dataclass
class ModuleStats:
    """One module's summary (a row of ``report-modules.csv``)."""

    name: str
    max_score: float
    students: int  # in the class
    submitted: int  # submissions in the gradebook
    missing: int  # no submission and no notebook handed in
    not_gradable: int  # handed in but could not be graded (empty, corrupt, ...)
    full: int
    zero: int
    late: int
    penalised: int
    points_off: float
    mean: float | None
    median: float | None
    hist: list[int]

    @property
    def mean_pct(self) -> float | None:
        """The mean as a percentage of the module's points."""
        return _pct(self.mean, self.max_score)

    @property
    def median_pct(self) -> float | None:
        """The median as a percentage of the module's points."""
        return _pct(self.median, self.max_score)

    @property
    def handed_in_pct(self) -> float | None:
        """Submissions in the gradebook as a percentage of the class."""
        return 100.0 * self.submitted / self.students if self.students else None


def _pct(value: float | None, total: float) -> float | None:
    return None if value is None or total <= 0 else 100.0 * value / total


@dataclass
class MessageGroup:
    """Failure messages with one pattern (numbers as ``#``)."""

    pattern: str
    count: int
    example: str


@dataclass
class Item:
    """Item analysis of one graded test cell."""

    module: str
    cell: Cell
    location: str  # modules/NN_name/name.py:LINE ("" where the module file has no such cell)
    line: int
    n: int
    failing: int
    r_pb: float | None
    strong: int
    strong_failing: int
    messages: list[MessageGroup] = field(default_factory=list)
    unread: int = 0  # failing submissions whose autograded notebook could not be read

    @property
    def fail_rate(self) -> float:
        """Difficulty: the share of submissions failing the cell."""
        return self.failing / self.n if self.n else 0.0

    @property
    def strong_fail_share(self) -> float | None:
        """The share of strong students failing the cell (None: no strong student)."""
        return self.strong_failing / self.strong if self.strong else None

    @property
    def check_prose(self) -> bool:
        """Failed by many otherwise strong students."""
        share = self.strong_fail_share
        return share is not None and self.strong_failing >= PROSE_MIN and share >= PROSE_SHARE


@dataclass
class Entry:
    """One student's result in one module (a cell of the students table)."""

    score: float | None  # None: no submission in the gradebook
    status: str
    reason: str = ""
    flagged: list[str] = field(default_factory=list)
    late: str = ""
    penalty: float = 0.0
    feedback: Path | None = None


@dataclass
class Behind:
    """A student who may be falling behind."""

    student: str
    average_pct: float
    missed: int
    last: str  # the last module with a graded submission ("" if none)


def point_biserial(passed: np.ndarray, rest: np.ndarray) -> float | None:
    """``(M1 - M0) / s * sqrt(p q)`` of a 0/1 vector and a score vector (None if undefined)."""
    n = len(passed)
    k = int(passed.sum())
    if n == 0 or k in (0, n):
        return None
    s = float(rest.std())
    if s <= EPS:
        return None
    p = k / n
    m1, m0 = float(rest[passed].mean()), float(rest[~passed].mean())
    return (m1 - m0) / s * math.sqrt(p * (1 - p))


def cell_lines(source: Path) -> dict[str, int]:
    """``grade_id -> line`` of each cell header (``# %% nbgrader={...}``) of a module file."""
    out: dict[str, int] = {}
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return out
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# %%"):
            found = _GRADE_ID_RE.search(line)
            if found and found.group(1) not in out:
                out[found.group(1)] = number
    return out


def module_stats(mod: Module, entries: dict[str, Entry], students: int) -> ModuleStats:
    """The summary of ``mod``; ``entries`` is each class student's entry for it."""
    scores = mod.scores()
    total = mod.max_score
    late = mod.seconds_late()
    bins = len(HIST_EDGES) - 1
    hist = np.zeros(bins, int)
    if total > 0 and len(scores):
        # a tenth of the points exactly (1.4 of 14) belongs to the bin it starts, whatever
        # the rounding of the division
        index = np.clip(np.floor(scores / total * bins + EPS), 0, bins - 1).astype(int)
        hist = np.bincount(index, minlength=bins)
    without = [e for e in entries.values() if e.score is None]
    return ModuleStats(
        name=mod.name, max_score=total, students=students, submitted=len(mod.students),
        missing=sum(1 for e in without if e.status not in NOT_GRADABLE),
        not_gradable=sum(1 for e in without if e.status in NOT_GRADABLE),
        full=int(np.sum(scores >= total - EPS)) if total > 0 else 0,
        zero=int(np.sum(scores <= EPS)),
        late=int(np.sum(late > 0)), penalised=int(np.sum(mod.penalty > EPS)),
        points_off=float(mod.penalty.sum()),
        mean=float(scores.mean()) if len(scores) else None,
        median=float(np.median(scores)) if len(scores) else None,
        hist=[int(x) for x in hist],
    )


def items(mod: Module, lines: dict[str, int], location: str,
          failures: dict[str, dict[str, str] | None]) -> list[Item]:
    """Item analysis of every test cell of ``mod``. ``failures`` maps a student to the
    failure messages of their autograded notebook (None: it could not be read)."""
    out = []
    raw = mod.raw_scores()
    scores = mod.base + mod.extra
    for j, cell in enumerate(mod.cells):
        if cell.kind != "test":
            continue
        passed = mod.base[:, j] >= cell.max_score - EPS
        rest = raw - scores[:, j]
        rest_max = mod.max_score - cell.max_score
        strong = rest >= STRONG_SHARE * rest_max - EPS if rest_max > 0 else \
            np.zeros(len(rest), bool)
        groups: dict[str, list[str]] = {}
        unread = 0
        for i in np.flatnonzero(~passed):
            found = failures.get(mod.students[i])
            if found is None:
                unread += 1
                continue
            message = found.get(cell.name, NO_ERROR)
            groups.setdefault(normalise(message), []).append(message)
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        line = lines.get(cell.name, 0)
        out.append(Item(
            module=mod.name, cell=cell, location=f"{location}:{line}" if line else "",
            line=line, n=len(passed), failing=int((~passed).sum()),
            r_pb=point_biserial(passed, rest), strong=int(strong.sum()),
            strong_failing=int((strong & ~passed).sum()),
            messages=[MessageGroup(p, len(m), m[0]) for p, m in ranked], unread=unread))
    return sorted(out, key=lambda it: (it.line or 10**9, it.cell.name))


def prose_list(all_items: list[Item]) -> list[Item]:
    """The tests to check the prose of, the most striking first."""
    chosen = [it for it in all_items if it.check_prose]
    return sorted(chosen, key=lambda it: (-(it.strong_fail_share or 0), -it.strong_failing,
                                          it.r_pb if it.r_pb is not None else 0.0,
                                          it.module, it.cell.name))


def behind(students: list[str], modules: list[Module],
           entries: dict[tuple[str, str], Entry]) -> list[Behind]:
    """Students whose average over the modules so far (those with a submission; missing work
    counts zero) is below :data:`BEHIND_SHARE`, or who have no graded submission in at least
    :data:`BEHIND_MISSED` of them; lowest average first."""
    so_far = [m for m in modules if m.students and m.max_score > 0]
    if not so_far:
        return []
    out = []
    for student in students:
        shares, missed, last = [], 0, ""
        for mod in so_far:
            entry = entries[(student, mod.name)]
            if entry.score is None:
                missed += 1
                shares.append(0.0)
            else:
                shares.append(entry.score / mod.max_score)
                last = mod.name
        average = 100.0 * sum(shares) / len(shares)
        if average < 100.0 * BEHIND_SHARE - EPS or missed >= BEHIND_MISSED:
            out.append(Behind(student, average, missed, last))
    return sorted(out, key=lambda b: (b.average_pct, -b.missed, b.student))


def days_from_due(mod: Module) -> list[tuple[str, datetime, datetime, float]]:
    """``(student, submitted, due, days after the due date)`` of every submission with a
    submission time and a due date, earliest first."""
    out = []
    for student, stamp, due in zip(mod.students, mod.timestamps, mod.due, strict=True):
        if stamp is not None and due is not None:
            out.append((student, stamp, due, (stamp - due).total_seconds() / 86400))
    return sorted(out, key=lambda r: (r[3], r[0]))


def class_students(book: Gradebook, csv_rows: dict[tuple[str, str], dict[str, str]]) -> list[str]:
    """Every student of the gradebook and of ``grades.csv``, sorted."""
    return sorted(set(book.students) | {s for s, _ in csv_rows})
