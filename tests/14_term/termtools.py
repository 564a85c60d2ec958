"""Helpers of the term tests: a two-module course, a class handing it in, the gradebook a
case runs on.

The course is the pipeline's fixture course (module 01_demo: 3 points, 2 for
``demo_test_double`` and 1 for ``demo_test_noisy``) plus a copy of that module as 02_second
(the same cells and points, its names changed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coursekit.course import Course

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = REPO / "tests" / "00_pipeline" / "fixtures" / "course"
POINTS = 3  # each module: demo_test_double 2 + demo_test_noisy 1 (the fixture's cells)


def make_course(dest: Path) -> Course:
    """The fixture course with a second module, ``02_second``, and the project's
    grader_config.py (nothing built)."""
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "grader_config.py", dest / "grader_config.py")
    text = (FIXTURE / "modules" / "01_demo" / "demo.py").read_text()
    second = dest / "modules" / "02_second"
    second.mkdir()
    (second / "second.py").write_text(text.replace("Module 01: Demo", "Module 02: Second")
                                      .replace("demo_", "second_"))
    return Course(dest)


@contextmanager
def settings(course: Course, text: str) -> Iterator[None]:
    """``course.toml`` holds ``text`` inside the block, and what it held before after."""
    path = course.root / "course.toml"
    saved = path.read_text() if path.is_file() else None
    path.write_text(text)
    try:
        yield
    finally:
        if saved is None:
            path.unlink()
        else:
            path.write_text(saved)


def hand_in(course: Course, subs: Path, student: str, folder: str, *, solved: bool = True,
            stamp: str | None = None) -> Path:
    """``student``'s notebook of module ``folder`` under ``subs``: the solution (full marks)
    or the untouched release notebook (zero), with a ``timestamp.txt`` when ``stamp``."""
    name = folder.split("_", 1)[1]
    src = course.root / ("source_notebooks" if solved else "release") / folder / f"{name}.ipynb"
    dest = subs / student / folder
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest / f"{name}.ipynb")
    if stamp is not None:
        (dest / "timestamp.txt").write_text(stamp + "\n")
    return dest / f"{name}.ipynb"


@dataclass
class Backend:
    """One of the two gradebooks a case runs on."""

    kind: str  # sqlite | postgresql
    url: str | None  # what --db-url gets: None for SQLite (the grading root's own file)
    root: Path  # the grading root of the test

    @property
    def read_url(self) -> str:
        """The URL to read the gradebook with in the test."""
        return self.url or "sqlite:///" + str(self.root / "gradebook.db")

    def args(self) -> list[str]:
        """The command-line options that pick this gradebook."""
        return ["--db-url", self.url] if self.url else []
