"""``course build`` writes nothing unless every module lints and every code cell compiles
(solutions, visible and hidden tests, and the student's version of each cell); errors are
located at the module file's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.authoring.build import build
from coursekit.cli import main
from coursekit.course import Course

MODULE = "modules/01_demo/demo.py"


def _generated(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for d in ("source_notebooks", "tinytorch/core") if (root / d).is_dir()
            for p in sorted((root / d).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _edit(course: Course, line: int, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` on 1-based ``line`` of the fixture module."""
    path = course.root / MODULE
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new)
    path.write_text("".join(lines))


@pytest.fixture
def built(course: Course) -> Course:
    build(course, check_import=False, log=lambda s: None)
    return course


@pytest.mark.parametrize(("line", "old", "new", "what"), [
    (29, "2 * x", "2 * (x", "'(' was never closed"),            # a solution region
    (47, "== 4,", "== 4 ]", "unmatched ']'"),                    # a visible test
    (49, "== -7.0,", "=== -7.0,", "invalid syntax"),             # a hidden test
])
def test_broken_cell_writes_nothing(built: Course, capsys, line: int, old: str, new: str,
                                    what: str) -> None:
    before = _generated(built.root)
    _edit(built, line, old, new)
    assert main(["--root", str(built.root), "build"]) == 1
    err = capsys.readouterr().err
    assert f"{MODULE}:{line}: does not compile" in err and what in err, err
    assert "nothing was written" in err and "Traceback" not in err
    assert _generated(built.root) == before


def test_student_version_must_compile(built: Course, capsys) -> None:
    """A cell that compiles only with its hidden tests in place (here: an `if` whose whole
    body is hidden) would break every student's notebook."""
    before = _generated(built.root)
    path = built.root / MODULE
    text = path.read_text().replace(
        "### BEGIN HIDDEN TESTS\n", "if True:\n    ### BEGIN HIDDEN TESTS\n    pass\n")
    path.write_text(text)
    assert main(["--root", str(built.root), "build"]) == 1
    err = capsys.readouterr().err
    line = text.splitlines().index("if True:") + 1
    assert f"{MODULE}:" in err and "does not compile in the student's version" in err, err
    assert f"expected an indented block after 'if' statement on line {line}" in err, err
    assert _generated(built.root) == before


def test_module_that_does_not_import_writes_nothing(built: Course, capsys) -> None:
    before = _generated(built.root)
    _edit(built, 22, "import numpy as np", "import numpy as np\nimport no_such_module_here")
    assert main(["--root", str(built.root), "build"]) == 1
    err = capsys.readouterr().err
    assert "`import tinytorch.core.demo` fails" in err and "no_such_module_here" in err, err
    assert _generated(built.root) == before


def test_first_build_writes_nothing_on_error(course: Course, capsys) -> None:
    _edit(course, 49, "== -7.0,", "=== -7.0,")
    assert main(["--root", str(course.root), "build"]) == 1
    assert not (course.root / "source_notebooks").exists()
    assert not (course.root / "tinytorch" / "core" / "demo.py").exists()
