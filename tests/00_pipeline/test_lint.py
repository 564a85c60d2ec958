"""Lint: every problem is reported with the module file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.authoring.lint import LintError, lint

HEADER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

"""
SOL_T = ('# %% nbgrader={"grade": false, "grade_id": "GID", "locked": false, '
       '"schema_version": 3, "solution": true, "task": false}\n')
TEST_T = ('# %% nbgrader={"grade": true, "grade_id": "GID", "locked": true, "points": 1, '
        '"schema_version": 3, "solution": false, "task": false}\n')


def SOL(gid: str) -> str:  # noqa: N802
    return SOL_T.replace("GID", gid)


def TEST(gid: str) -> str:  # noqa: N802
    return TEST_T.replace("GID", gid)


def add_module(course: Course, folder: str, body: str) -> Path:
    name = folder[3:]
    path = course.root / "modules" / folder / f"{name}.py"
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + body)
    return path


def problems(course: Course, folder: str) -> list[str]:
    target = [m for m in course.modules() if m.folder == folder]
    with pytest.raises(LintError) as info:
        lint(course, target)
    return [str(p) for p in info.value.problems]


def test_fixture_module_is_clean(course: Course) -> None:
    assert list(lint(course, course.modules())) == ["01_demo"]


def test_malformed_metadata_names_file_and_line(course: Course) -> None:
    add_module(course, "02_bad", "# %% [markdown]\n# hi\n\n"
               '# %% nbgrader={"grade": true, "grade_id": "bad_x" "locked": true}\nx = 1\n')
    found = problems(course, "02_bad")
    assert len(found) == 1, found
    assert found[0].startswith("modules/02_bad/bad.py:12: cell metadata does not parse")


def test_header_text_that_is_not_metadata(course: Course) -> None:
    add_module(course, "02_bad", "# %% my title\nx = 1\n\n#%%\ny = 2\n")
    found = problems(course, "02_bad")
    assert any(p.startswith("modules/02_bad/bad.py:9: unexpected text") for p in found), found
    assert any(p.startswith("modules/02_bad/bad.py:12: malformed cell marker") for p in found)


def test_duplicate_grade_id_across_modules(course: Course) -> None:
    add_module(course, "02_bad", SOL("demo_double") + "def f():\n    ### BEGIN SOLUTION\n"
               "    return 1\n    ### END SOLUTION\n")
    found = problems(course, "02_bad")
    assert len(found) == 1, found
    assert found[0].startswith("modules/02_bad/bad.py:9: duplicate grade_id 'demo_double'")
    assert "modules/01_demo/demo.py:" in found[0]


def test_duplicate_grade_id_within_module(course: Course) -> None:
    add_module(course, "02_bad", TEST("bad_t") + "assert True\n\n" + TEST("bad_t")
               + "assert True\n")
    found = problems(course, "02_bad")
    assert any(p.startswith("modules/02_bad/bad.py:12: duplicate grade_id 'bad_t'")
               for p in found), found


def test_unbalanced_and_nested_delimiters(course: Course) -> None:
    body = (SOL("bad_sol") + "def f():\n    ### BEGIN SOLUTION\n    return 1\n\n"
            + TEST("bad_t") + "assert f() == 1\n### BEGIN HIDDEN TESTS\n"
            "### BEGIN HIDDEN TESTS\nassert f() == 1\n### END HIDDEN TESTS\n"
            "### END HIDDEN TESTS\n")
    add_module(course, "02_bad", body)
    found = problems(course, "02_bad")
    assert "modules/02_bad/bad.py:11: solution region opened here is never closed" in found
    assert any(p.startswith("modules/02_bad/bad.py:17: '### BEGIN HIDDEN TESTS' nested")
               for p in found), found
    assert any(p.startswith("modules/02_bad/bad.py:20: '### END HIDDEN TESTS' without")
               for p in found), found


def test_regions_in_wrong_cells_and_points(course: Course) -> None:
    body = ("# %%\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n"
            + SOL("bad_sol") + "### BEGIN HIDDEN TESTS\ny = 1\n### END HIDDEN TESTS\n\n"
            + (TEST("bad_t")).replace('"points": 1', '"points": 0') + "assert True\n")
    add_module(course, "02_bad", body)
    found = problems(course, "02_bad")
    assert any(p.startswith("modules/02_bad/bad.py:10: solution region in a cell") for p in found)
    assert any(p.startswith("modules/02_bad/bad.py:15: hidden tests outside") for p in found)
    assert any(p.startswith("modules/02_bad/bad.py:19: graded cell needs numeric") for p in found)


def test_missing_kernelspec_and_schema(course: Course) -> None:
    path = add_module(course, "02_bad", "")
    path.write_text('# %% nbgrader={"grade": false, "grade_id": "bad_ro", "locked": true}\n'
                    "x = 1\n")
    found = problems(course, "02_bad")
    assert any("missing the Jupytext header" in p for p in found), found
    assert any(p.startswith("modules/02_bad/bad.py:1: nbgrader schema_version must be 3")
               for p in found), found
