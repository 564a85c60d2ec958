"""``course report`` on the example class, graded for real (slow): every number on the page
and in its CSV files equals what ``expected.py`` works out from ``grades.csv``, the gradebook
and the autograded notebooks; then a test planted in a copy (failed by the two students who
got everything else right, with messages that differ only in their numbers) comes first
under "check the prose", with its place in ``modules/``."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade
from coursekit.report import write_report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import expected  # noqa: E402

pytestmark = pytest.mark.slow
REPO = HERE.parents[1]
COURSE_ID = "tinytorch"
MODULE, PLANTED = "03_layers", "layers_test_linear_forward"
STRONG = ("ada_complete", "dee_corrupt")  # full marks in 03_layers
GRADED = ["01_tensor", MODULE, "08_training"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("example") / "grading"
    # no feedback pages: writing them costs grading time, and the synthetic class's tests
    # follow the report's links to them; three modules (the first, the one with the planted
    # test, the last) make every part of the report that the eight would
    grade(Course(REPO), REPO / "examples" / "submissions", out=root, workers=2,
          modules=GRADED, feedback=False, log=lambda s: None)
    return root


def test_every_number_of_the_example_class(graded: Path, tmp_path: Path) -> None:
    write_report(Course(REPO), out=tmp_path, grading=graded, log=lambda s: None)
    exp = expected.gather(graded, "sqlite:///" + str(graded / "gradebook.db"), COURSE_ID)
    assert {m.name for m in exp.mods} == set(GRADED)
    facts = expected.check_report(tmp_path, exp, REPO)
    # the example class: the corrupt notebook is handed in but not gradable, every failing
    # test has its message (NotImplementedError from the stubs), nothing is late
    page = facts["page"]
    summary = {r[0]: r[1] for r in page.tables["summary"].rows}
    assert summary["handed in but not gradable"] == "1" and summary["late"] == "0"
    assert all(it.unread == 0 for it in facts["items"])
    assert facts["prose"] == []


def _plant(graded: Path, dest: Path) -> Path:
    """A copy of the grading root where the strong students fail PLANTED."""
    shutil.copytree(graded, dest, ignore=shutil.ignore_patterns("feedback", "submitted",
                                                                "workers"))
    config = dest / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(graded), str(dest)))
    points = None
    with sqlite3.connect(dest / "gradebook.db") as conn:
        for student in STRONG:
            row = conn.execute(
                "SELECT g.id, gc.max_score FROM grade g "
                "JOIN base_cell c ON g.cell_id = c.id JOIN grade_cells gc ON gc.id = c.id "
                "JOIN submitted_notebook sn ON g.notebook_id = sn.id "
                "JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
                "JOIN assignment a ON sa.assignment_id = a.id "
                "WHERE c.name = ? AND a.name = ? AND sa.student_id = ?",
                (PLANTED, MODULE, student)).fetchone()
            conn.execute("UPDATE grade SET auto_score = 0 WHERE id = ?", (row[0],))
            points = row[1]
    rows = list(csv.DictReader((dest / "grades.csv").open()))
    for r in rows:
        if r["assignment"] == MODULE and r["student"] in STRONG:
            r["score"] = expected.pts(float(r["score"]) - points)
    with (dest / "grades.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for student, got in zip(STRONG, (7, 9), strict=True):  # the same mistake, other numbers
        path = dest / "autograded" / student / MODULE / "layers.ipynb"
        nb = json.loads(path.read_text())
        cell = next(c for c in nb["cells"]
                    if c["metadata"].get("nbgrader", {}).get("grade_id") == PLANTED)
        cell["outputs"] = [{"output_type": "error", "ename": "AssertionError",
                            "evalue": f"expected out.shape == (4, 3), got (3, {got})",
                            "traceback": []}]
        path.write_text(json.dumps(nb))
    return dest


def test_a_planted_test_is_first_under_check_the_prose(graded: Path, tmp_path: Path) -> None:
    root = _plant(graded, tmp_path / "planted")
    out = tmp_path / "report"
    write_report(Course(REPO), out=out, grading=root, log=lambda s: None)
    exp = expected.gather(root, "sqlite:///" + str(root / "gradebook.db"), COURSE_ID)
    facts = expected.check_report(out, exp, REPO)
    assert [(it.module, it.cell) for it in facts["prose"]][:1] == [(MODULE, PLANTED)]
    line = next(n for n, text in enumerate(
        (REPO / "modules" / MODULE / "layers.py").read_text().splitlines(), 1)
        if text.startswith("# %%") and f'"grade_id": "{PLANTED}"' in text)
    first = facts["page"].tables["prose"].rows[0]
    assert first[:4] == ["1", MODULE, PLANTED, f"modules/{MODULE}/layers.py:{line}"]
    assert (first[5], first[6], first[7]) == ("2", "2", "100.0")  # both strong students fail
    assert "2 × AssertionError: expected out.shape == (#), got (#)" in first[10]
