"""Release and the leak guard (runs nbgrader generate_assignment: slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.leaks import check_release

pytestmark = pytest.mark.slow


@pytest.fixture
def release_copy(released: Course, tmp_path: Path) -> tuple[Course, Path]:
    """A copy of the clean release/ folder to plant leaks in."""
    dest = tmp_path / "release"
    shutil.copytree(released.root / "release", dest)
    return released, dest


def _edit_cell(nb_path: Path, cell_id: str, extra: str) -> None:
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["id"] == cell_id:
            cell["source"] = "".join(cell["source"]) + "\n" + extra
    nb_path.write_text(json.dumps(nb))


def test_release_is_clean_and_deterministic(released: Course) -> None:
    nb = released.root / "release" / "01_demo" / "demo.ipynb"
    text = nb.read_text()
    assert "raise NotImplementedError()" in text
    assert "secret_hidden_check_double" not in text
    assert check_release(released.root / "release", released.modules(), released.root) == []
    from coursekit.authoring.release import release

    release(released, log=lambda s: None)
    assert nb.read_text() == text
    assert sorted(p.name for p in (released.root / "release").rglob("*")) == ["01_demo",
                                                                              "demo.ipynb"]


def test_guard_catches_planted_solution(release_copy: tuple[Course, Path]) -> None:
    course, rel = release_copy
    _edit_cell(rel / "01_demo" / "demo.ipynb", "cell-006", "    result_of_doubling = 2 * x")
    leaks = check_release(rel, course.modules(), course.root)
    assert len(leaks) == 1 and "solution code" in leaks[0] and "result_of_doubling" in leaks[0]
    assert leaks[0].startswith("release/01_demo/demo.ipynb: cell 'cell-006'")


def test_guard_catches_planted_hidden_test(release_copy: tuple[Course, Path]) -> None:
    course, rel = release_copy
    _edit_cell(rel / "01_demo" / "demo.ipynb", "demo_test_double",
               'assert double(-3.5) == -7.0, "secret_hidden_check_double: '
               'double(-3.5) should be -7.0"')
    leaks = check_release(rel, course.modules(), course.root)
    assert any("hidden test code" in item for item in leaks), leaks


def test_guard_catches_markers_and_stray_files(release_copy: tuple[Course, Path]) -> None:
    course, rel = release_copy
    _edit_cell(rel / "01_demo" / "demo.ipynb", "cell-006", "### BEGIN SOLUTION")
    (rel / "01_demo" / "demo.py").write_text("def double(x):\n    return 2 * x\n")
    (rel / "gradebook.db").write_bytes(b"")
    leaks = check_release(rel, course.modules(), course.root)
    assert "release/01_demo/demo.py: stray .py file (may hold solutions)" in leaks
    assert "release/gradebook.db: gradebook/database file" in leaks
    assert any("contains the marker 'BEGIN SOLUTION'" in item for item in leaks), leaks


def test_stray_py_in_source_folder_is_not_released(released: Course) -> None:
    from coursekit.authoring.release import release

    stray = released.root / "source_notebooks" / "01_demo" / "solution.py"
    stray.write_text("SECRET = 1\n")
    try:
        release(released, log=lambda s: None)
        assert not (released.root / "release" / "01_demo" / "solution.py").exists()
    finally:
        stray.unlink()
