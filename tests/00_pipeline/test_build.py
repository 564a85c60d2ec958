"""Build: the export of the fixture module and byte-identical rebuilds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from coursekit.authoring.build import build
from coursekit.cli import main
from coursekit.course import Course

EXPECTED_EXPORT = '''"""Generated from modules/01_demo/demo.py by `course build`; do not edit.

Change the module file and run `course build --module 01`.
"""

import warnings

import numpy as np


def double(x: float) -> float:
    """Return twice x."""
    result_of_doubling = 2 * x
    return result_of_doubling


def noisy_square(x: float) -> float:
    """Return x squared; warns on the way (a correct solution that prints a warning)."""
    warnings.warn("squaring is fun", UserWarning)
    with np.errstate(all="warn"):
        np.log(np.zeros(1))
    return x * x
'''


def test_export_of_fixture(course: Course) -> None:
    build(course, check_import=False, log=lambda s: None)
    export = course.root / "tinytorch" / "core" / "demo.py"
    assert export.read_text() == EXPECTED_EXPORT
    spec = importlib.util.spec_from_file_location("fixture_demo_export", export)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.double(21) == 42


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for d in ("source_notebooks", "tinytorch/core") for p in (root / d).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_build_is_deterministic(course: Course, tmp_path: Path) -> None:
    build(course, check_import=False, log=lambda s: None)
    first = _snapshot(course.root)
    for path in (course.root / "source_notebooks").rglob("*.ipynb"):
        path.unlink()
    build(course, check_import=False, log=lambda s: None)
    assert _snapshot(course.root) == first
    nb = (course.root / "source_notebooks" / "01_demo" / "demo.ipynb").read_text()
    assert "jupytext" not in nb and "lines_to_next_cell" not in nb


def test_cli_build_module_and_errors(course: Course, capsys) -> None:
    assert main(["--root", str(course.root), "build", "--module", "01"]) == 0
    assert "build 01_demo" in capsys.readouterr().out
    assert main(["--root", str(course.root), "build", "--module", "09"]) == 1
    assert "--module 09: no such module" in capsys.readouterr().err
