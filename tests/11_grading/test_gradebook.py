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
