"""Shared fixtures of the pipeline tests: a throwaway copy of the tiny fixture course."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coursekit.course import Course

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = HERE / "fixtures" / "course"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs nbgrader (generate_assignment/autograde)")


def make_course(dest: Path) -> Course:
    """A copy of the fixture course with the project's grader_config.py."""
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "grader_config.py", dest / "grader_config.py")
    return Course(dest)


@pytest.fixture
def course(tmp_path: Path) -> Course:
    """A fresh fixture course (modules only, nothing generated)."""
    return make_course(tmp_path / "course")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """A fixture course that has been built and released (shared within a test file)."""
    from coursekit.authoring.build import build
    from coursekit.authoring.release import release

    c = make_course(tmp_path_factory.mktemp("released") / "course")
    build(c, log=lambda s: None)
    release(c, log=lambda s: None)
    return c
