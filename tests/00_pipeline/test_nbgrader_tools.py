"""nbgrader's own tools run in the course root work on the course's gradebook (slow).

The course root's nbgrader_config.py points them at the grading root ``grading/``; nbgrader
0.9 reads no ``--config`` option, so without it they found no configuration and left a
stray gradebook.db in the course root.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    return subprocess.run([str(Path(bindir) / "nbgrader"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_nbgrader_list_db_export_in_the_course_root(released: Course, tmp_path: Path) -> None:
    shutil.copy(REPO / "nbgrader_config.py", released.root / "nbgrader_config.py")
    subs = tmp_path / "subs"
    for student, src in (("ann", "source_notebooks"), ("bob", "release")):
        (subs / student / "01_demo").mkdir(parents=True)
        shutil.copy(released.root / src / "01_demo" / "demo.ipynb",
                    subs / student / "01_demo" / "demo.ipynb")
    grade(released, subs, workers=0, feedback=False, log=lambda s: None)  # into grading/
    listed = nbgrader(released.root, "list")
    assert listed.returncode == 0, listed.stderr
    students = nbgrader(released.root, "db", "student", "list")
    assert students.returncode == 0 and "There are 2 students" in students.stdout, students
    out = tmp_path / "export.csv"
    exported = nbgrader(released.root, "export", "--to", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    ours = {r["student"]: r for r in csv.DictReader(
        (released.root / "grading" / "grades.csv").open())}
    assert {s: float(r["score"]) for s, r in rows.items()} == \
        {s: float(r["score"]) for s, r in ours.items()} == {"ann": 3.0, "bob": 0.0}
    assert not (released.root / "gradebook.db").exists()
