"""Every release notebook of a published student repository still validates and grades.

* validates: solved (the reference solutions put into its solution cells), the notebook
  passes nbgrader's Validate run from the student repository's root, with the student
  repository's package (the modules before NN) on the path, not the instructor's;
* grades: its release notebooks are the course's own ``release/`` notebooks, which ``course
  check`` grades (solved: full marks, untouched: zero).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pubtools import solved

from coursekit.course import Course

pytestmark = pytest.mark.slow

VALIDATE = """
import json, sys
from nbgrader.validator import Validator
import tinytorch
print(json.dumps({"package": tinytorch.__file__, "results": Validator().validate(sys.argv[1])}))
"""


def _validate(repo: Path, notebook: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER"))}
    env["PYTHONPATH"] = str(repo)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"
    run = subprocess.run([sys.executable, "-c", VALIDATE, str(notebook)], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"validate {notebook.name} crashed:\n{run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("through", ["03", "08"])
def test_solved_notebooks_validate_with_the_published_package(
        course: Course, published: dict[str, Path], tmp_path: Path, through: str) -> None:
    dest = tmp_path / "student"
    # a student's working copy of the repository (the published one stays untouched)
    subprocess.run(["git", "clone", "-q", str(published[through]), str(dest)], check=True)
    jobs = []
    for m in course.modules():
        if m.number > through:
            continue
        path = dest / "release" / m.folder / f"{m.name}.ipynb"
        assert path.is_file()
        path.write_text(json.dumps(solved(path, m.source_notebook), indent=1),
                        encoding="utf-8")
        jobs.append((m.folder, path))
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda job: (job[0], _validate(dest, job[1])), jobs))
    for folder, outcome in outcomes:
        assert outcome["package"].startswith(str(dest)), (
            f"{folder}: validated with {outcome['package']}, not the published package")
        assert outcome["results"] == {}, f"{folder}: Validate says {outcome['results']}"


def test_published_notebooks_are_the_graded_ones(course: Course,
                                               published: dict[str, Path]) -> None:
    """The release notebooks of every published repository are, byte for byte, the course's
    ``release/`` notebooks: the ones ``course check`` (tests/00_pipeline/test_check.py)
    grades, solved to full marks and untouched to zero; so handed in from the student
    repository they grade the same (and the --through 03 notebooks are the same files)."""
    for m in course.modules():
        for through, repo in published.items():
            if m.number <= through:
                assert ((repo / "release" / m.folder / f"{m.name}.ipynb").read_bytes()
                        == m.release_notebook.read_bytes()), (through, m.folder)
