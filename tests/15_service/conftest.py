"""Fixtures of the grading service's tests: a PostgreSQL server (started here, stopped by its
process id) for the gradebook, as the gradebook tests do."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[0] / "11_grading"))

import pgserver  # noqa: E402


@pytest.fixture(scope="module")
def pg() -> Iterator[pgserver.Server]:
    """A PostgreSQL server on a loopback port (its ``postgres`` user trusted)."""
    pgserver.skip_or_fail_without_server()
    server = pgserver.start()
    try:
        yield server
    finally:
        pgserver.stop(server)
