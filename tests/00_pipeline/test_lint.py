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


# ---- what a test may use ----------------------------------------------------------------

def GIVEN(gid: str) -> str:  # noqa: N802
    return (f'# %% nbgrader={{"grade": false, "grade_id": "{gid}", "locked": true, '
            '"schema_version": 3, "solution": false, "task": false}\n')


def line_of(body: str, text: str) -> int:
    """The file line of the first body line that holds ``text`` (HEADER is 8 lines)."""
    return 8 + next(i for i, line in enumerate(body.splitlines(), start=1) if text in line)


PLAIN_HELPER = ("# %% [markdown]\n# `double(x)` returns twice x.\n\n"
                + SOL("bad_double") + "def double(x):\n    ### BEGIN SOLUTION\n"
                "    return 2 * x\n    ### END SOLUTION\n\n\n"
                "# %%\ndef check(f):\n    return all(f(v) == 2 * v for v in (1, 2.5, -3))\n\n\n"
                + TEST("bad_test_double") + 'assert check(double), "double doubles"\n')


def test_a_test_that_calls_a_helper_of_a_plain_cell_is_refused(course: Course) -> None:
    """A student may rewrite a plain cell (``check`` returning True): the build refuses a
    test that relies on one, and names the test, the name and the cell."""
    add_module(course, "02_bad", PLAIN_HELPER)
    found = problems(course, "02_bad")
    test_line = line_of(PLAIN_HELPER, "assert check(double)")
    cell_line = line_of(PLAIN_HELPER, "def check(f)") - 1  # its '# %%' line
    assert found == [
        f"modules/02_bad/bad.py:{test_line}: test 'bad_test_double' uses 'check', bound only "
        f"by the unlocked cell at modules/02_bad/bad.py:{cell_line}, which students may rewrite: "
        "make that cell a given cell (nbgrader \"locked\": true with a grade_id, not graded), "
        "or bind 'check' in the test"], found


def test_build_refuses_such_a_module_and_writes_nothing(course: Course) -> None:
    from coursekit.authoring.build import build

    add_module(course, "02_bad", PLAIN_HELPER)
    with pytest.raises(LintError) as info:
        build(course, check_import=False, log=lambda s: None)
    assert "test 'bad_test_double' uses 'check'" in str(info.value)
    assert not (course.root / "source_notebooks").exists()


def test_the_helper_in_a_given_cell_or_in_the_test_passes(course: Course) -> None:
    given = PLAIN_HELPER.replace("# %%\ndef check", GIVEN("bad_check") + "def check")
    add_module(course, "02_given", given.replace("bad_", "given_"))
    inline = PLAIN_HELPER.replace("# %%\ndef check(f):\n    return all(f(v) == 2 * v for v in "
                                  "(1, 2.5, -3))\n", "# %%\nprint(double(4))\n")
    inline = inline.replace('assert check(double)', "def check(f):\n    return all(f(v) == 2 * v"
                            " for v in (1, 2.5, -3))\n\n\nassert check(double)")
    add_module(course, "03_inline", inline.replace("bad_", "inline_"))
    assert list(lint(course, course.modules())) == ["01_demo", "02_given", "03_inline"]


ALLOWED = (
    GIVEN("ok_imports") + "import math\n\nimport numpy as np\n\n"
    + GIVEN("ok_helpers") + "SCALE = 2.0\n\n\ndef close(a, b):\n    return math.isclose(a, b)\n\n"
    + "# %%\nx = 5\nv = 7\nscratch = [1, 2]\n\n"
    + SOL("ok_double") + "def double(x):\n    ### BEGIN SOLUTION\n"
    "    return SCALE * x\n    ### END SOLUTION\n\n"
    + TEST("ok_test_double")
    # own names, function parameters and locals, comprehension and lambda variables,
    # an exception's name and the builtins: none of them is read from the notebook
    + "values = [double(v) for v in range(3)]\ntwice = lambda x: double(x)\n\n\n"
    "def check(x):\n    scratch = x * 2\n    return close(double(x), scratch)\n\n\n"
    "try:\n    double(None)\nexcept TypeError as error:\n    message = str(error)\n"
    "assert all(check(x) for x in (1.0, -2.5)) and len(values) == 3 and twice(1) == 2\n"
    "assert np.isclose(double(0.5), 1.0) and max(values) == 4\n"
)


def test_what_a_test_may_read(course: Course) -> None:
    """Names of given and solution cells, the test's own, builtins: no problem, even where a
    plain cell binds the same names (``x``, ``v``, ``scratch``) for its own use."""
    add_module(course, "02_ok", ALLOWED)
    assert list(lint(course, course.modules())) == ["01_demo", "02_ok"]


UNPROTECTED = (
    SOL("loose_double") + "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
    "    ### END SOLUTION\n\n"
    + GIVEN("loose_helpers") + "_ = 2\n\n\ndef _quiet(f):\n    return f\n\n\n"
    "def check(f):\n    return all(f(v) == 2 * v for v in CASES)\n\n"
    + "# %%\nCASES = (1, 2.5)\n\n"
    + TEST("loose_test_one") + "shared = 3\nassert _quiet(double)(1) == _\n\n"
    + TEST("loose_test_two") + "assert double(shared) == 6 and check(double)\n\n"
    + "# %%\ndef check(f):\n    return True\n\n"
    + TEST("loose_test_three") + "check = None\nassert double(1) == 2\n"
)


def test_names_the_grader_does_not_protect(course: Course) -> None:
    """An earlier test's names, a given name IPython rebinds itself (``_``; a given
    ``_quiet`` is protected like any given name), a plain name a given helper reads when a
    test calls it, and a given name bound again by a later cell."""
    add_module(course, "02_loose", UNPROTECTED)
    found = problems(course, "02_loose")
    path = "modules/02_loose/loose.py"
    helpers = line_of(UNPROTECTED, "loose_helpers")
    expected = {
        ("_", line_of(UNPROTECTED, "assert _quiet"),
         f"test 'loose_test_one' uses '_', bound only by the given cell 'loose_helpers' at "
         f"{path}:{helpers}: it is a name IPython binds itself as cells run"),
        ("shared", line_of(UNPROTECTED, "assert double(shared)"),
         "test 'loose_test_two' uses 'shared', bound only by the test 'loose_test_one' at "
         f"{path}:{line_of(UNPROTECTED, 'loose_test_one')}: a test's names are not protected"),
        ("CASES", line_of(UNPROTECTED, "for v in CASES"),
         "the given cell 'loose_helpers' (code that tests run) uses 'CASES', bound only by the "
         f"unlocked cell at {path}:{line_of(UNPROTECTED, 'CASES = (1') - 1}, which students may "
         "rewrite"),
        ("check", line_of(UNPROTECTED, "return True") - 2,
         f"an unlocked cell binds 'check' again, a name of the given cell at {path}:{helpers}"),
        ("check", line_of(UNPROTECTED, "loose_test_three"),
         f"test 'loose_test_three' binds 'check' again, a name of the given cell at "
         f"{path}:{helpers}"),
    }
    assert len(found) == len(expected), "\n".join(found)
    for name, line, start in expected:
        assert any(p.startswith(f"{path}:{line}: {start}") for p in found), (name, found)


def test_course_modules_tests_use_only_protected_names() -> None:
    """Every test of the course reads only names the grader protects."""
    from coursekit.authoring.lint import binding_problems, parse_module

    repo = Path(__file__).resolve().parents[2]
    modules = Course(repo).modules()
    found = [str(p) for m in modules for p in binding_problems(parse_module(m))]
    assert len(modules) == 8 and found == [], "\n".join(found)
