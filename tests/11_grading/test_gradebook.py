"""The course creates nbgrader's gradebook itself: it must be the gradebook nbgrader makes."""

from __future__ import annotations

import os
import sqlite3
import sys
import warnings
from contextlib import closing
from pathlib import Path

from nbgrader.api import Gradebook

from coursekit import nbg


def _schema(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str]]]:
    with closing(sqlite3.connect(path)) as db:
        tables = db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
    return tables, version


def test_created_gradebook_is_the_one_nbgrader_creates(tmp_path: Path, monkeypatch) -> None:
    # nbgrader's own: Gradebook() on a new file runs `alembic heads` and stamps the result
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent),
                                                os.environ.get("PATH", "")]))
    theirs = tmp_path / "theirs.db"
    with warnings.catch_warnings(), Gradebook("sqlite:///" + str(theirs)):
        warnings.simplefilter("ignore")
    ours = tmp_path / "ours.db"
    assert nbg.create_gradebook("sqlite:///" + str(ours)) is True
    assert _schema(ours) == _schema(theirs)
    assert _schema(ours)[1] == [(nbg.alembic_head(),)]


def test_existing_gradebook_is_left_alone(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "g.db")
    assert nbg.create_gradebook(url) is True
    with warnings.catch_warnings(), Gradebook(url) as gb:
        warnings.simplefilter("ignore")
        gb.add_student("ada")
    assert nbg.create_gradebook(url) is False
    with warnings.catch_warnings(), Gradebook(url) as gb:
        warnings.simplefilter("ignore")
        assert [s.id for s in gb.students] == ["ada"]


def test_grading_into_a_gradebook_elsewhere(tmp_path: Path) -> None:
    """--db-url: the grades land in the given database; a URL that is not a plain
    ``sqlite:///`` file is treated as a database server (workers start from a new
    template gradebook), which this URL form exercises without a server."""
    from coursekit.course import Course
    from coursekit.grading.grade import grade

    repo = Path(__file__).resolve().parents[2]
    subs = tmp_path / "subs"
    for student in ("ada_complete", "ben_blank"):
        src = repo / "examples" / "submissions" / student / "02_activations"
        (subs / student).mkdir(parents=True)
        (subs / student / "02_activations").symlink_to(src)
    db = tmp_path / "elsewhere" / "course.db"
    db.parent.mkdir()
    url = "sqlite+pysqlite:///" + str(db)
    results = grade(Course(repo), subs, out=tmp_path / "g", db_url=url,
                    modules=["02_activations"], workers=2, feedback=False, log=lambda s: None)
    # module 02 has 8 points (8 graded cells of 1 point, tests/11_grading/corpus.py)
    assert {r.student: r.score for r in results} == {"ada_complete": 8, "ben_blank": 0}
    assert not (tmp_path / "g" / "gradebook.db").exists()
    with warnings.catch_warnings(), Gradebook(url) as gb:
        warnings.simplefilter("ignore")
        scores = {s.student.id: s.score for s in gb.assignment_submissions("02_activations")}
    assert scores == {"ada_complete": 8, "ben_blank": 0}
