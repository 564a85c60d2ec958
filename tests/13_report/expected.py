"""What a class report must say, worked out here from ``grades.csv``, the gradebook read
through nbgrader's own API (its ``score``, ``max_score``, ``total_seconds_late`` and
``late_submission_penalty`` properties) and the autograded notebooks, without the report's
code; and a reader of the page's tables and of its CSV files to compare with.

Only the definitions (thresholds, the label of a failure without an error) come from
``coursekit.report.analysis``; every number is computed here in another way (Pearson's
correlation by ``numpy.corrcoef`` for the point-biserial one, exact decimals for the
histogram's bins, ``statistics`` for means and medians).
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from coursekit import nbg
from coursekit.report import analysis as A
from coursekit.report.messages import NO_ERROR
from coursekit.text import clean

NOT_GRADABLE = {"empty", "corrupt", "invalid", "error"}
TOL = 1e-6


# -- the page -------------------------------------------------------------------------------

@dataclass
class Table:
    head: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    keys: list[list[str | None]] = field(default_factory=list)  # data-v of each cell


class Page(HTMLParser):
    """The tables of a report page by id, its figures, and its text outside tables."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, Table] = {}
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.outside: list[str] = []  # text outside tables, without the .meta line
        self._table: Table | None = None
        self._cell: list[str] | None = None
        self._in_head = False
        self._skip = 0  # inside <p class="meta">, <style>, <script>, <caption>
        self._stack: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag in ("style", "script", "caption", "title") or (
                tag == "p" and a.get("class") == "meta"):
            self._skip += 1
            self._stack.append(tag)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id", f"t{len(self.tables)}"), Table())
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and self._table is not None and not self._in_head:
            self._table.rows.append([])
            self._table.keys.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
            if tag == "td" and not self._in_head:
                self._table.keys[-1].append(a.get("data-v"))
        elif tag == "img":
            self.images.append(a)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag == "li" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._stack and tag == self._stack[-1]:
            self._stack.pop()
            self._skip -= 1
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            text = " ".join("".join(self._cell).replace("\n", " \n ").split(" ")).strip()
            text = re.sub(r"[ \t]+", " ", text)
            if self._in_head:
                self._table.head.append(text)
            else:
                self._table.rows[-1].append(text)
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._table is None and not self._skip:
            self.outside.append(data)


def read_page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# -- what the page must say -----------------------------------------------------------------

@dataclass
class Sub:
    student: str
    final: float  # after the penalty
    raw: float
    penalty: float
    late: float  # seconds
    flagged_gb: bool
    stamp: object
    due: object
    cells: dict[str, tuple[float, float, float]]  # name -> (score, base, max)


@dataclass
class Mod:
    name: str
    max_score: float
    tests: list[str]
    subs: dict[str, Sub]
    cell_max: dict[str, float]
    notebook: str


@dataclass
class Expected:
    students: list[str]
    mods: list[Mod]
    rows: dict[tuple[str, str], dict[str, str]]
    messages: dict[tuple[str, str, str], str | None]  # (module, student, cell) -> message
    unread: dict[tuple[str, str], bool]  # (module, student) -> notebook missing
    root: Path


def gather(root: Path, db_url: str, course_id: str, modules: list[str] | None = None,
           rows_from_csv: bool = True) -> Expected:
    """Everything the report reads, read here another way."""
    from nbgrader.api import MissingEntry

    rows: dict[tuple[str, str], dict[str, str]] = {}
    if rows_from_csv and (root / "grades.csv").is_file():
        rows = {(r["student"], r["assignment"]): r for r in read_csv(root / "grades.csv")}
    mods: list[Mod] = []
    messages: dict[tuple[str, str, str], str | None] = {}
    unread: dict[tuple[str, str], bool] = {}
    with nbg.gradebook(db_url, course_id) as gb:
        students = sorted({s.id for s in gb.students} | {s for s, _ in rows})
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            if modules and assignment.name not in modules:
                continue
            (notebook,) = assignment.notebooks
            answers = {c.name for c in notebook.solution_cells}
            tests = sorted(c.name for c in notebook.grade_cells
                           if c.cell_type == "code" and c.name not in answers)
            cell_max = {c.name: float(c.max_score) for c in notebook.grade_cells}
            subs = {}
            for sub in gb.assignment_submissions(assignment.name):
                cells = {}
                for nb in sub.notebooks:
                    for g in nb.grades:
                        base = g.manual_score if g.manual_score is not None else g.auto_score
                        cells[g.name] = (float(g.score), float(base or 0), float(g.max_score))
                penalty = float(sub.late_submission_penalty or 0)
                raw = float(sub.score)
                subs[sub.student_id] = Sub(
                    sub.student_id, max(0.0, raw - penalty), raw, penalty,
                    float(sub.total_seconds_late), any(nb.flagged for nb in sub.notebooks),
                    sub.timestamp, sub.duedate, cells)
                # failure messages, read from the autograded notebook
                failing = [t for t in tests if cells[t][1] < cells[t][2]]
                if failing:
                    path = (root / "autograded" / sub.student_id / assignment.name
                            / f"{notebook.name}.ipynb")
                    try:
                        nb_json = json.loads(path.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        unread[(assignment.name, sub.student_id)] = True
                        continue
                    by_id = {}
                    for cell in nb_json["cells"]:
                        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                        if gid and gid not in by_id:
                            by_id[gid] = cell
                    for t in failing:
                        errors = [o for o in by_id.get(t, {}).get("outputs", [])
                                  if o.get("output_type") == "error"]
                        if not errors:
                            messages[(assignment.name, sub.student_id, t)] = None
                            continue
                        e = errors[0]
                        text = e["ename"] + (f": {e['evalue']}" if e["evalue"].strip() else "")
                        messages[(assignment.name, sub.student_id, t)] = clean(
                            " ".join(text.split()))[:300]
            try:
                total = float(assignment.max_score)
            except MissingEntry:  # pragma: no cover
                total = 0.0
            mods.append(Mod(assignment.name, total, tests, subs, cell_max, notebook.name))
    for mod in mods:  # the data agree with grades.csv before anything is compared
        for s, sub in mod.subs.items():
            if (s, mod.name) in rows:
                assert abs(float(rows[(s, mod.name)]["score"]) - sub.final) < 0.006
    return Expected(students, mods, rows, messages, unread, root)


def status(exp: Expected, student: str, mod: Mod) -> str:
    row = exp.rows.get((student, mod.name))
    if student in mod.subs:
        return (row or {}).get("status") or "graded"
    return (row or {}).get("status") or "missing"


def pattern(message: str) -> str:
    """The grouping rule, written out again: numbers (alone, not inside names) become #, a
    run of numbers separated by commas or spaces one #, hexadecimal addresses 0x#."""
    out, i = [], 0
    tokens = re.split(r"(\b0x[0-9a-fA-F]+\b)", message)
    text = "".join("0x#" if re.fullmatch(r"0x[0-9a-fA-F]+", t) else t for t in tokens)
    number = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
    while i < len(text):
        m = number.match(text, i)
        before = text[i - 1] if i else ""
        if m and not (before.isalnum() or (before != "" and before in "_.")) and not (
                m.end() < len(text) and (text[m.end()].isalnum() or text[m.end()] == "_")):
            out.append("#")
            i = m.end()
        else:
            out.append(text[i])
            i += 1
    joined = "".join(out)
    while True:
        shorter = re.sub(r"#[ ,\t]+#", "#", joined)
        if shorter == joined:
            return joined
        joined = shorter


@dataclass
class ItemX:
    module: str
    cell: str
    points: float
    n: int
    failing: int
    r: float | None
    strong: int
    strong_failing: int
    groups: list[tuple[str, int, str]]  # (pattern, count, first example)
    unread: int

    @property
    def share(self) -> float | None:
        return self.strong_failing / self.strong if self.strong else None


def items(exp: Expected, mod: Mod) -> list[ItemX]:
    out = []
    for t in mod.tests:
        subs = sorted(mod.subs.values(), key=lambda s: s.student)
        passed = np.array([s.cells[t][1] >= s.cells[t][2] for s in subs])
        rest = np.array([s.raw - s.cells[t][0] for s in subs])
        rest_max = mod.max_score - mod.cell_max[t]
        strong = (rest >= A.STRONG_SHARE * rest_max - 1e-9) if rest_max > 0 else \
            np.zeros(len(subs), bool)
        r = None
        if 0 < passed.sum() < len(subs) and rest.std() > 1e-9:
            r = float(np.corrcoef(passed.astype(float), rest)[0, 1])
        groups: dict[str, list[str]] = {}
        unread = 0
        for s in subs:
            if s.cells[t][1] >= s.cells[t][2]:
                continue
            if exp.unread.get((mod.name, s.student)):
                unread += 1
                continue
            msg = exp.messages.get((mod.name, s.student, t)) or NO_ERROR
            groups.setdefault(pattern(msg), []).append(msg)
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        out.append(ItemX(mod.name, t, mod.cell_max[t], len(subs), int((~passed).sum()), r,
                         int(strong.sum()), int((strong & ~passed).sum()),
                         [(p, len(m), m[0]) for p, m in ranked], unread))
    return out


def prose(all_items: list[ItemX]) -> list[ItemX]:
    chosen = [it for it in all_items if it.share is not None
              and it.strong_failing >= A.PROSE_MIN and it.share >= A.PROSE_SHARE]
    return sorted(chosen, key=lambda it: (-it.share, -it.strong_failing,
                                          it.r if it.r is not None else 0.0, it.module,
                                          it.cell))


def hist(mod: Mod) -> list[int]:
    counts = [0] * 10
    for s in mod.subs.values():
        share = Fraction(repr(round(s.final, 9))) / Fraction(repr(mod.max_score))
        counts[min(9, math.floor(share * 10))] += 1
    return counts


def entry_flags(exp: Expected, student: str, mod: Mod) -> list[str]:
    row = exp.rows.get((student, mod.name), {})
    flags = [f.strip() for f in (row.get("flagged") or "").split(";") if f.strip()]
    sub = mod.subs.get(student)
    if sub is not None and sub.flagged_gb:
        flags.append("flagged in the formgrader")
    return flags


def behind(exp: Expected) -> list[tuple[str, float, int, str]]:
    so_far = [m for m in exp.mods if m.subs and m.max_score > 0]
    out = []
    for s in exp.students:
        shares = [m.subs[s].final / m.max_score if s in m.subs else 0.0 for m in so_far]
        missed = sum(1 for m in so_far if s not in m.subs)
        last = ([m.name for m in so_far if s in m.subs] or [""])[-1]
        avg = 100 * statistics.fmean(shares) if shares else 0.0
        if avg < 100 * A.BEHIND_SHARE - 1e-9 or missed >= A.BEHIND_MISSED:
            out.append((s, avg, missed, last))
    return sorted(out, key=lambda b: (b[1], -b[2], b[0]))


# -- comparing ------------------------------------------------------------------------------

def same(text: str, value: float | None, decimals: int) -> bool:
    """The page's ``text`` shows ``value`` rounded to ``decimals`` places."""
    if value is None:
        return text in ("-", "n/a")
    try:
        shown = float(text)
    except ValueError:
        return False
    return abs(shown - value) <= 0.5 * 10 ** -decimals + 1e-9


def pts(value: float) -> str:
    """Points as the page shows them (an integer, or two decimals)."""
    value = round(value, 2)
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def check_row(row: list[str], want: list, where: str) -> None:
    """``want``: exact strings, or (value, decimals) pairs."""
    assert len(row) == len(want), f"{where}: {row} against {want}"
    for i, (got, w) in enumerate(zip(row, want, strict=True)):
        if isinstance(w, tuple):
            assert same(got, w[0], w[1]), f"{where}, column {i}: page {got!r}, expected {w[0]!r}"
        else:
            assert got == w, f"{where}, column {i}: page {got!r}, expected {w!r}"


def csv_same(text: str, value: float | None) -> bool:
    if value is None:
        return text == ""
    return abs(float(text) - value) <= 1e-6 * max(1.0, abs(value))


def message_cell(it: ItemX) -> str:
    """The text of the page's 'most common failures' cell."""
    if not it.groups:
        return f"{it.unread} without a notebook" if it.unread else "-"
    parts = []
    for p, count, example in it.groups[: A.TOP_MESSAGES]:
        parts.append(f"{count} × {p}" + (f" \n e.g. {example}" if example != p else ""))
    rest = sum(c for _, c, _ in it.groups[A.TOP_MESSAGES:])
    if rest:
        parts.append(f"{rest} other(s) in report-messages.csv")
    if it.unread:
        parts.append(f"{it.unread} without a notebook")
    return " ".join(parts)


def norm_ws(text: str) -> str:
    return " ".join(text.split())


def check_report(folder: Path, exp: Expected, course_root: Path) -> dict:
    """Compare every table of ``folder/report.html`` and every CSV file beside it with
    ``exp``; the facts checked, for the caller's own assertions."""
    page = read_page(folder / "report.html")
    t = page.tables
    mods = exp.mods
    every = [it for m in mods for it in items(exp, m)]
    by_key = {(it.module, it.cell): it for it in every}
    listed = prose(every)
    late_subs = [(s, m) for m in mods for s, sub in m.subs.items() if sub.late > 0]
    flagged = [(s, m) for m in mods for s in exp.students if entry_flags(exp, s, m)]
    behind_rows = behind(exp)

    def without(m: Mod, gradable: bool) -> int:
        return sum(1 for s in exp.students if s not in m.subs
                   and (status(exp, s, m) in NOT_GRADABLE) != gradable)

    # summary
    want = {"students": len(exp.students), "modules": len(mods),
            "submissions graded": sum(len(m.subs) for m in mods),
            "handed in but not gradable": sum(without(m, False) for m in mods),
            "missing": sum(without(m, True) for m in mods), "late": len(late_subs),
            "flagged for review": len(flagged), "tests to check the prose of": len(listed),
            "students falling behind": len(behind_rows)}
    assert {r[0]: int(r[1]) for r in t["summary"].rows} == want

    # modules
    rows = t["modules"].rows
    assert [r[0] for r in rows] == [m.name for m in mods]
    for r, m in zip(rows, mods, strict=True):
        finals = [s.final for s in m.subs.values()]
        mean = statistics.fmean(finals) if finals else None
        median = statistics.median(finals) if finals else None
        check_row(r, [m.name, (m.max_score, 2), (len(exp.students), 0), (len(m.subs), 0),
                      (without(m, True), 0), (without(m, False), 0),
                      (sum(1 for f in finals if f >= m.max_score - 1e-9), 0),
                      (sum(1 for f in finals if f <= 1e-9), 0),
                      (sum(1 for s in m.subs.values() if s.late > 0), 0),
                      (sum(1 for s in m.subs.values() if s.penalty > 0), 0),
                      (mean, 2), (median, 2),
                      (None if mean is None else 100 * mean / m.max_score, 1),
                      (None if median is None else 100 * median / m.max_score, 1)],
                  f"modules table, {m.name}")
    csv_mods = read_csv(folder / "report-modules.csv")
    for r, m in zip(csv_mods, mods, strict=True):
        finals = [s.final for s in m.subs.values()]
        assert r["module"] == m.name
        for key, value in {
            "max_score": m.max_score, "students": len(exp.students), "submitted": len(m.subs),
            "missing": without(m, True), "not_gradable": without(m, False),
            "late": sum(1 for s in m.subs.values() if s.late > 0),
            "penalised": sum(1 for s in m.subs.values() if s.penalty > 0),
            "points_off": sum(s.penalty for s in m.subs.values()),
            "mean": statistics.fmean(finals) if finals else None,
            "median": statistics.median(finals) if finals else None,
            "handed_in_pct": 100 * len(m.subs) / len(exp.students),
        }.items():
            assert csv_same(r[key], value), f"report-modules.csv {m.name} {key}: {r[key]}"
    hist_rows = read_csv(folder / "report-histogram.csv")
    for m in mods:
        if not m.subs:
            continue
        got = [int(r["submissions"]) for r in hist_rows if r["module"] == m.name]
        assert got == hist(m), f"histogram of {m.name}: {got} != {hist(m)}"
        assert sum(got) == len(m.subs)

    # item analysis: the page's tables and report-items.csv
    lines = {}
    for m in mods:
        source = course_root / "modules" / m.name / f"{m.notebook}.py"
        lines[m.name] = {}
        if source.is_file():
            for number, line in enumerate(source.read_text().splitlines(), 1):
                found = re.search(r'"grade_id": "([^"]+)"', line)
                if line.startswith("# %%") and found:
                    lines[m.name].setdefault(found.group(1), number)
    for m in mods:
        table = t.get(f"items-{m.name}")
        if not m.subs:
            assert table is None
            continue
        its = sorted(items(exp, m), key=lambda it: (lines[m.name].get(it.cell, 10**9), it.cell))
        assert [r[0] for r in table.rows] == [it.cell for it in its]
        for r, it in zip(table.rows, its, strict=True):
            line = lines[m.name].get(it.cell)
            check_row(r[:9], [it.cell, str(line) if line else "-", (it.points, 2), (it.n, 0),
                              (it.failing, 0), (100 * it.failing / it.n, 1), (it.r, 2),
                              (it.strong_failing, 0), (it.strong, 0)],
                      f"items of {m.name}, {it.cell}")
            assert norm_ws(r[9]) == norm_ws(message_cell(it)), (r[9], message_cell(it))
    csv_items = read_csv(folder / "report-items.csv")
    assert len(csv_items) == len(every)
    rank = {(it.module, it.cell): i for i, it in enumerate(listed, 1)}
    for r in csv_items:
        it = by_key[(r["module"], r["cell"])]
        line = lines[it.module].get(it.cell)
        if line:
            mod = next(m for m in mods if m.name == it.module)
            assert r["location"] == f"modules/{it.module}/{mod.notebook}.py:{line}"
        else:
            assert r["location"] == ""
        for key, value in {"points": it.points, "submissions": it.n, "failing": it.failing,
                           "difficulty": it.failing / it.n, "discrimination": it.r,
                           "strong": it.strong, "strong_failing": it.strong_failing,
                           "strong_fail_share": it.share,
                           "check_prose_rank": rank.get((it.module, it.cell))}.items():
            assert csv_same(r[key], value), f"report-items.csv {it.cell} {key}: {r[key]} != {value}"
    csv_msgs = read_csv(folder / "report-messages.csv")
    want_msgs = [(it.module, it.cell, p, c, e) for it in every for p, c, e in it.groups]

    def unguard(text: str) -> str:
        return text[1:] if text.startswith("'") and text[1:2] in ("=", "+", "-", "@") else text

    assert sorted((r["module"], r["cell"], unguard(r["pattern"]), int(r["count"]),
                   unguard(r["example"])) for r in csv_msgs) == sorted(want_msgs)

    # check the prose
    if listed:
        rows = t["prose"].rows
        assert [(r[1], r[2]) for r in rows] == [(it.module, it.cell) for it in listed]
        for k, (r, it) in enumerate(zip(rows, listed, strict=True), 1):
            mod = next(m for m in mods if m.name == it.module)
            line = lines[it.module].get(it.cell)
            where = f"modules/{it.module}/{mod.notebook}.py:{line}" if line else "-"
            check_row(r[:10], [(k, 0), it.module, it.cell, where, (it.points, 2),
                               (it.strong_failing, 0), (it.strong, 0), (100 * it.share, 1),
                               (100 * it.failing / it.n, 1), (it.r, 2)], f"prose {it.cell}")
    else:
        assert "prose" not in t

    # late work
    late_rows = [(s, m) for m in mods for s in sorted(m.subs)
                 if m.subs[s].late > 0 or m.subs[s].penalty > 0]
    late_rows.sort(key=lambda sm: (sm[0], sm[1].name))
    if late_rows:
        rows = t["late"].rows
        assert len(rows) == len(late_rows)
        for r, (s, m) in zip(rows, late_rows, strict=True):
            sub = m.subs[s]
            late_text = exp.rows.get((s, m.name), {}).get("late") or "yes"
            check_row(r, [s, m.name, late_text, (sub.penalty, 2), (sub.final, 2)],
                      f"late {s} {m.name}")
    else:
        assert "late" not in t
    times = read_csv(folder / "report-times.csv")
    want_times = sorted(
        ((m.name, s, (sub.stamp - sub.due).total_seconds() / 86400)
         for m in mods for s, sub in m.subs.items() if sub.stamp is not None
         and sub.due is not None), key=lambda x: (x[0], x[2], x[1]))
    got_times = sorted(((r["module"], r["student"], float(r["days_from_due"])) for r in times),
                       key=lambda x: (x[0], x[2], x[1]))
    assert [(a, b) for a, b, _ in got_times] == [(a, b) for a, b, _ in want_times]
    assert all(abs(g[2] - w[2]) < 1e-5 for g, w in zip(got_times, want_times, strict=True))

    # flagged
    flagged.sort(key=lambda sm: (sm[0], sm[1].name))
    if flagged:
        rows = t["flagged"].rows
        assert [(r[0], r[1]) for r in rows] == [(s, m.name) for s, m in flagged]
        for r, (s, m) in zip(rows, flagged, strict=True):
            assert r[2].split(" \n ") == [clean(f) for f in entry_flags(exp, s, m)], r[2]
            feedback = exp.root / "feedback" / s / m.name / f"{m.notebook}.html"
            assert r[3] == ("open" if feedback.is_file() else "-")
    else:
        assert "flagged" not in t
    csv_flags = read_csv(folder / "report-flagged.csv")
    assert [(r["student"], r["module"]) for r in csv_flags] == [(s, m.name) for s, m in flagged]

    # falling behind
    if behind_rows:
        rows = t["behind"].rows
        assert len(rows) == len(behind_rows)
        for r, (s, avg, missed, last) in zip(rows, behind_rows, strict=True):
            check_row(r, [s, (avg, 1), (missed, 0), last or "-"], f"behind {s}")
    else:
        assert "behind" not in t
    csv_behind = read_csv(folder / "report-behind.csv")
    assert [r["student"] for r in csv_behind] == [b[0] for b in behind_rows]
    for r, b in zip(csv_behind, behind_rows, strict=True):
        assert csv_same(r["average_pct"], b[1]) and int(r["missed"]) == b[2]

    # students by module
    rows = t["students"].rows
    assert [r[0] for r in rows] == exp.students
    top = sum(m.max_score for m in mods)
    csv_students = read_csv(folder / "report-students.csv")
    for r, c, s in zip(rows, csv_students, exp.students, strict=True):
        want_row: list = [s]
        total = 0.0
        for m in mods:
            sub = m.subs.get(s)
            if sub is None:
                want_row.append(status(exp, s, m))
                assert c[f"{m.name} score"] == ""
            else:
                shown = pts(sub.final)
                if entry_flags(exp, s, m):
                    shown += " !"
                if sub.late > 0:
                    shown += " late"
                want_row.append(shown)
                total += sub.final
                assert csv_same(c[f"{m.name} score"], sub.final)
            assert c[f"{m.name} status"] == status(exp, s, m)
        want_row += [(total, 2), (100 * total / top, 1)]
        check_row(r, want_row, f"students table, {s}")
        assert csv_same(c["total"], total) and csv_same(c["percent"], 100 * total / top)

    # numbers outside the tables: only the method's thresholds and the notes' counts
    text = " ".join(page.outside)
    for token in sorted({m.name for m in mods} | {f"report-{n}.csv" for n in (
            "modules", "histogram", "items", "messages", "times", "flagged", "students",
            "behind")} | {str(folder), str(course_root)}, key=len, reverse=True):
        text = text.replace(token, " ")
    text = re.sub(r"\S*(gradebook\.db|sqlite:|postgresql)\S*", " ", text)
    # the method's wording: a formula and an example, no data
    for phrase in ("(1 or 0)", "M1", "M0", "q = 1 − p", "Near 1", "near 0",
                   "expected 3, got 4", "expected 3, got 5"):
        text = text.replace(phrase, " ")
    found = re.findall(r"\d+(?:\.\d+)?", text)
    allowed = {str(v) for v in (round(100 * A.STRONG_SHARE), A.PROSE_MIN,
                                round(100 * A.PROSE_SHARE), round(100 * A.BEHIND_SHARE),
                                A.BEHIND_MISSED)}
    unread_total = sum(it.unread for it in every)
    if unread_total:
        allowed.add(str(unread_total))
    strays = [n for n in found if n not in allowed]
    assert not strays, f"numbers on the page outside the tables: {strays}\n{text[:2000]}"
    return {"page": page, "prose": listed, "items": every, "late": late_rows,
            "flagged": flagged, "behind": behind_rows}
