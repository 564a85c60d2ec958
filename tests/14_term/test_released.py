"""Only released modules are graded or exported: ``--student`` alone grades the modules
handed out so far (course.toml [student_repository] through), nothing creates an assignment
for a module not released, and grades.csv and the exports list the released assignments;
a notebook not handed in before its due date is "not due", with an empty LMS cell, not a
zero (slow: grades the two-module course, on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from termtools import POINTS, Backend, hand_in, settings

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course

pytestmark = pytest.mark.slow
ROSTER = "student,name,email,canvas_id\nada,Ada A,ada@uni.example,11\nbo,Bo B,bo@uni.example,12\n"
THROUGH_01 = '[student_repository]\nthrough = "01"\n'
# 02 is released and due in the future: bo has not handed it in, which is no zero yet
THROUGH_02 = '[student_repository]\nthrough = "02"\n\n[due]\n02_second = 2999-01-01T12:00:00\n'


def run(course: Course, *args: str) -> int:
    return main(["--root", str(course.root), *args])


def rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["student"], r["assignment"]): r for r in csv.DictReader(path.open())}


def assignments(url: str) -> list[str]:
    with nbg.gradebook(url, "tinytorch") as gb:
        return sorted(a.name for a in gb.assignments)


def test_only_released_modules_are_graded_and_exported(course: Course, backend: Backend,
                                                       tmp_path: Path, capfd) -> None:
    subs, root = tmp_path / "subs", backend.root
    (tmp_path / "roster.csv").write_text(ROSTER)
    hand_in(course, subs, "ada", "01_demo")
    hand_in(course, subs, "ada", "02_second")  # handed in early, before 02 is released
    hand_in(course, subs, "bo", "01_demo", solved=False)
    grade = ["grade", "--submissions", str(subs), "--out", str(root), "-j", "0",
             "--no-feedback", *backend.args()]
    export = ["export", "--grading", str(root), "--roster", str(tmp_path / "roster.csv")]
    with settings(course, THROUGH_01):
        assert run(course, *grade, "--student", "ada") == 0
        out = capfd.readouterr().out
        assert 'those released so far (course.toml [student_repository] through = "01")' in out
        assert assignments(backend.read_url) == ["01_demo"]  # no assignment for 02
        assert set(rows(root / "grades.csv")) == {("ada", "01_demo")}
        assert run(course, *grade, "--module", "02") == 1
        err = capfd.readouterr().err
        assert "--module 02: module 02_second is not released yet" in err, err
        assert 'through = "01"' in err and assignments(backend.read_url) == ["01_demo"]
    with settings(course, THROUGH_02):
        assert run(course, *grade) == 0
        capfd.readouterr()
        got = rows(root / "grades.csv")
        assert set(got) == {(s, m) for s in ("ada", "bo") for m in ("01_demo", "02_second")}
        assert got[("ada", "02_second")]["score"] == str(POINTS)
        assert got[("bo", "01_demo")]["score"] == "0"  # handed in, nothing right: a zero
        bo = got[("bo", "02_second")]
        assert (bo["status"], bo["score"]) == ("not due", "0"), bo
        assert bo["reason"] == "due 2999-01-01T12:00:00Z; nothing handed in yet"
        assert run(course, *export, "--format", "canvas", "--out", str(tmp_path / "c.csv")) == 0
        table = list(csv.reader((tmp_path / "c.csv").open()))
        assert table[0][5:] == ["01_demo", "02_second"]
        by_id = {r[1]: r[5:] for r in table[2:]}
        assert by_id == {"11": [str(POINTS), str(POINTS)], "12": ["0", ""]}
    # through lowered again: 02 is in the gradebook, but no longer listed or exported
    with settings(course, THROUGH_01):
        capfd.readouterr()
        assert run(course, *export, "--format", "csv", "--out", str(tmp_path / "p.csv")) == 0
        out = capfd.readouterr().out
        assert "not released, left out: 02_second" in out, out
        header = next(csv.reader((tmp_path / "p.csv").open()))
        assert header == ["student", "name", "email", "01_demo", "total", "max_total"]
        assert run(course, *grade, "--student", "bo") == 0
        assert {m for _, m in rows(root / "grades.csv")} == {"01_demo"}
