"""Fixtures of the term tests: the two-module course of :mod:`termtools`, built and released
once per test file, and the two gradebooks every case runs on, SQLite and a real PostgreSQL
server that asks for a password (started here, stopped by its process id)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[0] / "11_grading"))

import pgserver  # noqa: E402
from termtools import Backend, make_course  # noqa: E402

from coursekit.course import Course  # noqa: E402


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """The two-module course, built and released (shared by a test file; a test that
    writes course.toml puts it back, see :func:`termtools.settings`)."""
    from coursekit.authoring.build import build
    from coursekit.authoring.release import release

    c = make_course(tmp_path_factory.mktemp("term") / "course")
    build(c, log=lambda s: None)
    release(c, log=lambda s: None)
    return c


@pytest.fixture(scope="session")
def pg() -> Iterator[pgserver.Server]:
    """A PostgreSQL server whose ``postgres`` user has a password."""
    pgserver.skip_or_fail_without_server()
    server = pgserver.start(password=secrets.token_hex(12))
    try:
        yield server
    finally:
        pgserver.stop(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A grading root and its gradebook: SQLite (the default), or a new database on the
    PostgreSQL server, its password in PGPASSWORD (never in the URL)."""
    root = tmp_path / "grading"
    if request.param == "sqlite":
        return Backend("sqlite", None, root)
    server = request.getfixturevalue("pg")
    monkeypatch.setenv("PGPASSWORD", server.password)
    name = f"gb_{secrets.token_hex(6)}"
    return Backend("postgresql", server.create_database(name), root)
