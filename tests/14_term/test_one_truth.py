"""One source of truth for scores: after a late penalty, a manual grade and extra credit in
the gradebook (what the formgrader writes), an extension and a regrade, the student's
feedback page, grades.csv and the export all say the same score, the gradebook's at the
moment each is made (slow: grades the two-module course, on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import pytest
from termtools import Backend, hand_in, settings

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course

pytestmark = pytest.mark.slow
# Module 01 due 2026-03-02 12:00 UTC, 20 % of the score per started day late. ada hands in
# the solution (demo_test_double 2 points, demo_test_noisy 1) 25 h late: 2 started days,
# 40 % off.
SETTINGS = """[due]
01_demo = 2026-03-02T12:00:00
02_second = 2026-03-09T12:00:00

[late]
penalty_per_day = 20
"""


def run(course: Course, *args: str) -> int:
    return main(["--root", str(course.root), *args])


def everything_says(root: Path, course: Course, backend: Backend) -> set[str]:
    """The score of ada's 01_demo on her feedback page (after `course feedback`), in
    grades.csv and in the CSV export (made now)."""
    assert run(course, "feedback", "--grading", str(root)) == 0
    page = (root / "feedback" / "ada" / "01_demo" / "demo.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    on_page = re.search(r"Score\s+(\S+)\s*/\s*3", text).group(1)
    in_csv = next(r["score"] for r in csv.DictReader((root / "grades.csv").open())
                  if (r["student"], r["assignment"]) == ("ada", "01_demo"))
    out = root / "export.csv"
    assert run(course, "export", "--format", "csv", "--grading", str(root), "--out",
               str(out), *backend.args()) == 0
    exported = next(r for r in csv.DictReader(out.open()) if r.get("student") == "ada")
    in_export = next(v for k, v in exported.items() if k.startswith("01_demo"))
    return {on_page, in_csv, in_export}


def set_grade(backend: Backend, cell: str, *, manual: float | None = None,
              extra: float | None = None) -> None:
    """What the formgrader writes for a grade cell of ada's 01_demo."""
    with nbg.gradebook(backend.read_url, "tinytorch") as gb:
        grade = gb.find_grade(cell, "demo", "01_demo", "ada")
        if manual is not None:
            grade.manual_score = manual
        if extra is not None:
            grade.extra_credit = extra
        gb.db.commit()


def test_pages_csv_and_export_follow_the_gradebook(course: Course, backend: Backend,
                                                   tmp_path: Path, capfd) -> None:
    subs, root = tmp_path / "subs", backend.root
    hand_in(course, subs, "ada", "01_demo", stamp="2026-03-03 13:00:00.000000 UTC")
    grade = ["grade", "--submissions", str(subs), "--out", str(root), "-j", "0", "-m", "01",
             *backend.args()]
    with settings(course, SETTINGS):
        assert run(course, *grade) == 0
        # 3 points, 40 % of them (1.2) off: 1.8
        assert everything_says(root, course, backend) == {"1.80"}
        # graded by hand: demo_test_noisy's point taken back: 2, and the penalty stays 1.2
        set_grade(backend, "demo_test_noisy", manual=0)
        capfd.readouterr()
        assert everything_says(root, course, backend) == {"0.80"}
        assert "remade 1 page(s)" in capfd.readouterr().out
        # half a point of extra credit: 2.5 - 1.2 = 1.3
        set_grade(backend, "demo_test_double", extra=0.5)
        assert everything_says(root, course, backend) == {"1.30"}
        # a day more: 1 h late, 1 started day, 20 % of 2.5 = 0.5 off (course extend works the
        # penalty out again at once): 2.0
        assert run(course, "extend", "ada", "01", "--days", "1", "--grading", str(root)) == 0
        assert everything_says(root, course, backend) == {"2"}
        # graded again: the manual grade and extra credit stay, and so does the extension
        assert run(course, *grade, "--regrade") == 0
        assert everything_says(root, course, backend) == {"2"}
        # and a page already up to date is not made again
        capfd.readouterr()
        assert run(course, "feedback", "--grading", str(root)) == 0
        assert "remade" not in capfd.readouterr().out
