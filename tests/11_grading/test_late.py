"""Due dates and late work: course.toml [due] and [late], timestamp.txt, nbgrader's
late-penalty hook, lateness in grades.csv (slow: grades the pipeline's fixture course)."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime, UTC
from pathlib import Path

import pytest

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course, CourseError
from coursekit.grading.records import deadlines
from coursekit.grading.grade import grade

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "00_pipeline" / "fixtures" / "course"

SETTINGS = """
[due]
timezone = "Europe/Berlin"
01_demo = 2026-03-02T12:00:00        # 11:00 UTC (CET, UTC+1)

[late]
grace_minutes = 30
penalty_per_day = 20
max_penalty = 50
"""
# student -> (timestamp.txt as nbgrader writes it, expected late, expected penalty, score)
# The solution earns 3 points. Hand-worked: ada is 29 minutes late (within the grace);
# bo 1 day 1 hour late: 25 h - 30 min -> 2 started days -> 40 % of 3 = 1.2;
# cy 10 days late: 200 % capped at 50 % -> 1.5; dee has no timestamp (not late).
STUDENTS = {
    "ada": ("2026-03-02 11:29:00.000000 UTC", "29m", "", "3"),
    "bo": ("2026-03-03 13:00:00.000000 CET", "1d 1h", "1.20", "1.80"),
    "cy": ("2026-03-12 11:00:00 UTC", "10d", "1.50", "1.50"),
    "dee": (None, "", "", "3"),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    from coursekit.authoring.build import build
    from coursekit.authoring.release import release

    root = tmp_path_factory.mktemp("late") / "course"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "grader_config.py", root / "grader_config.py")
    (root / "course.toml").write_text(SETTINGS)
    c = Course(root)
    build(c, check_import=False, log=lambda s: None)
    release(c, log=lambda s: None)
    return c


@pytest.mark.slow
def test_late_work_is_penalised_as_the_course_says(course: Course, tmp_path: Path) -> None:
    solution = course.root / "source_notebooks" / "01_demo" / "demo.ipynb"
    subs = tmp_path / "subs"
    for student, (stamp, *_) in STUDENTS.items():
        folder = subs / student / "01_demo"
        folder.mkdir(parents=True)
        shutil.copy(solution, folder / "demo.ipynb")
        if stamp:
            (folder / "timestamp.txt").write_text(stamp + "\n")
    out = tmp_path / "grading"
    grade(course, subs, out=out, workers=1, feedback=False, log=lambda s: None)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    for student, (_, late, penalty, score) in STUDENTS.items():
        row = rows[student]
        assert (row["late"], row["penalty"], row["score"]) == (late, penalty, score), row
    assert rows["bo"]["submitted"] == "2026-03-03T12:00:00Z"
    with nbg.gradebook("sqlite:///" + str(out / "gradebook.db"), "tinytorch") as gb:
        assert gb.find_assignment("01_demo").duedate == datetime(2026, 3, 2, 11, 0)
        sub = gb.find_submission("01_demo", "bo")
        assert sub.late_submission_penalty == pytest.approx(1.2)
        assert sub.total_seconds_late == 25 * 3600
        # bo is granted a day more (as `nbgrader db` or the formgrader would record it)
        gb.grant_extension("01_demo", "bo", days=1)
    grade(course, subs, out=out, workers=1, feedback=False, students=["bo"],
          log=lambda s: None)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    # 1 h late with the extension, less the 30 min grace: 1 started day, 20 % of 3 = 0.6
    assert (rows["bo"]["late"], rows["bo"]["penalty"], rows["bo"]["score"]) == \
        ("1h", "0.60", "2.40")
    assert rows["cy"]["penalty"] == "1.50"  # the others are as they were


def test_policy_arithmetic() -> None:
    p = deadlines.policy_from({"penalty_per_day": 10, "grace_minutes": 5})
    assert p.penalty(8, 5 * 60) == 0                       # within the grace
    assert p.penalty(8, 5 * 60 + 1) == pytest.approx(0.8)  # one started day: 10 %
    assert p.penalty(8, 86400 + 5 * 60 + 1) == pytest.approx(1.6)
    assert p.penalty(8, 30 * 86400) == pytest.approx(8)    # capped at 100 %
    assert deadlines.policy_from({"policy": "zero"}).penalty(5, 1) == 5
    assert deadlines.policy_from({}).penalty(5, 10**6) == 0


@pytest.mark.parametrize(("table", "message"), [
    ({"penalty_per_day": "ten"}, "[late] penalty_per_day = 'ten': expected a number"),
    ({"penalty_per_day": 120}, "[late] penalty_per_day = 120: expected from 0 to 100"),
    ({"policy": "half"}, "[late] policy = 'half': expected one of per_day, zero, none"),
    ({"policy": "per_day"}, "needs penalty_per_day"),
    ({"late_fee": 3}, "[late] late_fee: unknown setting"),
])
def test_bad_late_policy_is_named(table: dict, message: str) -> None:
    with pytest.raises(CourseError, match=None) as info:
        deadlines.policy_from(table)
    assert message in str(info.value)


@pytest.mark.parametrize(("due", "message"), [
    ('99_nothing = 2026-03-02', "[due] 99_nothing: no such module"),
    ('01_demo = "next friday"', "[due] 01_demo = 'next friday': not a date"),
    ('timezone = "Mars/Olympus"\n01_demo = 2026-03-02', "unknown time zone"),
])
def test_bad_due_dates_stop_grade_with_one_message(course: Course, tmp_path: Path, capsys,
                                                   due: str, message: str) -> None:
    settings = course.root / "course.toml"
    saved = settings.read_text()
    try:
        settings.write_text(f"[due]\n{due}\n")
        subs = tmp_path / "subs" / "ada" / "01_demo"
        subs.mkdir(parents=True)
        assert main(["--root", str(course.root), "grade", "--submissions",
                     str(tmp_path / "subs"), "--out", str(tmp_path / "g"), "-j", "0"]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    finally:
        settings.write_text(saved)


def test_date_alone_is_due_at_the_end_of_that_day() -> None:
    from datetime import date

    assert deadlines.to_utc(date(2026, 3, 2), "x", UTC) == datetime(2026, 3, 2, 23,
                                                                            59, 59)
