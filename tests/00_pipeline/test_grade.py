"""Grading (runs nbgrader autograde: slow)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(released: Course, tmp_path_factory: pytest.TempPathFactory) -> dict:
    subs = tmp_path_factory.mktemp("subs")
    src = released.root / "source_notebooks" / "01_demo" / "demo.ipynb"
    rel = released.root / "release" / "01_demo" / "demo.ipynb"
    for student in ("alice", "bob", "carol", "dan", "erin", "frank"):
        (subs / student / "01_demo").mkdir(parents=True)
    shutil.copy(src, subs / "alice" / "01_demo" / "demo.ipynb")  # solution: full marks
    shutil.copy(rel, subs / "bob" / "01_demo" / "demo.ipynb")  # blank
    (subs / "carol" / "01_demo" / "demo.ipynb").write_text('{"cells": [')  # corrupt
    (subs / "dan" / "01_demo" / "demo.ipynb").write_text("")  # empty
    # frank: missing; erin: the kernel dies
    nb = json.loads(rel.read_text())
    for cell in nb["cells"]:
        if cell["id"] == "demo_double":
            cell["source"] = "import os\nos._exit(3)\n"
    (subs / "erin" / "01_demo" / "demo.ipynb").write_text(json.dumps(nb))
    out = tmp_path_factory.mktemp("grading")
    results = grade(released, subs, out=out, log=lambda s: None)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    return {"results": {r.student: r for r in results}, "rows": rows, "out": out}


def test_csv_and_bad_submissions(graded: dict) -> None:
    rows = graded["rows"]
    assert set(rows) == {"alice", "bob", "carol", "dan", "erin", "frank"}
    assert (rows["alice"]["score"], rows["alice"]["max_score"]) == ("3", "3")
    assert rows["bob"]["score"] == "0" and rows["bob"]["status"] == "graded"
    assert rows["carol"]["status"] == "corrupt" and "not valid JSON" in rows["carol"]["reason"]
    assert rows["dan"]["status"] == "empty" and rows["dan"]["score"] == "0"
    assert rows["frank"]["status"] == "missing" and "not found" in rows["frank"]["reason"]
    assert rows["erin"]["status"] == "error" and "kernel died" in rows["erin"]["reason"]
    assert all(r["max_score"] == "3" for r in rows.values())


def test_warning_printed_by_correct_code_costs_nothing(graded: dict) -> None:
    # demo_test_noisy runs code that writes a UserWarning and a RuntimeWarning to stderr: a
    # test earns its points by running to its end; what it prints (kept for the instructor in
    # the autograded notebook) counts for nothing
    alice = graded["results"]["alice"]
    assert alice.failed == [] and alice.score == 3
    nb = json.loads((graded["out"] / "autograded" / "alice" / "01_demo" / "demo.ipynb")
                    .read_text())
    noisy = next(c for c in nb["cells"] if c["id"] == "demo_test_noisy")
    assert any(o.get("name") == "stderr" and "Warning" in "".join(o.get("text", ""))
               for o in noisy["outputs"]), noisy["outputs"]


def test_feedback_hides_hidden_tests(graded: dict) -> None:
    out: Path = graded["out"]
    for student in ("alice", "bob"):
        html = (out / "feedback" / student / "01_demo" / "demo.html").read_text()
        assert "secret_hidden_check_double" not in html
        assert "3.5" not in html
        assert "hidden tests run here" in html
        assert "double(2)" in html  # visible tests stay visible
