"""The smaller surprises of a term: a late-policy change grades again only the late
submissions and says why (a due date change, that module's), the roster's names reach the
gradebook, roster.csv stays out of git, and an nbgrader failure names its exception
without a line of code (slow where it grades: on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import traceback
from pathlib import Path

import pytest
from termtools import REPO, Backend, hand_in, settings

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course

# 01 and 02 due 2026-03-02 12:00 UTC; bo hands 01 in 25 h late (2 started days), everything
# else is on time. 20 % a day: bo loses 40 % of 3 = 1.2; at 10 % a day 20 % = 0.6.
DUE = '[due]\n01_demo = 2026-03-02T12:00:00\n02_second = {second}\n\n'
LATE = "[late]\npenalty_per_day = {per_day}\n"
ON_TIME, LATE_STAMP = "2026-03-02 11:00:00.000000 UTC", "2026-03-03 13:00:00.000000 UTC"
PROGRESS = re.compile(r"^grade \[\d+/\d+\] (\S+) (\S+): ", re.MULTILINE)


def toml(per_day: int, second: str = "2026-03-02T12:00:00") -> str:
    return DUE.format(second=second) + LATE.format(per_day=per_day)


@pytest.mark.slow
def test_a_late_policy_change_grades_only_late_work_again(course: Course, backend: Backend,
                                                          tmp_path: Path, capfd) -> None:
    subs, root = tmp_path / "subs", backend.root
    hand_in(course, subs, "ada", "01_demo", stamp=ON_TIME)
    hand_in(course, subs, "bo", "01_demo", stamp=LATE_STAMP)
    hand_in(course, subs, "ada", "02_second", stamp=ON_TIME)

    def grade() -> tuple[list[tuple[str, str]], str]:
        capfd.readouterr()
        assert main(["--root", str(course.root), "grade", "--submissions", str(subs), "--out",
                     str(root), "-j", "0", "--no-feedback", *backend.args()]) == 0
        out = capfd.readouterr().out
        return sorted(PROGRESS.findall(out)), out

    def bo() -> tuple[str, str]:
        row = next(r for r in csv.DictReader((root / "grades.csv").open())
                   if (r["student"], r["assignment"]) == ("bo", "01_demo"))
        return row["penalty"], row["score"]

    with settings(course, toml(20)):
        graded, _ = grade()
        assert len(graded) == 4 and bo() == ("1.20", "1.80")  # bo's 02 is missing
    with settings(course, toml(10)):
        graded, out = grade()
        assert graded == [("bo", "01_demo")], out  # on-time work is not graded again
        assert ("grade: course.toml [late] changed since this grading root last graded "
                "01_demo, 02_second (penalty_per_day = 20 -> penalty_per_day = 10): it "
                "concerns late submissions only, which are graded again (01_demo 1, "
                "02_second 0); on-time ones are kept") in out, out
        assert bo() == ("0.60", "2.40")
        graded, out = grade()
        assert graded == [] and "course.toml [" not in out
    with settings(course, toml(10, second="2026-03-09T12:00:00")):
        graded, out = grade()
        assert graded == [("ada", "02_second"), ("bo", "02_second")], out
        assert ("grade: course.toml [due] 02_second changed since this grading root last "
                "graded it (2026-03-02T12:00:00Z -> 2026-03-09T12:00:00Z): its submissions "
                "are graded again") in out, out


@pytest.mark.slow
def test_the_roster_names_the_students_in_the_gradebook(course: Course, backend: Backend,
                                                       tmp_path: Path, capfd) -> None:
    subs, root = tmp_path / "subs", backend.root
    hand_in(course, subs, "ada", "01_demo")
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email,canvas_id\nada,Ada Lovelace King,ada@uni.example,"
                      "4711\nbo,Bo Baker,bo@uni.example,4712\n")
    assert main(["--root", str(course.root), "grade", "--submissions", str(subs), "--out",
                 str(root), "-j", "0", "--no-feedback", "-m", "01", "--roster", str(roster),
                 *backend.args()]) == 0
    assert "names of 1 student(s) from the roster written to the gradebook" in \
        capfd.readouterr().out
    with nbg.gradebook(backend.read_url, "tinytorch") as gb:
        students = {s.id: (s.first_name, s.last_name, s.email, s.lms_user_id)
                    for s in gb.students}
    # only students of the gradebook: bo has handed in nothing and is not added
    assert students == {"ada": ("Ada Lovelace", "King", "ada@uni.example", "4711")}


def test_the_roster_stays_out_of_git() -> None:
    done = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "roster.csv"])
    assert done.returncode == 0  # 0: ignored


def _raise_in_hidden_test() -> str:
    source = ("def check(x):\n"
              "    assert x == 42, 'secret_hidden_check: x should be 42'  # hidden test\n")
    path = Path(__file__).with_name("_hidden_check_source.py")
    spec = importlib.util.spec_from_loader("hidden_check", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102
    path.write_text(source)  # so the traceback can show the source line
    try:
        module.check(1)
    except AssertionError:
        return traceback.format_exc()
    finally:
        path.unlink()
    raise AssertionError("check(1) did not fail")


def test_a_failure_names_its_exception_without_code(course: Course, tmp_path: Path) -> None:
    import json
    import shutil

    # nbgrader's own failure: two graded cells with one grade id stop generate_assignment,
    # with a traceback in its log and "see the above traceback" at the end
    src = course.root / "source_notebooks" / "01_demo" / "demo.ipynb"
    nb = json.loads(src.read_text())
    graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    graded[1]["metadata"]["nbgrader"]["grade_id"] = graded[0]["metadata"]["nbgrader"]["grade_id"]
    root = tmp_path / "root"
    (root / "source_notebooks" / "01_demo").mkdir(parents=True)
    (root / "source_notebooks" / "01_demo" / "demo.ipynb").write_text(json.dumps(nb))
    result = nbg.run("generate_assignment", nbg.load_config(course, root=root), "01_demo")
    assert not result["success"] and "above traceback" in result["log"]
    text = nbg.failure_text(result, limit=3)
    assert text.splitlines()[0] == ("jsonschema.exceptions.ValidationError: Duplicate grade "
                                    "id: demo_test_double"), text
    assert len(text.splitlines()) == 3 and 'File "' not in text
    shutil.rmtree(root)
    # a traceback through a hidden test's code: only the exception line comes out
    tb = _raise_in_hidden_test()
    assert "# hidden test" in tb  # the source line is in the traceback itself
    assert nbg.exception_lines("[ERROR] " + tb) == [
        "AssertionError: secret_hidden_check: x should be 42"]
