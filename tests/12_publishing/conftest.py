"""Fixtures of the publishing tests: a course with a real-looking student repository.

The course in the repository keeps the placeholder slug (``your-org``), on which
``course publish`` stops. The fixture copies the course, names a student repository in its
``course.toml``, and runs ``course build`` and ``course release`` again, so the Colab cell
of every notebook installs from that repository, as it would for a real course.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pubtools import copy_course, write_settings  # noqa: E402

from coursekit.authoring.build import build  # noqa: E402
from coursekit.authoring.release import release  # noqa: E402
from coursekit.course import Course  # noqa: E402
from coursekit.publishing.publish import publish  # noqa: E402


@pytest.fixture(scope="session")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """A copy of the course whose course.toml names TEST_SLUG, built and released again."""
    root = copy_course(tmp_path_factory.mktemp("course") / "course")
    write_settings(root)
    course = Course(root)
    build(course, check_import=False, log=lambda line: None)
    release(course, log=lambda line: None)
    return course


@pytest.fixture(scope="session")
def published(course: Course, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Student repositories published ``--through 03`` and ``--through 08``."""
    out = {}
    for through in ("03", "08"):
        dest = tmp_path_factory.mktemp("student") / f"through-{through}"
        publish(course, dest, through, log=lambda line: None)
        out[through] = dest
    return out
