"""A submissions folder one level off is refused with the layout expected, before anything
is graded or written: one student's folder (module folders where students belong), or the
folder above the submissions."""

from __future__ import annotations

from pathlib import Path

import pytest
from termtools import hand_in

from coursekit.cli import main
from coursekit.course import Course
from coursekit.grading.grade import collect_jobs


@pytest.mark.parametrize(("given", "message"), [
    ("subs/ada", "subs/ada: 01_demo/ is a module folder where a student's folder belongs "
     "(expected DIR/<student_id>/<NN_name>/<name>.ipynb); is it one student's folder? give "
     "the folder that holds the students' folders, e.g. SUBS"),
    (".", "no student folder holds a module folder, but subs/ada/01_demo/ does (expected "
     "DIR/<student_id>/<NN_name>/<name>.ipynb); give the folder that holds the students' "
     "folders, e.g. SUBS"),
])
def test_a_folder_one_level_off_is_refused(course: Course, tmp_path: Path, capfd,
                                           given: str, message: str) -> None:
    subs = tmp_path / "subs"
    hand_in(course, subs, "ada", "01_demo")
    hand_in(course, subs, "bo", "01_demo")
    out = tmp_path / "grading"
    code = main(["--root", str(course.root), "grade", "--submissions",
                 str(tmp_path / given), "--out", str(out), "-j", "0"])
    err = capfd.readouterr().err
    assert code == 1 and message.replace("SUBS", str(subs)) in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing graded, no student named 01_demo anywhere


def test_the_right_folder_passes(course: Course, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    hand_in(course, subs, "ada", "01_demo")
    (subs / "bo").mkdir()  # a student with nothing handed in yet is no layout error
    jobs = collect_jobs(subs, course.modules(), lambda line: None)
    assert sorted((j.student, j.module.folder) for j in jobs) == [
        ("ada", "01_demo"), ("ada", "02_second"), ("bo", "01_demo"), ("bo", "02_second")]
