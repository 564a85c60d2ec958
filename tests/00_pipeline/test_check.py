"""``course check`` on the fixture course and on the real course (slow)."""

from __future__ import annotations

import pytest

from coursekit.check import check
from coursekit.course import Course

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_check_passes_then_names_stale_files(course: Course) -> None:
    from coursekit.authoring.build import build
    from coursekit.authoring.release import release

    build(course, log=lambda s: None)
    release(course, log=lambda s: None)
    lines: list[str] = []
    assert check(course, log=lines.append), "\n".join(lines)
    assert any(line.startswith("01_demo") and "3/3 ok" in line and "0/3 ok" in line
               for line in lines)
    src = course.root / "modules" / "01_demo" / "demo.py"
    src.write_text(src.read_text().replace("Return twice x.", "Return 2 * x."))
    lines.clear()
    assert not check(course, skip_grading=True, log=lines.append)
    text = "\n".join(lines)
    assert "run `course build && course release`" in text
    assert "source_notebooks/01_demo/demo.ipynb (differs" in text
    assert "tinytorch/core/demo.py (differs" in text


def test_course_check_on_the_course() -> None:
    lines: list[str] = []
    assert check(Course(REPO), log=lines.append), "\n".join(lines)
