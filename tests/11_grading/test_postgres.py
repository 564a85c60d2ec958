"""The gradebook on a real PostgreSQL server, started and stopped by this test (slow).

Two modules of the example class (01, with its corrupt notebook, and 02) are graded into
SQLite and into PostgreSQL: the gradebooks must be identical cell by cell and so must
``grades.csv``. Then grades entered by hand (as the formgrader does) must survive
regrading one student, on both databases, and ``grades.csv`` must keep every row.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from coursekit import nbg
from coursekit.course import Course
from coursekit.grading.grade import grade

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pgserver  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MODULES = ["01_tensor", "02_activations"]
COURSE_ID = "tinytorch"


def dump(db_url: str) -> dict:
    """Everything the gradebook holds about the class, keyed by names (not row ids)."""
    out: dict = {}
    with nbg.gradebook(db_url, COURSE_ID) as gb:
        out["courses"] = sorted(c.id for c in gb.db.query(__import__(
            "nbgrader.api", fromlist=["Course"]).Course))
        out["students"] = sorted(s.id for s in gb.students)
        for a in gb.assignments:
            out[("assignment", a.name)] = (a.duedate, a.course_id, float(a.max_score),
                                           sorted(n.name for n in a.notebooks))
            for sub in gb.assignment_submissions(a.name):
                out[("submission", a.name, sub.student_id)] = (
                    sub.timestamp, sub.extension, float(sub.score), float(sub.max_score))
                for nb in sub.notebooks:
                    out[("notebook", a.name, sub.student_id, nb.name)] = (
                        nb.flagged, nb.late_submission_penalty)
                    for g in nb.grades:
                        out[("grade", a.name, sub.student_id, nb.name, g.name)] = (
                            g.auto_score, g.manual_score, g.extra_credit,
                            bool(g.needs_manual_grade), g.max_score)
                    for c in nb.comments:
                        out[("comment", a.name, sub.student_id, nb.name, c.name)] = (
                            c.auto_comment, c.manual_comment)
    return out


@pytest.fixture(scope="module")
def server():
    pgserver.skip_or_fail_without_server()
    srv = pgserver.start()
    try:
        yield srv
    finally:
        pgserver.stop(srv)


@pytest.fixture(scope="module")
def graded(server: pgserver.Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    course = Course(REPO)
    subs = REPO / "examples" / "submissions"
    roots = {"sqlite": tmp_path_factory.mktemp("sqlite"), "postgresql":
             tmp_path_factory.mktemp("postgresql")}
    urls = {"sqlite": "sqlite:///" + str(roots["sqlite"] / "gradebook.db"),
            "postgresql": server.create_database("gradebook")}
    for kind in roots:
        grade(course, subs, out=roots[kind], db_url=urls[kind] if kind == "postgresql" else None,
              modules=MODULES, workers=2, feedback=False, log=lambda s: None)
    from coursekit.grading.records.database import normalize

    urls["postgresql"] = normalize(urls["postgresql"])
    return {"course": course, "subs": subs, "roots": roots, "urls": urls}


def test_postgres_gradebook_is_the_sqlite_one(graded: dict) -> None:
    sqlite, postgres = (dump(graded["urls"][k]) for k in ("sqlite", "postgresql"))
    cells = [k for k in sqlite if k[0] == "grade"]
    assert len(cells) > 4 * 10  # every student's every graded cell of both modules
    assert postgres == sqlite
    # every assignment belongs to the course's row (a server enforces it; nbgrader's own
    # preprocessors add a row for their default course on the side)
    assert {v[1] for k, v in sqlite.items() if k[0] == "assignment"} == {COURSE_ID}
    assert COURSE_ID in sqlite["courses"]
    csvs = [(graded["roots"][k] / "grades.csv").read_text() for k in ("sqlite", "postgresql")]
    assert csvs[0] == csvs[1]
    rows = list(csv.DictReader(csvs[0].splitlines()))
    assert len(rows) == 4 * len(MODULES)
    dee = next(r for r in rows if (r["student"], r["assignment"]) == ("dee_corrupt",
                                                                        "01_tensor"))
    assert dee["status"] == "corrupt" and "\n" not in dee["reason"]


def test_nbgrader_export_reads_the_postgres_gradebook(graded: dict) -> None:
    """nbgrader's own tools, run in the grading root, use the server the run graded into."""
    root = graded["roots"]["postgresql"]
    bindir = Path(sys.executable).parent
    done = subprocess.run([str(bindir / "nbgrader"), "export", "--to", "nbgrader.csv"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}"))
    assert done.returncode == 0, done.stderr
    theirs = {(r["student_id"], r["assignment"]): float(r["score"])
              for r in csv.DictReader((root / "nbgrader.csv").open())}
    ours = {(r["student"], r["assignment"]): float(r["score"])
            for r in csv.DictReader((root / "grades.csv").open())}
    assert theirs == ours and len(ours) == 4 * len(MODULES)
    assert not (root / "gradebook.db").exists()  # nothing went to a SQLite file


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_manual_grades_survive_a_regrade(graded: dict, kind: str) -> None:
    url = graded["urls"][kind]
    with warnings.catch_warnings(), nbg.gradebook(url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        sub = gb.find_submission_notebook("activations", "02_activations", "cy_partial")
        cell = next(g for g in sub.grades if g.auto_score == 0 and g.max_score >= 1)
        name, auto = cell.name, cell.auto_score
        cell.manual_score = 1.0       # what the formgrader writes for a changed score
        cell.extra_credit = 0.5
        comment = sub.comments[0]  # comments belong to the solution cells
        comment_name = comment.name
        comment.manual_comment = "Right idea, wrong axis: see me."
        gb.db.commit()
        before = float(gb.find_submission("02_activations", "cy_partial").score)
    # cy_partial scored 4 of 8 automatically (relu, tanh, softmax, softmax_stable: it wrote
    # ReLU, Tanh and Softmax, as honest_partial in tests/11_grading/corpus.py)
    assert before == 4 + 1.0 + 0.5
    grade(graded["course"], graded["subs"], out=graded["roots"][kind],
          db_url=url if kind == "postgresql" else None, modules=["02"],
          students=["cy_partial"], workers=1, feedback=False, regrade=True, log=lambda s: None)
    with warnings.catch_warnings(), nbg.gradebook(url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        sub = gb.find_submission_notebook("activations", "02_activations", "cy_partial")
        cell = next(g for g in sub.grades if g.name == name)
        assert (cell.auto_score, cell.manual_score, cell.extra_credit) == (auto, 1.0, 0.5)
        assert cell.needs_manual_grade  # as nbgrader marks a manual grade after a regrade
        comment = next(c for c in sub.comments if c.name == comment_name)
        assert comment.manual_comment == "Right idea, wrong axis: see me."
        assert float(gb.find_submission("02_activations", "cy_partial").score) == before
    rows = list(csv.DictReader((graded["roots"][kind] / "grades.csv").open()))
    assert len(rows) == 4 * len(MODULES)  # regrading one student forgets no one
    cy = next(r for r in rows if (r["student"], r["assignment"]) == ("cy_partial",
                                                                      "02_activations"))
    assert float(cy["score"]) == before and "graded by hand" in cy["reason"]
