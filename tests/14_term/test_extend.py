"""``course extend``: an extension recorded in the gradebook (nbgrader's own), the late
penalty worked out again at once, kept and applied by the next ``course grade``, shown in
grades.csv and listed; for a student who has not handed in, the notebook is not due until
the new deadline (slow: grades the two-module course, on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from termtools import Backend, hand_in, settings

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course

pytestmark = pytest.mark.slow
# Module 01 due 2026-03-02 12:00 UTC; 20 % of the score per started day late, no grace.
# ada hands in the solution (3 points) 25 h late: 2 started days, 40 % of 3 = 1.2 off.
# With one day more she is 1 h late: 1 started day, 20 % of 3 = 0.6 off.
SETTINGS = """[due]
01_demo = 2026-03-02T12:00:00
02_second = 2026-03-09T12:00:00

[late]
penalty_per_day = 20
"""
ROSTER = "student,name\nada,Ada A\nbo,Bo B\n"


def run(course: Course, *args: str) -> int:
    return main(["--root", str(course.root), *args])


def row(root: Path, student: str, module: str = "01_demo") -> dict[str, str]:
    return next(r for r in csv.DictReader((root / "grades.csv").open())
                if (r["student"], r["assignment"]) == (student, module))


def test_an_extension_is_recorded_applied_and_shown(course: Course, backend: Backend,
                                                    tmp_path: Path, capfd) -> None:
    subs, root = tmp_path / "subs", backend.root
    (tmp_path / "roster.csv").write_text(ROSTER)
    hand_in(course, subs, "ada", "01_demo", stamp="2026-03-03 13:00:00.000000 UTC")
    grade = ["grade", "--submissions", str(subs), "--out", str(root), "-j", "0",
             "--no-feedback", "-m", "01", *backend.args()]
    extend = ["extend", "--grading", str(root), "--roster", str(tmp_path / "roster.csv")]
    with settings(course, SETTINGS):
        assert run(course, *grade) == 0
        ada = row(root, "ada")
        assert (ada["late"], ada["penalty"], ada["score"], ada["extension"]) == \
            ("1d 1h", "1.20", "1.80", "")
        capfd.readouterr()
        assert run(course, *extend, "ada", "01", "--days", "1") == 0
        out = capfd.readouterr().out
        assert "ada 01_demo: 1d (until 2026-03-03T12:00:00Z)" in out, out
        ada = row(root, "ada")  # worked out again at once
        assert (ada["late"], ada["penalty"], ada["score"]) == ("1h", "0.60", "2.40"), ada
        assert ada["extension"] == "1d (until 2026-03-03T12:00:00Z)"
        with nbg.gradebook(backend.read_url, "tinytorch") as gb:  # nbgrader's own record
            assert gb.find_submission("01_demo", "ada").extension == timedelta(days=1)
        # bo has handed in nothing: a new deadline far ahead, so nothing is missing yet
        assert run(course, *extend, "bo", "demo", "--until", "2999-01-01") == 0
        bo = row(root, "bo")
        assert bo["status"] == "not due" and bo["score"] == "0", bo
        assert bo["extension"].endswith("(until 2999-01-01T23:59:59Z)"), bo
        # the next grade keeps both extensions and grades ada's submission again with hers
        capfd.readouterr()
        assert run(course, *grade) == 0
        out = capfd.readouterr().out
        graded = re.findall(r"^grade \[\d+/\d+\] (\S+) 01_demo", out, re.MULTILINE)
        assert "ada" in graded, out
        assert re.search(r"^ada\s+01_demo\s+2\.40/3\s+graded\s+1h -0\.60 \(extension 1d\)",
                         out, re.MULTILINE), out  # the console table: penalty taken off
        assert (row(root, "ada")["score"], row(root, "bo")["status"]) == ("2.40", "not due")
        capfd.readouterr()
        assert run(course, *extend, "--list") == 0
        listed = capfd.readouterr().out.splitlines()
        assert listed[0].startswith("extend: 2 extension(s) in the gradebook")
        assert listed[1] == "  ada 01_demo: 1d (until 2026-03-03T12:00:00Z)"
        assert listed[2].startswith("  bo 01_demo: ") and len(listed) == 3
        assert listed[2].endswith("(until 2999-01-01T23:59:59Z)")
        # taken back: as before
        assert run(course, *extend, "ada", "01", "--remove") == 0
        assert row(root, "ada")["penalty"] == "1.20" and row(root, "ada")["extension"] == ""
        assert run(course, *extend, "bo", "01", "--remove") == 0
        assert row(root, "bo")["status"] == "missing"
        with nbg.gradebook(backend.read_url, "tinytorch") as gb:
            assert [s.student_id for s in gb.assignment_submissions("01_demo")] == ["ada"]


ONLY_01 = SETTINGS + '\n[student_repository]\nthrough = "01"\n'


@pytest.fixture(scope="module")
def graded_root(course: Course, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grading root in which ada's module 01 is graded (module 02 not released)."""
    tmp = tmp_path_factory.mktemp("extend")
    hand_in(course, tmp / "subs", "ada", "01_demo")
    with settings(course, ONLY_01):
        assert run(course, "grade", "--submissions", str(tmp / "subs"), "--out",
                   str(tmp / "grading"), "-j", "0", "--no-feedback") == 0
    return tmp / "grading"


@pytest.mark.parametrize(("args", "message"), [
    (["zed", "01", "--days", "1"], "STUDENT zed: not a student of the gradebook"),
    (["ada", "01", "--days", "-1"], "--days -1: expected a number of days above 0"),
    (["ada", "01", "--until", "2026-03-01"], "2026-03-01T23:59:59Z is not after 01_demo's "
     "due date 2026-03-02T12:00:00Z"),
    (["ada", "01", "--until", "friday"], "--until friday: not a date"),
    (["ada", "09", "--days", "1"], "MODULE 09: no such module"),
    (["ada", "01"], "give --until DATE, --days N or --remove"),
    (["ada", "02", "--days", "1"], "MODULE 02: module 02_second is not released yet"),
    (["ada", "01", "--days", "1", "--remove"], "not allowed with argument"),
])
def test_bad_extensions_get_one_message(course: Course, graded_root: Path, capfd,
                                        args: list[str], message: str) -> None:
    before = (graded_root / "grades.csv").read_bytes()
    with settings(course, ONLY_01):
        assert run(course, "extend", "--grading", str(graded_root), *args) == 1
    err = capfd.readouterr().err
    assert message in err and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("course extend: error")]
    assert len(errors) == 1 and message in errors[0], err  # argparse adds its usage
    assert (graded_root / "grades.csv").read_bytes() == before  # nothing changed


def test_extension_text() -> None:
    """How grades.csv writes an extension: its length, then the deadline it gives."""
    from coursekit.grading.records.results import extension_text

    due = datetime(2026, 3, 2, 12)
    assert extension_text(timedelta(days=1, hours=2), due) == \
        "1d 2h (until 2026-03-03T14:00:00Z)"
    assert extension_text(None, due) == "" and extension_text(timedelta(days=2), None) == "2d"
