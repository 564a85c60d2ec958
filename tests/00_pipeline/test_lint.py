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


# ---- fairness warnings ------------------------------------------------------------------

UNFAIR = '''# %% [markdown]
# `check(p)` raises a ValueError when p is negative.

READ_ONLY
def expect_error(error, action, *words):
    """Run action; check that it raises error whose message holds every word."""
    try:
        action()
    except error as exc:
        message = str(exc)
        for word in words:
            assert word in message, f"the message should mention {word!r}"
        return
    raise AssertionError("nothing was raised")


def check(p):
    if p < 0:
        raise ValueError(f"check: p must not be negative, got {p}")

TEST_WORDS
try:
    check(-1)
except ValueError as error:
    assert "p" in str(error), f"name p: {error}"
### BEGIN HIDDEN TESTS
try:
    check(-2.5)
except ValueError as error:
    message = str(error)
    assert "-2.5" in message and "p" in message, "the value and the argument: fair"
    assert "hyperparameters" in message, "unfair: the notebook never says so"
    assert "Negative" in message.upper(), "fair: the prose says negative, case aside"
    assert "FORBIDDEN" in message.lower(), "unfair, however it is compared"
for bad, word in ((-3, "must not"), (-4, "strictly positive")):
    try:
        check(bad)
    except ValueError as error:
        assert word in str(error), f"the error should say {word!r}"
expect_error(ValueError, lambda: check(-5), "out of range")
state = {"extra_key": 1}
try:
    check(-6)
except ValueError as error:
    assert "extra_key" in str(error), "the test fed this key in itself: fair"
### END HIDDEN TESTS
'''.replace("READ_ONLY", '# %% nbgrader={"grade": false, "grade_id": "fair_helpers", '
            '"locked": true, "schema_version": 3, "solution": false, "task": false}').replace(
    "TEST_WORDS\n", TEST("fair_test_words"))


def _warnings(course: Course, folder: str) -> list[str]:
    from coursekit.authoring.lint import fairness_warnings, parse_module

    module = next(m for m in course.modules() if m.folder == folder)
    return [str(w) for w in fairness_warnings(parse_module(module))]


def test_fairness_warns_on_message_words_absent_from_the_prose(course: Course) -> None:
    add_module(course, "02_fair", UNFAIR)
    found = _warnings(course, "02_fair")
    words = {w.split("message words ")[1].split(",")[0]: w for w in found if "message words" in w}
    # line numbers: the header is 8 lines, the cell above starts at line 9
    assert set(words) == {"'hyperparameters'", "'FORBIDDEN'", "'strictly positive'",
                          "'out of range'"}, found
    assert words["'hyperparameters'"].startswith("modules/02_fair/fair.py:40: hidden test")
    assert words["'FORBIDDEN'"].startswith("modules/02_fair/fair.py:42: ")
    assert words["'strictly positive'"].startswith("modules/02_fair/fair.py:47: ")
    assert words["'out of range'"].startswith("modules/02_fair/fair.py:48: ")
    # the lint also never stops a build: it raises nothing
    assert list(lint(course, course.modules())) == ["01_demo", "02_fair"]


def test_fairness_warns_on_a_cell_with_too_many_checks(course: Course) -> None:
    from coursekit.authoring.lint import MAX_CHECKS_PER_CELL

    n = MAX_CHECKS_PER_CELL
    asserts = "".join(f"assert {i} == {i}, 'check {i}'\n" for i in range(n - 1))
    # a loop over cases and a try/else check count once each: n checks in all
    body = (TEST("big_ok") + asserts + "for v in (1, 2, 3):\n    assert v > 0\n    assert v < 4\n\n"
            + TEST("big_many") + asserts + "### BEGIN HIDDEN TESTS\n"
            "try:\n    int('x')\nexcept ValueError:\n    pass\nelse:\n"
            "    raise AssertionError('no error')\n"
            "np_testing_assert = None\nimport numpy as np\n"
            "np.testing.assert_allclose(1.0, 1.0)\n### END HIDDEN TESTS\n")
    add_module(course, "02_big", body)
    found = _warnings(course, "02_big")
    assert len(found) == 1, found
    first_line = 9 + 1 + (n - 1) + 3 + 1  # header, first cell, its asserts and loop, blank
    assert found[0].startswith(f"modules/02_big/big.py:{first_line}: graded cell 'big_many' "
                               f"makes {n + 1} assertion checks"), found


def test_build_prints_fairness_warnings_and_goes_on(course: Course) -> None:
    from coursekit.authoring.build import build

    add_module(course, "02_fair", UNFAIR)
    lines: list[str] = []
    build(course, check_import=False, log=lines.append)
    text = "\n".join(lines)
    assert "build: warning: 4 test(s) may be unfair" in text, text
    assert "  modules/02_fair/fair.py:40: hidden test asserts the message words" in text
    assert (course.root / "source_notebooks" / "02_fair" / "fair.ipynb").is_file()



def test_course_modules_have_no_fairness_warnings() -> None:
    """Every module of the course passes the fairness lint."""
    from coursekit.authoring.lint import fairness_warnings, parse_module

    repo = Path(__file__).resolve().parents[2]
    modules = Course(repo).modules()
    found = [str(w) for m in modules for w in fairness_warnings(parse_module(m))]
    assert len(modules) == 8 and found == [], "\n".join(found)
